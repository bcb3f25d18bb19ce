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
//!    and a full disk can always be rolled back from. New files are written
//!    to a temp name in the same directory and renamed over; they are not
//!    synced one by one: the upper tree is synced before the first change,
//!    so a crash (even a power cut) before the one syncfs that ends this
//!    step is repaired by replaying the plan, and the journal moves on
//!    only after it.
//! 4. The result is compared with the expectation; then the backup becomes
//!    the undo data of this commit and the journal is removed.
//!
//! The next `almost` run after a crash finds the journal: it re-applies the
//! plan (every op is idempotent) and verifies; if that cannot succeed it
//! rolls back from the backup, and re-mounts the layer.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::sys::stat::{SFlag, UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use serde::{Deserialize, Serialize};

use super::diff::{is_opaque, is_whiteout};
use super::entry::{self, Description, EntryType};
use super::{LayerMeta, Layers, check_meta};
use crate::config::{Config, write_atomic};
use crate::error::{Error, Result};
use crate::system::Progress;

const JOURNAL: &str = "commit.json";
pub const UNDO_DIR: &str = "/var/lib/almost/undo";
/// Where the next undo data is assembled before it replaces the last one.
pub const UNDO_STAGE: &str = "/var/lib/almost/undo.new";
/// In the undo data: an undo has begun; says whether the tree is to be
/// locked at its end (decided before it unlocks anything).
const UNDO_STARTED: &str = "undoing";
/// In the undo data: the tree is back as before the commit (what differed,
/// one line each, if anything); only cleaning up is left.
const UNDO_RESTORED: &str = "restored";
/// Suffix of a backup being copied across filesystems for an undo.
const PARTIAL: &str = ".partial";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// A file, symlink or special file from the upper tree.
    Write,
    /// A second name of a file written by an earlier op (`link_to`).
    Link,
    Delete,
    /// A directory that did not exist.
    MakeDir,
    /// Whatever was there goes; a new directory takes its place.
    ReplaceDir,
    /// An existing directory whose metadata changes.
    UpdateDir,
}

/// Owner, mode, xattrs and times: what a directory op changes and undo
/// puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
}

impl Meta {
    fn of(path: &Path) -> io::Result<Meta> {
        let m = fs::symlink_metadata(path)?;
        Ok(Meta {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            xattrs: entry::own_xattrs(path)?,
            atime: (m.atime(), m.atime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }

    /// Applies owner, mode and xattrs (not times: see `apply_times`).
    fn apply(&self, path: &Path, symlink: bool) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))?;
        if !symlink {
            // After chown, which clears set-id bits.
            fs::set_permissions(path, fs::Permissions::from_mode(self.mode))?;
        }
        let current = entry::own_xattrs(path)?;
        for name in current.keys().filter(|k| !self.xattrs.contains_key(*k)) {
            entry::remove_xattr(path, name)?;
        }
        // security.capability last: it is what chown clears.
        let mut names: Vec<&String> = self.xattrs.keys().collect();
        names.sort_by_key(|n| *n == "security.capability");
        for name in names {
            if current.get(name) != self.xattrs.get(name) {
                entry::set_xattr(path, name, &self.xattrs[name])?;
            }
        }
        Ok(())
    }

    fn apply_times(&self, path: &Path) -> io::Result<()> {
        utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &TimeSpec::new(self.atime.0, self.atime.1),
            &TimeSpec::new(self.mtime.0, self.mtime.1),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(io::Error::from)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub kind: OpKind,
    /// Path relative to the layer's directory.
    pub rel: PathBuf,
    /// Whether something was at `rel` in the lower tree (it is backed up).
    pub existed: bool,
    /// For `Link`: the earlier op's path this is a second name of.
    pub link_to: Option<PathBuf>,
    /// For `UpdateDir`: the metadata to put back on undo.
    pub old_meta: Option<Meta>,
}

/// What the tree must look like: per touched path its description (`None`:
/// absent), for directories the sorted names inside, and which touched
/// names share an inode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub entries: BTreeMap<PathBuf, Option<Description>>,
    pub listings: BTreeMap<PathBuf, Vec<String>>,
    /// The link groups among the touched paths: every set of two or more
    /// of them that are one inode (any kind but a directory: ext4 links
    /// symlinks, fifos and device nodes too), each sorted, in order.
    /// `None` in a journal written before link groups were recorded (then
    /// not compared).
    #[serde(default)]
    pub links: Option<Vec<Vec<PathBuf>>>,
}

