// SPDX-License-Identifier: GPL-3.0-or-later
//! Errors of the engine, one variant per failure, each mapped to a stable
//! error kind (almost-protocol's) that the command line turns into an exit
//! code and the panel into a headline.

use std::io;
use std::path::PathBuf;

/// The stable classes of failure: almost-protocol's, which gives each its
/// exit code.
pub use almost_protocol::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config file's error: at a line and column of it, or (line 0) of
    /// a value given for it (`config set`).
    #[error("{}", config_text(file, *line, *column, message))]
    Config {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot read {file}: {source}")]
    ConfigRead { file: PathBuf, source: io::Error },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("--root {path:?}: {reason}")]
    InvalidRoot { path: PathBuf, reason: String },
    #[error("this command must run as root (try: sudo almost {command})")]
    NotRoot { command: String },
    #[error("{path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: the filesystem is mounted read-only")]
    ReadOnly { path: PathBuf },
    #[error("{failed} entries could not be changed (first: {first})")]
    Partial { failed: u64, first: String },
    #[error("{what} is busy: {detail}")]
    Busy { what: String, detail: String },
    /// A layer's mount is in use by these processes (never empty).
    #[error(
        "layer {id} over {} is busy: in use by {}. A layer over what the running system \
         executes from stays in use until those programs end: `almost layer commit --at-boot \
         {id}` (or `discard --at-boot`) does it at the next boot, before anything starts",
        .path.display(),
        .holders.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    LayerBusy {
        id: String,
        path: PathBuf,
        holders: Vec<crate::layer::busy::Holder>,
    },
    /// `layer undo` would throw away what changed after the commit.
    #[error(
        "not undoing the commit of layer {id}: changed since the commit, an undo would \
         overwrite {}; `almost layer undo --force` overwrites them",
        .paths.join(", ")
    )]
    ChangedSinceCommit { id: String, paths: Vec<String> },
    /// `layer undo COMMIT` of a commit that later ones touched the same
    /// paths as (`later`, newest first): they must be undone first.
    #[error(
        "not undoing commit {id}: later commits changed the same paths; undo them first, newest \
         first: {}",
        .later.iter().map(|c| format!("`almost layer undo {c}`")).collect::<Vec<_>>().join(", then ")
    )]
    LaterCommits { id: String, later: Vec<String> },
    /// The system files are locked and a package manager is about to
    /// change them (the apt hook): the message says what to do instead.
    #[error(
        "the system files are locked ({}): apt and dpkg cannot change them now.\n\
         \x20 To install or upgrade, run apt through almost, which unlocks and locks again \
         afterwards:\n\
         \x20     sudo almost run -- apt …\n\
         \x20 or try the change in a system layer first (the files, /etc and the package \
         database together; review it, then keep or discard it):\n\
         \x20     sudo almost layer new --system\n\
         \x20 or unlock the system from the Almost panel.",
        .paths.join(", ")
    )]
    Locked { paths: Vec<String> },
    #[error("cancelled")]
    Cancelled,
    /// Refused under pkexec (see [`ErrorKind::Forbidden`]).
    #[error("refused under pkexec: {0}")]
    Forbidden(String),
    /// Arguments that parse but may not be used together or here.
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } | Error::ConfigRead { .. } => ErrorKind::Config,
            Error::InvalidPath { .. } | Error::InvalidRoot { .. } => ErrorKind::InvalidPath,
            Error::NotRoot { .. } => ErrorKind::NotRoot,
            Error::Unsupported { .. } | Error::ReadOnly { .. } => ErrorKind::Unsupported,
            Error::Partial { .. } => ErrorKind::Partial,
            // The tree is in use by what changed it since: as for a busy
            // mount, the user decides (force, or leave it).
            Error::Busy { .. } | Error::LayerBusy { .. } | Error::ChangedSinceCommit { .. } => {
                ErrorKind::Busy
            }
            Error::Locked { .. } => ErrorKind::Locked,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::LaterCommits { .. } => ErrorKind::Conflict,
            Error::Usage(_) => ErrorKind::Usage,
            // A full disk (or quota) is the machine's state, not a bug:
            // the user can do something about it.
            // (By kind, not errno: a wrapped error such as tempfile's keeps
            // the kind but not the errno.)
            Error::Io { source, .. }
                if matches!(
                    source.kind(),
                    io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
                ) =>
            {
                ErrorKind::NoSpace
            }
            Error::Io { .. } => ErrorKind::Internal,
        }
    }

    /// The processes a `busy` refusal names (none for other errors).
    pub fn processes(&self) -> &[almost_protocol::Process] {
        match self {
            Error::LayerBusy { holders, .. } => holders,
            _ => &[],
        }
    }

    /// The later commits a [`Error::LaterCommits`] names (none otherwise).
    pub fn later_commits(&self) -> &[String] {
        match self {
            Error::LaterCommits { later, .. } => later,
            _ => &[],
        }
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn config_text(file: &std::path::Path, line: usize, column: usize, message: &str) -> String {
    if line == 0 {
        format!("{}: {message}", file.display())
    } else {
        format!("{}:{line}:{column}: {message}", file.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_its_own_kind() {
        let full = Error::io("writing x", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(full.kind(), ErrorKind::NoSpace);
        let quota = Error::io("writing x", io::Error::from_raw_os_error(libc::EDQUOT));
        assert_eq!(quota.kind(), ErrorKind::NoSpace);
        let other = Error::io("writing x", io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(other.kind(), ErrorKind::Internal);
        // Wrapped with a path (as tempfile does): the kind survives.
        let wrapped = io::Error::new(
            io::Error::from_raw_os_error(libc::ENOSPC).kind(),
            "at path x",
        );
        assert_eq!(Error::io("writing x", wrapped).kind(), ErrorKind::NoSpace);
    }

    // Checks: a config error names the line and column of the file; a bad
    // value given on the command line (line 0) names the file only, not
    // a made-up "0:0".
    #[test]
    fn config_errors_name_a_place_only_when_there_is_one() {
        let at = |line| Error::Config {
            file: "/etc/almost/almost.toml".into(),
            line,
            column: 3,
            message: "bad".into(),
        };
        assert_eq!(at(2).to_string(), "/etc/almost/almost.toml:2:3: bad");
        assert_eq!(at(0).to_string(), "/etc/almost/almost.toml: bad");
    }
}
