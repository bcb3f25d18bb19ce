// SPDX-License-Identifier: GPL-3.0-or-later
//! What `layer history` answers: the commits that can still be undone,
//! newest first, each with who made it, what it changed and the space its
//! kept originals take.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One commit that `almost layer undo COMMIT` can take back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The commit's id (the id its layer had).
    pub id: String,
    /// When it was committed (RFC 3339, UTC).
    pub time: String,
    /// The user it was committed for: pkexec's or sudo's caller, else the
    /// uid `almost` ran as. `None` for undo data an older almost left
    /// (it did not record who).
    pub uid: Option<u32>,
    /// That user's account name, when the system has one.
    pub user: Option<String>,
    /// Every directory the layer covered.
    #[serde(with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    /// Entries the commit added, changed (content, metadata, replaced) and
    /// deleted.
    pub added: u64,
    pub changed: u64,
    pub deleted: u64,
    /// Bytes the kept originals take on disk (allocated blocks, each inode
    /// once, as `du` counts).
    pub size: u64,
}

/// `layer history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Newest first; the first is what `layer undo` takes back by default.
    pub commits: Vec<HistoryEntry>,
    /// The sum of their sizes.
    pub size: u64,
    /// `keep_commits`: how many commits keep their undo data.
    pub keep: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The documented shape, read back the same.
    #[test]
    fn history_crosses_in_the_documented_shape() {
        let h = History {
            commits: vec![HistoryEntry {
                id: "0a1b2c3d".into(),
                time: "2026-12-02T05:00:00Z".into(),
                uid: Some(1000),
                user: Some("alice".into()),
                paths: vec!["/usr/lib".into(), "/etc".into()],
                added: 2,
                changed: 1,
                deleted: 0,
                size: 8192,
            }],
            size: 8192,
            keep: 10,
        };
        let line = serde_json::to_string(&h).unwrap();
        assert_eq!(
            line,
            r#"{"commits":[{"id":"0a1b2c3d","time":"2026-12-02T05:00:00Z","uid":1000,"user":"alice","paths":["/usr/lib","/etc"],"added":2,"changed":1,"deleted":0,"size":8192}],"size":8192,"keep":10}"#
        );
        assert_eq!(serde_json::from_str::<History>(&line).unwrap(), h);
        // As the result of `layer history`, tagged by its command.
        let event = crate::Event::result(crate::CommandResult::LayerHistory(h));
        let line = event.to_line();
        assert!(
            line.starts_with(
                r#"{"event":"result","protocol":1,"command":"layer history","commits":["#
            ),
            "{line}"
        );
        assert_eq!(crate::Event::from_line(&line).unwrap(), event);
    }

    // A conflict names the later commits (exit 13); a reader of an error
    // without `commits` (another kind, an older almost) reads none.
    #[test]
    fn a_conflict_names_the_later_commits() {
        let mut failure = crate::Failure::new(crate::ErrorKind::Conflict, "m".into());
        failure.commits = vec!["c3".into(), "c2".into()];
        let line = crate::Event::Error(failure.clone()).to_line();
        assert_eq!(
            line,
            r#"{"event":"error","protocol":1,"kind":"conflict","message":"m","exit_code":13,"commits":["c3","c2"]}"#
        );
        assert_eq!(
            crate::Event::from_line(&line).unwrap(),
            crate::Event::Error(failure)
        );
        let other: crate::Failure =
            serde_json::from_str(r#"{"protocol":1,"kind":"busy","message":"m","exit_code":8}"#)
                .unwrap();
        assert!(other.commits.is_empty());
    }
}
