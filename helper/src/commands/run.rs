// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost run`: unlock, run a command, restore the mode from before.
//!
//! The run is recorded in the runtime state before anything is unlocked,
//! so that whatever happens to this process the next `almost` (or boot)
//! knows what to restore. Signals meant for the command are passed on; the
//! ones the terminal already sent to the whole process group are not sent
//! twice.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use almost_core::state::{self, Proc, RunRecord};
use almost_core::sysbus::SystemBus;
use almost_core::system::{self, Opening, Progress, Recovery, System};
use almost_core::{Error, Result};
use almost_protocol::Phase;
use nix::fcntl::OFlag;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::AccessFlags;

use super::{Ctx, WHY_RESTORE, WHY_UNLOCK};
use crate::output::Output;

static CHILD: AtomicI32 = AtomicI32::new(0);
static PENDING: AtomicI32 = AtomicI32::new(0);

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_kernel = !info.is_null() && unsafe { (*info).si_code } == libc::SI_KERNEL;
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // A terminal's ^C reaches the whole foreground group (si_code
        // SI_KERNEL): the command has it already.
        if !from_kernel {
            // SAFETY: kill is async-signal-safe.
            unsafe { libc::kill(child, sig) };
        }
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

fn install_handlers() -> Result<()> {
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    for sig in FORWARDED {
        // SAFETY: the handler only touches atomics and calls kill(2).
        unsafe { sigaction(sig, &action) }
            .map_err(|e| Error::io("installing signal handlers", e.into()))?;
    }
    Ok(())
}

fn command_line(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes this run from the state and restores the mode if it was the last.
fn finish(sys: &System, out: &Output, bus: &SystemBus, me: Proc) -> Result<()> {
    let progress = Arc::new(Progress::default());
    let opening = Opening {
        why: Some(WHY_RESTORE),
        ..Opening::default()
    };
    let mut act = super::begin(sys, out, bus, opening, &progress)?;
    act.guard.end_run(me)?;
    let _shown = out.progress(Phase::Restore, progress.clone());
    if let Some(report) = sys.settle(&mut act.guard, &progress)?
        && let Some(err) = system::outcome(&report)
    {
        out.warning(&format!("restoring the mode after the command: {err}"));
    }
    Ok(())
}

/// Runs `argv` unlocked; answers with its exit status and the programs
/// that still use files it replaced or deleted in the managed trees (`run`
/// result).
pub fn run(ctx: Ctx, argv: &[OsString]) -> Result<i32> {
    run_saying(ctx, argv, None)
}

/// As [`run`], saying `entered` on a terminal (stderr; not with `--json`)
/// once the system is writable, before the command starts.
pub fn run_saying(ctx: Ctx, argv: &[OsString], entered: Option<&str>) -> Result<i32> {
    let exit_code = run_unlocked(ctx.sys, ctx.out, ctx.bus, argv, entered)?;
    let found = super::restart::look(ctx.sys, ctx.out, &ctx.sys.config.paths);
    let result = almost_protocol::CommandResult::Run(almost_protocol::RunResult { exit_code });
    if ctx.out.json {
        ctx.out.event(&super::restart::with_restart(result, found));
    } else {
        // Standard output is the command's own, byte for byte: the
        // programs to restart are said beside almost's other words.
        eprint!("{}", super::restart::text(found.as_deref().unwrap_or(&[])));
    }
    Ok(exit_code)
}

fn run_unlocked(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    argv: &[OsString],
    entered: Option<&str>,
) -> Result<i32> {
    install_handlers()?;
    // almost's stdout is the protocol under --json: the command's output
    // goes to stderr, so a caller reads the result without sorting lines
    // (with --json-fd the protocol has its own descriptor: stdout stays
    // the command's).
    // Taken before anything is unlocked, as it may fail.
    let command_stdout = if out.json && crate::output::json_on_stdout() {
        let fd = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("duplicating stderr for the command", e))?;
        Some(fd)
    } else {
        None
    };
    let me = Proc::current();
    {
        // Held for the unlock only: the command itself may run for hours,
        // and a shutdown then is the user's business.
        let progress = Arc::new(Progress::default());
        let opening = Opening {
            why: Some(WHY_UNLOCK),
            recover: Recovery::None,
            settle: true,
        };
        let mut act = super::begin(sys, out, bus, opening, &progress)?;
        let run = RunRecord {
            almost: me,
            child: None,
            command: command_line(argv),
            started: state::now(),
        };
        act.guard
            .begin_run(run, || Ok(sys.measure(&progress)?.mode))?;
        let _shown = out.progress(Phase::Unlock, progress.clone());
        let report = sys.apply(false, &progress)?;
        drop(_shown);
        if let Some(err) = system::outcome(&report) {
            drop(act);
            finish(sys, out, bus, me)?;
            return Err(err);
        }
    }
    // The unlock is done and the command may run for long: an open panel
    // should show it now, not when the run ends.
    if let Err(e) = state::mark_acted(&sys.root) {
        tracing::debug!("cannot mark the unlock: {e}");
    }
    if let Some(sig) = nonzero(PENDING.load(Ordering::SeqCst)) {
        finish(sys, out, bus, me)?;
        return Ok(128 + sig);
    }
    if let Err(e) = runnable(&argv[0]) {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        out.warning(&format!("cannot run {}: {e}", argv[0].to_string_lossy()));
        finish(sys, out, bus, me)?;
        return Ok(code);
    }
    if let Some(said) = entered
        && !out.json
    {
        eprintln!("{said}");
    }
    let (mut command, go) = held(argv)?;
    if let Some(stdout) = command_stdout {
        command.stdout(stdout);
    }
    let spawned = command.spawn();
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            out.warning(&format!("cannot run {}: {e}", argv[0].to_string_lossy()));
            finish(sys, out, bus, me)?;
            return Ok(126);
        }
    };
    let pid = child.id() as i32;
    CHILD.store(pid, Ordering::SeqCst);
    if let Some(sig) = nonzero(PENDING.swap(0, Ordering::SeqCst)) {
        // SAFETY: pid is our own child, not yet reaped.
        unsafe { libc::kill(pid, sig) };
    }
    {
        state::lock(&sys.root)?.run_started(me, pid)?;
    }
    // Recorded: the command may start. (A failed write leaves it to the
    // end of the pipe below, which stops the shell before the command.)
    let _ = nix::unistd::write(&go, b"go\n");
    drop(go);
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the command", e));
    CHILD.store(0, Ordering::SeqCst);
    finish(sys, out, bus, me)?;
    let status = status?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// What the command is started through: a shell that waits for a line on
