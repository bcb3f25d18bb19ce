// SPDX-License-Identifier: GPL-3.0-or-later
//! Which processes hold something on a mount: their cwd, root, executable,
//! open files or mapped files live on its device. Told to the user instead
//! of a lazy unmount, which would hide the layer while it is still in use;
//! when nobody but the caller holds it, `Layers::unmount` detaches it.
//!
//! One holder is the running system's own and lets go when asked:
//! systemd-udevd. On every device event it checks whether its hardware
//! database (`/usr/lib/udev/hwdb.bin`) is still the file it mapped, by
//! device and inode; under a layer over `/usr` it is not (the overlay has a
//! device of its own), so udevd maps it again from the layer and holds the
//! layer from then on — within seconds of any device event, on every
//! machine. [`release_udev`] asks it to let go: once the layer is detached
//! the path leads to the tree again, and udevd's reload (SIGHUP, what
//! `udevadm control --reload` asks for) maps the tree's file instead.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A process using a mount: the protocol's, so a refusal can name it to
/// the reader as data (its pid and command), not only in the message.
pub use almost_protocol::Process as Holder;

fn on_device(path: &Path, dev: u64) -> bool {
    fs::metadata(path).is_ok_and(|m| m.dev() == dev)
}

fn maps_device(pid: &str, dev: u64) -> bool {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let wanted = format!("{major:02x}:{minor:02x}");
    fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|maps| {
        maps.lines()
            .any(|l| l.split_whitespace().nth(3) == Some(wanted.as_str()))
    })
}

/// The processes using the filesystem mounted at `mount_point`.
pub fn holders(mount_point: &Path) -> Vec<Holder> {
    match fs::metadata(mount_point) {
        Ok(m) => holders_of(m.dev()),
        Err(_) => Vec::new(),
    }
}

/// The processes using the filesystem of device `dev` (mounted or
/// detached).
pub fn holders_of(dev: u64) -> Vec<Holder> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    for proc_entry in procs.filter_map(Result::ok) {
        let pid = proc_entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let base = proc_entry.path();
        let mut holds = ["cwd", "root", "exe"]
            .iter()
            .any(|l| on_device(&base.join(l), dev));
        if !holds && let Ok(fds) = fs::read_dir(base.join("fd")) {
            holds = fds
                .filter_map(Result::ok)
                .any(|fd| on_device(&fd.path(), dev));
        }
        holds = holds || maps_device(&pid, dev);
        if holds {
            let command = fs::read_to_string(base.join("comm"))
                .unwrap_or_default()
                .trim()
                .to_owned();
            out.push(Holder {
                pid: pid.parse().unwrap_or(0),
                command,
            });
        }
    }
    out.sort_by_key(|h| h.pid);
    out
}

/// The name systemd-udevd's main process and (before systemd 253) its
/// workers run under; later workers are `(udev-worker)`.
const UDEVD: &str = "systemd-udevd";

fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// What udevd's executable is called: `systemd-udevd`, or `udevadm`,
/// whose link `systemd-udevd` it is on Debian 12 (one program for both;
/// the link's name makes the command name).
const UDEVD_EXES: [&str; 2] = [UDEVD, "udevadm"];

/// Whether `pid` is systemd-udevd or one of its workers: run by root
/// (every uid 0: a user can name a process anything, not make it root),
/// from udevd's executable, under one of udevd's names.
fn is_udevd(pid: i32) -> bool {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let comm = comm.trim();
    let named = comm == UDEVD || comm == "(udev-worker)";
    let root =
        status_field(pid, "Uid").is_some_and(|uids| uids.split_whitespace().all(|u| u == "0"));
    let exe_path = fs::read_link(format!("/proc/{pid}/exe"));
    let exe = exe_path.as_ref().is_ok_and(|p| {
        p.file_name()
            .is_some_and(|n| UDEVD_EXES.iter().any(|e| n == *e))
    });
    tracing::debug!("{pid}: {comm:?} named {named}, root {root}, exe {exe_path:?}");
    named && root && exe
}

/// Whether a process has ended (its /proc entry is gone).
fn gone(pid: i32) -> bool {
    fs::symlink_metadata(format!("/proc/{pid}"))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Whether every holder is systemd-udevd (see the module's comment): a
/// hold [`release_udev`] can end. A holder that has ended since it was
/// found does not count (udevd's workers come and go by the second: the
/// VM's run once found one that was gone when it was looked at).
pub fn only_udevd(holders: &[Holder]) -> bool {
    let mut udevd = false;
    for h in holders {
        if is_udevd(h.pid) {
            udevd = true;
        } else if !gone(h.pid) {
            return false;
        }
    }
    udevd
}

/// Sends SIGHUP to `pid` if it still is udevd, through a pidfd so that a
/// pid reused in between is never signalled.
fn hang_up(pid: i32) -> std::io::Result<()> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just returned to us and is owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    // The pidfd pins the process: checked now, it is the one signalled.
    if !is_udevd(pid) {
        return Err(std::io::Error::other("no longer systemd-udevd"));
    }
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGHUP,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Asks systemd-udevd to let go of the detached filesystem of device
/// `dev` it holds (`holders`, all udevd: [`only_udevd`]) and waits up to
/// `wait` for nobody to hold it. Its main process reloads on SIGHUP (its
/// workers are its children and are replaced by the reload; they are
/// never signalled). Returns who still holds it: empty once released.
pub fn release_udev(dev: u64, holders: &[Holder], wait: Duration) -> Vec<Holder> {
    let mut mains: Vec<i32> = holders
        .iter()
        .map(|h| {
            let parent = status_field(h.pid, "PPid").and_then(|p| p.parse().ok());
            match parent {
                Some(ppid) if is_udevd(ppid) => ppid,
                _ => h.pid,
            }
        })
        .collect();
    mains.sort_unstable();
    mains.dedup();
    for pid in mains {
        match hang_up(pid) {
            Ok(()) => tracing::info!(
                "systemd-udevd ({pid}) had loaded its hardware database from the layer: \
                 asked it to reload it from the system"
            ),
            Err(e) => tracing::warn!("cannot ask systemd-udevd ({pid}) to reload: {e}"),
        }
    }
    let deadline = Instant::now() + wait;
    loop {
        let left = holders_of(dev);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks: only a hold of udevd's is released: this test's own process
    // (not udevd) is not, nor a process that has ended (a pid beyond
    // pid_max), nor the two together; a list of nobody is nothing to
    // release.
    #[test]
    fn only_udevd_holds_are_released() {
        let me = Holder {
            pid: std::process::id() as i32,
            command: "test".into(),
        };
        let ended = Holder {
            pid: i32::MAX,
            command: "(udev-worker)".into(),
        };
        assert!(gone(ended.pid) && !gone(me.pid));
        assert!(!only_udevd(std::slice::from_ref(&me)));
        assert!(!only_udevd(std::slice::from_ref(&ended)));
        assert!(!only_udevd(&[me, ended]));
        assert!(!only_udevd(&[]));
    }

    #[test]
    fn a_child_with_its_cwd_on_a_tmpfs_is_found() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // /dev/shm is a tmpfs of its own on Debian: no mount of ours needed.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        let found = holders(Path::new("/dev/shm"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            found
                .iter()
                .any(|h| h.pid == child.id() as i32 && h.command == "sleep"),
            "{found:?}"
        );
    }
}
