// SPDX-License-Identifier: GPL-3.0-or-later
//! After a crash: what is left to finish, and finishing it.

use std::fs;
use std::sync::Arc;

use super::CommitReport;
use super::apply::exists;
use super::journal::parse_journal;
use crate::error::{Error, Result};
use crate::layer::Layers;
use crate::system::Progress;

impl Layers<'_> {
    /// Whether a crash left something for `recover` to finish.
    pub fn needs_recovery(&self) -> bool {
        let trash = fs::read_dir(self.store()).is_ok_and(|r| {
            r.filter_map(std::result::Result::ok)
                .any(|e| crate::layer::is_trash(&e.file_name()))
        });
        trash
            || self.interrupted_commit().is_some()
            || self.interrupted_undo().is_some()
            || self.legacy_pending()
            || self.history_trash()
    }

    /// The layer whose commit a crash interrupted, if any.
    pub fn interrupted_commit(&self) -> Option<String> {
        self.all()
            .ok()?
            .into_iter()
            .find(|l| exists(&self.journal_path(&l.id)))
            .map(|l| l.id)
    }

    /// Finishes an undo, and finishes or rolls back commits, interrupted by
    /// a crash. Returns what was done, one report per layer.
    pub fn recover(&self, progress: &Arc<Progress>) -> Vec<Result<CommitReport>> {
        self.recover_with(progress, true)
    }

    /// [`Layers::recover`] for `almost boot`: a commit rolled back leaves its
    /// layer unmounted, since the boot mounts the layers itself after doing
    /// what it was asked to do with them (`--at-boot`); a layer mounted here
    /// would be in use by everything started meanwhile (udevd runs already)
    /// and could not be committed at boot.
    pub fn recover_at_boot(&self, progress: &Arc<Progress>) -> Vec<Result<CommitReport>> {
        self.recover_with(progress, false)
    }

    pub(super) fn recover_with(
        &self,
        progress: &Arc<Progress>,
        remount: bool,
    ) -> Vec<Result<CommitReport>> {
        let mut done = Vec::new();
        // An older almost's undo data joins the history (an interrupted
        // commit's half-made one is left to that commit's recovery).
        if self.legacy_pending()
            && let Err(e) = self.upgrade_legacy()
        {
            done.push(Err(e));
        }
        if let Err(e) = self.empty_history_trash() {
            done.push(Err(e));
        }
        if let Some(id) = self.interrupted_undo() {
            tracing::warn!("finishing the interrupted undo of the commit of layer {id}");
            // Begun already: no comparison (the tree is half restored).
            done.push(self.undo(Some(&id), progress, false));
        }
        let Ok(layers) = self.all() else {
            return done;
        };
        done.extend(layers.into_iter().filter_map(|meta| {
            let file = self.journal_path(&meta.id);
            let bytes = fs::read(&file).ok()?;
            let journal = match parse_journal(&file, &self.sys.config, &bytes) {
                // The same layer over the same directories (an older
                // almost wrote `path` alone, a newer one `paths` too).
                Ok(j) if j.layer.id == meta.id && j.layer.parts() == meta.parts() => j,
                Ok(_) => {
                    return Some(Err(Error::InvalidPath {
                        path: file.display().to_string(),
                        reason: "it is the journal of another layer".to_owned(),
                    }));
                }
                Err(e) => return Some(Err(e)),
            };
            tracing::warn!("recovering the interrupted commit of layer {}", meta.id);
            Some(self.finish(journal, progress, remount))
        }));
        done
    }
}
