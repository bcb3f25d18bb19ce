// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer new|list|diff|commit|discard|mount|undo`: thin wrappers
//! over almost-core's layers that ask, act and answer.

use std::io::IsTerminal;
use std::sync::Arc;

use almost_core::layer::{AtBoot, LayerInfo, LayerMeta, Layers, PrivateMounts};
use almost_core::state;
use almost_core::sysbus::SystemBus;
use almost_core::system::{Progress, System};
use almost_core::{Error, Result};
use almost_helper::cli::LayerAction;
use almost_protocol::{Change, ChangeKind, CommandResult, Phase};

use super::{Ctx, begin, layer_opening};
use crate::output::{Output, ask, shown};
use crate::wire;

pub fn run(ctx: Ctx, action: &LayerAction) -> Result<i32> {
    layer(ctx.sys, ctx.out, ctx.bus, action, ctx.private)
}

fn size_words(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn change_line(c: &Change) -> String {
    let mut line = format!("{:<9} {}", c.change.as_str(), shown(&c.path));
    match c.change {
        ChangeKind::Replaced => {
            let old = c.old_type.map_or("?", |t| t.as_str());
            line.push_str(&format!(" ({old} → {})", c.kind.as_str()));
        }
        ChangeKind::Added | ChangeKind::Deleted if c.kind.as_str() != "file" => {
            line.push_str(&format!(" ({})", c.kind.as_str()));
        }
        _ => {}
    }
    if c.change == ChangeKind::Modified && c.binary {
        line.push_str(&format!(
            " (binary, {} → {} bytes, sha256 {} → {})",
            c.old_size.unwrap_or(0),
            c.new_size.unwrap_or(0),
            c.old_hash.as_deref().map_or("", |h| &h[..12.min(h.len())]),
            c.new_hash.as_deref().map_or("", |h| &h[..12.min(h.len())]),
        ));
    }
    if let Some(detail) = &c.detail {
        line.push_str(&format!(" — {detail}"));
    }
    line
}

fn age_words(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 2 * 86400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}

/// `layer new --host PATH`: the path inside the root that the host's PATH
/// (below the root's directory) names.
pub fn inside_of_host(sys: &System, path: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    let host = std::path::Path::new(path);
    if !host.is_absolute() {
        return Err(invalid("not a full path: it must start with /".to_owned()));
    }
    let inside = sys
        .root
        .inside(host)
        .ok_or_else(|| invalid(format!("not below the root {}", sys.root.path().display())))?;
    inside
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid("not valid UTF-8".to_owned()))
}

/// The layers with their state; their changes counted when `private`
/// lets this process look beneath their mounts.
pub fn infos(sys: &System, private: Option<&PrivateMounts>) -> Result<Vec<LayerInfo>> {
    let layers = Layers::new(sys);
    let metas = layers.all()?;
    // Mount states first: the diffs below take mounts away (in this
    // process's private namespace only).
    let infos: Vec<LayerInfo> = metas.into_iter().map(|m| layers.info(m, None)).collect();
    Ok(infos
        .into_iter()
        .map(|mut info| {
            if let Some(private) = private {
                info.changes = layers
                    .diff(&info.meta, false, private)
                    .ok()
                    .map(|c| c.len() as u64);
            }
            info
        })
        .collect())
}

/// The text of `layer list`.
pub fn list_text(infos: &[LayerInfo]) -> String {
    if infos.is_empty() {
        return "No layers. Make one with `almost layer new PATH`.\n".to_owned();
    }
    let mut text = format!(
        "{:<10} {:<24} {:<11} {:<8} {:>8} {:>10}\n",
        "ID", "PATH", "CREATED", "MOUNTED", "CHANGES", "SIZE"
    );
    for i in infos {
        let age = state::now().saturating_sub(i.meta.created);
        text.push_str(&format!(
            "{:<10} {:<24} {:<11} {:<8} {:>8} {:>10}{}\n",
            i.meta.id,
            shown(&i.meta.path),
            age_words(age),
            if i.mounted { "yes" } else { "no" },
            i.changes.map_or("?".to_owned(), |c| c.to_string()),
            size_words(i.size),
            match (i.pending, i.meta.temporary) {
                (Some(AtBoot::Commit), _) => "  (committed at the next boot)",
                (Some(AtBoot::Discard), _) => "  (discarded at the next boot)",
                (None, true) => "  (temporary)",
                (None, false) => "",
            }
        ));
    }
    text
}

/// The text of `layer diff`: a summary, then one line per change (and its
/// patch, if asked for).
fn diff_text(diff: &almost_protocol::Diff) -> String {
    let mut text = format!(
        "Layer {} over {}: {}\n",
        diff.id,
        shown(&diff.path),
        summary(&diff.changes)
    );
    for c in &diff.changes {
        text.push_str(&change_line(c));
        text.push('\n');
        if let Some(p) = &c.patch {
            text.push_str(p);
        }
    }
    text
}

