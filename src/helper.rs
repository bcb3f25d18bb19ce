// SPDX-License-Identifier: GPL-3.0-or-later
//! Runs `almost`: finds it (next to the panel's executable in a cargo build,
//! the installed path otherwise, never from the environment), builds argv
//! vectors (through pkexec for privileged acts unless the panel is root),
//! reads its JSON lines (`almost_core::protocol::Event`) as they come, and
//! turns exit codes into typed errors: pkexec's 126 (dismissed) and 127
//! (not authorised), and almost's documented kinds. Everything here blocks:
//! callers run it off the GTK thread (relm4 commands).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use almost_core::ErrorKind;
use almost_core::config::DefaultMode;
use almost_core::layer::LayerInfo;
use almost_core::layer::diff::Change;
use almost_core::protocol::{Event, Report};
use serde::Deserialize;

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
            AlmostError::Failed { message, .. } => write!(f, "{message}"),
            AlmostError::Spawn { program, message } => write!(f, "{program}: {message}"),
            AlmostError::Protocol { detail } => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for AlmostError {}

/// A progress event of a long act (lock, unlock, commit…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub phase: String,
    pub done: u64,
    pub total: Option<u64>,
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

/// The successful answer of one run: the result event and any warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub command: String,
    pub body: serde_json::Map<String, serde_json::Value>,
    pub warnings: Vec<String>,
}

impl Reply {
    /// The result body as a typed value.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, AlmostError> {
        serde_json::from_value(serde_json::Value::Object(self.body.clone())).map_err(|e| {
            AlmostError::Protocol {
                detail: format!("unexpected answer to {}: {e}", self.command),
            }
        })
    }
}

/// What `status --json` says: the report (mode, counts, timed re-lock,
/// runs, the commit that can be undone, an interrupted commit, a prepared
/// offline update).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub report: Report,
}

/// What the panel uses of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PanelConfig {
    pub default_mode: DefaultMode,
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub exclude: Vec<PathBuf>,
}

/// The changes of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Diff {
    pub id: String,
    pub path: PathBuf,
    pub changes: Vec<Change>,
}

