// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer …`: thin wrappers over almost-core's layers that ask, act
//! and answer, one file per subcommand; what several share is here.

mod commit;
mod diff;
mod discard;
mod history;
mod list;
mod mount;
mod new;
mod undo;

use std::sync::Arc;

use almost_core::layer::{AtBoot, LayerMeta, Layers};
use almost_core::sysbus::SystemBus;
use almost_core::system::{Progress, System};
use almost_core::{Error, Result};
use almost_helper::cli::LayerAction;
use almost_protocol::CommandResult;

pub use list::{infos, list_text};

use super::{Ctx, begin, layer_opening};
use crate::output::{Output, shown};
use crate::wire;

pub fn run(ctx: Ctx, action: &LayerAction) -> Result<i32> {
    match action {
        LayerAction::New {
            paths,
            system,
            temporary,
            host,
        } => new::run(ctx, paths, *system, *temporary, *host),
        LayerAction::List => list::run(ctx),
        LayerAction::Diff { id, patch } => diff::run(ctx, id, *patch),
        LayerAction::Commit {
            id,
            yes,
            at_boot,
            only,
            except,
        } => commit::run(ctx, id, *yes, *at_boot, only, except),
        LayerAction::Discard { id, yes, at_boot } => discard::run(ctx, id, *yes, *at_boot),
        LayerAction::Mount { id } => mount::run(ctx, id),
        LayerAction::Undo { commit, yes, force } => undo::run(ctx, commit.as_deref(), *yes, *force),
        LayerAction::History => history::run(ctx),
    }
}

/// The directories a layer covers, as a reader is shown them: "/usr, /etc".
pub fn shown_parts(parts: &[std::path::PathBuf]) -> String {
    parts
        .iter()
        .map(|p| shown(p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The commands that must look beneath mounted layers enter a private mount
/// namespace first, before any thread exists.
pub fn needs_private_mounts(action: &LayerAction) -> bool {
    matches!(action, LayerAction::Diff { .. } | LayerAction::List)
}

/// `layer new --host PATH`: the path inside the root that the host's PATH
/// (below the root's directory) names.
pub fn inside_of_host(sys: &System, path: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    let host = std::path::Path::new(path);
    if !host.is_absolute() {
        return Err(invalid("not a full path: it must start with /".to_owned()));
    }
    let inside = sys
        .root
        .inside(host)
        .ok_or_else(|| invalid(format!("not below the root {}", sys.root.path().display())))?;
    inside
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid("not valid UTF-8".to_owned()))
}

/// `layer commit --at-boot`, `layer discard --at-boot`: records the act for
/// the next `almost boot`, which does it before the layer is mounted again
/// (and before any service starts). A later `--at-boot` replaces it; a
/// commit or discard done now makes it moot.
pub(super) fn leave_to_boot(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    layers: &Layers,
    meta: &LayerMeta,
    act: AtBoot,
    progress: &Arc<Progress>,
) -> Result<i32> {
    let _opened = begin(sys, out, bus, layer_opening(None), progress)?;
    // A layer the recovery just committed (or whose id was wrong) is gone.
    let meta = layers.get(&meta.id)?;
    layers.set_at_boot(&meta.id, Some(act))?;
    let verb = match act {
        AtBoot::Commit => "committed into",
        AtBoot::Discard => "discarded from",
    };
    let text = || {
        format!(
            "Layer {} will be {verb} {} at the next boot, before anything starts. Until then it \
             stays mounted and in use.\n",
            meta.id,
            shown_parts(meta.parts())
        )
    };
    match act {
        AtBoot::Commit => {
            let result = almost_protocol::LayerCommit {
                id: meta.id.clone(),
                path: meta.path.clone(),
                paths: meta.parts().to_vec(),
                at_boot: true,
                applied: None,
                outcome: None,
                selection: None,
            };
            out.answer(result, CommandResult::LayerCommit, |_| text());
        }
        AtBoot::Discard => {
            out.answer(
                wire::layer_ref(&meta, true),
                CommandResult::LayerDiscard,
                |_| text(),
            );
        }
    }
    Ok(0)
}
