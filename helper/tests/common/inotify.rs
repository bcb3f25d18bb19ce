// SPDX-License-Identifier: GPL-3.0-or-later
//! inotify: proves that an entry was (not) opened.

use super::*;

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
