// SPDX-License-Identifier: GPL-3.0-or-later
//! Errors of `almost` at the UI boundary: a translated headline chosen by
//! the error's kind, the act that failed, and the details as `almost` gave
//! them. A dismissed authentication is no error: it is a quiet toast.

use adw::prelude::*;
use almost_protocol::ErrorKind;

use almost_protocol::Process;

use crate::client::AlmostError;
use crate::i18n::{i18n, i18n_f, ni18n, ni18n_f};

/// What the user is told about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A toast that goes away by itself.
    Toast(String),
    /// A dialog (or, for a problem found in the background, a warning row).
    Dialog(Message),
}

/// A failure in the panel's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub heading: String,
    /// What failed and what to do, translated.
    pub body: String,
    /// What `almost` said (its English line), for the "Technical Details"
    /// expander; empty when there is nothing more to say.
    pub details: String,
    /// Whether "Try Again" makes sense (something may end or be freed).
    pub retry: bool,
}

/// The programs a `busy` refusal names, in words: "“sleep” (process 12)".
pub fn programs_words(processes: &[Process]) -> String {
    processes
        .iter()
        .map(|p| i18n_f("“{}” (process {})", &[&p.command, &p.pid.to_string()]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chooses the words for a failure of the act described by `failed`
/// (e.g. "The layer could not be committed.").
pub fn describe(err: &AlmostError, failed: &str) -> Shown {
    let mut retry = false;
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
        AlmostError::Failed {
            kind, processes, ..
        } => match kind {
            ErrorKind::Busy if !processes.is_empty() => {
                retry = true;
                let n = processes.len() as u64;
                (
                    ni18n(
                        "A Program Is Using the Files",
                        "Programs Are Using the Files",
                        n,
                    ),
                    ni18n_f(
                        "This program still uses files of the layer: {}. Quit it, then try again.",
                        "These programs still use files of the layer: {}. Quit them, then try again.",
                        n,
                        &[&programs_words(processes)],
                    ),
                )
            }
            ErrorKind::Busy => {
                retry = true;
                (
                    i18n("Not Possible Right Now"),
                    i18n(
                        "Something else is using these files. Wait until it ends, then try again.",
                    ),
                )
            }
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
            ErrorKind::NoSpace => {
                retry = true;
                (
                    i18n("Disk Full"),
                    i18n("Free some space on the disk, then try again."),
                )
            }
            // Internal, Usage, Forbidden (a command line the panel never
            // builds), and kinds newer than this panel.
            _ => (
                i18n("Something Went Wrong"),
                i18n("Almost met an unexpected problem."),
            ),
        },
        // The History explains it with the commits named
        // (components/history.rs); these are the words anywhere else.
        AlmostError::Conflict { .. } => (
            i18n("Later Changes Come First"),
            i18n(
                "Changes applied later touched the same files. Undo those first, newest first. Nothing was changed.",
            ),
        ),
        AlmostError::Spawn { .. } | AlmostError::Protocol { .. } => (
            i18n("Almost Could Not Run"),
            i18n("The almost program is missing or did not answer as expected."),
        ),
    };
    let details = match err {
        AlmostError::NotAuthorised => String::new(),
        other => other.to_string(),
    };
    let body = if failed.is_empty() {
        advice
    } else {
        format!("{failed} {advice}")
    };
    Shown::Dialog(Message {
        heading,
        body,
        details,
        retry,
    })
}

/// The words for a failed "Undo last commit": `almost layer undo` refuses
/// with `busy` when files the commit wrote changed since (the message names
/// them); anything else as for every act.
pub fn describe_undo(err: &AlmostError, failed: &str) -> Shown {
    match err {
        AlmostError::Failed {
            kind: ErrorKind::Busy,
            processes,
            ..
        } if processes.is_empty() => Shown::Dialog(Message {
            heading: i18n("Changed Since They Were Applied"),
            body: format!(
                "{failed} {}",
                i18n(
                    "Files written when the changes were applied were changed afterwards, and undoing would throw those later changes away. Nothing was changed. To undo anyway, run “sudo almost layer undo --force” in a terminal."
                )
            ),
            details: err.to_string(),
            retry: false,
        }),
        other => describe(other, failed),
    }
}

/// The "Technical Details" expander: what `almost` said, selectable.
pub fn details_expander(details: &str) -> gtk::Expander {
    let text = gtk::Label::builder()
        .label(details)
        .wrap(true)
        .wrap_mode(gtk::pango::WrapMode::WordChar)
        .selectable(true)
        .xalign(0.0)
        .margin_top(6)
        .build();
    text.add_css_class("caption");
    text.add_css_class("monospace");
    let expander = gtk::Expander::builder()
        .label(i18n("Technical Details"))
        .child(&text)
        .build();
    crate::components::name(&expander, &i18n("Technical Details"));
    expander
}

/// Presents an error dialog over `parent`: the heading, the body, the
/// technical details in an expander, and Try Again (`retry`, when given
/// and the failure allows it) beside Close.
pub fn present(
    parent: &impl IsA<gtk::Window>,
    message: &Message,
    retry: Option<Box<dyn Fn()>>,
) -> adw::MessageDialog {
    let dialog = adw::MessageDialog::new(Some(parent), Some(&message.heading), Some(&message.body));
    dialog.add_responses(&[("close", &i18n("_Close"))]);
    dialog.set_close_response("close");
    dialog.set_default_response(Some("close"));
    if let Some(retry) = retry.filter(|_| message.retry) {
        dialog.add_response("retry", &i18n("_Try Again"));
        dialog.set_response_appearance("retry", adw::ResponseAppearance::Suggested);
        dialog.set_default_response(Some("retry"));
        dialog.connect_response(Some("retry"), move |_, _| retry());
    }
    dialog.set_body_use_markup(false);
    if !message.details.is_empty() {
        dialog.set_extra_child(Some(&details_expander(&message.details)));
    }
    crate::components::name(&dialog, &message.heading);
    crate::components::name_buttons(&dialog);
    dialog.present();
    dialog
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: ErrorKind, message: &str, processes: Vec<Process>) -> AlmostError {
        AlmostError::Failed {
            kind,
            message: message.into(),
            exit_code: kind.exit_code(),
            processes,
        }
    }

    fn dialog(shown: Shown) -> Message {
        match shown {
            Shown::Dialog(m) => m,
            Shown::Toast(t) => panic!("a toast: {t}"),
        }
    }

    // Each failure gets a heading and advice of its own, the act's words
    // first; what almost said goes to the details, never into the body.
    #[test]
    fn each_failure_gets_its_words() {
        assert!(matches!(
            describe(&AlmostError::Dismissed, "x"),
            Shown::Toast(_)
        ));
        let m = dialog(describe(&AlmostError::NotAuthorised, "F."));
        assert_eq!(m.heading, "Not Authorised");
        assert!(m.body.starts_with("F. The change was not allowed"));
        assert!(m.body.ends_with("or the authentication failed."));
        assert_eq!(m.details, "");
        assert!(!m.retry);
        let cancelled = failed(ErrorKind::Cancelled, "", vec![]);
        assert!(matches!(describe(&cancelled, "x"), Shown::Toast(_)));
        let full = failed(
            ErrorKind::NoSpace,
            "writing /etc/almost/almost.toml: No space left on device",
            vec![],
        );
        let m = dialog(describe(&full, "The setting was not saved."));
        assert_eq!(m.heading, "Disk Full");
        assert_eq!(
            m.body,
            "The setting was not saved. Free some space on the disk, then try again."
        );
        assert!(m.details.ends_with("No space left on device"), "{m:?}");
        assert!(m.retry);
        let config = failed(
            ErrorKind::Config,
            "/etc/almost/almost.toml:1:16: bad",
            vec![],
        );
        let m = dialog(describe(&config, ""));
        assert_eq!(m.body, "The configuration file of Almost has an error.");
        assert!(!m.retry);
    }

    // A layer in use: the programs are named from the error's data in the
    // panel's words (the CLI's English line only in the details), with
    // Try Again; singular and plural.
    #[test]
    fn a_busy_layer_names_its_programs() {
        let line = "layer 41e04e40 over /usr/lib is busy: in use by 12652 (bash). A layer…";
        let one = failed(
            ErrorKind::Busy,
            line,
            vec![Process {
                pid: 12652,
                command: "bash".into(),
            }],
        );
        let m = dialog(describe(
            &one,
            "The changes could not be applied to /usr/lib.",
        ));
        assert_eq!(m.heading, "A Program Is Using the Files");
        assert_eq!(
            m.body,
            "The changes could not be applied to /usr/lib. This program still uses files of \
             the layer: “bash” (process 12652). Quit it, then try again."
        );
        assert!(!m.body.contains("busy"), "{m:?}");
        assert_eq!(m.details, line);
        assert!(m.retry);
        let two = failed(
            ErrorKind::Busy,
            line,
            vec![
                Process {
                    pid: 1,
                    command: "bash".into(),
                },
                Process {
                    pid: 2,
                    command: "sleep".into(),
                },
            ],
        );
        let m = dialog(describe(&two, "F."));
        assert_eq!(m.heading, "Programs Are Using the Files");
        assert!(
            m.body
                .contains("These programs still use files of the layer: “bash” (process 1), “sleep” (process 2). Quit them"),
            "{m:?}"
        );
        // Busy without processes (a lock while `almost run` is under way).
        let m = dialog(describe(
            &failed(ErrorKind::Busy, "the system is busy", vec![]),
            "F.",
        ));
        assert_eq!(m.heading, "Not Possible Right Now");
        assert!(m.retry);
    }

    // An undo refused because the files changed since the commit is not
    // "in use".
    #[test]
    fn an_undo_over_changed_files_says_so() {
        let changed = failed(
            ErrorKind::Busy,
            "not undoing the commit of layer ab12: changed since the commit, an undo would \
             overwrite /usr/lib/pkg/a.txt",
            vec![],
        );
        let m = dialog(describe_undo(
            &changed,
            "The applied changes could not be undone.",
        ));
        assert_eq!(m.heading, "Changed Since They Were Applied");
        assert!(m.body.contains("--force"), "{m:?}");
        assert!(m.details.ends_with("/usr/lib/pkg/a.txt"), "{m:?}");
        assert!(!m.retry);
        let full = failed(ErrorKind::NoSpace, "x", vec![]);
        assert_eq!(dialog(describe_undo(&full, "x")).heading, "Disk Full");
    }

    // A refused undo of an older commit outside the History (which names
    // the commits itself): its own heading, nothing to retry, almost's
    // line in the details.
    #[test]
    fn a_conflict_says_later_changes_come_first() {
        let e = AlmostError::Conflict {
            message: "not undoing commit ab: later commits changed the same paths".into(),
            commits: vec!["cd".into()],
        };
        let m = dialog(describe(&e, "F."));
        assert_eq!(m.heading, "Later Changes Come First");
        assert!(
            m.body
                .starts_with("F. Changes applied later touched the same files.")
        );
        assert_eq!(
            m.details,
            "not undoing commit ab: later commits changed the same paths"
        );
        assert!(!m.retry);
    }
}
