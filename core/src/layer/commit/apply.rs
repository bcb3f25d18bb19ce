// SPDX-License-Identifier: GPL-3.0-or-later
//! Writing a plan into the tree (forward) and taking it back (backward):
//! the Committer, and the entry-level writes it is made of.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{SFlag, UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use super::journal::{Journal, Meta, Op, OpKind};
use super::tmp_name;
use crate::layer::entry::{self, EntryType};

impl Meta {
    pub(super) fn of(path: &Path) -> io::Result<Meta> {
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
    pub(super) fn apply(&self, path: &Path, symlink: bool) -> io::Result<()> {
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

    pub(super) fn apply_times(&self, path: &Path) -> io::Result<()> {
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

/// Writes the upper entry `src` at the temp path `tmp` with all its metadata;
/// with `durable`, a file's data reaches the disk before this returns.
pub(super) fn write_entry(src: &Path, tmp: &Path, durable: bool) -> io::Result<()> {
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

pub(super) trait PrivateCreate {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateCreate for fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

pub(super) fn remove_any(path: &Path) -> io::Result<()> {
    crate::layer::remove_tree(path)
}

pub(super) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Moves the original at `target` to the backup `saved`, once: a directory
/// is renamed, anything else hard-linked (so `target` stays in place until
/// the new version is renamed over it).
pub(super) fn save_original(target: &Path, saved: &Path) -> io::Result<()> {
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

pub(super) struct Committer<'a> {
    pub(super) lower: PathBuf,
    pub(super) upper: PathBuf,
    pub(super) backup: PathBuf,
    pub(super) journal: &'a Journal,
}

impl Committer<'_> {
    pub(super) fn saved(&self, index: usize) -> PathBuf {
        self.backup.join(index.to_string())
    }

    pub(super) fn apply_op(&self, index: usize, op: &Op) -> io::Result<()> {
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
    pub(super) fn forward(&self) -> io::Result<()> {
        crate::layer::private_dir(&self.backup)?;
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
    pub(super) fn backward(&self) -> io::Result<()> {
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

pub(super) fn sync_fs(path: &Path) -> io::Result<()> {
    let dir = fs::File::open(path)?;
    nix::unistd::syncfs(&dir).map_err(io::Error::from)
}

/// Copies a tree with its metadata (when a backup must change filesystem).
/// An explicit stack: no recursion on depth; the directories get their
/// metadata (times last) once everything below them is written.
pub(super) fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
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
