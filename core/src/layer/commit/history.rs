// SPDX-License-Identifier: GPL-3.0-or-later
//! The history of commits: every commit keeps its undo data in a directory
//! of its own, `/var/lib/almost/commits/<id>/`. A commit's id is its
//! layer's, or, for a later selective commit of the same layer, the
//! layer's with a suffix (`0badc0de-1f2e`):
//!
//! - `undo.json`: the commit's journal (its plan and expectations);
//! - `saved`, `saved-N`: the originals it replaced or deleted, per part;
//! - `record.json`: when, for whom, the layer's paths, the counts, and
//!   the size of the kept originals;
//! - `undone-<id>.json`: the paths of an older commit undone since;
//! - `undoing`, `restored`: the markers of an undo under way.
//!
//! An entry is assembled in a stage (`.new-<id>`) and renamed into place
//! whole; one leaves (renamed to `.trash-<id>`, then deleted) when it is
//! undone or falls out of the newest `keep_commits`, which happens only
//! once the new entry is complete and its commit past the point where a
//! crash could apply it again. The undo data of an older almost
//! (`/var/lib/almost/undo`, and the stage `undo.new` an interrupted commit
//! left) becomes the newest entry when this one first runs as root.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::apply::{exists, sync_fs};
use super::journal::{Journal, OpKind, parse_journal};
use super::{UNDO_DIR, UNDO_RESTORED, UNDO_STAGE, UNDO_STARTED};
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::layer::{LayerMeta, Layers, entry};

/// Where every commit's undo data is kept, one directory per commit.
pub const COMMITS_DIR: &str = "/var/lib/almost/commits";
/// In an entry: what it is (see [`Record`]).
const RECORD: &str = "record.json";
/// In an entry: the commit's journal.
pub(super) const UNDO_JOURNAL: &str = "undo.json";
/// In a layer's directory while it is committed: when, and for whom.
const NOTE: &str = "committed-by.json";
/// An entry being assembled.
const STAGE_PREFIX: &str = ".new-";
/// An entry being deleted.
const TRASH_PREFIX: &str = ".trash-";
/// In an entry: the paths of an older commit undone after this one was
/// made (`undone-<id>.json`), which this one's expectations still show.
const UNDONE_PREFIX: &str = "undone-";

/// When a commit began, and for whom (noted before it changes anything,
/// so that a commit finished by a recovery keeps its author).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Note {
    /// The commit's id (absent: the layer's).
    #[serde(default)]
    commit: Option<String>,
    time: String,
    uid: u32,
    user: Option<String>,
}

/// What one entry of the history is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Its place in the history: each entry's is higher than every older
    /// one's.
    pub seq: u64,
    /// When it was committed (RFC 3339, UTC).
    pub time: String,
    /// Whom it was committed for (pkexec's or sudo's caller, else the uid
    /// almost ran as); `None` for an older almost's undo data.
    pub uid: Option<u32>,
    pub user: Option<String>,
    #[serde(with = "almost_protocol::path::list")]
    pub paths: Vec<PathBuf>,
    pub added: u64,
    pub changed: u64,
    pub deleted: u64,
    /// Bytes its kept originals take (blocks, each inode once).
    pub size: u64,
}

/// One commit that can be undone.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub record: Record,
    /// Its directory (on the host).
    pub dir: PathBuf,
}

