// SPDX-License-Identifier: GPL-3.0-or-later
//! The lines of `almost --json`: [`Event`]. A run prints any number of
//! progress and warning events, then one result or one error.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigValue};
use crate::error::ErrorKind;
use crate::history::History;
use crate::layer::{CommitReport, Diff, Layer, LayerCommit, LayerList, LayerRef, NewLayer};
use crate::log::LogEntries;
use crate::status::Report;

/// What a long act is doing while it reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Reading the flags (`status`).
    Check,
    Lock,
    Unlock,
    /// Restoring the mode from before a temporary unlock.
    Restore,
    /// Committing a layer.
    Commit,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Check => "check",
            Phase::Lock => "lock",
            Phase::Unlock => "unlock",
            Phase::Restore => "restore",
            Phase::Commit => "commit",
        }
    }
}

/// How far a long act is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    /// `None` while unknown.
    pub total: Option<u64>,
    /// The tree being walked (encoded as [`crate::path`] says).
    pub path: Option<String>,
}

impl Progress {
    /// Fraction done, when the total is known.
    pub fn fraction(&self) -> Option<f64> {
        self.total
            .filter(|t| *t > 0)
            .map(|t| (self.done.min(t) as f64) / (t as f64))
    }
}

/// A process that keeps something in use (a `busy` layer's mount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.pid, self.command)
    }
}

/// The final line of a run that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub protocol: u32,
    pub kind: ErrorKind,
    pub message: String,
    pub exit_code: i32,
    /// `busy` because processes use a layer: those processes, for a
    /// reader that names them in its own words (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<Process>,
    /// `conflict`: the later commits to undo first, newest first (absent
    /// otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: String) -> Failure {
        Failure {
            protocol: crate::VERSION,
            kind,
            message,
            exit_code: kind.exit_code(),
            processes: Vec::new(),
            commits: Vec::new(),
        }
    }
}

/// The final line of a run that succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub protocol: u32,
    #[serde(flatten)]
    pub result: CommandResult,
    /// After an act that changed the system files (`layer commit`, `layer
    /// undo`, `run`): the running processes that still use files it
    /// replaced or deleted, in the result as its `restart` field. Absent
    /// when not looked for (other commands, a commit left to the boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Vec<crate::restart::NeedsRestart>>,
}

impl From<CommandResult> for Answer {
    fn from(result: CommandResult) -> Answer {
        Answer {
            protocol: crate::VERSION,
            result,
            restart: None,
        }
    }
}

/// Everything the window shows, read at once (`almost overview`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    pub status: Report,
    pub layers: Vec<Layer>,
    pub config: Config,
    /// Files on the host (the root's own path included) that change when
    /// an act of `almost` ends or the configuration is edited: a reader
    /// that watches them need not poll as often.
    #[serde(with = "crate::path::list")]
    pub watch: Vec<PathBuf>,
}

/// `run`: the command's exit status, as `almost run` exits with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    pub exit_code: i32,
}

/// The result of each command, tagged by `"command"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command")]
pub enum CommandResult {
    #[serde(rename = "status")]
    Status(Report),
    #[serde(rename = "lock")]
    Lock(Report),
    #[serde(rename = "unlock")]
    Unlock(Report),
    #[serde(rename = "enter")]
    Enter(Report),
    #[serde(rename = "boot")]
    Boot(Report),
    #[serde(rename = "package-remove")]
    PackageRemove(Report),
    #[serde(rename = "overview")]
    Overview(Box<Overview>),
    #[serde(rename = "run")]
    Run(RunResult),
    /// `config show` and `config set`.
    #[serde(rename = "config")]
    Config(Config),
    #[serde(rename = "config get")]
    ConfigGet(ConfigValue),
    #[serde(rename = "log")]
    Log(LogEntries),
    #[serde(rename = "layer new")]
    LayerNew(NewLayer),
    #[serde(rename = "layer list")]
    LayerList(LayerList),
    #[serde(rename = "layer diff")]
    LayerDiff(Diff),
    #[serde(rename = "layer commit")]
    LayerCommit(LayerCommit),
    #[serde(rename = "layer discard")]
    LayerDiscard(LayerRef),
    #[serde(rename = "layer mount")]
    LayerMount(LayerRef),
    #[serde(rename = "layer undo")]
    LayerUndo(CommitReport),
    #[serde(rename = "layer history")]
    LayerHistory(History),
}

