// SPDX-License-Identifier: GPL-3.0-or-later
//! The parallel walk over one managed tree: reads or changes the immutable
//! flag of every file and directory, never following a symlink, never
//! opening anything but directories (and, on the ioctl fallback, files),
//! never leaving the starting mount.
//!
//! Directories are the unit of parallelism: each one is read with one fd
//! and each of its subdirectories becomes a job of rayon's work-stealing
//! pool (`Scope::spawn`: a job on the heap, not a call on the stack), opened
//! only when a worker takes it, from its parent's fd, which is closed once
//! no job of it is pending. No recursion follows the depth of the tree: a
//! chain of 100,000 single-child directories runs in constant stack and
//! with a few fds open. A directory's path is a chain of names built only
//! where it is needed (an exclude or a mount point can lie there, or an
//! error names it), so a deep tree costs no quadratic path copies.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::attrs::{self, Entry, FlagInterface, Kind};
use crate::paths;

/// How many per-entry errors a report keeps (all are counted).
pub const MAX_KEPT_ERRORS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Only read the flags (status).
    Read,
    /// Set (`true`) or clear (`false`) the flag where it differs.
    Set(bool),
}

pub use almost_protocol::status::EntryError;

/// One entry that could not be read or changed, as the protocol says it.
fn entry_error(path: &Path, err: &io::Error) -> EntryError {
    EntryError {
        path: almost_protocol::path::encode(path),
        errno: err.raw_os_error().unwrap_or(0),
        message: err.to_string(),
    }
}

/// What the walk of one tree found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TreeCounts {
    pub locked: u64,
    pub unlocked: u64,
    pub skipped: u64,
    pub changed: u64,
    pub mount_points: Vec<String>,
    pub errors: Vec<EntryError>,
    pub error_count: u64,
    /// Set when the filesystem turned out not to carry the flag at all.
    pub unsupported: bool,
}

/// Everything shared by the workers of one walk.
pub struct Walk<'a> {
    pub action: Action,
    pub iface: FlagInterface,
    /// Names to skip, keyed by the path (inside the root) of their parent.
    pub excludes: &'a HashMap<PathBuf, HashSet<OsString>>,
    /// Directories (named like the walked paths) that have a mount point
    /// among their entries, from the mount table. Elsewhere a regular file
    /// cannot be a mount point, so it needs no `statx` before its flag is
    /// written.
    pub mount_parents: &'a HashSet<PathBuf>,
    /// Entries seen so far, for progress reports.
    pub progress: &'a AtomicU64,
    /// Set to stop the walk early (the result is then incomplete).
    pub cancel: &'a AtomicBool,
}

#[derive(Default)]
struct Shared {
    locked: AtomicU64,
    unlocked: AtomicU64,
    skipped: AtomicU64,
    changed: AtomicU64,
    error_count: AtomicU64,
    mount_points: Mutex<Vec<String>>,
    errors: Mutex<Vec<EntryError>>,
    unsupported: AtomicBool,
}

