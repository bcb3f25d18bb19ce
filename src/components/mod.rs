// SPDX-License-Identifier: GPL-3.0-or-later
//! The parts of the window, one relm4 component per file, and the small
//! helpers they share (accessible names, words for sizes and ages).

pub mod header;
pub mod history;
pub mod layers;
pub mod protection;

use gtk::prelude::*;

use crate::i18n::{i18n_f, ni18n_f};

// gtk4-rs 0.11 exposes `gtk::Accessible` and `update_property` only with
// its `v4_10` feature, which GTK 4.8 cannot build; the C function exists
// since GTK 4.0, so it is declared here.
mod a11y_ffi {
    use std::ffi::{c_int, c_void};

    /// `GTK_ACCESSIBLE_PROPERTY_LABEL` (gtk/gtkenums.h, unchanged since 4.0).
    pub const PROPERTY_LABEL: c_int = 4;
    /// `GTK_ACCESSIBLE_PROPERTY_DESCRIPTION` (gtk/gtkenums.h, since 4.0).
    pub const PROPERTY_DESCRIPTION: c_int = 1;
    /// `GTK_ACCESSIBLE_RELATION_LABELLED_BY` (gtk/gtkenums.h, since 4.0).
    pub const RELATION_LABELLED_BY: c_int = 10;

    unsafe extern "C" {
        pub fn gtk_accessible_update_property_value(
            accessible: *mut c_void,
            n_properties: c_int,
            properties: *const c_int,
            values: *const gtk::glib::gobject_ffi::GValue,
        );
        pub fn gtk_accessible_reset_relation(accessible: *mut c_void, relation: c_int);
    }
}

/// Gives a widget the accessible name (`GTK_ACCESSIBLE_PROPERTY_LABEL`,
/// what `gtk::accessible::Property::Label` sets) that screen readers and
/// the GUI tests use, and only that name: GTK 4.8 reads a name as the
/// label *and* the text of what the widget is labelled by, so a button
/// (labelled by its own label child) or a row's switch (by the row's
/// title) was read twice ("Commit Commit"). The labelled-by relation
/// goes; call this after whatever sets it (`set_activatable_widget`).
pub fn name(widget: &impl IsA<gtk::Widget>, label: &str) {
    use gtk::glib::translate::{ToGlibPtr, ToGlibPtrMut};
    let mut value = label.to_value();
    let properties = [a11y_ffi::PROPERTY_LABEL];
    let widget: &gtk::Widget = widget.upcast_ref();
    let pointer: *mut gtk::ffi::GtkWidget = widget.to_glib_none().0;
    // SAFETY: every GtkWidget implements GtkAccessible; one property and
    // one GValue holding a string, as that property takes; GTK copies it.
    unsafe {
        a11y_ffi::gtk_accessible_update_property_value(
            pointer.cast(),
            1,
            properties.as_ptr(),
            value.to_glib_none_mut().0,
        );
        a11y_ffi::gtk_accessible_reset_relation(pointer.cast(), a11y_ffi::RELATION_LABELLED_BY);
    }
}

/// Sets a widget's accessible description. GTK 4.8 has no way to
/// announce (`gtk_accessible_announce` is 4.14) nor live regions; what it
/// does send is a description-changed event for the widget, which a
/// screen reader reads out for the widget that has the focus.
pub fn describe(widget: &impl IsA<gtk::Widget>, text: &str) {
    use gtk::glib::translate::{ToGlibPtr, ToGlibPtrMut};
    let mut value = text.to_value();
    let properties = [a11y_ffi::PROPERTY_DESCRIPTION];
    let widget: &gtk::Widget = widget.upcast_ref();
    let pointer: *mut gtk::ffi::GtkWidget = widget.to_glib_none().0;
    // SAFETY: as in `name`: one string property, copied by GTK.
    unsafe {
        a11y_ffi::gtk_accessible_update_property_value(
            pointer.cast(),
            1,
            properties.as_ptr(),
            value.to_glib_none_mut().0,
        );
    }
}

