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
