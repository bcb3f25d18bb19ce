// SPDX-License-Identifier: GPL-3.0-or-later
//! The shared fixture of the end-to-end tests of `almost`.
//!
//! It owns everything a test needs to touch a real filesystem without touching
//! the machine: a [`Sandbox`] is a fresh ext4 loop image mounted under a
//! temporary directory and filled with a small fake system root, handed to the
//! binary with `--root`. It also owns the oracle the tests judge the binary by
//! (`lsattr`, called on regular files and directories found by a walk of our
//! own that never crosses a mount point), the runner that starts `almost` with
//! a timeout, and the cleanup that always clears the flags and unmounts, even
//! after a failed assertion.
//!
//! Every test binary runs inside a private mount namespace
//! (`unshare -m --propagation private cargo test …`); [`Sandbox::new`] refuses
//! to mount anything otherwise.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const ALMOST: &str = env!("CARGO_BIN_EXE_almost");

/// How long one `almost` invocation may take before the test calls it hung.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The uid/gid of `nobody`, used for the unprivileged checks.
pub const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------
// Safety: never mount outside a private mount namespace.
// ---------------------------------------------------------------------------

fn mnt_ns_inode(pid: &str) -> io::Result<u64> {
    fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| m.ino())
}

fn parent_pid(pid: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|p| p.trim().to_owned())
}

/// Panics unless this process lives in a mount namespace of its own whose
/// mounts do not propagate, so that nothing a test mounts can reach the host.
pub fn assert_private_mount_namespace() {
    const HOW: &str = "run the tests as: cd /work/main && \
                       unshare -m --propagation private cargo test -p almost-helper";
    let mine = mnt_ns_inode("self").expect("cannot stat /proc/self/ns/mnt");
    match mnt_ns_inode("1") {
        Ok(init) => assert_ne!(
            init, mine,
            "REFUSING TO MOUNT: this test runs in the host's mount namespace \
             (/proc/self/ns/mnt and /proc/1/ns/mnt are the same inode); {HOW}"
        ),
        Err(_) => {
            // PID 1 is not inspectable here (e.g. a container's init): look for
            // an ancestor that is still in another namespace, i.e. the shell
            // that ran `unshare -m`.
            let mut pid = parent_pid("self");
            let mut found = false;
            while let Some(p) = pid {
                if p == "0" || p == "1" {
                    break;
                }
                if let Ok(ino) = mnt_ns_inode(&p) {
                    if ino != mine {
                        found = true;
                        break;
                    }
                }
                pid = parent_pid(&p);
            }
            assert!(
                found,
                "REFUSING TO MOUNT: /proc/1/ns/mnt is not readable and no ancestor \
                 process is in another mount namespace, so this is probably the \
                 host's namespace; {HOW}"
            );
        }
    }
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    for line in info.lines() {
        let before_dash = line.split(" - ").next().unwrap_or("");
        assert!(
            !before_dash
                .split(' ')
                .skip(6)
                .any(|f| f.starts_with("shared:")),
            "REFUSING TO MOUNT: mount propagation is not private here ({line}); {HOW}"
        );
    }
}

// ---------------------------------------------------------------------------
// Small process helpers.
// ---------------------------------------------------------------------------

/// Runs a helper program (mount, mkfs, …) and panics with its output on failure.
pub fn sh(prog: &str, args: &[&OsStr]) -> String {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {:?} failed ({}):\n{}{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`sh`] but returns the status instead of panicking; for cleanup.
fn sh_quiet(prog: &str, args: &[&OsStr]) -> Result<(), String> {
    match Command::new(prog).args(args).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{prog} {:?}: {}: {}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{prog}: {e}")),
    }
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(AsRef::<OsStr>::as_ref(&$a)),*] };
}

