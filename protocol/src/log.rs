// SPDX-License-Identifier: GPL-3.0-or-later
//! What `almost log` answers: the audit entries (the log's own lines are
//! almost-core's format; these are what a reader gets).

use serde::{Deserialize, Serialize};

/// One privileged act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the act ended (RFC 3339, UTC).
    pub time: String,
    /// The real and effective uid of `almost`.
    pub uid: u32,
    pub euid: u32,
    /// The uid pkexec ran `almost` for.
    pub pkexec_uid: Option<u32>,
    /// The uid sudo ran `almost` for.
    pub sudo_uid: Option<u32>,
    /// The kernel's audit login uid of the session.
    pub login_uid: Option<u32>,
    pub pid: u32,
    /// The command (`lock`, `run`, `config`, …).
    pub command: String,
    /// The whole command line.
    pub argv: Vec<String>,
    /// The paths (inside the root) the act was about.
    pub paths: Vec<String>,
    /// `started`, `ok`, or the error kind.
    pub result: String,
    pub exit_code: i32,
    /// The error message, if any.
    pub message: Option<String>,
    /// The account name of the user the act was done for.
    pub user: Option<String>,
}

/// `log`: the recent entries, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntries {
    pub entries: Vec<LogEntry>,
}
