// SPDX-License-Identifier: GPL-3.0-or-later
//! The root component: the window (a GNOME Settings-like page of groups in a
//! clamp), its children (header, protection, layers, review), the polls
//! that follow changes made outside the window (scheduled by `poll.rs`,
//! hastened by the watch of `watch.rs`), and the privileged acts of
//! `ops.rs`: one at a time, run off the GTK thread with their progress
//! shown live, their failures turned into a dialog or a quiet toast.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adw::prelude::*;
use almost_protocol::Layer as LayerInfo;
use almost_protocol::{CommandResult, Overview, Report};
use gtk::gio;
use relm4::{Component, ComponentController, ComponentParts, ComponentSender, Controller};

use crate::client::{Almost, AlmostError, LayerPath, Progress, Reply, Status};
use crate::components::header::{Header, HeaderInput, headline};
use crate::components::history::{History, HistoryInput, HistoryOutput};
use crate::components::layers::{Layers, LayersInput, LayersOutput};
use crate::components::protection::{Protection, ProtectionInput, ProtectionOutput};
use crate::config;
use crate::dialogs::confirm;
use crate::dialogs::error::{self, Shown};
use crate::dialogs::review::{Review, ReviewInput, ReviewOutput};
use crate::i18n::{i18n, i18n_f};

mod ops;
mod poll;
mod watch;

pub use ops::Op;
pub use poll::AppState;
use watch::watch_state;

/// The result of one poll: one run of `almost overview`.
pub type Polled = Result<Overview, AlmostError>;

#[derive(Debug)]
pub enum AppInput {
    /// Time to read the state again.
    Poll,
    /// `almost` changed its state file (an act from a terminal, a timer,
    /// another window): read the state now.
    StateChanged,
    Act(Op),
    Review(Box<LayerInfo>),
    AskDiscard(Box<LayerInfo>),
    AskUndo,
    /// "Add Layer…": a software change, or a folder?
    AskNew,
    ReviewFailed(AlmostError),
    /// The History's commits could not be read.
    HistoryFailed(AlmostError),
    ChooseFolder(PathBuf),
    /// The folder chooser answered: drop it (no hidden window is kept).
    ChooserDone,
}

#[derive(Debug)]
pub enum AppCmd {
    Polled(Box<Polled>),
    Progress(Progress),
    Finished(Op, Box<Result<Reply, AlmostError>>),
}

/// What "Undo last commit" says it does, when the status says there is a
/// commit to undo (whoever made it: this window, another one, a terminal).
pub fn undo_words(report: &Report) -> Option<String> {
    report.undo.as_ref().map(|u| {
        i18n_f(
            "Puts {} back as it was before the changes were applied",
            &[&u.path],
        )
    })
}

pub struct App {
    almost: Arc<Almost>,
    state: AppState,
    window: adw::ApplicationWindow,
    toasts: adw::ToastOverlay,
    /// The toast shown last: a newer one replaces it rather than queueing
    /// behind it ("Protection turned off" must not still be on screen
    /// after the switch was turned back on).
    last_toast: std::cell::RefCell<Option<adw::Toast>>,
    header: Controller<Header>,
    protection: Controller<Protection>,
    layers: Controller<Layers>,
    history: Controller<History>,
    /// The review window open now (a new one for each review: closed
    /// windows are destroyed, never kept hidden; see dialogs/review.rs).
    review: Option<Controller<Review>>,
    /// The folder chooser must outlive the call that shows it.
    chooser: Option<gtk::FileChooserNative>,
    /// Watches almost's state while the window is open.
    _watch: Option<Vec<gio::FileMonitor>>,
}

impl App {
    fn toast(&self, text: &str) {
        self.show_toast(adw::Toast::new(text));
    }

    fn show_toast(&self, toast: adw::Toast) {
        if let Some(old) = self.last_toast.replace(Some(toast.clone())) {
            old.dismiss();
        }
        self.toasts.add_toast(toast);
        // libadwaita's toast has a close button without a name, and its
        // own button (Undo) was read "Undo Undo" (label + labelled-by).
        for w in crate::components::descendants(&self.toasts) {
            if let Some(button) = w.downcast_ref::<gtk::Button>() {
                if button.icon_name().as_deref() == Some("window-close-symbolic") {
                    crate::components::name(button, &i18n("Close"));
                } else if let Some(label) = button.label()
                    && in_toast(button)
                {
                    crate::components::name(button, &crate::components::without_mnemonic(&label));
                }
            }
        }
    }

