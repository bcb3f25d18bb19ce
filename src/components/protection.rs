// SPDX-License-Identifier: GPL-3.0-or-later
//! The "Protection" group: the switch that locks and unlocks the system
//! files, a row for files left unprotected in a protected tree ("Protect
//! All"), when protection turns back on after the switch turned it off
//! (with the time left of a timed unlock), and the mode applied at
//! startup. Both choices are radio rows (the GNOME Settings pattern
//! without a popover list: GTK 4.8's accessibility code crashed on the
//! recycled rows of a combo row's popover, see 7020138).
//!
//! The switch is honest: its `active` follows the user's click at once,
//! its `state` (the filled track) stays on the measured mode until almost
//! has finished, with a spinner beside it meanwhile; when the mode is not
//! known (the status could not be read) there is no switch at all. Every
//! widget is made once and updated in place.

use adw::prelude::*;
use almost_protocol::DefaultMode;
use almost_protocol::{Mode, Report};
use relm4::{ComponentParts, ComponentSender, SimpleComponent};

use super::{now, time_left_words};
use crate::i18n::{i18n, i18n_f, ni18n_f};

/// When protection turns back on after the switch turned it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum While {
    TenMinutes,
    OneHour,
    /// No timer: until the switch turns it on again, or the next start
    /// applies the mode at startup.
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

/// The "Turn Back On" choices in the order of their radio rows.
pub const BACK_ON: [While; 3] = [While::UntilRestart, While::TenMinutes, While::OneHour];

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
    /// An act is under way (`true`), or has ended.
    Busy(bool),
    /// The user flipped the switch.
    Switched(bool),
    /// The user picked a startup mode (index in `STARTUP_MODES`).
    StartupPicked(u32),
    /// The user picked when protection turns back on (index in `BACK_ON`).
    BackOnPicked(u32),
    /// "Protect All" in the row of files left unprotected.
    ProtectAll,
    /// The window's headline: the switch's accessible description, so
    /// that a screen reader on the switch hears the new state.
    Headline(String),
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtectionOutput {
    Lock,
    Unlock(While),
    SetDefaultMode(DefaultMode),
}

#[derive(Debug)]
pub struct Protection {
    mode: Option<Mode>,
    /// The last status could not be read (not merely: not read yet).
    unknown: bool,
    relock_at: Option<u64>,
    /// Files of the managed trees without the flag (partly protected).
    unprotected: u64,
    default_mode: Option<DefaultMode>,
    /// A startup mode asked for and not yet read back from the config: the
    /// radio rows show it meanwhile instead of jumping back.
    asked: Option<DefaultMode>,
    busy: bool,
    /// What the switch was flipped to, until the status after the act
    /// says what happened (the switch's `active`; its `state` is the mode).
    wanted: Option<bool>,
    /// The act for `wanted` has ended: the next status settles the switch.
    settling: bool,
    /// When protection turns back on, for the next time it is turned off.
    back_on: While,
    /// The window's headline (see [`ProtectionInput::Headline`]).
    headline: String,
}

impl Default for Protection {
    fn default() -> Self {
        Protection {
            mode: None,
            unknown: false,
            relock_at: None,
            unprotected: 0,
            default_mode: None,
            asked: None,
            busy: false,
            wanted: None,
            settling: false,
            back_on: While::UntilRestart,
            headline: String::new(),
        }
    }
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

/// The title of a "Turn Back On" radio row. Without a timer protection
/// comes back at the next start only when the mode at startup protects:
/// otherwise the row says "Never" and means it.
pub fn back_on_words(w: While, startup: Option<DefaultMode>) -> String {
    match w {
        While::TenMinutes => i18n("After 10 Minutes"),
        While::OneHour => i18n("After 1 Hour"),
        While::UntilRestart if startup == Some(DefaultMode::Locked) => i18n("At Restart"),
        While::UntilRestart => i18n("Never"),
    }
}

impl Protection {
    /// Whether the files are protected, as last measured (the switch's
    /// `state`).
    pub fn switch_on(&self) -> bool {
        self.mode == Some(Mode::Locked)
    }

