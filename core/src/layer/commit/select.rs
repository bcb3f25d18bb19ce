// SPDX-License-Identifier: GPL-3.0-or-later
//! A selective commit (`layer commit ID --only PATH…` or `--except PATH…`):
//! which of the plan's ops it takes, what those need besides (and why),
//! what the tree must look like after them, and taking the committed
//! changes out of the layer's upper tree so that the layer, mounted again,
//! holds exactly the rest and shows the same merged view.
//!
//! What a change needs is found in the plan: the directory an op writes
//! into must exist in the tree, so a parent the layer made (`MakeDir`) or
//! replaced (`ReplaceDir`) is committed with it; the names of one inode
//! (a `Link` and the op it links to) go together, or the tree and the
//! layer would each hold a copy. A committed directory that still has
//! changes below it stays in the upper tree, without overlayfs' opaque
//! mark: the tree beneath now holds exactly what it showed of it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::journal::{Expectation, Journal, Op, OpKind};
use crate::error::{Error, Result};
use crate::layer::entry;
use crate::layer::{LayerMeta, Layers};

/// What a user asked to commit: paths inside the root (as `layer diff`
/// prints them), or all but those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub paths: Vec<PathBuf>,
    pub except: bool,
}

/// Why a change was committed although not asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NeededWhy {
    /// A directory the layer made, holding a committed change.
    NewDirectory,
    /// A directory the layer replaced (or deleted and made again),
    /// holding a committed change.
    ReplacedDirectory,
    /// Another name of the same file (a hard link).
    HardLink,
}

impl NeededWhy {
    pub fn as_str(self) -> &'static str {
        match self {
            NeededWhy::NewDirectory => "new-directory",
            NeededWhy::ReplacedDirectory => "replaced-directory",
            NeededWhy::HardLink => "hard-link",
        }
    }
}

/// A change committed because a selected one needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Needed {
    /// Inside the root.
    #[serde(with = "almost_protocol::path")]
    pub path: PathBuf,
    /// The selected change (inside the root) that needs it.
    #[serde(with = "almost_protocol::path")]
    pub by: PathBuf,
    pub why: NeededWhy,
}

/// What a selective commit took, recorded in its journal and reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The paths asked for (or, with `except`, left out), inside the root.
    #[serde(with = "almost_protocol::path::list")]
    pub paths: Vec<PathBuf>,
    pub except: bool,
    /// The changes committed, the needed ones included.
    pub selected: u64,
    pub needed: Vec<Needed>,
    /// The changes left in the layer.
    pub rest: u64,
}

/// The asked paths of one part, relative to it (empty: the whole part).
pub(super) type Asked = Vec<Vec<PathBuf>>;

/// Maps the asked paths onto the layer's parts, before anything is done:
/// each must be inside one of them and name something in its upper tree
/// (a change, or a directory holding changes). A path that cannot name a
/// change is refused here, with the layer untouched and still mounted.
pub(super) fn resolve(layers: &Layers<'_>, meta: &LayerMeta, choice: &Choice) -> Result<Asked> {
    if choice.paths.is_empty() {
        return Err(Error::Usage(
            "--only and --except need at least one path".to_owned(),
        ));
    }
    let mut asked: Asked = vec![Vec::new(); meta.parts().len()];
    for path in &choice.paths {
        let bad = |reason: String| Error::InvalidPath {
            path: almost_protocol::path::encode(path),
            reason,
        };
        if !path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(bad(
                "not an absolute path without . or .. (paths as `layer diff` prints them)"
                    .to_owned(),
            ));
        }
        let Some((index, rel)) = meta
            .parts()
            .iter()
            .enumerate()
            .find_map(|(i, part)| path.strip_prefix(part).ok().map(|r| (i, r.to_owned())))
        else {
            return Err(bad(format!(
                "not inside the layer {} (it covers {})",
                meta.id,
                shown(meta.parts())
            )));
        };
        let upper = layers.upper_of(&meta.id, index);
        if !rel.as_os_str().is_empty()
            && entry::lstat(&upper.join(&rel))
                .map_err(|e| Error::io(format!("reading layer {}", meta.id), e))?
                .is_none()
        {
            return Err(bad(format!(
                "the layer {} has no change there (`almost layer diff {}` lists them)",
                meta.id, meta.id
            )));
        }
        asked[index].push(rel);
    }
    Ok(asked)
}

