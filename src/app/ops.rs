// SPDX-License-Identifier: GPL-3.0-or-later
//! The privileged acts of the panel: what each runs (through the client's
//! typed method for it) and what the window says before, during and after.

use crate::client::{Almost, AlmostError, LayerPath, Progress, Reply};
use crate::components::protection::While;
use crate::i18n::{i18n, i18n_f, ni18n_f};
use almost_protocol::layer::CommitSelection;
use almost_protocol::{CommandResult, DefaultMode};

/// A privileged act of the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Lock,
    Unlock(While),
    SetDefaultMode(DefaultMode),
    NewLayer(LayerPath),
    /// `only`: the checked changes' paths of a selective commit.
    Commit {
        id: String,
        path: String,
        count: usize,
        only: Option<Vec<String>>,
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
            Op::Commit { id, only: None, .. } => almost.commit(id, on_progress),
            Op::Commit {
                id,
                only: Some(paths),
                ..
            } => almost.commit_only(id, paths, on_progress),
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

    /// The toast once it succeeded with this answer: a selective commit
    /// also says what it applied because the checked changes need it and
    /// what stays in the layer.
    pub fn done_words_with(&self, result: &CommandResult) -> String {
        let mut words = vec![self.done_words()];
        if let (Op::Commit { .. }, CommandResult::LayerCommit(c)) = (self, result)
            && let Some(sel) = &c.selection
        {
            words.extend(selection_words(sel));
        }
        words.join(". ")
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

/// What a selective commit took beyond the checked changes and what it
/// left in the layer, in plain words.
pub fn selection_words(sel: &CommitSelection) -> Vec<String> {
    let folders = sel.needed.iter().filter(|n| n.why != "hard-link").count() as u64;
    let links = sel.needed.len() as u64 - folders;
    let mut out = Vec::new();
    if folders > 0 {
        out.push(ni18n_f(
            "{} folder they need was applied too",
            "{} folders they need were applied too",
            folders,
            &[&folders.to_string()],
        ));
    }
    if links > 0 {
        out.push(ni18n_f(
            "{} other name of a linked file was applied too",
            "{} other names of linked files were applied too",
            links,
            &[&links.to_string()],
        ));
    }
    out.push(ni18n_f(
        "{} change stays in the layer",
        "{} changes stay in the layer",
        sel.rest,
        &[&sel.rest.to_string()],
    ));
    out
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
            only: None,
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

    // A selective commit's toast says what came with the checked changes
    // and what stays in the layer; a whole commit's says neither.
    #[test]
    fn a_selective_commit_says_what_it_took_and_left() {
        let commit = Op::Commit {
            id: "ab".into(),
            path: "/usr".into(),
            count: 1,
            only: Some(vec!["/usr/a/b/f".into()]),
        };
        let needed = |path: &str, why: &str| almost_protocol::layer::NeededChange {
            path: path.into(),
            by: "/usr/a/b/f".into(),
            why: why.into(),
        };
        let mut result = almost_protocol::LayerCommit {
            id: "ab".into(),
            path: "/usr".into(),
            paths: vec!["/usr".into()],
            at_boot: false,
            applied: Some(3),
            outcome: Some("committed".into()),
            selection: Some(CommitSelection {
                paths: vec!["/usr/a/b/f".into()],
                except: false,
                selected: 3,
                needed: vec![
                    needed("/usr/a", "new-directory"),
                    needed("/usr/a/b", "new-directory"),
                ],
                rest: 2,
            }),
        };
        assert_eq!(
            commit.done_words_with(&CommandResult::LayerCommit(result.clone())),
            "1 change applied to /usr. 2 folders they need were applied too. \
             2 changes stay in the layer"
        );
        if let Some(sel) = result.selection.as_mut() {
            sel.needed = vec![needed("/usr/g", "hard-link")];
            sel.rest = 1;
        }
        assert_eq!(
            commit.done_words_with(&CommandResult::LayerCommit(result.clone())),
            "1 change applied to /usr. 1 other name of a linked file was applied too. \
             1 change stays in the layer"
        );
        result.selection = None;
        assert_eq!(
            commit.done_words_with(&CommandResult::LayerCommit(result)),
            "1 change applied to /usr"
        );
    }
}
