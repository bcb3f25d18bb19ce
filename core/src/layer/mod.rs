// SPDX-License-Identifier: GPL-3.0-or-later
//! Layers: an overlayfs mount over a managed directory, so that changes land
//! in the layer's upper directory and not in the system, until they are
//! reviewed and committed, or discarded.
//!
//! overlayfs honours the immutable flag of lower entries, so a layer over a
//! locked tree could change nothing. Almost therefore clears the flags of
//! the tree the layer covers before mounting it, and locks that tree again
//! when the layer goes away (commit or discard) if the rest of the system is
//! locked. While the layer is mounted, the cleared tree is shadowed by the
//! mount: the only way to it is the layer, whose changes stay in the upper
//! directory. See docs/ARCHITECTURE.md for the costs measured.
//!
//! Everything is derived from the store (`/var/lib/almost/layers/<id>/`,
//! holding `layer.json`, `upper/`, `work/`) and from the mount table, so
//! the list never goes stale: after a reboot a layer shows as not mounted.

pub mod busy;
pub mod commit;
pub mod diff;
pub mod entry;

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::mounts::{self, Mount};
use crate::paths;
use crate::protocol::Mode;
use crate::state;
use crate::system::{Progress, System};

pub const STORE: &str = "/var/lib/almost/layers";
const META_FILE: &str = "layer.json";
/// Prefix of a layer being made (hidden from the list until complete).
const NEW_PREFIX: &str = ".new-";
/// Prefix of what is being deleted from the store.
const TRASH_PREFIX: &str = ".trash-";

/// What `layer.json` records of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    pub id: String,
    /// The first directory the layer covers, inside the root.
    pub path: PathBuf,
    /// Every directory the layer covers, `path` first ([`LayerMeta::parts`]).
    /// Empty in a `layer.json` written before a layer could cover several
    /// (then the layer covers `path` alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathBuf>,
    /// Unix time of creation.
    pub created: u64,
    /// Discarded at boot instead of re-mounted.
    pub temporary: bool,
    /// Whether the covered tree was locked when the layer was made: the
    /// fallback when the rest of the system says nothing.
    pub was_locked: bool,
    /// Made by `layer new --system` (the managed trees, `/etc` and the
    /// package manager's state).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
}

impl LayerMeta {
    /// Every directory the layer covers (its parts), `path` first: each has
    /// its own upper and work directories and its own overlay mount, and
    /// all are committed, discarded and undone as one.
    pub fn parts(&self) -> &[PathBuf] {
        if self.paths.is_empty() {
            std::slice::from_ref(&self.path)
        } else {
            &self.paths
        }
    }
}

/// A layer as `layer list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    #[serde(flatten)]
    pub meta: LayerMeta,
    pub mounted: bool,
    /// Number of changes (`None` when the diff could not be made).
    pub changes: Option<u64>,
    /// Bytes used by the upper directory.
    pub size: u64,
    /// What the next boot does with the layer before anything uses it
    /// (`layer commit --at-boot`, `layer discard --at-boot`).
    #[serde(default)]
    pub pending: Option<AtBoot>,
}

/// An act on a layer left to the next boot: a layer over the directories
/// the running system executes from (`/usr`) is in use by every process
/// started since it was mounted, so it cannot be unmounted until they are
/// gone; `almost boot` does the act before the layer is mounted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AtBoot {
    Commit,
    Discard,
}

impl AtBoot {
    pub fn as_str(self) -> &'static str {
        match self {
            AtBoot::Commit => "commit",
            AtBoot::Discard => "discard",
        }
    }
}

/// The file in a layer's directory that records an act left to the boot.
const AT_BOOT_FILE: &str = "at-boot";

/// This process's own mount namespace, where a layer's mount can be taken
/// away to look at the tree beneath without disturbing anyone. Its mounts
/// are slaves of the system's, not private copies: what is unmounted
/// outside is unmounted here too (a private copy would keep an unmounted
/// USB stick's filesystem alive while this process runs), and nothing
/// unmounted here leaves the namespace. Must be entered before any thread
/// is started.
pub struct PrivateMounts(());

impl PrivateMounts {
    pub fn enter() -> Result<PrivateMounts> {
        use nix::mount::{MsFlags, mount};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::io("entering a private mount namespace", e.into()))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| Error::io("making the mounts slaves", e.into()))?;
        Ok(PrivateMounts(()))
    }
}