/// The touched paths of one part (parents first) that a selection can
/// take, for the expectations to cover them alone (capturing them reads and
/// hashes every file): those at or below an asked path (with `except`,
/// the others), every name of a file with several (a hard link's other
/// name is needed wherever it is), and the directories above them (a new
/// or replaced one is needed; the others' listings are verified).
pub(super) fn candidates(
    upper: &Path,
    touched: Vec<PathBuf>,
    asked: &[PathBuf],
    except: bool,
) -> io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let mut keep: BTreeSet<PathBuf> = BTreeSet::new();
    for rel in &touched {
        let take = asked.iter().any(|a| rel.starts_with(a)) != except
            || entry::lstat(&upper.join(rel))?.is_some_and(|m| !m.is_dir() && m.nlink() > 1);
        if take {
            for dir in rel.ancestors() {
                if !keep.insert(dir.to_owned()) {
                    break;
                }
            }
        }
    }
    Ok(touched
        .into_iter()
        .filter(|rel| keep.contains(rel))
        .collect())
}

fn shown(parts: &[PathBuf]) -> String {
    parts
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chooses the ops of every part: those at or below an asked path (all
/// the others with `except`), then what they need, until nothing more is
/// needed. Returns the chosen ops (in plan order) per part and the
/// selection. An asked path below which the plan has no op names no
/// change (a copied-up entry that differs in nothing): refused.
pub(super) fn choose(
    meta: &LayerMeta,
    choice: &Choice,
    asked: &Asked,
    plans: &[Vec<Op>],
) -> Result<(Vec<Vec<Op>>, Selection)> {
    let parts = meta.parts();
    let mut needed = Vec::new();
    let mut chosen_all = Vec::new();
    let (mut selected, mut rest) = (0u64, 0u64);
    for (index, ops) in plans.iter().enumerate() {
        let part = &parts[index];
        for rel in &asked[index] {
            if !ops.iter().any(|op| op.rel.starts_with(rel)) {
                return Err(Error::InvalidPath {
                    path: almost_protocol::path::encode(&part.join(rel)),
                    reason: format!(
                        "the layer {} changes nothing there (`almost layer diff {}` lists its changes)",
                        meta.id, meta.id
                    ),
                });
            }
        }
        let mut chosen: Vec<bool> = ops
            .iter()
            .map(|op| asked[index].iter().any(|rel| op.rel.starts_with(rel)) != choice.except)
            .collect();
        let at: BTreeMap<&Path, usize> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| (op.rel.as_path(), i))
            .collect();
        // The names of one inode: each Link with the op it links to.
        let mut groups: BTreeMap<&Path, Vec<usize>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let (OpKind::Link, Some(first)) = (op.kind, &op.link_to) {
                groups.entry(first.as_path()).or_default().push(i);
                if let Some(&f) = at.get(first.as_path()) {
                    groups.entry(first.as_path()).or_default().push(f);
                }
            }
        }
        loop {
            let mut more: Vec<(usize, usize, NeededWhy)> = Vec::new();
            for (i, op) in ops.iter().enumerate().filter(|(i, _)| chosen[*i]) {
                for dir in op.rel.ancestors().skip(1) {
                    if let Some(&d) = at.get(dir)
                        && !chosen[d]
                    {
                        match ops[d].kind {
                            OpKind::MakeDir => more.push((d, i, NeededWhy::NewDirectory)),
                            OpKind::ReplaceDir => more.push((d, i, NeededWhy::ReplacedDirectory)),
                            _ => {}
                        }
                    }
                }
            }
            for members in groups.values() {
                if let Some(&by) = members.iter().find(|m| chosen[**m]) {
                    more.extend(
                        members
                            .iter()
                            .filter(|m| !chosen[**m])
                            .map(|&m| (m, by, NeededWhy::HardLink)),
                    );
                }
            }
            if more.is_empty() {
                break;
            }
            for (d, by, why) in more {
                if !chosen[d] {
                    chosen[d] = true;
                    needed.push(Needed {
                        path: part.join(&ops[d].rel),
                        by: part.join(&ops[by].rel),
                        why,
                    });
                }
            }
        }
        let n = chosen.iter().filter(|c| **c).count() as u64;
        selected += n;
        rest += ops.len() as u64 - n;
        chosen_all.push(
            ops.iter()
                .zip(&chosen)
                .filter(|(_, c)| **c)
                .map(|(op, _)| op.clone())
                .collect::<Vec<_>>(),
        );
    }
    if selected == 0 {
        return Err(Error::InvalidPath {
            path: shown(&choice.paths),
            reason: format!(
                "that leaves no change of layer {} to commit (nothing was done)",
                meta.id
            ),
        });
    }
    Ok((
        chosen_all,
        Selection {
            paths: choice.paths.clone(),
            except: choice.except,
            selected,
            needed,
            rest,
        },
    ))
}

