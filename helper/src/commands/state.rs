// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost state new`, `almost state rollback ID`: the original almost's
//! states, given their meaning here as layers. `state new` is `layer new
//! --system` (a persistent layer over the managed trees, `/etc` and the
//! package manager's state); `state rollback ID` is `layer undo` of the
//! commit ID (any commit `layer history` lists that no later commit
//! overlaps; an ID not in the history is refused, nothing changed).

use almost_core::Result;
use almost_helper::cli::StateAction;

use super::Ctx;

pub fn run(ctx: Ctx, action: &StateAction) -> Result<i32> {
    super::layer::run(ctx, &action.as_layer())
}
