// SPDX-License-Identifier: GPL-3.0-or-later
//! Safety: never mount outside a private mount namespace.

use super::*;

pub(crate) fn mnt_ns_inode(pid: &str) -> io::Result<u64> {
    fs::metadata(format!("/proc/{pid}/ns/mnt")).map(|m| m.ino())
}

pub(crate) fn parent_pid(pid: &str) -> Option<String> {
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