impl CommandResult {
    /// The `"command"` word.
    pub fn command(&self) -> &'static str {
        match self {
            CommandResult::Status(_) => "status",
            CommandResult::Lock(_) => "lock",
            CommandResult::Unlock(_) => "unlock",
            CommandResult::Enter(_) => "enter",
            CommandResult::Boot(_) => "boot",
            CommandResult::PackageRemove(_) => "package-remove",
            CommandResult::Overview(_) => "overview",
            CommandResult::Run(_) => "run",
            CommandResult::Config(_) => "config",
            CommandResult::ConfigGet(_) => "config get",
            CommandResult::Log(_) => "log",
            CommandResult::LayerNew(_) => "layer new",
            CommandResult::LayerList(_) => "layer list",
            CommandResult::LayerDiff(_) => "layer diff",
            CommandResult::LayerCommit(_) => "layer commit",
            CommandResult::LayerDiscard(_) => "layer discard",
            CommandResult::LayerMount(_) => "layer mount",
            CommandResult::LayerUndo(_) => "layer undo",
            CommandResult::LayerHistory(_) => "layer history",
        }
    }

    /// The measured state, for the results that carry one.
    pub fn report(&self) -> Option<&Report> {
        match self {
            CommandResult::Status(r)
            | CommandResult::Lock(r)
            | CommandResult::Unlock(r)
            | CommandResult::Enter(r)
            | CommandResult::Boot(r)
            | CommandResult::PackageRemove(r) => Some(r),
            CommandResult::Overview(o) => Some(&o.status),
            _ => None,
        }
    }
}

/// One line of `almost --json` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    Progress(Progress),
    Warning { message: String },
    Result(Box<Answer>),
    Error(Failure),
}

impl Event {
    pub fn result(result: CommandResult) -> Event {
        Event::Result(Box::new(result.into()))
    }

    pub fn error(kind: ErrorKind, message: String) -> Event {
        Event::Error(Failure::new(kind, message))
    }