    /// Where the switch's handle is (its `active`): where the user put it
    /// while the act runs, the measured mode otherwise.
    pub fn switch_active(&self) -> bool {
        self.wanted.unwrap_or_else(|| self.switch_on())
    }

    /// Whether the switch is shown at all: not when the mode is unknown.
    pub fn switch_shown(&self) -> bool {
        self.mode.is_some()
    }

    /// Whether almost is acting on the switch's request now.
    pub fn switching(&self) -> bool {
        self.wanted.is_some()
    }

    /// The model's reaction to a message: what to ask of the app, if
    /// anything.
    pub fn apply(&mut self, msg: ProtectionInput) -> Option<ProtectionOutput> {
        match msg {
            ProtectionInput::Status(report) => {
                self.unknown = report.is_none();
                self.mode = report.as_ref().map(|r| r.mode);
                self.relock_at = report.as_ref().and_then(|r| r.relock_at);
                self.unprotected = report.as_ref().map_or(0, |r| {
                    r.paths
                        .iter()
                        .filter(|p| p.unsupported.is_none() && !p.covered)
                        .map(|p| p.unlocked)
                        .sum()
                });
                if self.settling || report.is_none() {
                    self.wanted = None;
                    self.settling = false;
                }
                // The choice shown is the one running: a timer started
                // elsewhere (a terminal) shows as timed, none as untimed.
                if !self.busy && self.mode == Some(Mode::Unlocked) {
                    self.back_on = match (self.relock_at, self.back_on) {
                        (None, _) => While::UntilRestart,
                        (Some(_), While::TenMinutes | While::OneHour) => self.back_on,
                        (Some(at), While::UntilRestart) => {
                            if at.saturating_sub(now()) <= 10 * 60 {
                                While::TenMinutes
                            } else {
                                While::OneHour
                            }
                        }
                    };
                }
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
                if !b && self.wanted.is_some() {
                    self.settling = true;
                }
                None
            }
            ProtectionInput::Switched(on) => {
                if self.busy || self.mode.is_none() || on == self.switch_active() {
                    return None;
                }
                self.wanted = Some(on);
                Some(if on {
                    ProtectionOutput::Lock
                } else {
                    ProtectionOutput::Unlock(self.back_on)
                })
            }
            ProtectionInput::ProtectAll => {
                if self.busy || self.mode != Some(Mode::Partial) {
                    return None;
                }
                self.wanted = Some(true);
                Some(ProtectionOutput::Lock)
            }
            ProtectionInput::StartupPicked(i) => {
                let picked = *STARTUP_MODES.get(i as usize)?;
                if self.busy || self.default_mode.is_none() || Some(picked) == self.shown_mode() {
                    return None;
                }
                self.asked = Some(picked);
                Some(ProtectionOutput::SetDefaultMode(picked))
            }
            ProtectionInput::BackOnPicked(i) => {
                let picked = *BACK_ON.get(i as usize)?;
                if self.busy || picked == self.back_on {
                    return None;
                }
                self.back_on = picked;
                // Unprotected now: the new choice applies at once (a timer
                // starts, or the running one ends); protected, it is kept
                // for the next time the switch turns protection off.
                (self.mode == Some(Mode::Unlocked)).then_some(ProtectionOutput::Unlock(picked))
            }
            ProtectionInput::Headline(text) => {
                self.headline = text;
                None
            }
            ProtectionInput::Tick => None,
        }
    }

    /// The startup mode the radio rows show.
    pub fn shown_mode(&self) -> Option<DefaultMode> {
        self.asked.or(self.default_mode)
    }

    /// The "Turn Back On" choice the radio rows show.
    pub fn back_on(&self) -> While {
        self.back_on
    }