impl Shared {
    /// Counts an error; the path is built only for one that is kept.
    fn error(&self, path: impl FnOnce() -> PathBuf, err: &io::Error) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < MAX_KEPT_ERRORS {
            errors.push(entry_error(&path(), err));
        }
    }

    fn mount_point(&self, path: &Path) {
        let mut mounts = self.mount_points.lock().unwrap_or_else(|p| p.into_inner());
        mounts.push(almost_protocol::path::encode(path));
    }

    fn add(&self, tally: &Tally) {
        for (counter, n) in [
            (&self.locked, tally.locked),
            (&self.unlocked, tally.unlocked),
            (&self.skipped, tally.skipped),
            (&self.changed, tally.changed),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// What one worker counted in one directory.
#[derive(Default)]
struct Tally {
    seen: u64,
    locked: u64,
    unlocked: u64,
    skipped: u64,
    changed: u64,
}

impl Tally {
    fn state(&mut self, immutable: bool) {
        if immutable {
            self.locked += 1;
        } else {
            self.unlocked += 1;
        }
    }
}

/// The identity of the mount a walk may not leave.
#[derive(Clone, Copy)]
struct Fence {
    dev: u64,
    mnt_id: u64,
}

impl Fence {
    /// Whether the entry is a mount point or lies on another mount.
    fn excludes(&self, entry: &Entry) -> bool {
        entry.mount_root || entry.dev != self.dev || entry.mnt_id != self.mnt_id
    }
}

/// A directory of the walk, named by its parent and its own name: the
/// full path is built only when asked for.
struct Node {
    parent: Option<Arc<Node>>,
    name: OsString,
    /// Components of the full path (`/usr/lib` is 2).
    depth: usize,
}

impl Node {
    fn top(path: &Path) -> Arc<Node> {
        Arc::new(Node {
            parent: None,
            name: path.as_os_str().to_owned(),
            depth: path.components().count().saturating_sub(1),
        })
    }

    fn child(self: &Arc<Node>, name: &CStr) -> Arc<Node> {
        Arc::new(Node {
            parent: Some(self.clone()),
            name: OsStr::from_bytes(name.to_bytes()).to_owned(),
            depth: self.depth + 1,
        })
    }

    /// The full path, built with a loop (no recursion on depth).
    fn path(&self) -> PathBuf {
        let mut names = vec![self.name.as_os_str()];
        let mut up = self.parent.as_deref();
        while let Some(node) = up {
            names.push(node.name.as_os_str());
            up = node.parent.as_deref();
        }
        let mut path = PathBuf::new();
        for name in names.into_iter().rev() {
            path.push(name);
        }
        path
    }

    fn child_path(&self, name: &CStr) -> PathBuf {
        self.path().join(OsStr::from_bytes(name.to_bytes()))
    }
}

impl Drop for Node {
    /// Drops a chain of nodes with a loop: the default drop of a long
    /// chain of `Arc`s recurses once per level.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(node) = next {
            next = match Arc::try_unwrap(node) {
                Ok(mut node) => node.parent.take(),
                Err(_) => None,
            };
        }
    }
}

