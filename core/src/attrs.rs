// SPDX-License-Identifier: GPL-3.0-or-later
//! The immutable flag of one inode, addressed by (directory fd, name).
//!
//! Reading goes through `statx(2)`, which reports the flag in
//! `stx_attributes` together with the type and the mount identity, so a walk
//! needs one syscall per entry to know everything. Writing goes through
//! `file_getattr(2)`/`file_setattr(2)` (Linux 6.17+), which need no open;
//! older kernels answer ENOSYS and we fall back, once and for all, to
//! `openat` + `FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

const STATX_ATTR_IMMUTABLE: u64 = 0x10;
const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;
const STATX_MNT_ID: u32 = 0x1000;
const FS_XFLAG_IMMUTABLE: u64 = 0x8;
const FS_IMMUTABLE_FL: libc::c_int = 0x10;

// New syscalls share one number on every architecture but alpha, mips and ia64.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
const SYS_FILE_GETATTR: libc::c_long = 468;
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
const SYS_FILE_SETATTR: libc::c_long = 469;

nix::ioctl_read_bad!(fs_ioc_getflags, libc::FS_IOC_GETFLAGS, libc::c_int);
nix::ioctl_write_ptr_bad!(fs_ioc_setflags, libc::FS_IOC_SETFLAGS, libc::c_int);

/// Which kernel interface writes the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagInterface {
    /// `file_setattr(2)` where the kernel has it, else the ioctl.
    #[default]
    Auto,
    /// Only `file_setattr(2)`; ENOSYS is an error.
    FileSetattr,
    /// Only open + `FS_IOC_SETFLAGS` (what kernels before 6.17 offer).
    Ioctl,
}

// 0: not probed yet, 1: the kernel has file_setattr, 2: it does not.
static FILE_SETATTR: AtomicU8 = AtomicU8::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Device nodes, fifos and sockets: never opened, never flagged.
    Special,
}

impl Kind {
    pub fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Special,
        }
    }

    pub fn can_carry_flag(self) -> bool {
        matches!(self, Kind::File | Kind::Dir)
    }
}

/// What one `statx` says about an entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub kind: Kind,
    /// `None` when the filesystem does not report the flag through statx.
    pub immutable: Option<bool>,
    /// The entry is the root of a mount (something is mounted on this name).
    pub mount_root: bool,
    pub mnt_id: u64,
    pub dev: u64,
    pub ino: u64,
}

