// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer new PATH [--temporary] [--host]`: a layer over PATH.

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::Layers;
use almost_core::system::Progress;
use almost_protocol::CommandResult;

use super::inside_of_host;
use crate::commands::{Ctx, begin, layer_opening};
use crate::output::shown;
use crate::wire;

pub fn run(ctx: Ctx, path: &str, temporary: bool, host: bool) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let path = if host {
        inside_of_host(sys, path)?
    } else {
        path.to_owned()
    };
    let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
    let meta = layers.create(&path, temporary, &progress)?;
    out.answer(
        wire::new_layer(&meta, &[]),
        CommandResult::LayerNew,
        |meta| {
            format!(
                "Layer {} is mounted over {}: changes there now go into the layer.\n\
             Review them with `almost layer diff {0}`, then commit or discard.\n{0}\n",
                meta.id,
                shown(&meta.path)
            )
        },
    );
    Ok(0)
}
