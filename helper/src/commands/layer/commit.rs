// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer commit ID [--yes] [--at-boot]`: the layer's changes
//! applied to the tree beneath (after a review on a terminal).

use std::io::IsTerminal;
use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::{AtBoot, Layers};
use almost_core::system::Progress;
use almost_protocol::{CommandResult, Phase};

use super::leave_to_boot;
use crate::commands::{Ctx, begin, layer_opening};
use crate::output::ask;

pub fn run(ctx: Ctx, id: &str, yes: bool, at_boot: bool) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let meta = layers.get(id)?;
    if !yes && !out.json && std::io::stdin().is_terminal() {
        show_diff_for_review(&sys.root, id);
    }
    ask(
        out,
        yes,
        &format!(
            "Apply these changes to {}{}?",
            super::shown_parts(meta.parts()),
            if at_boot { " at the next boot" } else { "" }
        ),
    )?;
    if at_boot {
        return leave_to_boot(sys, out, bus, &layers, &meta, AtBoot::Commit, &progress);
    }
    // A shutdown must not cut a commit in half.
    let why = Some("Committing a layer into the system files");
    let _act = begin(sys, out, bus, layer_opening(why), &progress)?;
    let progress_shown = out.progress(Phase::Commit, progress.clone());
    let report = layers.commit(&meta, &progress)?;
    drop(progress_shown);
    let result = almost_protocol::LayerCommit {
        id: report.id.clone(),
        path: report.path.clone(),
        paths: report.paths.clone(),
        at_boot: false,
        applied: Some(report.applied as u64),
        outcome: Some(report.outcome.clone()),
    };
    // The programs still running what the commit replaced are named.
    let out = &crate::commands::restart::Answering::new(sys, out, meta.parts());
    out.answer(result, CommandResult::LayerCommit, |r| {
        format!(
            "Committed layer {} into {} ({} operations). `almost layer undo` reverts it.\n",
            r.id,
            super::shown_parts(r.parts()),
            r.applied.unwrap_or(0)
        )
    });
    Ok(0)
}

/// Shows the diff of a layer before asking to commit it, from a child
/// `almost layer diff`, which can look beneath the mount in a namespace of
/// its own while this process keeps the real mount table.
fn show_diff_for_review(root: &almost_core::paths::Root, id: &str) {
    if let Ok(exe) = std::env::current_exe() {
        // The subcommand first: under pkexec the child inherits
        // PKEXEC_UID, and almost then refuses any other order.
        let _ = std::process::Command::new(exe)
            .args(["layer", "diff", "--patch", id, "--root"])
            .arg(root.path())
            .status();
    }
}
