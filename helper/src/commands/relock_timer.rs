// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost __relock-timer` (hidden): the detached process a timed unlock
//! starts, which locks again when the time is up.

use almost_core::Result;
use almost_core::state;
use almost_core::sysbus::{Inhibitor, SystemBus};
use almost_core::system::{Progress, System};

use super::{Ctx, WHY_RESTORE};

pub fn run(ctx: Ctx) -> Result<i32> {
    relock_timer(ctx.sys, ctx.bus)
}

fn relock_timer(sys: &System, bus: &SystemBus) -> Result<i32> {
    loop {
        let mut guard = state::lock(&sys.root)?;
        let Some(at) = guard.state().relock_at else {
            return Ok(0);
        };
        let now = state::now();
        if at <= now {
            let _inhibit = Inhibitor::shutdown(bus, WHY_RESTORE);
            sys.settle(&mut guard, &Progress::default())?;
            return Ok(0);
        }
        drop(guard);
        std::thread::sleep(std::time::Duration::from_secs((at - now).min(30)));
    }
}
