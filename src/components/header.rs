// SPDX-License-Identifier: GPL-3.0-or-later
//! The top of the panel: the state of protection in words, the counts per
//! managed path on demand, whatever changes the picture (a timed re-lock,
//! open layers, commands running unprotected, an interrupted commit, a
//! prepared offline update), and the progress of the act under way.

use adw::prelude::*;
use almost_protocol::{Mode, PathReport};
use relm4::{ComponentParts, ComponentSender, SimpleComponent};

use super::{now, time_left_words};
use crate::client::{Progress, Status};
use crate::dialogs::error::Message;
use crate::i18n::{i18n, i18n_f, ni18n, ni18n_f};

#[derive(Debug)]
pub enum HeaderInput {
    /// A fresh status and the number of open layers.
    Status(Box<Status>, usize),
    /// The status could not be read: why, in the panel's words.
    Unreadable(Box<Message>),
    /// An act started (its description), or ended (`None`).
    Busy(Option<String>),
    Progress(Progress),
    /// Time passes: the time left of a timed unlock changes.
    Tick,
}

/// What the header says, derived from the status alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headline {
    pub title: String,
    pub description: String,
    pub icon: &'static str,
}

fn paths_words(paths: &[PathReport]) -> String {
    paths
        .iter()
        .filter(|p| p.unsupported.is_none())
        .map(|p| p.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The state in words. Open layers are part of it: the files beneath
/// them are not protected, so the headline does not promise they are.
pub fn headline(status: Option<&Status>, open_layers: usize) -> Headline {
    let Some(status) = status else {
        return Headline {
            title: i18n("Reading the state of the system files…"),
            description: String::new(),
            icon: "content-loading-symbolic",
        };
    };
    let report = &status.report;
    let locked: u64 = report.paths.iter().map(|p| p.locked).sum();
    let total: u64 = report.paths.iter().map(|p| p.locked + p.unlocked).sum();
    match report.mode {
        Mode::Locked if open_layers > 0 => Headline {
            title: i18n("System files are protected"),
            description: ni18n_f(
                "No program can change the files in {}, not even as administrator, except beneath {} open layer.",
                "No program can change the files in {}, not even as administrator, except beneath the {} open layers.",
                open_layers as u64,
                &[&paths_words(&report.paths), &open_layers.to_string()],
            ),
            icon: "security-medium-symbolic",
        },
        Mode::Locked => Headline {
            title: i18n("System files are protected"),
            description: i18n_f(
                "No program can change, replace or delete the files in {}, not even as administrator.",
                &[&paths_words(&report.paths)],
            ),
            icon: "security-high-symbolic",
        },
        Mode::Unlocked => Headline {
            title: i18n("System files are unprotected"),
            description: i18n_f(
                "Programs running as administrator can change the files in {}.",
                &[&paths_words(&report.paths)],
            ),
            icon: "security-low-symbolic",
        },
        Mode::Partial => Headline {
            title: i18n("System files are partly protected"),
            description: ni18n_f(
                "{} of {} system file is protected.",
                "{} of {} system files are protected.",
                total,
                &[&locked.to_string(), &total.to_string()],
            ),
            icon: "security-medium-symbolic",
        },
    }
}

/// The facts that change the picture, one sentence each.
pub fn notices(status: &Status, now: u64) -> Vec<String> {
    let report = &status.report;
    let mut out = Vec::new();
    if let Some(at) = report.relock_at {
        out.push(i18n_f(
            "Protection comes back in {}.",
            &[&time_left_words(at, now)],
        ));
    }
    if !report.runs.is_empty() {
        let n = report.runs.len() as u64;
        out.push(ni18n_f(
            "{} command is running with the system files unprotected.",
            "{} commands are running with the system files unprotected.",
            n,
            &[&n.to_string()],
        ));
    }
    if report.interrupted_commit.is_some() {
        out.push(i18n(
            "Applying a layer's changes was interrupted: the next action finishes it or puts the files back.",
        ));
    }
    if status.report.offline_update.is_some() {
        out.push(i18n(
            "An offline update is prepared: it will run at the next restart.",
        ));
    }
    let errors = report.error_count();
    if errors > 0 {
        out.push(ni18n_f(
            "{} file could not be read or changed.",
            "{} files could not be read or changed.",
            errors,
            &[&errors.to_string()],
        ));
    }
    out
}

/// The banner of open layers: its title and its explanation.
pub fn layers_banner(open_layers: usize) -> Option<(String, String)> {
    let n = open_layers as u64;
    (n > 0).then(|| {
        (
            ni18n_f("{} layer is open", "{} layers are open", n, &[&n.to_string()]),
            ni18n(
                "The files beneath it are not protected until its changes are applied or discarded.",
                "The files beneath them are not protected until their changes are applied or discarded.",
                n,
            ),
        )
    })
}

/// Whether the state wants the warning colour: some or all system files
/// can be changed.
pub fn warns(status: Option<&Status>) -> bool {
    status.is_some_and(|s| s.report.mode != Mode::Locked)
}

/// One managed path's counts, in words.
pub fn path_words(p: &PathReport) -> String {
    if let Some(reason) = &p.unsupported {
        return i18n_f("Cannot be protected: {}", &[reason]);
    }
    if p.covered {
        return i18n("Covered by a layer");
    }
    let mut words = i18n_f(
        "{} protected, {} unprotected, {} without the flag (links, devices)",
        &[
            &p.locked.to_string(),
            &p.unlocked.to_string(),
            &p.skipped.to_string(),
        ],
    );
    if p.read_only {
        words.push_str(&i18n(" · mounted read-only"));
    }
    words
}

/// Progress of an act in words.
pub fn progress_words(p: &Progress) -> String {
    match p.total {
        Some(total) => ni18n_f(
            "{} of {} file",
            "{} of {} files",
            total,
            &[&p.done.to_string(), &total.to_string()],
        ),
        None => ni18n_f("{} file", "{} files", p.done, &[&p.done.to_string()]),
    }
}

pub struct Header {
    status: Option<Status>,
    open_layers: usize,
    unreadable: Option<Message>,
    busy: Option<String>,
    progress: Option<Progress>,
    /// Bumped when the per-path rows must be rebuilt.
    paths_changed: bool,
}

pub struct HeaderWidgets {
    icon: gtk::Image,
    title: gtk::Label,
    description: gtk::Label,
    details: adw::ExpanderRow,
    detail_rows: Vec<adw::ActionRow>,
    notices: gtk::Box,
    notice_labels: Vec<gtk::Label>,
    banner: adw::ActionRow,
    banner_list: gtk::ListBox,
    /// A problem found in the background (a broken configuration): a
    /// warning row with the technical details inside, not a dialog.
    problem: adw::ActionRow,
    problem_details: gtk::Label,
    problem_list: gtk::ListBox,
    busy_row: adw::ActionRow,
    bar: gtk::ProgressBar,
}

impl SimpleComponent for Header {
    type Init = ();
    type Input = HeaderInput;
    type Output = ();
    type Root = gtk::Box;
    type Widgets = HeaderWidgets;

    fn init_root() -> Self::Root {
        gtk::Box::new(gtk::Orientation::Vertical, 12)
    }

    fn init(_: (), root: Self::Root, _sender: ComponentSender<Self>) -> ComponentParts<Self> {
        let icon = gtk::Image::builder()
            .icon_name("content-loading-symbolic")
            .pixel_size(64)
            .accessible_role(gtk::AccessibleRole::Presentation)
            .build();
        icon.add_css_class("dim-label");
        let title = gtk::Label::builder()
            .wrap(true)
            .justify(gtk::Justification::Center)
            .build();
        title.add_css_class("title-2");
        let description = gtk::Label::builder()
            .wrap(true)
            .justify(gtk::Justification::Center)
            .build();
        description.add_css_class("dim-label");
        let top = gtk::Box::new(gtk::Orientation::Vertical, 6);
        top.set_margin_top(6);
        top.set_margin_bottom(6);
        top.append(&icon);
        top.append(&title);
        top.append(&description);
        root.append(&top);

        let notices = gtk::Box::new(gtk::Orientation::Vertical, 6);
        root.append(&notices);

        // AdwBanner is libadwaita 1.3: a row with a warning icon in a
        // boxed list of its own stands in for it.
        let banner = adw::ActionRow::new();
        let warning = gtk::Image::from_icon_name("dialog-warning-symbolic");
        warning.add_css_class("warning");
        banner.add_prefix(&warning);
        let banner_list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::None)
            .css_classes(["boxed-list"])
            .visible(false)
            .build();
        banner_list.append(&banner);
        super::name(&banner_list, &i18n("Layers"));
        root.append(&banner_list);

        let problem = adw::ActionRow::new();
        let warning = gtk::Image::from_icon_name("dialog-warning-symbolic");
        warning.add_css_class("warning");
        problem.add_prefix(&warning);
        let problem_details = gtk::Label::builder()
            .wrap(true)
            .wrap_mode(gtk::pango::WrapMode::WordChar)
            .selectable(true)
            .xalign(0.0)
            .margin_top(12)
            .margin_bottom(12)
            .margin_start(12)
            .margin_end(12)
            .css_classes(["caption", "monospace"])
            .build();
        // What almost said, under "Technical Details" (a row of its own:
        // AdwExpanderRow offers no action to assistive technologies in
        // libadwaita 1.2).
        let expander = gtk::Expander::builder()
            .label(i18n("Technical Details"))
            .child(&problem_details)
            .margin_top(12)
            .margin_bottom(12)
            .margin_start(12)
            .margin_end(12)
            .build();
        super::name(&expander, &i18n("Technical Details"));
        problem_details.set_margin_start(0);
        problem_details.set_margin_end(0);
        problem_details.set_margin_bottom(0);
        let problem_list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::None)
            .css_classes(["boxed-list"])
            .visible(false)
            .build();
        problem_list.append(&problem);
        super::name(&problem_list, &i18n("Technical Details"));
        problem_list.append(
            &gtk::ListBoxRow::builder()
                .child(&expander)
                .activatable(false)
                .focusable(false)
                .build(),
        );
        root.append(&problem_list);

        let group = adw::PreferencesGroup::new();
        // The group has no title: its list is named by its details.
        for w in super::descendants(&group) {
            if w.is::<gtk::ListBox>() {
                super::name(&w, &i18n("Details"));
            }
        }
        let busy_row = adw::ActionRow::builder().visible(false).build();
        let bar = gtk::ProgressBar::builder()
            .valign(gtk::Align::Center)
            .hexpand(true)
            .width_request(160)
            .build();
        busy_row.add_suffix(&bar);
        super::name(&bar, &i18n("Progress"));
        group.add(&busy_row);
        let details = adw::ExpanderRow::builder()
            .title(i18n("Details"))
            .subtitle(i18n("Files counted in each managed directory"))
            .build();
        super::name(&details, &i18n("Details"));
        // AdwExpanderRow's own lists (its header, its rows) have no name.
        for w in super::descendants(&details) {
            if w.is::<gtk::ListBox>() {
                super::name(&w, &i18n("Details"));
            }
        }
        group.add(&details);
        root.append(&group);

        let widgets = HeaderWidgets {
            icon,
            title,
            description,
            details,
            detail_rows: Vec::new(),
            notices,
            notice_labels: Vec::new(),
            banner,
            banner_list,
            problem,
            problem_details,
            problem_list,
            busy_row,
            bar,
        };
        let model = Header {
            status: None,
            open_layers: 0,
            unreadable: None,
            busy: None,
            progress: None,
            paths_changed: false,
        };
        ComponentParts { model, widgets }
    }

    fn update(&mut self, msg: HeaderInput, _sender: ComponentSender<Self>) {
        self.apply(msg);
    }

    fn update_view(&self, w: &mut HeaderWidgets, _sender: ComponentSender<Self>) {
        self.draw(w);
    }
}