    /// The line (no newline). Serialising these types cannot fail: they
    /// hold no map with non-string keys and no value serde refuses.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"event\":\"error\",\"protocol\":{},\"kind\":\"internal\",\"message\":{:?},\"exit_code\":1}}",
                crate::VERSION,
                e.to_string()
            )
        })
    }

    pub fn from_line(line: &str) -> serde_json::Result<Event> {
        serde_json::from_str(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Mode, PathReport};

    // Progress, errors and results have the documented shape, and a line
    // read back is the event written.
    #[test]
    fn events_round_trip_in_the_documented_shape() {
        let progress = Event::Progress(Progress {
            phase: Phase::Lock,
            done: 5,
            total: None,
            path: Some("/usr".into()),
        });
        let line = progress.to_line();
        assert_eq!(
            line,
            r#"{"event":"progress","phase":"lock","done":5,"total":null,"path":"/usr"}"#
        );
        assert_eq!(Event::from_line(&line).unwrap(), progress);
        let error = Event::error(ErrorKind::NotRoot, "m".into());
        assert_eq!(
            error.to_line(),
            r#"{"event":"error","protocol":1,"kind":"not-root","message":"m","exit_code":3}"#
        );
        assert_eq!(Event::from_line(&error.to_line()).unwrap(), error);
        // A busy layer's error names its processes; read back the same.
        let mut busy = Failure::new(ErrorKind::Busy, "m".into());
        busy.processes.push(Process {
            pid: 12,
            command: "bash".into(),
        });
        let line = Event::Error(busy.clone()).to_line();
        assert_eq!(
            line,
            r#"{"event":"error","protocol":1,"kind":"busy","message":"m","exit_code":8,"processes":[{"pid":12,"command":"bash"}]}"#
        );
        assert_eq!(Event::from_line(&line).unwrap(), Event::Error(busy));
        let report = Report::of_paths(Mode::Locked, vec![PathReport::new("/usr")]);
        let result = Event::result(CommandResult::Lock(report));
        let line = result.to_line();
        assert!(
            line.starts_with(r#"{"event":"result","protocol":1,"command":"lock","mode":"locked""#),
            "{line}"
        );
        assert_eq!(Event::from_line(&line).unwrap(), result);
    }

    // Two results of one shape under two commands stay apart; each command
    // word is the one `command()` gives.
    #[test]
    fn the_command_word_chooses_the_result() {
        let cases = [
            CommandResult::Status(Report::of_paths(Mode::Unlocked, vec![])),
            CommandResult::Unlock(Report::of_paths(Mode::Unlocked, vec![])),
            CommandResult::ConfigGet(ConfigValue {
                key: "paths".into(),
                value: vec!["/usr".into()],
            }),
            CommandResult::LayerDiscard(LayerRef {
                id: "ab".into(),
                path: "/usr".into(),
                paths: vec!["/usr".into(), "/etc".into()],
                at_boot: true,
            }),
            CommandResult::Run(RunResult { exit_code: 3 }),
        ];
        for case in cases {
            let line = Event::result(case.clone()).to_line();
            assert!(
                line.contains(&format!(r#""command":"{}""#, case.command())),
                "{line}"
            );
            match Event::from_line(&line).unwrap() {
                Event::Result(answer) => assert_eq!(answer.result, case),
                other => panic!("{other:?}"),
            }
        }
    }

    // A name that is not UTF-8 crosses the protocol as its escape and
    // comes back as the same bytes: \xff and \xfe stay two names.
    #[test]
    fn paths_that_are_not_utf8_cross_unambiguously() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let change = |name: &[u8]| crate::layer::Change {
            path: std::path::Path::new("/usr").join(OsStr::from_bytes(name)),
            change: crate::layer::ChangeKind::Added,
            kind: crate::layer::EntryType::File,
            old_type: None,
            old_size: None,
            new_size: Some(1),
            old_hash: None,
            new_hash: None,
            detail: None,
            meta: Default::default(),
            binary: false,
            patch: None,
        };
        let diff = CommandResult::LayerDiff(Diff {
            id: "ab".into(),
            path: "/usr".into(),
            paths: vec!["/usr".into()],
            changes: vec![change(b"\xff"), change(b"\xfe")],
        });
        let line = Event::result(diff.clone()).to_line();
        assert!(line.contains(r#""path":"/usr/\\xff""#), "{line}");
        assert!(line.contains(r#""path":"/usr/\\xfe""#), "{line}");
        match Event::from_line(&line).unwrap() {
            Event::Result(answer) => assert_eq!(answer.result, diff),
            other => panic!("{other:?}"),
        }
    }

    // A layer has every directory it covers in `paths` (`path`, the first,
    // stays for older clients); an older almost's answer without `paths`
    // reads as a layer over `path` alone.
    #[test]
    fn a_layer_lists_its_directories() {
        let line = r#"{"event":"result","protocol":1,"command":"layer list","layers":[
            {"id":"ab","path":"/usr","paths":["/usr","/etc"],"system":true,"created":1,
             "temporary":false,"mounted":true,"changes":null,"size":0},
            {"id":"cd","path":"/opt","created":1,"temporary":false,"mounted":false,
             "changes":2,"size":9}]}"#
            .replace('\n', "");
        let Event::Result(answer) = Event::from_line(&line).unwrap() else {
            panic!("not a result");
        };
        let CommandResult::LayerList(list) = answer.result else {
            panic!("not a list");
        };
        let parts: Vec<Vec<String>> = list
            .layers
            .iter()
            .map(|l| l.parts().iter().map(|p| p.display().to_string()).collect())
            .collect();
        assert_eq!(parts, vec![vec!["/usr", "/etc"], vec!["/opt"]]);
        assert!(list.layers[0].system && !list.layers[1].system);
        assert_eq!(list.layers[0].paths_text(), "/usr, /etc");
    }

    // The processes to restart cross as the result's `restart` field
    // (after the command's own fields); a result without it reads as not
    // looked for, one with an empty list as nothing to restart.
    #[test]
    fn the_restart_list_is_a_field_of_the_result() {
        let mut answer = Answer::from(CommandResult::Run(RunResult { exit_code: 0 }));
        let line = Event::Result(Box::new(answer.clone())).to_line();
        assert_eq!(
            line,
            r#"{"event":"result","protocol":1,"command":"run","exit_code":0}"#
        );
        answer.restart = Some(vec![crate::restart::NeedsRestart {
            pid: 7,
            command: "sleep".into(),
            unit: None,
            user: None,
            files: vec!["/usr/bin/sleep".into()],
        }]);
        let line = Event::Result(Box::new(answer.clone())).to_line();
        assert_eq!(
            line,
            r#"{"event":"result","protocol":1,"command":"run","exit_code":0,"restart":[{"pid":7,"command":"sleep","unit":null,"user":null,"files":["/usr/bin/sleep"]}]}"#
        );
        match Event::from_line(&line).unwrap() {
            Event::Result(read) => assert_eq!(*read, answer),
            other => panic!("{other:?}"),
        }
        let none = r#"{"event":"result","protocol":1,"command":"run","exit_code":0,"restart":[]}"#;
        match Event::from_line(none).unwrap() {
            Event::Result(read) => assert_eq!(read.restart, Some(vec![])),
            other => panic!("{other:?}"),
        }
    }

    // A line that is not one of these events is refused, not guessed at.
    #[test]
    fn an_unknown_command_or_event_is_an_error() {
        assert!(Event::from_line(r#"{"event":"result","protocol":1,"command":"nope"}"#).is_err());
        assert!(Event::from_line(r#"{"event":"nope"}"#).is_err());
    }
}
