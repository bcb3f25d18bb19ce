// SPDX-License-Identifier: GPL-3.0-or-later
//! The undo data of each commit: kept when a commit ends (an entry of
//! the history, see `history.rs`), played backward by `layer undo`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::apply::{copy_tree, exists, remove_any, sync_fs};
use super::history::{UNDO_JOURNAL, explained, note_undone, op_paths, overlap, undone_paths};
use super::journal::{Journal, parse_journal};
use super::verify::differing;
use super::{
    CommitReport, PARTIAL, UNDO_DIR, UNDO_RESTORED, UNDO_STAGE, UNDO_STARTED, backup_name,
};
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::layer::Layers;
use crate::system::Progress;

/// Whether two journals are of the same commit: one layer, the same ops
/// in every part.
pub(super) fn same_commit(a: &Journal, b: &Journal) -> bool {
    a.layer == b.layer
        && a.parts.len() == b.parts.len()
        && a.parts.iter().zip(&b.parts).all(|(x, y)| x.ops == y.ops)
}

/// Where the undo data keeps the saved originals of part `index`: `saved`
/// for the first (as before layers had parts), `saved-N` for the others.
pub(super) fn saved_name(index: usize) -> String {
    if index == 0 {
        "saved".to_owned()
    } else {
        format!("saved-{index}")
    }
}

