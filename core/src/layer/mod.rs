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
//! A layer covers one directory or several (its parts: `almost layer new
//! /usr /etc`, or `--system`), each with its own overlay mount, committed,
//! discarded and undone as one.
//!
//! Everything is derived from the store (`/var/lib/almost/layers/<id>/`,
//! holding `layer.json`, `upper/` and `work/` for the first part,
//! `upper-N/` and `work-N/` for part N) and from the mount table, so the
//! list never goes stale: after a reboot a layer shows as not mounted. A
//! store directory made before layers had parts (one `path` in
//! `layer.json`) is a layer of one part: the same layout.

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
use crate::state;
use crate::system::{Progress, System};

pub const STORE: &str = "/var/lib/almost/layers";
const META_FILE: &str = "layer.json";
/// Prefix of a layer being made (hidden from the list until complete).
const NEW_PREFIX: &str = ".new-";
/// Prefix of what is being deleted from the store.
const TRASH_PREFIX: &str = ".trash-";

/// The directories `layer new --system` covers besides the managed trees:
/// `/etc` and the package manager's state, measured in
/// docs/dev/package-manager-writes.md (not `/var/lib/almost`, logs or
/// caches). All lie outside every managed tree (`/etc` and `/var` are never
/// managed): a layer over them is for review and undo, and never sets or
/// clears a flag there. Also the only places outside the managed trees a
/// layer may cover.
pub const SYSTEM_PARTS: &[&str] = &[
    "/etc",
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/cache/debconf",
    "/var/lib/ucf",
    "/var/lib/systemd/deb-systemd-helper-enabled",
    "/var/lib/pam",
];

/// Whether `path` is one of [`SYSTEM_PARTS`].
pub fn is_system_part(path: &Path) -> bool {
    SYSTEM_PARTS.iter().any(|p| Path::new(p) == path)
}

/// Two of `parts` of which one lies inside the other or both are the same,
/// if any (`(a, b)`: indices, a < b).
fn overlapping(parts: &[PathBuf]) -> Option<(usize, usize)> {
    (0..parts.len()).find_map(|b| {
        (0..b)
            .find(|&a| parts[a].starts_with(&parts[b]) || parts[b].starts_with(&parts[a]))
            .map(|a| (a, b))
    })
}

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