/// What the tree must show after the chosen ops: at each op's path what
/// the merged view showed (`after`, captured over every path the layer
/// touches); in each directory they write into, the names it had
/// (`before`) with theirs added and the deleted ones gone (a directory
/// the layer made or replaced starts empty); the link groups wholly
/// among them.
pub(super) fn expectation(after: &Expectation, before: &Expectation, ops: &[Op]) -> Expectation {
    let mut exp = Expectation::default();
    let paths: BTreeSet<&Path> = ops.iter().map(|op| op.rel.as_path()).collect();
    for op in ops {
        if let Some(desc) = after.entries.get(&op.rel) {
            exp.entries.insert(op.rel.clone(), desc.clone());
        }
    }
    let mut listings: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let fresh = |op: &Op| matches!(op.kind, OpKind::MakeDir | OpKind::ReplaceDir);
    let start = |dir: &Path| -> Option<BTreeSet<String>> {
        if ops.iter().any(|op| op.rel == dir && fresh(op)) {
            return Some(BTreeSet::new());
        }
        before
            .listings
            .get(dir)
            .map(|names| names.iter().cloned().collect())
    };
    if let Some(top) = start(Path::new("")) {
        listings.insert(PathBuf::new(), top);
    }
    for op in ops
        .iter()
        .filter(|op| fresh(op) || op.kind == OpKind::UpdateDir)
    {
        if let Some(names) = start(&op.rel) {
            listings.entry(op.rel.clone()).or_insert(names);
        }
    }
    for op in ops {
        let (Some(dir), Some(name)) = (op.rel.parent(), op.rel.file_name()) else {
            continue;
        };
        let Some(names) = (match listings.get_mut(dir) {
            Some(names) => Some(names),
            None => start(dir).map(|names| listings.entry(dir.to_owned()).or_insert(names)),
        }) else {
            continue;
        };
        let name = almost_protocol::path::encode_name(name);
        if op.kind == OpKind::Delete {
            names.remove(&name);
        } else {
            names.insert(name);
        }
    }
    exp.listings = listings
        .into_iter()
        .map(|(dir, names)| (dir, names.into_iter().collect()))
        .collect();
    exp.links = after.links.as_ref().map(|groups| {
        groups
            .iter()
            .filter(|g| g.iter().all(|p| paths.contains(p.as_path())))
            .cloned()
            .collect()
    });
    exp
}

/// A selective commit's layer taken off its trees while that commit is
/// undone (the undo reads and writes the trees beneath it); mounted again
/// when dropped, whether the undo succeeded or not. After a crash, the
/// undo resumed by the recovery takes it off and mounts it again the same
/// way.
pub(super) struct RestOff<'l, 's> {
    layers: &'l Layers<'s>,
    meta: Option<LayerMeta>,
}

impl Drop for RestOff<'_, '_> {
    fn drop(&mut self) {
        if let Some(meta) = &self.meta
            && let Err(e) = self.layers.mount(meta)
        {
            tracing::warn!("layer {} could not be mounted again: {e}", meta.id);
        }
    }
}

impl<'s> Layers<'s> {
    /// Before the undo of `journal`'s commit: when it was selective and its
    /// layer (the rest) is still mounted, unmounts it (refused while busy,
    /// naming the processes) until the guard returned is dropped.
    pub(super) fn rest_off<'l>(&'l self, journal: &Journal) -> Result<RestOff<'l, 's>> {
        let meta = match &journal.selection {
            Some(_) => self
                .get(&journal.layer.id)
                .ok()
                .filter(|meta| meta.parts() == journal.layer.parts())
                .filter(|meta| (0..meta.parts().len()).any(|i| self.part_mounted(meta, i))),
            None => None,
        };
        if let Some(meta) = &meta {
            self.unmount(meta)?;
        }
        Ok(RestOff { layers: self, meta })
    }
}

