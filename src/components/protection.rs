// SPDX-License-Identifier: GPL-3.0-or-later
//! The "Protection" group: the switch that locks and unlocks the system
//! files, "Unprotect for a while" with the time left, and the mode applied
//! at startup as three radio rows (the GNOME Settings pattern: no popover
//! list, whose recycled rows GTK 4.8's accessibility code crashed on). The
//! switch only ever shows what the last status measured: a toggle asks for
//! the act and waits for the next status to move. Every widget is made once
//! and updated in place.

use adw::prelude::*;
use almost_protocol::DefaultMode;
use almost_protocol::{Mode, Report};
use relm4::{ComponentParts, ComponentSender, SimpleComponent};

use super::{now, time_left_words};
use crate::i18n::{i18n, i18n_f};

/// How long "Unprotect for a while" lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum While {
    TenMinutes,
    OneHour,
    UntilRestart,
}

impl While {
    /// How long the unlock lasts; `None`: until the next lock (or restart).
    pub fn duration(self) -> Option<std::time::Duration> {
        match self {
            While::TenMinutes => Some(std::time::Duration::from_secs(10 * 60)),
            While::OneHour => Some(std::time::Duration::from_secs(60 * 60)),
            While::UntilRestart => None,
        }
    }
}

/// The startup modes in the order of the radio rows.
pub const STARTUP_MODES: [DefaultMode; 3] = [
    DefaultMode::Locked,
    DefaultMode::Unlocked,
    DefaultMode::Keep,
];

pub fn startup_index(mode: DefaultMode) -> u32 {
    STARTUP_MODES.iter().position(|m| *m == mode).unwrap_or(0) as u32
}

#[derive(Debug)]
pub enum ProtectionInput {
    Status(Option<Report>),
    DefaultMode(Option<DefaultMode>),
    /// An act is under way: nothing can be asked meanwhile.
    Busy(bool),
    /// The user flipped the switch.
    Switched(bool),
    /// The user picked a startup mode (index in `STARTUP_MODES`).
    StartupPicked(u32),
    UnprotectFor(While),
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtectionOutput {
    Lock,
    Unlock(While),
    SetDefaultMode(DefaultMode),
}

#[derive(Debug, Default)]
pub struct Protection {
    mode: Option<Mode>,
    relock_at: Option<u64>,
    default_mode: Option<DefaultMode>,
    /// A startup mode asked for and not yet read back from the config: the
    /// radio rows show it meanwhile instead of jumping back.
    asked: Option<DefaultMode>,
    busy: bool,
}

/// The title and subtitle of a startup mode's radio row.
pub fn startup_words(mode: DefaultMode) -> (String, String) {
    match mode {
        DefaultMode::Locked => (
            i18n("Protected"),
            i18n("The system files are protected each time the computer starts"),
        ),
        DefaultMode::Unlocked => (
            i18n("Unprotected"),
            i18n("The system files are unprotected each time the computer starts"),
        ),
        DefaultMode::Keep => (
            i18n("As it was"),
            i18n("The system files stay as they were before the restart"),
        ),
    }
}

impl Protection {
    /// Whether the switch shows "protected".
    pub fn switch_on(&self) -> bool {
        self.mode == Some(Mode::Locked)
    }

    /// The model's reaction to a message: what to ask of the app, if
    /// anything.
    pub fn apply(&mut self, msg: ProtectionInput) -> Option<ProtectionOutput> {
        match msg {
            ProtectionInput::Status(report) => {
                self.mode = report.as_ref().map(|r| r.mode);
                self.relock_at = report.and_then(|r| r.relock_at);
                None
            }
            ProtectionInput::DefaultMode(m) => {
                self.default_mode = m;
                if !self.busy {
                    self.asked = None;
                }
                None
            }
            ProtectionInput::Busy(b) => {
                self.busy = b;
                None
            }
            ProtectionInput::Switched(on) => {
                // The switch always shows the measured mode, so a flip is
                // a request for the other one.
                if self.busy || self.mode.is_none() || on == self.switch_on() {
                    return None;
                }
                Some(if on {
                    ProtectionOutput::Lock
                } else {
                    ProtectionOutput::Unlock(While::UntilRestart)
                })
            }
            ProtectionInput::StartupPicked(i) => {
                let picked = *STARTUP_MODES.get(i as usize)?;
                if self.busy || self.default_mode.is_none() || Some(picked) == self.shown_mode() {
                    return None;
                }
                self.asked = Some(picked);
                Some(ProtectionOutput::SetDefaultMode(picked))
            }
            ProtectionInput::UnprotectFor(w) => {
                (!self.busy && self.mode.is_some()).then_some(ProtectionOutput::Unlock(w))
            }
            ProtectionInput::Tick => None,
        }
    }

    /// The startup mode the radio rows show.
    pub fn shown_mode(&self) -> Option<DefaultMode> {
        self.asked.or(self.default_mode)
    }