/// Whether `name` can be a commit's (a layer's) id.
fn is_id(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The counts of a commit: entries added, changed and deleted.
fn counts(journal: &Journal) -> (u64, u64, u64) {
    let (mut added, mut changed, mut deleted) = (0, 0, 0);
    for op in journal.parts.iter().flat_map(|p| &p.ops) {
        match op.kind {
            OpKind::Delete => deleted += 1,
            OpKind::MakeDir => added += 1,
            OpKind::Write | OpKind::Link if !op.existed => added += 1,
            _ => changed += 1,
        }
    }
    (added, changed, deleted)
}

/// The space the originals kept in `dir` take: the allocated blocks of
/// every `saved*` directory and everything below, each inode once (what
/// `du -s -B1 saved saved-1 …` says).
pub fn kept_size(dir: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut count = |meta: &fs::Metadata| {
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
    };
    for name in entry::sorted_names(dir)? {
        if !name.as_encoded_bytes().starts_with(b"saved") {
            continue;
        }
        let top = dir.join(&name);
        let meta = fs::symlink_metadata(&top)?;
        count(&meta);
        if meta.is_dir() {
            entry::preorder(&top, (), |rel, ()| {
                let meta = fs::symlink_metadata(top.join(rel))?;
                count(&meta);
                Ok(meta.is_dir().then_some(()))
            })?;
        }
    }
    Ok(total)
}

/// Whether `ancestor` is `path` or a directory above it.
fn covers(ancestor: &Path, path: &Path) -> bool {
    path.starts_with(ancestor)
}

/// The paths (inside the root) a commit's ops act on, with whether the op
/// acts on what lies below too (anything but a directory's metadata).
pub(super) fn op_paths(journal: &Journal) -> Vec<(PathBuf, bool)> {
    journal
        .layer
        .parts()
        .iter()
        .zip(&journal.parts)
        .flat_map(|(part, plan)| {
            plan.ops
                .iter()
                .map(move |op| (part.join(&op.rel), op.kind != OpKind::UpdateDir))
        })
        .collect()
}

/// Whether two commits touched the same paths: an op of one at a path an
/// op of the other acts on, or below a directory the other made, replaced
/// or deleted. (Two updates of one directory's metadata are the same path
/// too: undoing the older would put back what the later replaced.)
pub(super) fn overlap(a: &[(PathBuf, bool)], b: &[(PathBuf, bool)]) -> bool {
    let mut below_a: Vec<&Path> = a
        .iter()
        .filter(|(_, d)| *d)
        .map(|(p, _)| p.as_path())
        .collect();
    below_a.sort();
    let set_a: HashSet<&Path> = a.iter().map(|(p, _)| p.as_path()).collect();
    let set_b: HashSet<&Path> = b.iter().map(|(p, _)| p.as_path()).collect();
    let subtree_of = |tops: &[&Path], path: &Path| {
        path.ancestors()
            .skip(1)
            .any(|anc| tops.binary_search(&anc).is_ok())
    };
    let mut below_b: Vec<&Path> = b
        .iter()
        .filter(|(_, d)| *d)
        .map(|(p, _)| p.as_path())
        .collect();
    below_b.sort();
    b.iter()
        .any(|(p, _)| set_a.contains(p.as_path()) || subtree_of(&below_a, p))
        || a.iter()
            .any(|(p, _)| set_b.contains(p.as_path()) || subtree_of(&below_b, p))
}

/// Whether a difference at `path` (inside the root) is the doing of one of
/// `later` commits: one of them acts on it, or on a directory above it
/// that it made, replaced or deleted.
pub(super) fn explained(later: &[(PathBuf, bool)], path: &Path) -> bool {
    later
        .iter()
        .any(|(p, below)| p == path || (*below && covers(p, path)))
}

/// Notes in the entry `dir` of a later commit that an older commit `id`,
/// whose ops act on `paths`, was undone: what that undo took away is in
/// the later commit's expectations, and not to be held against it when it
/// is undone in turn. Safe to repeat.
pub(super) fn note_undone(dir: &Path, id: &str, paths: &[(PathBuf, bool)]) -> io::Result<()> {
    let encoded: Vec<(String, bool)> = paths
        .iter()
        .map(|(p, below)| (almost_protocol::path::encode(p), *below))
        .collect();
    let bytes = serde_json::to_vec(&encoded).map_err(io::Error::other)?;
    write_atomic(&dir.join(format!("{UNDONE_PREFIX}{id}.json")), &bytes)
}

/// What [`note_undone`] noted in an entry: the paths of the older commits
/// undone since it was made. A note that does not read is an error: the
/// undo would otherwise refuse for a reason it cannot name.
pub(super) fn undone_paths(dir: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    for name in entry::sorted_names(dir)? {
        let Some(text) = name.to_str() else { continue };
        if !(text.starts_with(UNDONE_PREFIX) && text.ends_with(".json")) {
            continue;
        }
        let bytes = fs::read(dir.join(&name))?;
        let listed: Vec<(String, bool)> = serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::other(format!("{}: {e}", dir.join(&name).display())))?;
        for (path, below) in listed {
            let path = almost_protocol::path::decode(&path).map_err(|e| {
                io::Error::other(format!("{}: {path:?}: {e}", dir.join(&name).display()))
            })?;
            out.push((path, below));
        }
    }
    Ok(out)
}

