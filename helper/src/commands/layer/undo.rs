// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer undo [COMMIT] [--yes] [--force]`: a commit reverted (by
//! default the last).

use std::sync::Arc;

use almost_core::layer::Layers;
use almost_core::system::Progress;
use almost_core::{Error, Result};
use almost_protocol::CommandResult;

use crate::commands::{Ctx, begin, layer_opening};
use crate::output::ask;
use crate::wire;

pub fn run(ctx: Ctx, commit: Option<&str>, yes: bool, force: bool) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let target = match commit {
        None => layers.last_commit_id(),
        Some(id) => Some(id.to_owned()),
    };
    let last = target
        .as_deref()
        .and_then(|id| layers.commit_journal(id))
        .ok_or_else(|| Error::InvalidPath {
            path: commit.unwrap_or("undo").to_owned(),
            reason: match commit {
                None => "there is no commit to undo".to_owned(),
                Some(_) => {
                    "no such commit in the history (`almost layer history` lists them)".to_owned()
                }
            },
        })?;
    ask(
        out,
        yes,
        &format!(
            "Undo commit {} of layer {} ({} operations in {})?",
            target.as_deref().unwrap_or_default(),
            last.layer.id,
            last.op_count(),
            super::shown_parts(last.layer.parts())
        ),
    )?;
    let why = Some("Undoing the commit of a layer");
    let _act = begin(sys, out, bus, layer_opening(why), &progress)?;
    // The commit asked for, by its id: the recovery may have changed
    // which is the last.
    let report = layers.undo(target.as_deref(), &progress, force)?;
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
