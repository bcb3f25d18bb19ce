// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer mount ID`: a layer mounted again (after a reboot).

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::Layers;
use almost_core::system::Progress;
use almost_protocol::CommandResult;

use crate::commands::{Ctx, begin, layer_opening};
use crate::wire;

pub fn run(ctx: Ctx, id: &str) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let meta = layers.get(id)?;
    let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
    layers.remount(&meta, &progress)?;
    out.answer(
        wire::layer_ref(&meta, false),
        CommandResult::LayerMount,
        |l| {
            format!(
                "Layer {} is mounted over {}.\n",
                l.id,
                super::shown_parts(l.parts())
            )
        },
    );
    Ok(0)
}
