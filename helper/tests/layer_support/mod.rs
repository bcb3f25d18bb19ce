// SPDX-License-Identifier: GPL-3.0-or-later
//! Helpers shared by the end-to-end tests of layers (`layers_*.rs`), on top
//! of the shared fixture in `common`.
//!
//! - [`LayerBox`] wraps a [`Sandbox`] and makes its cleanup safe with layers:
//!   the overlay mounts `almost` makes inside the sandbox (and any mount a
//!   test adds, e.g. a separate layer store) are unmounted, deepest first,
//!   before the fixture clears the flags and unmounts the image. It also
//!   keeps a *lower view*: a non-recursive bind mount of the sandbox root
//!   made before any layer exists, which shows the real tree beneath a
//!   mounted layer without unmounting anything.
//! - [`manifest`] is the byte-for-byte oracle: for every entry of a tree its
//!   type, mode, owner, size, SHA-256 (by `sha256sum`, not by the code under
//!   test), link target, device number, every xattr, the mtime of
//!   non-directories and which names are hard links of each other.
//! - Small wrappers for `layer new/list/diff` and for xattrs.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod strace;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::common::{Kind, Run, Sandbox, flag_report, sh, unescape_mountinfo, walk};

// ---------------------------------------------------------------------------
// Mount table.
// ---------------------------------------------------------------------------

/// One line of /proc/self/mountinfo, reduced to what the tests need.
#[derive(Debug, Clone)]
pub struct MountLine {
    pub mount_point: PathBuf,
    pub fstype: String,
    pub super_options: String,
}

/// The mount table of this namespace, in mount order.
pub fn mount_table() -> Vec<MountLine> {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    info.lines()
        .filter_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            let mount_point = unescape_mountinfo(before.split(' ').nth(4)?);
            let mut after = after.split(' ');
            let fstype = after.next()?.to_owned();
            let _source = after.next();
            let super_options = after.next().unwrap_or("").to_owned();
            Some(MountLine {
                mount_point,
                fstype,
                super_options,
            })
        })
        .collect()
}

/// Overlay mount points at or below `top`, in mount order.
pub fn overlays_under(top: &Path) -> Vec<PathBuf> {
    mount_table()
        .into_iter()
        .filter(|m| m.fstype == "overlay" && m.mount_point.starts_with(top))
        .map(|m| m.mount_point)
        .collect()
}

