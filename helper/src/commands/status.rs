// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost status`: the measured state of the managed trees and what is
//! pending (a timed re-lock, runs, an undo, an interrupted commit, an
//! offline update).

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::Layers;
use almost_core::protocol::{OfflineUpdate, Report};
use almost_core::sysbus::{self, SystemBus};
use almost_core::system::{Opening, Progress, Recovery, System};
use almost_protocol::{CommandResult, Phase};

use super::{Ctx, WHY_RESTORE};
use crate::output::{self, Output};

pub fn run(ctx: Ctx) -> Result<i32> {
    let report = report(ctx.sys, ctx.out, ctx.bus, ctx.is_root)?;
    ctx.out
        .answer(report, CommandResult::Status, output::report_text);
    Ok(0)
}

fn offline_update(sys: &System, out: &Output, bus: &SystemBus) -> Option<OfflineUpdate> {
    sysbus::offline_update_prepared(bus, &sys.root).unwrap_or_else(|e| {
        out.warning(&format!(
            "cannot tell whether an offline update is prepared: {e}"
        ));
        None
    })
}

/// The measured state and what is pending (what `status` answers). As
/// root, first what an earlier act left undone: an interrupted commit, an
/// overdue re-lock, the end of a killed `almost run`.
pub fn report(sys: &System, out: &Output, bus: &SystemBus, is_root: bool) -> Result<Report> {
    let progress = Arc::new(Progress::default());
    if is_root {
        // The next invocation after a killed run or an expired timer
        // restores: a status as root is such an invocation.
        let opening = Opening {
            why: Some(WHY_RESTORE),
            recover: Recovery::Now,
            settle: true,
        };
        let _shown = out.progress(Phase::Restore, progress.clone());
        let mut say = |said: String| out.warning(&said);
        drop(sys.try_begin(bus, opening, &progress, &mut say)?);
    }
    let _shown = out.progress(Phase::Check, progress.clone());
    let mut report = sys.measure(&progress)?;
    drop(_shown);
    report.offline_update = offline_update(sys, out, bus);
    let layers = Layers::new(sys);
    report.interrupted_commit = layers.interrupted_commit();
    report.undo = layers
        .last_commit()
        .map(|j| almost_core::protocol::UndoInfo {
            operations: j.op_count(),
            path: almost_protocol::path::encode(&j.layer.path),
            paths: j
                .layer
                .parts()
                .iter()
                .map(|p| almost_protocol::path::encode(p))
                .collect(),
            // The commit's id (its layer's, or its layer's with a suffix
            // for a later selective commit of the same layer).
            id: layers.last_commit_id().unwrap_or(j.layer.id),
        });
    Ok(report)
}