/// Escapes a path for overlayfs' option parser (`,` `:` `\`).
fn escape_option(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn no_such_layer(id: &str) -> Error {
    Error::InvalidPath {
        path: id.to_owned(),
        reason: "no such layer (see almost layer list)".to_owned(),
    }
}

/// Makes `dir` (and its missing parents, 0755) a directory only root can
/// enter: 0700, also when it already existed with a wider mode. For the
/// undo data and a commit's backup, which hold hard links to replaced
/// files (setuid binaries among them) that must not stay reachable.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    dir_with_mode(dir, 0o700)
}

/// Makes `dir` (and its missing parents) a directory with exactly `mode`,
/// narrowing the mode of one that already existed (made by an older almost
/// under a caller's umask).
pub(crate) fn dir_with_mode(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)?;
    }
    let fixed = || -> io::Result<()> {
        // Through an fd opened without following a link: a symlink planted
        // there is an error, not something to chmod.
        let fd = nix::fcntl::open(
            dir,
            nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        fs::File::from(fd).set_permissions(fs::Permissions::from_mode(mode))
    };
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fixed(),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => fixed(),
        Err(e) => Err(e),
    }
}

/// Deletes a tree (its flags already cleared), never following a
/// symlink. Not `std::fs::remove_dir_all`, which recurses once per level
/// and holds a descriptor per level: a tree of 100,000 levels in a layer
/// overflowed the stack. This goes down one directory fd at a time and
/// back up through `..`, checked against the device and inode it left,
/// keeping only the names still to remove at each level.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            remove_contents(path)?;
            fs::remove_dir(path)
        }
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes everything below the directory `path` (see [`remove_tree`]).
fn remove_contents(path: &Path) -> io::Result<()> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty())?;
    remove_contents_fd(fd, path)
}

/// Removes the entry `name` of the directory `parent` (a whole tree if it
/// is a directory; nothing if it is absent) without following a symlink:
/// [`remove_tree`] from a directory fd. `what` names it in errors.
pub(crate) fn remove_at(
    parent: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::CStr,
    what: &Path,
) -> io::Result<()> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::unistd::UnlinkatFlags;
    let st = match nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(parent, name, flags, nix::sys::stat::Mode::empty())?;
        remove_contents_fd(fd, what)?;
        nix::unistd::unlinkat(parent, name, UnlinkatFlags::RemoveDir)?;
    } else {
        nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(())
}

/// Removes everything below the open directory `fd` (see [`remove_tree`]);
/// `path` names it in errors.
fn remove_contents_fd(fd: std::os::fd::OwnedFd, path: &Path) -> io::Result<()> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    use std::ffi::CString;
    use std::os::fd::{AsFd, OwnedFd};
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let ident = |fd: &OwnedFd| -> io::Result<(u64, u64)> {
        let st = nix::sys::stat::fstat(fd)?;
        Ok((st.st_dev, st.st_ino))
    };
    // Removes what is not a directory; returns the subdirectories.
    let clear = |fd: &OwnedFd| -> io::Result<Vec<CString>> {
        let mut dirs = Vec::new();
        let mut others = Vec::new();
        let mut dir = nix::dir::Dir::openat(fd, c".", flags, Mode::empty())?;
        for entry in dir.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(t) => t == nix::dir::Type::Directory,
                None => nix::sys::stat::fstatat(fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
            };
            if is_dir {
                dirs.push(name.to_owned());
            } else {
                others.push(name.to_owned());
            }
        }
        for name in others {
            nix::unistd::unlinkat(
                fd.as_fd(),
                name.as_c_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )?;
        }
        Ok(dirs)
    };
    struct Level {
        id: (u64, u64),
        name: CString,
        pending: Vec<CString>,
    }
    let mut fd: OwnedFd = fd;
    let mut stack = vec![Level {
        id: ident(&fd)?,
        name: CString::default(),
        pending: clear(&fd)?,
    }];
    while let Some(top) = stack.last_mut() {
        if let Some(name) = top.pending.pop() {
            let child = nix::fcntl::openat(&fd, name.as_c_str(), flags, Mode::empty())?;
            let level = Level {
                id: ident(&child)?,
                pending: clear(&child)?,
                name,
            };
            fd = child;
            stack.push(level);
            continue;
        }
        let Some(done) = stack.pop() else { break };
        let Some(parent_level) = stack.last() else {
            break;
        };
        let parent = nix::fcntl::openat(&fd, c"..", flags, Mode::empty())?;
        if ident(&parent)? != parent_level.id {
            return Err(io::Error::other(format!(
                "{}: the tree moved while it was being removed",
                path.display()
            )));
        }
        nix::unistd::unlinkat(
            parent.as_fd(),
            done.name.as_c_str(),
            nix::unistd::UnlinkatFlags::RemoveDir,
        )?;
        fd = parent;
    }
    Ok(())
}

