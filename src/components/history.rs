// SPDX-License-Identifier: GPL-3.0-or-later
//! The History: two groups of the main page. "Applied Changes" lists the
//! commits that can still be undone (`almost layer history`), newest
//! first, each with Undo… and its confirmation; a refusal because later
//! commits touched the same files is explained naming them. Reading them
//! needs root (the kept originals are root's): the list is read only when
//! the user asks ("Show", one authentication), never by a poll, and an act
//! that may have changed it puts the group back to "Show". "Recent
//! Actions" lists the last privileged acts from the audit log (`almost
//! log`, readable without privileges: read at start and after each act),
//! with Show All.

use std::sync::Arc;

use adw::prelude::*;
use almost_protocol::{HistoryEntry, LogEntry};
use relm4::{Component, ComponentParts, ComponentSender};

use super::{age_words, name, now, size_words};
use crate::client::{Almost, AlmostError};
use crate::dialogs::{confirm, error};
use crate::i18n::{i18n, i18n_f, ni18n_f};

/// How many acts the short list shows; Show All reads this many more.
pub const SHORT_ACTS: usize = 5;
pub const ALL_ACTS: usize = 200;

#[derive(Debug)]
pub enum HistoryInput {
    /// "Show": read the commits (one authentication).
    ShowCommits,
    /// Read the audit log again.
    ReadActs,
    ShowAllActs,
    /// Undo… of commit `id` was pressed: confirm.
    AskUndo(String),
    /// The undo of `id` succeeded: it is gone from the list.
    Undone(String),
    /// The undo of `id` was refused (later commits came first): explain.
    Refused(String, AlmostError),
    /// Another act (commit, discard, undo of the last) may have changed
    /// the list: back to "Show".
    Stale,
    Busy(bool),
}

#[derive(Debug)]
pub enum HistoryOutput {
    /// Undo this commit (confirmed); `paths` for the window's words.
    Undo { id: String, paths: String },
    /// Reading the commits failed (not a dismissed authentication).
    Failed(AlmostError),
}

#[derive(Debug)]
pub enum HistoryCmd {
    Commits(Result<almost_protocol::History, AlmostError>),
    Acts(Result<Vec<LogEntry>, AlmostError>),
}

pub struct History {
    almost: Arc<Almost>,
    parent: gtk::Window,
    /// `None` until read (and after an act made the list stale).
    commits: Option<Vec<HistoryEntry>>,
    reading: bool,
    /// Newest first.
    acts: Vec<LogEntry>,
    acts_error: Option<String>,
    all_acts: bool,
    busy: bool,
    /// The group of the recent acts (the component's root is the group of
    /// the commits; the window adds both to its page).
    pub acts_group: adw::PreferencesGroup,
}

pub struct HistoryWidgets {
    commit_rows: Vec<gtk::Widget>,
    act_rows: Vec<gtk::Widget>,
    show: gtk::Button,
}

