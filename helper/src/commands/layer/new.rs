// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer new PATH… [--temporary] [--host]`, `almost layer new
//! --system`: one layer over one directory or several.

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::Layers;
use almost_core::system::Progress;
use almost_protocol::CommandResult;

use super::inside_of_host;
use crate::commands::{Ctx, begin, layer_opening};
use crate::output::shown;
use crate::wire;

pub fn run(ctx: Ctx, paths: &[String], system: bool, temporary: bool, host: bool) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let (paths, left_out) = if system {
        let (have, lack) = layers.system_parts();
        let have = have
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        (have, lack)
    } else if host {
        let inside = paths
            .iter()
            .map(|p| inside_of_host(sys, p))
            .collect::<Result<Vec<_>>>()?;
        (inside, Vec::new())
    } else {
        (paths.to_vec(), Vec::new())
    };
    let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
    let meta = layers.create(&paths, temporary, system, &progress)?;
    out.answer(
        wire::new_layer(&meta, &left_out),
        CommandResult::LayerNew,
        |meta| {
            let over = meta
                .parts()
                .iter()
                .map(|p| shown(p))
                .collect::<Vec<_>>()
                .join(", ");
            let mut text = format!(
                "Layer {} is mounted over {over}: changes there now go into the layer.\n",
                meta.id
            );
            if meta.system {
                text.push_str(
                    "apt and dpkg work through it; a discard takes the packages, their \
                     configuration and the package database back together.\n",
                );
            }
            if !meta.left_out.is_empty() {
                text.push_str(&format!(
                    "Not in this root, left out: {}.\n",
                    meta.left_out
                        .iter()
                        .map(|p| shown(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            text.push_str(&format!(
                "Review them with `almost layer diff {0}`, then commit or discard.\n{0}\n",
                meta.id
            ));
            text
        },
    );
    Ok(0)
}
