// SPDX-License-Identifier: GPL-3.0-or-later
//! What `status`, `lock`, `unlock`, `enter`, `boot` and `package-remove`
//! answer: the measured state of the managed trees. The paths in these
//! types are strings already in the encoding of [`crate::path`] (they are
//! made by the walk, which names entries as it goes).

use serde::{Deserialize, Serialize};

/// The measured state of the managed trees (or of one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Locked,
    Unlocked,
    Partial,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Locked => "locked",
            Mode::Unlocked => "unlocked",
            Mode::Partial => "partial",
        }
    }

    pub fn from_counts(locked: u64, unlocked: u64) -> Mode {
        match (locked, unlocked) {
            (_, 0) if locked > 0 => Mode::Locked,
            (0, _) => Mode::Unlocked,
            _ => Mode::Partial,
        }
    }
}

/// One entry that could not be read or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryError {
    /// Encoded as [`crate::path`] says.
    pub path: String,
    pub errno: i32,
    pub message: String,
}

/// One managed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathReport {
    /// The path inside the root, encoded as [`crate::path`] says.
    pub path: String,
    pub mode: Mode,
    pub locked: u64,
    pub unlocked: u64,
    pub skipped: u64,
    #[serde(default)]
    pub changed: u64,
    pub mount_points: Vec<String>,
    pub errors: Vec<EntryError>,
    pub error_count: u64,
    /// Why the path cannot carry the flag (filesystem type), if it cannot.
    pub unsupported: Option<String>,
    /// The path's filesystem is mounted read-only.
    pub read_only: bool,
    /// A layer is mounted exactly on this path: the tree beneath is not
    /// walked (it is shadowed, and walking the merged view would copy it up).
    #[serde(default)]
    pub covered: bool,
    /// Overlay mounts on, above or inside the path (paths inside the root).
    pub overlays: Vec<String>,
}

impl PathReport {
    /// A path with nothing counted yet (unlocked, no entry, no mount).
    pub fn new(path: impl Into<String>) -> PathReport {
        PathReport {
            path: path.into(),
            mode: Mode::Unlocked,
            locked: 0,
            unlocked: 0,
            skipped: 0,
            changed: 0,
            mount_points: Vec::new(),
            errors: Vec::new(),
            error_count: 0,
            unsupported: None,
            read_only: false,
            covered: false,
            overlays: Vec::new(),
        }
    }
}

/// A command that runs under `almost run` with the trees unlocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub pid: i32,
    pub command: String,
    pub started: u64,
}

/// What kind of offline update is waiting for the next boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfflineKind {
    /// Package updates (PackageKit's `UpdatePrepared`, or the link alone).
    Update,
    /// A distribution upgrade (PackageKit's `UpgradePrepared`).
    Upgrade,
}

/// Who said that an offline update is prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfflineSource {
    /// PackageKit, asked over the system bus.
    Packagekit,
    /// The `/system-update` (or `/etc/system-update`) link that makes
    /// systemd boot into `system-update.target`.
    SystemUpdateLink,
}

/// An offline update prepared for the next boot: while it runs, the system
/// is unlocked (almost-offline-update.service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineUpdate {
    pub kind: OfflineKind,
    pub source: OfflineSource,
}

/// The last commit, which `almost layer undo` can revert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoInfo {
    pub id: String,
    /// The first directory of the commit's layer, encoded as
    /// [`crate::path`] says (kept for older clients).
    pub path: String,
    /// Every directory the commit's layer covered, encoded the same way
    /// (absent from an older almost: read as `[path]`).
    #[serde(default)]
    pub paths: Vec<String>,
    pub operations: usize,
}

/// The result of `status`, `lock`, `unlock`, `enter`, `boot`,
/// `package-remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub mode: Mode,
    pub changed: u64,
    pub paths: Vec<PathReport>,
    /// Unix time at which a timed unlock ends, if one is pending.
    pub relock_at: Option<u64>,
    /// Commands running under `almost run`.
    pub runs: Vec<RunInfo>,
    /// The mode restored once the temporary unlocks end.
    pub restore: Option<Mode>,
    /// An offline update prepared for the next boot (filled by `status`).
    #[serde(default)]
    pub offline_update: Option<OfflineUpdate>,
    /// The last commit, if it can be undone (status only).
    #[serde(default)]
    pub undo: Option<UndoInfo>,
    /// A layer whose commit a crash interrupted (status only; the next
    /// privileged run finishes or rolls it back).
    #[serde(default)]
    pub interrupted_commit: Option<String>,
}

impl Report {
    /// A report of these paths alone, in `mode`, with nothing pending: no
    /// timer, run, mode to restore, offline update, undo or interrupted
    /// commit.
    pub fn of_paths(mode: Mode, paths: Vec<PathReport>) -> Report {
        Report {
            mode,
            changed: paths.iter().map(|p| p.changed).sum(),
            paths,
            relock_at: None,
            runs: Vec::new(),
            restore: None,
            offline_update: None,
            undo: None,
            interrupted_commit: None,
        }
    }

    pub fn error_count(&self) -> u64 {
        self.paths.iter().map(|p| p.error_count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The mode is what the counts say: all locked, none locked, or between.
    #[test]
    fn mode_from_counts() {
        assert_eq!(Mode::from_counts(3, 0), Mode::Locked);
        assert_eq!(Mode::from_counts(0, 3), Mode::Unlocked);
        assert_eq!(Mode::from_counts(0, 0), Mode::Unlocked);
        assert_eq!(Mode::from_counts(2, 1), Mode::Partial);
    }

    // The documented JSON words of an offline update.
    #[test]
    fn offline_update_has_the_documented_shape() {
        let u = OfflineUpdate {
            kind: OfflineKind::Upgrade,
            source: OfflineSource::SystemUpdateLink,
        };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"kind":"upgrade","source":"system-update-link"}"#
        );
        let u = OfflineUpdate {
            kind: OfflineKind::Update,
            source: OfflineSource::Packagekit,
        };
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"kind":"update","source":"packagekit"}"#
        );
    }
}