    /// The subtitle of the switch row.
    pub fn switch_subtitle(&self) -> String {
        match self.mode {
            Some(Mode::Locked) => i18n("Programs cannot change system files"),
            Some(Mode::Partial) => i18n("Some system files can be changed"),
            Some(Mode::Unlocked) => i18n("Programs running as administrator can change them"),
            None => String::new(),
        }
    }

    /// The subtitle of "Unprotect for a while".
    pub fn while_subtitle(&self, now: u64) -> String {
        match self.relock_at {
            Some(at) => i18n_f("Protected again in {}", &[&time_left_words(at, now)]),
            None => i18n("Protection comes back by itself"),
        }
    }
}

pub struct ProtectionWidgets {
    switch: gtk::Switch,
    switch_handler: gtk::glib::SignalHandlerId,
    switch_row: adw::ActionRow,
    /// The radio rows' buttons and their handlers, in `STARTUP_MODES` order.
    startup: Vec<(gtk::CheckButton, gtk::glib::SignalHandlerId)>,
    startup_rows: Vec<adw::ActionRow>,
    while_row: adw::ActionRow,
    while_buttons: gtk::Box,
}

impl SimpleComponent for Protection {
    type Init = ();
    type Input = ProtectionInput;
    type Output = ProtectionOutput;
    type Root = adw::PreferencesGroup;
    type Widgets = ProtectionWidgets;

    fn init_root() -> Self::Root {
        adw::PreferencesGroup::builder()
            .title(i18n("Protection"))
            .build()
    }

    fn init(_: (), root: Self::Root, sender: ComponentSender<Self>) -> ComponentParts<Self> {
        let switch = gtk::Switch::builder().valign(gtk::Align::Center).build();
        super::name(&switch, &i18n("Protect system files"));
        let s = sender.clone();
        let switch_handler = switch.connect_state_set(move |_, on| {
            s.input(ProtectionInput::Switched(on));
            // The switch moves when the status says the files moved.
            gtk::glib::Propagation::Stop
        });
        let switch_row = adw::ActionRow::builder()
            .title(i18n("Protect system files"))
            .build();
        switch_row.add_suffix(&switch);
        switch_row.set_activatable_widget(Some(&switch));
        root.add(&switch_row);

        let while_row = adw::ActionRow::builder()
            .title(i18n("Unprotect for a while"))
            .build();
        let while_buttons = gtk::Box::builder()
            .valign(gtk::Align::Center)
            .css_classes(["linked"])
            .build();
        for (label, accessible, w) in [
            (
                i18n("10 min"),
                i18n("Unprotect for 10 minutes"),
                While::TenMinutes,
            ),
            (i18n("1 hour"), i18n("Unprotect for 1 hour"), While::OneHour),
            (
                i18n("Until Restart"),
                i18n("Unprotect until restart"),
                While::UntilRestart,
            ),
        ] {
            let button = gtk::Button::with_label(&label);
            button.set_tooltip_text(Some(&accessible));
            super::name(&button, &accessible);
            let s = sender.clone();
            button.connect_clicked(move |_| s.input(ProtectionInput::UnprotectFor(w)));
            while_buttons.append(&button);
        }
        while_row.add_suffix(&while_buttons);
        root.add(&while_row);

        // The mode at startup: a titled list of three radio rows below.
        let startup_group = adw::PreferencesGroup::builder()
            .title(i18n("Mode at startup"))
            .description(i18n("Applied each time the computer starts"))
            .margin_top(12)
            .build();
        let mut startup = Vec::new();
        let mut startup_rows = Vec::new();
        let mut first: Option<gtk::CheckButton> = None;
        for (i, mode) in STARTUP_MODES.iter().enumerate() {
            let (title, subtitle) = startup_words(*mode);
            let check = gtk::CheckButton::builder()
                .valign(gtk::Align::Center)
                .build();
            if let Some(first) = &first {
                check.set_group(Some(first));
            } else {
                first = Some(check.clone());
            }
            super::name(&check, &i18n_f("Mode at startup: {}", &[&title]));
            let s = sender.clone();
            let handler = check.connect_toggled(move |c| {
                if c.is_active() {
                    s.input(ProtectionInput::StartupPicked(i as u32));
                }
            });
            let row = adw::ActionRow::builder()
                .title(title)
                .subtitle(subtitle)
                .sensitive(false)
                .build();
            row.add_prefix(&check);
            row.set_activatable_widget(Some(&check));
            startup_group.add(&row);
            startup.push((check, handler));
            startup_rows.push(row);
        }
        root.add(&startup_group);

        let widgets = ProtectionWidgets {
            switch,
            switch_handler,
            switch_row,
            startup,
            startup_rows,
            while_row,
            while_buttons,
        };
        ComponentParts {
            model: Protection::default(),
            widgets,
        }
    }

    fn update(&mut self, msg: ProtectionInput, sender: ComponentSender<Self>) {
        if matches!(msg, ProtectionInput::Switched(_)) {
            tracing::debug!("{msg:?} while {:?}, busy {}", self.mode, self.busy);
        }
        if let Some(out) = self.apply(msg) {
            let _ = sender.output(out);
        }
    }