impl Layers<'_> {
    /// The end of a selective commit, safe to repeat: every committed
    /// change leaves the upper tree of each part not mounted (a part is
    /// mounted again only once this is done in all). A file, symlink,
    /// special file or whiteout goes; a directory goes when nothing is
    /// left below it, else loses its opaque mark (the tree beneath holds
    /// what it showed of it now).
    pub(super) fn take_out_committed(&self, journal: &Journal) -> Result<()> {
        for (index, part) in journal.parts.iter().enumerate() {
            if self.part_mounted(&journal.layer, index) {
                continue;
            }
            let err = |e: io::Error| {
                Error::io(
                    format!(
                        "taking the committed changes of {} out of layer {}",
                        journal.layer.parts()[index].display(),
                        journal.layer.id
                    ),
                    e,
                )
            };
            let upper_in_root = crate::paths::relative(Path::new(crate::layer::STORE))
                .join(&journal.layer.id)
                .join(Layers::numbered("upper", index));
            let upper = crate::fs::open_beneath(self.sys.root.fd(), &upper_in_root, DIR_FLAGS, 0)
                .map_err(err)?;
            take_out(upper.as_fd(), &part.ops).map_err(err)?;
            nix::unistd::syncfs(&upper).map_err(|e| err(e.into()))?;
        }
        Ok(())
    }
}

