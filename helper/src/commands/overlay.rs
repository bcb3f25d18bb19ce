// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost overlay new|list|commit|discard PATH`: the original almost's
//! spelling of the layer commands, by path.

use almost_core::Result;
use almost_core::layer::Layers;
use almost_helper::cli::{LayerAction, OverlayAction};

use super::{Ctx, layer};

pub fn run(ctx: Ctx, action: &OverlayAction) -> Result<i32> {
    let layers = Layers::new(ctx.sys);
    let by_path = |path: &str| -> Result<String> {
        let path = almost_core::paths::check_syntax(path)?;
        Ok(layers.by_path(&path)?.id)
    };
    let action = match action {
        OverlayAction::New { path } => LayerAction::New {
            paths: vec![path.clone()],
            system: false,
            temporary: false,
            host: false,
        },
        OverlayAction::List => LayerAction::List,
        OverlayAction::Commit { path, yes } => LayerAction::Commit {
            id: by_path(path)?,
            yes: *yes,
            at_boot: false,
            only: Vec::new(),
            except: Vec::new(),
        },
        OverlayAction::Discard { path, yes } => LayerAction::Discard {
            id: by_path(path)?,
            yes: *yes,
            at_boot: false,
        },
    };
    layer::run(ctx, &action)
}