#[derive(Deserialize)]
struct LayerList {
    layers: Vec<LayerInfo>,
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
    let mut error = None;
    for event in events {
        match event {
            Event::Warning { message } => warnings.push(message),
            Event::Result { command, body } => result = Some((command, body)),
            Event::Error {
                kind,
                message,
                exit_code,
            } => {
                error = Some(AlmostError::Failed {
                    kind,
                    message,
                    exit_code,
                })
            }
            Event::Progress { .. } => {}
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
        (Some(0), Some((command, body))) => Ok(Reply {
            command,
            body,
            warnings,
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
    pub fn argv(&self, privileged: bool, args: &[String]) -> Vec<OsString> {
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
        argv.extend(subcommand.map(OsString::from));
        if let Some(root) = &self.root {
            argv.push("--root".into());
            argv.push(root.clone().into_os_string());
        }
        argv.push("--json".into());
        argv.extend(rest.iter().map(OsString::from));
        argv
    }

    /// Runs `almost` to the end, calling `on_progress` for each progress
    /// event as it arrives.
    pub fn run(
        &self,
        privileged: bool,
        args: &[String],
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
                    Some(Event::Progress {
                        phase,
                        done,
                        total,
                        path,
                    }) => on_progress(Progress {
                        phase,
                        done,
                        total,
                        path,
                    }),
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
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        self.run(privileged, &args, |_| {})
    }

    /// `status`, unprivileged (flags are readable by anyone).
    pub fn status(&self) -> Result<Status, AlmostError> {
        let reply = self.quiet(false, &["status"])?;
        Ok(Status {
            report: reply.parse()?,
        })
    }

    /// `config show`, unprivileged.
    pub fn config(&self) -> Result<PanelConfig, AlmostError> {
        self.quiet(false, &["config", "show"])?.parse()
    }

    /// `layer list`: with change counts when the panel is root, without
    /// them (and without an authentication prompt every poll) otherwise.
    pub fn layers(&self) -> Result<Vec<LayerInfo>, AlmostError> {
        let list: LayerList = self.quiet(false, &["layer", "list"])?.parse()?;
        Ok(list.layers)
    }

    /// `layer diff --patch`, which needs root.
    pub fn diff(&self, id: &str) -> Result<Diff, AlmostError> {
        self.quiet(true, &["layer", "diff", "--patch", id])?.parse()
    }
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
            Some(Event::Progress {
                done: 3,
                total: Some(10),
                ..
            })
        ));
    }

    #[test]
    fn a_status_result_parses_into_a_report() {
        let out = r#"{"event":"result","command":"status","mode":"partial","changed":0,"paths":[{"path":"/usr","mode":"partial","locked":5,"unlocked":2,"skipped":1,"mount_points":[],"errors":[],"error_count":0,"unsupported":null,"read_only":false,"overlays":[]}],"relock_at":1700000000,"runs":[],"restore":"locked"}"#;
        let reply = outcome(events(out), Some(0), false, "").unwrap();
        let report: Report = reply.parse().unwrap();
        assert_eq!(report.mode, almost_core::protocol::Mode::Partial);
        assert_eq!(report.paths[0].locked, 5);
        assert_eq!(report.relock_at, Some(1_700_000_000));
        assert_eq!(report.undo, None);
        assert_eq!(report.interrupted_commit, None);
        assert_eq!(report.offline_update, None);
    }

    #[test]
    fn a_status_says_what_can_be_undone_and_what_was_interrupted() {
        let out = r#"{"event":"result","command":"status","mode":"locked","changed":0,"paths":[],"relock_at":null,"runs":[],"restore":null,"undo":{"id":"ab12","path":"/usr/share","operations":3},"interrupted_commit":"cd34"}"#;
        let reply = outcome(events(out), Some(0), false, "").unwrap();
        let report: Report = reply.parse().unwrap();
        let undo = report.undo.unwrap();
        assert_eq!(
            (undo.id.as_str(), undo.path.as_str(), undo.operations),
            ("ab12", "/usr/share", 3)
        );
        assert_eq!(report.interrupted_commit.as_deref(), Some("cd34"));
    }

    #[test]
    fn an_error_event_wins_over_the_exit_code() {
        let out = r#"{"event":"warning","message":"w"}
{"event":"error","kind":"busy","message":"layer 1 over /usr is busy: in use by 42 (sleep)","exit_code":8}"#;
        let err = outcome(events(out), Some(8), true, "").unwrap_err();
        assert_eq!(
            err,
            AlmostError::Failed {
                kind: ErrorKind::Busy,
                message: "layer 1 over /usr is busy: in use by 42 (sleep)".into(),
                exit_code: 8
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
                exit_code: 3
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
        let args = vec!["lock".to_owned()];
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
        let args = vec!["unlock".to_owned(), "--yes".to_owned()];
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
            almost.argv(false, &["status".to_owned()]),
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
            phase: "lock".into(),
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

    #[test]
    fn a_layer_list_and_a_diff_parse() {
        let out = r#"{"event":"result","command":"layer list","layers":[{"id":"ab12","path":"/usr/share","created":10,"temporary":false,"was_locked":true,"mounted":true,"changes":3,"size":4096}]}"#;
        let reply = outcome(events(out), Some(0), false, "").unwrap();
        let list: LayerList = reply.parse().unwrap();
        assert_eq!(list.layers[0].meta.id, "ab12");
        assert_eq!(list.layers[0].changes, Some(3));
        let out = r#"{"event":"result","command":"layer diff","id":"ab12","path":"/usr/share","changes":[{"path":"/usr/share/a","change":"added","type":"file","old_type":null,"old_size":null,"new_size":3,"old_hash":null,"new_hash":"x","detail":null,"binary":false,"patch":null}]}"#;
        let diff: Diff = outcome(events(out), Some(0), false, "")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(diff.changes.len(), 1);
    }
}