/// Gives a layer's upper directory the mode and owner of the directory it
/// covers: the top of the merged view takes them from the upper directory.
fn match_top(upper: &Path, lower: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::lchown(upper, Some(lower.uid()), Some(lower.gid()))?;
    fs::set_permissions(upper, fs::Permissions::from_mode(lower.mode() & 0o7777))
}

/// Whether a store entry is what a deletion or a `layer new` cut short
/// left behind. Only looked at under the state lock, which every act on
/// the store holds: nothing else can be making it.
pub(crate) fn is_trash(name: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let name = name.as_bytes();
    name.starts_with(TRASH_PREFIX.as_bytes()) || name.starts_with(NEW_PREFIX.as_bytes())
}

/// Sum of the sizes of what lies under `dir` (not following symlinks). An
/// explicit stack: no recursion on depth.
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        for e in read.filter_map(Result::ok) {
            if let Ok(m) = e.metadata() {
                total += m.blocks() * 512;
                if m.is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    total
}

/// Parses `bytes`, read from `file`, the `layer.json` of the store
/// directory `id`, and checks it as input, not as a record to trust (see
/// [`check_meta`]).
pub fn parse_meta(file: &Path, id: &str, config: &Config, bytes: &[u8]) -> Result<LayerMeta> {
    let meta: LayerMeta = serde_json::from_slice(bytes).map_err(|e| Error::InvalidPath {
        path: file.display().to_string(),
        reason: format!("not a layer's metadata: {e}"),
    })?;
    check_meta(file, &meta, id, config)?;
    Ok(meta)
}

/// Checks a layer's metadata read from `file`: its id must be `id` (the
/// name of its directory), and its path a normalised path inside a managed
/// tree of `config` (not excluded). A layer whose file says `/etc` would
/// otherwise have its "covered tree" locked on discard.
pub(crate) fn check_meta(file: &Path, meta: &LayerMeta, id: &str, config: &Config) -> Result<()> {
    let bad = |reason: String| Error::InvalidPath {
        path: file.display().to_string(),
        reason,
    };
    if meta.id != id {
        return Err(bad(format!(
            "it names layer {:?}, not {id:?} (its directory)",
            meta.id
        )));
    }
    let raw = meta.path.to_string_lossy();
    let path = paths::check_syntax(&raw).map_err(|e| bad(e.to_string()))?;
    if path != meta.path
        || !config.paths.iter().any(|m| path.starts_with(m))
        || config.exclude.iter().any(|x| path.starts_with(x))
    {
        return Err(bad(format!(
            "its path {} is not inside a managed path",
            meta.path.display()
        )));
    }
    Ok(())
}

pub struct Layers<'a> {
    pub sys: &'a System,
}

impl<'a> Layers<'a> {
    pub fn new(sys: &'a System) -> Self {
        Layers { sys }
    }

    pub fn store(&self) -> PathBuf {
        self.sys.root.host(Path::new(STORE))
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.store().join(id)
    }

    pub fn upper(&self, id: &str) -> PathBuf {
        self.dir(id).join("upper")
    }

    fn work(&self, id: &str) -> PathBuf {
        self.dir(id).join("work")
    }

