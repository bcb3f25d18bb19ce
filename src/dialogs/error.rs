// SPDX-License-Identifier: GPL-3.0-or-later
//! Errors of `almost` at the UI boundary: a translated headline chosen by
//! the error's kind, the act that failed, and the details as `almost` gave
//! them. A dismissed authentication is no error: it is a quiet toast.

use adw::prelude::*;
use almost_protocol::ErrorKind;

use crate::client::AlmostError;
use crate::i18n::i18n;

/// What the user is told about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A toast that goes away by itself.
    Toast(String),
    /// A dialog with a headline and a body.
    Dialog { heading: String, body: String },
}

/// Chooses the words for a failure of the act described by `failed`
/// (e.g. "The layer could not be committed.").
pub fn describe(err: &AlmostError, failed: &str) -> Shown {
    let (heading, advice) = match err {
        AlmostError::Dismissed => {
            return Shown::Toast(i18n("Authentication was dismissed: nothing changed"));
        }
        AlmostError::NotAuthorised => (
            i18n("Not Authorised"),
            // pkexec says the same (127) when polkit refuses outright and
            // when the authentication failed (a wrong password the agent
            // gave up on): the message covers both.
            i18n(
                "The change was not allowed: your account may not change the protection of the system files, or the authentication failed.",
            ),
        ),
        AlmostError::Failed { kind, .. } => match kind {
            ErrorKind::Busy => (
                i18n("In Use"),
                i18n("Close the programs that use it, then try again."),
            ),
            ErrorKind::Config => (
                i18n("Invalid Configuration"),
                i18n("The configuration file of Almost has an error."),
            ),
            ErrorKind::NotRoot => (
                i18n("Administrator Rights Needed"),
                i18n("This needs administrator rights."),
            ),
            ErrorKind::InvalidPath => (
                i18n("Invalid Directory"),
                i18n("This directory cannot be used."),
            ),
            ErrorKind::Partial => (
                i18n("Some Files Were Not Changed"),
                i18n("Some files could not be changed; the others were."),
            ),
            ErrorKind::Unsupported => (
                i18n("Protection Not Supported"),
                i18n("The file system cannot protect these files."),
            ),
            ErrorKind::Locked => (
                i18n("System Files Are Protected"),
                i18n("Unprotect them first, or try the change in a layer."),
            ),
            ErrorKind::Cancelled => {
                return Shown::Toast(i18n("Cancelled: nothing changed"));
            }
            ErrorKind::NoSpace => (
                i18n("Disk Full"),
                i18n("Free some space on the disk, then try again."),
            ),
            // Forbidden: a command line the panel never builds.
            ErrorKind::Internal | ErrorKind::Usage | ErrorKind::Forbidden => (
                i18n("Something Went Wrong"),
                i18n("Almost met an unexpected problem."),
            ),
        },
        AlmostError::Spawn { .. } | AlmostError::Protocol { .. } => (
            i18n("Almost Could Not Run"),
            i18n("The almost program is missing or did not answer as expected."),
        ),
    };
    let details = match err {
        AlmostError::NotAuthorised => String::new(),
        other => other.to_string(),
    };
    let mut body = format!("{failed} {advice}");
    if !details.is_empty() {
        body.push_str("\n\n");
        body.push_str(&details);
    }
    Shown::Dialog { heading, body }
}

/// The words for a failed "Undo last commit": `almost layer undo` refuses
/// with `busy` when files the commit wrote changed since (the message names
/// them); anything else as for every act.
pub fn describe_undo(err: &AlmostError, failed: &str) -> Shown {
    match err {
        AlmostError::Failed {
            kind: ErrorKind::Busy,
            ..
        } => Shown::Dialog {
            heading: i18n("Changed Since the Commit"),
            body: format!(
                "{failed} {}\n\n{err}",
                i18n(
                    "Files the commit wrote were changed afterwards, and undoing it would throw those changes away. Nothing was changed. To undo anyway, run “sudo almost layer undo --force” in a terminal."
                )
            ),
        },
        other => describe(other, failed),
    }
}

/// Presents an error dialog over `parent`.
pub fn present(parent: &impl IsA<gtk::Window>, heading: &str, body: &str) -> adw::MessageDialog {
    let dialog = adw::MessageDialog::new(Some(parent), Some(heading), Some(body));
    dialog.add_responses(&[("close", &i18n("_Close"))]);
    dialog.set_default_response(Some("close"));
    dialog.set_close_response("close");
    dialog.set_body_use_markup(false);
    crate::components::name(&dialog, heading);
    dialog.present();
    dialog
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_gets_its_words() {
        assert!(matches!(
            describe(&AlmostError::Dismissed, "x"),
            Shown::Toast(_)
        ));
        let Shown::Dialog { heading, body } = describe(&AlmostError::NotAuthorised, "F.") else {
            panic!("a dialog")
        };
        assert_eq!(heading, "Not Authorised");
        assert!(body.starts_with("F. The change was not allowed"));
        assert!(body.ends_with("or the authentication failed."));
        let busy = AlmostError::Failed {
            kind: ErrorKind::Busy,
            message: "layer x is busy: in use by 12 (sleep)".into(),
            exit_code: 8,
        };
        let Shown::Dialog { heading, body } = describe(&busy, "The layer was not committed.")
        else {
            panic!("a dialog")
        };
        assert_eq!(heading, "In Use");
        assert!(body.ends_with("in use by 12 (sleep)"), "{body}");
        let cancelled = AlmostError::Failed {
            kind: ErrorKind::Cancelled,
            message: String::new(),
            exit_code: 10,
        };
        assert!(matches!(describe(&cancelled, "x"), Shown::Toast(_)));
        let full = AlmostError::Failed {
            kind: ErrorKind::NoSpace,
            message: "writing /etc/almost/almost.toml: No space left on device".into(),
            exit_code: 11,
        };
        let Shown::Dialog { heading, body } = describe(&full, "The setting was not saved.") else {
            panic!("a dialog")
        };
        assert_eq!(heading, "Disk Full");
        assert!(body.contains("Free some space"), "{body}");
        assert!(body.ends_with("No space left on device"), "{body}");
        // An undo refused because the files changed since the commit is
        // not "in use".
        let changed = AlmostError::Failed {
            kind: ErrorKind::Busy,
            message: "not undoing the commit of layer ab12: changed since the commit, an undo \
                      would overwrite /usr/lib/pkg/a.txt"
                .into(),
            exit_code: 8,
        };
        let Shown::Dialog { heading, body } =
            describe_undo(&changed, "The last commit could not be undone.")
        else {
            panic!("a dialog")
        };
        assert_eq!(heading, "Changed Since the Commit");
        assert!(body.contains("--force"), "{body}");
        assert!(body.ends_with("/usr/lib/pkg/a.txt"), "{body}");
        assert!(matches!(
            describe_undo(&full, "x"),
            Shown::Dialog { heading, .. } if heading == "Disk Full"
        ));
    }
}