/// Polls `cond` every 50 ms until it holds or `timeout` has passed.
/// Quotes a path for `sh -c`.
pub fn q(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

/// Waits until a file exists (written by a child).
#[track_caller]
pub fn wait_for_file(p: &Path) {
    assert!(
        wait_until(Duration::from_secs(30), || p.exists()),
        "{} did not appear (the command did not start?)",
        p.display()
    );
}

/// Waits for a pid file (written by a child) and reads the pid in it.
#[track_caller]
pub fn read_pid_file(p: &Path) -> i32 {
    wait_for_file(p);
    fs::read_to_string(p)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Sends a signal to a process by id.
pub fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// Pids of live processes whose command line contains `needle`, except ours.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let joined: Vec<u8> = cmdline
            .iter()
            .map(|&b| if b == 0 { b' ' } else { b })
            .collect();
        if String::from_utf8_lossy(&joined).contains(needle) && pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

// ---------------------------------------------------------------------------
// Running `almost`.
// ---------------------------------------------------------------------------

/// What one run of a program produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// What was run, for messages.
    pub cmdline: String,
    /// The exit code, `None` if it died of a signal.
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// A readable dump for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "$ {}\nexit code: {:?}, signal: {:?}, took {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.code, self.signal, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Every line of stdout parsed as JSON (panics on a line that is not).
    #[track_caller]
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("stdout line is not JSON ({e}): {l:?}\n{}", self.describe())
                })
            })
            .collect()
    }

    /// The events of one kind (`"result"`, `"error"`, `"warning"`, `"progress"`).
    #[track_caller]
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.json()
            .into_iter()
            .filter(|v| v["event"] == kind)
            .collect()
    }

    /// The one `result` event.
    #[track_caller]
    pub fn result(&self) -> Value {
        let mut r = self.events("result");
        assert_eq!(
            r.len(),
            1,
            "expected exactly one result event\n{}",
            self.describe()
        );
        r.remove(0)
    }

    /// The one `error` event, if any.
    #[track_caller]
    pub fn error_event(&self) -> Option<Value> {
        let mut r = self.events("error");
        assert!(
            r.len() <= 1,
            "more than one error event\n{}",
            self.describe()
        );
        r.pop()
    }

    /// stdout and stderr together, for "the message says …" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// The `paths[]` entry of a status/lock/unlock result for one managed path.
#[track_caller]
pub fn path_entry<'a>(result: &'a Value, path: &str) -> &'a Value {
    result["paths"]
        .as_array()
        .unwrap_or_else(|| panic!("result has no paths array: {result}"))
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("result has no entry for {path}: {result}"))
}

/// A started process whose output is being collected.
pub struct Spawned {
    pub child: Child,
    cmdline: String,
    started: Instant,
    out: Drain,
    err: Drain,
}

/// Collects one pipe in a thread. The pipe may stay open after the process
/// has ended (a killed `almost run` leaves its command holding it), so the
/// collector can be read before EOF.
struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Drain {
    fn start(r: Option<impl Read + Send + 'static>) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        if let Some(mut r) = r {
            let b = Arc::clone(&buf);
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match r.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => b
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(());
            });
        } else {
            let _ = tx.send(());
        }
        Drain { buf, done }
    }

    /// What was read, waiting at most `grace` for the end of the pipe.
    fn take(&self, grace: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(grace);
        std::mem::take(&mut *self.buf.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Spawned {
    pub fn spawn(mut cmd: Command) -> Self {
        let cmdline = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let out = Drain::start(child.stdout.take());
        let err = Drain::start(child.stderr.take());
        Spawned {
            child,
            cmdline,
            started: Instant::now(),
            out,
            err,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        kill(self.pid(), sig);
    }

    /// Whether it has exited (does not reap).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the end; kills it and panics if it takes longer than `timeout`.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Run {
        let deadline = Instant::now() + timeout;
        let status: ExitStatus = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let run = self.collect(None);
                    panic!("timed out after {timeout:?} (hung?)\n{}", run.describe());
                }
                Err(e) => panic!("waiting for {}: {e}", self.cmdline),
            }
        };
        self.collect(Some(status))
    }

    fn collect(&mut self, status: Option<ExitStatus>) -> Run {
        let elapsed = self.started.elapsed();
        // Children that outlive the process may keep the pipes open.
        let out = self.out.take(Duration::from_secs(2));
        let err = self.err.take(Duration::from_secs(1));
        Run {
            cmdline: self.cmdline.clone(),
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            elapsed,
        }
    }
}

// ---------------------------------------------------------------------------
// The oracle: lsattr over our own walk.
// ---------------------------------------------------------------------------

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

