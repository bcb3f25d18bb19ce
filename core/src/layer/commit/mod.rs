// SPDX-License-Identifier: GPL-3.0-or-later
//! Committing a layer into the tree beneath it, so that a crash at any point
//! leaves either the old tree or the new one, never a mix.
//!
//! 1. The expected result is captured from the layer's merged view (every
//!    entry the upper tree touches, and the listing of every directory it
//!    touches), then the layer is unmounted (refused while busy).
//! 2. A plan (one op per upper entry) is derived from the upper tree and the
//!    lower one, and written with the expectation to a journal.
//! 3. Each op is applied idempotently. The original of anything replaced or
//!    deleted is first moved (directories) or hard-linked (everything else)
//!    into a backup directory on the same filesystem, so nothing is copied
//!    and a full disk can always be rolled back from. New files are made
//!    under a temp name in the same directory (a second name of the upper
//!    file: `apply::link_upper`, which the upper tree keeps until the
//!    commit is kept) and renamed over; they are not synced one by one: the upper tree is synced before the first change,
//!    so a crash (even a power cut) before the one syncfs that ends this
//!    step is repaired by replaying the plan, and the journal moves on
//!    only after it.
//! 4. The result is compared with the expectation; then the backup becomes
//!    the undo data of this commit (its entry of the history, see
//!    `history.rs`) and the journal is removed.
//!
//! The next `almost` run after a crash finds the journal: it re-applies the
//! plan (every op is idempotent) and verifies; if that cannot succeed it
//! rolls back from the backup, and re-mounts the layer.
//!
//! A layer of several parts (directories) has one journal: one phase for
//! all of them, a plan, expectations and a backup (in that directory) per
//! part. Every part is applied and verified before the undo data is kept;
//! a failure in any rolls every part back. So a crash leaves every part old
//! or every part new.

mod apply;
mod history;
mod journal;
mod plan;
mod recovery;
mod select;
mod undo;
mod verify;

pub use history::{COMMITS_DIR, HistoryEntry, Record, kept_size};
pub use journal::{Expectation, Journal, Meta, Op, OpKind, PartPlan, Phase, parse_journal};
pub use select::{Choice, Needed, NeededWhy, Selection};

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{LayerMeta, Layers};
use crate::error::{Error, Result};
use crate::system::Progress;
use apply::{Committer, remove_any, sync_fs};
use verify::{capture, capture_knowing, compare};

const JOURNAL: &str = "commit.json";
/// Where an older almost kept the undo data of the last commit (brought
/// into the history, [`COMMITS_DIR`], when found).
pub const UNDO_DIR: &str = "/var/lib/almost/undo";
/// Where an older almost assembled the next undo data.
pub const UNDO_STAGE: &str = "/var/lib/almost/undo.new";
/// In the undo data: an undo has begun; says whether the tree is to be
/// locked at its end (decided before it unlocks anything).
const UNDO_STARTED: &str = "undoing";
/// In the undo data: the tree is back as before the commit (what differed,
/// one line each, if anything); only cleaning up is left.
const UNDO_RESTORED: &str = "restored";
/// Suffix of a backup being copied across filesystems for an undo.
const PARTIAL: &str = ".partial";

/// [`CommitReport::outcome`] of a commit that recovery found still
/// preparing and gave up, changing nothing, with the layer mounted again.
pub const OUTCOME_ABANDONED: &str = "abandoned";
/// The same, but the layer could not be mounted again (`layer mount`).
pub const OUTCOME_ABANDONED_UNMOUNTED: &str = "abandoned-unmounted";

/// What a finished commit (or undo, or recovery) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReport {
    pub id: String,
    pub path: PathBuf,
    /// Every directory of the layer, `path` first.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    pub applied: usize,
    pub outcome: String,
    /// A selective commit's: what it took and what it left in the layer.
    #[serde(default)]
    pub selection: Option<Selection>,
}

fn backup_name(layer: &LayerMeta) -> String {
    format!(".almost-backup-{}", layer.id)
}

fn tmp_name(index: usize) -> String {
    format!(".almost-tmp-{index}")
}