    /// Every layer in the store, oldest first. Unreadable entries are skipped
    /// with a log line: one broken layer must not hide the others.
    pub fn all(&self) -> Result<Vec<LayerMeta>> {
        let store = self.store();
        let read = match fs::read_dir(&store) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", store.display()), e)),
        };
        let mut layers = Vec::new();
        for entry in read.filter_map(std::result::Result::ok) {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let name = entry.file_name();
            match self.read_meta(&name.to_string_lossy()) {
                Ok(meta) => layers.push(meta),
                Err(e) => tracing::warn!("skipping {}: {e}", entry.path().display()),
            }
        }
        layers.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(layers)
    }

    pub fn get(&self, id: &str) -> Result<LayerMeta> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(no_such_layer(id));
        }
        if !self.dir(id).join(META_FILE).exists() {
            return Err(no_such_layer(id));
        }
        self.read_meta(id)
    }

    /// Reads a layer's `layer.json` (checked by [`parse_meta`]).
    fn read_meta(&self, id: &str) -> Result<LayerMeta> {
        let file = self.dir(id).join(META_FILE);
        let bytes = fs::read(&file).map_err(|e| Error::InvalidPath {
            path: file.display().to_string(),
            reason: format!("cannot read it: {e}"),
        })?;
        parse_meta(&file, id, &self.sys.config, &bytes)
    }

    /// The layer covering exactly `path`, for the original almost's
    /// `overlay … PATH` spelling.
    pub fn by_path(&self, path: &Path) -> Result<LayerMeta> {
        self.all()?
            .into_iter()
            .find(|l| l.path == path)
            .ok_or_else(|| Error::InvalidPath {
                path: path.to_string_lossy().into_owned(),
                reason: "no layer covers this path".to_owned(),
            })
    }

    /// The overlay mount of this layer, if it is mounted.
    pub fn mount_of<'m>(&self, meta: &LayerMeta, table: &'m [Mount]) -> Option<&'m Mount> {
        let target = self.sys.root.host(&meta.path);
        let upper = format!("upperdir={}", escape_option(&self.upper(&meta.id)));
        table.iter().rev().find(|m| {
            m.fstype == "overlay"
                && m.mount_point == target
                && m.super_options.split(',').any(|o| o == upper)
        })
    }

    pub fn is_mounted(&self, meta: &LayerMeta) -> bool {
        let table = mounts::read().unwrap_or_default();
        self.mount_of(meta, &table).is_some()
    }

    pub fn info(&self, meta: LayerMeta, changes: Option<u64>) -> LayerInfo {
        LayerInfo {
            mounted: self.is_mounted(&meta),
            size: disk_usage(&self.upper(&meta.id)),
            changes,
            pending: self.at_boot(&meta.id),
            meta,
        }
    }

    /// The act the next boot does with the layer, if one was asked for. An
    /// unreadable or unknown record counts as none: the layer is then just
    /// mounted again, which loses nothing.
    pub fn at_boot(&self, id: &str) -> Option<AtBoot> {
        let text = fs::read_to_string(self.dir(id).join(AT_BOOT_FILE)).ok()?;
        match text.trim() {
            "commit" => Some(AtBoot::Commit),
            "discard" => Some(AtBoot::Discard),
            _ => None,
        }
    }

    /// Records (or, with `None`, forgets) the act the next boot does with
    /// the layer. Written durably: the boot reads it after a power cut.
    pub fn set_at_boot(&self, id: &str, act: Option<AtBoot>) -> Result<()> {
        let file = self.dir(id).join(AT_BOOT_FILE);
        let done = match act {
            Some(act) => write_atomic(&file, format!("{}\n", act.as_str()).as_bytes()),
            None => match fs::remove_file(&file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        };
        done.map_err(|e| {
            Error::io(
                format!("recording the act at boot in {}", file.display()),
                e,
            )
        })
    }

    /// Checks that a new layer may cover `path`.
    fn check_new_path(&self, raw: &str) -> Result<PathBuf> {
        let path = paths::check_syntax(raw)?;
        let bad = |reason: String| Error::InvalidPath {
            path: raw.to_owned(),
            reason,
        };
        if !self.sys.config.paths.iter().any(|m| path.starts_with(m)) {
            return Err(bad(format!(
                "not inside a managed path ({})",
                self.sys
                    .config
                    .paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.sys
            .root
            .open_dir(&path)
            .map_err(|e| bad(format!("not a directory reachable without symlinks: {e}")))?;
        for other in self.all()? {
            if other.path.starts_with(&path) || path.starts_with(&other.path) {
                return Err(bad(format!(
                    "overlaps layer {} over {}",
                    other.id,
                    other.path.display()
                )));
            }
        }
        self.refuse_user_writable(&path, &self.sys.root.host(&path), true)?;
        let host = self.sys.root.host(&path);
        if self.store().starts_with(&host) {
            return Err(bad("the layer store would lie inside the layer".to_owned()));
        }
        let table = mounts::read().map_err(|e| Error::io("reading the mount table", e))?;
        let inside: Vec<String> = table
            .iter()
            .filter(|m| m.mount_point.starts_with(&host) && m.mount_point != host)
            .map(|m| {
                self.sys
                    .root
                    .inside(&m.mount_point)
                    .unwrap_or_else(|| m.mount_point.clone())
                    .display()
                    .to_string()
            })
            .collect();
        if !inside.is_empty() {
            return Err(bad(format!(
                "mount points inside it would be hidden by the layer: {}",
                inside.join(", ")
            )));
        }
        Ok(path)
    }

    /// Refuses a layer over a tree in which a user can change a directory
    /// ([`crate::fs::user_writable`]): `tree` is what is
    /// walked (the tree itself, or a layer's merged view of it), `path` the
    /// layer's path inside the root, named in the error with the first few
    /// such directories; with `ancestors`, the directories between the root
    /// and `path` too. A commit and an undo write beneath every directory
    /// of the layer as root: one that a user can swap for a symlink while
    /// they run would steer root's writes out of the tree (see
    /// docs/SECURITY.md).
    pub(crate) fn refuse_user_writable(
        &self,
        path: &Path,
        tree: &Path,
        ancestors: bool,
    ) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        const SHOWN: usize = 5;
        let mut found: Vec<PathBuf> = Vec::new();
        if ancestors {
            let mut above = PathBuf::from("/");
            for part in path.iter().skip(1) {
                if above != Path::new("/") {
                    let m = fs::symlink_metadata(self.sys.root.host(&above))
                        .map_err(|e| Error::io(format!("reading {}", above.display()), e))?;
                    // SAFETY: stat is plain data; zeroed is a valid value.
                    let mut st: libc::stat = unsafe { std::mem::zeroed() };
                    (st.st_mode, st.st_uid, st.st_gid) = (m.mode(), m.uid(), m.gid());
                    if crate::fs::user_writable(&st) {
                        found.push(above.clone());
                    }
                }
                above.push(part);
            }
        }
        let below = crate::fs::user_writable_dirs(tree, SHOWN + 1)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        found.extend(below.into_iter().map(|rel| {
            if rel.as_os_str().is_empty() {
                path.to_owned()
            } else {
                path.join(rel)
            }
        }));
        if found.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = found
            .iter()
            .take(SHOWN)
            .map(|p| almost_protocol::path::encode(p))
            .collect();
        if found.len() > SHOWN {
            names.push("…".to_owned());
        }
        Err(Error::Unsupported {
            path: path.to_owned(),
            reason: format!(
                "users can change directories in it ({}): root would write beneath them \
                 in a commit or an undo, so a layer over it is refused; give them to root \
                 or a system account, not writable by others (or sticky)",
                names.join(", ")
            ),
        })
    }

    /// Makes a new layer over `path` and mounts it.
    pub fn create(
        &self,
        raw_path: &str,
        temporary: bool,
        progress: &Arc<Progress>,
    ) -> Result<LayerMeta> {
        let path = self.check_new_path(raw_path)?;
        let mut id = format!("{:08x}", fastrand::u32(..));
        while self.dir(&id).exists() {
            id = format!("{:08x}", fastrand::u32(..));
        }
        let dir = self.dir(&id);
        let store = self.store();
        // Readable by all (`layer list` needs no root), writable by root
        // only: a store others could write to would let them choose what
        // is mounted over the system.
        dir_with_mode(&store, 0o755)
            .map_err(|e| Error::io(format!("creating {}", store.display()), e))?;
        // Made under a hidden name and renamed into the list only once its
        // metadata is written: a failure or a crash never leaves a layer
        // without `layer.json` (a hidden leftover is trash, removed by the
        // next privileged run).
        let staging = store.join(format!("{NEW_PREFIX}{id}"));
        let mut cleared = None;
        let result = self.assemble(&staging, &dir, &path, temporary, &mut cleared, progress);
        match result {
            Ok(meta) => Ok(meta),
            Err(e) => {
                // Leave nothing behind: not the store, not an unlocked tree.
                for leftover in [&dir, &staging] {
                    if leftover.exists() {
                        let _ = self.sys.apply_host_tree(leftover, false, progress);
                        let _ = remove_tree(leftover);
                    }
                }
                let relock = match cleared {
                    Some(changed) => changed > 0,
                    // Cut short while clearing: lock again unless the rest
                    // of the system is unlocked (fail closed).
                    None => {
                        let probe = LayerMeta {
                            id: String::new(),
                            path: path.clone(),
                            created: 0,
                            temporary,
                            was_locked: true,
                            paths: Vec::new(),
                            system: false,
                        };
                        self.should_relock(&probe).unwrap_or(true)
                    }
                };
                if relock {
                    let _ = self.sys.apply_subtree(&path, true, progress);
                }
                Err(e)
            }
        }
    }

    /// The steps of [`Layers::create`] that a failure must undo.
    fn assemble(
        &self,
        staging: &Path,
        dir: &Path,
        path: &Path,
        temporary: bool,
        cleared: &mut Option<u64>,
        progress: &Arc<Progress>,
    ) -> Result<LayerMeta> {
        let lower = fs::symlink_metadata(self.sys.root.host(path))
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let upper = staging.join("upper");
        for sub in [&upper, &staging.join("work")] {
            fs::create_dir_all(sub)
                .map_err(|e| Error::io(format!("creating {}", sub.display()), e))?;
        }
        match_top(&upper, &lower)
            .map_err(|e| Error::io(format!("creating {}", upper.display()), e))?;
        let mut meta = LayerMeta {
            id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_owned(),
            created: state::now(),
            temporary,
            was_locked: true,
            paths: Vec::new(),
            system: false,
        };
        let file = staging.join(META_FILE);
        let write_meta = |meta: &LayerMeta| {
            write_atomic(&file, &serde_json::to_vec_pretty(meta).unwrap_or_default())
                .map_err(|e| Error::io(format!("writing {}", file.display()), e))
        };
        // Written before the flags are cleared too: after a crash, the
        // staging directory says which tree to lock again when it is
        // thrown away (`empty_trash`).
        write_meta(&meta)?;
        let changed = self.sys.apply_subtree(path, false, progress)?.changed;
        *cleared = Some(changed);
        meta.was_locked = changed > 0;
        write_meta(&meta)?;
        fs::rename(staging, dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        self.mount(&meta)?;
        Ok(meta)
    }

    /// Mounts (or re-mounts, after a reboot) a layer.
    pub fn mount(&self, meta: &LayerMeta) -> Result<()> {
        if self.is_mounted(meta) {
            return Ok(());
        }
        let target = self.sys.root.host(&meta.path);
        let data = self.overlay_options(meta);
        nix::mount::mount(
            Some("almost-layer"),
            &target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| {
            Error::io(
                format!("mounting layer {} over {}", meta.id, meta.path.display()),
                e.into(),
            )
        })
    }

    /// The overlayfs options of a layer: its tree beneath, its upper and
    /// work directories.
    fn overlay_options(&self, meta: &LayerMeta) -> String {
        format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            escape_option(&self.sys.root.host(&meta.path)),
            escape_option(&self.upper(&meta.id)),
            escape_option(&self.work(&meta.id)),
        )
    }

    /// Mounts the merged view of a layer that is not mounted over its tree
    /// at a place of its own under `/run/almost`, for reading: nothing
    /// running looks there, so it can be taken away again at once. (Mounted
    /// over its tree, even for a moment, a layer over `/usr` at boot could
    /// be taken into use by whatever starts then, udevd's helpers first.)
    pub fn mount_view(&self, meta: &LayerMeta) -> Result<PathBuf> {
        let dir = self
            .sys
            .root
            .host(Path::new(state::STATE_DIR))
            .join(format!("view-{}", meta.id));
        let made = fs::create_dir_all(&dir).and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        });
        made.map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let data = self.overlay_options(meta);
        nix::mount::mount(
            Some("almost-layer-view"),
            &dir,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(data.as_str()),
        )
        .map_err(|e| Error::io(format!("mounting the view of layer {}", meta.id), e.into()))?;
        Ok(dir)
    }

    /// Takes away what [`Layers::mount_view`] mounted.
    pub fn unmount_view(&self, dir: &Path) {
        if let Err(e) = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!("cannot unmount {}: {e}", dir.display());
        }
        let _ = fs::remove_dir(dir);
    }

    /// Unmounts a layer; refuses, naming the processes, when it is in use.
    pub fn unmount(&self, meta: &LayerMeta) -> Result<()> {
        if !self.is_mounted(meta) {
            return Ok(());
        }
        let target = self.sys.root.host(&meta.path);
        match nix::mount::umount2(&target, nix::mount::MntFlags::empty()) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::EBUSY) => {
                let holders = busy::holders(&target);
                if holders.is_empty() {
                    // No process but this one uses the layer's filesystem.
                    // This one may well (it runs from the layer when the
                    // layer covers /usr/bin), and so may copies of the mount
                    // in other mount namespaces: services started with
                    // ProtectSystem= and the like got a copy when the layer
                    // was mounted, and the read-only mounts systemd stacks
                    // on it there keep it busy. Detaching it is then safe:
                    // no one can open anything through it any more, and
                    // what this process maps stays valid.
                    return nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).map_err(
                        |e| Error::io(format!("detaching {}", target.display()), e.into()),
                    );
                }
                Err(Error::LayerBusy {
                    id: meta.id.clone(),
                    path: meta.path.clone(),
                    holders,
                })
            }
            Err(e) => Err(Error::io(
                format!("unmounting {}", target.display()),
                e.into(),
            )),
        }
    }

    /// Whether the tree a layer covered should be locked again once the
    /// layer is gone: as the rest of the system is, or as it was.
    pub fn should_relock(&self, meta: &LayerMeta) -> Result<bool> {
        let report = self.sys.measure(&Progress::default())?;
        let measured: u64 = report
            .paths
            .iter()
            .filter(|p| p.unsupported.is_none())
            .map(|p| p.locked + p.unlocked)
            .sum();
        Ok(if measured == 0 {
            meta.was_locked
        } else {
            report.mode != Mode::Unlocked
        })
    }

    /// Unmounts the layer and deletes its storage. Touches nothing else,
    /// but locks the covered tree again if the system is locked.
    pub fn discard(&self, meta: &LayerMeta, progress: &Arc<Progress>) -> Result<()> {
        let relock = self.should_relock(meta)?;
        self.unmount(meta)?;
        self.remove_storage(&meta.id, progress)?;
        if relock {
            self.sys.apply_subtree(&meta.path, true, progress)?;
        }
        Ok(())
    }

    /// Deletes a layer's store directory, clearing any immutable flag set
    /// inside the layer first (rm cannot delete those).
    pub fn remove_storage(&self, id: &str, progress: &Arc<Progress>) -> Result<()> {
        let dir = self.dir(id);
        if dir.exists() {
            // Out of the list at once (atomically), then deleted: a crash in
            // between leaves only a hidden directory that the next run removes.
            fs::rename(&dir, self.store().join(format!("{TRASH_PREFIX}{id}")))
                .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
        }
        self.empty_trash(progress)
    }

    /// Deletes what `remove_storage` left in the store's trash, and what a
    /// crashed `layer new` left under `.new-ID`: then the tree it had
    /// cleared for the layer is locked again, unless the rest of the
    /// system is unlocked or a layer covers it now.
    pub fn empty_trash(&self, progress: &Arc<Progress>) -> Result<()> {
        let Ok(read) = fs::read_dir(self.store()) else {
            return Ok(());
        };
        for entry in read.filter_map(std::result::Result::ok) {
            let name = entry.file_name();
            if !is_trash(&name) {
                continue;
            }
            let path = entry.path();
            let unborn = name
                .to_str()
                .and_then(|n| n.strip_prefix(NEW_PREFIX))
                .and_then(|id| {
                    let file = path.join(META_FILE);
                    let bytes = fs::read(&file).ok()?;
                    // Input like any layer.json: a path inside a managed,
                    // not excluded tree, or nothing is locked.
                    parse_meta(&file, id, &self.sys.config, &bytes)
                        .map_err(|e| tracing::warn!("{e}"))
                        .ok()
                });
            self.sys.apply_host_tree(&path, false, progress)?;
            remove_tree(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            if let Some(meta) = unborn {
                let covered = self.all().is_ok_and(|all| {
                    all.iter()
                        .any(|l| l.path.starts_with(&meta.path) || meta.path.starts_with(&l.path))
                });
                if !covered && self.should_relock(&meta).unwrap_or(true) {
                    tracing::warn!(
                        "locking {} again: a layer new over it was interrupted",
                        meta.path.display()
                    );
                    self.sys.apply_subtree(&meta.path, true, progress)?;
                }
            }
        }
        Ok(())
    }

    /// The changes of a layer. A mounted layer hides the tree beneath it, so
    /// the lower side is read in this process's private mount namespace,
    /// where the layer's mount is taken away.
    pub fn diff(
        &self,
        meta: &LayerMeta,
        patches: bool,
        _private: &PrivateMounts,
    ) -> Result<Vec<diff::Change>> {
        let target = self.sys.root.host(&meta.path);
        while self.is_mounted(meta) {
            nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| Error::io("looking beneath the layer", e.into()))?;
        }
        diff::diff(&self.upper(&meta.id), &target, &meta.path, patches)
            .map_err(|e| Error::io(format!("reading layer {}", meta.id), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_json_is_checked_as_input() {
        let config = Config {
            default_mode: crate::config::DefaultMode::Locked,
            paths: vec![PathBuf::from("/usr"), PathBuf::from("/opt")],
            exclude: vec![PathBuf::from("/usr/local")],
        };
        let file = Path::new("/s/0badc0de/layer.json");
        let parse = |path: &str| {
            let json = format!(
                r#"{{"id":"0badc0de","path":{path:?},"created":1,"temporary":false,"was_locked":true}}"#
            );
            parse_meta(file, "0badc0de", &config, json.as_bytes())
        };
        assert_eq!(parse("/usr/lib").unwrap().path, PathBuf::from("/usr/lib"));
        assert!(parse("/opt").is_ok());
        for bad in [
            "/etc",
            "/usr/local/bin",
            "/usr/../etc",
            "/usr/",
            "usr",
            "/",
            "/optx",
        ] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
        let other = br#"{"id":"1","path":"/usr","created":1,"temporary":false,"was_locked":true}"#;
        assert!(parse_meta(file, "0badc0de", &config, other).is_err());
        assert!(parse_meta(file, "0badc0de", &config, b"{").is_err());
    }

    #[test]
    fn journal_paths_are_checked_as_input() {
        let config = Config {
            default_mode: crate::config::DefaultMode::Locked,
            paths: vec![PathBuf::from("/usr")],
            exclude: Vec::new(),
        };
        let file = Path::new("/s/0badc0de/commit.json");
        let journal = |layer_path: &str, rel: &str, listing: &str| {
            let json = format!(
                r#"{{"layer":{{"id":"0badc0de","path":{layer_path:?},"created":1,"temporary":false,"was_locked":true}},
                "phase":"applying","relock":true,
                "ops":[{{"kind":"write","rel":{rel:?},"existed":false,"link_to":null,"old_meta":null}}],
                "after":{{"entries":{{}},"listings":{{{listing:?}:["a"]}}}},
                "before":{{"entries":{{{rel:?}:null}},"listings":{{}}}}}}"#
            );
            commit::parse_journal(file, &config, json.as_bytes())
        };
        let good = journal("/usr/lib", "a/b", "").unwrap();
        assert_eq!(good.ops[0].rel, PathBuf::from("a/b"));
        assert!(journal("/usr/lib", "a", "a").is_ok());
        for rel in ["/etc/shadow", "../../etc/shadow", "a/../../x", "./a", ""] {
            assert!(
                journal("/usr/lib", rel, "").is_err(),
                "rel {rel:?} accepted"
            );
        }
        assert!(
            journal("/usr/lib", "a", "/etc").is_err(),
            "listing accepted"
        );
        assert!(
            journal("/etc", "a", "").is_err(),
            "unmanaged layer accepted"
        );
        assert!(commit::parse_journal(file, &config, b"[]").is_err());
    }

    #[test]
    fn options_are_escaped() {
        assert_eq!(escape_option(Path::new("/a,b:c\\d")), "/a\\,b\\:c\\\\d");
        assert_eq!(escape_option(Path::new("/usr/lib")), "/usr/lib");
    }
}
