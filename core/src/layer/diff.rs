// SPDX-License-Identifier: GPL-3.0-or-later
//! What a layer changes, read from its upper directory against the lower
//! tree: overlayfs records a deletion as a whiteout (a 0:0 character device,
//! or a file carrying `trusted.overlay.whiteout`), a directory that was
//! deleted and recreated as opaque (`trusted.overlay.opaque=y`), and
//! everything else as a copy in the upper tree. Copied-up parents that
//! differ in nothing are not changes.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::entry::{self, Description, EntryType};
use almost_protocol::layer::MetaChange;

/// Text files up to this size get a unified diff with `--patch`.
const MAX_PATCH_BYTES: u64 = 1 << 20;

/// What happened to a path: the protocol's word for it (a diff is
/// computed, never stored, so it has no private form).
pub use almost_protocol::ChangeKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The path inside the system root (bytes; almost-protocol's string in
    /// JSON).
    #[serde(with = "almost_protocol::path")]
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
    /// What else changed, in words (mode, owner, xattrs, link target).
    pub detail: Option<String>,
    /// The same as data, for a reader's own words.
    #[serde(default, skip_serializing_if = "MetaChange::is_empty")]
    pub meta: MetaChange,
    /// The content is not text (no patch can be shown).
    pub binary: bool,
    /// Unified diff of a modified text file, or a new text file's whole
    /// content as one (from nothing), when asked for.
    pub patch: Option<String>,
}

/// Whether an upper entry is a whiteout, in any of the kernel's forms.
pub fn is_whiteout(path: &Path, meta: &fs::Metadata) -> io::Result<bool> {
    let kind = EntryType::of(meta);
    if kind == EntryType::Char && meta.rdev() == 0 {
        return Ok(true);
    }
    if kind == EntryType::File && meta.size() == 0 {
        return Ok(entry::get_xattr(path, "trusted.overlay.whiteout")?.is_some());
    }
    Ok(false)
}

pub fn is_opaque(path: &Path) -> io::Result<bool> {
    Ok(entry::get_xattr(path, "trusted.overlay.opaque")?.as_deref() == Some(b"y"))
}

/// What changed besides the content, as data.
fn metadata_change(old: &Description, new: &Description) -> MetaChange {
    let pair = |a: u32, b: u32| (a != b).then_some((a, b));
    let mut xattrs: Vec<String> = old
        .xattrs
        .keys()
        .chain(new.xattrs.keys())
        .filter(|k| old.xattrs.get(*k) != new.xattrs.get(*k))
        .cloned()
        .collect();
    xattrs.sort();
    xattrs.dedup();
    MetaChange {
        mode: pair(old.mode & 0o7777, new.mode & 0o7777),
        owner: pair(old.uid, new.uid),
        group: pair(old.gid, new.gid),
        xattrs,
        target: None,
        old_entries: None,
    }
}

/// The same in words, for a terminal.
fn metadata_words(old: &Description, new: &Description) -> Option<String> {
    let m = metadata_change(old, new);
    let mut words = Vec::new();
    if let Some((a, b)) = m.mode {
        words.push(format!("mode {a:04o} → {b:04o}"));
    }
    if m.owner.is_some() || m.group.is_some() {
        words.push(format!(
            "owner {}:{} → {}:{}",
            old.uid, old.gid, new.uid, new.gid
        ));
    }
    if !m.xattrs.is_empty() {
        words.push(format!("xattrs {}", m.xattrs.join(", ")));
    }
    (!words.is_empty()).then(|| words.join("; "))
}

fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
}

/// A unified diff of two text files, or `None` when either is not text.
fn patch(old: &Path, new: &Path, name: &str) -> io::Result<Option<String>> {
    let (a, b) = (fs::read(old)?, fs::read(new)?);
    if !is_text(&a) || !is_text(&b) {
        return Ok(None);
    }
    let (a, b) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    let diff = similar::TextDiff::from_lines(a.as_ref(), b.as_ref());
    Ok(Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("a{name}"), &format!("b{name}"))
            .to_string(),
    ))
}

