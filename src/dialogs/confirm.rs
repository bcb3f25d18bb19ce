// SPDX-License-Identifier: GPL-3.0-or-later
//! The question asked before a destructive act (discard a layer, undo a
//! commit): an AdwMessageDialog whose act is styled destructive and whose
//! default answer is Cancel.

use adw::prelude::*;

use crate::i18n::i18n;

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
    dialog.connect_response(None, move |_, response| {
        if response == "yes" {
            on_yes();
        }
    });
    dialog.present();
    dialog
}