/// Counts of a layer's changes, by kind, in words.
pub fn summary(changes: &[Change]) -> String {
    let count = |k: ChangeKind| changes.iter().filter(|c| c.change == k).count();
    let parts: Vec<String> = [
        ChangeKind::Added,
        ChangeKind::Modified,
        ChangeKind::Metadata,
        ChangeKind::Deleted,
        ChangeKind::Replaced,
    ]
    .into_iter()
    .filter(|k| count(*k) > 0)
    .map(|k| format!("{} {}", count(k), k.as_str()))
    .collect();
    if parts.is_empty() {
        "no changes".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The commands that must look beneath mounted layers enter a private mount
/// namespace first, before any thread exists.
pub fn needs_private_mounts(action: &LayerAction) -> bool {
    matches!(action, LayerAction::Diff { .. } | LayerAction::List)
}

pub fn layer(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    action: &LayerAction,
    private: Option<&PrivateMounts>,
) -> Result<i32> {
    let layers = Layers::new(sys);
    let progress = Arc::new(Progress::default());
    match action {
        LayerAction::New {
            path,
            temporary,
            host,
        } => {
            let path = if *host {
                inside_of_host(sys, path)?
            } else {
                path.clone()
            };
            let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
            let meta = layers.create(&path, *temporary, &progress)?;
            out.answer(wire::new_layer(&meta), CommandResult::LayerNew, |meta| {
                format!(
                    "Layer {} is mounted over {}: changes there now go into the layer.\n\
                     Review them with `almost layer diff {0}`, then commit or discard.\n{0}\n",
                    meta.id,
                    shown(&meta.path)
                )
            });
            Ok(0)
        }
        LayerAction::List => {
            let infos = infos(sys, private)?;
            let list = almost_protocol::LayerList {
                layers: infos.iter().map(wire::layer).collect(),
            };
            out.answer(list, CommandResult::LayerList, |_| list_text(&infos));
            Ok(0)
        }
        LayerAction::Diff { id, patch } => {
            let meta = layers.get(id)?;
            let private = private.ok_or_else(|| Error::NotRoot {
                command: "layer diff".to_owned(),
            })?;
            let changes = layers.diff(&meta, *patch, private)?;
            out.answer(
                wire::diff(&meta, &changes),
                CommandResult::LayerDiff,
                diff_text,
            );
            Ok(0)
        }
        LayerAction::Commit { id, yes, at_boot } => {
            let meta = layers.get(id)?;
            if !yes && !out.json && std::io::stdin().is_terminal() {
                show_diff_for_review(&sys.root, id);
            }
            ask(
                out,
                *yes,
                &format!(
                    "Apply these changes to {}{}?",
                    meta.path.display(),
                    if *at_boot { " at the next boot" } else { "" }
                ),
            )?;
            if *at_boot {
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
                at_boot: false,
                applied: Some(report.applied as u64),
                outcome: Some(report.outcome.clone()),
            };
            out.answer(result, CommandResult::LayerCommit, |r| {
                format!(
                    "Committed layer {} into {} ({} operations). `almost layer undo` reverts it.\n",
                    r.id,
                    shown(&r.path),
                    r.applied.unwrap_or(0)
                )
            });
            Ok(0)
        }
        LayerAction::Discard { id, yes, at_boot } => {
            let meta = layers.get(id)?;
            ask(
                out,
                *yes,
                &format!(
                    "Discard layer {} over {} and all its changes{}?",
                    meta.id,
                    meta.path.display(),
                    if *at_boot { " at the next boot" } else { "" }
                ),
            )?;
            if *at_boot {
                return leave_to_boot(sys, out, bus, &layers, &meta, AtBoot::Discard, &progress);
            }
            let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
            layers.discard(&meta, &progress)?;
            out.answer(
                wire::layer_ref(&meta, false),
                CommandResult::LayerDiscard,
                |l| format!("Discarded layer {} over {}.\n", l.id, shown(&l.path)),
            );
            Ok(0)
        }
        LayerAction::Mount { id } => {
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
        LayerAction::Undo { yes, force } => {
            let last = layers.last_commit().ok_or_else(|| Error::InvalidPath {
                path: "undo".to_owned(),
                reason: "there is no commit to undo".to_owned(),
            })?;
            ask(
                out,
                *yes,
                &format!(
                    "Undo the commit of layer {} ({} operations in {})?",
                    last.layer.id,
                    last.ops.len(),
                    last.layer.path.display()
                ),
            )?;
            let why = Some("Undoing the last commit of a layer");
            let _act = begin(sys, out, bus, layer_opening(why), &progress)?;
            let report = layers.undo(&progress, *force)?;
            out.answer(
                wire::commit_report(&report),
                CommandResult::LayerUndo,
                |r| {
                    format!(
                        "Undid the commit of layer {} in {}.\n",
                        r.id,
                        shown(&r.path)
                    )
                },
            );
            Ok(0)
        }
    }
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

/// `layer commit --at-boot`, `layer discard --at-boot`: records the act for
/// the next `almost boot`, which does it before the layer is mounted again
/// (and before any service starts). A later `--at-boot` replaces it; a
/// commit or discard done now makes it moot.
fn leave_to_boot(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    layers: &Layers,
    meta: &LayerMeta,
    act: AtBoot,
    progress: &Arc<Progress>,
) -> Result<i32> {
    let _opened = begin(sys, out, bus, layer_opening(None), progress)?;
    // A layer the recovery just committed (or whose id was wrong) is gone.
    let meta = layers.get(&meta.id)?;
    layers.set_at_boot(&meta.id, Some(act))?;
    let verb = match act {
        AtBoot::Commit => "committed into",
        AtBoot::Discard => "discarded from",
    };
    let text = || {
        format!(
            "Layer {} will be {verb} {} at the next boot, before anything starts. Until then it \
             stays mounted and in use.\n",
            meta.id,
            shown(&meta.path)
        )
    };
    match act {
        AtBoot::Commit => {
            let result = almost_protocol::LayerCommit {
                id: meta.id.clone(),
                path: meta.path.clone(),
                at_boot: true,
                applied: None,
                outcome: None,
            };
            out.answer(result, CommandResult::LayerCommit, |_| text());
        }
        AtBoot::Discard => {
            out.answer(
                wire::layer_ref(&meta, true),
                CommandResult::LayerDiscard,
                |_| text(),
            );
        }
    }
    Ok(0)
}
