// SPDX-License-Identifier: GPL-3.0-or-later
//! Small filesystem helpers shared by the config, the state and the commit
//! engine: files replaced atomically.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `contents` to `path` atomically: a temp file in the same
/// directory, fsync, rename over, fsync the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, true)
}

/// Like [`write_atomic`], without waiting for the disk: for a file whose
/// loss in a crash costs nothing (a progress estimate). A reader still sees
/// the old contents or the new, never half. On a filesystem that also holds
/// a walk's hundred thousand inode changes, an fsync waits for all of them
/// to reach the journal.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, false)
}

fn replace(path: &Path, contents: &[u8], durable: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".almost-")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The `RESOLVE_*` flags of every open beneath a tree: nothing outside it,
/// no symlink and no magic link (`/proc/self/fd/N`) on the way.
pub const BENEATH: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

/// `openat2(dirfd, path, flags, mode)` resolved with [`BENEATH`]: `path`
/// (relative, one name or several) cannot lead out of `dirfd`'s tree or
/// through a symlink, whoever swaps what meanwhile (ELOOP, EXDEV).
pub fn open_beneath(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    openat2(
        dirfd.as_raw_fd(),
        path,
        flags | libc::O_NOCTTY,
        mode,
        BENEATH,
    )
}

/// `openat2(dirfd, path, flags | O_CLOEXEC, mode)` resolved as `resolve`
/// (`RESOLVE_*`) says; `dirfd` may be `AT_FDCWD`. `mode` counts only with
/// `O_CREAT` or `O_TMPFILE`.
pub fn openat2(
    dirfd: libc::c_int,
    path: &Path,
    flags: libc::c_int,
    mode: libc::mode_t,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let name = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        how.mode = u64::from(mode);
    }
    how.resolve = resolve;
    // SAFETY: name is a valid C string, how a valid open_how of the size
    // passed; the fd returned is owned by us.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// The first user and group id of people (Debian's `FIRST_UID` and
/// `FIRST_GID`, `UID_MIN` in login.defs): below are root and the system's
/// own accounts (polkitd owns `/usr/share/polkit-1/rules.d`, the group
/// `staff` may write `/usr/local/share/fonts`), which are part of the
/// system a layer covers, as the packages that made those directories are.
pub const FIRST_USER_ID: u32 = 1000;

/// Whether a person (a login user, or anyone at all) can change what a
/// directory holds: owned by a user ([`FIRST_USER_ID`] and above, `nobody`
/// included; an owner can chmod it at will), group-writable by such a
/// user's group, or writable by others — unless it is sticky and not a
/// user's (as `/tmp`): there others can add names, but not rename or remove
/// the owner's, so nothing root makes there can be swapped.
pub fn user_writable(st: &libc::stat) -> bool {
    let mode = st.st_mode;
    if st.st_uid >= FIRST_USER_ID {
        return true;
    }
    let sticky = mode & libc::S_ISVTX != 0;
    !sticky && (mode & 0o002 != 0 || (mode & 0o020 != 0 && st.st_gid >= FIRST_USER_ID))
}