impl Layers<'_> {
    pub fn commits_dir(&self) -> PathBuf {
        self.sys.root.host(Path::new(COMMITS_DIR))
    }

    pub(super) fn entry_dir(&self, id: &str) -> PathBuf {
        self.commits_dir().join(id)
    }

    pub(super) fn stage_dir(&self, id: &str) -> PathBuf {
        self.commits_dir().join(format!("{STAGE_PREFIX}{id}"))
    }

    /// Notes when a commit begins, and for whom, and gives it its id: the
    /// layer's, unless a commit of that id (a selective commit of this
    /// layer) is in the history already.
    pub(super) fn note_commit(&self, meta: &LayerMeta) -> Result<()> {
        let uid = crate::audit::Caller::current().for_uid();
        let taken = |id: &str| exists(&self.entry_dir(id)) || exists(&self.stage_dir(id));
        let mut commit = meta.id.clone();
        while taken(&commit) {
            commit = format!("{}-{:04x}", meta.id, fastrand::u16(..));
        }
        let note = Note {
            commit: Some(commit),
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            uid,
            user: crate::audit::user_name(uid),
        };
        let file = self.dir(&meta.id).join(NOTE);
        let bytes = serde_json::to_vec(&note)
            .map_err(|e| Error::io("encoding the commit's note", io::Error::other(e)))?;
        write_atomic(&file, &bytes).map_err(|e| Error::io(format!("writing {}", file.display()), e))
    }

    fn read_note(&self, id: &str) -> Option<Note> {
        let bytes = fs::read(self.dir(id).join(NOTE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The id of the commit a journal is of: what its note says, else
    /// (an older almost's commit) its layer's.
    pub(super) fn commit_id(&self, journal: &Journal) -> String {
        self.read_note(&journal.layer.id)
            .and_then(|n| n.commit)
            .filter(|id| is_id(id) && id.starts_with(journal.layer.id.as_str()))
            .unwrap_or_else(|| journal.layer.id.clone())
    }

    /// Reads an entry's journal, checked as input.
    pub(super) fn entry_journal(&self, dir: &Path) -> Result<Journal> {
        let file = dir.join(UNDO_JOURNAL);
        let bytes =
            fs::read(&file).map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
        parse_journal(&file, &self.sys.config, &bytes)
    }

    fn read_record(dir: &Path) -> Option<Record> {
        let bytes = fs::read(dir.join(RECORD)).ok()?;
        serde_json::from_slice(&bytes)
            .map_err(|e| tracing::warn!("ignoring {}: {e}", dir.join(RECORD).display()))
            .ok()
    }

    /// The commits that can be undone, newest first. Entries that are not
    /// whole (no record, or one of another id) are left out, with a
    /// warning.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let dir = self.commits_dir();
        let Ok(names) = entry::sorted_names(&dir) else {
            return Vec::new();
        };
        let mut entries: Vec<HistoryEntry> = names
            .into_iter()
            .filter_map(|name| {
                let name = name.to_str()?.to_owned();
                if !is_id(&name) {
                    return None;
                }
                let dir = dir.join(&name);
                let record = Self::read_record(&dir)?;
                if record.id != name {
                    tracing::warn!(
                        "ignoring {}: it records commit {}",
                        dir.display(),
                        record.id
                    );
                    return None;
                }
                Some(HistoryEntry { record, dir })
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.record.seq));
        entries
    }

    /// The id of the newest commit (what `layer undo` takes back by
    /// default), also an older almost's not brought into the history yet.
    pub fn last_commit_id(&self) -> Option<String> {
        match self.history().into_iter().next() {
            Some(entry) => Some(entry.record.id),
            None => self.last_commit().map(|j| j.layer.id),
        }
    }

    /// The journal of commit `id` of the history (or of an older almost's
    /// undo data not brought into it yet), if it is there.
    pub fn commit_journal(&self, id: &str) -> Option<Journal> {
        let Some(entry) = self.history().into_iter().find(|e| e.record.id == id) else {
            return self.last_commit().filter(|j| j.layer.id == id);
        };
        self.entry_journal(&entry.dir)
            .map_err(|e| tracing::warn!("ignoring the undo data of commit {id}: {e}"))
            .ok()
    }

    fn next_seq(&self) -> u64 {
        self.history().first().map_or(1, |e| e.record.seq + 1)
    }

    /// Writes the record of the undo data in `dir` (a stage, or an older
    /// almost's undo data), unless it has one.
    fn write_record(&self, dir: &Path, journal: &Journal) -> Result<()> {
        if exists(&dir.join(RECORD)) {
            return Ok(());
        }
        let err = |e| Error::io(format!("recording the commit in {}", dir.display()), e);
        let (added, changed, deleted) = counts(journal);
        let note = self.read_note(&journal.layer.id);
        let time = match &note {
            Some(n) => n.time.clone(),
            // An older almost's undo data: when it was written.
            None => fs::metadata(dir.join(UNDO_JOURNAL))
                .and_then(|m| m.modified())
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .map_err(err)?,
        };
        let record = Record {
            id: self.commit_id(journal),
            seq: self.next_seq(),
            time,
            uid: note.as_ref().map(|n| n.uid),
            user: note.and_then(|n| n.user),
            paths: journal.layer.parts().to_vec(),
            added,
            changed,
            deleted,
            size: kept_size(dir).map_err(err)?,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| err(io::Error::other(e)))?;
        write_atomic(&dir.join(RECORD), &bytes).map_err(err)
    }

    /// Puts a stage whose undo data is whole in place as the newest entry.
    pub(super) fn hand_over(&self, stage: &Path, journal: &Journal) -> Result<()> {
        let err = |e| Error::io("keeping the undo data: putting it in place", e);
        self.write_record(stage, journal)?;
        let entry = self.entry_dir(&self.commit_id(journal));
        if exists(&entry) {
            return Err(err(io::Error::other(format!(
                "{} exists already: another commit had this id",
                entry.display()
            ))));
        }
        fs::rename(stage, &entry).map_err(err)?;
        sync_fs(&entry).map_err(err)
    }

    /// Whether an older almost left undo data to bring into the history.
    pub(super) fn legacy_pending(&self) -> bool {
        [UNDO_DIR, UNDO_STAGE]
            .iter()
            .any(|d| exists(&self.sys.root.host(Path::new(d))))
    }

    /// Brings an older almost's undo data into the history: the last
    /// commit's (`/var/lib/almost/undo`) becomes the newest entry, with an
    /// undo it had begun; a stage (`undo.new`) becomes one after it when it
    /// is whole and no interrupted commit is still making it (that commit's
    /// recovery takes it over), else goes. Each step is one rename of a
    /// directory whose record was written first: safe to repeat.
    pub(super) fn upgrade_legacy(&self) -> Result<()> {
        let commits = self.commits_dir();
        let mkdir = || {
            crate::layer::private_dir(&commits)
                .map_err(|e| Error::io(format!("creating {}", commits.display()), e))
        };
        let undo = self.sys.root.host(Path::new(UNDO_DIR));
        if exists(&undo) {
            match self.entry_journal(&undo) {
                Ok(journal) if !exists(&self.entry_dir(&self.commit_id(&journal))) => {
                    tracing::warn!(
                        "keeping the undo data of an older almost as commit {}",
                        journal.layer.id
                    );
                    mkdir()?;
                    self.hand_over(&undo, &journal)?;
                }
                Ok(journal) => tracing::warn!(
                    "not bringing {} into the history: commit {} is there already",
                    undo.display(),
                    journal.layer.id
                ),
                Err(e) => tracing::warn!("ignoring the undo data: {e}"),
            }
        }
        let stage = self.sys.root.host(Path::new(UNDO_STAGE));
        if exists(&stage) {
            let journal = self.entry_journal(&stage).ok();
            let in_progress = journal.as_ref().is_some_and(|j| {
                let file = self.journal_path(&j.layer.id);
                fs::read(&file)
                    .ok()
                    .and_then(|b| parse_journal(&file, &self.sys.config, &b).ok())
                    .is_some_and(|c| super::undo::same_commit(&c, j))
            });
            if in_progress {
                return Ok(());
            }
            let whole = journal.filter(|j| {
                (0..j.parts.len()).all(|i| exists(&stage.join(super::undo::saved_name(i))))
                    && !exists(&self.entry_dir(&self.commit_id(j)))
            });
            match whole {
                Some(journal) => {
                    mkdir()?;
                    self.hand_over(&stage, &journal)?;
                }
                None => self.remove_tree(&stage)?,
            }
        }
        Ok(())
    }

    /// The entry an interrupted undo was taking back, if any.
    pub(super) fn undo_under_way(&self) -> Option<HistoryEntry> {
        self.history()
            .into_iter()
            .find(|e| exists(&e.dir.join(UNDO_STARTED)) || exists(&e.dir.join(UNDO_RESTORED)))
    }

    /// Takes an entry out of the history: out of sight at once (one
    /// rename), then deleted.
    pub(super) fn drop_entry(&self, dir: &Path, id: &str) -> Result<()> {
        let trash = self.commits_dir().join(format!("{TRASH_PREFIX}{id}"));
        fs::rename(dir, &trash)
            .map_err(|e| Error::io(format!("removing the undo data of commit {id}"), e))?;
        self.empty_history_trash()
    }

    /// Deletes what a crash left of removed entries, and stages no commit
    /// is making any more: while a commit's journal is there (its stage
    /// may be named by a commit id that is not its layer's), none is
    /// touched.
    pub(super) fn empty_history_trash(&self) -> Result<()> {
        let dir = self.commits_dir();
        let Ok(names) = entry::sorted_names(&dir) else {
            return Ok(());
        };
        let committing = self.interrupted_commit().is_some();
        for name in names {
            let Some(text) = name.to_str() else { continue };
            let stale_stage = text.starts_with(STAGE_PREFIX) && !committing;
            if text.starts_with(TRASH_PREFIX) || stale_stage {
                self.remove_tree(&dir.join(&name))?;
            }
        }
        Ok(())
    }

    /// Whether a crash left removed entries or stale stages behind.
    pub(super) fn history_trash(&self) -> bool {
        entry::sorted_names(&self.commits_dir()).is_ok_and(|names| {
            names.iter().any(|n| {
                n.to_str().is_some_and(|t| {
                    t.starts_with(TRASH_PREFIX)
                        || (t.starts_with(STAGE_PREFIX) && self.interrupted_commit().is_none())
                })
            })
        })
    }

    /// Keeps the newest `keep_commits` entries' undo data and removes the
    /// rest (never one whose undo is under way). Run once a commit is past
    /// the point where a crash could apply it again; a failure is said
    /// and changes nothing else.
    pub(super) fn prune_history(&self) {
        let keep = self.sys.config.keep_commits as usize;
        for entry in self.history().into_iter().skip(keep) {
            if exists(&entry.dir.join(UNDO_STARTED)) || exists(&entry.dir.join(UNDO_RESTORED)) {
                continue;
            }
            if let Err(e) = self.drop_entry(&entry.dir, &entry.record.id) {
                tracing::warn!("the undo data of commit {} stays: {e}", entry.record.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(list: &[(&str, bool)]) -> Vec<(PathBuf, bool)> {
        list.iter().map(|(p, d)| (PathBuf::from(p), *d)).collect()
    }

    // Checks when two commits touch the same paths: the same path (also two
    // metadata updates of one directory), a path below a directory the
    // other made, replaced or deleted; not a path below a directory whose
    // metadata alone the other changed, nor disjoint paths, nor a sibling
    // whose name only starts the same.
    #[test]
    fn overlap_is_by_path_and_subtree() {
        let a = ops(&[("/usr/lib/a", true), ("/usr/lib", false)]);
        assert!(overlap(&a, &ops(&[("/usr/lib/a", true)])));
        assert!(overlap(&a, &ops(&[("/usr/lib", false)])));
        assert!(!overlap(&a, &ops(&[("/usr/lib/b", true)])));
        assert!(!overlap(&a, &ops(&[("/usr/share/x", true)])));
        assert!(overlap(
            &ops(&[("/usr/lib/d", true)]),
            &ops(&[("/usr/lib/d/x", true)])
        ));
        assert!(overlap(
            &ops(&[("/usr/lib/d/x", true)]),
            &ops(&[("/usr/lib/d", true)])
        ));
        assert!(!overlap(
            &ops(&[("/usr/lib/d", true)]),
            &ops(&[("/usr/lib/dx", true)])
        ));
        assert!(!overlap(
            &ops(&[("/usr/lib", false)]),
            &ops(&[("/usr/lib/x", true)])
        ));
        assert!(explained(
            &ops(&[("/usr/lib/d", true)]),
            Path::new("/usr/lib/d/x")
        ));
        assert!(!explained(
            &ops(&[("/usr/lib", false)]),
            Path::new("/usr/lib/x")
        ));
        assert!(explained(
            &ops(&[("/usr/lib", false)]),
            Path::new("/usr/lib")
        ));
    }

    // Checks that the kept size counts blocks of the saved directories
    // only, each inode once (two names of one file count once).
    #[test]
    fn kept_size_counts_each_inode_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("saved")).unwrap();
        fs::create_dir(d.join("saved-1")).unwrap();
        fs::write(d.join("saved/a"), vec![1u8; 10000]).unwrap();
        fs::hard_link(d.join("saved/a"), d.join("saved-1/b")).unwrap();
        fs::write(d.join("undo.json"), vec![1u8; 50000]).unwrap();
        let blocks = |p: &str| fs::symlink_metadata(d.join(p)).unwrap().blocks() * 512;
        let want = blocks("saved") + blocks("saved-1") + blocks("saved/a");
        assert_eq!(kept_size(d).unwrap(), want);
    }
}