    fn update_view(&self, w: &mut ProtectionWidgets, _sender: ComponentSender<Self>) {
        let known = self.mode.is_some();
        // Programmatic changes must not read as the user's. And only real
        // changes: `gtk_switch_set_active` ends a running toggle animation
        // even when the value is the same, which swallowed a click that
        // came within ~0.1 s of a poll.
        let on = self.switch_on();
        w.switch.block_signal(&w.switch_handler);
        if w.switch.is_active() != on {
            w.switch.set_active(on);
        }
        if w.switch.state() != on {
            w.switch.set_state(on);
        }
        w.switch.unblock_signal(&w.switch_handler);
        w.switch.set_sensitive(known && !self.busy);
        w.switch_row.set_sensitive(known && !self.busy);
        w.switch_row.set_subtitle(&self.switch_subtitle());

        let shown = self.shown_mode().map(startup_index);
        for (i, ((check, handler), row)) in w.startup.iter().zip(&w.startup_rows).enumerate() {
            let active = shown == Some(i as u32);
            if check.is_active() != active {
                check.block_signal(handler);
                check.set_active(active);
                check.unblock_signal(handler);
            }
            row.set_sensitive(self.default_mode.is_some() && !self.busy);
        }

        w.while_row.set_subtitle(&self.while_subtitle(now()));
        w.while_buttons.set_sensitive(known && !self.busy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(mode: Mode, relock_at: Option<u64>) -> Report {
        Report {
            relock_at,
            ..Report::of_paths(mode, vec![])
        }
    }

    #[test]
    fn the_switch_asks_only_for_a_change() {
        let mut p = Protection::default();
        // Nothing known yet: nothing asked.
        assert_eq!(p.apply(ProtectionInput::Switched(true)), None);
        p.apply(ProtectionInput::Status(Some(report(Mode::Locked, None))));
        assert!(p.switch_on());
        assert_eq!(p.apply(ProtectionInput::Switched(true)), None);
        assert_eq!(
            p.apply(ProtectionInput::Switched(false)),
            Some(ProtectionOutput::Unlock(While::UntilRestart))
        );
        p.apply(ProtectionInput::Status(Some(report(Mode::Partial, None))));
        assert!(!p.switch_on());
        assert_eq!(
            p.apply(ProtectionInput::Switched(true)),
            Some(ProtectionOutput::Lock)
        );
        p.apply(ProtectionInput::Busy(true));
        assert_eq!(p.apply(ProtectionInput::Switched(false)), None);
        assert_eq!(p.apply(ProtectionInput::UnprotectFor(While::OneHour)), None);
    }

    #[test]
    fn startup_mode_changes_only_when_different() {
        let mut p = Protection::default();
        assert_eq!(p.apply(ProtectionInput::StartupPicked(1)), None);
        p.apply(ProtectionInput::DefaultMode(Some(DefaultMode::Locked)));
        assert_eq!(p.apply(ProtectionInput::StartupPicked(0)), None);
        assert_eq!(
            p.apply(ProtectionInput::StartupPicked(2)),
            Some(ProtectionOutput::SetDefaultMode(DefaultMode::Keep))
        );
        assert_eq!(p.apply(ProtectionInput::StartupPicked(7)), None);
        assert_eq!(startup_index(DefaultMode::Unlocked), 1);
        // The pick is shown until the config is read back.
        assert_eq!(p.shown_mode(), Some(DefaultMode::Keep));
        assert_eq!(p.apply(ProtectionInput::StartupPicked(2)), None);
        p.apply(ProtectionInput::Busy(true));
        p.apply(ProtectionInput::DefaultMode(Some(DefaultMode::Locked)));
        assert_eq!(p.shown_mode(), Some(DefaultMode::Keep));
        p.apply(ProtectionInput::Busy(false));
        p.apply(ProtectionInput::DefaultMode(Some(DefaultMode::Keep)));
        assert_eq!(p.shown_mode(), Some(DefaultMode::Keep));
        // A failed save: the config read back wins.
        p.apply(ProtectionInput::StartupPicked(1));
        p.apply(ProtectionInput::DefaultMode(Some(DefaultMode::Keep)));
        assert_eq!(p.shown_mode(), Some(DefaultMode::Keep));
    }

    #[test]
    fn unprotect_for_a_while_maps_to_unlock_for() {
        assert_eq!(
            While::TenMinutes.duration(),
            Some(std::time::Duration::from_secs(600))
        );
        assert_eq!(
            While::OneHour.duration(),
            Some(std::time::Duration::from_secs(3600))
        );
        assert_eq!(While::UntilRestart.duration(), None);
        let mut p = Protection::default();
        p.apply(ProtectionInput::Status(Some(report(
            Mode::Unlocked,
            Some(1000),
        ))));
        assert_eq!(p.while_subtitle(400), "Protected again in 10 minutes");
        p.apply(ProtectionInput::Status(Some(report(Mode::Locked, None))));
        assert_eq!(p.while_subtitle(400), "Protection comes back by itself");
    }
}