/// A new text file's content as a unified diff from nothing ("@@ -0,0
/// +1,N @@", every line added), or `None` when it is not text.
fn added_patch(new: &Path, name: &str) -> io::Result<Option<String>> {
    let b = fs::read(new)?;
    if !is_text(&b) {
        return Ok(None);
    }
    let b = String::from_utf8_lossy(&b);
    let diff = similar::TextDiff::from_lines("", b.as_ref());
    Ok(Some(
        diff.unified_diff()
            .context_radius(3)
            .header("/dev/null", &format!("b{name}"))
            .to_string(),
    ))
}

fn binary_file(path: &Path, meta: &fs::Metadata) -> io::Result<bool> {
    if meta.size() > MAX_PATCH_BYTES {
        return Ok(true);
    }
    Ok(!is_text(&fs::read(path)?))
}

struct Differ<'a> {
    upper: &'a Path,
    lower: &'a Path,
    /// The layer's path inside the root, prefixed to every reported path.
    base: &'a Path,
    patches: bool,
    out: Vec<Change>,
}

impl Differ<'_> {
    fn name(&self, rel: &Path) -> PathBuf {
        self.base.join(rel)
    }

    fn push(
        &mut self,
        rel: &Path,
        change: ChangeKind,
        old: Option<&Description>,
        new: Option<&Description>,
    ) {
        let kind = new.or(old).map_or(EntryType::File, |d| d.kind);
        self.out.push(Change {
            path: self.name(rel),
            change,
            kind,
            old_type: old.map(|d| d.kind),
            old_size: old.map(|d| d.size),
            new_size: new.map(|d| d.size),
            old_hash: old.and_then(|d| d.hash.clone()),
            new_hash: new.and_then(|d| d.hash.clone()),
            detail: None,
            meta: MetaChange::default(),
            binary: false,
            patch: None,
        });
    }

    fn last_detail(&mut self, detail: Option<String>) {
        if let Some(last) = self.out.last_mut() {
            last.detail = detail;
        }
    }

    fn last_meta(&mut self, meta: MetaChange) {
        if let Some(last) = self.out.last_mut() {
            last.meta = meta;
        }
    }

    /// Looks at one upper entry `rel`; `has_lower` is false below an added,
    /// replaced or opaque directory (nothing of the lower tree shows there).
    /// For a directory, returns whether the lower tree shows below it (the
    /// walk, [`entry::preorder`], then goes into it).
    fn entry(&mut self, rel: &Path, has_lower: bool) -> io::Result<Option<bool>> {
        {
            let rel = rel.to_owned();
            let upper = self.upper.join(&rel);
            let lower = self.lower.join(&rel);
            let Some(meta) = entry::lstat(&upper)? else {
                return Ok(None);
            };
            let old = if has_lower {
                Description::of(&lower)?
            } else {
                None
            };
            if is_whiteout(&upper, &meta)? {
                if let Some(old) = &old {
                    self.push(&rel, ChangeKind::Deleted, Some(old), None);
                    if old.kind == EntryType::Dir {
                        let n = count_entries(&lower);
                        self.last_detail(Some(format!("directory with {n} entries")));
                        self.last_meta(MetaChange {
                            old_entries: Some(n),
                            ..MetaChange::default()
                        });
                    }
                }
                return Ok(None);
            }
            for unsupported in ["trusted.overlay.redirect", "trusted.overlay.metacopy"] {
                if entry::get_xattr(&upper, unsupported)?.is_some() {
                    return Err(io::Error::other(format!(
                        "{}: {unsupported} is set, but Almost mounts layers without redirect_dir and metacopy",
                        almost_protocol::path::encode(&self.name(&rel))
                    )));
                }
            }
            let new = Description::of(&upper)?
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            if new.kind == EntryType::Dir {
                let below_lower = match &old {
                    None => {
                        self.push(&rel, ChangeKind::Added, None, Some(&new));
                        false
                    }
                    Some(o) if o.kind != EntryType::Dir => {
                        self.push(&rel, ChangeKind::Replaced, Some(o), Some(&new));
                        false
                    }
                    Some(o) if is_opaque(&upper)? => {
                        self.push(&rel, ChangeKind::Replaced, Some(o), Some(&new));
                        let n = count_entries(&lower);
                        self.last_detail(Some(format!(
                            "directory recreated; its {n} old entries are removed"
                        )));
                        self.last_meta(MetaChange {
                            old_entries: Some(n),
                            ..MetaChange::default()
                        });
                        false
                    }
                    Some(o) => {
                        if !o.same_metadata(&new) {
                            self.push(&rel, ChangeKind::Metadata, Some(o), Some(&new));
                            self.last_detail(metadata_words(o, &new));
                            self.last_meta(metadata_change(o, &new));
                        }
                        true
                    }
                };
                return Ok(Some(below_lower));
            }
            match &old {
                None => {
                    self.push(&rel, ChangeKind::Added, None, Some(&new));
                    if new.kind == EntryType::File {
                        let binary = binary_file(&upper, &meta)?;
                        // A reviewer reads a new text file's content.
                        let p = if !binary && self.patches {
                            added_patch(&upper, &almost_protocol::path::encode(&self.name(&rel)))?
                        } else {
                            None
                        };
                        if let Some(last) = self.out.last_mut() {
                            last.binary = binary;
                            last.patch = p;
                        }
                    }
                }
                Some(o) if o.kind != new.kind => {
                    self.push(&rel, ChangeKind::Replaced, Some(o), Some(&new))
                }
                Some(o) if !o.same_content(&new) => {
                    self.push(&rel, ChangeKind::Modified, Some(o), Some(&new));
                    let mut detail = metadata_words(o, &new);
                    let mut changed = metadata_change(o, &new);
                    if new.kind == EntryType::Symlink {
                        let (from, to) = (
                            o.link.clone().unwrap_or_default(),
                            new.link.clone().unwrap_or_default(),
                        );
                        detail = Some(format!("target {from} → {to}"));
                        changed.target = Some((from, to));
                    }
                    self.last_detail(detail);
                    self.last_meta(changed);
                    if new.kind == EntryType::File {
                        let text = o.size <= MAX_PATCH_BYTES && new.size <= MAX_PATCH_BYTES;
                        let p = if text && self.patches {
                            patch(
                                &lower,
                                &upper,
                                &almost_protocol::path::encode(&self.name(&rel)),
                            )?
                        } else {
                            None
                        };
                        let binary = if !text {
                            true
                        } else if self.patches {
                            p.is_none()
                        } else {
                            binary_file(&upper, &meta)?
                                || binary_file(&lower, &fs::symlink_metadata(&lower)?)?
                        };
                        if let Some(last) = self.out.last_mut() {
                            last.binary = binary;
                            last.patch = p;
                        }
                    }
                }
                Some(o) if !o.same_metadata(&new) => {
                    self.push(&rel, ChangeKind::Metadata, Some(o), Some(&new));
                    self.last_detail(metadata_words(o, &new));
                    self.last_meta(metadata_change(o, &new));
                }
                Some(_) => {}
            }
        }
        Ok(None)
    }
}