impl Header {
    /// The model's reaction to a message (no widgets involved).
    fn apply(&mut self, msg: HeaderInput) {
        self.paths_changed = false;
        match msg {
            HeaderInput::Status(status, open_layers) => {
                self.paths_changed =
                    self.status.as_ref().map(|s| &s.report.paths) != Some(&status.report.paths);
                self.status = Some(*status);
                self.open_layers = open_layers;
                self.unreadable = None;
            }
            HeaderInput::Unreadable(e) => self.unreadable = Some(*e),
            HeaderInput::Busy(what) => {
                self.busy = what;
                self.progress = None;
            }
            HeaderInput::Progress(p) => self.progress = Some(p),
            HeaderInput::Tick => {}
        }
    }

    fn draw(&self, w: &mut HeaderWidgets) {
        let line = if self.unreadable.is_some() {
            Headline {
                title: i18n("The state of the system files cannot be read"),
                description: String::new(),
                icon: "dialog-warning-symbolic",
            }
        } else {
            headline(self.status.as_ref(), self.open_layers)
        };
        // Unprotected (or unknown) is shown in the warning colour.
        let warn = self.unreadable.is_some() || warns(self.status.as_ref());
        for widget in [w.icon.upcast_ref::<gtk::Widget>(), w.title.upcast_ref()] {
            if warn {
                widget.add_css_class("warning");
            } else {
                widget.remove_css_class("warning");
            }
        }
        if warn {
            w.icon.remove_css_class("dim-label");
        } else {
            w.icon.add_css_class("dim-label");
        }
        match layers_banner(self.open_layers).filter(|_| self.status.is_some()) {
            Some((title, subtitle)) => {
                if w.banner.title() != title {
                    w.banner.set_title(&title);
                    w.banner.set_subtitle(&subtitle);
                }
                w.banner_list.set_visible(true);
            }
            None => w.banner_list.set_visible(false),
        }
        match &self.unreadable {
            Some(problem) => {
                if w.problem.title() != problem.heading
                    || w.problem_details.label() != problem.details
                {
                    w.problem.set_title(&problem.heading);
                    w.problem.set_subtitle(&problem.body);
                    w.problem_details.set_label(&problem.details);
                    super::name(&w.problem, &problem.heading);
                }
                w.problem_list.set_visible(true);
            }
            None => w.problem_list.set_visible(false),
        }
        w.icon.set_icon_name(Some(line.icon));
        w.title.set_label(&line.title);
        w.description.set_label(&line.description);
        w.description.set_visible(!line.description.is_empty());

        // Labels and rows are kept and updated in place (more are added
        // when needed, extra ones hidden): tearing down widgets that the
        // accessibility tree already exposes is what GTK 4.8 handles worst.
        let texts = self
            .status
            .as_ref()
            .map(|status| notices(status, now()))
            .unwrap_or_default();
        while w.notice_labels.len() < texts.len() {
            let label = gtk::Label::builder()
                .wrap(true)
                .justify(gtk::Justification::Center)
                .build();
            label.add_css_class("heading");
            w.notices.append(&label);
            w.notice_labels.push(label);
        }
        for (i, label) in w.notice_labels.iter().enumerate() {
            match texts.get(i) {
                Some(text) => {
                    if label.label() != *text {
                        label.set_label(text);
                    }
                    label.set_visible(true);
                }
                None => label.set_visible(false),
            }
        }

        if self.paths_changed {
            let paths = self
                .status
                .as_ref()
                .map_or(&[][..], |s| &s.report.paths[..]);
            while w.detail_rows.len() < paths.len() {
                let row = adw::ActionRow::new();
                w.details.add_row(&row);
                w.detail_rows.push(row);
            }
            for (i, row) in w.detail_rows.iter().enumerate() {
                match paths.get(i) {
                    Some(p) => {
                        row.set_title(&p.path);
                        row.set_subtitle(&path_words(p));
                        row.set_visible(true);
                    }
                    None => row.set_visible(false),
                }
            }
        }

        w.busy_row.set_visible(self.busy.is_some());
        if let Some(what) = &self.busy {
            w.busy_row.set_title(what);
            match &self.progress {
                Some(p) => {
                    w.busy_row.set_subtitle(&progress_words(p));
                    match p.fraction() {
                        Some(f) => w.bar.set_fraction(f),
                        None => w.bar.pulse(),
                    }
                }
                None => {
                    w.busy_row.set_subtitle("");
                    w.bar.pulse();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use almost_protocol::{Report, RunInfo};

    fn path(locked: u64, unlocked: u64) -> PathReport {
        PathReport {
            mode: Mode::from_counts(locked, unlocked),
            locked,
            unlocked,
            skipped: 1,
            ..PathReport::new("/usr")
        }
    }

    fn status(locked: u64, unlocked: u64) -> Status {
        Status {
            report: Report::of_paths(
                Mode::from_counts(locked, unlocked),
                vec![path(locked, unlocked)],
            ),
        }
    }

    // One headline per state; open layers make it say what stays
    // unprotected (and a banner of their own), never "not even as
    // administrator" alone.
    #[test]
    fn the_state_in_words() {
        let locked = headline(Some(&status(5, 0)), 0);
        assert_eq!(locked.title, "System files are protected");
        assert_eq!(
            locked.description,
            "No program can change, replace or delete the files in /usr, not even as administrator."
        );
        assert_eq!(locked.icon, "security-high-symbolic");
        let layered = headline(Some(&status(5, 0)), 2);
        assert_eq!(layered.title, "System files are protected");
        assert!(
            layered
                .description
                .ends_with("except beneath the 2 open layers."),
            "{}",
            layered.description
        );
        assert_eq!(layered.icon, "security-medium-symbolic");
        assert_eq!(
            headline(Some(&status(0, 5)), 0).title,
            "System files are unprotected"
        );
        let partly = headline(Some(&status(2, 3)), 0);
        assert_eq!(partly.title, "System files are partly protected");
        assert_eq!(partly.description, "2 of 5 system files are protected.");
        assert_eq!(headline(None, 0).icon, "content-loading-symbolic");
        assert!(!warns(Some(&status(5, 0))));
        assert!(warns(Some(&status(2, 3))) && warns(Some(&status(0, 5))));
        assert_eq!(layers_banner(0), None);
        assert_eq!(
            layers_banner(1).map(|b| b.0).as_deref(),
            Some("1 layer is open")
        );
        assert!(
            layers_banner(3)
                .unwrap()
                .1
                .starts_with("The files beneath them")
        );
    }

    #[test]
    fn notices_name_what_changes_the_picture() {
        let mut s = status(0, 5);
        assert!(notices(&s, 0).is_empty());
        s.report.relock_at = Some(600);
        s.report.runs.push(RunInfo {
            pid: 1,
            command: "apt".into(),
            started: 0,
        });
        s.report.interrupted_commit = Some("ab".into());
        s.report.offline_update = Some(almost_protocol::OfflineUpdate {
            kind: almost_protocol::OfflineKind::Update,
            source: almost_protocol::OfflineSource::Packagekit,
        });
        let n = notices(&s, 0);
        assert_eq!(n[0], "Protection comes back in 10 minutes.");
        assert_eq!(
            n[1],
            "1 command is running with the system files unprotected."
        );
        assert!(n[2].contains("interrupted"));
        assert!(n[3].contains("offline update"));
        assert_eq!(n.len(), 4);
    }

    #[test]
    fn counts_and_progress_in_words() {
        assert_eq!(
            path_words(&path(4, 1)),
            "4 protected, 1 unprotected, 1 without the flag (links, devices)"
        );
        let mut covered = path(0, 0);
        covered.covered = true;
        assert_eq!(path_words(&covered), "Covered by a layer");
        let p = Progress {
            phase: almost_protocol::Phase::Lock,
            done: 3,
            total: Some(10),
            path: None,
        };
        assert_eq!(progress_words(&p), "3 of 10 files");
        assert_eq!(progress_words(&Progress { total: None, ..p }), "3 files");
    }

    #[test]
    fn a_new_status_rebuilds_the_rows_only_when_paths_change() {
        let mut h = Header {
            status: None,
            open_layers: 0,
            unreadable: Some(Message {
                heading: "x".into(),
                body: String::new(),
                details: String::new(),
                retry: false,
            }),
            busy: None,
            progress: None,
            paths_changed: false,
        };
        h.apply(HeaderInput::Status(Box::new(status(5, 0)), 1));
        assert!(h.paths_changed);
        assert!(h.unreadable.is_none());
        h.apply(HeaderInput::Status(Box::new(status(5, 0)), 1));
        assert!(!h.paths_changed);
        h.apply(HeaderInput::Busy(Some("Protecting".into())));
        assert_eq!(h.busy.as_deref(), Some("Protecting"));
        h.apply(HeaderInput::Busy(None));
        assert!(h.busy.is_none() && h.progress.is_none());
    }
}
