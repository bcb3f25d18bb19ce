// SPDX-License-Identifier: GPL-3.0-or-later
//! Paths as the user names them ("/usr", always inside the root) and the
//! root they are resolved under. Validation here is the single gate every
//! path from a config file or a command line goes through.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Trees Almost never manages: they hold configuration, user data, state
/// or kernel interfaces. A managed path may not be, contain or lie in one.
pub const NEVER_MANAGED: &[&str] = &[
    "/home",
    "/etc",
    "/var",
    "/run",
    "/tmp",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/mnt",
    "/media",
    "/srv",
    "/lost+found",
];

/// The default managed trees; those that are real directories are used.
pub const DEFAULT_PATHS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
];

/// Checks that `raw` is an absolute, normalised path: no `.`/`..`, no empty
/// component, no trailing slash, not `/` itself.
pub fn check_syntax(raw: &str) -> Result<PathBuf> {
    let bad = |reason: &str| Error::InvalidPath {
        path: raw.to_owned(),
        reason: reason.to_owned(),
    };
    if raw.is_empty() {
        return Err(bad("empty path"));
    }
    if !raw.starts_with('/') {
        return Err(bad("not an absolute path"));
    }
    if raw == "/" {
        return Err(bad("the whole root cannot be managed"));
    }
    if raw.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    for part in raw[1..].split('/') {
        match part {
            "" => return Err(bad("empty component (double or trailing slash)")),
            "." | ".." => return Err(bad("contains . or .. components")),
            _ => {}
        }
    }
    Ok(PathBuf::from(raw))
}

/// A path that may be managed (flagged): syntactically clean and clear of
/// the trees that are never managed.
pub fn check_manageable(raw: &str) -> Result<PathBuf> {
    let path = check_syntax(raw)?;
    for never in NEVER_MANAGED {
        let never = Path::new(never);
        if path.starts_with(never) || never.starts_with(&path) {
            return Err(Error::InvalidPath {
                path: raw.to_owned(),
                reason: format!("{} is never managed", never.display()),
            });
        }
    }
    Ok(path)
}

/// The path relative to the root, for `openat` under the root fd.
pub fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// The system root everything is resolved under (`--root`, default `/`).
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    fd: OwnedFd,
}

