// SPDX-License-Identifier: GPL-3.0-or-later
//! What needs a restart after an act changed the system files: the running
//! processes that still map (`/proc/PID/maps`) or execute (`/proc/PID/exe`)
//! a file under the trees the act concerned whose inode the path no longer
//! holds (replaced, or deleted), each with its systemd unit
//! (`/proc/PID/cgroup`).
//!
//! "(deleted)" in maps is not the test: a commit keeps the originals
//! hard-linked in its undo data, and an undo puts those very inodes back,
//! so a process started before the commit uses the current file again
//! after the undo although maps still says "(deleted)". What counts is
//! whether the `dev:inode` a process uses is the one the path holds now:
//! in our view for a process that sees the tree as we do; for one with a
//! mount namespace or root of its own (a service's private mounts, a
//! sandbox, a container), in its view (`/proc/PID/root`), so that a
//! program whose `/usr` is another tree is not listed for ours. A path
//! that holds a file of another filesystem in our view (a layer mounted
//! there, whose files stat as the overlay's while the kernel maps the
//! layer's underlying file) is not judged: the act did not replace it.
//!
//! Processes come and go while they are read: one that vanishes, a kernel
//! thread (no maps, no exe) and an entry that cannot be read are left out,
//! never an error. Only reading `/proc` itself can fail.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use almost_protocol::restart::NeedsRestart;

use crate::paths::Root;
use crate::{Error, Result};

/// A file as a process uses it: the device (major, minor) and inode the
/// kernel gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    major: u64,
    minor: u64,
    ino: u64,
}

impl FileId {
    fn dev(self) -> (u64, u64) {
        (self.major, self.minor)
    }

    fn of(meta: &fs::Metadata) -> FileId {
        let dev = meta.dev();
        FileId {
            major: u64::from(libc::major(dev)),
            minor: u64::from(libc::minor(dev)),
            ino: meta.ino(),
        }
    }
}

/// How long a scan may take before it is given up: a path lookup in a
/// process's own view could meet a filesystem (FUSE in a user's namespace)
/// that never answers; the act the scan follows is done by then.
pub const TIME_LIMIT: Duration = Duration::from_secs(5);

/// The running processes that still use a replaced or deleted file under
/// `trees` (paths inside `root`), sorted by pid, each file named inside
/// the root. This process itself is left out (it ends with the act). The
/// scan runs in a thread of its own and is given up after `limit` (an
/// error; the thread is left to end with the process).
pub fn scan(root: &Root, trees: &[PathBuf], limit: Duration) -> Result<Vec<NeedsRestart>> {
    let hosts: Vec<PathBuf> = trees.iter().map(|t| root.host(t)).collect();
    scan_within(PathBuf::from("/proc"), root.path(), hosts, limit)
}

/// [`scan`] of the processes under `proc`, for the trees `hosts` (host
/// paths) of the root `root_path`.
fn scan_within(
    proc: PathBuf,
    root_path: &Path,
    hosts: Vec<PathBuf>,
    limit: Duration,
) -> Result<Vec<NeedsRestart>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("restart-scan".to_owned())
        .spawn(move || {
            let _ = tx.send(scan_proc(&proc, &hosts, std::process::id()));
        })
        .map_err(|e| Error::io("starting the look for the processes to restart", e))?;
    let found = match rx.recv_timeout(limit) {
        Ok(found) => found,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("gave up after {limit:?}"),
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(io::Error::other("the look ended without an answer"))
        }
    }
    .map_err(|e| Error::io("reading /proc for the processes to restart", e))?;
    Ok(found
        .into_iter()
        .map(|mut p| {
            for f in &mut p.files {
                if let Ok(rel) = f.strip_prefix(root_path) {
                    *f = Path::new("/").join(rel);
                }
            }
            p.files.sort();
            p
        })
        .collect())
}

fn scan_proc(proc: &Path, trees: &[PathBuf], me: u32) -> io::Result<Vec<NeedsRestart>> {
    let mut found = Vec::new();
    // Most processes map the same libraries: each path is looked at once.
    let mut now = Now::default();
    let ours = View::of(Path::new("/proc/self"));
    for entry in fs::read_dir(proc)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Some(p) = process(&entry.path(), pid, trees, &mut now, ours) {
            found.push(p);
        }
    }
    found.sort_by_key(|p| p.pid);
    Ok(found)
}

