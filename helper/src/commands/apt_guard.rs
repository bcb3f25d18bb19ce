// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost apt-guard`: what the apt hook runs before dpkg.

use almost_core::layer::Layers;
use almost_core::state;
use almost_core::{Error, Result};

use super::Ctx;

/// `almost apt-guard`: refuses (exit 9, with what to do) when a managed
/// tree is locked — its top directory carries the flag: one read per path,
/// no walk — and no `almost run` is under way nor a system layer
/// (`layer new --system`) mounted; succeeds otherwise, silently, or, with
/// a system layer, saying that the change goes into it.
pub fn run(ctx: Ctx) -> Result<i32> {
    let sys = ctx.sys;
    if state::read(&sys.root).runs.iter().any(|r| r.is_alive()) {
        return Ok(0);
    }
    // A software change is what a system layer is for: apt and dpkg write
    // into it (the managed trees, /etc and the package database alike).
    let layers = Layers::new(sys);
    if let Some(layer) = layers
        .all()
        .unwrap_or_default()
        .into_iter()
        .find(|l| l.system && layers.is_mounted(l))
    {
        ctx.out.warning(&format!(
            "this change goes into the system layer {id}: review it with `almost layer diff \
             {id}`, then `almost layer commit {id}` or `almost layer discard {id}`",
            id = layer.id
        ));
        return Ok(0);
    }
    let mut locked = Vec::new();
    for path in &sys.config.paths {
        // A missing or symlinked path is not a tree of its own.
        let Ok(fd) = sys.root.open_dir(path) else {
            continue;
        };
        match almost_core::attrs::get_immutable(std::os::fd::AsFd::as_fd(&fd), c"", sys.iface) {
            Ok(true) => locked.push(path.to_string_lossy().into_owned()),
            Ok(false) => {}
            Err(e) => tracing::debug!("{}: cannot read the flag ({e})", path.display()),
        }
    }
    if locked.is_empty() {
        Ok(0)
    } else {
        Err(Error::Locked { paths: locked })
    }
}