impl Root {
    /// Opens DIR as the root. It must be an existing absolute directory with
    /// no `..`. It is resolved once, here (symlinks on the way followed);
    /// from then on the root is the directory opened, and its path is the
    /// name the kernel gives that directory (its canonical path, so that
    /// output can name host paths), checked to lead back to it without
    /// following a link. Under pkexec, [`check_trusted_root`] then makes
    /// sure nobody but root can change where that path leads.
    pub fn open(dir: &Path) -> Result<Root> {
        use std::os::unix::fs::OpenOptionsExt;
        let bad = |reason: &str| Error::InvalidRoot {
            path: dir.to_owned(),
            reason: reason.to_owned(),
        };
        if !dir.is_absolute() {
            return Err(bad("not an absolute path"));
        }
        if dir.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(bad("contains .. components"));
        }
        let fd: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(dir)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOTDIR) => bad("not a directory"),
                _ => bad(&e.to_string()),
            })?
            .into();
        // Without /proc, the canonical path: checked below all the same.
        let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .or_else(|_| dir.canonicalize())
            .map_err(|e| bad(&format!("cannot name the directory opened: {e}")))?;
        let name = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| bad("its name contains a NUL byte"))?;
        // An absolute name: openat2 ignores the fd and starts from our root.
        let again = open_dir_at(fd.as_fd(), &name, libc::RESOLVE_NO_SYMLINKS)
            .map_err(|e| bad(&format!("{} does not lead back to it: {e}", path.display())))?;
        if file_id(fd.as_fd()).map_err(|e| bad(&e.to_string()))?
            != file_id(again.as_fd()).map_err(|e| bad(&e.to_string()))?
        {
            return Err(bad(&format!(
                "{} does not lead back to the directory opened",
                path.display()
            )));
        }
        Ok(Root { path, fd })
    }

    /// A second handle on the same directory (the audit entry at the end of
    /// an act is written through it, not through the path again).
    pub fn try_clone(&self) -> Result<Root> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::io("duplicating the root's descriptor", e))?;
        Ok(Root {
            path: self.path.clone(),
            fd,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn is_system_root(&self) -> bool {
        self.path == Path::new("/")
    }

    /// The host path of `inside` ("/usr" → "/tmp/r/usr").
    pub fn host(&self, inside: &Path) -> PathBuf {
        self.path.join(relative(inside))
    }

    /// The path inside the root of a host path, if it is under the root.
    pub fn inside(&self, host: &Path) -> Option<PathBuf> {
        let rel = host.strip_prefix(&self.path).ok()?;
        Some(Path::new("/").join(rel))
    }

    /// Opens the directory `inside` beneath the root without following any
    /// symlink on the way (a symlinked /lib is not a tree of its own) and
    /// without escaping the root; its access time is left alone, as by
    /// [`open_dir_at`].
    pub fn open_dir(&self, inside: &Path) -> io::Result<OwnedFd> {
        let name = CString::new(relative(inside).as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        open_dir_at(
            self.fd.as_fd(),
            &name,
            libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_BENEATH,
        )
    }
}

// Set once the kernel refused O_NOATIME (not the owner, no CAP_FOWNER).
static NOATIME_REFUSED: AtomicBool = AtomicBool::new(false);

/// Opens the directory `name` under `dirfd` without following a symlink in
/// its last component, with `openat2` and these `RESOLVE_*` flags when there
/// are any (`RESOLVE_NO_XDEV`: refuse, EXDEV, to enter anything mounted).
/// Reading it leaves its access time alone where the kernel allows
/// (O_NOATIME: the caller owns it or has CAP_FOWNER): a walk is not a use,
/// and with relatime every lock or unlock (a ctime change) would otherwise
/// cost one more inode write per directory on the next walk.
pub fn open_dir_at(dirfd: BorrowedFd<'_>, name: &CStr, resolve: u64) -> io::Result<OwnedFd> {
    let flags =
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY;
    let open = |flags: libc::c_int| {
        let fd = if resolve != 0 {
            // SAFETY: open_how is plain data; zeroed is a valid value.
            let mut how: libc::open_how = unsafe { std::mem::zeroed() };
            how.flags = flags as u64;
            how.resolve = resolve;
            // SAFETY: name is a valid C string, how a valid open_how of the
            // size passed; the fd returned is owned by us.
            unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dirfd.as_raw_fd(),
                    name.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            }
        } else {
            // SAFETY: name is a valid C string; the fd is owned by us.
            libc::c_long::from(unsafe { libc::openat(dirfd.as_raw_fd(), name.as_ptr(), flags) })
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh fd.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
    };
    if NOATIME_REFUSED.load(Ordering::Relaxed) {
        return open(flags);
    }
    match open(flags | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            NOATIME_REFUSED.store(true, Ordering::Relaxed);
            open(flags)
        }
        opened => opened,
    }
}

/// Device and inode of an open file.
fn file_id(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

const GROUP_OTHER_WRITE: u32 = 0o022;

/// Under pkexec (`PKEXEC_UID` set), `--root` must be `/` or a directory
/// that only root can change: it and every directory above it owned by
/// root and not writable by group or others — a world-writable directory
/// with the sticky bit (`/tmp`) is accepted above it, since nobody else can
/// rename or replace the root-owned entry below it. Otherwise a user allowed
/// to run `almost` through pkexec could build a tree of their own, have
/// root act on it, and swap parts of it while it does.
///
/// Checked on the directory [`Root::open`] opened, and on its parents
/// through `..` from its descriptor, never by resolving a path again (the
/// check used to canonicalise `--root` and the root was resolved again
/// afterwards: a symlink flipped in between won). Once it passes, only
/// root can change where the root's path leads, so the path the rest of
/// Almost (and the re-lock timer) uses names this directory for good.
pub fn check_trusted_root(root: &Root) -> Result<()> {
    const STICKY: u32 = 0o1000;
    let bad = |reason: String| Error::InvalidRoot {
        path: root.path.clone(),
        reason,
    };
    let io_bad = |e: io::Error| bad(format!("checking who may change it: {e}"));
    let mut here = root.fd.try_clone().map_err(io_bad)?;
    let mut names = root.path.ancestors();
    let mut first = true;
    loop {
        let st = nix::sys::stat::fstat(here.as_fd()).map_err(|e| io_bad(e.into()))?;
        let shown = names
            .next()
            .map_or_else(|| "a parent".to_owned(), |p| p.display().to_string());
        let parent = open_path_at(here.as_fd(), c"..", libc::O_DIRECTORY).map_err(io_bad)?;
        let top = file_id(parent.as_fd()).map_err(io_bad)? == (st.st_dev, st.st_ino);
        if first && top {
            // Our own `/`: the system's root, whoever runs us.
            return Ok(());
        }
        if st.st_uid != 0 {
            return Err(bad(format!(
                "under pkexec the root must be / or a directory only root can change, \
                 and {shown} is owned by uid {}",
                st.st_uid
            )));
        }
        let writable = st.st_mode & GROUP_OTHER_WRITE != 0;
        // The root itself may never be writable by others; a parent may be
        // if it is sticky (entries owned by root cannot be moved away).
        if writable && (first || st.st_mode & STICKY == 0) {
            return Err(bad(format!(
                "under pkexec the root must be / or a directory only root can change, \
                 and {shown} is writable by group or others (mode {:o})",
                st.st_mode & 0o7777
            )));
        }
        if top {
            return Ok(());
        }
        first = false;
        here = parent;
    }
}

/// Under pkexec, a directory Almost keeps its own files in (`inside`, such
/// as `/var/lib/almost/layers`) must be reached from the root without
/// following a symlink, and it and each directory on the way must be owned
/// by root and not writable by group or others — sticky or not: a sticky
/// world-writable `var/log` still lets a user create `almost.log` first.
/// Otherwise a root-owned root whose `var` links into a user's directory
/// (or a `var/lib/almost` a user may write) puts the layer store, the
/// state and the audit log where that user can swap them. The part that
/// does not exist yet is fine: only root can create it.
pub fn check_root_only_beneath(root: &Root, inside: &Path) -> Result<()> {
    let mut dir = root
        .fd
        .try_clone()
        .map_err(|e| Error::io("duplicating the root's descriptor", e))?;
    let mut here = PathBuf::from("/");
    for part in relative(inside).components() {
        here.push(part);
        let bad = |reason: String| Error::InvalidRoot {
            path: root.host(&here),
            reason: format!(
                "under pkexec the directories Almost keeps its files in ({}) must be \
                 root's alone, and {reason}",
                inside.display()
            ),
        };
        let name = CString::new(part.as_os_str().as_bytes())
            .map_err(|_| bad("its name contains a NUL byte".to_owned()))?;
        let fd = match open_path_at(dir.as_fd(), &name, libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(bad(format!("{} cannot be opened: {e}", here.display()))),
        };
        let st = nix::sys::stat::fstat(fd.as_fd())
            .map_err(|e| bad(format!("{}: {e}", here.display())))?;
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFLNK {
            return Err(bad(format!("{} is a symbolic link", here.display())));
        }
        if kind != libc::S_IFDIR {
            return Err(bad(format!("{} is not a directory", here.display())));
        }
        if st.st_uid != 0 {
            return Err(bad(format!(
                "{} is owned by uid {}",
                here.display(),
                st.st_uid
            )));
        }
        if st.st_mode & GROUP_OTHER_WRITE != 0 {
            return Err(bad(format!(
                "{} is writable by group or others (mode {:o})",
                here.display(),
                st.st_mode & 0o7777
            )));
        }
        dir = fd;
    }
    Ok(())
}

/// `openat(dirfd, name, O_PATH | flags)`: a handle to look at (fstat) and
/// to resolve from, not to read.
fn open_path_at(dirfd: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid C string; the fd returned is owned by us.
    let fd = unsafe {
        libc::openat(
            dirfd.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC | flags,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        assert!(check_syntax("/usr").is_ok());
        assert!(check_syntax("/usr/lib/x86_64-linux-gnu").is_ok());
        assert!(check_syntax("/usr/my dir").is_ok());
        for bad in [
            "",
            "usr",
            "./usr",
            "/",
            "/usr/",
            "//usr",
            "/usr/../etc",
            "/usr/./lib",
            "/..",
            "/a\0b",
        ] {
            assert!(check_syntax(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn never_managed_trees_are_refused() {
        assert!(check_manageable("/usr").is_ok());
        assert!(check_manageable("/opt/app").is_ok());
        assert!(
            check_manageable("/homework").is_ok(),
            "a prefix of a name is not a parent"
        );
        for bad in ["/home", "/home/user", "/etc", "/var/lib", "/proc", "/run/x"] {
            let err = check_manageable(bad).unwrap_err();
            assert!(err.to_string().contains("never managed"), "{bad}: {err}");
        }
    }

    #[test]
    fn root_rejects_bad_dirs_and_resolves_beneath() {
        assert!(Root::open(Path::new("relative")).is_err());
        assert!(Root::open(Path::new("/nonexistent-almost-root")).is_err());
        assert!(Root::open(Path::new("/tmp/../tmp")).is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("usr")).unwrap();
        std::os::unix::fs::symlink("usr", dir.path().join("lib")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("escape")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(root.open_dir(Path::new("/usr")).is_ok());
        assert!(
            root.open_dir(Path::new("/lib")).is_err(),
            "symlinked tree followed"
        );
        assert!(
            root.open_dir(Path::new("/escape/usr")).is_err(),
            "escaped the root"
        );
        assert_eq!(root.host(Path::new("/usr")), root.path().join("usr"));
        assert_eq!(
            root.inside(&root.path().join("usr/bin")).unwrap(),
            Path::new("/usr/bin")
        );
    }

    #[test]
    fn trusted_root_under_pkexec() {
        use std::os::unix::fs::PermissionsExt;
        let trusted = |p: &Path| check_trusted_root(&Root::open(p).unwrap());
        assert!(trusted(Path::new("/")).is_ok());
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let r = dir.path().join("r");
        std::fs::create_dir(&r).unwrap();
        set(dir.path(), 0o755);
        set(&r, 0o755);
        assert!(trusted(&r).is_ok(), "a root-only tree under sticky /tmp");
        set(&r, 0o757);
        let err = trusted(&r).unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
        set(&r, 0o1777);
        assert!(
            trusted(&r).is_err(),
            "the root itself may not be sticky-writable"
        );
        set(&r, 0o755);
        set(dir.path(), 0o775);
        let err = trusted(&r).unwrap_err().to_string();
        assert!(err.contains("(mode 775)"), "a group-writable parent: {err}");
        set(dir.path(), 0o755);
        std::os::unix::fs::chown(&r, Some(65534), None).unwrap();
        let err = trusted(&r).unwrap_err().to_string();
        assert!(err.contains("owned by uid 65534"), "{err}");
        std::os::unix::fs::chown(&r, Some(0), None).unwrap();

        // The root is judged as opened: a later change of what its name
        // leads to does not reach the root already opened.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&r, &link).unwrap();
        let root = Root::open(&link).unwrap();
        assert_eq!(root.path(), r.canonicalize().unwrap());
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(check_trusted_root(&root).is_ok());
        assert!(!root.is_system_root());
    }

    #[test]
    fn the_directories_almost_keeps_its_files_in_are_roots_alone() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        let user = dir.path().join("user");
        std::fs::create_dir_all(r.join("var/lib")).unwrap();
        std::fs::create_dir_all(user.join("lib/almost")).unwrap();
        let root = Root::open(&r).unwrap();
        let check = || check_root_only_beneath(&root, Path::new("/var/lib/almost/layers"));
        assert!(check().is_ok(), "missing parts are root's to create");
        std::fs::create_dir_all(r.join("var/lib/almost/layers")).unwrap();
        assert!(check().is_ok());

        std::os::unix::fs::chown(r.join("var/lib/almost"), Some(65534), None).unwrap();
        let err = check().unwrap_err().to_string();
        assert!(
            err.contains("/var/lib/almost is owned by uid 65534"),
            "{err}"
        );
        std::os::unix::fs::chown(r.join("var/lib/almost"), Some(0), None).unwrap();

        let set = |mode| {
            let p = r.join("var/lib");
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(0o1777);
        let err = check().unwrap_err().to_string();
        assert!(
            err.contains("/var/lib is writable by group or others"),
            "{err}"
        );
        set(0o755);

        std::fs::remove_dir_all(r.join("var")).unwrap();
        std::os::unix::fs::symlink(&user, r.join("var")).unwrap();
        let err = check().unwrap_err().to_string();
        assert!(err.contains("/var is a symbolic link"), "{err}");
        assert!(
            matches!(check(), Err(Error::InvalidRoot { path, .. }) if path == root.path().join("var"))
        );
    }
}
