// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer history`: the commits that can still be undone, newest
//! first, with who made them, what they changed and the space their kept
//! originals take.

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::Layers;
use almost_core::system::Progress;
use almost_protocol::{CommandResult, History, HistoryEntry};

use crate::commands::{Ctx, begin, layer_opening};

pub fn run(ctx: Ctx) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    let progress = Arc::new(Progress::default());
    // Under the state lock, after the recovery: an interrupted commit or
    // undo is finished first, an older almost's undo data brought in.
    let _act = begin(sys, out, bus, layer_opening(None), &progress)?;
    let layers = Layers::new(sys);
    let commits: Vec<HistoryEntry> = layers
        .history()
        .into_iter()
        .map(|e| {
            let r = e.record;
            HistoryEntry {
                id: r.id,
                time: r.time,
                uid: r.uid,
                user: r.user,
                paths: r.paths,
                added: r.added,
                changed: r.changed,
                deleted: r.deleted,
                size: r.size,
            }
        })
        .collect();
    let history = History {
        size: commits.iter().map(|c| c.size).sum(),
        commits,
        keep: sys.config.keep_commits,
    };
    out.answer(history, CommandResult::LayerHistory, text);
    Ok(0)
}

/// The text of `layer history`.
fn text(h: &History) -> String {
    if h.commits.is_empty() {
        return format!(
            "No commit to undo (the undo data of the last {} commits is kept: keep_commits).\n",
            h.keep
        );
    }
    let mut text = format!(
        "{:<10} {:<21} {:<12} {:>6} {:>8} {:>8} {:>10}  {}\n",
        "COMMIT", "TIME", "BY", "ADDED", "CHANGED", "DELETED", "KEPT", "PATHS"
    );
    for c in &h.commits {
        let by = match (&c.user, c.uid) {
            (Some(name), _) => name.clone(),
            (None, Some(uid)) => format!("uid {uid}"),
            (None, None) => "?".to_owned(),
        };
        text.push_str(&format!(
            "{:<10} {:<21} {:<12} {:>6} {:>8} {:>8} {:>10}  {}\n",
            c.id,
            c.time,
            by,
            c.added,
            c.changed,
            c.deleted,
            super::list::size_words(c.size),
            super::shown_parts(&c.paths)
        ));
    }
    text.push_str(&format!(
        "{} commits, their originals take {} (keep_commits = {}). `almost layer undo COMMIT` \
         takes one back.\n",
        h.commits.len(),
        super::list::size_words(h.size),
        h.keep
    ));
    text
}