/// `statx(dirfd, name)` without following a symlink. An empty `name`
/// describes `dirfd` itself.
pub fn stat_at(dirfd: BorrowedFd<'_>, name: &CStr) -> io::Result<Entry> {
    let mut flags = libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT;
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH;
    }
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let mask = libc::STATX_TYPE | libc::STATX_INO | STATX_MNT_ID;
    // SAFETY: name is a valid C string and stx a writable statx buffer.
    let rc = unsafe {
        libc::statx(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            flags,
            mask,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded and filled the buffer (it was zeroed anyway).
    let stx = unsafe { stx.assume_init() };
    let immutable = (stx.stx_attributes_mask & STATX_ATTR_IMMUTABLE != 0)
        .then_some(stx.stx_attributes & STATX_ATTR_IMMUTABLE != 0);
    Ok(Entry {
        kind: Kind::from_mode(u32::from(stx.stx_mode)),
        immutable,
        mount_root: stx.stx_attributes & STATX_ATTR_MOUNT_ROOT != 0,
        mnt_id: if stx.stx_mask & STATX_MNT_ID != 0 {
            stx.stx_mnt_id
        } else {
            0
        },
        dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
        ino: stx.stx_ino,
    })
}

#[repr(C)]
#[derive(Default)]
struct FileAttr {
    fa_xflags: u64,
    fa_extsize: u32,
    fa_nextents: u32,
    fa_projid: u32,
    fa_cowextsize: u32,
}

fn at_flags(name: &CStr) -> libc::c_uint {
    let mut flags = libc::AT_SYMLINK_NOFOLLOW as libc::c_uint;
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    flags
}

#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
fn file_getattr(dirfd: BorrowedFd<'_>, name: &CStr) -> io::Result<FileAttr> {
    let mut attr = FileAttr::default();
    // SAFETY: the kernel writes at most size_of::<FileAttr>() bytes into attr.
    let rc = unsafe {
        libc::syscall(
            SYS_FILE_GETATTR,
            dirfd.as_raw_fd(),
            name.as_ptr(),
            &mut attr as *mut FileAttr,
            std::mem::size_of::<FileAttr>(),
            at_flags(name),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr)
}

#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
fn file_setattr(dirfd: BorrowedFd<'_>, name: &CStr, attr: &FileAttr) -> io::Result<()> {
    // SAFETY: the kernel reads size_of::<FileAttr>() bytes from attr.
    let rc = unsafe {
        libc::syscall(
            SYS_FILE_SETATTR,
            dirfd.as_raw_fd(),
            name.as_ptr(),
            attr as *const FileAttr,
            std::mem::size_of::<FileAttr>(),
            at_flags(name),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
fn file_getattr(_: BorrowedFd<'_>, _: &CStr) -> io::Result<FileAttr> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
fn file_setattr(_: BorrowedFd<'_>, _: &CStr, _: &FileAttr) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Whether this kernel offers `file_setattr(2)`; probed once, on `dirfd`.
pub fn kernel_has_file_setattr(dirfd: BorrowedFd<'_>) -> bool {
    match FILE_SETATTR.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let has = !matches!(file_getattr(dirfd, c""), Err(e) if e.raw_os_error() == Some(libc::ENOSYS));
            FILE_SETATTR.store(if has { 1 } else { 2 }, Ordering::Relaxed);
            has
        }
    }
}

fn use_file_setattr(iface: FlagInterface, dirfd: BorrowedFd<'_>) -> bool {
    match iface {
        FlagInterface::Ioctl => false,
        FlagInterface::FileSetattr => true,
        FlagInterface::Auto => kernel_has_file_setattr(dirfd),
    }
}

fn open_for_ioctl(dirfd: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    if name.is_empty() {
        // The entry is the directory itself: reopen it so the caller's fd
        // keeps its own file position.
        return dirfd.try_clone_to_owned();
    }
    let flags =
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: name is a valid C string; the returned fd is owned by us.
    let fd = unsafe { libc::openat(dirfd.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by openat and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads the flag of (dirfd, name) through the write interface. Used where
/// statx does not report it.
pub fn get_immutable(dirfd: BorrowedFd<'_>, name: &CStr, iface: FlagInterface) -> io::Result<bool> {
    if use_file_setattr(iface, dirfd) {
        return Ok(file_getattr(dirfd, name)?.fa_xflags & FS_XFLAG_IMMUTABLE != 0);
    }
    let fd = open_for_ioctl(dirfd, name)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: fd is open and flags is a valid int to write into.
    unsafe { fs_ioc_getflags(fd.as_raw_fd(), &mut flags) }.map_err(io::Error::from)?;
    Ok(flags & FS_IMMUTABLE_FL != 0)
}

/// Sets or clears the flag of (dirfd, name), keeping every other flag.
/// Returns whether anything was written (false when it already was `on`).
pub fn set_immutable(
    dirfd: BorrowedFd<'_>,
    name: &CStr,
    on: bool,
    iface: FlagInterface,
) -> io::Result<bool> {
    if use_file_setattr(iface, dirfd) {
        let mut attr = file_getattr(dirfd, name)?;
        if (attr.fa_xflags & FS_XFLAG_IMMUTABLE != 0) == on {
            return Ok(false);
        }
        attr.fa_xflags ^= FS_XFLAG_IMMUTABLE;
        file_setattr(dirfd, name, &attr)?;
        return Ok(true);
    }
    let fd = open_for_ioctl(dirfd, name)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: fd is open and flags is a valid int to write into.
    unsafe { fs_ioc_getflags(fd.as_raw_fd(), &mut flags) }.map_err(io::Error::from)?;
    if (flags & FS_IMMUTABLE_FL != 0) == on {
        return Ok(false);
    }
    flags ^= FS_IMMUTABLE_FL;
    // SAFETY: fd is open and flags a valid int to read from.
    unsafe { fs_ioc_setflags(fd.as_raw_fd(), &flags) }.map_err(io::Error::from)?;
    Ok(true)
}

/// True for the errors that mean "this filesystem has no such flag".
pub fn is_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::ENOTTY | libc::ENOSYS | libc::EINVAL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs;
    use std::os::fd::AsFd;

    fn dir_fd(path: &std::path::Path) -> OwnedFd {
        fs::File::open(path).unwrap().into()
    }

    // Needs root (CAP_LINUX_IMMUTABLE) and a filesystem with the flag; the
    // test tree lives in a temp dir whose flags are cleared before deletion,
    // also when an assertion fails.
    fn flag_round_trip(iface: FlagInterface) {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = crate::testing::FlagDir::new();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let fd = dir_fd(dir.path());
        let name = CString::new("f").unwrap();
        assert_eq!(stat_at(fd.as_fd(), &name).unwrap().kind, Kind::File);
        assert!(!get_immutable(fd.as_fd(), &name, iface).unwrap());
        assert!(set_immutable(fd.as_fd(), &name, true, iface).unwrap());
        assert!(
            !set_immutable(fd.as_fd(), &name, true, iface).unwrap(),
            "second set is a no-op"
        );
        assert_eq!(stat_at(fd.as_fd(), &name).unwrap().immutable, Some(true));
        assert!(
            fs::write(dir.path().join("f"), b"y").is_err(),
            "an immutable file cannot be written"
        );
        assert!(set_immutable(fd.as_fd(), &name, false, iface).unwrap());
        assert_eq!(stat_at(fd.as_fd(), &name).unwrap().immutable, Some(false));
    }

    #[test]
    fn round_trip_ioctl() {
        flag_round_trip(FlagInterface::Ioctl);
    }

    #[test]
    fn round_trip_auto() {
        flag_round_trip(FlagInterface::Auto);
    }

    #[test]
    fn stat_reports_kinds_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink("d", dir.path().join("l")).unwrap();
        nix::unistd::mkfifo(&dir.path().join("p"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let fd = dir_fd(dir.path());
        let kind = |n: &str| stat_at(fd.as_fd(), &CString::new(n).unwrap()).unwrap().kind;
        assert_eq!(kind("d"), Kind::Dir);
        assert_eq!(kind("l"), Kind::Symlink);
        assert_eq!(kind("p"), Kind::Special);
        assert_eq!(stat_at(fd.as_fd(), c"").unwrap().kind, Kind::Dir);
    }
}
