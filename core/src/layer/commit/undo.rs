// SPDX-License-Identifier: GPL-3.0-or-later
//! The undo data of the last commit: kept when a commit ends, played
//! backward by `layer undo`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::apply::{copy_tree, exists, remove_any, sync_fs};
use super::journal::{Journal, parse_journal};
use super::verify::{compare, differing};
use super::{
    CommitReport, PARTIAL, UNDO_DIR, UNDO_RESTORED, UNDO_STAGE, UNDO_STARTED, backup_name,
};
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::layer::Layers;
use crate::system::Progress;

/// Whether two journals are of the same commit: one layer, the same ops
/// in every part.
fn same_commit(a: &Journal, b: &Journal) -> bool {
    a.layer == b.layer
        && a.parts.len() == b.parts.len()
        && a.parts.iter().zip(&b.parts).all(|(x, y)| x.ops == y.ops)
}

/// Where the undo data keeps the saved originals of part `index`: `saved`
/// for the first (as before layers had parts), `saved-N` for the others.
fn saved_name(index: usize) -> String {
    if index == 0 {
        "saved".to_owned()
    } else {
        format!("saved-{index}")
    }
}

impl Layers<'_> {
    /// Whether the undo data of this very commit is already in place (in
    /// the stage or handed over): the commit went through.
    pub(super) fn undo_holds(&self, journal: &Journal) -> bool {
        [UNDO_STAGE, UNDO_DIR].iter().any(|dir| {
            let file = self.sys.root.host(Path::new(dir)).join("undo.json");
            fs::read(&file)
                .ok()
                .and_then(|b| parse_journal(&file, &self.sys.config, &b).ok())
                .is_some_and(|j| same_commit(&j, journal))
        })
    }

    /// Turns a commit's backups (one per part) into the undo data of the
    /// last commit. The new undo data is assembled in a stage (its
    /// description first, then the saved originals of every part) and only
    /// then replaces the old one, so a crash at any point leaves one
    /// complete set, and recovery can tell whether this commit's originals
    /// are safe.
    pub(super) fn keep_undo(&self, journal: &Journal) -> Result<()> {
        let undo = self.sys.root.host(Path::new(UNDO_DIR));
        let stage = self.sys.root.host(Path::new(UNDO_STAGE));
        let err = |what: &str, e: io::Error| Error::io(format!("keeping the undo data: {what}"), e);
        if self.stage_is(journal, &undo) {
            // Handed over already: a crash came after the last rename.
            return Ok(());
        }
        if exists(&stage) && !self.stage_is(journal, &stage) {
            self.remove_tree(&stage)?;
        }
        if !exists(&stage.join("undo.json")) {
            crate::layer::private_dir(&stage).map_err(|e| err("creating the stage", e))?;
            let bytes =
                serde_json::to_vec(journal).map_err(|e| err("encoding", io::Error::other(e)))?;
            write_atomic(&stage.join("undo.json"), &bytes)
                .map_err(|e| err("writing undo.json", e))?;
        }
        for index in 0..journal.parts.len() {
            let backup = self.committer(journal, index).backup;
            let saved = stage.join(saved_name(index));
            if exists(&backup) {
                if exists(&saved) {
                    // A copy across filesystems that a crash cut short.
                    self.remove_tree(&saved)?;
                }
                fs::rename(&backup, &saved)
                    .or_else(|_| {
                        copy_tree(&backup, &saved)?;
                        // Across filesystems: the copy, its directories too
                        // (one syncfs of the undo data's filesystem, not a
                        // fsync per file and directory), is on disk before
                        // the originals' only other copy goes.
                        sync_fs(&saved)?;
                        remove_any(&backup)
                    })
                    .map_err(|e| err("moving the saved originals", e))?;
            } else if !exists(&saved) {
                crate::layer::private_dir(&saved).map_err(|e| err("creating saved", e))?;
            }
        }
        if exists(&undo) {
            self.remove_tree(&undo)?;
        }
        fs::rename(&stage, &undo).map_err(|e| err("putting it in place", e))?;
        sync_fs(&undo).map_err(|e| err("syncing", e))
    }

    pub(super) fn stage_is(&self, journal: &Journal, stage: &Path) -> bool {
        let file = stage.join("undo.json");
        fs::read(&file)
            .ok()
            .and_then(|b| parse_journal(&file, &self.sys.config, &b).ok())
            .is_some_and(|j| same_commit(&j, journal))
    }

    /// Whether there is a commit to undo, and of what.
    pub fn last_commit(&self) -> Option<Journal> {
        let file = self.sys.root.host(Path::new(UNDO_DIR)).join("undo.json");
        let bytes = fs::read(&file).ok()?;
        parse_journal(&file, &self.sys.config, &bytes)
            .map_err(|e| tracing::warn!("ignoring the undo data: {e}"))
            .ok()
    }

    /// The layer whose commit an interrupted `layer undo` was taking back:
    /// its originals are (partly) back in the tree, or the undo is done but
    /// not cleaned up.
    pub fn interrupted_undo(&self) -> Option<String> {
        let journal = self.last_commit()?;
        let undo = self.sys.root.host(Path::new(UNDO_DIR));
        (exists(&undo.join(UNDO_STARTED)) || exists(&undo.join(UNDO_RESTORED)))
            .then_some(journal.layer.id)
    }

    /// Takes the last commit back: the saved originals return to the tree
    /// and what the commit added goes. Resumable: a crash at any point
    /// leaves a state the next `layer undo` (or the recovery every
    /// privileged `almost` run does) carries on from —
    ///
    /// 0. whether to lock the tree at the end is recorded in the undo data;
    /// 1. the saved originals move (one rename) from the undo data into a
    ///    backup beside the tree, or, across filesystems, are copied there
    ///    under a temporary name renamed when complete;
    /// 2. the commit's plan is played backward from that backup (each step
    ///    idempotent) and the tree compared with the one before the commit;
    /// 3. a marker records that the tree is back; then the backup and the
    ///    undo data are removed and the tree is locked again if the system
    ///    is.
    ///
    /// Before it begins, the tree must still be what the commit left at
    /// every path the commit touched (compared with the commit's own
    /// expectation: type, mode, owner, size, SHA-256, link target, device,
    /// xattrs, and the names in each directory it touched): what changed
    /// since (an `almost run -- apt …`, a later commit) would otherwise be
    /// thrown away. Refused, naming those paths, unless `force`.
    pub fn undo(&self, progress: &Arc<Progress>, force: bool) -> Result<CommitReport> {
        let journal = self.last_commit().ok_or_else(|| Error::InvalidPath {
            path: UNDO_DIR.to_owned(),
            reason: "there is no commit to undo".to_owned(),
        })?;
        // A selective commit's layer, still over the tree, is taken off.
        let _rest = self.rest_off(&journal)?;
        let undo = self.sys.root.host(Path::new(UNDO_DIR));
        let parts = journal.layer.parts();
        let skip = backup_name(&journal.layer);
        let restored = undo.join(UNDO_RESTORED);
        let started = undo.join(UNDO_STARTED);
        // Per part, directories whose names changed since the commit: with
        // `force`, the undo leaves what it never knew of, so they differ
        // after it.
        let mut renamed_dirs: Vec<Vec<String>> = vec![Vec::new(); parts.len()];
        if !exists(&started) && !exists(&restored) {
            let mut changed_paths = Vec::new();
            for (index, part) in parts.iter().enumerate() {
                let lower = self.sys.root.host(part);
                // Undo writes beneath the tree's directories as root, as a
                // commit does (also with `force`).
                self.refuse_user_writable(part, &lower, true)?;
                let changed = differing(&lower, &journal.parts[index].after, &skip)
                    .map_err(|e| Error::io("comparing the tree with the last commit", e))?;
                if force {
                    renamed_dirs[index] = changed
                        .into_iter()
                        .filter(|(_, listing, _)| *listing)
                        .map(|(_, _, what)| what)
                        .collect();
                } else {
                    changed_paths.extend(changed.iter().map(|(rel, listing, _)| {
                        let path = part.join(rel).display().to_string();
                        if *listing {
                            format!("{path}/ (names added or removed)")
                        } else {
                            path
                        }
                    }));
                }
            }
            if !changed_paths.is_empty() {
                return Err(Error::ChangedSinceCommit {
                    id: journal.layer.id.clone(),
                    paths: changed_paths,
                });
            }
        }
        // Decided once, before anything is unlocked: after a crash the
        // trees' own state no longer tells.
        let relock = match fs::read_to_string(&started) {
            Ok(text) => text.trim() == "relock",
            Err(_) => {
                let relock = self.should_relock(&journal.layer)?;
                write_atomic(&started, if relock { b"relock" } else { b"keep" })
                    .map_err(|e| Error::io("recording the undo", e))?;
                relock
            }
        };
        let mut wrong = Vec::new();
        if !exists(&restored) {
            self.apply_parts(&journal.layer, false, progress)?;
            for index in 0..parts.len() {
                let backup = self.committer(&journal, index).backup;
                if !exists(&backup) {
                    self.bring_back_saved(&undo.join(saved_name(index)), &backup)?;
                }
            }
            for index in (0..parts.len()).rev() {
                self.committer(&journal, index)
                    .backward()
                    .map_err(|e| Error::io("undoing the last commit", e))?;
            }
            for (index, part) in parts.iter().enumerate() {
                let lower = self.sys.root.host(part);
                let mut differs = compare(&lower, &journal.parts[index].before, &skip)
                    .map_err(|e| Error::io("verifying the undo", e))?;
                differs.retain(|w| !renamed_dirs[index].contains(w));
                wrong.extend(differs.into_iter().map(|w| {
                    if parts.len() > 1 {
                        format!("{}: {w}", part.display())
                    } else {
                        w
                    }
                }));
            }
            write_atomic(&restored, wrong.join("\n").as_bytes())
                .map_err(|e| Error::io("recording the undo", e))?;
        } else if let Ok(text) = fs::read_to_string(&restored) {
            // Carried on after a crash: the differences found then.
            wrong = text.lines().map(str::to_owned).collect();
        }
        for index in 0..parts.len() {
            let backup = self.committer(&journal, index).backup;
            if exists(&backup) {
                self.remove_tree(&backup)?;
            }
        }
        if relock {
            self.apply_parts(&journal.layer, true, progress)?;
        }
        // Out of sight at once (one rename into the store's trash), then
        // deleted: a crash cannot leave half the undo data looking like an
        // undo still to make.
        let trash = self.store().join(format!(
            "{}undo-{}",
            crate::layer::TRASH_PREFIX,
            journal.layer.id
        ));
        crate::layer::dir_with_mode(&self.store(), 0o755)
            .and_then(|()| fs::rename(&undo, &trash))
            .map_err(|e| Error::io("removing the undo data", e))?;
        self.empty_trash(progress)?;
        if !wrong.is_empty() {
            return Err(Error::io(
                "undo finished, but the tree differs from before the commit",
                io::Error::other(wrong.join("; ")),
            ));
        }
        Ok(Self::report(&journal, "undone"))
    }

    /// Step 1 of an undo: the saved originals become the backup the plan is
    /// played backward from. A rename where the undo data and the tree share
    /// a filesystem; else a copy made under a temporary name (a crash leaves
    /// no half backup that could pass for a whole one).
    pub(super) fn bring_back_saved(&self, saved: &Path, backup: &Path) -> Result<()> {
        let err = |e| Error::io("bringing back the saved originals", e);
        if !exists(saved) {
            return Err(err(io::Error::other(format!(
                "{} is missing: the undo data is incomplete (nothing was changed)",
                saved.display()
            ))));
        }
        if fs::rename(saved, backup).is_ok() {
            return Ok(());
        }
        let mut partial = backup.as_os_str().to_owned();
        partial.push(PARTIAL);
        let partial = PathBuf::from(partial);
        if exists(&partial) {
            self.remove_tree(&partial)?;
        }
        copy_tree(saved, &partial).map_err(err)?;
        sync_fs(&partial).map_err(err)?;
        fs::rename(&partial, backup).map_err(err)
    }
}