/// How long systemd-udevd gets to let go of a detached layer part
/// ([`busy::release_udev`]); it reloads in well under a second.
const UDEVD_RELEASE: std::time::Duration = std::time::Duration::from_secs(5);

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
/// name of its directory), and each of its parts a normalised path inside
/// a managed tree of `config` (not excluded) or one of [`SYSTEM_PARTS`],
/// the first being `path`, no two overlapping. A layer whose file says
/// `/home` would otherwise be mounted over it, and one whose managed part
/// is forged would have that tree locked on discard.
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
    let parts = meta.parts();
    if parts[0] != meta.path {
        return Err(bad(format!(
            "its paths do not begin with its path {}",
            meta.path.display()
        )));
    }
    for part in parts {
        let raw = part.to_string_lossy();
        let path = paths::check_syntax(&raw).map_err(|e| bad(e.to_string()))?;
        let managed = config.paths.iter().any(|m| path.starts_with(m))
            && !config.exclude.iter().any(|x| path.starts_with(x));
        if path != *part || !(managed || is_system_part(&path)) {
            return Err(bad(format!(
                "its path {} is not inside a managed path (nor one of the system layer's)",
                part.display()
            )));
        }
    }
    if let Some((a, b)) = overlapping(parts) {
        return Err(bad(format!(
            "its paths {} and {} overlap",
            parts[a].display(),
            parts[b].display()
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

    /// The upper directory of a layer's first part.
    pub fn upper(&self, id: &str) -> PathBuf {
        self.upper_of(id, 0)
    }

    /// The upper directory of part `index` of a layer: `upper/` for the
    /// first (as before layers had parts), `upper-N/` for the others.
    pub fn upper_of(&self, id: &str, index: usize) -> PathBuf {
        self.dir(id).join(Self::numbered("upper", index))
    }

    fn work_of(&self, id: &str, index: usize) -> PathBuf {
        self.dir(id).join(Self::numbered("work", index))
    }

    fn numbered(name: &str, index: usize) -> String {
        if index == 0 {
            name.to_owned()
        } else {
            format!("{name}-{index}")
        }
    }

    /// Whether almost sets and clears the flag in a part of a layer: the
    /// parts inside a managed tree. The system parts (`/etc`, `/var/…`)
    /// never: a layer over them is only about review and undo.
    pub fn lockable(&self, part: &Path) -> bool {
        self.sys.config.paths.iter().any(|m| part.starts_with(m))
    }

    /// Sets (`on`) or clears the flag in every lockable part of a layer.
    pub fn apply_parts(&self, meta: &LayerMeta, on: bool, progress: &Progress) -> Result<u64> {
        let mut changed = 0;
        for part in meta.parts().iter().filter(|p| self.lockable(p)) {
            changed += self.sys.apply_subtree(part, on, progress)?.changed;
        }
        Ok(changed)
    }

    /// Mounts a layer again (after a reboot, `layer mount`): its lockable
    /// parts cleared first (overlayfs honours the flag of lower entries).
    pub fn remount(&self, meta: &LayerMeta, progress: &Progress) -> Result<()> {
        self.apply_parts(meta, false, progress)?;
        self.mount(meta)
    }

    /// The directories of the system layer (`layer new --system`) this
    /// root has: the managed trees that are directories, then
    /// [`SYSTEM_PARTS`] that exist; and those it lacks, left out.
    pub fn system_parts(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let (mut have, mut lack) = (Vec::new(), Vec::new());
        let managed = self.sys.config.paths.iter().cloned();
        for part in managed.chain(SYSTEM_PARTS.iter().map(PathBuf::from)) {
            match self.sys.root.open_dir(&part) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => lack.push(part),
                // A managed path that is a symlink (a merged /bin) is not
                // a tree of its own: lock skips it too.
                Err(_) if self.lockable(&part) => lack.push(part),
                // Anything else is said by the checks of `layer new`.
                _ => have.push(part),
            }
        }
        (have, lack)
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
            .find(|l| l.parts().iter().any(|p| p == path))
            .ok_or_else(|| Error::InvalidPath {
                path: path.to_string_lossy().into_owned(),
                reason: "no layer covers this path".to_owned(),
            })
    }

    /// The overlay mount of part `index` of this layer, if it is mounted.
    pub fn mount_of<'m>(
        &self,
        meta: &LayerMeta,
        index: usize,
        table: &'m [Mount],
    ) -> Option<&'m Mount> {
        let target = self.sys.root.host(meta.parts().get(index)?);
        let upper = format!(
            "upperdir={}",
            escape_option(&self.upper_of(&meta.id, index))
        );
        table.iter().rev().find(|m| {
            m.fstype == "overlay"
                && m.mount_point == target
                && m.super_options.split(',').any(|o| o == upper)
        })
    }

    /// Whether part `index` of the layer is mounted.
    pub fn part_mounted(&self, meta: &LayerMeta, index: usize) -> bool {
        let table = mounts::read().unwrap_or_default();
        self.mount_of(meta, index, &table).is_some()
    }

    /// Whether every part of the layer is mounted.
    pub fn is_mounted(&self, meta: &LayerMeta) -> bool {
        let table = mounts::read().unwrap_or_default();
        (0..meta.parts().len()).all(|i| self.mount_of(meta, i, &table).is_some())
    }

    pub fn info(&self, meta: LayerMeta, changes: Option<u64>) -> LayerInfo {
        LayerInfo {
            mounted: self.is_mounted(&meta),
            size: (0..meta.parts().len())
                .map(|i| disk_usage(&self.upper_of(&meta.id, i)))
                .sum(),
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

    /// Checks that a new layer may cover the directories `raws`: each a
    /// normalised path inside a managed tree or one of [`SYSTEM_PARTS`], a
    /// directory reached without symlinks, in which users change nothing,
    /// holding no mount point and not the layer store; none given twice or
    /// inside another, none overlapping an existing layer.
    fn check_new_parts(&self, raws: &[String]) -> Result<Vec<PathBuf>> {
        if raws.is_empty() {
            return Err(Error::Usage(
                "layer new: give at least one directory (or --system)".to_owned(),
            ));
        }
        let mut parts = Vec::new();
        for raw in raws {
            let path = paths::check_syntax(raw)?;
            let bad = |reason: String| Error::InvalidPath {
                path: raw.to_owned(),
                reason,
            };
            if !self.sys.config.paths.iter().any(|m| path.starts_with(m)) && !is_system_part(&path)
            {
                return Err(bad(format!(
                    "not inside a managed path ({}) nor one of the system layer's ({})",
                    self.sys
                        .config
                        .paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    SYSTEM_PARTS.join(", ")
                )));
            }
            parts.push(path);
        }
        if let Some((a, b)) = overlapping(&parts) {
            let reason = if parts[a] == parts[b] {
                "given twice".to_owned()
            } else {
                format!(
                    "overlaps {}, also given: a layer's directories must not lie inside \
                     one another",
                    if parts[b].starts_with(&parts[a]) {
                        &parts[a]
                    } else {
                        &parts[b]
                    }
                    .display()
                )
            };
            return Err(Error::InvalidPath {
                path: raws[b].clone(),
                reason,
            });
        }
        let others = self.all()?;
        let table = mounts::read().map_err(|e| Error::io("reading the mount table", e))?;
        for (raw, path) in raws.iter().zip(&parts) {
            self.check_new_part(raw, path, &others, &table)?;
        }
        Ok(parts)
    }

    /// The checks of [`Layers::check_new_parts`] that look at one part.
    fn check_new_part(
        &self,
        raw: &str,
        path: &Path,
        others: &[LayerMeta],
        table: &[Mount],
    ) -> Result<()> {
        let bad = |reason: String| Error::InvalidPath {
            path: raw.to_owned(),
            reason,
        };
        self.sys
            .root
            .open_dir(path)
            .map_err(|e| bad(format!("not a directory reachable without symlinks: {e}")))?;
        for other in others {
            if let Some(part) = other
                .parts()
                .iter()
                .find(|p| p.starts_with(path) || path.starts_with(p))
            {
                return Err(bad(if other.system {
                    format!(
                        "overlaps the system layer {} (its directory {})",
                        other.id,
                        part.display()
                    )
                } else {
                    format!("overlaps layer {} over {}", other.id, part.display())
                }));
            }
        }
        self.refuse_user_writable(path, &self.sys.root.host(path), true)?;
        let host = self.sys.root.host(path);
        if self.store().starts_with(&host) {
            return Err(bad("the layer store would lie inside the layer".to_owned()));
        }
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
        Ok(())
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

    /// Makes a new layer over the directories `raws` (one or several: its
    /// parts) and mounts it; `system`: made by `layer new --system`.
    pub fn create(
        &self,
        raws: &[String],
        temporary: bool,
        system: bool,
        progress: &Arc<Progress>,
    ) -> Result<LayerMeta> {
        let parts = self.check_new_parts(raws)?;
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
        let mut meta = LayerMeta {
            id,
            path: parts[0].clone(),
            paths: parts,
            created: state::now(),
            temporary,
            was_locked: true,
            system,
        };
        let mut cleared = None;
        let result = self.assemble(&staging, &dir, &mut meta, &mut cleared, progress);
        match result {
            Ok(()) => Ok(meta),
            Err(e) => {
                // Leave nothing behind: not the store, not an unlocked tree
                // (`mount` unmounts what it mounted when it fails).
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
                        meta.was_locked = true;
                        self.should_relock(&meta).unwrap_or(true)
                    }
                };
                if relock {
                    let _ = self.apply_parts(&meta, true, progress);
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
        meta: &mut LayerMeta,
        cleared: &mut Option<u64>,
        progress: &Arc<Progress>,
    ) -> Result<()> {
        for (index, part) in meta.parts().iter().enumerate() {
            let lower = fs::symlink_metadata(self.sys.root.host(part))
                .map_err(|e| Error::io(format!("reading {}", part.display()), e))?;
            let upper = staging.join(Self::numbered("upper", index));
            for sub in [&upper, &staging.join(Self::numbered("work", index))] {
                fs::create_dir_all(sub)
                    .map_err(|e| Error::io(format!("creating {}", sub.display()), e))?;
            }
            match_top(&upper, &lower)
                .map_err(|e| Error::io(format!("creating {}", upper.display()), e))?;
        }
        let file = staging.join(META_FILE);
        let write_meta = |meta: &LayerMeta| {
            write_atomic(&file, &serde_json::to_vec_pretty(meta).unwrap_or_default())
                .map_err(|e| Error::io(format!("writing {}", file.display()), e))
        };
        // Written before the flags are cleared too: after a crash, the
        // staging directory says which trees to lock again when it is
        // thrown away (`empty_trash`).
        write_meta(meta)?;
        let changed = self.apply_parts(meta, false, progress)?;
        *cleared = Some(changed);
        meta.was_locked = changed > 0;
        write_meta(meta)?;
        fs::rename(staging, dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        self.mount(meta)
    }

    /// Mounts (or re-mounts, after a reboot) a layer: every part not
    /// mounted yet. If one cannot be, those this call mounted are
    /// unmounted again.
    pub fn mount(&self, meta: &LayerMeta) -> Result<()> {
        let mut done: Vec<PathBuf> = Vec::new();
        for (index, part) in meta.parts().iter().enumerate() {
            if self.part_mounted(meta, index) {
                continue;
            }
            let target = self.sys.root.host(part);
            let data = self.overlay_options(meta, index);
            let mounted = nix::mount::mount(
                Some("almost-layer"),
                &target,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(data.as_str()),
            );
            if let Err(e) = mounted {
                for target in done.iter().rev() {
                    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
                }
                return Err(Error::io(
                    format!("mounting layer {} over {}", meta.id, part.display()),
                    e.into(),
                ));
            }
            done.push(target);
        }
        Ok(())
    }

    /// The overlayfs options of part `index` of a layer: its tree beneath,
    /// its upper and work directories.
    fn overlay_options(&self, meta: &LayerMeta, index: usize) -> String {
        format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off",
            escape_option(&self.sys.root.host(&meta.parts()[index])),
            escape_option(&self.upper_of(&meta.id, index)),
            escape_option(&self.work_of(&meta.id, index)),
        )
    }

    /// Mounts the merged view of part `index` of a layer that is not
    /// mounted over its tree at a place of its own under `/run/almost`, for
    /// reading: nothing running looks there, so it can be taken away again
    /// at once. (Mounted over its tree, even for a moment, a layer over
    /// `/usr` at boot could be taken into use by whatever starts then,
    /// udevd's helpers first.)
    pub fn mount_view(&self, meta: &LayerMeta, index: usize) -> Result<PathBuf> {
        let name = if index == 0 {
            format!("view-{}", meta.id)
        } else {
            format!("view-{}-{index}", meta.id)
        };
        let dir = self.sys.root.host(Path::new(state::STATE_DIR)).join(name);
        let made = fs::create_dir_all(&dir).and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        });
        made.map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let data = self.overlay_options(meta, index);
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

    /// Unmounts a layer, every part of it; refuses, naming the processes,
    /// when one is in use (the parts unmounted by then are mounted again:
    /// a layer is used whole).
    pub fn unmount(&self, meta: &LayerMeta) -> Result<()> {
        for index in 0..meta.parts().len() {
            if let Err(e) = self.unmount_part(meta, index) {
                if let Err(again) = self.mount(meta) {
                    tracing::warn!("layer {} could not be mounted again: {again}", meta.id);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn unmount_part(&self, meta: &LayerMeta, index: usize) -> Result<()> {
        if !self.part_mounted(meta, index) {
            return Ok(());
        }
        let part = &meta.parts()[index];
        let target = self.sys.root.host(part);
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
                let holders = if busy::only_udevd(&holders) {
                    // systemd-udevd mapped its hardware database from the
                    // layer (busy.rs says why): detached, the path leads
                    // to the tree again and udevd reloads from there when
                    // asked. If it does not let go in time, the caller
                    // mounts the part again and the refusal names it.
                    let dev = fs::metadata(&target)
                        .map_err(|e| Error::io(format!("reading {}", target.display()), e))?
                        .dev();
                    nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).map_err(
                        |e| Error::io(format!("detaching {}", target.display()), e.into()),
                    )?;
                    let left = busy::release_udev(dev, &holders, UDEVD_RELEASE);
                    if left.is_empty() {
                        return Ok(());
                    }
                    left
                } else {
                    holders
                };
                Err(Error::LayerBusy {
                    id: meta.id.clone(),
                    path: part.clone(),
                    holders,
                })
            }
            Err(e) => Err(Error::io(
                format!("unmounting {}", target.display()),
                e.into(),
            )),
        }
    }

    /// Whether the trees a layer covered should be locked again once the
    /// layer is gone: as the rest of the system is, or as it was. (Only
    /// its lockable parts ever are: [`Layers::apply_parts`].)
    pub fn should_relock(&self, meta: &LayerMeta) -> Result<bool> {
        let report = self.sys.measure(&Progress::default())?;
        // The rest of the system: the managed trees other than the layer's
        // own parts, whose flags the layer cleared. Mounted, a part is not
        // walked anyway; unmounted (by hand, or a layer a reboot left
        // unmounted) its cleared tree would say "unlocked" of itself.
        let parts: Vec<String> = meta
            .parts()
            .iter()
            .map(|p| almost_protocol::path::encode(p))
            .collect();
        let rest: Vec<_> = report
            .paths
            .iter()
            .filter(|p| p.unsupported.is_none())
            .filter(|p| {
                !parts
                    .iter()
                    .any(|part| Path::new(&p.path).starts_with(part))
            })
            .collect();
        let measured: u64 = rest.iter().map(|p| p.locked + p.unlocked).sum();
        Ok(if measured == 0 {
            meta.was_locked
        } else {
            rest.iter().any(|p| p.locked > 0)
        })
    }

    /// Unmounts the layer and deletes its storage. Touches nothing else,
    /// but locks the covered trees again if the system is locked.
    pub fn discard(&self, meta: &LayerMeta, progress: &Arc<Progress>) -> Result<()> {
        let relock = self.should_relock(meta)?;
        self.unmount(meta)?;
        self.remove_storage(&meta.id, progress)?;
        if relock {
            self.apply_parts(meta, true, progress)?;
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
    /// crashed `layer new` left under `.new-ID`: then the trees it had
    /// cleared for the layer are locked again, unless the rest of the
    /// system is unlocked or a layer covers them now.
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
                    // Input like any layer.json: paths inside managed, not
                    // excluded trees (or the system parts, never locked),
                    // or nothing is locked.
                    parse_meta(&file, id, &self.sys.config, &bytes)
                        .map_err(|e| tracing::warn!("{e}"))
                        .ok()
                });
            self.sys.apply_host_tree(&path, false, progress)?;
            remove_tree(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            let Some(meta) = unborn else {
                continue;
            };
            let all = self.all().unwrap_or_default();
            let relock = self.should_relock(&meta).unwrap_or(true);
            for part in meta.parts().iter().filter(|p| self.lockable(p)) {
                let covered = all
                    .iter()
                    .flat_map(|l| l.parts())
                    .any(|l| l.starts_with(part) || part.starts_with(l));
                if !covered && relock {
                    tracing::warn!(
                        "locking {} again: a layer new over it was interrupted",
                        part.display()
                    );
                    self.sys.apply_subtree(part, true, progress)?;
                }
            }
        }
        Ok(())
    }

    /// The changes of a layer, part after part. A mounted layer hides the
    /// tree beneath it, so the lower side is read in this process's private
    /// mount namespace, where the layer's mounts are taken away.
    pub fn diff(
        &self,
        meta: &LayerMeta,
        patches: bool,
        _private: &PrivateMounts,
    ) -> Result<Vec<diff::Change>> {
        let mut changes = Vec::new();
        for (index, part) in meta.parts().iter().enumerate() {
            let target = self.sys.root.host(part);
            while self.part_mounted(meta, index) {
                nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH)
                    .map_err(|e| Error::io("looking beneath the layer", e.into()))?;
            }
            let upper = self.upper_of(&meta.id, index);
            changes.extend(
                diff::diff(&upper, &target, part, patches)
                    .map_err(|e| Error::io(format!("reading layer {}", meta.id), e))?,
            );
        }
        Ok(changes)
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
            keep_commits: crate::config::DEFAULT_KEEP_COMMITS,
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
        // The system layer's own directories, exactly.
        assert!(parse("/etc").is_ok());
        assert!(parse("/var/lib/dpkg").is_ok());
        for bad in [
            "/etc/ssh",
            "/var/lib",
            "/var/lib/almost",
            "/home",
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

    // Checks a layer.json of several parts: every part is checked as the
    // single path is (managed and not excluded, or a system part), `path`
    // must be the first of `paths`, and no two parts may overlap or repeat;
    // a file without `paths` (made before layers had parts) is a layer of
    // its one `path`; `system` reads back.
    #[test]
    fn parts_of_layer_json_are_checked_as_input() {
        let config = Config {
            default_mode: crate::config::DefaultMode::Locked,
            paths: vec![PathBuf::from("/usr"), PathBuf::from("/opt")],
            exclude: vec![PathBuf::from("/usr/local")],
            keep_commits: crate::config::DEFAULT_KEEP_COMMITS,
        };
        let file = Path::new("/s/0badc0de/layer.json");
        let parse = |path: &str, paths: &[&str]| {
            let json = format!(
                r#"{{"id":"0badc0de","path":{path:?},"paths":{paths:?},"created":1,"temporary":false,"was_locked":true,"system":true}}"#
            );
            parse_meta(file, "0badc0de", &config, json.as_bytes())
        };
        let good = parse("/usr", &["/usr", "/etc", "/var/lib/dpkg", "/opt"]).unwrap();
        assert_eq!(good.parts().len(), 4);
        assert!(good.system);
        for (path, paths) in [
            ("/usr", &["/usr", "/usr/share"][..]),
            ("/usr", &["/usr", "/usr"]),
            ("/usr", &["/usr", "/etc/ssh"]),
            ("/usr", &["/usr", "/usr/local/bin"]),
            ("/usr", &["/usr", "/var/lib/almost"]),
            ("/usr", &["/usr", "/var"]),
            ("/usr", &["/etc", "/usr"]),
            ("/etc", &["/usr", "/etc"]),
        ] {
            assert!(parse(path, paths).is_err(), "{path} {paths:?} accepted");
        }
        let old = br#"{"id":"0badc0de","path":"/usr/lib","created":1,"temporary":false,"was_locked":true}"#;
        let old = parse_meta(file, "0badc0de", &config, old).unwrap();
        assert_eq!(old.parts(), [PathBuf::from("/usr/lib")]);
        assert!(!old.system);
        // Written back, a layer of one part made before parts is unchanged.
        let text = serde_json::to_string(&old).unwrap();
        assert!(
            !text.contains("paths") && !text.contains("system"),
            "{text}"
        );
    }

    // Checks that a journal written before layers had parts (the one
    // part's ops, after and before at the top: an interrupted commit or the
    // undo data an upgrade finds) reads as a journal of one part, and that
    // one of several parts must have one plan per part.
    #[test]
    fn an_old_journal_reads_as_one_part() {
        let config = Config {
            default_mode: crate::config::DefaultMode::Locked,
            paths: vec![PathBuf::from("/usr")],
            exclude: Vec::new(),
            keep_commits: crate::config::DEFAULT_KEEP_COMMITS,
        };
        let file = Path::new("/s/0badc0de/commit.json");
        let old = br#"{"layer":{"id":"0badc0de","path":"/usr/lib","created":1,"temporary":false,"was_locked":true},
            "phase":"applying","relock":true,
            "ops":[{"kind":"write","rel":"a","existed":false,"link_to":null,"old_meta":null}],
            "after":{"entries":{},"listings":{}},"before":{"entries":{},"listings":{}}}"#;
        let j = commit::parse_journal(file, &config, old).unwrap();
        assert_eq!(j.parts.len(), 1);
        assert_eq!(j.op_count(), 1);
        let again = serde_json::to_vec(&j).unwrap();
        assert_eq!(commit::parse_journal(file, &config, &again).unwrap(), j);
        let two = |plans: usize| {
            let plan = r#"{"ops":[],"after":{"entries":{},"listings":{}},"before":{"entries":{},"listings":{}}}"#;
            let json = format!(
                r#"{{"layer":{{"id":"0badc0de","path":"/usr/lib","paths":["/usr/lib","/etc"],"created":1,"temporary":false,"was_locked":true}},
                "phase":"applying","relock":true,"parts":[{}]}}"#,
                vec![plan; plans].join(",")
            );
            commit::parse_journal(file, &config, json.as_bytes())
        };
        assert_eq!(two(2).unwrap().parts.len(), 2);
        assert!(two(1).is_err() && two(3).is_err());
    }

    #[test]
    fn journal_paths_are_checked_as_input() {
        let config = Config {
            default_mode: crate::config::DefaultMode::Locked,
            paths: vec![PathBuf::from("/usr")],
            exclude: Vec::new(),
            keep_commits: crate::config::DEFAULT_KEEP_COMMITS,
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
        assert_eq!(good.parts[0].ops[0].rel, PathBuf::from("a/b"));
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
            journal("/home", "a", "").is_err(),
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