fn quiet(prog: &str, args: &[&OsStr]) -> bool {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Unmounts `p` (retrying while busy, lazily as a last resort). Returns a
/// problem description, if any.
fn umount_retrying(p: &Path) -> Option<String> {
    for _ in 0..20 {
        if quiet("umount", &[p.as_os_str()]) {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
    if quiet("umount", &[OsStr::new("-l"), p.as_os_str()]) {
        Some(format!("{} was busy; lazily unmounted", p.display()))
    } else {
        Some(format!("cannot unmount {}", p.display()))
    }
}

// ---------------------------------------------------------------------------
// The sandbox with layers.
// ---------------------------------------------------------------------------

/// A [`Sandbox`] whose cleanup also copes with layers (see the module doc).
pub struct LayerBox {
    sb: Sandbox,
    /// Non-recursive bind mount of the root: the real tree, never a layer.
    lower_view: PathBuf,
    /// Mounts this wrapper made (other than the lower view), in mount order.
    extra: Vec<PathBuf>,
    /// Processes started by a test that must not outlive it.
    children: Vec<Child>,
    done: bool,
}

impl Deref for LayerBox {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sb
    }
}

impl DerefMut for LayerBox {
    fn deref_mut(&mut self) -> &mut Sandbox {
        &mut self.sb
    }
}

impl LayerBox {
    /// A 64 MiB sandbox with the basic fake root and a lower view.
    pub fn new() -> Self {
        Self::with_size_mib(64)
    }

    pub fn with_size_mib(mib: u64) -> Self {
        Self::with_mkfs(mib, &[])
    }

    /// See [`Sandbox::with_mkfs`].
    pub fn with_mkfs(mib: u64, mkfs: &[&str]) -> Self {
        let sb = Sandbox::with_mkfs(mib, mkfs);
        let lower_view = sb.dir.join("lower-view");
        fs::create_dir(&lower_view).expect("mkdir lower view");
        let mut lb = LayerBox {
            sb,
            lower_view,
            extra: Vec::new(),
            children: Vec::new(),
            done: false,
        };
        sh(
            "mount",
            &[
                OsStr::new("--bind"),
                lb.sb.root.as_os_str(),
                lb.lower_view.as_os_str(),
            ],
        );
        // Registered as extra so that the cleanup unmounts it.
        let lv = lb.lower_view.clone();
        lb.extra.push(lv);
        lb
    }

    /// The host path of `inner` in the real tree, beneath any layer.
    pub fn lower(&self, inner: &str) -> PathBuf {
        self.lower_view.join(inner.trim_start_matches('/'))
    }

    /// Mounts a tmpfs of `mib` MiB at `inner` (created if needed); it is
    /// unmounted by the cleanup, after the layers.
    pub fn mount_big_tmpfs(&mut self, inner: &str, mib: u64) {
        let p = self.path(inner);
        fs::create_dir_all(&p).expect("mkdir mount point");
        sh(
            "mount",
            &[
                OsStr::new("-t"),
                OsStr::new("tmpfs"),
                OsStr::new("-o"),
                OsStr::new(&format!("size={mib}m")),
                OsStr::new("almost-test-store"),
                p.as_os_str(),
            ],
        );
        self.extra.push(p);
    }

    /// Keeps a process to kill at cleanup (if the test did not end it).
    pub fn adopt(&mut self, child: Child) -> usize {
        self.children.push(child);
        self.children.len() - 1
    }

    /// Kills and reaps an adopted process.
    pub fn end_child(&mut self, index: usize) {
        let c = &mut self.children[index];
        let _ = c.kill();
        let _ = c.wait();
    }

    pub fn child_pid(&self, index: usize) -> i32 {
        self.children[index].id() as i32
    }

    /// Overlay mounts inside the root (host paths).
    pub fn overlays(&self) -> Vec<PathBuf> {
        overlays_under(&self.sb.root)
    }

    /// Unmounts every overlay inside the root by hand (a simulated reboot).
    #[track_caller]
    pub fn umount_overlays_by_hand(&self) {
        for p in self.overlays().into_iter().rev() {
            sh("umount", &[p.as_os_str()]);
        }
        assert!(self.overlays().is_empty(), "overlays still mounted");
    }

    /// Everything this wrapper must unmount before the fixture's cleanup:
    /// every mount strictly inside the root or the lower view that the
    /// fixture does not know about, deepest (latest) first, then ours.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
        self.sb.kill_leftovers();
        let known: BTreeSet<PathBuf> = self.sb.nested_mounts().iter().cloned().collect();
        for _ in 0..50 {
            let victim = mount_table().into_iter().rev().find(|m| {
                let inside = (m.mount_point.starts_with(&self.sb.root)
                    && m.mount_point != self.sb.root)
                    || m.mount_point.starts_with(&self.lower_view);
                inside && !known.contains(&m.mount_point)
            });
            let Some(victim) = victim else {
                break;
            };
            if let Some(p) = umount_retrying(&victim.mount_point) {
                problems.push(p);
            }
        }
        for p in self.extra.drain(..).rev() {
            if mount_table().iter().any(|m| m.mount_point == p)
                && let Some(problem) = umount_retrying(&p)
            {
                problems.push(problem);
            }
        }
        problems
    }

    /// Unmounts the layers and our mounts, then the sandbox, and asserts
    /// that `e2fsck -fn` finds the image clean.
    #[track_caller]
    pub fn finish(mut self) {
        let problems = self.teardown();
        assert!(problems.is_empty(), "unmount problems: {problems:?}");
        self.done = true;
        self.sb.unmount_and_fsck();
    }

    // --- layer commands -----------------------------------------------------

    /// `layer new PATH [extra…]` in text mode; asserts success and returns
    /// the id, which must be alone on the last line of stdout.
    #[track_caller]
    pub fn new_layer(&self, path: &str, extra: &[&str]) -> String {
        let mut args = vec!["layer", "new", path];
        args.extend_from_slice(extra);
        let r = self.almost(&args);
        r.expect_ok();
        last_line_id(&r)
    }

    /// `layer commit ID --yes`, expected to succeed.
    #[track_caller]
    pub fn commit(&self, id: &str) {
        self.almost(&["layer", "commit", id, "--yes"]).expect_ok();
    }

    /// `layer discard ID --yes`, expected to succeed.
    #[track_caller]
    pub fn discard(&self, id: &str) {
        self.almost(&["layer", "discard", id, "--yes"]).expect_ok();
    }

    /// `lock`, then `layer new PATH`: the usual start of a layer test (a
    /// locked system, a layer over PATH); returns the id.
    #[track_caller]
    pub fn locked_with_layer(&self, path: &str) -> String {
        self.almost(&["lock"]).expect_ok();
        self.new_layer(path, &[])
    }

    /// `layer list --json`: the layers array.
    #[track_caller]
    pub fn layer_list(&self) -> Vec<Value> {
        let r = self.almost_json(&["layer", "list"]);
        r.expect_ok();
        let res = r.result();
        res["layers"]
            .as_array()
            .unwrap_or_else(|| panic!("no layers array\n{}", r.describe()))
            .clone()
    }

    /// The `layer list` entry of one layer, if it is listed.
    #[track_caller]
    pub fn listed(&self, id: &str) -> Option<Value> {
        self.layer_list().into_iter().find(|l| l["id"] == id)
    }

    /// `layer diff ID --json`: (path, change kind) of every change.
    #[track_caller]
    pub fn diff_set(&self, id: &str) -> BTreeSet<(String, String)> {
        self.diff_changes(id)
            .iter()
            .map(|c| {
                (
                    c["path"].as_str().unwrap_or("?").to_owned(),
                    c["change"].as_str().unwrap_or("?").to_owned(),
                )
            })
            .collect()
    }

    /// `layer diff ID --json`: the changes array.
    #[track_caller]
    pub fn diff_changes(&self, id: &str) -> Vec<Value> {
        let r = self.almost_json(&["layer", "diff", id]);
        r.expect_ok();
        r.result()["changes"]
            .as_array()
            .unwrap_or_else(|| panic!("no changes array\n{}", r.describe()))
            .clone()
    }

    /// The names in the layer store (`/var/lib/almost/layers`), sorted.
    pub fn store_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.path("/var/lib/almost/layers"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Which files and directories under `inner` have `i`, by path relative
    /// to it; the walk does not enter mount points (e.g. a layer).
    pub fn flag_map(&self, inner: &str) -> BTreeMap<PathBuf, bool> {
        flag_map_of(&self.path(inner))
    }
}

impl Drop for LayerBox {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Never panic here: this runs while a failed test unwinds.
        for p in self.teardown() {
            eprintln!("layer sandbox cleanup: {p}");
        }
    }
}

/// The flags of a tree (host path) by relative path: `true` = has `i`.
pub fn flag_map_of(top: &Path) -> BTreeMap<PathBuf, bool> {
    let rep = flag_report(top);
    let rel = |p: &PathBuf| p.strip_prefix(top).unwrap_or(p).to_path_buf();
    rep.locked
        .iter()
        .map(|p| (rel(p), true))
        .chain(rep.unlocked.iter().map(|p| (rel(p), false)))
        .collect()
}

/// The id printed alone on the last line of a `layer new` run.
#[track_caller]
pub fn last_line_id(r: &Run) -> String {
    let last = r
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no output\n{}", r.describe()));
    assert!(
        !last.is_empty()
            && last == last.trim()
            && last.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "the last line is not an id alone: {last:?}\n{}",
        r.describe()
    );
    last.to_owned()
}

// ---------------------------------------------------------------------------
// xattrs (by libc, not by the code under test).
// ---------------------------------------------------------------------------

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in path")
}