/// fd 3 before it execs the command (the same pid), so that the command
/// never runs before its pid is in the runtime state. Should almost die
/// first, the pipe's write end dies with it, the read ends, and the command
/// never runs.
const HOLD: &str = "IFS= read -r go <&3 || exit 125; exec 3<&-; exec \"$@\"";

/// The command started held (see [`HOLD`]), and the pipe's write end that
/// lets it go.
fn held(argv: &[OsString]) -> Result<(Command, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("making the pipe that holds the command", e.into()))?;
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(HOLD).arg("almost-run").args(argv);
    let raw = read.as_raw_fd();
    // SAFETY: between fork and exec the closure calls only dup2 and fcntl,
    // which are async-signal-safe, and allocates nothing. `read` lives in
    // the closure until the command is dropped, after the spawn.
    unsafe {
        command.pre_exec(move || {
            let _keep = &read;
            let rc = if raw == 3 {
                // dup2(3, 3) would keep close-on-exec.
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if rc == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok((command, write))
}

/// Whether `program` can be run, found as execvp finds it: the error the
/// command's own spawn would give (not found, permission denied), said
/// before the holding shell is started.
fn runnable(program: &OsStr) -> std::io::Result<()> {
    use std::io::{Error as IoError, ErrorKind};
    let check = |p: &Path| -> std::io::Result<()> {
        let meta = std::fs::metadata(p)?;
        if meta.is_dir() {
            return Err(IoError::from_raw_os_error(libc::EACCES));
        }
        nix::unistd::access(p, AccessFlags::X_OK).map_err(IoError::from)
    };
    if program.is_empty() {
        return Err(IoError::from(ErrorKind::NotFound));
    }
    if program.as_bytes().contains(&b'/') {
        return check(Path::new(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut last = IoError::from_raw_os_error(libc::ENOENT);
    for dir in std::env::split_paths(&path) {
        match check(&dir.join(program)) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn nonzero(v: i32) -> Option<i32> {
    (v != 0).then_some(v)
}