impl Walk<'_> {
    /// Walks the tree whose root directory is `root_fd`, named `path`
    /// inside the system root.
    pub fn run(&self, root_fd: OwnedFd, path: &Path) -> io::Result<TreeCounts> {
        let top = attrs::stat_at(root_fd.as_fd(), c"")?;
        let fence = Fence {
            dev: top.dev,
            mnt_id: top.mnt_id,
        };
        let shared = Shared::default();
        // The tree root itself carries the flag too.
        let mut tally = Tally::default();
        self.visit(&shared, &mut tally, root_fd.as_fd(), c"", &top, || {
            path.to_owned()
        });
        shared.add(&tally);
        if shared.unsupported.load(Ordering::Relaxed) {
            return Ok(TreeCounts {
                unsupported: true,
                ..TreeCounts::default()
            });
        }
        // Below this depth no exclude nor mount point can lie: paths need
        // not be built there.
        let named_depth = self
            .excludes
            .keys()
            .chain(self.mount_parents.iter())
            .map(|p| p.components().count().saturating_sub(1))
            .max()
            .unwrap_or(0);
        let node = Node::top(path);
        rayon::scope(|scope| {
            self.walk_dir(scope, &shared, fence, named_depth, root_fd, node);
        });
        let mut mount_points = shared
            .mount_points
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        mount_points.sort();
        let mut errors = shared
            .errors
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(TreeCounts {
            locked: shared.locked.into_inner(),
            unlocked: shared.unlocked.into_inner(),
            skipped: shared.skipped.into_inner(),
            changed: shared.changed.into_inner(),
            mount_points,
            errors,
            error_count: shared.error_count.into_inner(),
            unsupported: shared.unsupported.into_inner(),
        })
    }

    /// Handles one directory: its entries here, each subdirectory as a job
    /// of its own in `scope` (never a nested call).
    fn walk_dir<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        shared: &'s Shared,
        fence: Fence,
        named_depth: usize,
        fd: OwnedFd,
        node: Arc<Node>,
    ) {
        if self.cancel.load(Ordering::Relaxed) || shared.unsupported.load(Ordering::Relaxed) {
            return;
        }
        let named = (node.depth <= named_depth).then(|| node.path());
        let skip = named.as_ref().and_then(|p| self.excludes.get(p));
        let dirfd = fd.as_fd();
        // Where no mount can hide (the mount table says so), a directory is
        // opened straight away and described through its fd, and a file's
        // flag is read (and written) through file_getattr/file_setattr by
        // name: no statx first. Elsewhere every entry is looked at first,
        // so that nothing mounted (or automounted) is ever opened.
        let no_mounts = !named
            .as_ref()
            .is_some_and(|p| self.mount_parents.contains(p));
        let fast_files = no_mounts
            && self.iface != FlagInterface::Ioctl
            && attrs::kernel_has_file_setattr(dirfd);
        let mut subdirs: Vec<CString> = Vec::new();
        // Counted here and added to the shared counters once per directory,
        // so that the workers do not contend for them on every file.
        let mut tally = Tally::default();
        let read = for_each_entry(dirfd, |name, dtype| {
            if let Some(skip) = skip
                && skip.contains(OsStr::from_bytes(name.to_bytes()))
            {
                return;
            }
            tally.seen += 1;
            // Symlinks and special files cannot carry the flag: the
            // directory entry's type is enough to skip them unopened.
            if matches!(
                dtype,
                libc::DT_LNK | libc::DT_FIFO | libc::DT_CHR | libc::DT_BLK | libc::DT_SOCK
            ) {
                tally.skipped += 1;
                return;
            }
            if fast_files && dtype == libc::DT_REG {
                self.by_attr(shared, &mut tally, dirfd, name, || node.child_path(name));
                return;
            }
            if no_mounts && dtype == libc::DT_DIR {
                subdirs.push(name.to_owned());
                return;
            }
            let entry = match attrs::stat_at(dirfd, name) {
                Ok(entry) => entry,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return,
                Err(e) => return shared.error(|| node.child_path(name), &e),
            };
            if !entry.kind.can_carry_flag() {
                tally.skipped += 1;
                return;
            }
            if fence.excludes(&entry) {
                return shared.mount_point(&node.child_path(name));
            }
            if entry.kind == Kind::Dir {
                // Flagged through its own fd once opened.
                subdirs.push(name.to_owned());
            } else {
                self.visit(shared, &mut tally, dirfd, name, &entry, || {
                    node.child_path(name)
                });
            }
        });
        shared.add(&tally);
        self.progress.fetch_add(tally.seen, Ordering::Relaxed);
        if let Err(e) = read {
            // What was read before the error has been handled.
            shared.error(|| node.path(), &e);
        }
        // The parent's fd stays open while a job of one of its
        // subdirectories waits, and is closed by the last of them.
        let parent = Arc::new(fd);
        for name in subdirs {
            let parent = parent.clone();
            let node = node.clone();
            scope.spawn(move |scope| {
                let dirfd = parent.as_fd();
                let mut tally = Tally::default();
                let child = || node.child_path(&name);
                let fd = if fast_files {
                    // No mount point here says the table; should one appear
                    // since, the open itself refuses to cross it (EXDEV). The
                    // flag is read (and written) through file_getattr and
                    // file_setattr on the new fd: no statx.
                    let resolve = libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_SYMLINKS;
                    let fd = match paths::open_dir_at(dirfd, &name, resolve) {
                        Ok(fd) => fd,
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return,
                        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                            return shared.mount_point(&child());
                        }
                        Err(e) => return shared.error(child, &e),
                    };
                    self.by_attr(shared, &mut tally, fd.as_fd(), c"", child);
                    fd
                } else {
                    let (fd, entry) = match open_subdir(dirfd, &name) {
                        Ok(opened) => opened,
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return,
                        Err(e) => return shared.error(child, &e),
                    };
                    if fence.excludes(&entry) {
                        return shared.mount_point(&child());
                    }
                    self.visit(shared, &mut tally, fd.as_fd(), c"", &entry, child);
                    fd
                };
                drop(parent);
                shared.add(&tally);
                let node = node.child(&name);
                self.walk_dir(scope, shared, fence, named_depth, fd, node);
            });
        }
    }

    /// Reads, sets or clears the flag of (dirfd, name) through
    /// file_getattr/file_setattr alone, without a statx: a regular file known
    /// from its directory entry, or (empty name) a directory just opened.
    /// `path` names the entry in messages (built only for them).
    fn by_attr(
        &self,
        shared: &Shared,
        tally: &mut Tally,
        dirfd: BorrowedFd<'_>,
        name: &CStr,
        path: impl FnOnce() -> PathBuf,
    ) {
        let done = match self.action {
            Action::Read => attrs::get_immutable(dirfd, name, self.iface).map(|on| (on, false)),
            Action::Set(on) => attrs::set_immutable(dirfd, name, on, self.iface).map(|c| (on, c)),
        };
        match done {
            Ok((state, changed)) => {
                tally.changed += u64::from(changed);
                tally.state(state);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                shared.error(path, &e);
                // The flag could not be read either: count it as not set.
                tally.state(false);
            }
        }
    }

    /// Reads or changes the flag of one file or directory.
    fn visit(
        &self,
        shared: &Shared,
        tally: &mut Tally,
        dirfd: BorrowedFd<'_>,
        name: &CStr,
        entry: &Entry,
        path: impl FnOnce() -> PathBuf,
    ) {
        let current = match entry.immutable {
            Some(flag) => flag,
            None => match attrs::get_immutable(dirfd, name, self.iface) {
                Ok(flag) => flag,
                Err(e) if attrs::is_unsupported(&e) => {
                    shared.unsupported.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => return shared.error(path, &e),
            },
        };
        match self.action {
            Action::Read => tally.state(current),
            Action::Set(on) if on == current => tally.state(current),
            Action::Set(on) => match attrs::set_immutable(dirfd, name, on, self.iface) {
                Ok(changed) => {
                    tally.changed += u64::from(changed);
                    tally.state(on);
                }
                Err(e) if name.is_empty() && attrs::is_unsupported(&e) => {
                    shared.unsupported.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    shared.error(path, &e);
                    tally.state(current);
                }
            },
        }
    }
}

