// SPDX-License-Identifier: GPL-3.0-or-later
//! The diff of a layer: `layer::diff::diff` (and `diff::touched`) on two
//! real trees built from the input, a lower tree and an upper one with
//! the kernel's marks (whiteouts as a 0:0 character device or as an empty
//! file with `trusted.overlay.whiteout`, opaque directories), in a scratch
//! directory on tmpfs. The trees are also kept as data, and a model of
//! overlayfs written from the documentation (what the merged view shows)
//! says what the changes must be: every change, its kind, its type, the
//! type it replaces, whether it is binary and whether a patch comes with
//! it, in the walk's order.
//!
//! Whiteouts and trusted xattrs need root: without it they are left out.

#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use almost_core::layer::diff::{self, ChangeKind};
use almost_core::layer::entry::{self, EntryType};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const CONTENTS: [&[u8]; 4] = [b"", b"one\n", b"two\n", b"\0\x01"];
const FILE_MODES: [u32; 4] = [0o644, 0o600, 0o755, 0o4755];
const DIR_MODES: [u32; 4] = [0o755, 0o700, 0o775, 0o1777];
const TARGETS: [&str; 3] = ["a", "b", "/usr/x"];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    File {
        content: u8,
        mode: u8,
        xattr: Option<u8>,
    },
    Dir {
        mode: u8,
        xattr: Option<u8>,
        opaque: bool,
    },
    Symlink {
        target: u8,
    },
    Fifo {
        mode: u8,
    },
    /// A 0:0 character device (in the lower tree: a FIFO).
    Whiteout,
    /// An empty file marked `trusted.overlay.whiteout`.
    MarkedWhiteout,
}

#[derive(Arbitrary, Debug)]
struct EntrySpec {
    upper: bool,
    path: [u8; 3],
    kind: Kind,
}

#[derive(Arbitrary, Debug)]
struct Spec {
    patches: bool,
    entries: Vec<EntrySpec>,
}

/// One entry as the model sees it.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    File {
        content: &'static [u8],
        mode: u32,
        xattr: Option<u8>,
    },
    Dir {
        mode: u32,
        xattr: Option<u8>,
        opaque: bool,
    },
    Symlink {
        target: &'static str,
    },
    Fifo {
        mode: u32,
    },
    Whiteout,
    MarkedWhiteout,
}

impl Node {
    fn of(kind: Kind, upper: bool, root: bool) -> Option<Node> {
        let pick = |table: &[u32; 4], i: u8| table[usize::from(i % 4)];
        Some(match kind {
            Kind::File {
                content,
                mode,
                xattr,
            } => Node::File {
                content: CONTENTS[usize::from(content % 4)],
                mode: pick(&FILE_MODES, mode),
                xattr,
            },
            Kind::Dir {
                mode,
                xattr,
                opaque,
            } => Node::Dir {
                mode: pick(&DIR_MODES, mode),
                xattr,
                opaque: opaque && upper && root,
            },
            Kind::Symlink { target } => Node::Symlink {
                target: TARGETS[usize::from(target % 3)],
            },
            Kind::Fifo { mode } => Node::Fifo {
                mode: pick(&FILE_MODES, mode),
            },
            Kind::Whiteout | Kind::MarkedWhiteout if !upper => Node::Fifo { mode: 0o644 },
            _ if !root => return None,
            Kind::Whiteout => Node::Whiteout,
            Kind::MarkedWhiteout => Node::MarkedWhiteout,
        })
    }

    fn kind(&self) -> EntryType {
        match self {
            Node::File { .. } | Node::MarkedWhiteout => EntryType::File,
            Node::Dir { .. } => EntryType::Dir,
            Node::Symlink { .. } => EntryType::Symlink,
            Node::Fifo { .. } => EntryType::Fifo,
            Node::Whiteout => EntryType::Char,
        }
    }

    fn is_whiteout(&self) -> bool {
        matches!(self, Node::Whiteout | Node::MarkedWhiteout)
    }

