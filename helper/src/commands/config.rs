// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost config show|get|set`: the configuration, read or written
//! (validated, atomically, comments kept).

use almost_core::config;
use almost_core::{Error, Result};
use almost_helper::cli::ConfigAction;
use almost_protocol::CommandResult;

use super::Ctx;
use crate::wire;

pub fn run(ctx: Ctx, action: &ConfigAction) -> Result<i32> {
    let Ctx { sys, out, .. } = ctx;
    match action {
        ConfigAction::Show => out.answer(wire::config(&sys.config), CommandResult::Config, |_| {
            config::render(&sys.config)
        }),
        ConfigAction::Get { key } => {
            let values = config::get(&sys.config, key).ok_or_else(|| Error::Config {
                file: config::CONFIG_FILE.into(),
                line: 0,
                column: 0,
                message: format!("unknown key {key:?} (known: {})", config::KEYS.join(", ")),
            })?;
            // The lists' paths as the protocol writes paths (the text
            // shows them as the file has them).
            let encoded = |paths: &[std::path::PathBuf]| {
                paths
                    .iter()
                    .map(|p| almost_protocol::path::encode(p))
                    .collect()
            };
            let value = almost_protocol::ConfigValue {
                key: key.clone(),
                value: match key.as_str() {
                    "paths" => encoded(&sys.config.paths),
                    "exclude" => encoded(&sys.config.exclude),
                    _ => values.clone(),
                },
            };
            out.answer(value, CommandResult::ConfigGet, |_| {
                values.iter().map(|v| format!("{v}\n")).collect()
            });
        }
        ConfigAction::Set { key, values } => {
            let config = config::set(&sys.root, key, values)?;
            out.answer(wire::config(&config), CommandResult::Config, |_| {
                config::render(&config)
            });
        }
    }
    Ok(0)
}
