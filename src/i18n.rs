// SPDX-License-Identifier: GPL-3.0-or-later
//! Thin gettext wrappers, registered as xgettext keywords (`i18n`,
//! `i18n_f`, `ni18n:1,2`, `ni18n_f:1,2`): every visible string goes
//! through one of them. `{}` placeholders are filled in order after
//! translation, so translators may move them but not drop them.

use std::path::Path;

use gettextrs::{gettext, ngettext};

use crate::config;

/// Binds the gettext domain: to the translations built next to a cargo
/// build when the panel runs from one, to the installed ones otherwise.
pub fn init() {
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        gettextrs::setlocale(gettextrs::LocaleCategory::LcAll, "");
    }
    let dir = locale_dir(std::env::current_exe().ok().as_deref());
    if let Err(e) = gettextrs::bindtextdomain(config::GETTEXT_PACKAGE, dir) {
        tracing::warn!("cannot bind the translations: {e}");
    }
    let _ = gettextrs::bind_textdomain_codeset(config::GETTEXT_PACKAGE, "UTF-8");
    if let Err(e) = gettextrs::textdomain(config::GETTEXT_PACKAGE) {
        tracing::warn!("cannot select the translations: {e}");
    }
}

/// The translations of the build tree serve a panel that runs from outside
/// /usr (a cargo build); an installed panel uses the system's.
pub fn locale_dir(exe: Option<&Path>) -> &'static str {
    let installed = exe.is_none_or(|e| e.starts_with("/usr"));
    if !installed && Path::new(config::BUILD_LOCALEDIR).is_dir() {
        config::BUILD_LOCALEDIR
    } else {
        config::LOCALEDIR
    }
}

/// Fills `{}` placeholders in order; extra placeholders stay as they are.
pub fn fill(format: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(format.len());
    let mut rest = format;
    let mut args = args.iter();
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        match args.next() {
            Some(arg) => out.push_str(arg),
            None => out.push_str("{}"),
        }
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

/// A translated string.
pub fn i18n(msgid: &str) -> String {
    gettext(msgid)
}

/// A translated string with `{}` placeholders.
pub fn i18n_f(format: &str, args: &[&str]) -> String {
    fill(&gettext(format), args)
}

/// A translated string with a plural form chosen by `n`.
pub fn ni18n(singular: &str, plural: &str, n: u64) -> String {
    ngettext(singular, plural, u32::try_from(n).unwrap_or(u32::MAX))
}

/// A plural form with `{}` placeholders (the count is usually one of them).
pub fn ni18n_f(singular: &str, plural: &str, n: u64, args: &[&str]) -> String {
    fill(&ni18n(singular, plural, n), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_in_order() {
        assert_eq!(
            fill("Apply {} changes to {}", &["3", "/usr"]),
            "Apply 3 changes to /usr"
        );
        assert_eq!(fill("{} and {}", &["a"]), "a and {}");
        assert_eq!(fill("none", &["a"]), "none");
        assert_eq!(fill("{}{}", &["é", "ü"]), "éü");
    }

    #[test]
    fn an_installed_panel_uses_the_system_translations() {
        assert_eq!(
            locale_dir(Some(Path::new("/usr/bin/almost-panel"))),
            config::LOCALEDIR
        );
        assert_eq!(locale_dir(None), config::LOCALEDIR);
    }
}
