// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer diff ID [--patch]`: every change a layer makes.

use almost_core::layer::Layers;
use almost_core::{Error, Result};
use almost_protocol::{Change, ChangeKind, CommandResult};

use crate::commands::Ctx;
use crate::output::shown;
use crate::wire;

pub fn run(ctx: Ctx, id: &str, patch: bool) -> Result<i32> {
    let Ctx {
        sys, out, private, ..
    } = ctx;
    let layers = Layers::new(sys);
    let meta = layers.get(id)?;
    let private = private.ok_or_else(|| Error::NotRoot {
        command: "layer diff".to_owned(),
    })?;
    let changes = layers.diff(&meta, patch, private)?;
    out.answer(
        wire::diff(&meta, &changes),
        CommandResult::LayerDiff,
        diff_text,
    );
    Ok(0)
}

/// The text of `layer diff`: a summary, then one line per change (and its
/// patch, if asked for); for a layer of several directories, a heading
/// with its own summary before the changes of each.
fn diff_text(diff: &almost_protocol::Diff) -> String {
    let parts = diff.parts();
    let mut text = format!(
        "Layer {} over {}: {}\n",
        diff.id,
        super::shown_parts(parts),
        summary(&diff.changes)
    );
    let lines = |text: &mut String, changes: &[&Change]| {
        for c in changes {
            text.push_str(&change_line(c));
            text.push('\n');
            if let Some(p) = &c.patch {
                text.push_str(p);
            }
        }
    };
    if parts.len() == 1 {
        lines(&mut text, &diff.changes.iter().collect::<Vec<_>>());
        return text;
    }
    for part in parts {
        let mine: Vec<&Change> = diff
            .changes
            .iter()
            .filter(|c| c.path.starts_with(part))
            .collect();
        let owned: Vec<Change> = mine.iter().map(|c| (*c).clone()).collect();
        text.push_str(&format!("\n{}: {}\n", shown(part), summary(&owned)));
        lines(&mut text, &mine);
    }
    text
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
