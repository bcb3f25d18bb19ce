// SPDX-License-Identifier: GPL-3.0-or-later
//! The audit entries of an invocation: one when a privileged act starts
//! (before anything changes), one when it ends (or is refused), with the
//! paths it was about.

use almost_core::audit::{self, Caller};
use almost_core::layer::Layers;
use almost_core::system::System;
use almost_core::{Error, config, paths};
use almost_helper::cli::{Cli, Command, LayerAction, OverlayAction};

use crate::commands::layer::inside_of_host;

/// What the audit entry of this invocation needs to know from the run.
#[derive(Default)]
pub struct Act {
    /// The paths (inside the root) the command acted on.
    pub paths: Vec<String>,
    /// The root, once opened and (under pkexec) checked: entries may be
    /// written under it.
    pub root: Option<paths::Root>,
}

/// Records a privileged act (or the refusal of one), under `root` when it
/// may be written to. A failure to record is logged, never turned into the
/// command's failure: the act is done.
pub fn record_act(
    cli: &Cli,
    caller: &Caller,
    act: &Act,
    root: Option<&paths::Root>,
    outcome: std::result::Result<i32, &Error>,
) {
    let entry = audit::Entry::new(
        caller,
        cli.command.name(),
        argv(),
        act.paths.clone(),
        outcome,
    );
    let recorded = match root {
        Some(root) => audit::record(root, &entry, cli.global.journal_socket.as_deref()).map(Some),
        // A root refused under pkexec is not written to: only the system
        // journal, if there is one, hears of the attempt.
        None => audit::record_journal_only(&entry, cli.global.journal_socket.as_deref()),
    };
    match recorded {
        Ok(Some(sink)) => tracing::debug!(?sink, "recorded in the audit log"),
        Ok(None) => tracing::info!("not recorded in the audit log: no journal and no usable root"),
        // Expected for a refused attempt by a user who cannot write the log.
        Err(e) if caller.euid != 0 => {
            tracing::info!("cannot record the attempt in the audit log ({e})")
        }
        Err(e) => tracing::warn!("cannot write the audit log ({e})"),
    }
}

/// Records the start of a privileged act (see [`record_act`] for its end).
pub fn record_start(cli: &Cli, caller: &Caller, act: &Act, root: &paths::Root) {
    let entry = audit::Entry::started(caller, cli.command.name(), argv(), act.paths.clone());
    if let Err(e) = audit::record(root, &entry, cli.global.journal_socket.as_deref()) {
        tracing::warn!("cannot write the audit log ({e})");
    }
}

/// The command line, for the audit entries.
fn argv() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The paths (inside the root) a command acts on.
pub fn act_paths(command: &Command, sys: &System) -> Vec<String> {
    match command {
        Command::Config { .. } => vec![config::CONFIG_FILE.to_owned()],
        Command::Lock { .. }
        | Command::Unlock(_)
        | Command::Enter { .. }
        | Command::Run { .. }
        | Command::Shell
        | Command::Boot
        | Command::PackageRemove
        | Command::RelockTimer => sys
            .config
            .paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        Command::Status | Command::Overview | Command::Log { .. } | Command::AptGuard => Vec::new(),
        Command::Layer { action } => layer_paths(sys, action),
        Command::Overlay { action } => overlay_paths(action),
        Command::State { action } => layer_paths(sys, &action.as_layer()),
    }
}

/// The paths a layer command acts on, for the audit log.
fn layer_paths(sys: &System, action: &LayerAction) -> Vec<String> {
    let layers = Layers::new(sys);
    let of_id = |id: &str| {
        layers
            .get(id)
            .map(|m| {
                m.parts()
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    match action {
        LayerAction::New { system: true, .. } => layers
            .system_parts()
            .0
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        LayerAction::New {
            paths, host: true, ..
        } => paths
            .iter()
            .map(|path| inside_of_host(sys, path).unwrap_or_else(|_| path.clone()))
            .collect(),
        LayerAction::New { paths, .. } => paths.clone(),
        LayerAction::Commit { id, .. }
        | LayerAction::Discard { id, .. }
        | LayerAction::Mount { id } => of_id(id),
        LayerAction::Undo {
            commit: Some(id), ..
        } => layers
            .history()
            .into_iter()
            .find(|e| e.record.id == *id)
            .map(|e| {
                e.record
                    .paths
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default(),
        LayerAction::Undo { commit: None, .. } => layers
            .last_commit()
            .map(|j| {
                j.layer
                    .parts()
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default(),
        LayerAction::List | LayerAction::Diff { .. } | LayerAction::History => Vec::new(),
    }
}

fn overlay_paths(action: &OverlayAction) -> Vec<String> {
    match action {
        OverlayAction::New { path }
        | OverlayAction::Commit { path, .. }
        | OverlayAction::Discard { path, .. } => {
            vec![path.clone()]
        }
        OverlayAction::List => Vec::new(),
    }
}
