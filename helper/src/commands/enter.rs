// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost enter ro|rw|default`: the original almost's spelling of lock,
//! unlock and "the configured default_mode".

use almost_core::Result;
use almost_core::state;
use almost_core::system::{Progress, attach_state};
use almost_helper::cli::{EnterMode, UnlockArgs};
use almost_protocol::CommandResult;

use super::lock::set_mode;
use super::{Ctx, finish_report, unlock};

pub fn run(ctx: Ctx, mode: &EnterMode, yes: bool, force: bool) -> Result<i32> {
    let Ctx { sys, out, bus, .. } = ctx;
    match mode {
        EnterMode::Ro => set_mode(sys, out, bus, true, force, CommandResult::Lock),
        EnterMode::Rw => unlock::run(
            ctx,
            &UnlockArgs {
                yes,
                duration: None,
            },
        ),
        EnterMode::Default => match sys.default_lock() {
            Some(on) => set_mode(
                sys,
                out,
                bus,
                on,
                force,
                if on {
                    CommandResult::Lock
                } else {
                    CommandResult::Unlock
                },
            ),
            None => {
                let mut report = sys.measure(&Progress::default())?;
                attach_state(&mut report, &state::read(&sys.root));
                finish_report(
                    out,
                    CommandResult::Enter,
                    report,
                    "default_mode is keep: nothing changed\n",
                )
            }
        },
    }
}
