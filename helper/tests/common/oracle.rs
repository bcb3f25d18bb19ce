// SPDX-License-Identifier: GPL-3.0-or-later
//! The oracle: lsattr over our own walk.

use super::*;

/// What the oracle's walk found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDev,
    BlockDev,
    Socket,
    /// A directory on which another filesystem (or a bind mount) is mounted.
    MountPoint,
}

impl Kind {
    /// Can carry the immutable flag (what `almost` counts as locked/unlocked).
    pub fn flaggable(self) -> bool {
        matches!(self, Kind::File | Kind::Dir)
    }
    /// What `almost` counts as `skipped`.
    pub fn special(self) -> bool {
        matches!(
            self,
            Kind::Symlink | Kind::Fifo | Kind::CharDev | Kind::BlockDev | Kind::Socket
        )
    }
}

/// Undoes the octal escapes of /proc/self/mountinfo (`\040` for a space, …).
pub fn unescape_mountinfo(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// The configuration of a test's own `dbus-daemon` listening on `socket`:
/// anyone may connect, own names and call (build-aux/test-bus.conf.in,
/// which build-aux/with-polkit.sh fills for its private system bus).
pub fn bus_config(socket: &Path) -> String {
    include_str!("../../../build-aux/test-bus.conf.in")
        .replace("@type@", "")
        .replace("@socket@", &socket.display().to_string())
}

/// The mount points of this mount namespace.
pub fn mount_points() -> HashSet<PathBuf> {
    assert!(
        Path::new("/proc/self/mountinfo").exists(),
        "no /proc/self/mountinfo"
    );
    mountinfo("self").into_iter().map(|(p, _)| p).collect()
}

/// The mount points of a process's mount namespace (`pid`: a number or
/// `self`), each with its propagation (`shared:N`, `master:N`, or nothing
/// for a private mount); empty once the process is gone.
pub fn mountinfo(pid: &str) -> Vec<(PathBuf, String)> {
    let text = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some((unescape_mountinfo(f.get(4)?), f[6..sep].join(" ")))
        })
        .collect()
}

/// Whether strace is installed; says SKIPPED when not, for the tests that
/// need it (build-aux/install-deps.sh installs it).
pub fn strace_available() -> bool {
    let ok = Command::new("strace").arg("-V").output().is_ok();
    if !ok {
        eprintln!("SKIPPED: strace is not installed (build-aux/install-deps.sh)");
    }
    ok
}

/// Walks `top` (inclusive) without following symlinks and without entering
/// mount points (by `st_dev` and by /proc/self/mountinfo, which also catches
/// bind mounts from the same filesystem). A mount point is reported as
/// [`Kind::MountPoint`] and not entered.
pub fn walk(top: &Path) -> Vec<(PathBuf, Kind)> {
    let mounts = mount_points();
    let meta = fs::symlink_metadata(top).unwrap_or_else(|e| panic!("{}: {e}", top.display()));
    let dev = meta.dev();
    let mut out = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    out.push((top.to_path_buf(), kind_of(&meta)));
    if !meta.is_dir() {
        return out;
    }
    while let Some(dir) = stack.pop() {
        let rd = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in rd {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let path = entry.path();
            let m =
                fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut k = kind_of(&m);
            if k == Kind::Dir && (m.dev() != dev || mounts.contains(&path)) {
                k = Kind::MountPoint;
            }
            if k == Kind::Dir {
                stack.push(path.clone());
            }
            out.push((path, k));
        }
    }
    out
}

pub(crate) fn kind_of(m: &fs::Metadata) -> Kind {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_file() {
        Kind::File
    } else if t.is_fifo() {
        Kind::Fifo
    } else if t.is_char_device() {
        Kind::CharDev
    } else if t.is_block_device() {
        Kind::BlockDev
    } else {
        Kind::Socket
    }
}

/// Runs `lsattr -d` over `paths` (regular files and directories only), in
/// batches, and tells for each whether its flag column has `i`. Parses the
/// output against the expected names in order, so names with newlines work.
/// Panics if lsattr cannot read one of them.
pub fn lsattr_immutable(paths: &[PathBuf]) -> Vec<bool> {
    let mut result = Vec::with_capacity(paths.len());
    for batch in paths.chunks(400) {
        let out = Command::new("lsattr")
            .arg("-d")
            .arg("--")
            .args(batch)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run lsattr");
        let stdout = out.stdout;
        let mut pos = 0usize;
        for p in batch {
            let name = p.as_os_str().as_bytes();
            let rest = &stdout[pos..];
            let sp = rest.iter().position(|&b| b == b' ').unwrap_or_else(|| {
                panic!(
                    "lsattr output ends before {}: stderr: {}",
                    p.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            let flags = &rest[..sp];
            let after = &rest[sp + 1..];
            assert!(
                after.starts_with(name) && after.get(name.len()) == Some(&b'\n'),
                "lsattr did not report {:?} where expected (it may have failed on it): \
                 stderr: {}",
                p,
                String::from_utf8_lossy(&out.stderr)
            );
            result.push(flags.contains(&b'i'));
            pos += sp + 1 + name.len() + 1;
        }
    }
    result
}

/// The flags of every regular file and directory under a tree.
#[derive(Debug, Default)]
pub struct FlagReport {
    pub locked: BTreeSet<PathBuf>,
    pub unlocked: BTreeSet<PathBuf>,
    /// Symlinks, fifos, devices, sockets found (not asked to lsattr).
    pub special: BTreeSet<PathBuf>,
    /// Mount points found and not entered.
    pub mount_points: BTreeSet<PathBuf>,
}

impl FlagReport {
    pub fn total(&self) -> usize {
        self.locked.len() + self.unlocked.len()
    }
}

/// The oracle: walks `top` and asks lsattr about every file and directory.
pub fn flag_report(top: &Path) -> FlagReport {
    let entries = walk(top);
    let mut rep = FlagReport::default();
    let mut ask = Vec::new();
    for (p, k) in entries {
        if k.flaggable() {
            ask.push(p);
        } else if k == Kind::MountPoint {
            rep.mount_points.insert(p);
        } else {
            rep.special.insert(p);
        }
    }
    let flags = lsattr_immutable(&ask);
    for (p, i) in ask.into_iter().zip(flags) {
        if i {
            rep.locked.insert(p);
        } else {
            rep.unlocked.insert(p);
        }
    }
    rep
}

/// Whether one file or directory has `i` (lsattr -d).
pub fn has_i(path: &Path) -> bool {
    lsattr_immutable(&[path.to_path_buf()])[0]
}

pub(crate) fn sample(set: &BTreeSet<PathBuf>) -> String {
    let mut s = String::new();
    for p in set.iter().take(10) {
        let _ = writeln!(s, "  {p:?}");
    }
    if set.len() > 10 {
        let _ = writeln!(s, "  … and {} more", set.len() - 10);
    }
    s
}
