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
pub mod restart;
pub mod run;
pub mod shell;
pub mod state;
pub mod status;
pub mod unlock;

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::PrivateMounts;
use almost_core::protocol::Report;
use almost_core::sysbus::SystemBus;
use almost_core::system::{self, Act, Opening, Progress, Recovery, System};
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
        Command::Lock { force } => lock::run(ctx, *force),
        Command::Unlock(args) => unlock::run(ctx, args),
        Command::Enter { mode, yes, force } => enter::run(ctx, mode, *yes, *force),
        Command::Run { command } => run::run(ctx, command),
        Command::Shell => shell::run(ctx),
        Command::State { action } => state::run(ctx, action),
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

/// Opens a privileged act (see [`System::begin`]); what the recovery did
/// is said as warnings.
pub fn begin(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    opening: Opening,
    progress: &Arc<Progress>,
) -> Result<Act> {
    sys.begin(bus, opening, progress, &mut |said| out.warning(&said))
}

/// The opening of an act that changes layers: under the state lock, after
/// the recovery; `why` holds off a shutdown.
pub fn layer_opening(why: Option<&str>) -> Opening<'_> {
    Opening {
        why,
        recover: Recovery::Now,
        settle: false,
    }
}