/// Entries below a directory (for the words of a deletion); errors count
/// 0. An explicit stack: no recursion on depth.
fn count_entries(dir: &Path) -> u64 {
    let mut count = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        for e in read.filter_map(Result::ok) {
            count += 1;
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    count
}

/// Every change of the layer whose upper dir is `upper`, over the lower
/// tree visible at `lower`, reported under `base` (the layer's path).
pub fn diff(upper: &Path, lower: &Path, base: &Path, patches: bool) -> io::Result<Vec<Change>> {
    let mut differ = Differ {
        upper,
        lower,
        base,
        patches,
        out: Vec::new(),
    };
    entry::preorder(upper, true, |rel, &has_lower| differ.entry(rel, has_lower))?;
    Ok(differ.out)
}

/// The paths (relative to the layer) an upper tree touches, parents first:
/// what a commit must write and what its verification compares.
pub fn touched(upper: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    entry::preorder(upper, (), |rel, ()| {
        out.push(rel.to_owned());
        Ok(fs::symlink_metadata(upper.join(rel))?
            .is_dir()
            .then_some(()))
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_detection_and_patch() {
        assert!(is_text(b"hello\n"));
        assert!(!is_text(b"a\0b"));
        assert!(!is_text(&[0xff, 0xfe]));
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "one\ntwo\nthree\n").unwrap();
        fs::write(&b, "one\nTWO\nthree\n").unwrap();
        let p = patch(&a, &b, "/usr/x").unwrap().unwrap();
        assert!(
            p.contains("--- a/usr/x") && p.contains("+++ b/usr/x"),
            "{p}"
        );
        assert!(p.contains("-two\n+TWO\n"), "{p}");
        fs::write(&b, [0u8, 1, 2]).unwrap();
        assert!(patch(&a, &b, "/x").unwrap().is_none());
        // A new text file: its content, every line added; binary: none.
        assert!(added_patch(&b, "/x").unwrap().is_none());
        fs::write(&b, "first\nsecond\n").unwrap();
        let p = added_patch(&b, "/usr/new").unwrap().unwrap();
        assert!(p.contains("@@ -0,0 +1,2 @@\n+first\n+second\n"), "{p}");
    }

    // Without overlayfs: an upper tree made by hand with the kernel's marks.
    #[test]
    fn classifies_a_hand_made_upper_tree() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (whiteouts, trusted xattrs)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
        for d in [&lower, &upper] {
            fs::create_dir_all(d.join("keep")).unwrap();
        }
        fs::write(lower.join("keep/same"), "x").unwrap();
        fs::write(lower.join("keep/edit"), "old\n").unwrap();
        fs::write(lower.join("gone"), "bye").unwrap();
        fs::create_dir_all(lower.join("opaque/old")).unwrap();
        fs::write(lower.join("tofile"), "").unwrap();
        fs::write(lower.join("chmod"), "m").unwrap();
        fs::write(upper.join("keep/same"), "x").unwrap();
        fs::write(upper.join("keep/edit"), "new\n").unwrap();
        fs::write(upper.join("keep/new"), "n").unwrap();
        nix::sys::stat::mknod(
            &upper.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir(upper.join("opaque")).unwrap();
        entry::set_xattr(&upper.join("opaque"), "trusted.overlay.opaque", b"y").unwrap();
        fs::create_dir(upper.join("tofile")).unwrap();
        fs::write(upper.join("chmod"), "m").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(upper.join("chmod"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(lower.join("chmod"), fs::Permissions::from_mode(0o644)).unwrap();

        let changes = diff(&upper, &lower, Path::new("/usr"), true).unwrap();
        let got: Vec<(String, ChangeKind)> = changes
            .iter()
            .map(|c| (c.path.to_string_lossy().into_owned(), c.change))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/usr/chmod".into(), ChangeKind::Metadata),
                ("/usr/gone".into(), ChangeKind::Deleted),
                ("/usr/keep/edit".into(), ChangeKind::Modified),
                ("/usr/keep/new".into(), ChangeKind::Added),
                ("/usr/opaque".into(), ChangeKind::Replaced),
                ("/usr/tofile".into(), ChangeKind::Replaced),
            ]
        );
        assert_eq!(changes[0].detail.as_deref(), Some("mode 0644 → 0755"));
        // The same as data, for a reader's own words; nothing else set.
        assert_eq!(
            changes[0].meta,
            MetaChange {
                mode: Some((0o644, 0o755)),
                ..MetaChange::default()
            }
        );
        assert!(
            changes[2]
                .patch
                .as_deref()
                .unwrap()
                .contains("-old\n+new\n")
        );
        // The new text file's content comes as a patch too.
        assert!(
            changes[3]
                .patch
                .as_deref()
                .unwrap()
                .contains("@@ -0,0 +1 @@\n+n")
        );
        assert_eq!(changes[5].old_type, Some(EntryType::File));
        assert_eq!(touched(&upper).unwrap().len(), 8);
    }
}