/// The link groups among `paths` in `base` (see [`Expectation::links`]).
fn link_groups<'p>(
    base: &Path,
    paths: impl Iterator<Item = &'p PathBuf>,
) -> io::Result<Vec<Vec<PathBuf>>> {
    let mut inodes: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for rel in paths {
        if let Some(meta) = entry::lstat(&base.join(rel))?
            && !meta.is_dir()
            && meta.nlink() > 1
        {
            inodes
                .entry((meta.dev(), meta.ino()))
                .or_default()
                .push(rel.clone());
        }
    }
    let mut groups: Vec<Vec<PathBuf>> = inodes
        .into_values()
        .filter(|names| names.len() > 1)
        .map(|mut names| {
            names.sort();
            names
        })
        .collect();
    groups.sort();
    Ok(groups)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The expectation is captured; nothing is changed yet (the layer may
    /// be unmounted). Recovery: mount the layer again.
    Preparing,
    Applying,
    RollingBack,
    /// Applied, verified, undo data kept. Recovery: re-lock, remove the layer.
    Finishing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub layer: LayerMeta,
    pub phase: Phase,
    pub ops: Vec<Op>,
    /// The merged view before the commit.
    pub after: Expectation,
    /// The lower tree before the commit (what undo and roll-back restore).
    pub before: Expectation,
    /// Whether to lock the covered tree once done.
    pub relock: bool,
}

/// Parses `bytes`, read from `file` (a layer's `commit.json` or the undo
/// data's `undo.json`), and checks it as input, not as a record to trust:
/// every path in it is joined to the covered tree and acted on as root, so
/// each must be a relative path of plain names (no `..`, no root), and the
/// layer must pass [`check_meta`] under `config`. A forged journal then
/// reaches nothing outside a managed tree.
pub fn parse_journal(file: &Path, config: &Config, bytes: &[u8]) -> Result<Journal> {
    let bad = |reason: String| Error::InvalidPath {
        path: file.display().to_string(),
        reason,
    };
    let journal: Journal =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a commit journal: {e}")))?;
    let id = &journal.layer.id;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad(format!("{id:?} is not a layer id")));
    }
    check_meta(file, &journal.layer, id, config)?;
    let plain = |rel: &Path| rel.components().all(|c| matches!(c, Component::Normal(_)));
    let mut named: Vec<&PathBuf> = Vec::new();
    for op in &journal.ops {
        named.extend(std::iter::once(&op.rel).chain(op.link_to.as_ref()));
    }
    for exp in [&journal.after, &journal.before] {
        named.extend(exp.entries.keys());
        named.extend(exp.links.iter().flatten().flatten());
    }
    // Listings are also kept of the layer's top: the empty path.
    let listed = [&journal.after, &journal.before].map(|exp| exp.listings.keys());
    let wrong = named
        .iter()
        .copied()
        .find(|rel| rel.as_os_str().is_empty() || !plain(rel))
        .or_else(|| listed.into_iter().flatten().find(|rel| !plain(rel)));
    if let Some(rel) = wrong {
        return Err(bad(format!("{rel:?} is not a path inside the layer")));
    }
    Ok(journal)
}

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
    pub applied: usize,
    pub outcome: String,
}

fn backup_name(layer: &LayerMeta) -> String {
    format!(".almost-backup-{}", layer.id)
}

fn tmp_name(index: usize) -> String {
    format!(".almost-tmp-{index}")
}

/// Describes what `base` shows at every path the upper tree touches.
fn capture(base: &Path, touched: &[PathBuf], skip_name: &str) -> io::Result<Expectation> {
    let mut exp = Expectation::default();
    let mut dirs = vec![PathBuf::new()];
    for rel in touched {
        let desc = Description::of(&base.join(rel))?;
        if desc.as_ref().is_some_and(|d| d.kind == EntryType::Dir) {
            dirs.push(rel.clone());
        }
        exp.entries.insert(rel.clone(), desc);
    }
    exp.links = Some(link_groups(base, touched.iter())?);
    for dir in dirs {
        let mut names: Vec<String> = fs::read_dir(base.join(&dir))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.retain(|n| n != skip_name);
        names.sort();
        exp.listings.insert(dir, names);
    }
    Ok(exp)
}

/// Lists the differences between `base` and an expectation (empty: equal).
fn compare(base: &Path, exp: &Expectation, skip_name: &str) -> io::Result<Vec<String>> {
    Ok(differing(base, exp, skip_name)?
        .into_iter()
        .map(|(_, _, what)| what)
        .collect())
}

