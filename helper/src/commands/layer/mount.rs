// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer mount ID`: a layer mounted again (after a reboot).

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::Layers;
use almost_core::system::Progress;
use almost_protocol::CommandResult;

use crate::commands::{Ctx, begin, layer_opening};
use crate::output::shown;
use crate::wire;

pub fn run(ctx: Ctx, id: &str) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let meta = layers.get(id)?;
    let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
    sys.apply_subtree(&meta.path, false, &progress)?;
    layers.mount(&meta)?;
    out.answer(
        wire::layer_ref(&meta, false),
        CommandResult::LayerMount,
        |l| format!("Layer {} is mounted over {}.\n", l.id, shown(&l.path)),
    );
    Ok(0)
}
