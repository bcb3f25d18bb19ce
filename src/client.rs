// SPDX-License-Identifier: GPL-3.0-or-later
//! The panel's client of `almost`, and the only place that builds its argv:
//! finds it (next to the panel's executable in a cargo build, the installed
//! path otherwise, never from the environment), runs it (through pkexec for
//! privileged acts unless the panel is root), reads its JSON lines
//! (almost-protocol's [`Event`]) as they come, and turns exit codes into
//! typed errors: pkexec's 126 (dismissed) and 127 (not authorised), and
//! almost's documented kinds. One typed method per read and per act.
//! Everything here blocks: callers run it off the GTK thread (relm4
//! commands).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use almost_protocol::Progress;
use almost_protocol::{
    CommandResult, DefaultMode, Diff, ErrorKind, Event, History, LogEntries, NeedsRestart,
    Overview, Process, Report,
};

use crate::config;

/// pkexec's exit status when the authentication dialog was dismissed.
pub const PKEXEC_DISMISSED: i32 = 126;
/// pkexec's exit status when the user may not run the program.
pub const PKEXEC_NOT_AUTHORISED: i32 = 127;

/// Why a run of `almost` did not give a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlmostError {
    /// The authentication dialog was dismissed (pkexec 126): not an error
    /// worth a dialog.
    Dismissed,
    /// pkexec refused: the user may not do this (127).
    NotAuthorised,
    /// `almost` reported a failure of a documented kind.
    Failed {
        kind: ErrorKind,
        message: String,
        exit_code: i32,
        /// The processes a `busy` refusal names (its pid and command).
        processes: Vec<Process>,
    },
    /// `layer undo COMMIT` refused: later commits touched the same paths
    /// and must be undone first (`commits`, newest first).
    Conflict {
        message: String,
        commits: Vec<String>,
    },
    /// The program could not be started.
    Spawn { program: String, message: String },
    /// `almost` ended without a result it should have printed.
    Protocol { detail: String },
}

impl std::fmt::Display for AlmostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AlmostError::Dismissed => write!(f, "authentication dismissed"),
            AlmostError::NotAuthorised => write!(f, "not authorised"),
            AlmostError::Failed { message, .. } | AlmostError::Conflict { message, .. } => {
                write!(f, "{message}")
            }
            AlmostError::Spawn { program, message } => write!(f, "{program}: {message}"),
            AlmostError::Protocol { detail } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for AlmostError {}

/// The successful answer of one run: the result and any warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub result: CommandResult,
    pub warnings: Vec<String>,
    /// After a commit or an undo: the programs still using files it
    /// replaced or deleted (`None`: not looked for).
    pub restart: Option<Vec<NeedsRestart>>,
}

/// What `status --json` says: the report (mode, counts, timed re-lock,
/// runs, the commit that can be undone, an interrupted commit, a prepared
/// offline update).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub report: Report,
}

/// A result that is not the one the command gives.
fn unexpected(result: &CommandResult) -> AlmostError {
    AlmostError::Protocol {
        detail: format!("unexpected answer: a result of {}", result.command()),
    }
}

/// Where the directory of a new layer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerPath {
    /// Typed: a path inside the root.
    Inside(String),
    /// Picked in the folder chooser: a path of this machine, below the
    /// root's directory (almost maps it).
    Host(PathBuf),
    /// A software change: the layer `layer new --system` makes over what
    /// installing or removing software writes (the managed trees, /etc,
    /// the package manager's state).
    System,
}

impl LayerPath {
    /// The path as the user gave it, for messages.
    pub fn text(&self) -> String {
        match self {
            LayerPath::Inside(p) => p.clone(),
            LayerPath::Host(p) => almost_protocol::path::encode(p),
            LayerPath::System => String::new(),
        }
    }
}

/// One line of output, parsed; `None` for a line that is not an event
/// (a stray log line must not break the panel).
pub fn parse_line(line: &str) -> Option<Event> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    Event::from_line(line).ok()
}

