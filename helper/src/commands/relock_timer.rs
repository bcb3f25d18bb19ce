// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost __relock-timer` (hidden): the detached process a timed unlock
//! starts, which locks again when the time is up.

use almost_core::Result;
use almost_core::state;
use std::sync::Arc;

use almost_core::sysbus::SystemBus;
use almost_core::system::{Opening, Progress, Recovery, System};

use super::{Ctx, WHY_RESTORE};

pub fn run(ctx: Ctx) -> Result<i32> {
    relock_timer(ctx.sys, ctx.bus)
}

fn relock_timer(sys: &System, bus: &SystemBus) -> Result<i32> {
    loop {
        // A look under the state lock (the unlock that started this
        // process records the deadline under it: waiting for it is how the
        // deadline is seen); the settling below reads the state again under
        // the lock, as a later lock or unlock may have cancelled it.
        let Some(at) = state::lock(&sys.root)?.state().relock_at else {
            return Ok(0);
        };
        let now = state::now();
        if at <= now {
            let opening = Opening {
                why: Some(WHY_RESTORE),
                recover: Recovery::None,
                settle: true,
            };
            let progress = Arc::new(Progress::default());
            drop(sys.begin(bus, opening, &progress, &mut |said| {
                tracing::warn!("{said}")
            })?);
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs((at - now).min(30)));
    }
}
