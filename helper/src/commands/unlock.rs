// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost unlock [--for DURATION]` (and `enter rw`): clears the flag,
//! for good or until a detached timer locks again.

use std::sync::Arc;

use almost_core::paths;
use almost_core::state;
use almost_core::sysbus::SystemBus;
use almost_core::system::{Opening, Progress, Recovery, System, attach_state};
use almost_core::{Error, Result};
use almost_helper::cli::{self, UnlockArgs};
use almost_protocol::{CommandResult, Phase};

use super::lock::set_mode;
use super::{Ctx, WHY_UNLOCK, begin, finish_report};
use crate::output::{self, Output};

pub fn run(ctx: Ctx, args: &UnlockArgs) -> Result<i32> {
    unlock(ctx.sys, ctx.out, ctx.bus, args, ctx.global)
}

fn confirm_unlock(sys: &System, out: &Output, args: &UnlockArgs) -> Result<()> {
    let paths: Vec<String> = sys
        .config
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    output::ask(
        out,
        args.yes,
        &format!(
            "Unlock {}? Any root process will be able to change these files.",
            paths.join(", ")
        ),
    )
}

fn unlock(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    args: &UnlockArgs,
    global: &cli::Global,
) -> Result<i32> {
    confirm_unlock(sys, out, args)?;
    let Some(duration) = args.duration else {
        return set_mode(sys, out, bus, false, false, CommandResult::Unlock);
    };
    let progress = Arc::new(Progress::default());
    let opening = Opening {
        why: Some(WHY_UNLOCK),
        recover: Recovery::None,
        settle: true,
    };
    let mut act = begin(sys, out, bus, opening, &progress)?;
    let at = state::now_rounded_up() + duration.as_secs().max(1);
    act.guard
        .begin_timed_unlock(at, || spawn_timer(global, &sys.root))?;
    let shown = out.progress(Phase::Unlock, progress.clone());
    let mut report = sys.apply(false, &progress)?;
    drop(shown);
    attach_state(&mut report, act.guard.state());
    finish_report(out, CommandResult::Unlock, report, "")
}

/// Starts the detached process that re-locks when the timer runs out. If it
/// dies, the next `almost` invocation does the overdue re-lock instead.
/// It gets the canonical path of the root this process opened, not
/// `--root` as given: under pkexec that path was checked to be root's
/// alone, so it still leads there, whatever became of a link in `--root`.
fn spawn_timer(global: &cli::Global, root: &paths::Root) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the almost executable", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root")
        .arg(root.path())
        .arg("--flag-interface")
        .arg(match global.flag_interface {
            cli::Interface::Auto => "auto",
            cli::Interface::FileSetattr => "file-setattr",
            cli::Interface::Ioctl => "ioctl",
        })
        .args(
            global
                .system_bus
                .as_ref()
                .map(|a| ["--system-bus", a.as_str()])
                .into_iter()
                .flatten(),
        )
        .args(
            global
                .journal_socket
                .as_ref()
                .map(|s| [std::ffi::OsStr::new("--journal-socket"), s.as_os_str()])
                .into_iter()
                .flatten(),
        )
        .arg("__relock-timer")
        // Root starts the timer for the root it checked, on the time the
        // caller asked for; the timer is no pkexec command and would be
        // refused (exit 12) as one, leaving the tree unlocked until the
        // next privileged act.
        .env_remove("PKEXEC_UID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe; nothing else runs in pre_exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io("starting the re-lock timer", e))?;
    Ok(child.id() as i32)
}