    /// Data, link target or device: what `same_content` compares.
    fn content(&self) -> Vec<u8> {
        match self {
            Node::File { content, .. } => content.to_vec(),
            Node::Symlink { target } => target.as_bytes().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Mode and own xattrs: what `same_metadata` compares (owners are
    /// all root here).
    fn metadata(&self) -> (u32, Option<u8>) {
        match self {
            Node::File { mode, xattr, .. } => (*mode, *xattr),
            Node::Dir { mode, xattr, .. } => (*mode, *xattr),
            Node::Fifo { mode } => (*mode, None),
            Node::Symlink { .. } => (0o777, None),
            Node::Whiteout | Node::MarkedWhiteout => (0, None),
        }
    }
}

type Tree = BTreeMap<PathBuf, Node>;

/// Adds `node` at `rel`, with plain directories for missing parents;
/// nothing when a parent is not a directory or `rel` is taken.
fn insert(tree: &mut Tree, rel: &Path, node: Node) {
    let parents: Vec<&Path> = rel
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    for parent in &parents {
        if tree
            .get(*parent)
            .is_some_and(|n| !matches!(n, Node::Dir { .. }))
        {
            return;
        }
    }
    if tree.contains_key(rel) {
        return;
    }
    for parent in parents {
        tree.entry(parent.to_owned()).or_insert(Node::Dir {
            mode: 0o755,
            xattr: None,
            opaque: false,
        });
    }
    tree.insert(rel.to_owned(), node);
}

fn build(top: &Path, tree: &Tree) -> std::io::Result<()> {
    fs::create_dir(top)?;
    for (rel, node) in tree {
        let path = top.join(rel);
        let xattr = |x: &Option<u8>| match x {
            Some(v) => entry::set_xattr(&path, "user.fuzz", &[*v]),
            None => Ok(()),
        };
        match node {
            Node::File {
                content,
                mode,
                xattr: x,
            } => {
                fs::write(&path, content)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
                xattr(x)?;
            }
            Node::Dir {
                mode,
                xattr: x,
                opaque,
            } => {
                fs::create_dir(&path)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
                xattr(x)?;
                if *opaque {
                    entry::set_xattr(&path, "trusted.overlay.opaque", b"y")?;
                }
            }
            Node::Symlink { target } => std::os::unix::fs::symlink(target, &path)?,
            Node::Fifo { mode } => {
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
            }
            Node::Whiteout => nix::sys::stat::mknod(
                &path,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )?,
            Node::MarkedWhiteout => {
                fs::write(&path, b"")?;
                entry::set_xattr(&path, "trusted.overlay.whiteout", b"")?;
            }
        }
    }
    Ok(())
}

fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
}

/// One expected change: path, kind, type, old type, binary, patch.
type Expected = (String, ChangeKind, EntryType, Option<EntryType>, bool, bool);

/// What the diff must report, from the trees as data: the upper tree
/// walked parents first, names sorted; below an added, replaced or opaque
/// directory nothing of the lower tree shows.
fn model(lower: &Tree, upper: &Tree, patches: bool) -> Vec<Expected> {
    let mut out = Vec::new();
    let mut lower_below: BTreeMap<&Path, bool> = BTreeMap::new();
    for (rel, new) in upper {
        let shows = rel
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .is_none_or(|p| lower_below.get(p).copied().unwrap_or(false));
        let old = if shows { lower.get(rel) } else { None };
        let name = format!("/usr/{}", rel.display());
        let mut push = |change, binary, patch| {
            let kind = if new.is_whiteout() {
                old.map_or(EntryType::File, Node::kind)
            } else {
                new.kind()
            };
            out.push((
                name.clone(),
                change,
                kind,
                old.map(Node::kind),
                binary,
                patch,
            ));
        };
        if new.is_whiteout() {
            if old.is_some() {
                push(ChangeKind::Deleted, false, false);
            }
            continue;
        }
        if let Node::Dir { opaque, .. } = new {
            let below = match old {
                None => {
                    push(ChangeKind::Added, false, false);
                    false
                }
                Some(o) if o.kind() != EntryType::Dir || *opaque => {
                    push(ChangeKind::Replaced, false, false);
                    false
                }
                Some(o) => {
                    if o.metadata() != new.metadata() {
                        push(ChangeKind::Metadata, false, false);
                    }
                    true
                }
            };
            lower_below.insert(rel, below);
            continue;
        }
        let file = new.kind() == EntryType::File;
        match old {
            None => {
                let binary = file && !is_text(&new.content());
                // A new text file's content comes as a patch from nothing.
                push(ChangeKind::Added, binary, file && patches && !binary);
            }
            Some(o) if o.kind() != new.kind() => push(ChangeKind::Replaced, false, false),
            Some(o) if o.content() != new.content() => {
                let binary = file && !(is_text(&o.content()) && is_text(&new.content()));
                push(ChangeKind::Modified, binary, file && patches && !binary);
            }
            Some(o) if o.metadata() != new.metadata() => push(ChangeKind::Metadata, false, false),
            Some(_) => {}
        }
    }
    out
}

fn path_of(bytes: [u8; 3]) -> PathBuf {
    let mut rel = PathBuf::from(NAMES[usize::from(bytes[0] % 4)]);
    for b in &bytes[1..] {
        match NAMES.get(usize::from(b % 6)) {
            Some(name) => rel.push(name),
            None => break,
        }
    }
    rel
}

fuzz_target!(|spec: Spec| {
    let root = nix::unistd::geteuid().is_root();
    let (mut lower, mut upper) = (Tree::new(), Tree::new());
    for e in spec.entries.iter().take(32) {
        if let Some(node) = Node::of(e.kind, e.upper, root) {
            let tree = if e.upper { &mut upper } else { &mut lower };
            insert(tree, &path_of(e.path), node);
        }
    }
    let dir = tempfile::tempdir_in(almost_fuzz::scratch("diff")).expect("scratch");
    let (l, u) = (dir.path().join("lower"), dir.path().join("upper"));
    build(&l, &lower).expect("building the lower tree");
    build(&u, &upper).expect("building the upper tree");

    let changes = diff::diff(&u, &l, Path::new("/usr"), spec.patches)
        .unwrap_or_else(|e| panic!("diff failed: {e}\nlower {lower:?}\nupper {upper:?}"));
    let got: Vec<Expected> = changes
        .iter()
        .map(|c| {
            (
                c.path.to_string_lossy().into_owned(),
                c.change,
                c.kind,
                c.old_type,
                c.binary,
                c.patch.is_some(),
            )
        })
        .collect();
    assert_eq!(
        got,
        model(&lower, &upper, spec.patches),
        "lower {lower:?}\nupper {upper:?}"
    );
    let touched = diff::touched(&u).expect("touched");
    assert!(
        touched.iter().eq(upper.keys()),
        "touched {touched:?}, upper {upper:?}"
    );
});
