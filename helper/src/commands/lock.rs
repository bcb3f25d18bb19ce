// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost lock` (and `enter ro`): sets the flag over every managed tree;
//! also the explicit unlock both `unlock` and `enter` end in.

use std::sync::Arc;

use almost_core::Result;
use almost_core::protocol::Report;
use almost_core::sysbus::SystemBus;
use almost_core::system::{Opening, Progress, Recovery, System};
use almost_protocol::{CommandResult, Phase};

use super::{Ctx, WHY_LOCK, WHY_UNLOCK, begin, finish_report};
use crate::output::Output;

pub fn run(ctx: Ctx, force: bool) -> Result<i32> {
    set_mode(ctx.sys, ctx.out, ctx.bus, true, force, CommandResult::Lock)
}

/// An explicit lock (`on`) or unlock: it becomes the mode to keep. A lock
/// while `almost run` commands are under way is refused (busy) unless
/// `force`.
pub fn set_mode(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    on: bool,
    force: bool,
    command: fn(Report) -> CommandResult,
) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    let opening = Opening {
        why: Some(if on { WHY_LOCK } else { WHY_UNLOCK }),
        recover: Recovery::Now,
        settle: true,
    };
    let mut act = begin(sys, out, bus, opening, &progress)?;
    let shown = out.progress(
        if on { Phase::Lock } else { Phase::Unlock },
        progress.clone(),
    );
    let report = sys.set_mode(&mut act.guard, on, force, &progress)?;
    drop(shown);
    finish_report(out, command, report, "")
}
