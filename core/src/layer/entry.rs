// SPDX-License-Identifier: GPL-3.0-or-later
//! One filesystem entry described completely enough to tell whether two
//! trees agree: type, permissions, owner, size, content hash, link target,
//! device number and extended attributes. The diff classifies changes with
//! it and the commit proves its result with it.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The xattr namespace overlayfs keeps its own bookkeeping in.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl EntryType {
    pub fn of(meta: &fs::Metadata) -> EntryType {
        let ft = meta.file_type();
        if ft.is_dir() {
            EntryType::Dir
        } else if ft.is_symlink() {
            EntryType::Symlink
        } else if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else if ft.is_fifo() {
            EntryType::Fifo
        } else if ft.is_socket() {
            EntryType::Socket
        } else {
            EntryType::File
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::Symlink => "symlink",
            EntryType::Char => "char",
            EntryType::Block => "block",
            EntryType::Fifo => "fifo",
            EntryType::Socket => "socket",
        }
    }
}

/// `lstat`, with a missing entry as `None` — also when a parent on the way
/// is not a directory (a path below what is a file in the other tree).
pub fn lstat(path: &Path) -> io::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The names in a directory, sorted (parents are then always met before
/// their children, and runs are reproducible).
pub fn sorted_names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    Ok(names)
}

