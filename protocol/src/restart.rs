// SPDX-License-Identifier: GPL-3.0-or-later
//! What needs a restart after an act changed the system files (`layer
//! commit`, `layer undo`, `run`): the running processes that still use a
//! file the act replaced or deleted, each with the systemd unit it runs in.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A running process that still maps (or executes) files the act replaced
/// or deleted: it runs the old code until it is restarted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeedsRestart {
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// The systemd service it runs in (`foo.service`), if any.
    pub unit: Option<String>,
    /// For a user's service: the uid whose service manager (`user@UID`)
    /// runs it; `None` for a system service (or no unit).
    #[serde(default)]
    pub user: Option<u32>,
    /// The replaced or deleted files it uses, inside the root, sorted.
    #[serde(with = "crate::path::list")]
    pub files: Vec<PathBuf>,
}

impl NeedsRestart {
    /// How to restart it, when a unit runs it (`systemctl restart
    /// foo.service`, `systemctl --user -M UID@ restart foo.service`).
    pub fn restart_command(&self) -> Option<String> {
        let unit = self.unit.as_deref()?;
        Some(match self.user {
            Some(uid) => format!("systemctl --user -M {uid}@ restart {unit}"),
            None => format!("systemctl restart {unit}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The documented shape, read back the same; a reader of the shape
    // without `user` (older) reads `None`.
    #[test]
    fn a_process_crosses_in_the_documented_shape() {
        let p = NeedsRestart {
            pid: 42,
            command: "sleep".into(),
            unit: Some("foo.service".into()),
            user: None,
            files: vec!["/usr/bin/sleep".into(), "/usr/lib/lib\u{e9}.so".into()],
        };
        let line = serde_json::to_string(&p).unwrap();
        assert_eq!(
            line,
            r#"{"pid":42,"command":"sleep","unit":"foo.service","user":null,"files":["/usr/bin/sleep","/usr/lib/libé.so"]}"#
        );
        assert_eq!(serde_json::from_str::<NeedsRestart>(&line).unwrap(), p);
        let without: NeedsRestart =
            serde_json::from_str(r#"{"pid":1,"command":"x","unit":null,"files":[]}"#).unwrap();
        assert_eq!(without.user, None);
        assert_eq!(
            p.restart_command().as_deref(),
            Some("systemctl restart foo.service")
        );
        let user = NeedsRestart {
            user: Some(1000),
            ..p
        };
        assert_eq!(
            user.restart_command().as_deref(),
            Some("systemctl --user -M 1000@ restart foo.service")
        );
    }
}