/// Opens a subdirectory (never following a symlink) and describes it
/// through the new fd.
fn open_subdir(dirfd: BorrowedFd<'_>, name: &CStr) -> io::Result<(OwnedFd, Entry)> {
    let fd = paths::open_dir_at(dirfd, name, 0)?;
    let entry = attrs::stat_at(fd.as_fd(), c"")?;
    Ok((fd, entry))
}

/// Calls `each` with the name and entry type of every entry of a
/// directory but `.` and `..`, read with `getdents64` (no `fdopendir`: its
/// fcntl, fstat and rewind cost three syscalls per directory) into a buffer
/// each thread keeps, so names are borrowed from it, never copied.
fn for_each_entry(fd: BorrowedFd<'_>, mut each: impl FnMut(&CStr, u8)) -> io::Result<()> {
    const SIZE: usize = 32 * 1024;
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUF.with(|cell| {
        // `each` never reads a directory itself; should that change, a
        // nested call gets a buffer of its own instead of a panic.
        let mut own = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let buf = match borrowed.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut own,
        };
        if buf.len() < SIZE {
            buf.resize(SIZE, 0);
        }
        loop {
            // SAFETY: buf is writable for its whole length.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Ok(());
            }
            let n = n as usize;
            let mut off = 0usize;
            // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type,
            // then the name and its NUL.
            while off + 19 < n {
                let reclen = usize::from(u16::from_ne_bytes([buf[off + 16], buf[off + 17]]));
                if reclen < 20 || off + reclen > n {
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                }
                let dtype = buf[off + 18];
                let name = CStr::from_bytes_until_nul(&buf[off + 19..off + reclen])
                    .map_err(|_| io::Error::from_raw_os_error(libc::EIO))?;
                if name != c"." && name != c".." {
                    each(name, dtype);
                }
                off += reclen;
            }
        }
    })
}

/// The directories holding a mount point, named through `name` (host path
/// to walked path; `None` for mounts outside the walked trees).
pub fn mount_parents(
    table: &[crate::mounts::Mount],
    name: impl Fn(&Path) -> Option<PathBuf>,
) -> HashSet<PathBuf> {
    table
        .iter()
        .filter_map(|m| name(&m.mount_point))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect()
}