    /// The subtitle of the switch row.
    pub fn switch_subtitle(&self) -> String {
        match (self.wanted, self.mode) {
            (Some(true), _) => i18n("Turning protection on…"),
            (Some(false), _) => i18n("Turning protection off…"),
            (None, Some(Mode::Locked)) => i18n("Programs cannot change system files"),
            (None, Some(Mode::Partial)) => i18n("Some system files can be changed"),
            (None, Some(Mode::Unlocked)) => {
                i18n("Programs running as administrator can change them")
            }
            (None, None) if self.unknown => i18n("Unknown: the state could not be read"),
            (None, None) => String::new(),
        }
    }

    /// The title of the row of files left unprotected, when partly
    /// protected.
    pub fn partial_title(&self) -> Option<String> {
        (self.mode == Some(Mode::Partial)).then(|| {
            ni18n_f(
                "{} file isn't protected",
                "{} files aren't protected",
                self.unprotected,
                &[&self.unprotected.to_string()],
            )
        })
    }

    /// The description of the "Turn Back On" group: the time left of a
    /// running timer, or what the choice does.
    pub fn back_on_description(&self, now: u64) -> String {
        match (self.mode, self.relock_at) {
            (Some(Mode::Unlocked), Some(at)) => {
                i18n_f("Protected again in {}", &[&time_left_words(at, now)])
            }
            (Some(Mode::Unlocked), None) if self.default_mode == Some(DefaultMode::Locked) => {
                i18n("Protected again when the computer restarts")
            }
            (Some(Mode::Unlocked), None) => i18n("Stays unprotected until you turn it on"),
            _ => i18n("After protection is turned off"),
        }
    }
}

pub struct ProtectionWidgets {
    switch: gtk::Switch,
    switch_handler: gtk::glib::SignalHandlerId,
    switch_row: adw::ActionRow,
    spinner: gtk::Spinner,
    partial_row: adw::ActionRow,
    /// The radio rows' buttons and their handlers, in `STARTUP_MODES` order.
    startup: Vec<(gtk::CheckButton, gtk::glib::SignalHandlerId)>,
    startup_rows: Vec<adw::ActionRow>,
    back_on_group: adw::PreferencesGroup,
    /// The same for "Turn Back On", in `BACK_ON` order.
    back_on: Vec<(gtk::CheckButton, gtk::glib::SignalHandlerId)>,
    back_on_rows: Vec<adw::ActionRow>,
    /// The headline the switch's description says now.
    described: String,
}

/// Radio rows in `group`, one per `(title, subtitle, accessible name)`;
/// a pick sends `msg(index)`.
fn radio_rows(
    group: &adw::PreferencesGroup,
    rows: &[(String, Option<String>, String)],
    sender: &ComponentSender<Protection>,
    msg: fn(u32) -> ProtectionInput,
) -> (
    Vec<(gtk::CheckButton, gtk::glib::SignalHandlerId)>,
    Vec<adw::ActionRow>,
) {
    let mut buttons = Vec::new();
    let mut out_rows = Vec::new();
    let mut first: Option<gtk::CheckButton> = None;
    for (i, (title, subtitle, accessible)) in rows.iter().enumerate() {
        let check = gtk::CheckButton::builder()
            .valign(gtk::Align::Center)
            .build();
        if let Some(first) = &first {
            check.set_group(Some(first));
        } else {
            first = Some(check.clone());
        }
        let s = sender.clone();
        let handler = check.connect_toggled(move |c| {
            if c.is_active() {
                s.input(msg(i as u32));
            }
        });
        let row = adw::ActionRow::builder()
            .title(title)
            .sensitive(false)
            .build();
        if let Some(subtitle) = subtitle {
            row.set_subtitle(subtitle);
        }
        row.add_prefix(&check);
        row.set_activatable_widget(Some(&check));
        // After set_activatable_widget, which labels it by the title.
        super::name(&check, accessible);
        group.add(&row);
        buttons.push((check, handler));
        out_rows.push(row);
    }
    (buttons, out_rows)
}

/// Checks the radio button at `shown` (none: `None`) without it reading as
/// the user's pick.
fn show_radio(buttons: &[(gtk::CheckButton, gtk::glib::SignalHandlerId)], shown: Option<usize>) {
    for (i, (check, handler)) in buttons.iter().enumerate() {
        let active = shown == Some(i);
        if check.is_active() != active {
            check.block_signal(handler);
            check.set_active(active);
            check.unblock_signal(handler);
        }
    }
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
        let switch = gtk::Switch::builder()
            .valign(gtk::Align::Center)
            .visible(false)
            .build();
        let s = sender.clone();
        let switch_handler = switch.connect_state_set(move |_, on| {
            s.input(ProtectionInput::Switched(on));
            // `active` has moved; `state` waits for almost.
            gtk::glib::Propagation::Stop
        });
        let spinner = gtk::Spinner::builder()
            .valign(gtk::Align::Center)
            .visible(false)
            .build();
        super::name(&spinner, &i18n("Working"));
        let switch_row = adw::ActionRow::builder()
            .title(i18n("Protect System Files"))
            .build();
        switch_row.add_suffix(&spinner);
        switch_row.add_suffix(&switch);
        switch_row.set_activatable_widget(Some(&switch));
        // After set_activatable_widget, which labels it by the title.
        super::name(&switch, &i18n("Protect System Files"));
        root.add(&switch_row);

        let partial_row = adw::ActionRow::builder()
            .subtitle(i18n(
                "Changed by a program or by hand since protection was turned on",
            ))
            .visible(false)
            .build();
        let warning = gtk::Image::from_icon_name("dialog-warning-symbolic");
        warning.add_css_class("warning");
        partial_row.add_prefix(&warning);
        let protect_all = gtk::Button::builder()
            .label(i18n("Protect All"))
            .valign(gtk::Align::Center)
            .css_classes(["suggested-action"])
            .build();
        super::name(&protect_all, &i18n("Protect All"));
        let s = sender.clone();
        protect_all.connect_clicked(move |_| s.input(ProtectionInput::ProtectAll));
        partial_row.add_suffix(&protect_all);
        root.add(&partial_row);

        let back_on_group = adw::PreferencesGroup::builder()
            .title(i18n("Turn Back On"))
            .margin_top(12)
            .build();
        let rows: Vec<_> = BACK_ON
            .iter()
            .map(|w| {
                let title = back_on_words(*w, None);
                let accessible = i18n_f("Turn back on: {}", &[&title]);
                (title, None, accessible)
            })
            .collect();
        let (back_on, back_on_rows) = radio_rows(
            &back_on_group,
            &rows,
            &sender,
            ProtectionInput::BackOnPicked,
        );
        root.add(&back_on_group);

        // The mode at startup: a titled list of three radio rows below.
        let startup_group = adw::PreferencesGroup::builder()
            .title(i18n("Mode at Startup"))
            .description(i18n("Applied each time the computer starts"))
            .margin_top(12)
            .build();
        let rows: Vec<_> = STARTUP_MODES
            .iter()
            .map(|mode| {
                let (title, subtitle) = startup_words(*mode);
                let accessible = i18n_f("Mode at startup: {}", &[&title]);
                (title, Some(subtitle), accessible)
            })
            .collect();
        let (startup, startup_rows) = radio_rows(
            &startup_group,
            &rows,
            &sender,
            ProtectionInput::StartupPicked,
        );
        root.add(&startup_group);

        let widgets = ProtectionWidgets {
            switch,
            switch_handler,
            switch_row,
            spinner,
            partial_row,
            startup,
            startup_rows,
            back_on_group,
            back_on,
            back_on_rows,
            described: String::new(),
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
        // Programmatic changes must not read as the user's. And only real
        // changes: `gtk_switch_set_active` ends a running toggle animation
        // even when the value is the same, which swallowed a click that
        // came within ~0.1 s of a poll.
        let (active, state) = (self.switch_active(), self.switch_on());
        w.switch.block_signal(&w.switch_handler);
        if w.switch.is_active() != active {
            w.switch.set_active(active);
        }
        if w.switch.state() != state {
            w.switch.set_state(state);
        }
        w.switch.unblock_signal(&w.switch_handler);
        if w.described != self.headline {
            super::describe(&w.switch, &self.headline);
            w.described = self.headline.clone();
        }
        w.switch.set_visible(self.switch_shown());
        w.switch.set_sensitive(!self.busy);
        w.switch_row.set_sensitive(!self.busy || self.switching());
        w.switch_row.set_subtitle(&self.switch_subtitle());
        w.spinner.set_visible(self.switching());
        w.spinner.set_spinning(self.switching());

        match self.partial_title() {
            Some(title) => {
                w.partial_row.set_title(&title);
                w.partial_row.set_visible(true);
                w.partial_row.set_sensitive(!self.busy);
            }
            None => w.partial_row.set_visible(false),
        }

        let shown = self.shown_mode().map(|m| startup_index(m) as usize);
        show_radio(&w.startup, shown);
        for row in &w.startup_rows {
            row.set_sensitive(self.default_mode.is_some() && !self.busy);
        }

        let picked = BACK_ON.iter().position(|b| *b == self.back_on());
        show_radio(&w.back_on, picked);
        for ((row, (check, _)), b) in w.back_on_rows.iter().zip(&w.back_on).zip(BACK_ON) {
            let title = back_on_words(b, self.default_mode);
            if row.title() != title {
                row.set_title(&title);
                super::name(check, &i18n_f("Turn back on: {}", &[&title]));
            }
            row.set_sensitive(self.switch_shown() && !self.busy);
        }
        w.back_on_group
            .set_description(Some(&self.back_on_description(now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use almost_protocol::PathReport;

    fn report(mode: Mode, relock_at: Option<u64>) -> Report {
        Report {
            relock_at,
            ..Report::of_paths(mode, vec![])
        }
    }

    // A flip asks for the other mode only; while almost acts the handle
    // stays where the user put it and the state on the measured mode,
    // until the status after the act.
    #[test]
    fn the_switch_moves_at_once_and_settles_when_almost_ends() {
        let mut p = Protection::default();
        // Nothing known yet: nothing asked, no switch.
        assert_eq!(p.apply(ProtectionInput::Switched(true)), None);
        assert!(!p.switch_shown());
        p.apply(ProtectionInput::Status(Some(report(Mode::Locked, None))));
        assert!(p.switch_shown() && p.switch_on() && p.switch_active());
        assert_eq!(p.apply(ProtectionInput::Switched(true)), None);
        assert_eq!(
            p.apply(ProtectionInput::Switched(false)),
            Some(ProtectionOutput::Unlock(While::UntilRestart))
        );
        p.apply(ProtectionInput::Busy(true));
        assert!(!p.switch_active(), "the handle moved at once");
        assert!(p.switch_on(), "the state is still the measured one");
        assert!(p.switching());
        assert_eq!(p.switch_subtitle(), "Turning protection off…");
        // A poll during the act changes nothing of that.
        p.apply(ProtectionInput::Status(Some(report(Mode::Locked, None))));
        assert!(!p.switch_active() && p.switch_on());
        assert_eq!(p.apply(ProtectionInput::Switched(true)), None);
        p.apply(ProtectionInput::Busy(false));
        assert!(
            !p.switch_active(),
            "no flicker between the end and the status"
        );
        p.apply(ProtectionInput::Status(Some(report(Mode::Unlocked, None))));
        assert!(!p.switching() && !p.switch_active() && !p.switch_on());
        // A failed act: the status read after it puts the handle back.
        assert_eq!(
            p.apply(ProtectionInput::Switched(true)),
            Some(ProtectionOutput::Lock)
        );
        p.apply(ProtectionInput::Busy(true));
        p.apply(ProtectionInput::Busy(false));
        p.apply(ProtectionInput::Status(Some(report(Mode::Unlocked, None))));
        assert!(!p.switch_active() && !p.switching());
        // Unknown: no switch, and a word for why.
        p.apply(ProtectionInput::Status(None));
        assert!(!p.switch_shown());
        assert_eq!(p.switch_subtitle(), "Unknown: the state could not be read");
        assert_eq!(p.apply(ProtectionInput::Switched(true)), None);
    }

    #[test]
    fn partly_protected_has_its_own_row() {
        let mut p = Protection::default();
        let mut r = report(Mode::Partial, None);
        r.paths = vec![
            PathReport {
                locked: 165,
                unlocked: 4,
                ..PathReport::new("/usr")
            },
            PathReport {
                unlocked: 9,
                covered: true,
                ..PathReport::new("/opt")
            },
        ];
        p.apply(ProtectionInput::Status(Some(r)));
        assert_eq!(
            p.partial_title().as_deref(),
            Some("4 files aren't protected")
        );
        assert!(!p.switch_active());
        assert_eq!(
            p.apply(ProtectionInput::ProtectAll),
            Some(ProtectionOutput::Lock)
        );
        p.apply(ProtectionInput::Status(Some(report(Mode::Locked, None))));
        assert_eq!(p.partial_title(), None);
        assert_eq!(p.apply(ProtectionInput::ProtectAll), None);
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

    // "Turn Back On" never promises what the mode at startup does not do,
    // shows the running timer, and applies at once when unprotected.
    #[test]
    fn turn_back_on_is_honest() {
        assert_eq!(
            While::TenMinutes.duration(),
            Some(std::time::Duration::from_secs(600))
        );
        assert_eq!(While::UntilRestart.duration(), None);
        assert_eq!(
            back_on_words(While::UntilRestart, Some(DefaultMode::Locked)),
            "At Restart"
        );
        assert_eq!(
            back_on_words(While::UntilRestart, Some(DefaultMode::Keep)),
            "Never"
        );
        assert_eq!(
            back_on_words(While::UntilRestart, Some(DefaultMode::Unlocked)),
            "Never"
        );
        let mut p = Protection::default();
        p.apply(ProtectionInput::DefaultMode(Some(DefaultMode::Keep)));
        p.apply(ProtectionInput::Status(Some(report(Mode::Locked, None))));
        // Protected: a pick is kept for the next turn-off.
        assert_eq!(p.apply(ProtectionInput::BackOnPicked(1)), None);
        assert_eq!(p.back_on(), While::TenMinutes);
        assert_eq!(p.back_on_description(0), "After protection is turned off");
        assert_eq!(
            p.apply(ProtectionInput::Switched(false)),
            Some(ProtectionOutput::Unlock(While::TenMinutes))
        );
        p.apply(ProtectionInput::Busy(true));
        p.apply(ProtectionInput::Busy(false));
        p.apply(ProtectionInput::Status(Some(report(
            Mode::Unlocked,
            Some(1000),
        ))));
        assert_eq!(p.back_on_description(400), "Protected again in 10 minutes");
        // Unprotected: a new pick applies now (no timer: it ends).
        assert_eq!(
            p.apply(ProtectionInput::BackOnPicked(0)),
            Some(ProtectionOutput::Unlock(While::UntilRestart))
        );
        p.apply(ProtectionInput::Status(Some(report(Mode::Unlocked, None))));
        assert_eq!(
            p.back_on_description(400),
            "Stays unprotected until you turn it on"
        );
        p.apply(ProtectionInput::DefaultMode(Some(DefaultMode::Locked)));
        assert_eq!(
            p.back_on_description(400),
            "Protected again when the computer restarts"
        );
        // A timer started in a terminal shows as the timed choice.
        p.apply(ProtectionInput::Status(Some(report(
            Mode::Unlocked,
            Some(now() + 3000),
        ))));
        assert_eq!(p.back_on(), While::OneHour);
        // And an unlock without one as untimed.
        p.apply(ProtectionInput::Status(Some(report(Mode::Unlocked, None))));
        assert_eq!(p.back_on(), While::UntilRestart);
        p.apply(ProtectionInput::Busy(true));
        assert_eq!(p.apply(ProtectionInput::BackOnPicked(2)), None);
    }
}
