// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost overview`: what a front end shows, in one read (the panel polls
//! with it): the status, the layers and the configuration, and the files
//! to watch for changes.

use almost_core::Result;
use almost_core::config;
use almost_core::layer::PrivateMounts;
use almost_core::state;
use almost_core::sysbus::SystemBus;
use almost_core::system::System;
use almost_protocol::CommandResult;

use super::{Ctx, layer, status};
use crate::output::{self, Output};
use crate::wire;

pub fn run(ctx: Ctx) -> Result<i32> {
    overview(ctx.sys, ctx.out, ctx.bus, ctx.is_root, ctx.private)
}

/// `almost overview`: the status, the layers and the config in one read.
fn overview(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    is_root: bool,
    private: Option<&PrivateMounts>,
) -> Result<i32> {
    let report = status::report(sys, out, bus, is_root)?;
    let infos = layer::infos(sys, private)?;
    let result = almost_protocol::Overview {
        status: report,
        layers: infos.iter().map(wire::layer).collect(),
        config: wire::config(&sys.config),
        watch: [
            std::path::Path::new(state::STATE_DIR).join(state::ACTED_FILE),
            std::path::PathBuf::from(config::CONFIG_FILE),
        ]
        .iter()
        .map(|inside| sys.root.host(inside))
        .collect(),
    };
    out.answer(Box::new(result), CommandResult::Overview, |o| {
        format!(
            "{}\n{}",
            output::report_text(&o.status),
            layer::list_text(&infos)
        )
    });
    Ok(0)
}
