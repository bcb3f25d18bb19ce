// SPDX-License-Identifier: GPL-3.0-or-later
//! The privileged acts of the panel: what each runs (through the client's
//! typed method for it) and what the window says before, during and after.

use crate::client::{Almost, AlmostError, LayerPath, Progress, Reply};
use crate::components::protection::While;
use crate::i18n::{i18n, i18n_f, ni18n_f};
use almost_protocol::DefaultMode;

/// A privileged act of the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Lock,
    Unlock(While),
    SetDefaultMode(DefaultMode),
    NewLayer(LayerPath),
    Commit {
        id: String,
        path: String,
        count: usize,
    },
    Discard {
        id: String,
        path: String,
    },
    Undo,
    /// Undo of a commit the History lists (`paths`: its directories).
    UndoCommit {
        id: String,
        paths: String,
    },
}

impl Op {
    /// Runs the act through the client's method for it.
    pub fn run(
        &self,
        almost: &Almost,
        on_progress: impl FnMut(Progress),
    ) -> Result<Reply, AlmostError> {
        match self {
            Op::Lock => almost.lock(on_progress),
            Op::Unlock(w) => almost.unlock(w.duration(), on_progress),
            Op::SetDefaultMode(m) => almost.set_default_mode(*m),
            Op::NewLayer(path) => almost.new_layer(path),
            Op::Commit { id, .. } => almost.commit(id, on_progress),
            Op::Discard { id, .. } => almost.discard(id),
            Op::Undo => almost.undo(),
            Op::UndoCommit { id, .. } => almost.undo_commit(id),
        }
    }

    /// What the header says while it runs.
    pub fn busy_words(&self) -> String {
        match self {
            Op::Lock => i18n("Protecting system files…"),
            Op::Unlock(_) => i18n("Unprotecting system files…"),
            Op::SetDefaultMode(_) => i18n("Saving the mode at startup…"),
            Op::NewLayer(LayerPath::System) => i18n("Making a layer for a software change…"),
            Op::NewLayer(p) => i18n_f("Making a layer over {}…", &[&p.text()]),
            Op::Commit { path, .. } => i18n_f("Applying the changes to {}…", &[path]),
            Op::Discard { path, .. } => i18n_f("Discarding the layer over {}…", &[path]),
            Op::Undo => i18n("Undoing the last applied changes…"),
            Op::UndoCommit { paths, .. } => i18n_f("Undoing the changes applied to {}…", &[paths]),
        }
    }

    /// The toast once it succeeded.
    pub fn done_words(&self) -> String {
        match self {
            Op::Lock => i18n("Protection turned on"),
            Op::Unlock(While::TenMinutes) => i18n("Protection turned off for 10 minutes"),
            Op::Unlock(While::OneHour) => i18n("Protection turned off for 1 hour"),
            Op::Unlock(While::UntilRestart) => i18n("Protection turned off"),
            Op::SetDefaultMode(_) => i18n("Mode at startup saved"),
            Op::NewLayer(LayerPath::System) => {
                i18n("Software changes now go into a new layer: install or remove, then review")
            }
            Op::NewLayer(p) => i18n_f("Changes in {} now go into a new layer", &[&p.text()]),
            Op::Commit { path, count, .. } => ni18n_f(
                "{} change applied to {}",
                "{} changes applied to {}",
                *count as u64,
                &[&count.to_string(), path],
            ),
            Op::Discard { path, .. } => i18n_f("The layer over {} is discarded", &[path]),
            Op::Undo => i18n("The applied changes are undone"),
            Op::UndoCommit { paths, .. } => {
                i18n_f("The changes applied to {} are undone", &[paths])
            }
        }
    }

    /// The first sentence of the error dialog when it failed.
    pub fn failed_words(&self) -> String {
        match self {
            Op::Lock => i18n("The system files could not be protected."),
            Op::Unlock(_) => i18n("The system files could not be unprotected."),
            Op::SetDefaultMode(_) => i18n("The mode at startup could not be saved."),
            Op::NewLayer(LayerPath::System) => {
                i18n("No layer could be made for a software change.")
            }
            Op::NewLayer(p) => i18n_f("No layer could be made over {}.", &[&p.text()]),
            Op::Commit { path, .. } => i18n_f("The changes could not be applied to {}.", &[path]),
            Op::Discard { path, .. } => {
                i18n_f("The layer over {} could not be discarded.", &[path])
            }
            Op::Undo => i18n("The applied changes could not be undone."),
            Op::UndoCommit { paths, .. } => {
                i18n_f("The changes applied to {} could not be undone.", &[paths])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // What the window says of an act names what it acts on.
    #[test]
    fn acts_say_what_they_did() {
        let commit = Op::Commit {
            id: "ab".into(),
            path: "/usr".into(),
            count: 3,
        };
        assert_eq!(commit.done_words(), "3 changes applied to /usr");
        let new = Op::NewLayer(LayerPath::Host("/tmp/r/usr/lib".into()));
        assert_eq!(
            new.failed_words(),
            "No layer could be made over /tmp/r/usr/lib."
        );
        // A software change has no path to name: its own words.
        let system = Op::NewLayer(LayerPath::System);
        assert_eq!(system.busy_words(), "Making a layer for a software change…");
        assert_eq!(
            system.failed_words(),
            "No layer could be made for a software change."
        );
        assert!(
            system
                .done_words()
                .starts_with("Software changes now go into a new layer")
        );
    }
}
