// SPDX-License-Identifier: GPL-3.0-or-later
//! The commands of `almost`, one file each (as rpm-ostree's builtins):
//! each takes the opened system ([`Ctx`]) and its arguments, does its act
//! through almost-core and answers through [`Output::answer`] (the typed
//! result with `--json`, text otherwise). What several share is here: the
//! opening of a privileged act ([`recover`]), the end of one that walked
//! the trees ([`finish_report`]), and why each walk holds off a shutdown.

pub mod apt_guard;
pub mod boot;
pub mod config;
pub mod enter;
pub mod layer;
pub mod lock;
pub mod log;
pub mod overlay;
pub mod overview;
pub mod package_remove;
pub mod relock_timer;
pub mod run;
pub mod status;
pub mod unlock;

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::{Layers, PrivateMounts, commit};
use almost_core::protocol::Report;
use almost_core::sysbus::SystemBus;
use almost_core::system::{self, Progress, System};
use almost_helper::cli::{Command, Global};
use almost_protocol::CommandResult;

use crate::output::{self, Output};

/// What every command gets: the system opened under `--root`, the output,
/// the system bus, the global options, whether it runs as root, and the
/// private mount namespace of the commands that look beneath layers.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub sys: &'a System,
    pub out: &'a Output,
    pub bus: &'a SystemBus,
    pub global: &'a Global,
    pub is_root: bool,
    pub private: Option<&'a PrivateMounts>,
}

/// Runs `command`.
pub fn run(command: &Command, ctx: Ctx) -> Result<i32> {
    match command {
        Command::Status => status::run(ctx),
        Command::Overview => overview::run(ctx),
        Command::Lock => lock::run(ctx),
        Command::Unlock(args) => unlock::run(ctx, args),
        Command::Enter { mode, yes } => enter::run(ctx, mode, *yes),
        Command::Run { command } => run::run(ctx, command),
        Command::Config { action } => config::run(ctx, action),
        Command::Log { lines } => log::run(ctx, *lines),
        Command::AptGuard => apt_guard::run(ctx),
        Command::RelockTimer => relock_timer::run(ctx),
        Command::Layer { action } => layer::run(ctx, action),
        Command::Overlay { action } => overlay::run(ctx, action),
        Command::Boot => boot::run(ctx),
        Command::PackageRemove => package_remove::run(ctx),
    }
}

/// Why each kind of walk holds off a shutdown (shown by `systemd-inhibit
/// --list` and by the desktop's shutdown dialog).
pub const WHY_LOCK: &str = "Locking the system files";
pub const WHY_UNLOCK: &str = "Unlocking the system files";
pub const WHY_RESTORE: &str = "Restoring the protection of the system files";

/// Prints the report of an act (as `command`'s result) and turns its
/// failures into the command's error.
pub fn finish_report(
    out: &Output,
    command: fn(Report) -> CommandResult,
    report: Report,
    heading: &str,
) -> Result<i32> {
    let failed = system::outcome(&report);
    out.answer(report, command, |r| {
        format!("{heading}{}", output::report_text(r))
    });
    match failed {
        Some(err) => Err(err),
        None => Ok(0),
    }
}

/// Runs the commands that change something under the state lock, after
/// finishing any commit a crash interrupted.
pub fn recover(sys: &System, out: &Output, progress: &Arc<Progress>) {
    recover_as(sys, out, progress, false);
}

/// [`recover`]; at boot a rolled-back commit's layer is left unmounted:
/// the boot mounts the layers after their acts at boot.
pub fn recover_as(sys: &System, out: &Output, progress: &Arc<Progress>, at_boot: bool) {
    let layers = Layers::new(sys);
    let results = if at_boot {
        layers.recover_at_boot(progress)
    } else {
        layers.recover(progress)
    };
    for result in results {
        match result {
            Ok(report) if report.outcome == "undone" => out.warning(&format!(
                "finished the interrupted undo of the commit of layer {} over {}",
                report.id,
                report.path.display()
            )),
            Ok(report) if report.outcome.starts_with(commit::OUTCOME_ABANDONED) => {
                out.warning(&format!(
                    "abandoned the interrupted commit of layer {id} over {}: it had not \
                     changed anything yet, so it was rolled back and the tree is as before; {}",
                    report.path.display(),
                    if report.outcome == commit::OUTCOME_ABANDONED {
                        "the layer is mounted again".to_owned()
                    } else if at_boot {
                        "the boot goes on with the layer".to_owned()
                    } else {
                        format!(
                            "the layer could not be mounted again (try: almost layer mount {})",
                            report.id
                        )
                    },
                    id = report.id,
                ));
            }
            Ok(report) => out.warning(&format!(
                "finished the interrupted commit of layer {} over {}",
                report.id,
                report.path.display()
            )),
            Err(e) => out.warning(&e.to_string()),
        }
    }
    if let Err(e) = layers.empty_trash(progress) {
        out.warning(&e.to_string());
    }
}
