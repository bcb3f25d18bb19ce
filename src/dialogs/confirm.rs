// SPDX-License-Identifier: GPL-3.0-or-later
//! The question asked before a destructive act (discard a layer, undo a
//! commit): an AdwMessageDialog whose act is styled destructive and whose
//! default answer is Cancel.

use adw::prelude::*;

use crate::i18n::{i18n, i18n_f, ni18n_f};

/// Asks; calls `on_yes` only if the destructive answer was chosen.
pub fn ask(
    parent: &impl IsA<gtk::Window>,
    heading: &str,
    body: &str,
    act: &str,
    on_yes: impl Fn() + 'static,
) -> adw::MessageDialog {
    let dialog = adw::MessageDialog::new(Some(parent), Some(heading), Some(body));
    dialog.add_responses(&[("cancel", &i18n("_Cancel")), ("yes", act)]);
    dialog.set_response_appearance("yes", adw::ResponseAppearance::Destructive);
    dialog.set_default_response(Some("cancel"));
    dialog.set_close_response("cancel");
    crate::components::name(&dialog, heading);
    crate::components::name_buttons(&dialog);
    dialog.connect_response(None, move |_, response| {
        if response == "yes" {
            on_yes();
        }
    });
    dialog.present();
    dialog
}

/// The heading and body of "Discard the layer?". The path is in the body,
/// where it wraps as a whole, not in the heading ("Discard the Layer over
/// / opt?"); a layer without changes says so instead of "Its 0 changes".
pub fn discard_words(path: &str, changes: Option<u64>) -> (String, String) {
    let body = match changes {
        Some(0) => i18n_f(
            "The layer over {} has no changes. The files in it stay as they are.",
            &[path],
        ),
        Some(n) => ni18n_f(
            "Its {} change is deleted. The files in {} stay as they are.",
            "Its {} changes are deleted. The files in {} stay as they are.",
            n,
            &[&n.to_string(), path],
        ),
        None => i18n_f(
            "Its changes are deleted. The files in {} stay as they are.",
            &[path],
        ),
    };
    (i18n("Discard the Layer?"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discarding_says_what_goes_without_zero_counts() {
        let (heading, body) = discard_words("/opt", Some(0));
        assert_eq!(heading, "Discard the Layer?");
        assert_eq!(
            body,
            "The layer over /opt has no changes. The files in it stay as they are."
        );
        assert_eq!(
            discard_words("/usr/lib", Some(1)).1,
            "Its 1 change is deleted. The files in /usr/lib stay as they are."
        );
        assert!(discard_words("/usr", None).1.starts_with("Its changes"));
    }
}
