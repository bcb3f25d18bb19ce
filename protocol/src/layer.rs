// SPDX-License-Identifier: GPL-3.0-or-later
//! What the `layer` commands answer: the list, a diff, and the layer an act
//! was about. These are not `layer.json` (almost-core's private record of a
//! layer): `almost` fills them from it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// An act on a layer left to the next boot (`layer commit --at-boot`,
/// `layer discard --at-boot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtBoot {
    Commit,
    Discard,
}

/// A layer as `layer list` (and `overview`) shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub id: String,
    /// The first directory the layer covers, inside the root (kept for
    /// clients that know of one directory only: all of them are `paths`).
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    /// Every directory the layer covers, `path` first (a layer covers
    /// one or several directories, committed, discarded and undone as
    /// one). Absent from an older almost's answer: then `[path]`.
    #[serde(default, with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    /// A system layer (`layer new --system`): the managed trees, `/etc`
    /// and the package manager's state, for a software change.
    #[serde(default)]
    pub system: bool,
    /// Unix time of creation.
    pub created: u64,
    /// Discarded at boot instead of re-mounted.
    pub temporary: bool,
    pub mounted: bool,
    /// Number of changes: `None` when not counted (without root, the
    /// overlay's `trusted.*` attributes cannot be read).
    pub changes: Option<u64>,
    /// Bytes used by the layer's changes.
    pub size: u64,
    /// What the next boot does with the layer before anything uses it.
    #[serde(default)]
    pub pending: Option<AtBoot>,
}

impl Layer {
    /// The covered path as the protocol writes it (what a reader shows).
    pub fn path_text(&self) -> String {
        crate::path::encode(&self.path)
    }

    /// Every covered directory (`[path]` from an older almost).
    pub fn parts(&self) -> &[PathBuf] {
        parts(&self.path, &self.paths)
    }

    /// Every covered directory as the protocol writes them, comma-separated.
    pub fn paths_text(&self) -> String {
        self.parts()
            .iter()
            .map(|p| crate::path::encode(p))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `paths`, or `[path]` when an older almost sent none.
fn parts<'a>(path: &'a PathBuf, paths: &'a [PathBuf]) -> &'a [PathBuf] {
    if paths.is_empty() {
        std::slice::from_ref(path)
    } else {
        paths
    }
}

/// `layer list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerList {
    pub layers: Vec<Layer>,
}

/// `layer new`: the layer just made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLayer {
    pub id: String,
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    /// Every directory the layer covers, `path` first (a layer covers
    /// one or several directories, committed, discarded and undone as
    /// one). Absent from an older almost's answer: then `[path]`.
    #[serde(default, with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub system: bool,
    /// `--system`: the directories of the system set that the root does
    /// not have, left out of the layer.
    #[serde(default, with = "crate::path::list")]
    pub left_out: Vec<PathBuf>,
    pub created: u64,
    pub temporary: bool,
}

/// `layer discard`, `layer mount`: the layer acted on. `at_boot`: the act
/// is left to the next boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    pub id: String,
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    /// Every directory the layer covers, `path` first (a layer covers
    /// one or several directories, committed, discarded and undone as
    /// one). Absent from an older almost's answer: then `[path]`.
    #[serde(default, with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub at_boot: bool,
}

/// `layer commit`: done now (`applied` operations, `outcome`), or left to
/// the next boot (`at_boot`, no count yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerCommit {
    pub id: String,
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    /// Every directory the layer covers, `path` first (a layer covers
    /// one or several directories, committed, discarded and undone as
    /// one). Absent from an older almost's answer: then `[path]`.
    #[serde(default, with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub at_boot: bool,
    #[serde(default)]
    pub applied: Option<u64>,
    /// `committed` (or, after a recovery, what it did); `None` at boot.
    #[serde(default)]
    pub outcome: Option<String>,
    /// A selective commit (`--only`, `--except`): what it took, what it
    /// added because needed, and what stays in the layer (which stays
    /// mounted). Absent for a whole commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<CommitSelection>,
}

/// What a selective commit took and left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSelection {
    /// The paths asked for (with `except`: left out), inside the root.
    #[serde(with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    pub except: bool,
    /// The changes committed, the needed ones included.
    pub selected: u64,
    /// The changes committed although not asked for, because a selected
    /// one needs them.
    pub needed: Vec<NeededChange>,
    /// The changes left in the layer (`layer diff` lists them).
    pub rest: u64,
}