fn kind_of(m: &fs::Metadata) -> Kind {
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

fn sample(set: &BTreeSet<PathBuf>) -> String {
    let mut s = String::new();
    for p in set.iter().take(10) {
        let _ = writeln!(s, "  {p:?}");
    }
    if set.len() > 10 {
        let _ = writeln!(s, "  … and {} more", set.len() - 10);
    }
    s
}

// ---------------------------------------------------------------------------
// The sandbox.
// ---------------------------------------------------------------------------

/// Paths (inside the root) of the interesting entries of the rich tree.
pub mod rich {
    pub const TOOL: &str = "/usr/bin/tool";
    pub const TOOL_HARDLINK: &str = "/usr/bin/tool-hardlink";
    pub const OPT_HARDLINK: &str = "/opt/app/bin/tool-link";
    pub const EMPTY: &str = "/usr/bin/empty";
    pub const BIG: &str = "/usr/lib/big.bin";
    pub const LIB: &str = "/usr/lib/libfoo.so.1";
    pub const LIB_SYMLINK: &str = "/usr/lib/libfoo.so";
    pub const ABS_LINK_OUT: &str = "/usr/lib/outside-abs";
    pub const REL_LINK_OUT: &str = "/usr/share/outside-rel";
    pub const SPACES: &str = "/usr/share/doc/name with spaces.txt";
    pub const SPACES_DIR: &str = "/usr/share/doc/dir with spaces";
    pub const NEWLINE: &str = "/usr/share/doc/new\nline";
    pub const EMPTY_DIR: &str = "/usr/share/doc/empty-dir";
    pub const FIFO: &str = "/usr/share/fifo";
    pub const CHARDEV: &str = "/usr/share/null-dev";
    pub const SOCKET: &str = "/usr/share/sock";
    pub const DEEP: &str = "/usr/share/deep";
    pub const DEEP_LEVELS: usize = 120;
    pub const TMPFS: &str = "/usr/share/tmpfs-mnt";
    pub const OUTSIDE: &str = "/home/outside";
    pub const BOUND: &str = "/usr/lib/bound";
    pub const OPT_APP: &str = "/opt/app/bin/app";
}

/// A fresh ext4 image mounted under a temporary directory, with a fake
/// system root in it. Dropping it clears every flag and unmounts everything.
pub struct Sandbox {
    tmp: Option<tempfile::TempDir>,
    /// The temporary directory (holds the image and the mount point).
    pub dir: PathBuf,
    /// The ext4 image file.
    pub image: PathBuf,
    /// The mounted root, passed to `almost --root`.
    pub root: PathBuf,
    /// Nested mounts we made, in mount order (unmounted in reverse).
    nested: Vec<PathBuf>,
    mounted: bool,
}

impl Sandbox {
    /// A 64 MiB sandbox with the basic fake root.
    pub fn new() -> Self {
        Self::with_size_mib(64)
    }

    /// A sandbox whose ext4 image has `mib` MiB.
    pub fn with_size_mib(mib: u64) -> Self {
        Self::with_mkfs(mib, &[])
    }

    /// A sandbox whose ext4 image has `mib` MiB, made with these extra
    /// `mkfs.ext4` options (`-N COUNT` for many inodes).
    pub fn with_mkfs(mib: u64, mkfs: &[&str]) -> Self {
        assert_private_mount_namespace();
        let tmp = tempfile::Builder::new()
            .prefix("almost-e2e-")
            .tempdir()
            .expect("create temp dir");
        let dir = tmp.path().to_path_buf();
        // `nobody` must be able to reach the root for the unprivileged checks.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let image = dir.join("root.img");
        let root = dir.join("root");
        fs::create_dir(&root).expect("mkdir root");
        sh("truncate", os!["-s", format!("{mib}M"), image]);
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("-q"),
            OsStr::new("-F"),
            OsStr::new("-E"),
            OsStr::new("lazy_itable_init=0"),
        ];
        args.extend(mkfs.iter().map(OsStr::new));
        args.push(image.as_os_str());
        sh("mkfs.ext4", &args);
        let mut sb = Sandbox {
            tmp: Some(tmp),
            dir,
            image,
            root,
            nested: Vec::new(),
            mounted: false,
        };
        sh("mount", os!["-o", "loop", sb.image, sb.root]);
        sb.mounted = true;
        sb.build_base();
        sb
    }

    /// The host path of a path inside the root (`"/usr/bin"` or `"usr/bin"`).
    pub fn path(&self, inner: &str) -> PathBuf {
        self.root.join(inner.trim_start_matches('/'))
    }

    /// The path inside the root of a host path under it (for messages and JSON).
    pub fn inner(&self, host: &Path) -> String {
        match host.strip_prefix(&self.root) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => host.display().to_string(),
        }
    }

    pub fn write(&self, inner: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(inner);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn mkdir(&self, inner: &str) {
        let p = self.path(inner);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }

    pub fn read(&self, inner: &str) -> Vec<u8> {
        let p = self.path(inner);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    fn build_base(&self) {
        for d in [
            "/usr/bin",
            "/usr/lib",
            "/usr/share/doc",
            "/opt/app/bin",
            "/etc/almost",
            "/home/user",
            "/var/lib",
            "/run",
        ] {
            self.mkdir(d);
        }
        self.write(rich::TOOL, "#!/bin/sh\necho tool\n");
        self.write(rich::LIB, b"\x7fELF fake library");
        self.write("/usr/share/doc/README", "Almost test root\n");
        self.write(rich::OPT_APP, "#!/bin/sh\necho app\n");
        self.write("/opt/app/config.json", "{}\n");
        self.write("/etc/hostname", "sandbox\n");
        self.write("/home/user/.profile", "# profile\n");
        self.write("/var/lib/state", "state\n");
    }

    /// The config file of the sandbox.
    pub fn config_path(&self) -> PathBuf {
        self.path("/etc/almost/almost.toml")
    }

    pub fn write_config(&self, text: &str) {
        self.write("/etc/almost/almost.toml", text);
    }

    /// Adds every kind of entry to the managed trees, two nested mounts and
    /// outside targets (see [`rich`]).
    pub fn build_rich_tree(&mut self) {
        self.write(rich::EMPTY, "");
        self.write("/usr/share/doc/also-empty", "");
        let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        self.write(rich::BIG, big);
        self.write(rich::SPACES, "spaces\n");
        self.write(&format!("{}/inner file", rich::SPACES_DIR), "inner\n");
        self.write(rich::NEWLINE, "newline in the name\n");
        self.mkdir(rich::EMPTY_DIR);
        self.write("/usr/share/doc/pkg/changelog", "1.0\n");
        self.write("/opt/app/lib/data.bin", vec![7u8; 4096]);
        self.write("/opt/app/share/empty", "");

        // Outside the managed trees: targets of a symlink and of a bind mount.
        self.write(&format!("{}/file1", rich::OUTSIDE), "outside 1\n");
        self.write(&format!("{}/sub/file2", rich::OUTSIDE), "outside 2\n");

        // Symlinks: to a file inside, to a dir outside (absolute and relative).
        symlink("libfoo.so.1", self.path(rich::LIB_SYMLINK)).expect("symlink");
        symlink(rich::OUTSIDE, self.path(rich::ABS_LINK_OUT)).expect("symlink");
        symlink("../../home/outside", self.path(rich::REL_LINK_OUT)).expect("symlink");

        // Hard links, inside one tree and across the two managed trees.
        fs::hard_link(self.path(rich::TOOL), self.path(rich::TOOL_HARDLINK)).expect("link");
        fs::hard_link(self.path(rich::TOOL), self.path(rich::OPT_HARDLINK)).expect("link");

        // A fifo, a character device (1:3, like /dev/null) and a socket.
        nix::unistd::mkfifo(
            &self.path(rich::FIFO),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .expect("mkfifo");
        nix::sys::stat::mknod(
            &self.path(rich::CHARDEV),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod");
        let sock = self.path(rich::SOCKET);
        assert!(
            sock.as_os_str().len() < 108,
            "socket path too long: {sock:?}"
        );
        // The socket file stays after the listener is dropped (which it must
        // be, or it would keep the mount busy).
        drop(UnixListener::bind(&sock).expect("bind unix socket"));

        // Deep nesting.
        let mut deep = String::from(rich::DEEP);
        for _ in 0..rich::DEEP_LEVELS {
            deep.push_str("/d");
        }
        self.write(&format!("{deep}/bottom"), "deep\n");

        // A nested tmpfs with files inside, and a bind mount of an outside dir.
        self.mount_tmpfs(rich::TMPFS);
        self.write(&format!("{}/in-tmpfs", rich::TMPFS), "tmpfs file\n");
        self.write(&format!("{}/sub/in-tmpfs-2", rich::TMPFS), "tmpfs file 2\n");
        self.bind_mount(rich::OUTSIDE, rich::BOUND);
    }

    /// Adds `n` small files under `inner`, 100 per directory.
    pub fn populate(&self, inner: &str, n: usize) {
        for i in 0..n {
            let p = self.path(&format!("{inner}/d{:03}/f{i:05}", i / 100));
            if i % 100 == 0 {
                fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            }
            fs::write(&p, format!("{i}\n")).expect("write");
        }
    }

    /// Mounts a fresh tmpfs at `inner` (created if needed).
    pub fn mount_tmpfs(&mut self, inner: &str) {
        let p = self.path(inner);
        fs::create_dir_all(&p).expect("mkdir mount point");
        sh(
            "mount",
            os!["-t", "tmpfs", "-o", "size=4m", "almost-test", p],
        );
        self.nested.push(p);
    }

    /// Bind-mounts `src` at `dst` (both inside the root).
    pub fn bind_mount(&mut self, src: &str, dst: &str) {
        let d = self.path(dst);
        fs::create_dir_all(&d).expect("mkdir mount point");
        sh("mount", os!["--bind", self.path(src), d]);
        self.nested.push(d);
    }

    /// Mounts an overlayfs with `options` at `inner`.
    pub fn mount_overlay(&mut self, options: &str, inner: &str) {
        let p = self.path(inner);
        fs::create_dir_all(&p).expect("mkdir mount point");
        sh(
            "mount",
            os!["-t", "overlay", "-o", options, "almost-test-ov", p],
        );
        self.nested.push(p);
    }

    /// Makes the bind mount of `inner` on itself read-only.
    pub fn bind_read_only(&mut self, inner: &str) {
        let p = self.path(inner);
        sh("mount", os!["--bind", p, p]);
        self.nested.push(p.clone());
        sh("mount", os!["-o", "remount,bind,ro", p]);
    }

    /// Mounts, at `inner`, a filesystem that cannot carry the immutable flag
    /// and puts `files` files in it: vfat from a fresh image when the kernel
    /// has vfat, ramfs otherwise. Returns the filesystem type.
    pub fn mount_flagless(&mut self, inner: &str, files: usize) -> &'static str {
        let p = self.path(inner);
        fs::create_dir_all(&p).expect("mkdir mount point");
        let has_vfat = fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .split_whitespace()
            .any(|f| f == "vfat");
        let fstype = if has_vfat {
            let img = self.dir.join(format!("vfat-{}.img", self.nested.len()));
            sh("truncate", os!["-s", "8M", img]);
            sh("mkfs.vfat", os!["-n", "ALMOSTT", img]);
            sh("mount", os!["-o", "loop", img, p]);
            "vfat"
        } else {
            sh("mount", os!["-t", "ramfs", "almost-test", p]);
            "ramfs"
        };
        self.nested.push(p);
        for i in 0..files {
            self.write(&format!("{inner}/sub/f{i}.txt"), format!("{i}\n"));
        }
        fstype
    }

    // --- running almost ---------------------------------------------------

    /// A `Command` for `almost --root R [args]` (environment pinned so the
    /// messages are untranslated).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ALMOST);
        c.arg("--root").arg(&self.root).args(args);
        c.env("LC_ALL", "C.UTF-8").env_remove("LANGUAGE");
        c
    }

    /// A `Command` for `almost SUBCOMMAND --root R [rest]`: the subcommand
    /// first, as pkexec needs it (it picks the polkit action by `argv[1]`,
    /// and almost refuses anything else under pkexec).
    pub fn command_pkexec_order(&self, args: &[&str]) -> Command {
        let (sub, rest) = args.split_first().expect("a subcommand");
        let mut c = Command::new(ALMOST);
        c.arg(sub).arg("--root").arg(&self.root).args(rest);
        c.env("LC_ALL", "C.UTF-8").env_remove("LANGUAGE");
        c
    }

    /// `almost --root R args…`, waited for with [`DEFAULT_TIMEOUT`].
    pub fn almost(&self, args: &[&str]) -> Run {
        Spawned::spawn(self.command(args)).wait(DEFAULT_TIMEOUT)
    }

    /// `almost --root R --json args…`.
    pub fn almost_json(&self, args: &[&str]) -> Run {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        self.almost(&a)
    }

    /// Starts `almost --root R args…` without waiting.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        Spawned::spawn(self.command(args))
    }

    /// `almost --root R args…` as `nobody` (no groups).
    pub fn almost_as_nobody(&self, args: &[&str]) -> Run {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(ALMOST)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("LANGUAGE");
        Spawned::spawn(c).wait(DEFAULT_TIMEOUT)
    }

    /// `status --json`, asserted successful, returning the result event.
    #[track_caller]
    pub fn status(&self) -> Value {
        let r = self.almost_json(&["status"]);
        r.expect_ok();
        r.result()
    }

    // --- the oracle -----------------------------------------------------------

    /// The lsattr report for a tree inside the root.
    pub fn flags(&self, inner: &str) -> FlagReport {
        flag_report(&self.path(inner))
    }

    /// Whether one file or dir inside the root has `i`.
    pub fn has_i(&self, inner: &str) -> bool {
        has_i(&self.path(inner))
    }

    /// Asserts every file and directory under `inner` (inclusive) has `i`.
    #[track_caller]
    pub fn assert_locked(&self, inner: &str) -> FlagReport {
        let rep = self.flags(inner);
        assert!(
            rep.unlocked.is_empty(),
            "{} of {} files/dirs under {inner} lack the immutable flag:\n{}",
            rep.unlocked.len(),
            rep.total(),
            sample(&rep.unlocked)
        );
        assert!(rep.total() > 0, "nothing to check under {inner}");
        rep
    }

    /// Asserts no file or directory under `inner` (inclusive) has `i`.
    #[track_caller]
    pub fn assert_unlocked(&self, inner: &str) -> FlagReport {
        let rep = self.flags(inner);
        assert!(
            rep.locked.is_empty(),
            "{} of {} files/dirs under {inner} have the immutable flag:\n{}",
            rep.locked.len(),
            rep.total(),
            sample(&rep.locked)
        );
        rep
    }

    /// Asserts that nothing anywhere in the sandbox has `i` except under the
    /// given trees; walks into nested mounts too (each from its own root).
    #[track_caller]
    pub fn assert_clean_outside(&self, managed: &[&str]) {
        let managed: Vec<PathBuf> = managed.iter().map(|m| self.path(m)).collect();
        let mut tops = vec![self.root.clone()];
        tops.extend(self.nested.iter().cloned());
        let mut bad = BTreeSet::new();
        for top in tops {
            let rep = flag_report(&top);
            for p in rep.locked {
                // A nested mount's contents are never managed, even when the
                // mount point lies inside a managed tree.
                let in_nested = top != self.root;
                if in_nested || !managed.iter().any(|m| p.starts_with(m)) {
                    bad.insert(p);
                }
            }
        }
        assert!(
            bad.is_empty(),
            "entries outside the managed trees have the immutable flag:\n{}",
            sample(&bad)
        );
    }

    /// Counts of a whole managed tree as `almost` should report them.
    pub fn expected_counts(&self, inner: &str) -> (usize, usize) {
        let entries = walk(&self.path(inner));
        let flaggable = entries.iter().filter(|(_, k)| k.flaggable()).count();
        let special = entries.iter().filter(|(_, k)| k.special()).count();
        (flaggable, special)
    }

    /// The nested mounts made so far (host paths).
    pub fn nested_mounts(&self) -> &[PathBuf] {
        &self.nested
    }

    // --- cleanup ----------------------------------------------------------------

    /// Kills leftover processes of this sandbox (e.g. a timer started by
    /// `unlock --for`): those whose command line names the sandbox directory.
    pub fn kill_leftovers(&self) {
        let needle = self.dir.to_string_lossy().into_owned();
        for pid in pids_with_cmdline(&needle) {
            kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    fn unmount_all(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.mounted {
            return problems;
        }
        self.kill_leftovers();
        let mut tops = vec![self.root.clone()];
        tops.extend(self.nested.iter().cloned());
        for top in &tops {
            // -f: quiet about symlinks, fifos, devices and sockets.
            let _ = sh_quiet("chattr", os!["-R", "-f", "-i", top]);
        }
        // The root first in the list, so that it is unmounted last.
        for p in tops.iter().rev() {
            let mut ok = false;
            for _ in 0..20 {
                match sh_quiet("umount", os![p]) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(_) => thread::sleep(Duration::from_millis(100)),
                }
            }
            if !ok {
                if let Err(e) = sh_quiet("umount", os!["-l", p]) {
                    problems.push(format!("cannot unmount {}: {e}", p.display()));
                } else {
                    problems.push(format!("{} was busy; lazily unmounted", p.display()));
                }
            }
        }
        self.nested.clear();
        self.mounted = false;
        problems
    }

    /// Unmounts everything and asserts `e2fsck -fn` finds the image clean.
    #[track_caller]
    pub fn unmount_and_fsck(&mut self) {
        let problems = self.unmount_all();
        assert!(problems.is_empty(), "unmount problems: {problems:?}");
        // An `almost` that entered a private mount namespace of its own (to
        // look beneath a layer) while another test of this binary ran holds
        // a copy of every mount, this image's too: our umount then only
        // detached it, and the filesystem lives on until that process ends.
        // The loop device (autoclear) goes when the filesystem does; e2fsck
        // of a live filesystem would see its journal unreplayed.
        let released = wait_until(Duration::from_secs(20), || {
            Command::new("losetup")
                .arg("-j")
                .arg(&self.image)
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
        });
        assert!(
            released,
            "the image's filesystem is still in use 20 s after its unmount"
        );
        let out = Command::new("e2fsck")
            .arg("-fn")
            .arg(&self.image)
            .output()
            .expect("run e2fsck");
        assert!(
            out.status.success(),
            "e2fsck -fn found problems ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never panic here: this runs while a failed test unwinds.
        for p in self.unmount_all() {
            eprintln!("sandbox cleanup: {p}");
        }
        if let Some(tmp) = self.tmp.take() {
            let path = tmp.path().to_path_buf();
            if let Err(e) = tmp.close() {
                eprintln!("sandbox cleanup: cannot remove {}: {e}", path.display());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// inotify: proves that an entry was (not) opened.
// ---------------------------------------------------------------------------

/// Watches paths for IN_OPEN, to prove the binary never opens a fifo or a
/// device node.
pub struct OpenWatch {
    fd: std::os::fd::OwnedFd,
    names: BTreeMap<i32, PathBuf>,
}

impl OpenWatch {
    pub fn new(paths: &[PathBuf]) -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; the fd is owned right away.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(raw >= 0, "inotify_init1: {}", io::Error::last_os_error());
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let mut names = BTreeMap::new();
        for p in paths {
            let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("no NUL");
            // SAFETY: valid fd and NUL-terminated path.
            let wd = unsafe {
                libc::inotify_add_watch(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    c.as_ptr(),
                    libc::IN_OPEN | libc::IN_DONT_FOLLOW,
                )
            };
            assert!(
                wd >= 0,
                "inotify_add_watch {}: {}",
                p.display(),
                io::Error::last_os_error()
            );
            names.insert(wd, p.clone());
        }
        OpenWatch { fd, names }
    }

    /// The watched paths that were opened since the watch started.
    pub fn opened(&self) -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: valid fd and buffer.
            let n = unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n <= 0 {
                break;
            }
            let mut off = 0usize;
            let hdr = std::mem::size_of::<libc::inotify_event>();
            while off + hdr <= n as usize {
                // SAFETY: the kernel wrote whole events; read_unaligned copes
                // with the byte buffer's alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
                if ev.mask & libc::IN_OPEN != 0 {
                    if let Some(p) = self.names.get(&ev.wd) {
                        seen.insert(p.clone());
                    }
                }
                off += hdr + ev.len as usize;
            }
        }
        seen
    }
}
