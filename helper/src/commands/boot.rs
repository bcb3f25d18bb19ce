// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost boot`: what the boot unit runs (interrupted commits, acts left
//! to the boot, layers mounted again, stale state cleared, default_mode).

use std::sync::Arc;

use almost_core::Result;
use almost_core::layer::{AtBoot, LayerMeta, Layers};
use almost_core::protocol::Mode;
use almost_core::sysbus::SystemBus;
use almost_core::system::{self, Opening, Progress, Recovery, System, attach_state};
use almost_protocol::CommandResult;

use super::{Ctx, begin};
use crate::output::Output;

pub fn run(ctx: Ctx) -> Result<i32> {
    boot(ctx.sys, ctx.out, ctx.bus)
}

/// Does the act `almost boot` was asked to do with a layer, if any; true
/// when the layer is gone (committed or discarded). A failure is said, the
/// record dropped (tried once), and the layer is mounted again as it was.
fn boot_act(out: &Output, layers: &Layers, meta: &LayerMeta, progress: &Arc<Progress>) -> bool {
    let Some(act) = layers.at_boot(&meta.id) else {
        return false;
    };
    let done = match act {
        AtBoot::Commit => layers.commit(meta, progress).map(|report| {
            format!(
                "committed layer {} into {} at boot ({} operations); `almost layer undo` \
                 reverts it",
                report.id,
                report.path.display(),
                report.applied
            )
        }),
        AtBoot::Discard => layers.discard(meta, progress).map(|()| {
            format!(
                "discarded layer {} over {} at boot",
                meta.id,
                meta.path.display()
            )
        }),
    };
    match done {
        Ok(said) => {
            tracing::info!("{said}");
            if !out.json {
                println!("{said}");
            }
            true
        }
        Err(e) => {
            out.warning(&format!(
                "the {} at boot of layer {} over {} failed, it is mounted again: {e}",
                act.as_str(),
                meta.id,
                meta.path.display()
            ));
            if let Err(e) = layers.set_at_boot(&meta.id, None) {
                out.warning(&e.to_string());
            }
            false
        }
    }
}

/// `almost boot`: the order matters. Interrupted commits first (their layer
/// must not be mounted meanwhile), then the layers, then stale runtime state,
/// then the default mode, whose walk does not enter the layers' mounts.
fn boot(sys: &System, out: &Output, bus: &SystemBus) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    let opening = Opening {
        why: Some("Restoring layers and the protection at boot"),
        recover: Recovery::AtBoot,
        settle: false,
    };
    let mut act = begin(sys, out, bus, opening, &progress)?;
    let layers = Layers::new(sys);
    for meta in layers.all()? {
        if boot_act(out, &layers, &meta, &progress) {
            continue;
        }
        let result = if meta.temporary {
            layers
                .unmount(&meta)
                .and_then(|()| layers.remove_storage(&meta.id, &progress))
        } else {
            layers.remount(&meta, &progress)
        };
        if let Err(e) = result {
            out.warning(&format!(
                "layer {} over {}: {e}",
                meta.id,
                meta.path.display()
            ));
        }
    }
    let then = sys
        .default_lock()
        .map(|on| if on { Mode::Locked } else { Mode::Unlocked });
    if act.guard.reset_at_boot(then)? {
        // Run by hand under `almost run` commands: locking now would make
        // them fail half-way; the last one to end applies the default mode.
        let mut report = sys.measure(&progress)?;
        attach_state(&mut report, act.guard.state());
        out.warning(&format!(
            "`almost run` under way ({}): default_mode is applied when the last one ends",
            report
                .runs
                .iter()
                .map(|r| format!("pid {}: {}", r.pid, r.command))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        out.answer(report, CommandResult::Boot, crate::output::report_text);
        return Ok(0);
    }
    let report = match sys.default_lock() {
        Some(on) => Some(sys.apply(on, &progress)?),
        None => None,
    };
    if let Some(report) = &report {
        out.answer(
            report.clone(),
            CommandResult::Boot,
            crate::output::report_text,
        );
        if let Some(err) = system::outcome(report) {
            return Err(err);
        }
    } else if !out.json {
        println!("default_mode is keep: the flags are left as they are.");
    }
    Ok(0)
}