/// A change a selective commit took because another needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeededChange {
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    /// The selected change that needs it.
    #[serde(with = "crate::path")]
    pub by: PathBuf,
    /// `new-directory` (the directory the layer made that holds it),
    /// `replaced-directory` (the one it replaced), `hard-link` (another
    /// name of the same file).
    pub why: String,
}

/// `layer undo`: what the undo did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReport {
    pub id: String,
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    /// Every directory the layer covers, `path` first (a layer covers
    /// one or several directories, committed, discarded and undone as
    /// one). Absent from an older almost's answer: then `[path]`.
    #[serde(default, with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    pub applied: u64,
    pub outcome: String,
}

/// The kind of a change in a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Metadata,
    Deleted,
    Replaced,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Metadata => "metadata",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Replaced => "replaced",
        }
    }
}

/// The type of a file-system entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::Symlink => "symlink",
            EntryType::Char => "char",
            EntryType::Block => "block",
            EntryType::Fifo => "fifo",
            EntryType::Socket => "socket",
        }
    }
}

/// One change of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The path inside the root.
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    pub change: ChangeKind,
    /// The entry's type after the change (before it, for a deletion).
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub old_type: Option<EntryType>,
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
    pub old_hash: Option<String>,
    pub new_hash: Option<String>,
    /// What else changed, in words (mode, owner, xattrs, link target): for
    /// a terminal, in English; `meta` has the same as data.
    pub detail: Option<String>,
    /// What else changed, as data, for a reader to say in its own words
    /// (absent when nothing did, and from an older almost).
    #[serde(default, skip_serializing_if = "MetaChange::is_empty")]
    pub meta: MetaChange,
    /// The content is not text (no patch can be shown).
    pub binary: bool,
    /// Unified diff of a modified text file, or a new text file's whole
    /// content as one (from nothing), when asked for.
    pub patch: Option<String>,
}

/// What changed of an entry besides its content: each field `[before,
/// after]` when it changed, absent when not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaChange {
    /// The permission bits (`mode & 0o7777`: setuid, setgid, sticky, rwx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<(u32, u32)>,
    /// The owner's uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<(u32, u32)>,
    /// The group's gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<(u32, u32)>,
    /// The names of the extended attributes added, changed or removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<String>,
    /// A symbolic link's target (almost-protocol's path strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<(String, String)>,
    /// How many entries the old directory held, all of them gone (a
    /// deleted directory, or one the layer made anew): one number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_entries: Option<u64>,
}

impl MetaChange {
    pub fn is_empty(&self) -> bool {
        *self == MetaChange::default()
    }
}

impl Diff {
    /// Every covered directory (`[path]` from an older almost).
    pub fn parts(&self) -> &[PathBuf] {
        parts(&self.path, &self.paths)
    }
}

impl NewLayer {
    /// Every covered directory (`[path]` from an older almost).
    pub fn parts(&self) -> &[PathBuf] {
        parts(&self.path, &self.paths)
    }
}

impl LayerRef {
    /// Every covered directory (`[path]` from an older almost).
    pub fn parts(&self) -> &[PathBuf] {
        parts(&self.path, &self.paths)
    }
}

impl LayerCommit {
    /// Every covered directory (`[path]` from an older almost).
    pub fn parts(&self) -> &[PathBuf] {
        parts(&self.path, &self.paths)
    }
}

impl CommitReport {
    /// Every covered directory (`[path]` from an older almost).
    pub fn parts(&self) -> &[PathBuf] {
        parts(&self.path, &self.paths)
    }
}

impl Change {
    /// The path as the protocol writes it (what a reader shows).
    pub fn path_text(&self) -> String {
        crate::path::encode(&self.path)
    }
}

/// `layer diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub id: String,
    #[serde(with = "crate::path")]
    pub path: PathBuf,
    /// Every directory the layer covers, `path` first. `changes` are
    /// grouped by them, in this order: each change lies under exactly one
    /// (the parts of a layer never overlap). Absent from an older almost.
    #[serde(default, with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    pub changes: Vec<Change>,
}
