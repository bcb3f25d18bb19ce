// SPDX-License-Identifier: GPL-3.0-or-later
//! What a commit does, derived from the layer's upper tree and the lower
//! one: one op per upper entry that changes something, parents first.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::journal::{Meta, Op, OpKind};
use crate::layer::diff::{is_opaque, is_whiteout};
use crate::layer::entry::{self, Description, EntryType};

/// Derives the ops from the upper tree and the lower one.
pub(super) fn plan(upper: &Path, lower: &Path) -> io::Result<Vec<Op>> {
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use nix::sys::stat::{Mode, SFlag, mknod};

    use super::*;

    /// A whiteout as overlayfs makes it: a 0:0 character device.
    fn whiteout(path: &Path) {
        mknod(path, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The ops as (kind, path, existed, link_to), what the tests compare.
    fn summary(ops: &[Op]) -> Vec<(OpKind, String, bool, Option<String>)> {
        ops.iter()
            .map(|op| {
                (
                    op.kind,
                    op.rel.to_string_lossy().into_owned(),
                    op.existed,
                    op.link_to
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    // Checks the plan of an upper tree made by hand with overlayfs' marks
    // over a lower tree: one op per entry that changes something, in the
    // order of the walk (names sorted, parents before children); nothing
    // for a copied-up parent or a file that is the same; a whiteout of
    // something absent below is no op; nothing below a replaced or opaque
    // directory is looked up in the lower tree (existed: false); a
    // directory's own metadata change keeps the old metadata for undo;
    // the second name of a hard link is a Link to the first.
    #[test]
    fn plans_every_kind_of_change_in_walk_order() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (whiteouts, trusted xattrs)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
        for d in [&lower, &upper] {
            fs::create_dir_all(d.join("a")).unwrap();
        }
        fs::write(lower.join("a/keep"), "k").unwrap();
        fs::write(lower.join("same"), "x").unwrap();
        fs::write(lower.join("gone"), "bye").unwrap();
        fs::write(lower.join("tofile"), "").unwrap();
        fs::create_dir_all(lower.join("opaque/old")).unwrap();
        fs::create_dir(lower.join("meta")).unwrap();
        chmod(&lower.join("meta"), 0o755);
        fs::write(lower.join("chmod"), "m").unwrap();
        chmod(&lower.join("chmod"), 0o644);
        std::os::unix::fs::symlink("same", lower.join("sym")).unwrap();

        fs::write(upper.join("a/new"), "n").unwrap();
        fs::write(upper.join("same"), "x").unwrap();
        whiteout(&upper.join("gone"));
        whiteout(&upper.join("never"));
        fs::create_dir(upper.join("tofile")).unwrap();
        fs::write(upper.join("tofile/inner"), "i").unwrap();
        fs::create_dir(upper.join("opaque")).unwrap();
        entry::set_xattr(&upper.join("opaque"), "trusted.overlay.opaque", b"y").unwrap();
        // Also in the lower tree, but hidden by the opaque directory.
        fs::create_dir(upper.join("opaque/old")).unwrap();
        fs::create_dir(upper.join("meta")).unwrap();
        chmod(&upper.join("meta"), 0o700);
        fs::write(upper.join("chmod"), "m").unwrap();
        chmod(&upper.join("chmod"), 0o755);
        fs::write(upper.join("l1"), "one inode").unwrap();
        fs::hard_link(upper.join("l1"), upper.join("l2")).unwrap();
        std::os::unix::fs::symlink("a/new", upper.join("sym")).unwrap();
        fs::create_dir(upper.join("newdir")).unwrap();
        fs::write(upper.join("newdir/f"), "f").unwrap();

        let ops = plan(&upper, &lower).unwrap();
        let s = |kind, rel: &str, existed, link: Option<&str>| {
            (kind, rel.to_owned(), existed, link.map(str::to_owned))
        };
        assert_eq!(
            summary(&ops),
            vec![
                s(OpKind::Write, "a/new", false, None),
                s(OpKind::Write, "chmod", true, None),
                s(OpKind::Delete, "gone", true, None),
                s(OpKind::Write, "l1", false, None),
                s(OpKind::Link, "l2", false, Some("l1")),
                s(OpKind::UpdateDir, "meta", true, None),
                s(OpKind::MakeDir, "newdir", false, None),
                s(OpKind::Write, "newdir/f", false, None),
                s(OpKind::ReplaceDir, "opaque", true, None),
                s(OpKind::MakeDir, "opaque/old", false, None),
                s(OpKind::Write, "sym", true, None),
                s(OpKind::ReplaceDir, "tofile", true, None),
                s(OpKind::Write, "tofile/inner", false, None),
            ]
        );
        let meta_op = &ops[5];
        assert_eq!(
            meta_op.old_meta.as_ref().map(|m| m.mode),
            Some(0o755),
            "the directory's old metadata is kept for undo"
        );
        assert!(
            ops.iter()
                .filter(|op| op.kind != OpKind::UpdateDir)
                .all(|op| op.old_meta.is_none())
        );
    }

    // Checks that an upper tree that changes nothing (a copied-up parent
    // and a file rewritten with the same content and metadata) plans no op,
    // and that a whiteout over a directory deletes it with one op, not one
    // per entry below.
    #[test]
    fn plans_nothing_for_copies_and_one_delete_for_a_directory() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (whiteouts)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
        for d in [&lower, &upper] {
            fs::create_dir_all(d.join("p/q")).unwrap();
            fs::write(d.join("p/q/same"), "s").unwrap();
        }
        fs::create_dir_all(lower.join("tree/deep/er")).unwrap();
        fs::write(lower.join("tree/deep/er/f"), "f").unwrap();
        assert_eq!(plan(&upper, &lower).unwrap(), Vec::new());
        whiteout(&upper.join("tree"));
        assert_eq!(
            summary(&plan(&upper, &lower).unwrap()),
            vec![(OpKind::Delete, "tree".to_owned(), true, None)]
        );
    }
}
