// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost log`: the recent entries of the audit log.

use almost_core::Result;
use almost_core::audit;
use almost_protocol::CommandResult;

use super::Ctx;
use crate::wire;

/// The last `lines` entries, oldest first.
pub fn run(ctx: Ctx, lines: usize) -> Result<i32> {
    let Ctx {
        sys, out, global, ..
    } = ctx;
    let journal = global.journal_socket.as_deref();
    let (entries, bad) = audit::recent(&sys.root, lines, journal)?;
    if bad > 0 {
        out.warning(&format!("{bad} lines of the audit log are not entries"));
    }
    let result = almost_protocol::LogEntries {
        entries: entries.iter().map(wire::log_entry).collect(),
    };
    out.answer(result, CommandResult::Log, |_| {
        if entries.is_empty() {
            return "No privileged act recorded yet.\n".to_owned();
        }
        entries
            .iter()
            .map(|e| format!("{}  {}\n", e.time, e.summary()))
            .collect()
    });
    Ok(0)
}