const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// Takes the entries of `ops` out of the upper tree `upper`, children
/// first. Every directory is opened beneath `upper` without a symlink on
/// the way (`openat2`), and the entry in it is removed by its name
/// (`unlinkat`) or, a directory still holding something, opened without
/// following a link to lose its opaque mark: a journal that names a path
/// through a symlink reaches nothing outside the layer (ELOOP). Safe to
/// repeat: what is gone already is skipped.
fn take_out(upper: std::os::fd::BorrowedFd<'_>, ops: &[Op]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    for op in ops.iter().rev() {
        let Some(name) = op.rel.file_name() else {
            continue;
        };
        let parent = match op.rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = match crate::fs::open_beneath(upper, parent, DIR_FLAGS, 0) {
            Ok(fd) => fd,
            // Its directory is gone already (taken out on an earlier run).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let cname = std::ffi::CString::new(name.as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: st is written by fstatat before it is read.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: cname is a valid C string, st a valid out pointer.
        let rc = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                cname.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::NotFound {
                continue;
            }
            return Err(e);
        }
        let dir_op = matches!(
            op.kind,
            OpKind::MakeDir | OpKind::ReplaceDir | OpKind::UpdateDir
        );
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir != dir_op {
            // Not what the plan saw there: left alone.
            continue;
        }
        if is_dir {
            let fd = crate::fs::open_beneath(dir.as_fd(), Path::new(name), DIR_FLAGS, 0)?;
            let mut listing = nix::dir::Dir::from_fd(fd.try_clone()?)?;
            let empty = listing
                .iter()
                .filter_map(std::result::Result::ok)
                .all(|e| matches!(e.file_name().to_bytes(), b"." | b".."));
            if !empty {
                match entry::remove_xattr_fd(fd.as_fd(), "trusted.overlay.opaque") {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
        }
        let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: cname is a valid C string.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn op(kind: OpKind, rel: &str, link_to: Option<&str>) -> Op {
        Op {
            kind,
            rel: PathBuf::from(rel),
            existed: false,
            link_to: link_to.map(PathBuf::from),
            old_meta: None,
        }
    }

    fn meta() -> LayerMeta {
        LayerMeta {
            id: "t".to_owned(),
            path: PathBuf::from("/usr"),
            created: 0,
            temporary: false,
            was_locked: false,
            paths: Vec::new(),
            system: false,
        }
    }

    fn rels(ops: &[Op]) -> Vec<String> {
        ops.iter().map(|o| o.rel.display().to_string()).collect()
    }

    // Checks the choice of ops: a file in a new directory brings the
    // directory (said, with why and by what), a child of a replaced
    // directory brings that directory, one name of a hard-linked pair
    // brings the other (and the new directory the other is in); an asked
    // directory takes its subtree; --except takes the complement plus
    // what it needs; the counts add up; an asked path with no op below it
    // and a selection that leaves nothing are refused.
    #[test]
    fn chooses_what_is_asked_and_what_it_needs() {
        let plan = vec![
            op(OpKind::Write, "a/edit", None),
            op(OpKind::MakeDir, "new", None),
            op(OpKind::MakeDir, "new/deeper", None),
            op(OpKind::Write, "new/deeper/f", None),
            op(OpKind::Write, "new/g", None),
            op(OpKind::ReplaceDir, "rep", None),
            op(OpKind::Write, "rep/x", None),
            op(OpKind::Write, "rep/y", None),
            op(OpKind::MakeDir, "ln", None),
            op(OpKind::Write, "ln/one", None),
            op(OpKind::Link, "two", Some("ln/one")),
            op(OpKind::Delete, "gone", None),
        ];
        let m = meta();
        let only = |paths: &[&str]| Choice {
            paths: paths.iter().map(|p| Path::new("/usr").join(p)).collect(),
            except: false,
        };
        let asked = |paths: &[&str]| vec![paths.iter().map(PathBuf::from).collect::<Vec<_>>()];
        let run = |c: &Choice, a: &Asked| choose(&m, c, a, std::slice::from_ref(&plan));

        let (ops, sel) = run(&only(&["new/deeper/f"]), &asked(&["new/deeper/f"])).unwrap();
        assert_eq!(rels(&ops[0]), ["new", "new/deeper", "new/deeper/f"]);
        assert_eq!(
            sel.needed,
            vec![
                Needed {
                    path: "/usr/new/deeper".into(),
                    by: "/usr/new/deeper/f".into(),
                    why: NeededWhy::NewDirectory
                },
                Needed {
                    path: "/usr/new".into(),
                    by: "/usr/new/deeper/f".into(),
                    why: NeededWhy::NewDirectory
                },
            ]
        );
        assert_eq!((sel.selected, sel.rest), (3, 9));

        let (ops, sel) = run(&only(&["rep/y"]), &asked(&["rep/y"])).unwrap();
        assert_eq!(rels(&ops[0]), ["rep", "rep/y"]);
        assert_eq!(sel.needed[0].why, NeededWhy::ReplacedDirectory);

        let (ops, sel) = run(&only(&["two"]), &asked(&["two"])).unwrap();
        assert_eq!(rels(&ops[0]), ["ln", "ln/one", "two"]);
        assert_eq!(
            sel.needed.iter().map(|n| n.why).collect::<Vec<_>>(),
            [NeededWhy::HardLink, NeededWhy::NewDirectory]
        );

        let (ops, _) = run(&only(&["new"]), &asked(&["new"])).unwrap();
        assert_eq!(
            rels(&ops[0]),
            ["new", "new/deeper", "new/deeper/f", "new/g"]
        );

        let mut except = only(&["new/deeper/f", "rep", "ln/one"]);
        except.except = true;
        let (ops, sel) = run(&except, &asked(&["new/deeper/f", "rep", "ln/one"])).unwrap();
        // two needs ln/one (its other name), which needs ln.
        assert_eq!(
            rels(&ops[0]),
            [
                "a/edit",
                "new",
                "new/deeper",
                "new/g",
                "ln",
                "ln/one",
                "two",
                "gone"
            ]
        );
        assert_eq!((sel.selected, sel.rest), (8, 4));

        let err = run(&only(&["a"]), &asked(&["b"])).unwrap_err();
        assert!(err.to_string().contains("changes nothing there"), "{err}");
        let mut all = only(&[""]);
        all.except = true;
        let err = run(&all, &asked(&[""])).unwrap_err();
        assert!(err.to_string().contains("no change"), "{err}");
    }

    // Checks taking the committed entries out of an upper tree: a file and
    // a whiteout go, a committed directory left empty goes, one still
    // holding a change stays and loses its opaque mark, an entry not
    // committed stays; repeated, nothing more happens. A path through a
    // symlink (a directory swapped for one to the outside) is refused
    // (ENOTDIR or ELOOP) and the outside file stays: with path-based removal it was
    // deleted.
    #[test]
    fn taking_out_removes_the_committed_entries_and_follows_no_symlink() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (whiteouts, trusted xattrs)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("upper");
        for d in ["new/kept", "rep", "emptied"] {
            fs::create_dir_all(up.join(d)).unwrap();
        }
        for f in ["new/kept/f", "new/kept/rest", "rep/x", "emptied/y", "file"] {
            fs::write(up.join(f), f).unwrap();
        }
        entry::set_xattr(&up.join("rep"), "trusted.overlay.opaque", b"y").unwrap();
        nix::sys::stat::mknod(
            &up.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let ops = vec![
            op(OpKind::Write, "file", None),
            op(OpKind::Delete, "gone", None),
            op(OpKind::MakeDir, "new", None),
            op(OpKind::MakeDir, "new/kept", None),
            op(OpKind::Write, "new/kept/f", None),
            op(OpKind::ReplaceDir, "rep", None),
            op(OpKind::MakeDir, "emptied", None),
            op(OpKind::Write, "emptied/y", None),
        ];
        let fd = crate::fs::open_beneath(
            nix::fcntl::open(
                dir.path(),
                nix::fcntl::OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap()
            .as_fd(),
            Path::new("upper"),
            DIR_FLAGS,
            0,
        )
        .unwrap();
        for _ in 0..2 {
            take_out(fd.as_fd(), &ops).unwrap();
            let mut left: Vec<String> = Vec::new();
            entry::preorder(&up, (), |rel, ()| {
                left.push(rel.display().to_string());
                Ok(up.join(rel).is_dir().then_some(()))
            })
            .unwrap();
            assert_eq!(left, ["new", "new/kept", "new/kept/rest", "rep", "rep/x"]);
            assert!(
                entry::get_xattr(&up.join("rep"), "trusted.overlay.opaque")
                    .unwrap()
                    .is_none()
            );
        }

        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("victim"), "v").unwrap();
        std::os::unix::fs::symlink(&outside, up.join("link")).unwrap();
        let err = take_out(fd.as_fd(), &[op(OpKind::Write, "link/victim", None)]).unwrap_err();
        // ENOTDIR (the symlink is the last name, opened O_NOFOLLOW |
        // O_DIRECTORY) or ELOOP (a symlink on the way).
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)),
            "{err}"
        );
        assert!(outside.join("victim").exists());
    }

    // Checks what a selective commit reads of the layer: the paths at or
    // below the asked one and the directories above them, every name of a
    // hard-linked file wherever it is (and its directories), not the rest;
    // with --except, everything but the subtree excepted (its link kept).
    #[test]
    fn candidates_are_the_asked_subtrees_their_parents_and_linked_names() {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path();
        for d in ["a/deep", "b", "c", "d"] {
            fs::create_dir_all(up.join(d)).unwrap();
        }
        for f in ["a/deep/x", "b/y", "c/l1"] {
            fs::write(up.join(f), f).unwrap();
        }
        fs::hard_link(up.join("c/l1"), up.join("d/l2")).unwrap();
        let touched: Vec<PathBuf> = [
            "a", "a/deep", "a/deep/x", "b", "b/y", "c", "c/l1", "d", "d/l2",
        ]
        .map(PathBuf::from)
        .to_vec();
        let names = |v: Vec<PathBuf>| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        };
        let got = candidates(up, touched.clone(), &[PathBuf::from("a/deep/x")], false).unwrap();
        assert_eq!(
            names(got),
            ["a", "a/deep", "a/deep/x", "c", "c/l1", "d", "d/l2"]
        );
        let got = candidates(up, touched, &[PathBuf::from("c"), PathBuf::from("a")], true).unwrap();
        assert_eq!(names(got), ["b", "b/y", "c", "c/l1", "d", "d/l2"]);
    }

    // Checks the expectation of a selective commit: the chosen ops' entries
    // as the merged view showed them, the listing of the directory they
    // write into as before plus the new names minus the deleted ones, a
    // replaced directory's listing starting empty (only its chosen
    // children), and a link group kept only when all its names are chosen.
    #[test]
    fn the_expectation_covers_the_chosen_ops_only() {
        let d = |kind| {
            Some(entry::Description {
                kind,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: 0,
                hash: None,
                link: None,
                rdev: 0,
                xattrs: BTreeMap::new(),
            })
        };
        let mut after = Expectation::default();
        for (p, k) in [
            ("n", entry::EntryType::File),
            ("m", entry::EntryType::File),
            ("r", entry::EntryType::Dir),
            ("r/a", entry::EntryType::File),
            ("r/b", entry::EntryType::File),
        ] {
            after.entries.insert(p.into(), d(k));
        }
        after.entries.insert("gone".into(), None);
        after.links = Some(vec![vec!["m".into(), "n".into()]]);
        let mut before = Expectation::default();
        before.listings.insert(
            PathBuf::new(),
            vec!["gone".into(), "keep".into(), "r".into()],
        );
        before.listings.insert("r".into(), vec!["old".into()]);
        let ops = vec![
            op(OpKind::Delete, "gone", None),
            op(OpKind::Write, "n", None),
            op(OpKind::ReplaceDir, "r", None),
            op(OpKind::Write, "r/a", None),
        ];
        let exp = expectation(&after, &before, &ops);
        assert_eq!(
            exp.entries
                .keys()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
            ["gone", "n", "r", "r/a"]
        );
        assert_eq!(exp.listings[Path::new("")], ["keep", "n", "r"]);
        assert_eq!(exp.listings[Path::new("r")], ["a"]);
        assert_eq!(exp.links, Some(Vec::new()));
    }
}