impl Layers<'_> {
    /// The committer of part `index` of a journal's layer.
    fn committer<'j>(&'j self, journal: &'j Journal, index: usize) -> Committer<'j> {
        let part = &journal.layer.parts()[index];
        let lower = self.sys.root.host(part);
        Committer {
            backup: lower.join(backup_name(&journal.layer)),
            lower,
            root: self.sys.root.fd(),
            lower_in_root: crate::paths::relative(part).to_owned(),
            upper_in_root: crate::paths::relative(Path::new(super::STORE))
                .join(&journal.layer.id)
                .join(Layers::numbered("upper", index)),
            ops: &journal.parts[index].ops,
        }
    }

    /// Commits a layer, all its parts as one. Refuses while its mount is
    /// busy.
    pub fn commit(&self, meta: &LayerMeta, progress: &Arc<Progress>) -> Result<CommitReport> {
        self.commit_with(meta, None, progress)
    }

    /// Commits the changes of a layer that `choice` selects, and what they
    /// need; the layer keeps the rest and is mounted again (empty, if
    /// nothing is left). The same journal, verification, recovery and undo
    /// as a whole commit (see `select.rs`). A path naming no change, or a
    /// selection of nothing, is refused with nothing done.
    pub fn commit_selected(
        &self,
        meta: &LayerMeta,
        choice: &Choice,
        progress: &Arc<Progress>,
    ) -> Result<CommitReport> {
        self.commit_with(meta, Some(choice), progress)
    }

    fn commit_with(
        &self,
        meta: &LayerMeta,
        choice: Option<&Choice>,
        progress: &Arc<Progress>,
    ) -> Result<CommitReport> {
        let asked = choice.map(|c| select::resolve(self, meta, c)).transpose()?;
        let relock = self.should_relock(meta)?;
        // When and for whom, for the history.
        self.note_commit(meta)?;
        // The merged view is the expectation. A layer a reboot left
        // unmounted (a commit at boot) is read through a view of its own,
        // not mounted over its tree, where it would be in use at once.
        self.apply_parts(meta, false, progress)?;
        let skip = backup_name(meta);
        let mut views: Vec<Option<PathBuf>> = Vec::new();
        let mut seen = || -> Result<Vec<(Vec<PathBuf>, Expectation)>> {
            let mut seen = Vec::new();
            for (index, part) in meta.parts().iter().enumerate() {
                let lower = self.sys.root.host(part);
                let view = if self.part_mounted(meta, index) {
                    None
                } else {
                    Some(self.mount_view(meta, index)?)
                };
                views.push(view.clone());
                let merged = view.as_deref().unwrap_or(&lower);
                // Every directory of the merged view: the tree's and the layer's.
                self.refuse_user_writable(part, merged, true)?;
                let upper = self.upper_of(&meta.id, index);
                let mut touched = super::diff::touched(&upper)
                    .map_err(|e| Error::io(format!("reading layer {}", meta.id), e))?;
                if let (Some(choice), Some(asked)) = (choice, &asked) {
                    // Only what the selection can take is read and hashed.
                    touched = select::candidates(&upper, touched, &asked[index], choice.except)
                        .map_err(|e| Error::io(format!("reading layer {}", meta.id), e))?;
                }
                let after = capture(merged, &touched, &skip)
                    .map_err(|e| Error::io("reading the layer's merged view", e))?;
                seen.push((touched, after));
            }
            Ok(seen)
        };
        let seen = seen();
        for view in views.iter().flatten() {
            self.unmount_view(view);
        }
        let seen = seen?;
        let mut journal = Journal {
            layer: meta.clone(),
            phase: Phase::Preparing,
            parts: seen
                .iter()
                .map(|(_, after)| PartPlan {
                    after: after.clone(),
                    ..PartPlan::default()
                })
                .collect(),
            relock,
            selection: None,
        };
        self.save_journal(&journal)?;
        let prepared = self.unmount(meta).and_then(|()| {
            let mut plans = Vec::new();
            for (index, part) in meta.parts().iter().enumerate() {
                let lower = self.sys.root.host(part);
                let upper = self.upper_of(&meta.id, index);
                // What a replay after a crash reads must be on disk before
                // the first change: the files written into the tree are not
                // synced one by one.
                sync_fs(&upper).map_err(|e| Error::io(format!("syncing layer {}", meta.id), e))?;
                let (ops, read) = plan::plan_knowing(&upper, &lower, &seen[index].1.entries)
                    .map_err(|e| Error::io(format!("planning the commit of {}", meta.id), e))?;
                let before = capture_knowing(&lower, &seen[index].0, &skip, &read)
                    .map_err(|e| Error::io("reading the tree beneath the layer", e))?;
                plans.push((ops, before));
            }
            Ok(plans)
        });
        // Of a selective commit: the chosen ops, and what they leave in
        // the tree (at their paths, in the directories they write into).
        let prepared = prepared.and_then(|mut plans| {
            if let (Some(choice), Some(asked)) = (choice, &asked) {
                let ops: Vec<Vec<Op>> = plans.iter().map(|(ops, _)| ops.clone()).collect();
                let (chosen, selection) = select::choose(meta, choice, asked, &ops)?;
                for (index, ops) in chosen.into_iter().enumerate() {
                    let part = &mut journal.parts[index];
                    part.after = select::expectation(&part.after, &plans[index].1, &ops);
                    plans[index].0 = ops;
                }
                journal.selection = Some(selection);
            }
            Ok(plans)
        });
        match prepared {
            Ok(plans) => {
                for (part, (ops, before)) in journal.parts.iter_mut().zip(plans) {
                    part.ops = ops;
                    part.before = before;
                }
                journal.phase = Phase::Applying;
                self.save_journal(&journal)?;
            }
            Err(e) => {
                self.abandon(&journal, true);
                return Err(e);
            }
        }
        self.finish(journal, progress, true)
    }

    /// Gives up a commit that changed nothing yet: the layer is mounted
    /// again as it was (the trees beneath are still unlocked), unless
    /// `remount` is false (at boot, which mounts the layers itself once it
    /// has done what it was asked to do with them). Returns whether it is
    /// mounted again.
    fn abandon(&self, journal: &Journal, remount: bool) -> bool {
        if !remount {
            let _ = fs::remove_file(self.journal_path(&journal.layer.id));
            return false;
        }
        let mounted = self
            .mount(&journal.layer)
            .map_err(|e| {
                tracing::warn!("layer {} could not be mounted again: {e}", journal.layer.id)
            })
            .is_ok();
        let _ = fs::remove_file(self.journal_path(&journal.layer.id));
        mounted
    }

    fn report(journal: &Journal, outcome: &str) -> CommitReport {
        CommitReport {
            id: journal.layer.id.clone(),
            path: journal.layer.path.clone(),
            paths: journal.layer.parts().to_vec(),
            applied: journal.op_count(),
            outcome: outcome.to_owned(),
            selection: journal.selection.clone(),
        }
    }

    /// Applies every part of a journal and verifies each; the first
    /// failure (with its kind) stops it.
    fn forward_all(&self, journal: &Journal, skip: &str) -> Option<(String, io::ErrorKind)> {
        for index in 0..journal.parts.len() {
            let c = self.committer(journal, index);
            if let Err(e) = c.forward() {
                // The kind goes with the reason: a full disk stays a full
                // disk (exit 11) after the roll-back.
                return Some((e.to_string(), e.kind()));
            }
        }
        for (index, part) in journal.parts.iter().enumerate() {
            let c = self.committer(journal, index);
            match compare(&c.lower, &part.after, skip) {
                Ok(wrong) if wrong.is_empty() => {}
                Ok(wrong) => {
                    return Some((
                        format!("the result differs from the layer: {}", wrong.join("; ")),
                        io::ErrorKind::Other,
                    ));
                }
                Err(e) => return Some((format!("verifying: {e}"), e.kind())),
            }
        }
        None
    }

    /// Drives a journal to its end: forward, verify, keep the undo data,
    /// finish; or, when that fails, back to the old trees with the layer
    /// mounted again. Every part goes the same way.
    fn finish(
        &self,
        mut journal: Journal,
        progress: &Arc<Progress>,
        remount: bool,
    ) -> Result<CommitReport> {
        let skip = backup_name(&journal.layer);
        let id = journal.layer.id.clone();
        let failure = match journal.phase {
            Phase::Preparing => {
                // Nothing was changed: rolled back by doing nothing but
                // mounting the layer again. Not "committed".
                let outcome = if self.abandon(&journal, remount) {
                    OUTCOME_ABANDONED
                } else {
                    OUTCOME_ABANDONED_UNMOUNTED
                };
                return Ok(Self::report(&journal, outcome));
            }
            Phase::Finishing => return self.finish_up(&journal, progress, remount),
            Phase::RollingBack => Some((
                "an earlier roll-back was interrupted".to_owned(),
                io::ErrorKind::Other,
            )),
            Phase::Applying => {
                if self.undo_holds(&journal) {
                    // A crash during the hand-over of the undo data, which
                    // begins only once every part is applied and verified:
                    // the trees are the new ones already. (Applied again, a
                    // part whose backup has moved into the undo data would
                    // back up its new files as the originals.)
                    None
                } else {
                    self.forward_all(&journal, &skip)
                }
            }
        };
        if let Some((reason, kind)) = failure {
            journal.phase = Phase::RollingBack;
            self.save_journal(&journal)?;
            for index in (0..journal.parts.len()).rev() {
                let c = self.committer(&journal, index);
                c.backward().map_err(|e| {
                    Error::io(
                        format!("rolling back the commit of layer {id} ({reason})"),
                        e,
                    )
                })?;
            }
            for index in 0..journal.parts.len() {
                let _ = remove_any(&self.committer(&journal, index).backup);
            }
            let _ = fs::remove_file(self.journal_path(&id));
            let remount = if remount {
                self.mount(&journal.layer)
            } else {
                Err(Error::Usage("left to the boot".to_owned()))
            };
            return Err(Error::io(
                format!(
                    "commit of layer {id} failed and was rolled back; the tree is as before{}",
                    if remount.is_ok() {
                        " and the layer is mounted again"
                    } else {
                        ""
                    }
                ),
                io::Error::new(kind, reason),
            ));
        }
        self.keep_undo(&journal)?;
        journal.phase = Phase::Finishing;
        self.save_journal(&journal)?;
        self.finish_up(&journal, progress, remount)
    }

    /// The last steps, each safe to repeat: remove the layer's upper trees
    /// (whose files the tree holds now), lock the trees again if they were,
    /// then remove the rest of the layer (its journal goes with it). A selective
    /// commit keeps the layer: the committed changes leave its upper trees,
    /// it is mounted again (not at boot, which mounts the layers itself)
    /// over its trees, still unlocked, and its journal goes.
    fn finish_up(
        &self,
        journal: &Journal,
        progress: &Arc<Progress>,
        remount: bool,
    ) -> Result<CommitReport> {
        if journal.selection.is_some() {
            // The trees stay unlocked beneath the layer, as they were.
            self.take_out_committed(journal)?;
            // A selective commit is one of the history like any other.
            self.prune_history();
            if remount {
                self.mount(&journal.layer)?;
            }
            let file = self.journal_path(&journal.layer.id);
            fs::remove_file(&file)
                .map_err(|e| Error::io(format!("removing {}", file.display()), e))?;
            return Ok(Self::report(journal, "committed"));
        }
        // The committed files are inodes of the upper trees (linked, not
        // copied: `apply::link_upper`): the layer's names of them go before
        // the trees are locked again, so that clearing the flags of the
        // layer to remove it can never reach the tree's files. (Each run of
        // this step removes them before it locks: once locked, no upper
        // tree is left.)
        for index in 0..journal.layer.parts().len() {
            self.remove_upper(&self.upper_of(&journal.layer.id, index))?;
        }
        if journal.relock {
            self.apply_parts(&journal.layer, true, progress)?;
        }
        // Past the point where a crash could apply the commit again (which
        // needs its undo data): older commits beyond `keep_commits` go.
        self.prune_history();
        self.remove_storage(&journal.layer.id, progress)?;
        Ok(Self::report(journal, "committed"))
    }

    /// Deletes a layer's upper tree after its commit, the entries at its
    /// top on rayon's threads (each a tree of its own); a flag set inside
    /// (which keeps an entry from being deleted, EPERM) is cleared only
    /// then, the trees beneath still unlocked.
    fn remove_upper(&self, upper: &Path) -> Result<()> {
        use rayon::prelude::*;
        let removed = match crate::layer::entry::sorted_names(upper) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(names) => names
                .par_iter()
                .try_for_each(|name| remove_any(&upper.join(name)))
                .and_then(|()| remove_any(upper)),
        };
        match removed {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => self.remove_tree(upper),
            done => done.map_err(|e| Error::io(format!("removing {}", upper.display()), e)),
        }
    }

    /// Deletes a tree of Almost's own, clearing flags first.
    fn remove_tree(&self, path: &Path) -> Result<()> {
        let _ = self.sys.apply_host_tree(path, false, &Progress::default());
        remove_any(path).map_err(|e| Error::io(format!("removing {}", path.display()), e))
    }
}
