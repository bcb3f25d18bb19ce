// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer discard ID [--yes] [--at-boot]`: the layer and its
//! changes deleted, the tree beneath as it was.

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::{AtBoot, Layers};
use almost_core::system::Progress;
use almost_protocol::CommandResult;

use super::leave_to_boot;
use crate::commands::{Ctx, begin, layer_opening};
use crate::output::ask;
use crate::wire;

pub fn run(ctx: Ctx, id: &str, yes: bool, at_boot: bool) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let meta = layers.get(id)?;
    ask(
        out,
        yes,
        &format!(
            "Discard layer {} over {} and all its changes{}?",
            meta.id,
            super::shown_parts(meta.parts()),
            if at_boot { " at the next boot" } else { "" }
        ),
    )?;
    if at_boot {
        return leave_to_boot(sys, out, bus, &layers, &meta, AtBoot::Discard, &progress);
    }
    let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
    layers.discard(&meta, &progress)?;
    out.answer(
        wire::layer_ref(&meta, false),
        CommandResult::LayerDiscard,
        |l| {
            format!(
                "Discarded layer {} over {}.\n",
                l.id,
                super::shown_parts(l.parts())
            )
        },
    );
    Ok(0)
}