/// Groups exclude paths by their parent, the form `Walk` looks them up in.
pub fn exclude_map<'a>(
    excludes: impl IntoIterator<Item = &'a Path>,
) -> HashMap<PathBuf, HashSet<OsString>> {
    let mut map: HashMap<PathBuf, HashSet<OsString>> = HashMap::new();
    for path in excludes {
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            map.entry(parent.to_owned())
                .or_default()
                .insert(name.to_owned());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn walk_tree(dir: &Path, action: Action, excludes: &[&str]) -> TreeCounts {
        let table = crate::mounts::read().unwrap();
        let parents = mount_parents(&table, |p| Some(p.to_owned()));
        walk_with(dir, action, excludes, &parents)
    }

    fn walk_with(
        dir: &Path,
        action: Action,
        excludes: &[&str],
        parents: &HashSet<PathBuf>,
    ) -> TreeCounts {
        let excludes: Vec<PathBuf> = excludes.iter().map(PathBuf::from).collect();
        let map = exclude_map(excludes.iter().map(|p| p.as_path()));
        let progress = AtomicU64::new(0);
        let cancel = AtomicBool::new(false);
        let walk = Walk {
            action,
            iface: FlagInterface::Auto,
            excludes: &map,
            mount_parents: parents,
            progress: &progress,
            cancel: &cancel,
        };
        let fd: OwnedFd = fs::File::open(dir).unwrap().into();
        walk.run(fd, dir).unwrap()
    }

    #[test]
    fn exclude_map_groups_by_parent() {
        let map = exclude_map([
            Path::new("/usr/local"),
            Path::new("/usr/src"),
            Path::new("/opt/x/y"),
        ]);
        assert_eq!(map[Path::new("/usr")].len(), 2);
        assert!(map[Path::new("/opt/x")].contains(OsStr::new("y")));
    }

    #[test]
    fn counts_and_lock_unlock_in_a_temp_tree() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = crate::testing::FlagDir::new();
        let t = dir.path();
        fs::create_dir_all(t.join("a/b/c")).unwrap();
        fs::create_dir_all(t.join("skip/me")).unwrap();
        fs::write(t.join("a/f1"), b"1").unwrap();
        fs::write(t.join("a/b/c/f2"), b"2").unwrap();
        fs::write(t.join("skip/me/f3"), b"3").unwrap();
        std::os::unix::fs::symlink("a", t.join("link")).unwrap();
        nix::unistd::mkfifo(&t.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();

        let skip = t.join("skip");
        let skip = skip.to_str().unwrap();
        let before = walk_tree(t, Action::Read, &[skip]);
        // t, a, a/b, a/b/c, a/f1, a/b/c/f2
        assert_eq!((before.locked, before.unlocked, before.skipped), (0, 6, 2));

        let lock = walk_tree(t, Action::Set(true), &[skip]);
        assert_eq!((lock.locked, lock.unlocked, lock.changed), (6, 0, 6));
        assert!(
            fs::write(t.join("a/new"), b"").is_err(),
            "locked dir accepted a new file"
        );
        assert!(
            fs::write(t.join("skip/me/new"), b"").is_ok(),
            "excluded tree was locked"
        );

        let again = walk_tree(t, Action::Set(true), &[skip]);
        assert_eq!(
            (again.locked, again.changed),
            (6, 0),
            "re-lock must write nothing"
        );

        let unlock = walk_tree(t, Action::Set(false), &[skip]);
        assert_eq!((unlock.locked, unlock.unlocked, unlock.changed), (0, 6, 6));
        assert!(unlock.errors.is_empty());
    }

    // Checks: a mount the walk was not told about (one made after the mount
    // table was read) is still not crossed: where the table promised no
    // mount, opening the directory refuses to enter one (RESOLVE_NO_XDEV),
    // and it is reported as a mount point. Mounts a tmpfs, so it only runs
    // as root in a private mount namespace (build-aux/test.sh gives one).
    #[test]
    fn a_mount_missing_from_the_table_is_not_crossed() {
        let own = fs::read_link("/proc/self/ns/mnt").ok();
        if !nix::unistd::geteuid().is_root()
            || own.is_none()
            || own == fs::read_link("/proc/1/ns/mnt").ok()
        {
            eprintln!("skipped: needs root in a private mount namespace");
            return;
        }
        let dir = crate::testing::FlagDir::new();
        let t = dir.path();
        fs::create_dir_all(t.join("a/m")).unwrap();
        fs::write(t.join("a/f"), b"1").unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &t.join("a/m"),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _mounted = Unmount(t.join("a/m"));
        fs::write(t.join("a/m/inside"), b"2").unwrap();

        // An empty table: the walk believes there is no mount anywhere.
        let lock = walk_with(t, Action::Set(true), &[], &HashSet::new());
        let unlock = walk_with(t, Action::Set(false), &[], &HashSet::new());
        let m = t.join("a/m").to_string_lossy().into_owned();
        assert_eq!(lock.mount_points, vec![m.clone()], "{lock:?}");
        assert_eq!(unlock.mount_points, vec![m], "{unlock:?}");
        // t, a, a/f: the mount and what is in it are left alone.
        assert_eq!((lock.locked, lock.changed), (3, 3), "{lock:?}");
        assert_eq!((unlock.unlocked, unlock.changed), (3, 3), "{unlock:?}");
        assert!(lock.errors.is_empty(), "{lock:?}");
        assert!(
            fs::write(t.join("a/m/inside"), b"3").is_ok(),
            "the walk entered the mount"
        );
    }
}
