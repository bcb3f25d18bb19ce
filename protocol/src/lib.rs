// SPDX-License-Identifier: GPL-3.0-or-later
//! The protocol between `almost --json` and its callers (the panel, the
//! Ansible modules): serde types only, no engine. `almost --json` prints one
//! [`Event`] per line: progress, warnings, and at the end one result (a
//! [`CommandResult`], tagged by `"command"`) or one error, each result and
//! error carrying [`VERSION`] as `"protocol"`.
//!
//! The on-disk formats (`layer.json`, the commit journal, `state.json`)
//! stay private to almost-core; these types are what crosses a process
//! boundary, and `almost` converts core's types into them. Paths cross as
//! the strings of [`path`]: every byte of a name unambiguous, valid UTF-8
//! as itself.

pub mod config;
pub mod error;
pub mod event;
pub mod history;
pub mod layer;
pub mod log;
pub mod path;
pub mod restart;
pub mod status;

pub use config::{Config, ConfigValue, DefaultMode};
pub use error::ErrorKind;
pub use event::{
    Answer, CommandResult, Event, Failure, Overview, Phase, Process, Progress, RunResult,
};
pub use history::{History, HistoryEntry};
pub use layer::{
    AtBoot, Change, ChangeKind, CommitReport, Diff, EntryType, Layer, LayerCommit, LayerList,
    LayerRef, NewLayer,
};
pub use log::{LogEntries, LogEntry};
pub use restart::NeedsRestart;
pub use status::{
    EntryError, Mode, OfflineKind, OfflineSource, OfflineUpdate, PathReport, Report, RunInfo,
    UndoInfo,
};

/// The version of the protocol, in every result and error as `"protocol"`.
/// It changes when a field changes meaning or goes away (adding a field
/// does not change it: readers ignore fields they do not know).
pub const VERSION: u32 = 1;