/// All xattrs of `p` (not following a symlink), names as bytes.
pub fn xattrs_of(p: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let c = cpath(p);
    let mut names = vec![0u8; 4096];
    // SAFETY: buffer valid for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTSUP) {
            return BTreeMap::new();
        }
        panic!("llistxattr {}: {e}", p.display());
    }
    let mut out = BTreeMap::new();
    for name in names[..n as usize]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        let cname = CString::new(name).expect("xattr name");
        let mut val = vec![0u8; 65536];
        // SAFETY: buffer valid for its length.
        let len = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if len < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENODATA) {
                continue;
            }
            panic!(
                "lgetxattr {} {}: {e}",
                p.display(),
                String::from_utf8_lossy(name)
            );
        }
        val.truncate(len as usize);
        out.insert(name.to_vec(), val);
    }
    out
}

#[track_caller]
pub fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let c = cpath(p);
    let n = CString::new(name).expect("name");
    // SAFETY: valid C strings and buffer.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {name} on {}: {}",
        p.display(),
        io::Error::last_os_error()
    );
}

#[track_caller]
pub fn remove_xattr(p: &Path, name: &str) {
    let c = cpath(p);
    let n = CString::new(name).expect("name");
    // SAFETY: valid C strings.
    let rc = unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) };
    assert_eq!(
        rc,
        0,
        "removexattr {name} on {}: {}",
        p.display(),
        io::Error::last_os_error()
    );
}