/// The paths (relative) where `base` differs from an expectation, each
/// with whether it is the names in that directory that differ, and what.
fn differing(
    base: &Path,
    exp: &Expectation,
    skip_name: &str,
) -> io::Result<Vec<(PathBuf, bool, String)>> {
    let mut wrong = Vec::new();
    for (rel, want) in &exp.entries {
        let got = Description::of(&base.join(rel))?;
        if &got != want {
            wrong.push((
                rel.clone(),
                false,
                format!(
                    "{}: expected {:?}, found {:?}",
                    rel.display(),
                    want.as_ref().map(|d| d.kind),
                    got.as_ref().map(|d| d.kind)
                ),
            ));
        }
    }
    for (rel, want) in &exp.listings {
        let mut names: Vec<String> = match fs::read_dir(base.join(rel)) {
            Ok(read) => read
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<_>>()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        names.retain(|n| n != skip_name);
        names.sort();
        if &names != want {
            wrong.push((
                rel.clone(),
                true,
                format!("{}/: entries differ", rel.display()),
            ));
        }
    }
    if let Some(want) = &exp.links {
        let got = link_groups(base, exp.entries.keys())?;
        // Each group expected and not found, and each found and not
        // expected, named by its first path.
        for group in want.iter().filter(|g| !got.contains(g)) {
            wrong.push((
                group[0].clone(),
                false,
                format!("{}: these names are no longer one inode", names_of(group)),
            ));
        }
        for group in got.iter().filter(|g| !want.contains(g)) {
            wrong.push((
                group[0].clone(),
                false,
                format!("{}: these names became one inode", names_of(group)),
            ));
        }
    }
    Ok(wrong)
}

fn names_of(group: &[PathBuf]) -> String {
    group
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" = ")
}

/// Derives the ops from the upper tree and the lower one.
fn plan(upper: &Path, lower: &Path) -> io::Result<Vec<Op>> {
    /// One upper entry; for a directory, whether the lower tree shows
    /// below it (the walk then goes into it).
    fn one(
        upper: &Path,
        lower: &Path,
        rel: &Path,
        has_lower: bool,
        links: &mut HashMap<(u64, u64), PathBuf>,
        ops: &mut Vec<Op>,
    ) -> io::Result<Option<bool>> {
        {
            let rel = rel.to_owned();
            let up = upper.join(&rel);
            let Some(meta) = entry::lstat(&up)? else {
                return Ok(None);
            };
            let old = if has_lower {
                Description::of(&lower.join(&rel))?
            } else {
                None
            };
            let op = |kind, link_to, old_meta| Op {
                kind,
                rel: rel.clone(),
                existed: old.is_some(),
                link_to,
                old_meta,
            };
            if is_whiteout(&up, &meta)? {
                if old.is_some() {
                    ops.push(op(OpKind::Delete, None, None));
                }
                return Ok(None);
            }
            let new =
                Description::of(&up)?.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            if new.kind == EntryType::Dir {
                let deeper_lower = match &old {
                    None => {
                        ops.push(op(OpKind::MakeDir, None, None));
                        false
                    }
                    Some(o) if o.kind != EntryType::Dir || is_opaque(&up)? => {
                        ops.push(op(OpKind::ReplaceDir, None, None));
                        false
                    }
                    Some(o) => {
                        if !o.same_metadata(&new) {
                            ops.push(op(
                                OpKind::UpdateDir,
                                None,
                                Some(Meta::of(&lower.join(&rel))?),
                            ));
                        }
                        true
                    }
                };
                return Ok(Some(deeper_lower));
            }
            // Any kind but a directory may have several names: a symlink,
            // fifo or device node written twice would become two inodes.
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    ops.push(op(OpKind::Link, Some(first.clone()), None));
                    return Ok(None);
                }
                links.insert((meta.dev(), meta.ino()), rel.clone());
            }
            if old
                .as_ref()
                .is_some_and(|o| o.same_content(&new) && o.same_metadata(&new))
            {
                return Ok(None);
            }
            ops.push(op(OpKind::Write, None, None));
        }
        Ok(None)
    }
    let mut ops = Vec::new();
    let mut links = HashMap::new();
    entry::preorder(upper, true, |rel, &has_lower| {
        one(upper, lower, rel, has_lower, &mut links, &mut ops)
    })?;
    Ok(ops)
}

