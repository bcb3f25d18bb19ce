// SPDX-License-Identifier: GPL-3.0-or-later
//! The commit journal: its format, how it is read back (as untrusted
//! input), and the phases a commit goes through.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::JOURNAL;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::layer::entry::Description;
use crate::layer::{LayerMeta, Layers, check_meta};

/// serde for the journal's paths, which are bytes: each is almost-protocol's
/// string for it (UTF-8 as is, `\\` for a backslash, `\xNN` for any other
/// byte), so a name that is not UTF-8 is written and read back exactly.
mod bytes {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use almost_protocol::path::{decode, encode};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    fn decoded<E: serde::de::Error>(text: &str) -> Result<PathBuf, E> {
        decode(text).map_err(|e| E::custom(format!("{text:?}: {e}")))
    }

    pub mod opt {
        use super::*;

        pub fn serialize<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
            p.as_deref().map(encode).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|t| decoded(&t))
                .transpose()
        }
    }

    pub mod map {
        use super::*;

        pub fn serialize<S: Serializer, V: Serialize>(
            m: &BTreeMap<PathBuf, V>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_map(m.iter().map(|(k, v)| (encode(k), v)))
        }

        pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
            d: D,
        ) -> Result<BTreeMap<PathBuf, V>, D::Error> {
            let raw = BTreeMap::<String, V>::deserialize(d)?;
            let mut out = BTreeMap::new();
            for (k, v) in raw {
                if out.insert(decoded::<D::Error>(&k)?, v).is_some() {
                    return Err(D::Error::custom(format!("{k:?} twice")));
                }
            }
            Ok(out)
        }
    }

    pub mod groups {
        use super::*;

        pub fn serialize<S: Serializer>(
            g: &Option<Vec<Vec<PathBuf>>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            g.as_ref()
                .map(|g| {
                    g.iter()
                        .map(|names| names.iter().map(|p| encode(p)).collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                })
                .serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<Vec<PathBuf>>>, D::Error> {
            Option::<Vec<Vec<String>>>::deserialize(d)?
                .map(|g| {
                    g.iter()
                        .map(|names| names.iter().map(|t| decoded(t)).collect())
                        .collect()
                })
                .transpose()
        }
    }
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub kind: OpKind,
    /// Path relative to the layer's directory.
    #[serde(with = "almost_protocol::path")]
    pub rel: PathBuf,
    /// Whether something was at `rel` in the lower tree (it is backed up).
    pub existed: bool,
    /// For `Link`: the earlier op's path this is a second name of.
    #[serde(with = "bytes::opt")]
    pub link_to: Option<PathBuf>,
    /// For `UpdateDir`: the metadata to put back on undo.
    pub old_meta: Option<Meta>,
}

/// What the tree must look like: per touched path its description (`None`:
/// absent), for directories the sorted names inside, and which touched
/// names share an inode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    #[serde(with = "bytes::map")]
    pub entries: BTreeMap<PathBuf, Option<Description>>,
    /// The names in each directory, as almost-protocol's strings.
    #[serde(with = "bytes::map")]
    pub listings: BTreeMap<PathBuf, Vec<String>>,
    /// The link groups among the touched paths: every set of two or more
    /// of them that are one inode (any kind but a directory: ext4 links
    /// symlinks, fifos and device nodes too), each sorted, in order.
    /// `None` in a journal written before link groups were recorded (then
    /// not compared).
    #[serde(default, with = "bytes::groups")]
    pub links: Option<Vec<Vec<PathBuf>>>,
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

/// What a commit does in one part of the layer (one directory it covers),
/// and what that directory must look like after it and before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartPlan {
    pub ops: Vec<Op>,
    /// The merged view before the commit.
    pub after: Expectation,
    /// The lower tree before the commit (what undo and roll-back restore).
    pub before: Expectation,
}

/// One journal for the whole layer: one phase for all its parts, so a
/// crash leaves every part old or every part new (recovery rolls them all
/// forward, or all back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawJournal")]
pub struct Journal {
    pub layer: LayerMeta,
    pub phase: Phase,
    /// One per part of the layer, in the order of its paths.
    pub parts: Vec<PartPlan>,
    /// Whether to lock the covered trees (those that are lockable) once
    /// done.
    pub relock: bool,
    /// A selective commit (`--only`, `--except`): what was asked and what
    /// was added because needed. The ops are then the selected ones only,
    /// `after` what they leave in the tree, and the layer keeps the rest.
    /// Absent: the whole layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<super::select::Selection>,
}

impl Journal {
    /// The number of ops over all parts.
    pub fn op_count(&self) -> usize {
        self.parts.iter().map(|p| p.ops.len()).sum()
    }
}

/// A journal as written: `parts`, or, from an almost before layers had
/// parts, the one part's `ops`, `after` and `before` at the top (an
/// interrupted commit or the undo data left by an upgrade).
#[derive(Deserialize)]
struct RawJournal {
    layer: LayerMeta,
    phase: Phase,
    #[serde(default)]
    parts: Option<Vec<PartPlan>>,
    #[serde(default)]
    ops: Option<Vec<Op>>,
    #[serde(default)]
    after: Option<Expectation>,
    #[serde(default)]
    before: Option<Expectation>,
    relock: bool,
    #[serde(default)]
    selection: Option<super::select::Selection>,
}

impl TryFrom<RawJournal> for Journal {
    type Error = String;

    fn try_from(raw: RawJournal) -> std::result::Result<Journal, String> {
        let parts = match (raw.parts, raw.ops, raw.after, raw.before) {
            (Some(parts), None, None, None) => parts,
            (None, Some(ops), Some(after), Some(before)) => vec![PartPlan { ops, after, before }],
            _ => return Err("neither parts nor one part's ops, after and before".to_owned()),
        };
        if parts.len() != raw.layer.parts().len() {
            return Err(format!(
                "{} parts for a layer of {}",
                parts.len(),
                raw.layer.parts().len()
            ));
        }
        Ok(Journal {
            layer: raw.layer,
            phase: raw.phase,
            parts,
            relock: raw.relock,
            selection: raw.selection,
        })
    }
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
    for part in &journal.parts {
        let mut named: Vec<&PathBuf> = Vec::new();
        for op in &part.ops {
            named.extend(std::iter::once(&op.rel).chain(op.link_to.as_ref()));
        }
        for exp in [&part.after, &part.before] {
            named.extend(exp.entries.keys());
            named.extend(exp.links.iter().flatten().flatten());
        }
        // Listings are also kept of the layer's top: the empty path.
        let listed = [&part.after, &part.before].map(|exp| exp.listings.keys());
        let wrong = named
            .iter()
            .copied()
            .find(|rel| rel.as_os_str().is_empty() || !plain(rel))
            .or_else(|| listed.into_iter().flatten().find(|rel| !plain(rel)));
        if let Some(rel) = wrong {
            return Err(bad(format!("{rel:?} is not a path inside the layer")));
        }
    }
    Ok(journal)
}

impl Layers<'_> {
    pub(super) fn journal_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(JOURNAL)
    }

    pub(super) fn save_journal(&self, journal: &Journal) -> Result<()> {
        let path = self.journal_path(&journal.layer.id);
        let bytes = serde_json::to_vec(journal)
            .map_err(|e| Error::io("encoding the journal", io::Error::other(e)))?;
        write_atomic(&path, &bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }
}
