// SPDX-License-Identifier: GPL-3.0-or-later
//! Runtime state under `/run/almost` (inside the root): the commands
//! running under `almost run`, a pending timed re-lock, and the mode to
//! restore when those temporary unlocks end. It says what to do later,
//! never what the flags are now: that is always measured.
//!
//! Every change happens under an exclusive `flock` on `/run/almost/lock`,
//! which also serialises whole lock/unlock runs between processes. The
//! kernel drops the lock when its holder dies, so a killed `almost` never
//! wedges the next one.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::paths::Root;
use crate::protocol::{Mode, RunInfo};

pub const STATE_DIR: &str = "/run/almost";

/// A process, identified by pid and start time so a reused pid is not
/// mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

impl Proc {
    pub fn of(pid: i32) -> Option<Proc> {
        Some(Proc {
            pid,
            start: start_time(pid)?,
        })
    }

    pub fn current() -> Proc {
        let pid = std::process::id() as i32;
        Proc {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Field 22 of /proc/PID/stat: the start time in clock ticks since boot.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 2..];
    let state = after.split(' ').next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    after.split(' ').nth(19)?.parse().ok()
}

/// One `almost run`: the `almost` process and the command it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub almost: Proc,
    pub child: Option<Proc>,
    pub command: String,
    pub started: u64,
}

impl RunRecord {
    /// A run is over only when neither `almost` nor its command lives: a
    /// killed `almost` must not re-lock under a package manager still at work.
    pub fn is_alive(&self) -> bool {
        self.almost.is_alive() || self.child.is_some_and(|c| c.is_alive())
    }