// ---------------------------------------------------------------------------
// The manifest: the byte-for-byte oracle.
// ---------------------------------------------------------------------------

/// Everything the tests compare of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// f d l p c b s, or M for a mount point (not entered).
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// 0 for directories (their size is the filesystem's business).
    pub size: u64,
    pub sha256: Option<String>,
    pub link: Option<OsString>,
    pub rdev: u64,
    /// Every xattr, values in hex.
    pub xattrs: BTreeMap<String, String>,
    /// mtime (s, ns) of non-directories: a commit keeps times.
    pub mtime: Option<(i64, i64)>,
    /// For an entry (not a directory) with several names inside the tree:
    /// the first of them (in path order), so that hard links compare as a
    /// structure: which names share an inode.
    pub link_group: Option<PathBuf>,
}

/// A whole tree: relative path → entry (the top itself is "").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest(pub BTreeMap<PathBuf, Entry>);

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// SHA-256 of files by `sha256sum -z` (no name escaping), in batches.
fn sha256_all(files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::with_capacity(files.len());
    for batch in files.chunks(500) {
        let o = Command::new("sha256sum")
            .arg("-z")
            .arg("--")
            .args(batch)
            .stdin(Stdio::null())
            .output()
            .expect("run sha256sum");
        assert!(
            o.status.success(),
            "sha256sum failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let records: Vec<&[u8]> = o
            .stdout
            .split(|b| *b == 0)
            .filter(|r| !r.is_empty())
            .collect();
        assert_eq!(records.len(), batch.len(), "sha256sum output count");
        for (rec, p) in records.iter().zip(batch) {
            let name = p.as_os_str().as_bytes();
            assert!(
                rec.len() == 64 + 2 + name.len() && &rec[66..] == name,
                "sha256sum output out of order at {}",
                p.display()
            );
            out.push(String::from_utf8_lossy(&rec[..64]).into_owned());
        }
    }
    out
}

/// The manifest of the tree at `top` (a host path), not crossing mounts.
pub fn manifest(top: &Path) -> Manifest {
    let entries = walk(top);
    let mut map = BTreeMap::new();
    let mut files = Vec::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for (p, k) in &entries {
        let rel = p.strip_prefix(top).expect("under top").to_path_buf();
        let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let ft = m.file_type();
        let kind = match k {
            Kind::MountPoint => 'M',
            _ if ft.is_dir() => 'd',
            _ if ft.is_symlink() => 'l',
            _ if ft.is_file() => 'f',
            _ if ft.is_fifo() => 'p',
            _ if ft.is_char_device() => 'c',
            _ if ft.is_block_device() => 'b',
            _ => 's',
        };
        if kind == 'f' {
            files.push(p.clone());
        }
        // Every kind but directories can have several names (ext4 links
        // symlinks, fifos, sockets and device nodes too).
        if !matches!(kind, 'd' | 'M') && m.nlink() > 1 {
            inodes
                .entry((m.dev(), m.ino()))
                .or_default()
                .push(rel.clone());
        }
        let xattrs = if kind == 'M' {
            BTreeMap::new()
        } else {
            xattrs_of(p)
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), hex(&v)))
                .collect()
        };
        map.insert(
            rel,
            Entry {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                size: if matches!(kind, 'd' | 'M') {
                    0
                } else {
                    m.size()
                },
                sha256: None,
                link: (kind == 'l').then(|| {
                    fs::read_link(p)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                        .into_os_string()
                }),
                rdev: if matches!(kind, 'c' | 'b') {
                    m.rdev()
                } else {
                    0
                },
                xattrs,
                mtime: (!matches!(kind, 'd' | 'M')).then(|| (m.mtime(), m.mtime_nsec())),
                link_group: None,
            },
        );
    }
    for (p, h) in files.iter().zip(sha256_all(&files)) {
        let rel = p.strip_prefix(top).expect("under top");
        map.get_mut(rel).expect("entry").sha256 = Some(h);
    }
    for names in inodes.values() {
        if names.len() < 2 {
            continue;
        }
        let first = names.iter().min().expect("non-empty").clone();
        for n in names {
            map.get_mut(n).expect("entry").link_group = Some(first.clone());
        }
    }
    Manifest(map)
}

