// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer commit ID [--yes] [--at-boot] [--only PATH… | --except
//! PATH…]`: the layer's changes (or those selected, with what they need)
//! applied to the tree beneath (after a review on a terminal).

use std::io::IsTerminal;
use std::sync::Arc;

use almost_core::layer::commit::{Choice, Selection};
use almost_core::layer::{AtBoot, Layers};
use almost_core::system::Progress;
use almost_core::{Error, Result};
use almost_protocol::{CommandResult, Phase};

use super::leave_to_boot;
use crate::commands::{Ctx, begin, layer_opening};
use crate::output::ask;

/// The selection asked for on the command line: paths in almost-protocol's
/// encoding (`\xNN` for a byte that is not UTF-8, `\\` for a backslash),
/// as `layer diff` prints them.
fn choice(only: &[String], except: &[String]) -> Result<Option<Choice>> {
    let (texts, except) = match (only.is_empty(), except.is_empty()) {
        (true, true) => return Ok(None),
        (false, _) => (only, false),
        (true, false) => (except, true),
    };
    let paths = texts
        .iter()
        .map(|t| {
            almost_protocol::path::decode(t).map_err(|e| Error::InvalidPath {
                path: t.clone(),
                reason: format!("not a path as `layer diff` prints it: {e}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Choice { paths, except }))
}

pub fn run(
    ctx: Ctx,
    id: &str,
    yes: bool,
    at_boot: bool,
    only: &[String],
    except: &[String],
) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    let meta = layers.get(id)?;
    let choice = choice(only, except)?;
    if !yes && !out.json && std::io::stdin().is_terminal() {
        show_diff_for_review(&sys.root, id);
    }
    let which = match &choice {
        None => "these changes".to_owned(),
        Some(c) => format!(
            "{} {} (and what they need)",
            if c.except {
                "every change but those under"
            } else {
                "the changes under"
            },
            c.paths
                .iter()
                .map(|p| almost_protocol::path::encode(p))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    ask(
        out,
        yes,
        &format!(
            "Apply {which} to {}{}?",
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
    let report = match &choice {
        Some(choice) => layers.commit_selected(&meta, choice, &progress)?,
        None => layers.commit(&meta, &progress)?,
    };
    drop(progress_shown);
    let result = almost_protocol::LayerCommit {
        id: report.id.clone(),
        path: report.path.clone(),
        paths: report.paths.clone(),
        at_boot: false,
        applied: Some(report.applied as u64),
        outcome: Some(report.outcome.clone()),
        selection: report.selection.as_ref().map(selection),
    };
    // The programs still running what the commit replaced are named.
    let out = &crate::commands::restart::Answering::new(sys, out, meta.parts());
    out.answer(result, CommandResult::LayerCommit, |r| match &r.selection {
        None => format!(
            "Committed layer {} into {} ({} operations). `almost layer undo` reverts it.\n",
            r.id,
            super::shown_parts(r.parts()),
            r.applied.unwrap_or(0)
        ),
        Some(s) => selection_text(r, s),
    });
    Ok(0)
}

fn selection(s: &Selection) -> almost_protocol::layer::CommitSelection {
    almost_protocol::layer::CommitSelection {
        paths: s.paths.clone(),
        except: s.except,
        selected: s.selected,
        needed: s
            .needed
            .iter()
            .map(|n| almost_protocol::layer::NeededChange {
                path: n.path.clone(),
                by: n.by.clone(),
                why: n.why.as_str().to_owned(),
            })
            .collect(),
        rest: s.rest,
    }
}

/// A selective commit in words: how many changes went, which of them
/// because another needed them, and what stays in the layer.
fn selection_text(
    r: &almost_protocol::LayerCommit,
    s: &almost_protocol::layer::CommitSelection,
) -> String {
    use almost_protocol::path::encode;
    let mut text = format!(
        "Committed {} of the {} changes of layer {} into {}. `almost layer undo` reverts them.\n",
        s.selected,
        s.selected + s.rest,
        r.id,
        super::shown_parts(r.parts()),
    );
    for n in &s.needed {
        let why = match n.why.as_str() {
            "new-directory" => "the new directory it is in",
            "replaced-directory" => "the replaced directory it is in",
            "hard-link" => "another name of the same file",
            other => other,
        };
        text.push_str(&format!(
            "  also committed {}: {why} (needed by {})\n",
            encode(&n.path),
            encode(&n.by)
        ));
    }
    if s.rest == 0 {
        text.push_str(&format!(
            "Layer {} is now empty and still mounted; `almost layer discard {}` removes it.\n",
            r.id, r.id
        ));
    } else {
        text.push_str(&format!(
            "{} changes stay in layer {}, which stays mounted (`almost layer diff {}` lists them).\n",
            s.rest, r.id, r.id
        ));
    }
    text
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
