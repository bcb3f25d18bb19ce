// SPDX-License-Identifier: GPL-3.0-or-later
//! What a commit does, derived from the layer's upper tree and the lower
//! one: one op per upper entry that changes something, parents first.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::journal::{Meta, Op, OpKind};
use crate::layer::diff::{is_opaque, is_whiteout};
use crate::layer::entry::{self, Description, DirCache, EntryType};

/// Derives the ops from the upper tree and the lower one.
///
/// The walk is serial (it decides where to go down from the directories,
/// whose descriptions hash nothing), and the ops come out in its order;
/// the entries that are not directories, whose descriptions hash the
/// files, are described in parallel on rayon's threads between the walk
/// and the emission of their ops, which is serial again (the first name of
/// a hard link is the first in the walk's order).
#[cfg(test)]
pub(super) fn plan(upper: &Path, lower: &Path) -> io::Result<Vec<Op>> {
    Ok(plan_knowing(upper, lower, &BTreeMap::new())?.0)
}

/// What the lower tree showed at the paths the plan looked up there (each
/// path it read, and its description, `None` if absent).
pub(super) type Read = HashMap<PathBuf, Option<Description>>;

/// [`plan`], given what the layer's merged view showed (`shown`: the
/// expectation after the commit, read from it just before): an upper entry
/// that is not a directory shows through the merged view as it is in the
/// upper tree, so its description there is taken rather than the file
/// read and hashed again, when the entry is still of that type. (Had it
/// changed since, the result would differ from the expectation, which the
/// verification reads back from the tree: the commit is rolled back.)
/// Returns the ops, and what was read from the lower tree (for the
/// expectation before, [`super::verify::capture_knowing`]).
pub(super) fn plan_knowing(
    upper: &Path,
    lower: &Path,
    shown: &BTreeMap<PathBuf, Option<Description>>,
) -> io::Result<(Vec<Op>, Read)> {
    use rayon::prelude::*;

    /// One entry of the walk, in its order: an op decided by the walk (a
    /// directory's), or an entry that is not a directory, its op decided
    /// once it is described.
    enum Step {
        Dir(Op),
        Other {
            rel: PathBuf,
            has_lower: bool,
            meta: std::fs::Metadata,
        },
    }
    /// What an entry that is not a directory is, read on rayon's threads.
    struct Described {
        old: Option<Description>,
        /// `None` for a whiteout.
        new: Option<Description>,
    }
    let op = |kind, rel: &Path, existed, link_to, old_meta| Op {
        kind,
        rel: rel.to_owned(),
        existed,
        link_to,
        old_meta,
    };
    let mut steps = Vec::new();
    let mut read = Read::new();
    entry::preorder(upper, true, |rel, &has_lower| {
        let up = upper.join(rel);
        let Some(meta) = entry::lstat(&up)? else {
            return Ok(None);
        };
        if EntryType::of(&meta) != EntryType::Dir {
            steps.push(Step::Other {
                rel: rel.to_owned(),
                has_lower,
                meta,
            });
            return Ok(None);
        }
        let old = if has_lower {
            let old = Description::of(&lower.join(rel))?;
            read.insert(rel.to_owned(), old.clone());
            old
        } else {
            None
        };
        let new =
            Description::of(&up)?.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        if new.kind != EntryType::Dir {
            // Replaced between the lstat and now: the upper tree is not
            // what a commit may read.
            return Err(io::Error::other(format!(
                "{} changed while the commit read it",
                up.display()
            )));
        }
        let existed = old.is_some();
        Ok(Some(match &old {
            None => {
                steps.push(Step::Dir(op(OpKind::MakeDir, rel, existed, None, None)));
                false
            }
            Some(o) if o.kind != EntryType::Dir || is_opaque(&up)? => {
                steps.push(Step::Dir(op(OpKind::ReplaceDir, rel, existed, None, None)));
                false
            }
            Some(o) => {
                if !o.same_metadata(&new) {
                    let old_meta = Meta::of(&lower.join(rel))?;
                    steps.push(Step::Dir(op(
                        OpKind::UpdateDir,
                        rel,
                        existed,
                        None,
                        Some(old_meta),
                    )));
                }
                true
            }
        }))
    })?;
    let described: Vec<Option<Described>> = steps
        .par_iter()
        .map_init(<(DirCache, DirCache)>::default, |(lowers, uppers), step| {
            let Step::Other {
                rel,
                has_lower,
                meta,
            } = step
            else {
                return Ok(None);
            };
            let up = upper.join(rel);
            let old = if *has_lower {
                lowers.describe(lower, rel)?
            } else {
                None
            };
            let new = if is_whiteout(&up, meta)? {
                None
            } else {
                match shown.get(rel) {
                    Some(Some(d)) if d.kind == EntryType::of(meta) => Some(d.clone()),
                    _ => Some(
                        uppers
                            .describe(upper, rel)?
                            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?,
                    ),
                }
            };
            Ok(Some(Described { old, new }))
        })
        .collect::<io::Result<_>>()?;
    let mut ops = Vec::new();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (step, described) in steps.into_iter().zip(described) {
        let (rel, meta, has_lower) = match step {
            Step::Dir(o) => {
                ops.push(o);
                continue;
            }
            Step::Other {
                rel,
                meta,
                has_lower,
            } => (rel, meta, has_lower),
        };
        let Some(Described { old, new }) = described else {
            unreachable!("every entry that is not a directory is described");
        };
        if has_lower {
            read.insert(rel.clone(), old.clone());
        }
        let existed = old.is_some();
        let Some(new) = new else {
            // A whiteout: deletes what is below, if anything.
            if existed {
                ops.push(op(OpKind::Delete, &rel, existed, None, None));
            }
            continue;
        };
        // Any kind but a directory may have several names: a symlink,
        // fifo or device node written twice would become two inodes.
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                ops.push(op(OpKind::Link, &rel, existed, Some(first.clone()), None));
                continue;
            }
            links.insert((meta.dev(), meta.ino()), rel.clone());
        }
        if old
            .as_ref()
            .is_some_and(|o| o.same_content(&new) && o.same_metadata(&new))
        {
            continue;
        }
        ops.push(op(OpKind::Write, &rel, existed, None, None));
    }
    Ok((ops, read))
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

    // Checks that the plan of thousands of entries, whose files are
    // described on rayon's threads, comes out exactly in the walk's order:
    // 30 directories of 100 files each, a third the same as below (no op),
    // a third rewritten (existed), a third new, and one file with a name in
    // every directory, whose first name in the walk is written and every
    // other linked to it, whichever thread described which first.
    #[test]
    fn plans_thousands_of_entries_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
        let s = |kind, rel: String, existed, link: Option<&str>| {
            (kind, rel, existed, link.map(str::to_owned))
        };
        let mut expected = Vec::new();
        for d in 0..30 {
            let name = format!("d{d:03}");
            for top in [&lower, &upper] {
                fs::create_dir_all(top.join(&name)).unwrap();
            }
            for f in 0..100 {
                let rel = format!("{name}/f{f:03}");
                fs::write(upper.join(&rel), format!("new {rel}")).unwrap();
                match f % 3 {
                    0 => fs::write(lower.join(&rel), format!("new {rel}")).unwrap(),
                    1 => {
                        fs::write(lower.join(&rel), format!("old {rel}")).unwrap();
                        expected.push(s(OpKind::Write, rel, true, None));
                    }
                    _ => expected.push(s(OpKind::Write, rel, false, None)),
                }
            }
            let rel = format!("{name}/h");
            if d == 0 {
                fs::write(upper.join(&rel), "linked").unwrap();
                expected.push(s(OpKind::Write, rel, false, None));
            } else {
                fs::hard_link(upper.join("d000/h"), upper.join(&rel)).unwrap();
                expected.push(s(OpKind::Link, rel, false, Some("d000/h")));
            }
        }
        assert_eq!(summary(&plan(&upper, &lower).unwrap()), expected);
    }
}