    /// Shows a failure: a toast, or a dialog over the review when one is
    /// open (it stays open: the user can try again or discard from it),
    /// with Try Again when `retry` is given and the failure allows it.
    fn show(&self, shown: Shown, retry: Option<(Op, ComponentSender<Self>)>) {
        match shown {
            Shown::Toast(text) => self.toast(&text),
            Shown::Dialog(message) => {
                let retry = retry.map(|(op, s)| -> Box<dyn Fn()> {
                    Box::new(move || s.input(AppInput::Act(op.clone())))
                });
                error::present(&self.dialog_parent(), &message, retry);
            }
        }
    }

    fn show_error(&self, err: &AlmostError, failed: &str) {
        self.show(error::describe(err, failed), None);
    }

    /// The window a dialog goes over: the review while it is open.
    fn dialog_parent(&self) -> gtk::Window {
        match &self.review {
            Some(review) if review.widget().is_visible() => review.widget().clone().upcast(),
            _ => self.window.clone().upcast(),
        }
    }

    /// Tells the open review something (nothing when it has closed: its
    /// component has ended).
    fn to_review(&self, msg: ReviewInput) {
        if let Some(review) = &self.review {
            let _ = review.sender().send(msg);
        }
    }

    fn set_busy(&self, op: Option<&Op>) {
        let busy = op.is_some();
        self.header.emit(HeaderInput::Busy(op.map(Op::busy_words)));
        self.protection.emit(ProtectionInput::Busy(busy));
        self.layers.emit(LayersInput::Busy(busy));
        self.history.emit(HistoryInput::Busy(busy));
        self.to_review(ReviewInput::Busy(busy));
    }
}

/// Whether a widget is inside a toast (libadwaita's `AdwToastWidget`,
/// a private type: known by its CSS name).
fn in_toast(widget: &impl IsA<gtk::Widget>) -> bool {
    let mut up = widget.parent();
    while let Some(w) = up {
        if w.css_name() == "toast" {
            return true;
        }
        up = w.parent();
    }
    false
}

impl Component for App {
    type Init = Arc<Almost>;
    type Input = AppInput;
    type Output = ();
    type CommandOutput = AppCmd;
    type Root = adw::ApplicationWindow;
    type Widgets = ();

    fn init_root() -> Self::Root {
        adw::ApplicationWindow::builder()
            .default_width(760)
            .default_height(820)
            .width_request(360)
            .build()
    }

    fn init(
        almost: Arc<Almost>,
        window: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let (title, subtitle) = match &almost.root {
            Some(root) => (
                i18n_f("Almost — {}", &[&root.display().to_string()]),
                i18n_f("Sandbox {}", &[&root.display().to_string()]),
            ),
            None => (i18n("Almost"), String::new()),
        };
        window.set_title(Some(&title));
        window.set_icon_name(Some(config::APP_ID));
        if config::is_devel() {
            // GNOME's striped header bar of development builds.
            window.add_css_class("devel");
        }

        let header = Header::builder().launch(()).detach();
        let protection = Protection::builder()
            .launch(())
            .forward(sender.input_sender(), |out| match out {
                ProtectionOutput::Lock => AppInput::Act(Op::Lock),
                ProtectionOutput::Unlock(w) => AppInput::Act(Op::Unlock(w)),
                ProtectionOutput::SetDefaultMode(m) => AppInput::Act(Op::SetDefaultMode(m)),
            });
        let layers =
            Layers::builder()
                .launch(almost.root.clone())
                .forward(sender.input_sender(), |out| match out {
                    LayersOutput::Review(info) => AppInput::Review(Box::new(info)),
                    LayersOutput::Discard(info) => AppInput::AskDiscard(Box::new(info)),
                    LayersOutput::New(path) => AppInput::Act(Op::NewLayer(path)),
                    LayersOutput::Undo => AppInput::AskUndo,
                    LayersOutput::AskNew => AppInput::AskNew,
                    LayersOutput::ChooseFolder(at) => AppInput::ChooseFolder(at),
                });
        let page = adw::PreferencesPage::new();
        let top = adw::PreferencesGroup::new();
        top.add(header.widget());
        // A group without a title: its list (the header's row's parent)
        // is named by the page's name.
        let mut up = header.widget().parent();
        while let Some(w) = up {
            if w.is::<gtk::ListBox>() {
                crate::components::name(&w, &i18n("Almost"));
                break;
            }
            up = w.parent();
        }
        page.add(&top);
        page.add(protection.widget());
        page.add(layers.widget());
        let history = History::builder()
            .launch((almost.clone(), window.clone().upcast()))
            .forward(sender.input_sender(), |out| match out {
                HistoryOutput::Undo { id, paths } => AppInput::Act(Op::UndoCommit { id, paths }),
                HistoryOutput::Failed(e) => AppInput::HistoryFailed(e),
            });
        page.add(history.widget());
        page.add(&history.model().acts_group.clone());
        let toasts = adw::ToastOverlay::new();
        toasts.set_child(Some(&page));
        let bar = adw::HeaderBar::new();
        bar.set_title_widget(Some(&adw::WindowTitle::new(&i18n("Almost"), &subtitle)));
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&bar);
        content.append(&toasts);
        toasts.set_vexpand(true);
        window.set_content(Some(&content));
        crate::components::name_containers(&window, &i18n("Almost"));

