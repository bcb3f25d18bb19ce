// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost package-remove`: what the Debian package's `prerm` runs before
//! dpkg removes almost, so that the removal leaves no flag behind and loses
//! no work.
//!
//! It refuses, changing nothing, while a layer is open (its changes would
//! be orphaned in `/var/lib/almost`, its mount left over a system tree) or a
//! commit or undo is unfinished (only almost can finish or roll it back).
//! Otherwise it unlocks every managed tree as an explicit unlock: a pending
//! timed re-lock is cancelled, and an `almost run` under way (the
//! `almost run -- apt remove almost` that is removing it) restores
//! "unlocked" when its command ends instead of locking again.

use std::sync::Arc;

use almost_core::layer::Layers;
use almost_core::sysbus::SystemBus;
use almost_core::system::{Opening, Progress, System};
use almost_core::{Error, Result};
use almost_protocol::{CommandResult, Phase};

use super::Ctx;
use crate::output::Output;

/// The message of a refusal: the package stays installed.
const THEN: &str = "then remove almost again";

pub fn run(ctx: Ctx) -> Result<i32> {
    prepare_remove(ctx.sys, ctx.out, ctx.bus)
}

fn prepare_remove(sys: &System, out: &Output, bus: &SystemBus) -> Result<i32> {
    let layers = Layers::new(sys);
    if let Some(id) = layers.interrupted_undo() {
        return Err(Error::Busy {
            what: format!("the undo of the commit of layer {id}"),
            detail: format!(
                "it was interrupted; run `sudo almost status`, which finishes it, {THEN}"
            ),
        });
    }
    if let Some(id) = layers.interrupted_commit() {
        return Err(Error::Busy {
            what: format!("the commit of layer {id}"),
            detail: format!(
                "it was interrupted; run `sudo almost status`, which finishes it or rolls it \
                 back, {THEN}"
            ),
        });
    }
    let open = layers.all()?;
    if !open.is_empty() {
        let list: Vec<String> = open
            .iter()
            .map(|l| format!("{} over {}", l.id, l.path.display()))
            .collect();
        return Err(Error::Busy {
            what: format!("almost's layers ({})", list.join(", ")),
            detail: format!(
                "removing almost would leave their changes behind; commit or discard each \
                 (`sudo almost layer commit ID` or `sudo almost layer discard ID`), {THEN}"
            ),
        });
    }
    let progress = Arc::new(Progress::default());
    let opening = Opening {
        why: Some(super::WHY_UNLOCK),
        ..Opening::default()
    };
    let mut act = super::begin(sys, out, bus, opening, &progress)?;
    let shown = out.progress(Phase::Unlock, progress.clone());
    let report = sys.set_mode(&mut act.guard, false, false, &progress)?;
    drop(shown);
    super::finish_report(
        out,
        CommandResult::PackageRemove,
        report,
        "almost is being removed: the system files are unlocked and stay so\n",
    )
}