/// Visits every entry below `top` in the order of a recursive walk
/// (parents first, names sorted), with an explicit stack: no recursion on
/// the depth of the tree. `each(rel, state)` gets the path relative to
/// `top` and its parent directory's state, and returns the state to
/// descend into `rel` with, or `None` not to.
pub fn preorder<S>(
    top: &Path,
    state: S,
    mut each: impl FnMut(&Path, &S) -> io::Result<Option<S>>,
) -> io::Result<()> {
    struct Frame<S> {
        rel: PathBuf,
        state: S,
        names: std::vec::IntoIter<std::ffi::OsString>,
    }
    let mut stack = vec![Frame {
        rel: PathBuf::new(),
        state,
        names: sorted_names(top)?.into_iter(),
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.next() else {
            stack.pop();
            continue;
        };
        let rel = frame.rel.join(name);
        if let Some(state) = each(&rel, &frame.state)? {
            let names = sorted_names(&top.join(&rel))?.into_iter();
            stack.push(Frame { rel, state, names });
        }
    }
    Ok(())
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// All extended attributes of `path` (not following a symlink).
/// The NUL-separated list a `*listxattr` call fills in (`list` is the
/// call on a buffer and its length), grown until it fits; empty where the
/// filesystem has no xattrs.
fn xattr_list(list: impl Fn(*mut libc::c_char, usize) -> isize) -> io::Result<Vec<u8>> {
    let mut names = vec![0u8; 1024];
    loop {
        let n = list(names.as_mut_ptr().cast(), names.len());
        if n >= 0 {
            names.truncate(n as usize);
            return Ok(names);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    }
}

pub fn xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let c = cpath(path)?;
    // SAFETY: the buffer is writable for the given length.
    let names = xattr_list(|buf, len| unsafe { libc::llistxattr(c.as_ptr(), buf, len) })?;
    let mut out = BTreeMap::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        if let Some(value) = get_xattr_c(&c, &cname)? {
            out.insert(String::from_utf8_lossy(name).into_owned(), value);
        }
    }
    Ok(out)
}

fn get_xattr_c(path: &CString, name: &CString) -> io::Result<Option<Vec<u8>>> {
    let mut value = vec![0u8; 256];
    loop {
        // SAFETY: value is a writable buffer of the given length.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if n >= 0 {
            value.truncate(n as usize);
            return Ok(Some(value));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => value.resize(value.len() * 4, 0),
            Some(libc::ENODATA) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// One extended attribute, `None` when absent.
pub fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    get_xattr_c(&cpath(path)?, &cname)
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let c = cpath(path)?;
    let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all pointers are valid for the given lengths.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn remove_xattr(path: &Path, name: &str) -> io::Result<()> {
    let c = cpath(path)?;
    let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: both pointers are valid C strings.
    let rc = unsafe { libc::lremovexattr(c.as_ptr(), cname.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The extended attributes of an open file or directory that belong to the
/// entry itself (overlayfs' own are not): [`own_xattrs`] through its fd.
pub fn own_xattrs_fd(fd: BorrowedFd<'_>) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let raw = fd.as_raw_fd();
    let mut out = BTreeMap::new();
    for cname in xattr_names_fd(fd)? {
        let text = String::from_utf8_lossy(cname.to_bytes()).into_owned();
        if text.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        let mut value = vec![0u8; 256];
        loop {
            // SAFETY: value is a writable buffer of the given length.
            let n = unsafe {
                libc::fgetxattr(raw, cname.as_ptr(), value.as_mut_ptr().cast(), value.len())
            };
            if n >= 0 {
                value.truncate(n as usize);
                out.insert(text, value);
                break;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ERANGE) => value.resize(value.len() * 4, 0),
                Some(libc::ENODATA) => break,
                _ => return Err(err),
            }
        }
    }
    Ok(out)
}

/// The names of the extended attributes of an open file or directory.
fn xattr_names_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    // SAFETY: the buffer is writable for the given length.
    let names = xattr_list(|buf, len| unsafe { libc::flistxattr(fd.as_raw_fd(), buf, len) })?;
    names
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| CString::new(n).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .collect()
}

/// Removes overlayfs' own xattrs (`trusted.overlay.*`: its bookkeeping of
/// a copied-up file, which means nothing outside the layer) from an open
/// file.
pub fn remove_overlay_xattrs_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
    for cname in xattr_names_fd(fd)? {
        if !cname
            .to_bytes()
            .starts_with(OVERLAY_XATTR_PREFIX.as_bytes())
        {
            continue;
        }
        // SAFETY: cname is a valid C string.
        if unsafe { libc::fremovexattr(fd.as_raw_fd(), cname.as_ptr()) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ENODATA) {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Sets one extended attribute of an open file or directory.
pub fn set_xattr_fd(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all pointers are valid for the given lengths.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes one extended attribute of an open file or directory.
pub fn remove_xattr_fd(fd: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: cname is a valid C string.
    if unsafe { libc::fremovexattr(fd.as_raw_fd(), cname.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The xattrs that belong to the entry itself (overlayfs' own are not).
pub fn own_xattrs(path: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let mut all = xattrs(path)?;
    all.retain(|k, _| !k.starts_with(OVERLAY_XATTR_PREFIX));
    Ok(all)
}

pub fn hash_file(path: &Path) -> io::Result<String> {
    hash_open(&mut fs::File::open(path)?)
}

/// The SHA-256 of what is left to read of `file`, as hex; read through one
/// buffer per thread (a commit hashes thousands of files on each of
/// rayon's threads, and a fresh 128 KiB buffer each is zeroed each time).
fn hash_open(file: &mut fs::File) -> io::Result<String> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.resize(128 * 1024, 0);
        let mut hasher = Sha256::new();
        loop {
            let n = match file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex(&hasher.finalize()))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything that makes an entry what it is. Times are left out: a commit
/// keeps them, but a copy-up or an undo may legitimately touch ctime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub hash: Option<String>,
    /// A symlink's target, as almost-protocol's string (bytes, exactly).
    pub link: Option<String>,
    pub rdev: u64,
    pub xattrs: BTreeMap<String, String>,
}

/// The directory of the last entry looked up below a tree, kept open:
/// paths come in walk order, so neighbours share their directory, and an
/// entry is looked up by its one name in that directory's fd (`fstatat`,
/// `openat`) rather than by its whole path, every component of which a
/// lookup by path walks again. The directory is opened by its path as a
/// lookup by path would reach it; when it is missing (or not a directory)
/// every entry in it is missing, as by path.
#[derive(Default)]
pub struct DirCache(Option<(PathBuf, Option<fs::File>)>);

impl DirCache {
    /// The open directory holding `rel` below `base` (`None`: missing) and
    /// the name of `rel` in it; `Err` of `None` when `rel` has no name (the
    /// top: looked up by path).
    fn dir(
        &mut self,
        base: &Path,
        rel: &Path,
    ) -> io::Result<Option<(Option<BorrowedFd<'_>>, CString)>> {
        use std::os::fd::AsFd;
        use std::os::unix::fs::OpenOptionsExt;
        let Some(name) = rel.file_name() else {
            return Ok(None);
        };
        let name = CString::new(name.as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !matches!(&self.0, Some((p, _)) if p == parent) {
            let dir = match fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(base.join(parent))
            {
                Ok(dir) => Some(dir),
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENOTDIR) =>
                {
                    None
                }
                Err(e) => return Err(e),
            };
            self.0 = Some((parent.to_owned(), dir));
        }
        let dir = self
            .0
            .as_ref()
            .and_then(|(_, d)| d.as_ref())
            .map(|d| d.as_fd());
        Ok(Some((dir, name)))
    }

    /// [`Description::of`] `base/rel`.
    pub fn describe(&mut self, base: &Path, rel: &Path) -> io::Result<Option<Description>> {
        match self.dir(base, rel)? {
            None => Description::of(&base.join(rel)),
            Some((None, _)) => Ok(None),
            Some((Some(dir), name)) => Description::at(dir, &name, &base.join(rel)),
        }
    }

    /// `lstat` of `base/rel`, `None` when missing (as [`lstat`]).
    pub fn lstat(&mut self, base: &Path, rel: &Path) -> io::Result<Option<libc::stat>> {
        match self.dir(base, rel)? {
            None => {
                let c = cpath(&base.join(rel))?;
                // SAFETY: st is written by lstat before it is read.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: c is a valid C string, st a valid out pointer.
                if unsafe { libc::lstat(c.as_ptr(), &mut st) } == 0 {
                    Ok(Some(st))
                } else {
                    missing_as_none(io::Error::last_os_error())
                }
            }
            Some((None, _)) => Ok(None),
            Some((Some(dir), name)) => lstat_at(dir, &name),
        }
    }
}

fn missing_as_none<T>(err: io::Error) -> io::Result<Option<T>> {
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => Ok(None),
        _ => Err(err),
    }
}

/// `lstat` of `name` in the directory `dir`, `None` when missing (or
/// below something that is not a directory).
pub(crate) fn lstat_at(
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
) -> io::Result<Option<libc::stat>> {
    // SAFETY: st is written by fstatat before it is read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is a valid C string, st a valid out pointer.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(Some(st))
    } else {
        missing_as_none(io::Error::last_os_error())
    }
}

impl Description {
    /// [`Description::of`] the entry `name` in the directory open as `dir`
    /// (`path` names the same entry: what is not a regular file, rare in a
    /// commit, is described by it, and messages name it). A regular file is
    /// opened by its name in `dir`, not following a symlink, and read
    /// through that one fd.
    pub fn at(dir: BorrowedFd<'_>, name: &CString, path: &Path) -> io::Result<Option<Description>> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let Some(st) = lstat_at(dir, name)? else {
            return Ok(None);
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Description::of(path);
        }
        // SAFETY: name is a valid C string; the fd returned is owned here.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh fd.
        let file = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        Description::of_open_file(file, path).map(Some)
    }

    /// Describes a regular file through its open fd: metadata, content and
    /// xattrs all of the one inode (`path` names it in the message when it
    /// is no longer a regular file).
    fn of_open_file(mut file: fs::File, path: &Path) -> io::Result<Description> {
        use std::os::fd::AsFd;
        let meta = file.metadata()?;
        if EntryType::of(&meta) != EntryType::File {
            return Err(io::Error::other(format!(
                "{} changed while it was read",
                path.display()
            )));
        }
        let hash = hash_open(&mut file)?;
        let xattrs = own_xattrs_fd(file.as_fd())?;
        Ok(Description::with(&meta, Some(hash), None, xattrs))
    }

    /// Describes `path`; `None` when it does not exist. A regular file is
    /// read through one open fd (its metadata, data and xattrs), not
    /// looked up by path again for each.
    pub fn of(path: &Path) -> io::Result<Option<Description>> {
        use std::os::unix::fs::OpenOptionsExt;

        let Some(meta) = lstat(path)? else {
            return Ok(None);
        };
        let kind = EntryType::of(&meta);
        if kind == EntryType::File {
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(path)?;
            return Description::of_open_file(file, path).map(Some);
        }
        let link = (kind == EntryType::Symlink)
            .then(|| fs::read_link(path).map(|l| almost_protocol::path::encode(&l)))
            .transpose()?;
        Ok(Some(Description::with(
            &meta,
            None,
            link,
            own_xattrs(path)?,
        )))
    }

    fn with(
        meta: &fs::Metadata,
        hash: Option<String>,
        link: Option<String>,
        xattrs: BTreeMap<String, Vec<u8>>,
    ) -> Description {
        let kind = EntryType::of(meta);
        Description {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: if kind == EntryType::Dir {
                0
            } else {
                meta.size()
            },
            hash,
            link,
            rdev: if matches!(kind, EntryType::Char | EntryType::Block) {
                meta.rdev()
            } else {
                0
            },
            xattrs: xattrs.into_iter().map(|(k, v)| (k, hex(&v))).collect(),
        }
    }

    /// Same content (data, link target or device), whatever the metadata.
    pub fn same_content(&self, other: &Description) -> bool {
        self.kind == other.kind
            && self.size == other.size
            && self.hash == other.hash
            && self.link == other.link
            && self.rdev == other.rdev
    }

    pub fn same_metadata(&self, other: &Description) -> bool {
        self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.xattrs == other.xattrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks that DirCache, which looks entries up by name in their kept
    // open directory, describes and lstats every path as a lookup by path
    // does, in walk order across directories: regular files (the fd path),
    // a symlink and a directory (by path), a missing name, a name below a
    // missing directory and one below a file (ENOTDIR: missing, not an
    // error), and the top (no name).
    #[test]
    fn dir_cache_describes_as_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::create_dir_all(base.join("a/b")).unwrap();
        fs::write(base.join("a/f"), b"one").unwrap();
        fs::write(base.join("a/b/g"), b"two").unwrap();
        fs::write(base.join("h"), b"three").unwrap();
        std::os::unix::fs::symlink("f", base.join("a/l")).unwrap();
        let mut cache = DirCache::default();
        for rel in [
            "", "a", "a/b", "a/b/g", "a/f", "a/l", "a/none", "gone/x", "h", "h/x",
        ] {
            let rel = Path::new(rel);
            let by_path = Description::of(&base.join(rel)).unwrap();
            assert_eq!(
                cache.describe(base, rel).unwrap(),
                by_path,
                "{}",
                rel.display()
            );
            let st = cache.lstat(base, rel).unwrap();
            assert_eq!(
                st.map(|st| (st.st_ino, st.st_mode)),
                lstat(&base.join(rel)).unwrap().map(|m| (m.ino(), m.mode())),
                "{}",
                rel.display()
            );
        }
        assert!(
            cache
                .describe(base, Path::new("a/f"))
                .unwrap()
                .unwrap()
                .hash
                .is_some()
        );
    }

    #[test]
    fn describes_and_compares() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"hello").unwrap();
        fs::write(&b, b"hello").unwrap();
        let da = Description::of(&a).unwrap().unwrap();
        let db = Description::of(&b).unwrap().unwrap();
        assert!(da.same_content(&db) && da.same_metadata(&db));
        assert_eq!(
            da.hash.as_deref(),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        set_xattr(&b, "user.note", b"x").unwrap_or_else(|e| eprintln!("no user xattrs here: {e}"));
        fs::write(&b, b"hellO").unwrap();
        let db = Description::of(&b).unwrap().unwrap();
        assert!(!da.same_content(&db));
        std::os::unix::fs::symlink("a", dir.path().join("l")).unwrap();
        let dl = Description::of(&dir.path().join("l")).unwrap().unwrap();
        assert_eq!(
            (dl.kind, dl.link.as_deref()),
            (EntryType::Symlink, Some("a"))
        );
        assert!(
            Description::of(&dir.path().join("missing"))
                .unwrap()
                .is_none()
        );
    }
}