        let state = AppState::default();
        // The timer also ticks the countdowns (a timed unlock's re-lock).
        let s = sender.clone();
        gtk::glib::timeout_add_seconds_local(config::POLL_SECONDS, move || {
            s.input(AppInput::Poll);
            gtk::glib::ControlFlow::Continue
        });
        sender.input(AppInput::Poll);

        let model = App {
            almost,
            state,
            _watch: None,
            window,
            toasts,
            last_toast: Default::default(),
            header,
            protection,
            layers,
            history,
            review: None,
            chooser: None,
        };
        ComponentParts { model, widgets: () }
    }

    fn update(&mut self, msg: AppInput, sender: ComponentSender<Self>, _root: &Self::Root) {
        match msg {
            AppInput::StateChanged => {
                self.state.state_changed();
                sender.input(AppInput::Poll);
            }
            AppInput::Poll => {
                self.header.emit(HeaderInput::Tick);
                self.protection.emit(ProtectionInput::Tick);
                self.layers.emit(LayersInput::Tick);
                if self.state.start_poll(Instant::now()) {
                    let almost = self.almost.clone();
                    sender
                        .spawn_oneshot_command(move || AppCmd::Polled(Box::new(almost.overview())));
                }
            }
            AppInput::Act(op) => {
                if !self.state.start(&op) {
                    return;
                }
                self.set_busy(Some(&op));
                let almost = self.almost.clone();
                sender.spawn_command(move |out| {
                    let result = op.run(&almost, |p| out.emit(AppCmd::Progress(p)));
                    out.emit(AppCmd::Finished(op, Box::new(result)));
                });
            }
            AppInput::Review(info) => {
                let review = Review::builder()
                    .launch((self.almost.clone(), self.window.clone().upcast()))
                    .forward(sender.input_sender(), |out| match out {
                        ReviewOutput::Commit {
                            id,
                            path,
                            count,
                            only,
                        } => AppInput::Act(Op::Commit {
                            id,
                            path,
                            count,
                            only,
                        }),
                        ReviewOutput::Discard(info) => AppInput::AskDiscard(info),
                        ReviewOutput::Failed(e) => AppInput::ReviewFailed(e),
                    });
                review.emit(ReviewInput::Open(info));
                // The previous one's window is destroyed already.
                self.review = Some(review);
            }
            AppInput::ChooserDone => self.chooser = None,
            AppInput::ReviewFailed(e) => {
                self.show_error(&e, &i18n("The changes of the layer could not be read."));
            }
            AppInput::HistoryFailed(e) => {
                self.show_error(&e, &i18n("The applied changes could not be read."));
            }
            AppInput::AskDiscard(info) => {
                let path = info.paths_text();
                let (heading, body) = confirm::discard_words(&path, info.changes);
                let s = sender.clone();
                let op = Op::Discard {
                    id: info.id.clone(),
                    path: path.clone(),
                };
                confirm::ask(
                    &self.dialog_parent(),
                    &heading,
                    &body,
                    &i18n("_Discard"),
                    move || s.input(AppInput::Act(op.clone())),
                );
            }
            AppInput::AskNew => {
                // The first choice is a software change (the system
                // layer: what installing or removing software writes);
                // then a layer over one folder.
                let dialog = adw::MessageDialog::new(
                    Some(&self.window),
                    Some(&i18n("Add a Layer")),
                    Some(&i18n(
                        "Try a software change: install, upgrade or remove programs, then review what changed and keep it or discard it. Or choose one folder to try changes in.",
                    )),
                );
                dialog.add_responses(&[
                    ("cancel", &i18n("_Cancel")),
                    ("folder", &i18n("Choose a _Folder…")),
                    ("system", &i18n("_Try a Software Change")),
                ]);
                dialog.set_response_appearance("system", adw::ResponseAppearance::Suggested);
                dialog.set_default_response(Some("system"));
                dialog.set_close_response("cancel");
                crate::components::name(&dialog, &i18n("Add a Layer"));
                crate::components::name_buttons(&dialog);
                let (s, layers) = (sender.clone(), self.layers.sender().clone());
                dialog.connect_response(None, move |_, response| match response {
                    "system" => s.input(AppInput::Act(Op::NewLayer(LayerPath::System))),
                    "folder" => layers.emit(LayersInput::ChooseFolder),
                    _ => {}
                });
                dialog.present();
            }
            AppInput::AskUndo => {
                let s = sender.clone();
                confirm::ask(
                    &self.window,
                    &i18n("Undo the Applied Changes?"),
                    &i18n("The files they changed are put back as they were before."),
                    &i18n("_Undo"),
                    move || s.input(AppInput::Act(Op::Undo)),
                );
            }
            AppInput::ChooseFolder(at) => {
                let chooser = gtk::FileChooserNative::new(
                    Some(&i18n("Choose a Directory for the Layer")),
                    Some(&self.window),
                    gtk::FileChooserAction::SelectFolder,
                    Some(&i18n("_Select")),
                    Some(&i18n("_Cancel")),
                );
                chooser.set_modal(true);
                let _ = chooser.set_current_folder(Some(&gtk::gio::File::for_path(&at)));
                let layers = self.layers.sender().clone();
                let s = sender.clone();
                chooser.connect_response(move |c, response| {
                    if response == gtk::ResponseType::Accept
                        && let Some(path) = c.file().and_then(|f| f.path())
                    {
                        layers.emit(LayersInput::Chosen(path));
                    }
                    s.input(AppInput::ChooserDone);
                });
                chooser.show();
                self.chooser = Some(chooser);
            }
        }
    }

    fn update_cmd(&mut self, cmd: AppCmd, sender: ComponentSender<Self>, _root: &Self::Root) {
        match cmd {
            AppCmd::Polled(polled) => {
                self.state.polled(Instant::now());
                if self.state.busy.is_some() {
                    return; // an act started meanwhile: its end polls again
                }
                let mut first_error = None;
                match *polled {
                    Ok(overview) => {
                        if self._watch.is_none() && !self.state.watch_tried {
                            self.state.watch_tried = true;
                            self._watch = watch_state(&self.almost, &overview.watch, &sender);
                            if self._watch.is_some() {
                                self.state.min_pause =
                                    Duration::from_secs(config::WATCHED_POLL_SECONDS.into());
                            }
                        }
                        let Overview {
                            status,
                            layers,
                            config,
                            ..
                        } = overview;
                        let status = Status { report: status };
                        let open = layers.len();
                        self.state.status = Some(status.clone());
                        self.state.open_layers = open;
                        self.layers
                            .emit(LayersInput::Undo(undo_words(&status.report)));
                        self.protection
                            .emit(ProtectionInput::Status(Some(status.report.clone())));
                        self.protection.emit(ProtectionInput::Headline(
                            headline(Some(&status), open).title,
                        ));
                        self.header
                            .emit(HeaderInput::Status(Box::new(status), open));
                        self.layers.emit(LayersInput::Layers(layers));
                        self.protection
                            .emit(ProtectionInput::DefaultMode(Some(config.default_mode)));
                        self.layers.emit(LayersInput::Managed(config.paths));
                    }
                    Err(e) => {
                        // Nobody asked: a warning row in the window, not a
                        // dialog (a broken configuration, almost missing).
                        let message = match error::describe(&e, "") {
                            Shown::Dialog(m) => m,
                            Shown::Toast(text) => error::Message {
                                heading: text,
                                body: String::new(),
                                details: e.to_string(),
                                retry: false,
                            },
                        };
                        self.protection.emit(ProtectionInput::Headline(i18n(
                            "The state of the system files cannot be read",
                        )));
                        self.header.emit(HeaderInput::Unreadable(Box::new(message)));
                        self.protection.emit(ProtectionInput::Status(None));
                        self.protection.emit(ProtectionInput::DefaultMode(None));
                        first_error = Some(e);
                    }
                }
                let shown = first_error.as_ref().map(ToString::to_string);
                if let Some(e) = self.state.poll_error(shown) {
                    tracing::warn!("the state could not be read: {e}");
                }
            }
            AppCmd::Progress(p) => self.header.emit(HeaderInput::Progress(p)),
            AppCmd::Finished(op, result) => {
                self.state.finish();
                self.set_busy(None);
                match *result {
                    Ok(reply) => {
                        let done = op.done_words_with(&reply.result);
                        // A lock or unlock answers with the new measure:
                        // show it now, the poll confirms it.
                        if let CommandResult::Lock(report) | CommandResult::Unlock(report) =
                            reply.result
                            && let Some(status) = self.state.status.as_mut()
                        {
                            // Undo and interrupted commits are in the
                            // status only: keep the last ones read.
                            let report = Report {
                                undo: status.report.undo.take(),
                                interrupted_commit: status.report.interrupted_commit.take(),
                                ..report
                            };
                            status.report = report.clone();
                            self.protection.emit(ProtectionInput::Status(Some(report)));
                            self.protection.emit(ProtectionInput::Headline(
                                headline(Some(status), self.state.open_layers).title,
                            ));
                            self.header.emit(HeaderInput::Status(
                                Box::new(status.clone()),
                                self.state.open_layers,
                            ));
                        }
                        if matches!(op, Op::Commit { .. } | Op::Discard { .. }) {
                            self.to_review(ReviewInput::Done);
                        }
                        match op {
                            // An instant setting, as in Settings: no toast.
                            Op::SetDefaultMode(_) => {}
                            // What a commit changed can be undone from its
                            // toast (after the same confirmation).
                            Op::Commit { .. } => {
                                let toast = adw::Toast::new(&done);
                                toast.set_button_label(Some(&i18n("Undo")));
                                let s = sender.clone();
                                toast.connect_button_clicked(move |_| s.input(AppInput::AskUndo));
                                self.show_toast(toast);
                            }
                            _ => self.toast(&op.done_words()),
                        }
                        for w in reply.warnings {
                            self.toast(&w);
                        }
                        // What still runs the replaced files: a dialog
                        // that stays until read.
                        if let Some(list) = &reply.restart {
                            crate::dialogs::restart::present(&self.dialog_parent(), list);
                        }
                        self.history.emit(match &op {
                            Op::UndoCommit { id, .. } => HistoryInput::Undone(id.clone()),
                            Op::Commit { .. } | Op::Undo => HistoryInput::Stale,
                            _ => HistoryInput::ReadActs,
                        });
                    }
                    Err(e) if matches!(e, AlmostError::Conflict { .. }) => {
                        let id = match &op {
                            Op::UndoCommit { id, .. } => id.clone(),
                            _ => String::new(),
                        };
                        self.history.emit(HistoryInput::Refused(id, e));
                    }
                    Err(e) if matches!(op, Op::Undo | Op::UndoCommit { .. }) => {
                        self.show(error::describe_undo(&e, &op.failed_words()), None);
                        self.history.emit(HistoryInput::ReadActs);
                    }
                    Err(e) => {
                        // The review stays open over a failed commit.
                        self.to_review(ReviewInput::Failed);
                        let shown = error::describe(&e, &op.failed_words());
                        self.show(shown, Some((op, sender.clone())));
                        self.history.emit(HistoryInput::ReadActs);
                    }
                }
                // What the act changed is read at once, not after a pause.
                self.state.next_poll = None;
                sender.input(AppInput::Poll);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undo_is_offered_whenever_the_status_has_a_commit_to_undo() {
        let mut report = Report::of_paths(almost_protocol::Mode::Locked, vec![]);
        assert_eq!(undo_words(&report), None);
        report.undo = Some(almost_protocol::UndoInfo {
            id: "ab".into(),
            path: "/usr/share".into(),
            paths: vec!["/usr/share".into()],
            operations: 3,
        });
        assert_eq!(
            undo_words(&report).as_deref(),
            Some("Puts /usr/share back as it was before the changes were applied")
        );
    }
}