/// Writes the upper entry `src` at the temp path `tmp` with all its metadata;
/// with `durable`, a file's data reaches the disk before this returns.
fn write_entry(src: &Path, tmp: &Path, durable: bool) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    match EntryType::of(&meta) {
        EntryType::File => {
            let mut from = fs::File::open(src)?;
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_private()
                .open(tmp)?;
            io::copy(&mut from, &mut to)?;
            to.flush()?;
            Meta::of(src)?.apply(tmp, false)?;
            if durable {
                to.sync_all()?;
            }
        }
        EntryType::Symlink => {
            std::os::unix::fs::symlink(fs::read_link(src)?, tmp)?;
            Meta::of(src)?.apply(tmp, true)?;
        }
        EntryType::Dir => return Err(io::Error::from_raw_os_error(libc::EISDIR)),
        kind => {
            let sflag = match kind {
                EntryType::Char => SFlag::S_IFCHR,
                EntryType::Block => SFlag::S_IFBLK,
                EntryType::Fifo => SFlag::S_IFIFO,
                _ => SFlag::S_IFSOCK,
            };
            nix::sys::stat::mknod(
                tmp,
                sflag,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                meta.rdev(),
            )?;
            Meta::of(src)?.apply(tmp, false)?;
        }
    }
    Meta::of(src)?.apply_times(tmp)
}

trait PrivateCreate {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateCreate for fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    super::remove_tree(path)
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Moves the original at `target` to the backup `saved`, once: a directory
/// is renamed, anything else hard-linked (so `target` stays in place until
/// the new version is renamed over it).
fn save_original(target: &Path, saved: &Path) -> io::Result<()> {
    if exists(saved) {
        return Ok(());
    }
    let Some(meta) = entry::lstat(target)? else {
        return Ok(());
    };
    let tmp = saved.with_extension("partial");
    let _ = fs::remove_file(&tmp);
    if meta.is_dir() {
        fs::rename(target, saved)
    } else {
        fs::hard_link(target, &tmp)?;
        fs::rename(&tmp, saved)
    }
}

struct Committer<'a> {
    lower: PathBuf,
    upper: PathBuf,
    backup: PathBuf,
    journal: &'a Journal,
}

impl Committer<'_> {
    fn saved(&self, index: usize) -> PathBuf {
        self.backup.join(index.to_string())
    }

    fn apply_op(&self, index: usize, op: &Op) -> io::Result<()> {
        let target = self.lower.join(&op.rel);
        let parent = target.parent().unwrap_or(&self.lower).to_owned();
        let tmp = parent.join(tmp_name(index));
        let src = self.upper.join(&op.rel);
        match op.kind {
            OpKind::Write | OpKind::Link => {
                if op.existed {
                    save_original(&target, &self.saved(index))?;
                }
                remove_any(&tmp)?;
                match (op.kind, &op.link_to) {
                    (OpKind::Link, Some(first)) => fs::hard_link(self.lower.join(first), &tmp)?,
                    // Not synced one by one: forward() ends with one
                    // syncfs, and until then a crash is repaired by
                    // replaying the plan from the upper tree.
                    _ => write_entry(&src, &tmp, false)?,
                }
                if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    // A directory replaced by a file: its original is saved.
                    remove_any(&target)?;
                }
                fs::rename(&tmp, &target)?;
            }
            OpKind::Delete => {
                if op.existed {
                    save_original(&target, &self.saved(index))?;
                }
                if exists(&self.saved(index)) {
                    remove_any(&target)?;
                }
            }
            OpKind::ReplaceDir | OpKind::MakeDir => {
                if op.kind == OpKind::ReplaceDir && op.existed {
                    save_original(&target, &self.saved(index))?;
                    if exists(&self.saved(index))
                        && !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir())
                    {
                        remove_any(&target)?;
                    }
                }
                if !exists(&target) {
                    remove_any(&tmp)?;
                    fs::create_dir(&tmp)?;
                    Meta::of(&src)?.apply(&tmp, false)?;
                    fs::rename(&tmp, &target)?;
                } else if op.kind == OpKind::ReplaceDir && !exists(&self.saved(index)) {
                    return Err(io::Error::other(format!(
                        "{}: original not saved",
                        op.rel.display()
                    )));
                }
                Meta::of(&src)?.apply(&target, false)?;
            }
            OpKind::UpdateDir => Meta::of(&src)?.apply(&target, false)?,
        }
        Ok(())
    }

    /// Applies every op (again, after a crash: they are idempotent), then
    /// the directory times, then syncs the filesystem.
    fn forward(&self) -> io::Result<()> {
        super::private_dir(&self.backup)?;
        for (index, op) in self.journal.ops.iter().enumerate() {
            self.apply_op(index, op)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", op.rel.display())))?;
        }
        for op in self.journal.ops.iter().rev() {
            if matches!(
                op.kind,
                OpKind::MakeDir | OpKind::ReplaceDir | OpKind::UpdateDir
            ) {
                Meta::of(&self.upper.join(&op.rel))?.apply_times(&self.lower.join(&op.rel))?;
            }
        }
        sync_fs(&self.lower)
    }

    /// Puts the lower tree back as it was, from the backup.
    fn backward(&self) -> io::Result<()> {
        for (index, op) in self.journal.ops.iter().enumerate().rev() {
            let target = self.lower.join(&op.rel);
            let parent = target.parent().unwrap_or(&self.lower).to_owned();
            remove_any(&parent.join(tmp_name(index)))?;
            let saved = self.saved(index);
            match op.kind {
                OpKind::UpdateDir => {
                    if let Some(old) = &op.old_meta {
                        old.apply(&target, false)?;
                        old.apply_times(&target)?;
                    }
                }
                _ => {
                    if exists(&saved) {
                        let saved_is_dir = fs::symlink_metadata(&saved)?.is_dir();
                        if saved_is_dir || fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                            remove_any(&target)?;
                        }
                        fs::rename(&saved, &target)?;
                    } else if !op.existed {
                        remove_any(&target)?;
                    }
                }
            }
        }
        sync_fs(&self.lower)
    }
}