impl Manifest {
    /// The differences, one line each (empty: equal).
    pub fn differences(&self, other: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        for (p, a) in &self.0 {
            match other.0.get(p) {
                None => out.push(format!("only on the left: {p:?} {a:?}")),
                Some(b) if a != b => out.push(format!(
                    "differs: {p:?}\n    left:  {a:?}\n    right: {b:?}"
                )),
                _ => {}
            }
        }
        for (p, b) in &other.0 {
            if !self.0.contains_key(p) {
                out.push(format!("only on the right: {p:?} {b:?}"));
            }
        }
        out
    }

    /// Entries under a relative prefix, re-rooted at it.
    pub fn subtree(&self, prefix: &str) -> Manifest {
        let prefix = Path::new(prefix.trim_start_matches('/'));
        Manifest(
            self.0
                .iter()
                .filter_map(|(p, e)| {
                    p.strip_prefix(prefix).ok().map(|r| {
                        let mut e = e.clone();
                        e.link_group = e
                            .link_group
                            .and_then(|g| g.strip_prefix(prefix).ok().map(Path::to_path_buf));
                        (r.to_path_buf(), e)
                    })
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Asserts two manifests are equal, printing the first differences.
#[track_caller]
pub fn assert_manifest_eq(what: &str, left: &Manifest, right: &Manifest) {
    let d = left.differences(right);
    if !d.is_empty() {
        let mut s = String::new();
        for line in d.iter().take(25) {
            let _ = writeln!(s, "  {line}");
        }
        if d.len() > 25 {
            let _ = writeln!(s, "  … and {} more", d.len() - 25);
        }
        panic!("{what}: {} differences:\n{s}", d.len());
    }
}

// ---------------------------------------------------------------------------
// Misc.
// ---------------------------------------------------------------------------

/// The seed of a randomised test: `ALMOST_TEST_SEED` or a fresh one,
/// printed so that a failure can be reproduced.
pub fn seed() -> u64 {
    let s = std::env::var("ALMOST_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("ALMOST_TEST_SEED={s}");
    s
}

/// Rewrites a JSON file (an object) in place.
pub fn rewrite(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let mut v: serde_json::Value =
        serde_json::from_slice(&fs::read(path).expect("read")).expect("json");
    edit(v.as_object_mut().expect("an object"));
    fs::write(path, serde_json::to_vec(&v).expect("encode")).expect("write");
}

/// A journal (commit.json, undo.json) as an almost before layers had parts
/// wrote it: the one part's ops, after and before at the top, the layer
/// without paths.
pub fn to_old_journal(j: &mut serde_json::Map<String, serde_json::Value>) {
    let mut parts = j.remove("parts").expect("parts");
    let part = parts
        .as_array_mut()
        .and_then(|p| (p.len() == 1).then(|| p.remove(0)))
        .expect("one part");
    for key in ["ops", "after", "before"] {
        j.insert(key.to_owned(), part[key].clone());
    }
    j["layer"].as_object_mut().expect("layer").remove("paths");
}