/// One process, if it uses a replaced file under `trees` (host paths).
fn process(
    dir: &Path,
    pid: u32,
    trees: &[PathBuf],
    now: &mut Now,
    ours: Option<View>,
) -> Option<NeedsRestart> {
    let under = |p: &Path| trees.iter().any(|t| p.starts_with(t));
    // Kernel threads have empty maps and no exe: nothing to read.
    let maps = fs::read(dir.join("maps")).ok()?;
    let mut used: BTreeMap<PathBuf, FileId> = BTreeMap::new();
    for (path, id) in parse_maps(&maps) {
        if under(&path) {
            used.entry(path).or_insert(id);
        }
    }
    if let Ok(target) = fs::read_link(dir.join("exe")) {
        let target = strip_deleted(target.into_os_string().into_vec());
        if under(&target)
            && !used.contains_key(&target)
            && let Ok(meta) = fs::metadata(dir.join("exe"))
        {
            used.insert(target, FileId::of(&meta));
        }
    }
    if used.is_empty() {
        return None;
    }
    // What our view says: the same file (not replaced), a file on another
    // filesystem (not the one the process used: a layer mounted there, or
    // the process's own tree under that name), or another file of the
    // same filesystem or none (replaced or deleted, in our view).
    let mut differ: Vec<(PathBuf, FileId)> = used
        .into_iter()
        .filter(|(path, id)| match now.get(path) {
            Some(now) => now != *id && now.dev() == id.dev(),
            None => true,
        })
        .collect();
    // A process that sees the tree as we do is judged by our view; one in
    // a mount namespace or root of its own (a service's private mounts, a
    // sandbox, a container) by what the path holds in its view.
    if !differ.is_empty() && (ours.is_none() || View::of(dir) != ours) {
        let root = openat2(libc::AT_FDCWD, &dir.join("root"), 0).ok()?;
        differ.retain(|(path, id)| {
            let held = open_path_in(&root, path)
                .and_then(|fd| fs::File::from(fd).metadata())
                .is_ok_and(|m| FileId::of(&m) == *id);
            !held
        });
    }
    let files: Vec<PathBuf> = differ.into_iter().map(|(path, _)| path).collect();
    if files.is_empty() {
        return None;
    }
    let command = fs::read(dir.join("comm"))
        .map(|c| String::from_utf8_lossy(c.strip_suffix(b"\n").unwrap_or(&c)).into_owned())
        .unwrap_or_default();
    let (unit, user) = fs::read(dir.join("cgroup"))
        .ok()
        .and_then(|c| unit_of(&String::from_utf8_lossy(&c)))
        .map_or((None, None), |(u, uid)| (Some(u), uid));
    Some(NeedsRestart {
        pid: i32::try_from(pid).ok()?,
        command,
        unit,
        user,
        files,
    })
}

/// What the paths hold now in our view, each stat'ed once per scan.
#[derive(Default)]
struct Now(HashMap<PathBuf, Option<FileId>>);

impl Now {
    /// What `path` holds now in our view (`None`: nothing, or unreadable).
    fn get(&mut self, path: &Path) -> Option<FileId> {
        *self
            .0
            .entry(path.to_owned())
            .or_insert_with(|| fs::metadata(path).ok().map(|m| FileId::of(&m)))
    }
}

/// How a process sees the file tree: its mount namespace and its root
/// directory (two processes with both equal resolve a path the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct View {
    mnt_ns: (u64, u64),
    root: (u64, u64),
}

impl View {
    /// The view of the process whose `/proc` directory is `dir`.
    fn of(dir: &Path) -> Option<View> {
        let id = |m: fs::Metadata| (m.dev(), m.ino());
        Some(View {
            mnt_ns: id(fs::metadata(dir.join("ns/mnt")).ok()?),
            root: id(fs::metadata(dir.join("root")).ok()?),
        })
    }
}