/// The directories of a commit, as the window says them.
pub fn paths_text(entry: &HistoryEntry) -> String {
    entry
        .paths
        .iter()
        .map(|p| almost_protocol::path::encode(p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A protocol time (RFC 3339) as a Unix time.
fn unix_time(time: &str) -> Option<u64> {
    gtk::glib::DateTime::from_iso8601(time, None)
        .ok()
        .and_then(|d| u64::try_from(d.to_unix()).ok())
}

/// How long ago, or the time as written when it cannot be read.
fn when_words(time: &str, now: u64) -> String {
    unix_time(time).map_or_else(|| time.to_owned(), |t| age_words(t, now))
}

/// Who: the account name, else the uid, else nothing known.
fn who_words(user: Option<&str>, uid: Option<u32>) -> String {
    match (user, uid) {
        (Some(user), _) => user.to_owned(),
        (None, Some(uid)) => i18n_f("user {}", &[&uid.to_string()]),
        (None, None) => i18n("an unknown user"),
    }
}

/// A commit's second line: when, who, what it changed, the space kept.
pub fn commit_subtitle(entry: &HistoryEntry, now: u64) -> String {
    let counts = [
        ni18n_f(
            "{} added",
            "{} added",
            entry.added,
            &[&entry.added.to_string()],
        ),
        ni18n_f(
            "{} changed",
            "{} changed",
            entry.changed,
            &[&entry.changed.to_string()],
        ),
        ni18n_f(
            "{} deleted",
            "{} deleted",
            entry.deleted,
            &[&entry.deleted.to_string()],
        ),
    ]
    .join(", ");
    i18n_f(
        "{}, by {} · {} · {} kept to undo it",
        &[
            &when_words(&entry.time, now),
            &who_words(entry.user.as_deref(), entry.uid),
            &counts,
            &size_words(entry.size),
        ],
    )
}

/// The confirmation of an undo: what comes back, what is lost.
pub fn undo_words(entry: &HistoryEntry, now: u64) -> (String, String) {
    let paths = paths_text(entry);
    let mut back = Vec::new();
    if entry.added > 0 {
        back.push(ni18n_f(
            "the {} entry it added is removed",
            "the {} entries it added are removed",
            entry.added,
            &[&entry.added.to_string()],
        ));
    }
    if entry.changed > 0 {
        back.push(ni18n_f(
            "the {} entry it changed gets its earlier content back",
            "the {} entries it changed get their earlier content back",
            entry.changed,
            &[&entry.changed.to_string()],
        ));
    }
    if entry.deleted > 0 {
        back.push(ni18n_f(
            "the {} entry it deleted comes back",
            "the {} entries it deleted come back",
            entry.deleted,
            &[&entry.deleted.to_string()],
        ));
    }
    let body = i18n_f(
        "The changes applied to {} {} are taken back: {}. Whatever was written to those files since is lost.",
        &[&paths, &when_words(&entry.time, now), &back.join("; ")],
    );
    (i18n("Undo These Applied Changes?"), body)
}

/// The explanation of a refused undo: the later commits named in words
/// (their directories and when), found in `commits`; an id the list does
/// not have is named as it is.
pub fn conflict_words(
    entry: Option<&HistoryEntry>,
    later: &[String],
    commits: &[HistoryEntry],
    now: u64,
) -> error::Message {
    let named = later
        .iter()
        .map(|id| match commits.iter().find(|c| &c.id == id) {
            Some(c) => i18n_f(
                "the changes applied to {} {}",
                &[&paths_text(c), &when_words(&c.time, now)],
            ),
            None => i18n_f("the changes applied as {}", &[id]),
        })
        .collect::<Vec<_>>();
    let n = named.len().max(1) as u64;
    let what = entry.map_or_else(
        || i18n("These applied changes"),
        |e| i18n_f("The changes applied to {}", &[&paths_text(e)]),
    );
    error::Message {
        heading: i18n("Later Changes Come First"),
        body: ni18n_f(
            "{} cannot be undone yet: later changes touched the same files ({}). Undo that first, then this one. Nothing was changed.",
            "{} cannot be undone yet: later changes touched the same files ({}). Undo those first, newest first, then this one. Nothing was changed.",
            n,
            &[&what, &named.join("; ")],
        ),
        details: String::new(),
        retry: false,
    }
}

/// An act of the audit log in words: what, by whom, when, how it ended.
pub fn act_words(entry: &LogEntry, now: u64) -> (String, String) {
    let sub = entry.argv.get(1).map(String::as_str).unwrap_or_default();
    let what = match (entry.command.as_str(), sub) {
        ("lock", _) => i18n("Protected the system files"),
        ("unlock", _) => i18n("Unprotected the system files"),
        ("config", _) => i18n("Changed the settings"),
        ("run" | "enter" | "shell", _) => i18n("Ran a program with the system files writable"),
        ("layer", _) => {
            // The word after `layer` that is neither an option nor a
            // path (`almost --root /r layer --json commit ID`).
            let action = entry
                .argv
                .iter()
                .skip_while(|a| a.as_str() != "layer")
                .skip(1)
                .find(|a| !a.starts_with('-') && !a.starts_with('/'))
                .map(String::as_str);
            match action {
                Some("new") => i18n("Added a layer"),
                Some("commit") => i18n("Applied the changes of a layer"),
                Some("discard") => i18n("Discarded a layer"),
                Some("undo") => i18n("Undid applied changes"),
                Some("diff") => i18n("Read the changes of a layer"),
                Some("history") => i18n("Read the applied changes"),
                Some("mount") => i18n("Mounted a layer again"),
                _ => i18n("Changed a layer"),
            }
        }
        (command, _) => i18n_f("Ran “almost {}”", &[command]),
    };
    let what = if entry.paths.is_empty() {
        what
    } else {
        i18n_f("{}: {}", &[&what, &entry.paths.join(", ")])
    };
    let uid = entry.pkexec_uid.or(entry.sudo_uid).or(Some(entry.uid));
    let how = match entry.result.as_str() {
        "ok" => i18n("done"),
        "started" => i18n("no end recorded"),
        _ => match &entry.message {
            Some(m) => i18n_f("failed: {}", &[m]),
            None => i18n_f("failed: {}", &[&entry.result]),
        },
    };
    let sub = i18n_f(
        "{}, by {} · {}",
        &[
            &when_words(&entry.time, now),
            &who_words(entry.user.as_deref(), uid),
            &how,
        ],
    );
    (what, sub)
}

/// The acts to list, newest first, from the log's entries (oldest
/// first): an act's start entry goes when its end is there too (an act
/// with only a start is one that was killed, or still runs).
pub fn acts_shown(entries: Vec<LogEntry>) -> Vec<LogEntry> {
    let ended: std::collections::HashSet<u32> = entries
        .iter()
        .filter(|e| e.result != "started")
        .map(|e| e.pid)
        .collect();
    let mut acts: Vec<LogEntry> = entries
        .into_iter()
        .filter(|e| e.result != "started" || !ended.contains(&e.pid))
        .collect();
    acts.reverse();
    acts
}

/// A row whose title and subtitle wrap at word ends (the window is 360 px
/// at its narrowest).
fn row(title: &str, subtitle: &str) -> adw::ActionRow {
    let row = adw::ActionRow::builder()
        .title(title)
        .subtitle(subtitle)
        .title_lines(0)
        .subtitle_lines(0)
        .build();
    row.set_use_markup(false);
    for label in super::descendants(&row)
        .into_iter()
        .filter_map(|w| w.downcast::<gtk::Label>().ok())
    {
        label.set_wrap_mode(gtk::pango::WrapMode::WordChar);
    }
    row
}

impl History {
    fn read_acts(&self, sender: &ComponentSender<Self>) {
        let almost = self.almost.clone();
        let lines = if self.all_acts { ALL_ACTS } else { SHORT_ACTS };
        sender.spawn_oneshot_command(move || {
            // Each act has a start and an end entry: twice the lines.
            HistoryCmd::Acts(almost.log(lines * 2).map(|l| {
                let mut acts = acts_shown(l.entries);
                acts.truncate(lines);
                acts
            }))
        });
    }

    fn entry(&self, id: &str) -> Option<&HistoryEntry> {
        self.commits.as_ref()?.iter().find(|c| c.id == id)
    }
}

impl Component for History {
    type Init = (Arc<Almost>, gtk::Window);
    type Input = HistoryInput;
    type Output = HistoryOutput;
    type CommandOutput = HistoryCmd;
    type Root = adw::PreferencesGroup;
    type Widgets = HistoryWidgets;

    fn init_root() -> Self::Root {
        adw::PreferencesGroup::builder()
            .title(i18n("Applied Changes"))
            .description(i18n(
                "The changes applied from layers that can still be undone, newest first.",
            ))
            .build()
    }

    fn init(
        (almost, parent): Self::Init,
        group: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let show = gtk::Button::builder()
            .label(i18n("Show"))
            .valign(gtk::Align::Center)
            .build();
        name(&show, &i18n("Show the applied changes"));
        let s = sender.clone();
        show.connect_clicked(move |_| s.input(HistoryInput::ShowCommits));
        group.set_header_suffix(Some(&show));

        let acts_group = adw::PreferencesGroup::builder()
            .title(i18n("Recent Actions"))
            .description(i18n(
                "What was done with administrator rights, as the audit log records it.",
            ))
            .build();
        let model = History {
            almost,
            parent,
            commits: None,
            reading: false,
            acts: Vec::new(),
            acts_error: None,
            all_acts: false,
            busy: false,
            acts_group,
        };
        model.read_acts(&sender);
        let mut widgets = HistoryWidgets {
            commit_rows: Vec::new(),
            act_rows: Vec::new(),
            show,
        };
        model.update_view(&mut widgets, sender);
        ComponentParts { model, widgets }
    }

    fn update(&mut self, msg: HistoryInput, sender: ComponentSender<Self>, _root: &Self::Root) {
        match msg {
            HistoryInput::ShowCommits => {
                if self.reading {
                    return;
                }
                self.reading = true;
                let almost = self.almost.clone();
                sender.spawn_oneshot_command(move || HistoryCmd::Commits(almost.history()));
            }
            HistoryInput::ReadActs => self.read_acts(&sender),
            HistoryInput::ShowAllActs => {
                self.all_acts = true;
                self.read_acts(&sender);
            }
            HistoryInput::AskUndo(id) => {
                let Some(entry) = self.entry(&id).cloned() else {
                    return;
                };
                let (heading, body) = undo_words(&entry, now());
                let s = sender.clone();
                confirm::ask(&self.parent, &heading, &body, &i18n("_Undo"), move || {
                    let _ = s.output(HistoryOutput::Undo {
                        id: entry.id.clone(),
                        paths: paths_text(&entry),
                    });
                });
            }
            HistoryInput::Undone(id) => {
                if let Some(commits) = self.commits.as_mut() {
                    commits.retain(|c| c.id != id);
                }
                self.read_acts(&sender);
            }
            HistoryInput::Refused(id, e) => {
                let message = match &e {
                    AlmostError::Conflict { commits, message } => {
                        let list = self.commits.clone().unwrap_or_default();
                        let mut m = conflict_words(self.entry(&id), commits, &list, now());
                        m.details = message.clone();
                        m
                    }
                    other => match error::describe_undo(other, "") {
                        error::Shown::Dialog(m) => m,
                        error::Shown::Toast(_) => return,
                    },
                };
                error::present(&self.parent, &message, None);
                self.read_acts(&sender);
            }
            HistoryInput::Stale => {
                self.commits = None;
                self.read_acts(&sender);
            }
            HistoryInput::Busy(busy) => self.busy = busy,
        }
    }

    fn update_cmd(&mut self, cmd: HistoryCmd, sender: ComponentSender<Self>, _root: &Self::Root) {
        match cmd {
            HistoryCmd::Commits(result) => {
                self.reading = false;
                match result {
                    Ok(h) => self.commits = Some(h.commits),
                    Err(AlmostError::Dismissed) => {}
                    Err(e) => {
                        let _ = sender.output(HistoryOutput::Failed(e));
                    }
                }
                // Reading it is itself an audited act.
                self.read_acts(&sender);
            }
            HistoryCmd::Acts(result) => match result {
                Ok(acts) => {
                    self.acts = acts;
                    self.acts_error = None;
                }
                Err(e) => self.acts_error = Some(e.to_string()),
            },
        }
    }

    fn update_view(&self, w: &mut HistoryWidgets, sender: ComponentSender<Self>) {
        let now = now();
        let group: adw::PreferencesGroup = w
            .show
            .ancestor(adw::PreferencesGroup::static_type())
            .and_downcast()
            .expect("the Show button is in the group's header");
        for r in w.commit_rows.drain(..) {
            group.remove(&r);
        }
        for r in w.act_rows.drain(..) {
            self.acts_group.remove(&r);
        }
        w.show.set_sensitive(!self.reading);
        let (label, named) = if self.commits.is_some() {
            (i18n("Read Again"), i18n("Read the applied changes again"))
        } else {
            (i18n("Show"), i18n("Show the applied changes"))
        };
        if w.show.label().as_deref() != Some(label.as_str()) {
            w.show.set_label(&label);
            // A new label brings back GTK's labelled-by name.
            name(&w.show, &named);
        }
        match &self.commits {
            None => {
                let r = row(
                    &i18n("Not Read Yet"),
                    &i18n("Reading the applied changes needs administrator rights: press Show."),
                );
                group.add(&r);
                w.commit_rows.push(r.upcast());
            }
            Some(commits) if commits.is_empty() => {
                let r = row(
                    &i18n("No Applied Changes to Undo"),
                    &i18n(
                        "Changes applied from a layer are listed here until newer ones replace them.",
                    ),
                );
                group.add(&r);
                w.commit_rows.push(r.upcast());
            }
            Some(commits) => {
                for c in commits {
                    let paths = paths_text(c);
                    let r = row(&paths, &commit_subtitle(c, now));
                    let undo = gtk::Button::builder()
                        .label(i18n("Undo…"))
                        .valign(gtk::Align::Center)
                        .sensitive(!self.busy)
                        .build();
                    name(
                        &undo,
                        &i18n_f(
                            "Undo the changes applied to {} {}",
                            &[&paths, &when_words(&c.time, now)],
                        ),
                    );
                    let (s, id) = (sender.clone(), c.id.clone());
                    undo.connect_clicked(move |_| s.input(HistoryInput::AskUndo(id.clone())));
                    r.add_suffix(&undo);
                    group.add(&r);
                    w.commit_rows.push(r.upcast());
                }
            }
        }
        if let Some(e) = &self.acts_error {
            let r = row(&i18n("The audit log cannot be read"), e);
            r.add_css_class("error");
            self.acts_group.add(&r);
            w.act_rows.push(r.upcast());
        } else if self.acts.is_empty() {
            let r = row(
                &i18n("No Actions Yet"),
                &i18n("Every change made with administrator rights is recorded here."),
            );
            self.acts_group.add(&r);
            w.act_rows.push(r.upcast());
        }
        for a in &self.acts {
            let (title, sub) = act_words(a, now);
            let r = row(&title, &sub);
            if a.result != "ok" && a.result != "started" {
                r.add_prefix(&gtk::Image::from_icon_name("dialog-warning-symbolic"));
            }
            self.acts_group.add(&r);
            w.act_rows.push(r.upcast());
        }
        if !self.all_acts && self.acts.len() >= SHORT_ACTS {
            let all = gtk::Button::builder()
                .label(i18n("Show All"))
                .halign(gtk::Align::Center)
                .css_classes(["flat"])
                .margin_top(6)
                .build();
            name(&all, &i18n("Show all recent actions"));
            let s = sender.clone();
            all.connect_clicked(move |_| s.input(HistoryInput::ShowAllActs));
            self.acts_group.add(&all);
            w.act_rows.push(all.upcast());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, paths: &[&str]) -> HistoryEntry {
        HistoryEntry {
            id: id.into(),
            time: "2026-12-02T05:00:00Z".into(),
            uid: Some(1000),
            user: Some("alice".into()),
            paths: paths.iter().map(Into::into).collect(),
            added: 2,
            changed: 1,
            deleted: 0,
            size: 8192,
        }
    }

    const AT: u64 = 1_796_187_600; // 2026-12-02T05:00:00Z

    // A commit says when, who, its counts and the space kept; its undo
    // says what comes back and what is lost, leaving out a zero count.
    #[test]
    fn a_commit_and_its_undo_in_words() {
        let e = entry("ab", &["/usr/lib", "/etc"]);
        assert_eq!(unix_time(&e.time), Some(AT));
        assert_eq!(
            commit_subtitle(&e, AT + 7200),
            "2 hours ago, by alice · 2 added, 1 changed, 0 deleted · 8.0\u{a0}KiB kept to undo it"
        );
        let (heading, body) = undo_words(&e, AT + 60);
        assert_eq!(heading, "Undo These Applied Changes?");
        assert_eq!(
            body,
            "The changes applied to /usr/lib, /etc 1 minute ago are taken back: the 2 entries it added are removed; the 1 entry it changed gets its earlier content back. Whatever was written to those files since is lost."
        );
        // Undo data an older almost left names no user.
        let old = HistoryEntry {
            uid: None,
            user: None,
            ..e
        };
        assert!(commit_subtitle(&old, AT).contains("by an unknown user"));
    }

    // A refusal names the later commits by their directories and time,
    // an unknown id as it is; almost's line stays out of the body.
    #[test]
    fn a_refused_undo_names_the_later_commits() {
        let list = [entry("new", &["/usr/share"]), entry("old", &["/usr/share"])];
        let m = conflict_words(
            Some(&list[1]),
            &["new".into(), "gone".into()],
            &list,
            AT + 120,
        );
        assert_eq!(m.heading, "Later Changes Come First");
        assert_eq!(
            m.body,
            "The changes applied to /usr/share cannot be undone yet: later changes touched the same files (the changes applied to /usr/share 2 minutes ago; the changes applied as gone). Undo those first, newest first, then this one. Nothing was changed."
        );
        assert!(!m.retry);
    }

    // An audit entry in words: the act (a layer's by its action), the
    // directories, who it was done for (pkexec's caller before the uid),
    // how it ended.
    #[test]
    fn an_act_in_words() {
        let act = LogEntry {
            time: "2026-12-02T05:00:00Z".into(),
            uid: 0,
            euid: 0,
            pkexec_uid: Some(1000),
            sudo_uid: None,
            login_uid: None,
            pid: 9,
            command: "layer".into(),
            argv: vec![
                "almost".into(),
                "--root".into(),
                "/r".into(),
                "layer".into(),
                "--json".into(),
                "commit".into(),
                "ab".into(),
            ],
            paths: vec!["/usr/share".into()],
            result: "ok".into(),
            exit_code: 0,
            message: None,
            user: None,
        };
        // The first word after `layer` that is not an option nor a path.
        assert_eq!(
            act_words(&act, AT + 30),
            (
                "Applied the changes of a layer: /usr/share".to_owned(),
                "just now, by user 1000 · done".to_owned()
            )
        );
        // A start entry goes when its act's end is there (same pid); a
        // start alone stays; newest first.
        let start = LogEntry {
            result: "started".into(),
            ..act.clone()
        };
        let lone = LogEntry {
            pid: 10,
            ..start.clone()
        };
        assert_eq!(
            acts_shown(vec![start, act.clone(), lone.clone()]),
            [lone, act.clone()]
        );
        let failed = LogEntry {
            command: "lock".into(),
            paths: vec![],
            result: "busy".into(),
            message: Some("in use".into()),
            user: Some("bob".into()),
            ..act
        };
        assert_eq!(
            act_words(&failed, AT + 30),
            (
                "Protected the system files".to_owned(),
                "just now, by bob · failed: in use".to_owned()
            )
        );
    }
}