fn sync_fs(path: &Path) -> io::Result<()> {
    let dir = fs::File::open(path)?;
    nix::unistd::syncfs(&dir).map_err(io::Error::from)
}

impl Layers<'_> {
    fn journal_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(JOURNAL)
    }

    fn save_journal(&self, journal: &Journal) -> Result<()> {
        let path = self.journal_path(&journal.layer.id);
        let bytes = serde_json::to_vec(journal)
            .map_err(|e| Error::io("encoding the journal", io::Error::other(e)))?;
        write_atomic(&path, &bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    fn committer<'j>(&self, journal: &'j Journal) -> Committer<'j> {
        let lower = self.sys.root.host(&journal.layer.path);
        Committer {
            backup: lower.join(backup_name(&journal.layer)),
            upper: self.upper(&journal.layer.id),
            lower,
            journal,
        }
    }

    /// Commits a layer. Refuses while its mount is busy.
    pub fn commit(&self, meta: &LayerMeta, progress: &Arc<Progress>) -> Result<CommitReport> {
        let lower = self.sys.root.host(&meta.path);
        let relock = self.should_relock(meta)?;
        // The merged view is the expectation. A layer a reboot left
        // unmounted (a commit at boot) is read through a view of its own,
        // not mounted over its tree, where it would be in use at once.
        self.sys.apply_subtree(&meta.path, false, progress)?;
        let view = if self.is_mounted(meta) {
            None
        } else {
            Some(self.mount_view(meta)?)
        };
        let upper = self.upper(&meta.id);
        let touched = super::diff::touched(&upper)
            .map_err(|e| Error::io(format!("reading layer {}", meta.id), e));
        let skip = backup_name(meta);
        let after = touched.and_then(|touched| {
            capture(view.as_deref().unwrap_or(&lower), &touched, &skip)
                .map(|after| (touched, after))
                .map_err(|e| Error::io("reading the layer's merged view", e))
        });
        if let Some(view) = &view {
            self.unmount_view(view);
        }
        let (touched, after) = after?;
        let mut journal = Journal {
            layer: meta.clone(),
            phase: Phase::Preparing,
            ops: Vec::new(),
            after,
            before: Expectation::default(),
            relock,
        };
        self.save_journal(&journal)?;
        let prepared = self.unmount(meta).and_then(|()| {
            // What a replay after a crash reads must be on disk before the
            // first change: the files written into the tree are not synced
            // one by one.
            sync_fs(&upper).map_err(|e| Error::io(format!("syncing layer {}", meta.id), e))?;
            let ops = plan(&upper, &lower)
                .map_err(|e| Error::io(format!("planning the commit of {}", meta.id), e))?;
            let before = capture(&lower, &touched, &skip)
                .map_err(|e| Error::io("reading the tree beneath the layer", e))?;
            Ok((ops, before))
        });
        match prepared {
            Ok((ops, before)) => {
                journal.ops = ops;
                journal.before = before;
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
    /// again as it was (the tree beneath is still unlocked), unless
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
            applied: journal.ops.len(),
            outcome: outcome.to_owned(),
        }
    }

    /// Whether the undo data of this very commit is already in place (in
    /// the stage or handed over): the commit went through.
    fn undo_holds(&self, journal: &Journal) -> bool {
        [UNDO_STAGE, UNDO_DIR].iter().any(|dir| {
            let file = self.sys.root.host(Path::new(dir)).join("undo.json");
            fs::read(&file)
                .ok()
                .and_then(|b| parse_journal(&file, &self.sys.config, &b).ok())
                .is_some_and(|j| j.layer == journal.layer && j.ops == journal.ops)
        })
    }

    /// Drives a journal to its end: forward, verify, keep the undo data,
    /// finish; or, when that fails, back to the old tree with the layer
    /// mounted again.
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
            Phase::Finishing => return self.finish_up(&journal, progress),
            Phase::RollingBack => Some((
                "an earlier roll-back was interrupted".to_owned(),
                io::ErrorKind::Other,
            )),
            Phase::Applying => {
                let c = self.committer(&journal);
                if !exists(&c.backup) && self.undo_holds(&journal) {
                    // A crash during the hand-over of the undo data: the
                    // tree is the new one already.
                    None
                } else {
                    match c.forward() {
                        Ok(()) => match compare(&c.lower, &journal.after, &skip) {
                            Ok(wrong) if wrong.is_empty() => None,
                            Ok(wrong) => Some((
                                format!("the result differs from the layer: {}", wrong.join("; ")),
                                io::ErrorKind::Other,
                            )),
                            Err(e) => Some((format!("verifying: {e}"), e.kind())),
                        },
                        // The kind goes with the reason: a full disk stays
                        // a full disk (exit 11) after the roll-back.
                        Err(e) => Some((e.to_string(), e.kind())),
                    }
                }
            }
        };
        if let Some((reason, kind)) = failure {
            journal.phase = Phase::RollingBack;
            self.save_journal(&journal)?;
            let c = self.committer(&journal);
            c.backward().map_err(|e| {
                Error::io(
                    format!("rolling back the commit of layer {id} ({reason})"),
                    e,
                )
            })?;
            let _ = remove_any(&c.backup);
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
        self.keep_undo(&journal, &self.committer(&journal).backup)?;
        journal.phase = Phase::Finishing;
        self.save_journal(&journal)?;
        self.finish_up(&journal, progress)
    }

    /// The last steps, each safe to repeat: lock the tree again if it was,
    /// then remove the layer (its journal goes with it).
    fn finish_up(&self, journal: &Journal, progress: &Arc<Progress>) -> Result<CommitReport> {
        if journal.relock {
            self.sys
                .apply_subtree(&journal.layer.path, true, progress)?;
        }
        self.remove_storage(&journal.layer.id, progress)?;
        Ok(Self::report(journal, "committed"))
    }

    /// Turns a commit's backup into the undo data of the last commit. The
    /// new undo data is assembled in a stage (its description first, then
    /// the saved originals) and only then replaces the old one, so a crash
    /// at any point leaves one complete set, and recovery can tell whether
    /// this commit's originals are safe.
    fn keep_undo(&self, journal: &Journal, backup: &Path) -> Result<()> {
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
            super::private_dir(&stage).map_err(|e| err("creating the stage", e))?;
            let bytes =
                serde_json::to_vec(journal).map_err(|e| err("encoding", io::Error::other(e)))?;
            write_atomic(&stage.join("undo.json"), &bytes)
                .map_err(|e| err("writing undo.json", e))?;
        }
        let saved = stage.join("saved");
        if exists(backup) {
            if exists(&saved) {
                // A copy across filesystems that a crash cut short.
                self.remove_tree(&saved)?;
            }
            fs::rename(backup, &saved)
                .or_else(|_| {
                    copy_tree(backup, &saved)?;
                    // Across filesystems: the copy, its directories too
                    // (one syncfs of the undo data's filesystem, not a
                    // fsync per file and directory), is on disk before the
                    // originals' only other copy goes.
                    sync_fs(&saved)?;
                    remove_any(backup)
                })
                .map_err(|e| err("moving the saved originals", e))?;
        } else if !exists(&saved) {
            super::private_dir(&saved).map_err(|e| err("creating saved", e))?;
        }
        if exists(&undo) {
            self.remove_tree(&undo)?;
        }
        fs::rename(&stage, &undo).map_err(|e| err("putting it in place", e))?;
        sync_fs(&undo).map_err(|e| err("syncing", e))
    }

    fn stage_is(&self, journal: &Journal, stage: &Path) -> bool {
        let file = stage.join("undo.json");
        fs::read(&file)
            .ok()
            .and_then(|b| parse_journal(&file, &self.sys.config, &b).ok())
            .is_some_and(|j| j.layer == journal.layer && j.ops == journal.ops)
    }

    /// Deletes a tree of Almost's own, clearing flags first.
    fn remove_tree(&self, path: &Path) -> Result<()> {
        let _ = self.sys.apply_host_tree(path, false, &Progress::default());
        remove_any(path).map_err(|e| Error::io(format!("removing {}", path.display()), e))
    }

    /// Whether a crash left something for `recover` to finish.
    pub fn needs_recovery(&self) -> bool {
        let trash = fs::read_dir(self.store()).is_ok_and(|r| {
            r.filter_map(std::result::Result::ok)
                .any(|e| super::is_trash(&e.file_name()))
        });
        trash || self.interrupted_commit().is_some() || self.interrupted_undo().is_some()
    }

    /// The layer whose commit a crash interrupted, if any.
    pub fn interrupted_commit(&self) -> Option<String> {
        self.all()
            .ok()?
            .into_iter()
            .find(|l| exists(&self.journal_path(&l.id)))
            .map(|l| l.id)
    }

    /// Finishes an undo, and finishes or rolls back commits, interrupted by
    /// a crash. Returns what was done, one report per layer.
    pub fn recover(&self, progress: &Arc<Progress>) -> Vec<Result<CommitReport>> {
        self.recover_with(progress, true)
    }

    /// [`Layers::recover`] for `almost boot`: a commit rolled back leaves its
    /// layer unmounted, since the boot mounts the layers itself after doing
    /// what it was asked to do with them (`--at-boot`); a layer mounted here
    /// would be in use by everything started meanwhile (udevd runs already)
    /// and could not be committed at boot.
    pub fn recover_at_boot(&self, progress: &Arc<Progress>) -> Vec<Result<CommitReport>> {
        self.recover_with(progress, false)
    }

    fn recover_with(&self, progress: &Arc<Progress>, remount: bool) -> Vec<Result<CommitReport>> {
        let mut done = Vec::new();
        if let Some(id) = self.interrupted_undo() {
            tracing::warn!("finishing the interrupted undo of the commit of layer {id}");
            // Begun already: no comparison (the tree is half restored).
            done.push(self.undo(progress, false));
        }
        let Ok(layers) = self.all() else {
            return done;
        };
        done.extend(layers.into_iter().filter_map(|meta| {
            let file = self.journal_path(&meta.id);
            let bytes = fs::read(&file).ok()?;
            let journal = match parse_journal(&file, &self.sys.config, &bytes) {
                Ok(j) if j.layer == meta => j,
                Ok(_) => {
                    return Some(Err(Error::InvalidPath {
                        path: file.display().to_string(),
                        reason: "it is the journal of another layer".to_owned(),
                    }));
                }
                Err(e) => return Some(Err(e)),
            };
            tracing::warn!("recovering the interrupted commit of layer {}", meta.id);
            Some(self.finish(journal, progress, remount))
        }));
        done
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
        let undo = self.sys.root.host(Path::new(UNDO_DIR));
        let lower = self.sys.root.host(&journal.layer.path);
        let skip = backup_name(&journal.layer);
        let backup = lower.join(&skip);
        let restored = undo.join(UNDO_RESTORED);
        let started = undo.join(UNDO_STARTED);
        // Directories whose names changed since the commit: with `force`,
        // the undo leaves what it never knew of, so they differ after it.
        let mut renamed_dirs = Vec::new();
        if !exists(&started) && !exists(&restored) {
            let changed = differing(&lower, &journal.after, &skip)
                .map_err(|e| Error::io("comparing the tree with the last commit", e))?;
            if force {
                renamed_dirs = changed
                    .into_iter()
                    .filter(|(_, listing, _)| *listing)
                    .map(|(_, _, what)| what)
                    .collect();
            } else if !changed.is_empty() {
                return Err(Error::ChangedSinceCommit {
                    id: journal.layer.id.clone(),
                    paths: changed
                        .iter()
                        .map(|(rel, listing, _)| {
                            let path = journal.layer.path.join(rel).display().to_string();
                            if *listing {
                                format!("{path}/ (names added or removed)")
                            } else {
                                path
                            }
                        })
                        .collect(),
                });
            }
        }
        // Decided once, before anything is unlocked: after a crash the
        // tree's own state no longer tells.
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
            self.sys
                .apply_subtree(&journal.layer.path, false, progress)?;
            if !exists(&backup) {
                self.bring_back_saved(&undo.join("saved"), &backup)?;
            }
            let c = self.committer(&journal);
            c.backward()
                .map_err(|e| Error::io("undoing the last commit", e))?;
            wrong = compare(&lower, &journal.before, &skip)
                .map_err(|e| Error::io("verifying the undo", e))?;
            wrong.retain(|w| !renamed_dirs.contains(w));
            write_atomic(&restored, wrong.join("\n").as_bytes())
                .map_err(|e| Error::io("recording the undo", e))?;
        } else if let Ok(text) = fs::read_to_string(&restored) {
            // Carried on after a crash: the differences found then.
            wrong = text.lines().map(str::to_owned).collect();
        }
        if exists(&backup) {
            self.remove_tree(&backup)?;
        }
        if relock {
            self.sys
                .apply_subtree(&journal.layer.path, true, progress)?;
        }
        // Out of sight at once (one rename into the store's trash), then
        // deleted: a crash cannot leave half the undo data looking like an
        // undo still to make.
        let trash = self
            .store()
            .join(format!("{}undo-{}", super::TRASH_PREFIX, journal.layer.id));
        super::dir_with_mode(&self.store(), 0o755)
            .and_then(|()| fs::rename(&undo, &trash))
            .map_err(|e| Error::io("removing the undo data", e))?;
        self.empty_trash(progress)?;
        if !wrong.is_empty() {
            return Err(Error::io(
                "undo finished, but the tree differs from before the commit",
                io::Error::other(wrong.join("; ")),
            ));
        }
        Ok(CommitReport {
            id: journal.layer.id.clone(),
            path: journal.layer.path.clone(),
            applied: journal.ops.len(),
            outcome: "undone".to_owned(),
        })
    }

    /// Step 1 of an undo: the saved originals become the backup the plan is
    /// played backward from. A rename where the undo data and the tree share
    /// a filesystem; else a copy made under a temporary name (a crash leaves
    /// no half backup that could pass for a whole one).
    fn bring_back_saved(&self, saved: &Path, backup: &Path) -> Result<()> {
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

/// Copies a tree with its metadata (when a backup must change filesystem).
/// An explicit stack: no recursion on depth; the directories get their
/// metadata (times last) once everything below them is written.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    if !fs::symlink_metadata(from)?.is_dir() {
        return write_entry(from, to, true);
    }
    fs::create_dir(to)?;
    let mut dirs = vec![PathBuf::new()];
    entry::preorder(from, (), |rel, ()| {
        let (src, dst) = (from.join(rel), to.join(rel));
        if fs::symlink_metadata(&src)?.is_dir() {
            fs::create_dir(&dst)?;
            dirs.push(rel.to_owned());
            Ok(Some(()))
        } else {
            write_entry(&src, &dst, true)?;
            Ok(None)
        }
    })?;
    for rel in dirs.iter().rev() {
        let meta = Meta::of(&from.join(rel))?;
        meta.apply(&to.join(rel), false)?;
        meta.apply_times(&to.join(rel))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks: the commit's verification compares link groups, not only
    // entries. Two names of one fifo and of one symlink are captured as
    // groups; when each pair is split into two inodes of identical
    // description (what a commit that rewrote each name would leave), the
    // comparison reports both groups; unsplit, it reports nothing.
    #[test]
    fn verification_compares_link_groups() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        nix::unistd::mkfifo(
            &base.join("p1"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        fs::hard_link(base.join("p1"), base.join("p2")).unwrap();
        std::os::unix::fs::symlink("p1", base.join("s1")).unwrap();
        fs::hard_link(base.join("s1"), base.join("s2")).unwrap();
        let touched: Vec<PathBuf> = ["p1", "p2", "s1", "s2"].map(PathBuf::from).to_vec();
        let exp = capture(base, &touched, "").unwrap();
        assert_eq!(
            exp.links,
            Some(vec![touched[..2].to_vec(), touched[2..].to_vec()])
        );
        assert_eq!(compare(base, &exp, "").unwrap(), Vec::<String>::new());

        for (name, make) in [
            (
                "p2",
                &(|p: &Path| {
                    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644))
                        .map_err(io::Error::from)
                }) as &dyn Fn(&Path) -> io::Result<()>,
            ),
            ("s2", &|p: &Path| std::os::unix::fs::symlink("p1", p)),
        ] {
            let times = Meta::of(&base.join(name)).unwrap();
            fs::remove_file(base.join(name)).unwrap();
            make(&base.join(name)).unwrap();
            times.apply_times(&base.join(name)).unwrap();
        }
        let wrong = compare(base, &exp, "").unwrap();
        assert_eq!(wrong.len(), 2, "{wrong:?}");
        assert!(
            wrong.iter().all(|w| w.contains("no longer one inode")),
            "{wrong:?}"
        );
    }
}
