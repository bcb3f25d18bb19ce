// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer undo [--yes] [--force]`: the last commit reverted.

use std::sync::Arc;

use almost_core::layer::Layers;
use almost_core::system::Progress;
use almost_core::{Error, Result};
use almost_protocol::CommandResult;

use crate::commands::{Ctx, begin, layer_opening};
use crate::output::ask;
use crate::wire;

pub fn run(ctx: Ctx, yes: bool, force: bool) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let last = layers.last_commit().ok_or_else(|| Error::InvalidPath {
        path: "undo".to_owned(),
        reason: "there is no commit to undo".to_owned(),
    })?;
    ask(
        out,
        yes,
        &format!(
            "Undo the commit of layer {} ({} operations in {})?",
            last.layer.id,
            last.op_count(),
            super::shown_parts(last.layer.parts())
        ),
    )?;
    let why = Some("Undoing the last commit of a layer");
    let _act = begin(sys, out, bus, layer_opening(why), &progress)?;
    let report = layers.undo(&progress, force)?;
    // The programs still running what the undo replaced are named.
    let out = &crate::commands::restart::Answering::new(sys, out, last.layer.parts());
    out.answer(
        wire::commit_report(&report),
        CommandResult::LayerUndo,
        |r| {
            format!(
                "Undid the commit of layer {} in {}.\n",
                r.id,
                super::shown_parts(r.parts())
            )
        },
    );
    Ok(0)
}
