// SPDX-License-Identifier: GPL-3.0-or-later
//! The stable kinds of failure and their exit codes. almost-core maps each
//! of its errors to one of these; the panel turns them into headlines.

use serde::{Deserialize, Serialize};

/// The stable classes of failure. Their numbers are the exit codes of
/// `almost` (documented in docs/almost.md) and must never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    Internal,
    Usage,
    NotRoot,
    Config,
    InvalidPath,
    Partial,
    Unsupported,
    Busy,
    Locked,
    Cancelled,
    NoSpace,
    /// Refused under pkexec: a command that has no polkit action of its
    /// own (`run` executes a program of the caller's choosing), or a
    /// command line whose subcommand is not where pkexec looked for it.
    Forbidden,
    /// `layer undo COMMIT` of an older commit that later commits touched
    /// the same paths as: those must be undone first (the error's
    /// `commits` names them, newest first).
    Conflict,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Internal,
        ErrorKind::Usage,
        ErrorKind::NotRoot,
        ErrorKind::Config,
        ErrorKind::InvalidPath,
        ErrorKind::Partial,
        ErrorKind::Unsupported,
        ErrorKind::Busy,
        ErrorKind::Locked,
        ErrorKind::Cancelled,
        ErrorKind::NoSpace,
        ErrorKind::Forbidden,
        ErrorKind::Conflict,
    ];

    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NotRoot => 3,
            ErrorKind::Config => 4,
            ErrorKind::InvalidPath => 5,
            ErrorKind::Partial => 6,
            ErrorKind::Unsupported => 7,
            ErrorKind::Busy => 8,
            ErrorKind::Locked => 9,
            ErrorKind::Cancelled => 10,
            ErrorKind::NoSpace => 11,
            ErrorKind::Forbidden => 12,
            ErrorKind::Conflict => 13,
        }
    }

    pub fn from_exit_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.exit_code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Internal => "internal",
            ErrorKind::Usage => "usage",
            ErrorKind::NotRoot => "not-root",
            ErrorKind::Config => "config",
            ErrorKind::InvalidPath => "invalid-path",
            ErrorKind::Partial => "partial",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Busy => "busy",
            ErrorKind::Locked => "locked",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::NoSpace => "no-space",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Conflict => "conflict",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each kind has its own exit code, found back from the code, and its
    // JSON word is the documented one.
    #[test]
    fn exit_codes_are_distinct_and_round_trip() {
        let kinds = ErrorKind::ALL;
        let mut codes: Vec<i32> = kinds.iter().map(|k| k.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), kinds.len());
        for k in kinds {
            assert_eq!(ErrorKind::from_exit_code(k.exit_code()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(ErrorKind::from_exit_code(0), None);
    }
}