impl Layers<'_> {
    /// Whether the undo data of this very commit is already in place (in
    /// its stage or handed over, or an older almost's stage or undo
    /// data): the commit went through.
    pub(super) fn undo_holds(&self, journal: &Journal) -> bool {
        let id = &self.commit_id(journal);
        [
            self.entry_dir(id),
            self.stage_dir(id),
            self.sys.root.host(Path::new(UNDO_STAGE)),
            self.sys.root.host(Path::new(UNDO_DIR)),
        ]
        .iter()
        .any(|dir| self.stage_is(journal, dir))
    }

    /// Turns a commit's backups (one per part) into its entry of the
    /// history. The entry is assembled in a stage (its description first,
    /// then the saved originals of every part, then its record) and only
    /// then renamed into place, so a crash at any point leaves whole
    /// entries, and recovery can tell whether this commit's originals are
    /// safe. Older entries are removed later, by `prune_history`.
    pub(super) fn keep_undo(&self, journal: &Journal) -> Result<()> {
        let id = &self.commit_id(journal);
        let entry = self.entry_dir(id);
        let stage = self.stage_dir(id);
        let err = |what: &str, e: io::Error| Error::io(format!("keeping the undo data: {what}"), e);
        if self.stage_is(journal, &entry) {
            // Handed over already: a crash came after the last rename.
            return Ok(());
        }
        let commits = self.commits_dir();
        crate::layer::private_dir(&commits).map_err(|e| err("creating the history", e))?;
        // An older almost was making this commit's undo data when it
        // stopped: its stage is this one's.
        let legacy_stage = self.sys.root.host(Path::new(UNDO_STAGE));
        if !exists(&stage) && self.stage_is(journal, &legacy_stage) {
            fs::rename(&legacy_stage, &stage).map_err(|e| err("taking over the stage", e))?;
        }
        // The older almost's last commit is older than this one (or is
        // this one, handed over already).
        self.upgrade_legacy()?;
        if self.stage_is(journal, &entry) {
            return Ok(());
        }
        if exists(&stage) && !self.stage_is(journal, &stage) {
            self.remove_tree(&stage)?;
        }
        if !exists(&stage.join(UNDO_JOURNAL)) {
            crate::layer::private_dir(&stage).map_err(|e| err("creating the stage", e))?;
            let bytes =
                serde_json::to_vec(journal).map_err(|e| err("encoding", io::Error::other(e)))?;
            write_atomic(&stage.join(UNDO_JOURNAL), &bytes)
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
        self.hand_over(&stage, journal)
    }

    pub(super) fn stage_is(&self, journal: &Journal, stage: &Path) -> bool {
        let file = stage.join("undo.json");
        fs::read(&file)
            .ok()
            .and_then(|b| parse_journal(&file, &self.sys.config, &b).ok())
            .is_some_and(|j| same_commit(&j, journal))
    }

    /// Whether there is a commit to undo, and of what: the newest of the
    /// history (or an older almost's undo data not brought into it yet).
    pub fn last_commit(&self) -> Option<Journal> {
        let dir = match self.history().into_iter().next() {
            Some(entry) => entry.dir,
            None => self.sys.root.host(Path::new(UNDO_DIR)),
        };
        if !exists(&dir.join(UNDO_JOURNAL)) {
            return None;
        }
        self.entry_journal(&dir)
            .map_err(|e| tracing::warn!("ignoring the undo data: {e}"))
            .ok()
    }

    /// The commit an interrupted `layer undo` was taking back: its
    /// originals are (partly) back in the tree, or the undo is done but
    /// not cleaned up.
    pub fn interrupted_undo(&self) -> Option<String> {
        if let Some(entry) = self.undo_under_way() {
            return Some(entry.record.id);
        }
        // An older almost's, until the recovery brings it into the history.
        let undo = self.sys.root.host(Path::new(UNDO_DIR));
        if !(exists(&undo.join(UNDO_STARTED)) || exists(&undo.join(UNDO_RESTORED))) {
            return None;
        }
        self.entry_journal(&undo).ok().map(|j| j.layer.id)
    }

    /// Takes a commit back (`commit`: its id; `None`: the newest): the
    /// saved originals return to the tree and what the commit added goes.
    /// An older commit can be taken back when no later one touched the
    /// same paths (see `history::overlap`); otherwise it is refused,
    /// naming the later ones, newest first. Resumable: a crash at any
    /// point leaves a state the next `layer undo` (or the recovery every
    /// privileged `almost` run does) carries on from —
    ///
    /// 0. whether to lock the tree at the end is recorded in the entry;
    /// 1. the saved originals move (one rename) from the entry into a
    ///    backup beside the tree, or, across filesystems, are copied there
    ///    under a temporary name renamed when complete;
    /// 2. the commit's plan is played backward from that backup (each step
    ///    idempotent) and the tree compared with the one before the commit;
    /// 3. a marker records that the tree is back; then the backup and the
    ///    entry are removed and the tree is locked again if the system is.
    ///
    /// Before it begins, the tree must still be what the commit left at
    /// every path the commit touched (compared with the commit's own
    /// expectation: type, mode, owner, size, SHA-256, link target, device,
    /// xattrs, and the names in each directory it touched), but for what
    /// later commits of the history did there: what changed since by other
    /// means (an `almost run -- apt …`) would otherwise be thrown away.
    /// Refused, naming those paths, unless `force`.
    pub fn undo(
        &self,
        commit: Option<&str>,
        progress: &Arc<Progress>,
        force: bool,
    ) -> Result<CommitReport> {
        if self.legacy_pending() {
            self.upgrade_legacy()?;
        }
        let history = self.history();
        let position = match commit {
            None => (!history.is_empty()).then_some(0),
            Some(id) => history.iter().position(|e| e.record.id == id),
        };
        let Some(position) = position else {
            return Err(Error::InvalidPath {
                path: commit.unwrap_or("undo").to_owned(),
                reason: match commit {
                    None => "there is no commit to undo".to_owned(),
                    Some(_) => "no such commit in the history (`almost layer history` lists them)"
                        .to_owned(),
                },
            });
        };
        let undo = history[position].dir.clone();
        let commit_id = history[position].record.id.clone();
        let journal = self.entry_journal(&undo)?;
        // A selective commit's layer, still over the tree, is taken off.
        let _rest = self.rest_off(&journal)?;
        // The later commits, newest first, and the paths their ops act on.
        let mut later = Vec::new();
        for entry in &history[..position] {
            let j = self.entry_journal(&entry.dir)?;
            later.push((entry.record.id.clone(), op_paths(&j)));
        }
        // What later commits did, and what the undos of older commits
        // since this one was made took away: both differ from this
        // commit's expectations, and neither is a change by other means.
        let mut later_paths: Vec<(PathBuf, bool)> =
            later.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
        later_paths.extend(undone_paths(&undo).map_err(|e| Error::io("reading the undo data", e))?);
        let parts = journal.layer.parts();
        let skip = backup_name(&journal.layer);
        let restored = undo.join(UNDO_RESTORED);
        let started = undo.join(UNDO_STARTED);
        // Per part, directories whose names changed since the commit: with
        // `force`, the undo leaves what it never knew of, so they differ
        // after it.
        let mut renamed_dirs: Vec<Vec<String>> = vec![Vec::new(); parts.len()];
        if !exists(&started) && !exists(&restored) {
            let mine = op_paths(&journal);
            let blocking: Vec<String> = later
                .iter()
                .filter(|(_, theirs)| overlap(&mine, theirs))
                .map(|(id, _)| id.clone())
                .collect();
            if !blocking.is_empty() {
                return Err(Error::LaterCommits {
                    id: commit_id.clone(),
                    later: blocking,
                });
            }
            let mut changed_paths = Vec::new();
            for (index, part) in parts.iter().enumerate() {
                let lower = self.sys.root.host(part);
                // Undo writes beneath the tree's directories as root, as a
                // commit does (also with `force`).
                self.refuse_user_writable(part, &lower, true)?;
                let changed = Self::unexplained(
                    &lower,
                    part,
                    &journal.parts[index].after,
                    &skip,
                    &later_paths,
                )
                .map_err(|e| Error::io("comparing the tree with the commit", e))?;
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
                    .map_err(|e| Error::io("undoing the commit", e))?;
            }
            for (index, part) in parts.iter().enumerate() {
                let lower = self.sys.root.host(part);
                let differs = Self::unexplained(
                    &lower,
                    part,
                    &journal.parts[index].before,
                    &skip,
                    &later_paths,
                )
                .map_err(|e| Error::io("verifying the undo", e))?;
                wrong.extend(
                    differs
                        .into_iter()
                        .map(|(_, _, w)| w)
                        .filter(|w| !renamed_dirs[index].contains(w))
                        .map(|w| {
                            if parts.len() > 1 {
                                format!("{}: {w}", part.display())
                            } else {
                                w
                            }
                        }),
                );
            }
            write_atomic(&restored, wrong.join("\n").as_bytes())
                .map_err(|e| Error::io("recording the undo", e))?;
        } else if let Ok(text) = fs::read_to_string(&restored) {
            // Carried on after a crash: the differences found then.
            wrong = text.lines().map(str::to_owned).collect();
        }
        // The later commits' expectations show this one's changes.
        let mine = op_paths(&journal);
        for entry in &history[..position] {
            note_undone(&entry.dir, &commit_id, &mine)
                .map_err(|e| Error::io("recording the undo in the later commits", e))?;
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
        // Out of sight at once (one rename into the history's trash), then
        // deleted: a crash cannot leave half the undo data looking like an
        // undo still to make.
        self.drop_entry(&undo, &commit_id)?;
        if !wrong.is_empty() {
            return Err(Error::io(
                "undo finished, but the tree differs from before the commit",
                io::Error::other(wrong.join("; ")),
            ));
        }
        Ok(Self::report(&journal, "undone"))
    }

    /// Where `lower` (the host path of `part`) differs from `exp`, but for
    /// what `later` commits did: an entry they act on (or below a directory
    /// they made, replaced or deleted), names in a directory that are
    /// theirs. Each as `differing` gives it (relative path, whether names
    /// differ, what).
    fn unexplained(
        lower: &Path,
        part: &Path,
        exp: &super::journal::Expectation,
        skip: &str,
        later: &[(PathBuf, bool)],
    ) -> io::Result<Vec<(PathBuf, bool, String)>> {
        let mut out = Vec::new();
        for (rel, listing, what) in differing(lower, exp, skip)? {
            let path = part.join(&rel);
            if !listing {
                if !explained(later, &path) {
                    out.push((rel, listing, what));
                }
                continue;
            }
            let want = exp.listings.get(&rel).cloned().unwrap_or_default();
            let mut got: Vec<String> = match fs::read_dir(lower.join(&rel)) {
                Ok(read) => read
                    .map(|e| e.map(|e| almost_protocol::path::encode_name(&e.file_name())))
                    .collect::<io::Result<_>>()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            got.retain(|n| n != skip);
            let odd = got
                .iter()
                .filter(|n| !want.contains(n))
                .chain(want.iter().filter(|n| !got.contains(n)))
                .any(|name| {
                    almost_protocol::path::decode(name)
                        .map(|n| !explained(later, &path.join(n)))
                        .unwrap_or(true)
                });
            if odd {
                out.push((rel, listing, what));
            }
        }
        Ok(out)
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
