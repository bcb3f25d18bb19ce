// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost state new`, `almost state rollback ID`: the original almost's
//! states, given their meaning here as layers. `state new` is `layer new
//! --system` (a persistent layer over the managed trees, `/etc` and the
//! package manager's state); `state rollback ID` is `layer undo` of the
//! commit ID. Almost keeps only the last commit for now, named by its
//! layer's id (as `status` shows it under `undo`): any other ID is refused
//! and nothing is changed, until commits get a history of their own.

use almost_core::layer::Layers;
use almost_core::{Error, Result};
use almost_helper::cli::StateAction;

use super::Ctx;

pub fn run(ctx: Ctx, action: &StateAction) -> Result<i32> {
    if let StateAction::Rollback { id, .. } = action {
        let refused = |reason: String| Error::InvalidPath {
            path: id.clone(),
            reason,
        };
        match Layers::new(ctx.sys).last_commit() {
            None => return Err(refused("there is no commit to roll back".to_owned())),
            Some(last) if last.layer.id != *id => {
                return Err(refused(format!(
                    "only the last commit, of layer {}, can be rolled back: almost keeps no \
                     older commit to go back to (yet)",
                    last.layer.id
                )));
            }
            Some(_) => {}
        }
    }
    super::layer::run(ctx, &action.as_layer())
}
