// SPDX-License-Identifier: GPL-3.0-or-later
//! Which processes hold something on a mount: their cwd, root, executable,
//! open files or mapped files live on its device. Told to the user instead
//! of a lazy unmount, which would hide the layer while it is still in use;
//! when nobody but the caller holds it, `Layers::unmount` detaches it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
    let Ok(dev) = fs::metadata(mount_point).map(|m| m.dev()) else {
        return Vec::new();
    };
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

#[cfg(test)]
mod tests {
    use super::*;

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