/// Turns the events and the exit status of a run into its outcome.
/// `code` is `None` when the process was killed by a signal.
pub fn outcome(
    events: Vec<Event>,
    code: Option<i32>,
    via_pkexec: bool,
    stderr: &str,
) -> Result<Reply, AlmostError> {
    let mut warnings = Vec::new();
    let mut result = None;
    let mut restart = None;
    let mut error = None;
    for event in events {
        match event {
            Event::Warning { message } => warnings.push(message),
            Event::Result(answer) => {
                restart = answer.restart;
                result = Some(answer.result);
            }
            Event::Error(failure) if failure.kind == ErrorKind::Conflict => {
                error = Some(AlmostError::Conflict {
                    message: failure.message,
                    commits: failure.commits,
                })
            }
            Event::Error(failure) => {
                error = Some(AlmostError::Failed {
                    kind: failure.kind,
                    message: failure.message,
                    exit_code: failure.exit_code,
                    processes: failure.processes,
                })
            }
            Event::Progress(_) => {}
        }
    }
    if let Some(error) = error {
        return Err(error);
    }
    // pkexec's own codes, only when almost itself said nothing.
    if via_pkexec && result.is_none() {
        match code {
            Some(PKEXEC_DISMISSED) => return Err(AlmostError::Dismissed),
            Some(PKEXEC_NOT_AUTHORISED) => return Err(AlmostError::NotAuthorised),
            _ => {}
        }
    }
    let detail = stderr.trim();
    match (code, result) {
        (Some(0), Some(result)) => Ok(Reply {
            result,
            warnings,
            restart,
        }),
        (Some(0), None) => Err(AlmostError::Protocol {
            detail: if detail.is_empty() {
                "almost printed no result".to_owned()
            } else {
                detail.to_owned()
            },
        }),
        (Some(code), _) => Err(AlmostError::Failed {
            kind: ErrorKind::from_exit_code(code).unwrap_or(ErrorKind::Internal),
            message: if detail.is_empty() {
                format!("almost exited with status {code}")
            } else {
                detail.to_owned()
            },
            exit_code: code,
            processes: Vec::new(),
        }),
        (None, _) => Err(AlmostError::Protocol {
            detail: if detail.is_empty() {
                "almost was killed".to_owned()
            } else {
                format!("almost was killed: {detail}")
            },
        }),
    }
}

/// The `almost` this panel talks to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Almost {
    pub exe: PathBuf,
    pub root: Option<PathBuf>,
    /// The panel runs as root: privileged acts need no pkexec.
    pub is_root: bool,
    /// The panel runs in a flatpak sandbox: `almost` is the host's, run
    /// on the host (`flatpak-spawn --host`), reading and writing the
    /// host's trees, which the sandbox cannot see.
    pub on_host: bool,
}