    pub fn info(&self) -> RunInfo {
        RunInfo {
            pid: self.child.map_or(self.almost.pid, |c| c.pid),
            command: self.command.clone(),
            started: self.started,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The mode to restore when no temporary unlock remains.
    #[serde(default, with = "stored_mode")]
    pub restore: Option<Mode>,
    /// Unix time at which a timed unlock ends.
    pub relock_at: Option<u64>,
    pub runs: Vec<RunRecord>,
    /// The process that will re-lock when `relock_at` comes.
    #[serde(default)]
    pub timer: Option<Proc>,
    /// Why the state file could not be read, when it could not: the state
    /// is then taken as "restore locked" (see [`read`]).
    #[serde(skip)]
    pub damaged: Option<String>,
}

/// How `state.json` writes a mode: a spelling of its own, so that the
/// protocol's `Mode` can change without changing (or breaking the reading
/// of) the file a boot restores from.
mod stored_mode {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::protocol::Mode;

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Stored {
        Locked,
        Unlocked,
        Partial,
    }

    pub fn serialize<S: Serializer>(mode: &Option<Mode>, s: S) -> Result<S::Ok, S::Error> {
        mode.map(|m| match m {
            Mode::Locked => Stored::Locked,
            Mode::Unlocked => Stored::Unlocked,
            Mode::Partial => Stored::Partial,
        })
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
        Ok(Option::<Stored>::deserialize(d)?.map(|m| match m {
            Stored::Locked => Mode::Locked,
            Stored::Unlocked => Mode::Unlocked,
            Stored::Partial => Mode::Partial,
        }))
    }
}

impl RunState {
    /// Ends the timer process, if one runs (a cancelled or replaced timed
    /// unlock must not leave it waiting, holding the root open).
    pub fn stop_timer(&mut self) {
        if let Some(timer) = self.timer.take()
            && timer.is_alive()
            && timer != Proc::current()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(timer.pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    pub fn prune_dead(&mut self) -> bool {
        let before = self.runs.len();
        self.runs.retain(|r| r.is_alive());
        self.runs.len() != before
    }

    /// Whether a temporary unlock (a run, a timer) is still in force.
    pub fn temporary_unlock_active(&self, now: u64) -> bool {
        !self.runs.is_empty() || self.relock_at.is_some_and(|t| t > now)
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The current Unix time rounded up to the whole second: a deadline of
/// `now_rounded_up() + N` is never less than N seconds away (from
/// [`now`], rounded down, it could be barely more than N − 1: a full run
/// saw `unlock --for 2s` lock again after 1.07 s).
pub fn now_rounded_up() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

fn state_dir(root: &Root) -> PathBuf {
    root.host(Path::new(STATE_DIR))
}

fn state_file(root: &Root) -> PathBuf {
    state_dir(root).join("state.json")
}

/// Reads the state without locking (for unprivileged status). A missing
/// file is an empty state (`/run` is empty after a boot). A file that
/// cannot be read or parsed fails closed: what it held is unknown (a
/// pending timed re-lock, runs), so it reads as "restore locked", which the
/// next privileged invocation applies (runs it recorded are forgotten: a
/// package manager still at work under one then meets a locked tree and
/// fails, which is what a locked system does); a warning says so.
pub fn read(root: &Root) -> RunState {
    let file = state_file(root);
    let state = match fs::read(&file) {
        Ok(bytes) => parse(&bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return RunState::default(),
        Err(e) => damaged(e.to_string()),
    };
    if let Some(why) = &state.damaged {
        tracing::warn!(
            "{} is damaged ({why}): taken as a pending re-lock, the system will be locked",
            file.display()
        );
    }
    state
}

/// The state the bytes of `state.json` hold, failing closed as [`read`]
/// does: bytes that do not parse are a damaged state.
pub fn parse(bytes: &[u8]) -> RunState {
    serde_json::from_slice(bytes).unwrap_or_else(|e| damaged(e.to_string()))
}

/// What a damaged state file reads as: "restore locked", nothing else.
fn damaged(why: String) -> RunState {
    RunState {
        restore: Some(Mode::Locked),
        damaged: Some(why),
        ..RunState::default()
    }
}

/// The state, held under the exclusive lock until dropped: the only way
/// to change it ([`lock`] and [`try_lock`] hand it out). Each transition is
/// a method that saves what it changed; the engine's own (settle, an
/// explicit lock or unlock) are in `system.rs`.
pub struct StateGuard {
    _lock: Flock<File>,
    file: PathBuf,
    state: RunState,
}

fn open_lock(root: &Root) -> Result<File> {
    let dir = state_dir(root);
    let err = |e: io::Error| Error::io(format!("state directory {}", dir.display()), e);
    fs::create_dir_all(&dir).map_err(err)?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(err)
}

fn guard(root: &Root, lock: Flock<File>) -> StateGuard {
    StateGuard {
        _lock: lock,
        file: state_file(root),
        state: read(root),
    }
}

/// Takes the state lock, waiting for another `almost` that holds it.
pub fn lock(root: &Root) -> Result<StateGuard> {
    let file = open_lock(root)?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::io("locking the state", e.into()))?;
    Ok(guard(root, lock))
}

/// Takes the state lock only if nobody holds it. Without a state
/// directory there is nothing to settle: `None`, and nothing is created.
pub fn try_lock(root: &Root) -> Result<Option<StateGuard>> {
    if !state_dir(root).join("state.json").exists() {
        return Ok(None);
    }
    let file = open_lock(root)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(guard(root, lock))),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::io("locking the state", e.into())),
    }
}

/// The file every privileged act of `almost` rewrites when it ends, done
/// or failed, after its last change: what a panel watches to read the
/// state again (`state.json` is written when an act starts, before its
/// walk).
pub const ACTED_FILE: &str = "acted";

/// Marks the end of an act (see [`ACTED_FILE`]): a small write, not
/// synced (the file says "read again", nothing to keep). Nothing is
/// created where no act ever made the state directory.
pub fn mark_acted(root: &Root) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = state_dir(root);
    if !dir.is_dir() {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join(ACTED_FILE))?;
    writeln!(file, "{}", std::process::id())
}

impl StateGuard {
    /// What the state holds now.
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// For the engine's transitions (`System::settle`, `set_mode`), which
    /// save it themselves.
    pub(crate) fn state_mut(&mut self) -> &mut RunState {
        &mut self.state
    }

    /// A timed unlock that ends at `at` (Unix time), locked whatever the
    /// mode was before: that is what "unlock for ten minutes" means. A
    /// later deadline already pending is kept; the previous timer process
    /// is stopped and `start_timer` starts the new one (its pid).
    pub fn begin_timed_unlock(
        &mut self,
        at: u64,
        start_timer: impl FnOnce() -> Result<i32>,
    ) -> Result<()> {
        self.state.restore = Some(Mode::Locked);
        self.state.relock_at = Some(self.state.relock_at.map_or(at, |t| t.max(at)));
        self.state.stop_timer();
        self.state.timer = Proc::of(start_timer()?);
        self.save()
    }

    /// An `almost run` begins, recorded before anything is unlocked. The
    /// first run under way decides the mode to restore when the last one
    /// ends: unlocked if it was, else locked (a partial tree is restored as
    /// locked, the safe side); `mode_before` measures it.
    pub fn begin_run(
        &mut self,
        run: RunRecord,
        mode_before: impl FnOnce() -> Result<Mode>,
    ) -> Result<()> {
        if self.state.restore.is_none() {
            self.state.restore = Some(if mode_before()? == Mode::Unlocked {
                Mode::Unlocked
            } else {
                Mode::Locked
            });
        }
        self.state.runs.push(run);
        self.save()
    }

    /// The command of the run of `almost` started as `child`.
    pub fn run_started(&mut self, almost: Proc, child: i32) -> Result<()> {
        if let Some(record) = self.state.runs.iter_mut().find(|r| r.almost == almost) {
            record.child = Proc::of(child);
        }
        self.save()
    }

    /// The run of `almost` ended (the mode is restored by the next settle,
    /// if it was the last).
    pub fn end_run(&mut self, almost: Proc) -> Result<()> {
        self.state.runs.retain(|r| r.almost != almost);
        self.save()
    }

    /// At boot nothing of the last boot runs any more: no run, no timer,
    /// nothing to restore (the boot applies `default_mode`). An `almost
    /// boot` run by hand while `almost run` commands are under way keeps
    /// them, and `then` (the default mode, if it sets one; else what they
    /// restored) becomes the mode the last of them restores: the boot must
    /// not lock under them.
    /// Returns whether runs are kept.
    pub fn reset_at_boot(&mut self, then: Option<Mode>) -> Result<bool> {
        let mut runs = std::mem::take(&mut self.state.runs);
        runs.retain(RunRecord::is_alive);
        self.state.stop_timer();
        let kept = !runs.is_empty();
        self.state = RunState {
            restore: if kept {
                then.or(self.state.restore)
            } else {
                None
            },
            runs,
            ..RunState::default()
        };
        self.save()?;
        Ok(kept)
    }

    pub fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| Error::io("encoding the state", io::Error::other(e)))?;
        write_atomic(&self.file, &bytes)
            .map_err(|e| Error::io(format!("writing {}", self.file.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The file's spelling of the mode is its own and stays as it was
    // ("locked", "unlocked", absent): a state written before still reads.
    #[test]
    fn the_file_spells_the_mode_as_before() {
        let state = RunState {
            restore: Some(Mode::Unlocked),
            ..RunState::default()
        };
        let text = serde_json::to_string(&state).unwrap();
        assert!(text.contains(r#""restore":"unlocked""#), "{text}");
        assert_eq!(
            parse(br#"{"restore":"locked","relock_at":null,"runs":[]}"#).restore,
            Some(Mode::Locked)
        );
        let none = parse(br#"{"restore":null,"relock_at":null,"runs":[]}"#);
        assert_eq!((none.restore, none.damaged), (None, None));
        let absent = parse(br#"{"relock_at":null,"runs":[]}"#);
        assert_eq!((absent.restore, absent.damaged), (None, None));
    }

    #[test]
    fn own_process_is_alive_and_a_fake_one_is_not() {
        let me = Proc::current();
        assert!(me.is_alive());
        assert!(
            !Proc {
                start: me.start + 1,
                ..me
            }
            .is_alive(),
            "pid reuse not detected"
        );
        assert!(
            !Proc {
                pid: i32::MAX,
                start: 1
            }
            .is_alive()
        );
    }

    // The transitions of the guard save what they change: a second lock
    // reads it back. A timed unlock ends locked and keeps the later of two
    // deadlines; the first run decides the mode to restore, a second does
    // not measure again; a run's child is recorded, its end removes it; the
    // boot forgets everything.
    #[test]
    fn transitions_are_saved_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let mut guard = lock(&root).unwrap();
        guard.begin_timed_unlock(1000, || Ok(i32::MAX)).unwrap();
        guard.begin_timed_unlock(500, || Ok(i32::MAX)).unwrap();
        drop(guard);
        let mut guard = lock(&root).unwrap();
        assert_eq!(guard.state().relock_at, Some(1000));
        assert_eq!(guard.state().restore, Some(Mode::Locked));
        // A timer that cannot start changes nothing that is saved.
        let failed = guard.begin_timed_unlock(2000, || Err(Error::Cancelled));
        assert!(failed.is_err());
        drop(guard);
        assert_eq!(read(&root).relock_at, Some(1000));

        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let me = Proc::current();
        let run = |command: &str| RunRecord {
            almost: me,
            child: None,
            command: command.to_owned(),
            started: 1,
        };
        let mut guard = lock(&root).unwrap();
        guard
            .begin_run(run("apt upgrade"), || Ok(Mode::Unlocked))
            .unwrap();
        guard
            .begin_run(run("second"), || panic!("measured twice"))
            .unwrap();
        guard.run_started(me, std::process::id() as i32).unwrap();
        drop(guard);
        let state = read(&root);
        assert_eq!(state.restore, Some(Mode::Unlocked));
        assert_eq!(state.runs.len(), 2);
        assert!(state.runs[0].child.is_some(), "{:?}", state.runs);
        let mut guard = lock(&root).unwrap();
        guard.end_run(me).unwrap();
        assert!(read(&root).runs.is_empty());
        guard.begin_timed_unlock(9, || Ok(i32::MAX)).unwrap();
        guard.reset_at_boot(None).unwrap();
        drop(guard);
        let state = read(&root);
        assert_eq!((state.restore, state.relock_at), (None, None));
    }

    #[test]
    fn a_damaged_state_reads_as_restore_locked() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        fs::create_dir_all(state_dir(&root)).unwrap();
        fs::write(state_file(&root), b"{\"restore\":\"unlo").unwrap();
        let state = read(&root);
        assert_eq!(state.restore, Some(Mode::Locked));
        assert!(state.damaged.is_some());
        assert!(!state.temporary_unlock_active(now()));
    }

    #[test]
    fn parse_fails_closed_and_keeps_what_it_can_read() {
        for bad in [
            &b""[..],
            b"{",
            b"null",
            b"{\"restore\":\"sideways\"}",
            b"\xff",
        ] {
            let state = parse(bad);
            assert_eq!(state.restore, Some(Mode::Locked), "{bad:?}");
            assert!(state.damaged.is_some() && state.runs.is_empty(), "{bad:?}");
            assert_eq!((state.relock_at, state.timer), (None, None), "{bad:?}");
        }
        let good = b"{\"restore\":\"unlocked\",\"relock_at\":7,\"runs\":[]}";
        let state = parse(good);
        assert_eq!(state.damaged, None);
        assert_eq!(
            (state.restore, state.relock_at),
            (Some(Mode::Unlocked), Some(7))
        );
    }

    #[test]
    fn state_round_trips_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(read(&root), RunState::default());
        {
            let mut g = lock(&root).unwrap();
            g.state.restore = Some(Mode::Locked);
            g.state.relock_at = Some(now() + 60);
            g.state.runs.push(RunRecord {
                almost: Proc::current(),
                child: None,
                command: "true".into(),
                started: now(),
            });
            g.save().unwrap();
            assert!(try_lock(&root).unwrap().is_none(), "lock not exclusive");
        }
        let mut state = read(&root);
        assert_eq!(state.restore, Some(Mode::Locked));
        assert!(state.temporary_unlock_active(now()));
        assert!(!state.prune_dead(), "own run pruned");
        state.runs[0].almost.pid = i32::MAX;
        assert!(state.prune_dead());
        assert!(state.runs.is_empty());
        assert!(try_lock(&root).unwrap().is_some());
        let empty = tempfile::tempdir().unwrap();
        let empty_root = Root::open(empty.path()).unwrap();
        assert!(try_lock(&empty_root).unwrap().is_none());
        assert!(
            !empty.path().join("run").exists(),
            "try_lock created the state directory"
        );
    }
}