/// The first `limit` directories at or below `top` (paths relative to it,
/// `""` for `top` itself) that [`user_writable`] finds changeable by
/// someone other than root; the walk stays on `top`'s filesystem.
///
/// One directory fd open at a time, going down by name and back up through
/// `..`, checked against the device and inode it left: no recursion and no
/// path longer than a name, so a chain of 100,000 directories is walked in
/// constant stack (a path-based walk stops at PATH_MAX).
pub fn user_writable_dirs(top: &Path, limit: usize) -> io::Result<Vec<PathBuf>> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let open_at = |dir: BorrowedFd<'_>, name: &CStr| -> io::Result<OwnedFd> {
        // SAFETY: name is a valid C string; the fd is owned by us.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh fd.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let stat = |fd: &OwnedFd| -> io::Result<libc::stat> {
        // SAFETY: st is written by fstat before it is read.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open, st a valid out pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    };
    // The subdirectories of an open directory on `dev`.
    let subdirs = |fd: &OwnedFd, dev: u64| -> io::Result<Vec<CString>> {
        let mut dir = nix::dir::Dir::openat(
            fd,
            c".",
            nix::fcntl::OFlag::from_bits_truncate(flags | libc::O_CLOEXEC),
            nix::sys::stat::Mode::empty(),
        )?;
        let mut dirs = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let maybe_dir = match entry.file_type() {
                Some(t) => t == nix::dir::Type::Directory,
                None => true,
            };
            if !maybe_dir {
                continue;
            }
            let st = nix::sys::stat::fstatat(fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR && st.st_dev == dev {
                dirs.push(name.to_owned());
            }
        }
        // Popped from the end: sorted names, walked in order.
        dirs.sort_by(|a, b| b.cmp(a));
        Ok(dirs)
    };
    struct Level {
        id: (u64, u64),
        name: CString,
        pending: Vec<CString>,
    }
    let mut found = Vec::new();
    let names_of = |stack: &[Level]| -> PathBuf {
        stack
            .iter()
            .skip(1)
            .map(|l| std::ffi::OsStr::from_bytes(l.name.as_bytes()))
            .collect()
    };
    let mut fd: OwnedFd = {
        let c = CString::new(top.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: c is a valid C string; the fd is owned by us.
        let raw = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh fd.
        unsafe { OwnedFd::from_raw_fd(raw) }
    };
    let st = stat(&fd)?;
    let dev = st.st_dev;
    let mut stack = vec![Level {
        id: (st.st_dev, st.st_ino),
        name: CString::default(),
        pending: subdirs(&fd, dev)?,
    }];
    if user_writable(&st) {
        found.push(PathBuf::new());
    }
    while found.len() < limit {
        let Some(top_level) = stack.last_mut() else {
            break;
        };
        if let Some(name) = top_level.pending.pop() {
            let child = match open_at(fd.as_fd(), &name) {
                Ok(child) => child,
                // Gone meanwhile, or replaced by something not a directory.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let st = stat(&child)?;
            let level = Level {
                id: (st.st_dev, st.st_ino),
                pending: subdirs(&child, dev)?,
                name,
            };
            fd = child;
            stack.push(level);
            if user_writable(&st) {
                found.push(names_of(&stack));
            }
            continue;
        }
        stack.pop();
        let Some(parent_level) = stack.last() else {
            break;
        };
        let parent = open_at(fd.as_fd(), c"..")?;
        let st = stat(&parent)?;
        if (st.st_dev, st.st_ino) != parent_level.id {
            return Err(io::Error::other(format!(
                "{}: the tree moved while it was being read",
                top.display()
            )));
        }
        fd = parent;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    // Checks which directories count as changeable by a user: owned by a
    // login user (whatever the mode), world-writable, group-writable by a
    // user's group; not a root-owned sticky one (as /tmp), not one writable
    // by root's group, not a system account's or a system group's. Found below a 2,000-level chain (past
    // PATH_MAX), and in walk order, up to the limit.
    #[test]
    fn finds_directories_users_can_change() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (chown)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("t");
        fs::create_dir(&top).unwrap();
        chmod(&top, 0o755);
        for (name, mode, uid, gid) in [
            ("a-user", 0o555, 1000, 0),
            ("b-world", 0o777, 0, 0),
            ("c-group", 0o775, 0, 1000),
            ("d-sticky", 0o1777, 0, 0),
            ("e-rootgroup", 0o775, 0, 0),
            ("f-plain", 0o755, 0, 0),
            // A system account's (polkitd's rules.d), a system group's
            // (staff's fonts): part of the system.
            ("g-daemon", 0o700, 101, 0),
            ("h-staff", 0o2775, 0, 50),
        ] {
            let p = top.join(name);
            fs::create_dir(&p).unwrap();
            chmod(&p, mode);
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        assert_eq!(
            user_writable_dirs(&top, 10).unwrap(),
            ["a-user", "b-world", "c-group"].map(PathBuf::from).to_vec()
        );
        assert_eq!(user_writable_dirs(&top, 1).unwrap().len(), 1);
        for name in ["a-user", "b-world", "c-group"] {
            fs::remove_dir(top.join(name)).unwrap();
        }
        assert_eq!(user_writable_dirs(&top, 10).unwrap(), Vec::<PathBuf>::new());
        // A chain deeper than PATH_MAX, built fd by fd, with a
        // world-writable directory at its end.
        let mut fd = nix::fcntl::open(
            &top.join("f-plain"),
            nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        for _ in 0..2000 {
            nix::sys::stat::mkdirat(&fd, c"d", nix::sys::stat::Mode::from_bits_truncate(0o755))
                .unwrap();
            fd = nix::fcntl::openat(
                &fd,
                c"d",
                nix::fcntl::OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap();
        }
        nix::sys::stat::mkdirat(&fd, c"w", nix::sys::stat::Mode::empty()).unwrap();
        nix::sys::stat::fchmodat(
            &fd,
            c"w",
            nix::sys::stat::Mode::from_bits_truncate(0o777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .unwrap();
        let found = user_writable_dirs(&top, 10).unwrap();
        assert_eq!(found.len(), 1, "{}", found.len());
        assert_eq!(found[0].components().count(), 2002);
        assert!(found[0].ends_with("d/w"));
        crate::layer::remove_tree(&top).unwrap();
    }
}