/// The `almost` beside `panel_exe` if there is one (a cargo build), else
/// the installed one.
pub fn locate(panel_exe: Option<&Path>) -> PathBuf {
    if let Some(dir) = panel_exe.and_then(Path::parent) {
        let beside = dir.join("almost");
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from(config::INSTALLED_ALMOST)
}

impl Almost {
    pub fn new(root: Option<PathBuf>) -> Self {
        let on_host = Path::new(config::FLATPAK_INFO).exists();
        let exe = if on_host {
            // The `almost` the flatpak build put beside the panel changes
            // nothing of the host's: the host's own is the one.
            PathBuf::from(config::INSTALLED_ALMOST)
        } else {
            locate(std::env::current_exe().ok().as_deref())
        };
        Almost {
            exe,
            root,
            is_root: nix::unistd::geteuid().is_root(),
            on_host,
        }
    }

    /// The argv of one run:
    /// `[flatpak-spawn --host] [pkexec] almost SUBCOMMAND [--root R] --json ARGS…`.
    /// The subcommand comes right after the program: pkexec chooses the
    /// polkit action by that word, and almost refuses under pkexec a
    /// command line where it is not there.
    fn argv(&self, privileged: bool, args: &[OsString]) -> Vec<OsString> {
        let mut argv = Vec::new();
        if self.on_host {
            argv.push(OsString::from(config::FLATPAK_SPAWN));
            argv.push("--host".into());
        }
        if privileged && !self.is_root {
            argv.push(OsString::from(config::PKEXEC));
        }
        argv.push(self.exe.clone().into_os_string());
        let (subcommand, rest) = args
            .split_first()
            .map_or((None, &[][..]), |(s, r)| (Some(s), r));
        argv.extend(subcommand.cloned());
        if let Some(root) = &self.root {
            argv.push("--root".into());
            argv.push(root.clone().into_os_string());
        }
        argv.push("--json".into());
        argv.extend(rest.iter().cloned());
        argv
    }

    /// Runs `almost` to the end, calling `on_progress` for each progress
    /// event as it arrives.
    fn run(
        &self,
        privileged: bool,
        args: &[OsString],
        mut on_progress: impl FnMut(Progress),
    ) -> Result<Reply, AlmostError> {
        let argv = self.argv(privileged, args);
        let via_pkexec = privileged && !self.is_root;
        tracing::debug!("running {argv:?}");
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| AlmostError::Spawn {
                program: argv[0].to_string_lossy().into_owned(),
                message: e.to_string(),
            })?;
        // stderr is drained on its own thread so a chatty almost never
        // blocks on a full pipe while we wait for stdout.
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                text
            })
        });
        let mut events = Vec::new();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                match parse_line(&line) {
                    Some(Event::Progress(p)) => on_progress(p),
                    Some(event) => events.push(event),
                    None if line.trim().is_empty() => {}
                    None => tracing::debug!("almost said: {line}"),
                }
            }
        }
        let status = child.wait().map_err(|e| AlmostError::Spawn {
            program: argv[0].to_string_lossy().into_owned(),
            message: e.to_string(),
        })?;
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        outcome(events, status.code(), via_pkexec, &stderr)
    }

    fn quiet(&self, privileged: bool, args: &[&str]) -> Result<Reply, AlmostError> {
        self.run(privileged, &words(args), |_| {})
    }

    /// An act, through pkexec (unless the panel is root).
    fn act(
        &self,
        args: Vec<OsString>,
        on_progress: impl FnMut(Progress),
    ) -> Result<Reply, AlmostError> {
        self.run(true, &args, on_progress)
    }

    /// `overview`, unprivileged: the status, the layers and the config in
    /// one run (change counts only when the panel is root, and without an
    /// authentication prompt every poll).
    pub fn overview(&self) -> Result<Overview, AlmostError> {
        match self.quiet(false, &["overview"])?.result {
            CommandResult::Overview(o) => Ok(*o),
            other => Err(unexpected(&other)),
        }
    }

    /// `layer diff --patch`, which needs root.
    pub fn diff(&self, id: &str) -> Result<Diff, AlmostError> {
        match self.quiet(true, &["layer", "diff", "--patch", id])?.result {
            CommandResult::LayerDiff(d) => Ok(d),
            other => Err(unexpected(&other)),
        }
    }

    /// `lock`.
    pub fn lock(&self, on_progress: impl FnMut(Progress)) -> Result<Reply, AlmostError> {
        self.act(words(&["lock"]), on_progress)
    }

    /// `unlock`, for a while or until the next lock (or restart).
    pub fn unlock(
        &self,
        time: Option<Duration>,
        on_progress: impl FnMut(Progress),
    ) -> Result<Reply, AlmostError> {
        let mut args = words(&["unlock"]);
        if let Some(time) = time {
            args.push("--for".into());
            args.push(format!("{}s", time.as_secs().max(1)).into());
        }
        args.push("--yes".into());
        self.act(args, on_progress)
    }

    /// `config set default_mode MODE`.
    pub fn set_default_mode(&self, mode: DefaultMode) -> Result<Reply, AlmostError> {
        self.act(
            words(&["config", "set", "default_mode", mode.as_str()]),
            |_| {},
        )
    }

    /// `layer new [--host] PATH` (almost checks the path and, for a host
    /// path, finds what it names inside the root), or `layer new --system`.
    pub fn new_layer(&self, path: &LayerPath) -> Result<Reply, AlmostError> {
        self.act(new_layer_args(path), |_| {})
    }

    /// `layer commit ID --yes` (the panel reviewed it already).
    pub fn commit(
        &self,
        id: &str,
        on_progress: impl FnMut(Progress),
    ) -> Result<Reply, AlmostError> {
        self.act(words(&["layer", "commit", id, "--yes"]), on_progress)
    }

    /// `layer commit ID --yes --only PATH…`: only the changes the review
    /// kept checked, their paths as `layer diff` gave them (already in
    /// the protocol's encoding, passed as they are); the rest stays in
    /// the layer.
    pub fn commit_only(
        &self,
        id: &str,
        paths: &[String],
        on_progress: impl FnMut(Progress),
    ) -> Result<Reply, AlmostError> {
        self.act(commit_only_args(id, paths), on_progress)
    }

    /// `layer discard ID --yes` (the panel asked already).
    pub fn discard(&self, id: &str) -> Result<Reply, AlmostError> {
        self.act(words(&["layer", "discard", id, "--yes"]), |_| {})
    }

    /// `layer undo --yes` (the panel asked already).
    pub fn undo(&self) -> Result<Reply, AlmostError> {
        self.act(words(&["layer", "undo", "--yes"]), |_| {})
    }

    /// `layer undo COMMIT --yes`: a commit the history lists (the panel
    /// asked already); refused with [`AlmostError::Conflict`] while later
    /// commits touched the same paths.
    pub fn undo_commit(&self, commit: &str) -> Result<Reply, AlmostError> {
        self.act(words(&["layer", "undo", commit, "--yes"]), |_| {})
    }

    /// `layer history`, which needs root (the kept originals are root's):
    /// read only when the user opens the History, never by a poll.
    pub fn history(&self) -> Result<History, AlmostError> {
        match self.quiet(true, &["layer", "history"])?.result {
            CommandResult::LayerHistory(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }

    /// `log -n LINES`, unprivileged: the last privileged acts, oldest
    /// first.
    pub fn log(&self, lines: usize) -> Result<LogEntries, AlmostError> {
        match self
            .quiet(false, &["log", "-n", &lines.to_string()])?
            .result
        {
            CommandResult::Log(l) => Ok(l),
            other => Err(unexpected(&other)),
        }
    }
}

/// The arguments of `layer new` for a path.
fn new_layer_args(path: &LayerPath) -> Vec<OsString> {
    let mut args = words(&["layer", "new"]);
    match path {
        LayerPath::Inside(p) => args.push(p.into()),
        LayerPath::Host(p) => {
            args.push("--host".into());
            args.push(p.clone().into_os_string());
        }
        LayerPath::System => args.push("--system".into()),
    }
    args
}

/// The arguments of [`Almost::commit_only`]: the paths last, after
/// `--only` (each begins with "/", never read as an option).
fn commit_only_args(id: &str, paths: &[String]) -> Vec<OsString> {
    let mut args = words(&["layer", "commit", id, "--yes", "--only"]);
    args.extend(paths.iter().map(OsString::from));
    args
}

fn words(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(lines: &str) -> Vec<Event> {
        lines.lines().filter_map(parse_line).collect()
    }

    #[test]
    fn lines_that_are_not_events_are_ignored() {
        assert_eq!(parse_line("almost: warning on stderr"), None);
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("{not json"), None);
        assert!(matches!(
            parse_line(r#"{"event":"progress","phase":"lock","done":3,"total":10,"path":"/usr"}"#),
            Some(Event::Progress(Progress {
                done: 3,
                total: Some(10),
                ..
            }))
        ));
    }

    // What almost prints for an overview is read into the status, the
    // layers and the config; paths keep their protocol encoding.
    #[test]
    fn an_overview_result_parses() {
        let out = r#"{"event":"progress","phase":"check","done":2,"total":null,"path":"/opt"}
{"event":"result","protocol":1,"command":"overview","status":{"mode":"partial","changed":0,"paths":[{"path":"/usr","mode":"partial","locked":5,"unlocked":2,"skipped":1,"mount_points":[],"errors":[],"error_count":0,"unsupported":null,"read_only":false,"overlays":[]}],"relock_at":1700000000,"runs":[],"restore":"locked","undo":{"id":"ab12","path":"/usr/share","operations":3},"interrupted_commit":"cd34"},"layers":[{"id":"ab12","path":"/usr/\\xff","created":10,"temporary":false,"mounted":true,"changes":3,"size":4096}],"config":{"default_mode":"keep","paths":["/usr"],"exclude":[],"file":"/etc/almost/almost.toml"},"watch":["/r/run/almost/acted"]}"#;
        let reply = outcome(events(out), Some(0), false, "").unwrap();
        let CommandResult::Overview(o) = reply.result else {
            panic!("{:?}", reply.result)
        };
        assert_eq!(o.status.mode, almost_protocol::Mode::Partial);
        assert_eq!(o.status.paths[0].locked, 5);
        assert_eq!(o.status.relock_at, Some(1_700_000_000));
        let undo = o.status.undo.unwrap();
        assert_eq!((undo.id.as_str(), undo.operations), ("ab12", 3));
        assert_eq!(o.status.interrupted_commit.as_deref(), Some("cd34"));
        assert_eq!(o.layers[0].changes, Some(3));
        assert_eq!(o.layers[0].path_text(), "/usr/\\xff");
        assert_eq!(o.config.default_mode, DefaultMode::Keep);
        assert_eq!(o.watch, [PathBuf::from("/r/run/almost/acted")]);
    }

    #[test]
    fn an_error_event_wins_over_the_exit_code() {
        let out = r#"{"event":"warning","message":"w"}
{"event":"error","protocol":1,"kind":"busy","message":"layer 1 over /usr is busy: in use by 42 (sleep)","exit_code":8,"processes":[{"pid":42,"command":"sleep"}]}"#;
        let err = outcome(events(out), Some(8), true, "").unwrap_err();
        assert_eq!(
            err,
            AlmostError::Failed {
                kind: ErrorKind::Busy,
                message: "layer 1 over /usr is busy: in use by 42 (sleep)".into(),
                exit_code: 8,
                // The processes as data, for the panel's own words.
                processes: vec![Process {
                    pid: 42,
                    command: "sleep".into()
                }],
            }
        );
    }

    #[test]
    fn pkexec_codes_mean_dismissed_and_not_authorised() {
        assert_eq!(
            outcome(vec![], Some(126), true, "").unwrap_err(),
            AlmostError::Dismissed
        );
        assert_eq!(
            outcome(vec![], Some(127), true, "Not authorized").unwrap_err(),
            AlmostError::NotAuthorised
        );
        // Without pkexec, 126 is just an unknown failure of almost.
        assert!(matches!(
            outcome(vec![], Some(126), false, "").unwrap_err(),
            AlmostError::Failed {
                kind: ErrorKind::Internal,
                exit_code: 126,
                ..
            }
        ));
    }

    #[test]
    fn a_silent_failure_is_classified_by_its_exit_code() {
        let err = outcome(vec![], Some(3), false, "almost: error: must run as root\n").unwrap_err();
        assert_eq!(
            err,
            AlmostError::Failed {
                kind: ErrorKind::NotRoot,
                message: "almost: error: must run as root".into(),
                exit_code: 3,
                processes: vec![],
            }
        );
        assert!(matches!(
            outcome(vec![], None, false, "").unwrap_err(),
            AlmostError::Protocol { .. }
        ));
        assert!(matches!(
            outcome(vec![], Some(0), false, "").unwrap_err(),
            AlmostError::Protocol { .. }
        ));
    }

    #[test]
    fn argv_goes_through_pkexec_only_when_privileged_and_not_root() {
        let almost = Almost {
            exe: "/x/almost".into(),
            root: Some("/tmp/r".into()),
            is_root: false,
            on_host: false,
        };
        let args = words(&["lock"]);
        let argv = almost.argv(true, &args);
        assert_eq!(
            argv,
            [
                "/usr/bin/pkexec",
                "/x/almost",
                "lock",
                "--root",
                "/tmp/r",
                "--json"
            ]
            .map(OsString::from)
        );
        assert_eq!(almost.argv(false, &args)[0], OsString::from("/x/almost"));
        let root = Almost {
            is_root: true,
            root: None,
            ..almost
        };
        assert_eq!(
            root.argv(true, &args),
            ["/x/almost", "lock", "--json"].map(OsString::from)
        );
    }

    #[test]
    fn from_a_flatpak_almost_runs_on_the_host() {
        let almost = Almost {
            exe: config::INSTALLED_ALMOST.into(),
            root: None,
            is_root: false,
            on_host: true,
        };
        let args = words(&["unlock", "--yes"]);
        assert_eq!(
            almost.argv(true, &args),
            [
                "/usr/bin/flatpak-spawn",
                "--host",
                "/usr/bin/pkexec",
                "/usr/bin/almost",
                "unlock",
                "--json",
                "--yes"
            ]
            .map(OsString::from)
        );
        // Reading the state too: the sandbox does not see the host's /usr.
        assert_eq!(
            almost.argv(false, &words(&["status"])),
            [
                "/usr/bin/flatpak-spawn",
                "--host",
                "/usr/bin/almost",
                "status",
                "--json"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn the_almost_beside_the_panel_is_preferred() {
        let dir = tempfile::tempdir().unwrap();
        let panel = dir.path().join("almost-panel");
        assert_eq!(
            locate(Some(&panel)),
            PathBuf::from(config::INSTALLED_ALMOST)
        );
        std::fs::write(dir.path().join("almost"), "").unwrap();
        assert_eq!(locate(Some(&panel)), dir.path().join("almost"));
        assert_eq!(locate(None), PathBuf::from(config::INSTALLED_ALMOST));
    }

    #[test]
    fn progress_fraction() {
        let p = Progress {
            phase: almost_protocol::Phase::Lock,
            done: 50,
            total: Some(200),
            path: None,
        };
        assert_eq!(p.fraction(), Some(0.25));
        assert_eq!(
            Progress {
                total: None,
                ..p.clone()
            }
            .fraction(),
            None
        );
        assert_eq!(
            Progress {
                total: Some(0),
                ..p
            }
            .fraction(),
            None
        );
    }

    // A diff result parses into the typed diff.
    #[test]
    fn a_diff_parses() {
        let out = r#"{"event":"result","protocol":1,"command":"layer diff","id":"ab12","path":"/usr/share","changes":[{"path":"/usr/share/a","change":"added","type":"file","old_type":null,"old_size":null,"new_size":3,"old_hash":null,"new_hash":"x","detail":null,"binary":false,"patch":null}]}"#;
        let reply = outcome(events(out), Some(0), false, "").unwrap();
        let CommandResult::LayerDiff(diff) = reply.result else {
            panic!()
        };
        assert_eq!(diff.changes.len(), 1);
        assert_eq!(diff.changes[0].path, Path::new("/usr/share/a"));
    }

    // A refused undo of an older commit names the later commits as data
    // (for the panel's own words), and a commit's answer carries the
    // programs to restart.
    #[test]
    fn a_conflict_names_its_commits_and_a_result_its_restarts() {
        let out = r#"{"event":"error","protocol":1,"kind":"conflict","message":"commit ab touched /usr/a after cd","exit_code":13,"commits":["ef","ab"]}"#;
        assert_eq!(
            outcome(events(out), Some(13), true, "").unwrap_err(),
            AlmostError::Conflict {
                message: "commit ab touched /usr/a after cd".into(),
                commits: vec!["ef".into(), "ab".into()],
            }
        );
        let out = r#"{"event":"result","protocol":1,"command":"layer undo","id":"cd","path":"/usr","applied":1,"outcome":"undone","restart":[{"pid":7,"command":"sleep","unit":"foo.service","user":null,"files":["/usr/bin/sleep"]}]}"#;
        let reply = outcome(events(out), Some(0), true, "").unwrap();
        let restart = reply.restart.unwrap();
        assert_eq!(
            (restart[0].pid, restart[0].unit.as_deref()),
            (7, Some("foo.service"))
        );
        // Not looked for: none.
        let out = r#"{"event":"result","protocol":1,"command":"log","entries":[]}"#;
        assert_eq!(
            outcome(events(out), Some(0), false, "").unwrap().restart,
            None
        );
    }

    // The history is read through pkexec (root's data), the log without
    // it; an undo names its commit.
    #[test]
    fn history_log_and_undo_of_a_commit_have_their_arguments() {
        let almost = Almost {
            exe: "/x/almost".into(),
            root: None,
            is_root: false,
            on_host: false,
        };
        assert_eq!(
            almost.argv(true, &words(&["layer", "history"])),
            words(&["/usr/bin/pkexec", "/x/almost", "layer", "--json", "history"])
        );
        assert_eq!(
            almost.argv(false, &words(&["log", "-n", "50"])),
            words(&["/x/almost", "log", "--json", "-n", "50"])
        );
        assert_eq!(
            almost.argv(true, &words(&["layer", "undo", "ab12", "--yes"]))[1..],
            words(&["/x/almost", "layer", "--json", "undo", "ab12", "--yes"])
        );
        // A selective commit: the paths after --only, as layer diff gave
        // them (an encoded name passes as it is).
        assert_eq!(
            almost.argv(
                true,
                &commit_only_args("ab12", &["/usr/a".into(), "/usr/b\\xff".into()])
            )[1..],
            words(&[
                "/x/almost",
                "layer",
                "--json",
                "commit",
                "ab12",
                "--yes",
                "--only",
                "/usr/a",
                "/usr/b\\xff"
            ])
        );
    }

    // Each act's argv: the subcommand first, then --root and --json, then
    // its arguments; a chosen folder goes as a host path.
    #[test]
    fn each_act_has_its_arguments() {
        let almost = Almost {
            exe: "/x/almost".into(),
            root: None,
            is_root: true,
            on_host: false,
        };
        let argv = |args: Vec<OsString>| almost.argv(true, &args);
        let tail = |v: Vec<OsString>| v[1..].to_vec();
        assert_eq!(
            tail(argv(words(&["unlock", "--for", "600s", "--yes"]))),
            words(&["unlock", "--json", "--for", "600s", "--yes"])
        );
        let host = new_layer_args(&LayerPath::Host("/tmp/r/usr/lib".into()));
        assert_eq!(
            tail(argv(host)),
            words(&["layer", "--json", "new", "--host", "/tmp/r/usr/lib"])
        );
        // A software change: the system layer.
        assert_eq!(
            tail(argv(new_layer_args(&LayerPath::System))),
            words(&["layer", "--json", "new", "--system"])
        );
        assert_eq!(
            new_layer_args(&LayerPath::Inside("/usr/share".into())),
            words(&["layer", "new", "/usr/share"])
        );
    }
}