/// `O_PATH` open of `path` (absolute) resolved as the process whose root
/// `root` is resolves it: absolute symlinks on the way stay in that root.
fn open_path_in(root: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    openat2(
        root.as_raw_fd(),
        rel,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// An `O_PATH` open of `path` from `dirfd` resolved as `resolve` says.
fn openat2(dirfd: libc::c_int, path: &Path, resolve: u64) -> io::Result<OwnedFd> {
    crate::fs::openat2(dirfd, path, libc::O_PATH, 0, resolve)
}

/// The files of a `/proc/PID/maps` text with the device and inode each
/// mapping has: `ADDR PERMS OFFSET MAJ:MIN INODE PATH`, the path after
/// the spaces that align it, " (deleted)" at its end when its name was
/// removed, a newline in it written `\012`. Anonymous and special mappings
/// (`[heap]`, no path, inode 0) are left out.
fn parse_maps(text: &[u8]) -> Vec<(PathBuf, FileId)> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let mut rest = line;
        let mut fields = [&b""[..]; 5];
        let mut ok = true;
        for field in &mut fields {
            let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
            rest = &rest[start..];
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            if end == 0 {
                ok = false;
                break;
            }
            *field = &rest[..end];
            rest = &rest[end..];
        }
        if !ok {
            continue;
        }
        let path_start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
        let path = &rest[path_start..];
        if path.first() != Some(&b'/') {
            continue;
        }
        let (Some((major, minor)), Some(ino)) = (
            std::str::from_utf8(fields[3])
                .ok()
                .and_then(|d| d.split_once(':')),
            std::str::from_utf8(fields[4])
                .ok()
                .and_then(|i| i.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (
            u64::from_str_radix(major, 16),
            u64::from_str_radix(minor, 16),
        ) else {
            continue;
        };
        if ino == 0 {
            continue;
        }
        let path = unescape_newlines(strip_deleted(path.to_vec()));
        out.push((path, FileId { major, minor, ino }));
    }
    out
}

fn strip_deleted(mut bytes: Vec<u8>) -> PathBuf {
    if bytes.ends_with(b" (deleted)") {
        bytes.truncate(bytes.len() - b" (deleted)".len());
    }
    PathBuf::from(OsString::from_vec(bytes))
}

fn unescape_newlines(path: PathBuf) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    if !bytes.windows(4).any(|w| w == b"\\012") {
        return path;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\012") {
            out.push(b'\n');
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The systemd service a process runs in, from its `/proc/PID/cgroup`:
/// the innermost unit of its cgroup path when it is a service (cgroup
/// v1's `name=systemd` line, else the unified hierarchy's `0::`), and for
/// a service below a user's manager (`user@UID.service/…/foo.service`)
/// that uid. A process in a scope (a login session, a container) has none.
pub fn unit_of(cgroup: &str) -> Option<(String, Option<u32>)> {
    let of = |wanted: &str| {
        cgroup.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            (controllers == wanted).then_some(path)
        })
    };
    // systemd tracks its units in its own v1 hierarchy on a legacy or
    // hybrid system (where the unified line may say only "/"), in the
    // unified one otherwise: the first of them not at the top.
    let path = [of("name=systemd"), of("")]
        .into_iter()
        .flatten()
        .find(|p| !p.trim_matches('/').is_empty())?;
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "init.scope")
        .collect();
    // The innermost unit; a scope (a session, a terminal's tab, a
    // container) is not restarted, so it has none to name. A delegated
    // service's own sub-cgroups lie below it and are not units.
    let at = parts
        .iter()
        .rposition(|p| p.ends_with(".service") || p.ends_with(".scope"))?;
    let unit = parts[at]
        .strip_suffix(".scope")
        .map_or(Some(parts[at]), |_| None)?;
    let user = parts[..at].iter().rev().find_map(|p| {
        p.strip_prefix("user@")?
            .strip_suffix(".service")?
            .parse::<u32>()
            .ok()
    });
    Some((unit.to_owned(), user))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Maps lines as the kernel writes them: the path after aligning
    // spaces, spaces inside a name kept, " (deleted)" taken off, `\012`
    // read as a newline; anonymous, special and inode-0 mappings left out.
    #[test]
    fn maps_lines_give_path_device_and_inode() {
        let text = b"55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1048603                    /usr/bin/sleep\n\
7f1e2c000000-7f1e2c021000 rw-p 00000000 00:00 0 \n\
7f1e2c400000-7f1e2c428000 r--p 00000000 103:02 2361 /tmp/r/usr/lib/my lib.so (deleted)\n\
7f1e2c600000-7f1e2c628000 r--p 00000000 08:11 77 /usr/lib/odd\\012name\n\
7ffd3e5f0000-7ffd3e611000 rw-p 00000000 00:00 0                          [stack]\n\
7f0000000000-7f0000001000 rw-s 00000000 00:01 0 /dev/zero (deleted)\n";
        let got = parse_maps(text);
        assert_eq!(
            got,
            vec![
                (
                    PathBuf::from("/usr/bin/sleep"),
                    FileId {
                        major: 0xfd,
                        minor: 1,
                        ino: 1048603
                    }
                ),
                (
                    PathBuf::from("/tmp/r/usr/lib/my lib.so"),
                    FileId {
                        major: 0x103,
                        minor: 2,
                        ino: 2361
                    }
                ),
                (
                    PathBuf::from("/usr/lib/odd\nname"),
                    FileId {
                        major: 8,
                        minor: 0x11,
                        ino: 77
                    }
                ),
            ]
        );
    }

    // Names are chosen by users (a mapped file's path, a cgroup below a
    // delegated service): no text, however cut up, makes the parsers
    // panic; a path is always absolute, an inode never 0.
    #[test]
    fn the_parsers_take_any_text() {
        let pieces: [&[u8]; 12] = [
            b"7f00-7f01 r--p 00000000 fd:01 12 /usr/lib/x.so\n",
            b" ",
            b"\n",
            b":",
            b"/",
            b" (deleted)",
            b"\\012",
            b"0::",
            b"name=systemd",
            b"user@",
            b".service",
            b"\xff",
        ];
        let mut rng = fastrand::Rng::with_seed(15);
        for _ in 0..5000 {
            let mut text = Vec::new();
            for _ in 0..rng.usize(0..12) {
                text.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
            for (path, id) in parse_maps(&text) {
                assert!(path.is_absolute(), "{text:?}");
                assert_ne!(id.ino, 0);
            }
            let _ = unit_of(&String::from_utf8_lossy(&text));
        }
    }

    // The unit of each cgroup shape systemd makes: a system service, a
    // user's service (with the uid of its manager), a terminal's scope
    // under the user's manager (none: not the manager's service), the user
    // manager itself (init.scope: a system service), a session scope
    // (none), a delegated service's sub-cgroup (the service), cgroup v1's
    // name=systemd line, and a container's scope (none).
    #[test]
    fn the_unit_comes_from_the_cgroup_path() {
        assert_eq!(
            unit_of("0::/system.slice/foo.service\n"),
            Some(("foo.service".into(), None))
        );
        assert_eq!(
            unit_of("0::/system.slice/system-getty.slice/getty@tty1.service\n"),
            Some(("getty@tty1.service".into(), None))
        );
        assert_eq!(
            unit_of(
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-org.gnome.Terminal.slice/vte-spawn.scope\n"
            ),
            None
        );
        assert_eq!(
            unit_of(
                "0::/user.slice/user-1000.slice/user@1000.service/session.slice/pipewire.service\n"
            ),
            Some(("pipewire.service".into(), Some(1000)))
        );
        assert_eq!(
            unit_of("0::/user.slice/user-1000.slice/user@1000.service/init.scope\n"),
            Some(("user@1000.service".into(), None))
        );
        assert_eq!(
            unit_of("0::/user.slice/user-1000.slice/session-2.scope\n"),
            None
        );
        assert_eq!(
            unit_of(
                "12:pids:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n0::/\n"
            ),
            Some(("cron.service".into(), None)),
            "legacy: the unified line says only / (the kernel prints it always)"
        );
        assert_eq!(
            unit_of("9:name=systemd:/\n4:memory:/x\n0::/system.slice/foo.service\n"),
            Some(("foo.service".into(), None)),
            "v1 name=systemd at the top, the unit in the unified hierarchy (this machine's shape)"
        );
        assert_eq!(
            unit_of(
                "12:pids:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n"
            ),
            Some(("cron.service".into(), None))
        );
        assert_eq!(
            unit_of("0::/system.slice/foo.service/payload/sub\n"),
            Some(("foo.service".into(), None))
        );
        assert_eq!(unit_of("0::/system.slice/docker-0123abcd.scope\n"), None);
        assert_eq!(unit_of(""), None);
    }

    // This machine's own cgroup file has the shape the parser reads (no
    // systemd runs here as PID 1, so no service is expected; the parse must
    // not fail on the real text).
    #[test]
    fn the_real_cgroup_file_parses() {
        let text = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
        assert!(text.lines().any(|l| l.starts_with("0::")), "{text}");
        let _ = unit_of(&text);
    }

    // A process in a mount namespace of its own, which sees another file
    // under the tree's name (a bind mount there, as a sandbox or a
    // container has), is judged by its own view: not listed although our
    // view holds another inode under that name; once the file it sees is
    // replaced in its view, it is.
    #[test]
    fn a_process_with_its_own_view_is_judged_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("usr");
        let theirs = dir.path().join("theirs");
        fs::create_dir(&tree).unwrap();
        fs::create_dir(&theirs).unwrap();
        fs::copy("/bin/sleep", tree.join("sleep")).unwrap();
        fs::copy("/bin/sleep", theirs.join("sleep")).unwrap();
        let bin = tree.join("sleep");
        let script = format!(
            "mount --bind '{}' '{}' && exec '{}' 30",
            theirs.display(),
            tree.display(),
            bin.display()
        );
        let mut child = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| e.file_name() == Some(OsStr::new("sleep")))
        {
            assert!(std::time::Instant::now() < deadline, "the child never ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let trees = [tree.clone()];
        let found = || scan_proc(Path::new("/proc"), &trees, std::process::id()).unwrap();
        let before = found();
        // Replaced in its view (the bind mount's source), not in ours.
        let new = theirs.join(".new");
        fs::copy("/bin/sleep", &new).unwrap();
        fs::rename(&new, theirs.join("sleep")).unwrap();
        let after = found();
        let _ = child.kill();
        let _ = child.wait();
        assert!(before.iter().all(|p| p.pid != pid as i32), "{before:?}");
        assert!(after.iter().any(|p| p.pid == pid as i32), "{after:?}");
    }

    // A look that cannot finish (here a maps file that is a fifo nobody
    // writes, standing for a filesystem that never answers) is given up
    // after the limit, as an error saying so, instead of holding the act's
    // answer back.
    #[test]
    fn a_look_that_hangs_is_given_up() {
        use std::os::unix::fs::OpenOptionsExt;
        let proc = tempfile::tempdir().unwrap();
        fs::create_dir(proc.path().join("42")).unwrap();
        nix::unistd::mkfifo(
            &proc.path().join("42/maps"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let got = scan_within(
            proc.path().to_owned(),
            Path::new("/"),
            vec![PathBuf::from("/usr")],
            Duration::from_millis(300),
        );
        let err = got.expect_err("a hung look answered");
        assert!(err.to_string().contains("gave up after"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // The thread stays blocked in the fifo's open: let it go.
        let _ = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(proc.path().join("42/maps"));
    }

    // A process that maps a file which is then replaced (a new inode under
    // the name) is listed with that file; one whose file is unchanged is
    // not; a file put back under its name (the undo's hard link) is not
    // either, though maps says "(deleted)".
    #[test]
    fn a_replaced_mapped_file_is_found() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("usr");
        fs::create_dir(&tree).unwrap();
        let bin = tree.join("sleep");
        fs::copy("/bin/sleep", &bin).unwrap();
        let mut child = std::process::Command::new(&bin)
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // Until exec has happened, the child maps the test binary.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while fs::read_link(format!("/proc/{pid}/exe")).ok().as_deref() != Some(&bin) {
            assert!(std::time::Instant::now() < deadline, "the child never ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let trees = [tree.clone()];
        let found = |me| scan_proc(Path::new("/proc"), &trees, me).unwrap();
        assert!(found(std::process::id()).is_empty(), "nothing replaced yet");
        let kept = dir.path().join("kept");
        fs::hard_link(&bin, &kept).unwrap();
        let new = tree.join(".new");
        fs::copy("/bin/sleep", &new).unwrap();
        fs::rename(&new, &bin).unwrap();
        let list = found(std::process::id());
        let listed: Vec<_> = list.iter().filter(|p| p.pid == pid as i32).collect();
        assert_eq!(listed.len(), 1, "{list:?}");
        assert_eq!(listed[0].files, vec![bin.clone()]);
        assert_eq!(listed[0].command, "sleep");
        fs::rename(&kept, &bin).unwrap();
        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        assert!(maps.contains(" (deleted)"), "{maps}");
        let list = found(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(list.iter().all(|p| p.pid != pid as i32), "{list:?}");
    }
}