/// A label's text without its mnemonic underscores ("_Close" → "Close").
pub fn without_mnemonic(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            // "__" is a literal underscore; a single one marks the key.
            if chars.peek() == Some(&'_') {
                chars.next();
                out.push('_');
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Names the lists and scrolled panes inside `root` that libadwaita makes
/// and leaves unnamed (GTK 4.8 reads them as "GtkListBox" or nothing, and
/// exposes them as focusable): a group's list by the group's title, the
/// page's scrolled pane by `page`. The lists of groups without a title
/// are named where they are made.
pub fn name_containers(root: &impl IsA<gtk::Widget>, page: &str) {
    for w in descendants(root) {
        if w.is::<gtk::ScrolledWindow>()
            && w.parent().is_some_and(|p| p.is::<adw::PreferencesPage>())
        {
            name(&w, page);
        }
        if w.is::<gtk::ListBox>() {
            let mut up = w.parent();
            while let Some(p) = up {
                if let Some(group) = p.downcast_ref::<adw::PreferencesGroup>() {
                    use adw::prelude::PreferencesGroupExt;
                    let title = group.title();
                    if !title.is_empty() {
                        name(&w, &title);
                    }
                    break;
                }
                up = p.parent();
            }
        }
    }
}

/// Names every labelled button inside `widget` once, by its label (the
/// buttons of an `AdwMessageDialog`, made by libadwaita, were read
/// "_Close Close").
pub fn name_buttons(widget: &impl IsA<gtk::Widget>) {
    for w in descendants(widget) {
        if let Some(button) = w.downcast_ref::<gtk::Button>()
            && let Some(label) = button.label()
        {
            name(button, &without_mnemonic(&label));
        }
    }
}

/// Every widget inside `widget`, depth first.
pub fn descendants(widget: &impl IsA<gtk::Widget>) -> Vec<gtk::Widget> {
    let mut out = Vec::new();
    let mut stack = vec![widget.clone().upcast::<gtk::Widget>()];
    while let Some(w) = stack.pop() {
        let mut child = w.first_child();
        while let Some(c) = child {
            child = c.next_sibling();
            stack.push(c.clone());
            out.push(c);
        }
    }
    out
}

/// A size in bytes, in words (never broken across lines).
pub fn size_words(bytes: u64) -> String {
    let (value, unit) = match bytes {
        b if b >= 1 << 30 => (b as f64 / (1u64 << 30) as f64, "GiB"),
        b if b >= 1 << 20 => (b as f64 / (1u64 << 20) as f64, "MiB"),
        b if b >= 1 << 10 => (b as f64 / 1024.0, "KiB"),
        b => return ni18n_f("{} byte", "{} bytes", b, &[&b.to_string()]),
    };
    // Binary units are the same in every language this panel ships.
    format!("{value:.1}\u{a0}{unit}")
}

/// How long ago a Unix time was, in words.
pub fn age_words(then: u64, now: u64) -> String {
    let secs = now.saturating_sub(then);
    match secs {
        s if s < 60 => crate::i18n::i18n("just now"),
        s if s < 3600 => {
            let m = s / 60;
            ni18n_f("{} minute ago", "{} minutes ago", m, &[&m.to_string()])
        }
        s if s < 2 * 86400 => {
            let h = s / 3600;
            ni18n_f("{} hour ago", "{} hours ago", h, &[&h.to_string()])
        }
        s => {
            let d = s / 86400;
            ni18n_f("{} day ago", "{} days ago", d, &[&d.to_string()])
        }
    }
}

/// How long until a Unix time, in words (rounded up to the minute).
pub fn time_left_words(at: u64, now: u64) -> String {
    let left = at.saturating_sub(now);
    if left < 60 {
        return crate::i18n::i18n("less than a minute");
    }
    let minutes = left.div_ceil(60);
    if minutes < 60 {
        return ni18n_f("{} minute", "{} minutes", minutes, &[&minutes.to_string()]);
    }
    let (h, m) = (minutes / 60, minutes % 60);
    if m == 0 {
        ni18n_f("{} hour", "{} hours", h, &[&h.to_string()])
    } else {
        i18n_f("{} h {} min", &[&h.to_string(), &m.to_string()])
    }
}

/// The current Unix time.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_are_dropped_from_names() {
        assert_eq!(without_mnemonic("_Close"), "Close");
        assert_eq!(without_mnemonic("Discard _Layer…"), "Discard Layer…");
        assert_eq!(without_mnemonic("a__b"), "a_b");
        assert_eq!(without_mnemonic("plain"), "plain");
    }

    #[test]
    fn sizes_and_times_in_words() {
        assert_eq!(size_words(10), "10 bytes");
        assert_eq!(size_words(1), "1 byte");
        assert_eq!(size_words(4096), "4.0\u{a0}KiB");
        assert_eq!(size_words(3 << 20), "3.0\u{a0}MiB");
        assert_eq!(age_words(100, 110), "just now");
        assert_eq!(age_words(0, 120), "2 minutes ago");
        assert_eq!(age_words(0, 3600), "1 hour ago");
        assert_eq!(age_words(0, 3 * 86400), "3 days ago");
        assert_eq!(time_left_words(100, 130), "less than a minute");
        assert_eq!(time_left_words(0, 0), "less than a minute");
        assert_eq!(time_left_words(600, 1), "10 minutes");
        assert_eq!(time_left_words(3600, 0), "1 hour");
        assert_eq!(time_left_words(5400, 0), "1 h 30 min");
    }
}
