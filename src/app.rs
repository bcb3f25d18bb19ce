// SPDX-License-Identifier: GPL-3.0-or-later
//! The root component: the window (a GNOME Settings-like page of groups in a
//! clamp), the children (header, protection, layers, review), the poll that
//! follows changes made outside the window, and the privileged acts: one at
//! a time, run off the GTK thread with their progress shown live, their
//! failures turned into a dialog or a quiet toast.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adw::prelude::*;
use almost_protocol::DefaultMode;
use almost_protocol::Layer as LayerInfo;
use almost_protocol::{CommandResult, Overview, Report};
use gtk::gio;
use relm4::{Component, ComponentController, ComponentParts, ComponentSender, Controller};

use crate::client::{Almost, AlmostError, LayerPath, Progress, Reply, Status};
use crate::components::header::{Header, HeaderInput};
use crate::components::layers::{Layers, LayersInput, LayersOutput};
use crate::components::protection::{Protection, ProtectionInput, ProtectionOutput, While};
use crate::config;
use crate::dialogs::confirm;
use crate::dialogs::error::{self, Shown};
use crate::dialogs::review::{Review, ReviewInput, ReviewOutput};
use crate::i18n::{i18n, i18n_f, ni18n_f};

/// A privileged act of the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Lock,
    Unlock(While),
    SetDefaultMode(DefaultMode),
    NewLayer(LayerPath),
    Commit {
        id: String,
        path: String,
        count: usize,
    },
    Discard {
        id: String,
        path: String,
    },
    Undo,
}

impl Op {
    /// Runs the act through the client's method for it.
    pub fn run(
        &self,
        almost: &Almost,
        on_progress: impl FnMut(Progress),
    ) -> Result<Reply, AlmostError> {
        match self {
            Op::Lock => almost.lock(on_progress),
            Op::Unlock(w) => almost.unlock(w.duration(), on_progress),
            Op::SetDefaultMode(m) => almost.set_default_mode(*m),
            Op::NewLayer(path) => almost.new_layer(path),
            Op::Commit { id, .. } => almost.commit(id, on_progress),
            Op::Discard { id, .. } => almost.discard(id),
            Op::Undo => almost.undo(),
        }
    }

    /// What the header says while it runs.
    pub fn busy_words(&self) -> String {
        match self {
            Op::Lock => i18n("Protecting system files…"),
            Op::Unlock(_) => i18n("Unprotecting system files…"),
            Op::SetDefaultMode(_) => i18n("Saving the mode at startup…"),
            Op::NewLayer(p) => i18n_f("Making a layer over {}…", &[&p.text()]),
            Op::Commit { path, .. } => i18n_f("Applying the changes to {}…", &[path]),
            Op::Discard { path, .. } => i18n_f("Discarding the layer over {}…", &[path]),
            Op::Undo => i18n("Undoing the last commit…"),
        }
    }

    /// The toast once it succeeded.
    pub fn done_words(&self) -> String {
        match self {
            Op::Lock => i18n("Protection turned on"),
            Op::Unlock(While::TenMinutes) => i18n("Protection turned off for 10 minutes"),
            Op::Unlock(While::OneHour) => i18n("Protection turned off for 1 hour"),
            Op::Unlock(While::UntilRestart) => i18n("Protection turned off"),
            Op::SetDefaultMode(_) => i18n("Mode at startup saved"),
            Op::NewLayer(p) => i18n_f("Changes in {} now go into a new layer", &[&p.text()]),
            Op::Commit { path, count, .. } => ni18n_f(
                "{} change applied to {}",
                "{} changes applied to {}",
                *count as u64,
                &[&count.to_string(), path],
            ),
            Op::Discard { path, .. } => i18n_f("The layer over {} is discarded", &[path]),
            Op::Undo => i18n("The last commit is undone"),
        }
    }

    /// The first sentence of the error dialog when it failed.
    pub fn failed_words(&self) -> String {
        match self {
            Op::Lock => i18n("The system files could not be protected."),
            Op::Unlock(_) => i18n("The system files could not be unprotected."),
            Op::SetDefaultMode(_) => i18n("The mode at startup could not be saved."),
            Op::NewLayer(p) => i18n_f("No layer could be made over {}.", &[&p.text()]),
            Op::Commit { path, .. } => i18n_f("The changes could not be applied to {}.", &[path]),
            Op::Discard { path, .. } => {
                i18n_f("The layer over {} could not be discarded.", &[path])
            }
            Op::Undo => i18n("The last commit could not be undone."),
        }
    }
}

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
    ReviewFailed(AlmostError),
    ChooseFolder(PathBuf),
    /// The folder chooser answered: drop it (no hidden window is kept).
    ChooserDone,
}

#[derive(Debug)]
pub enum AppCmd {
    Polled(Box<Polled>),
    Progress(Progress),
    Finished(Op, Result<Reply, AlmostError>),
}

/// How many times its own duration the window waits after a poll before the
/// next timed one, so that polling takes at most a fifth of the time even
/// where a status walk is slow (a huge tree, a slow disk). Where it is
/// quick the two-second timer is what paces the polls.
pub const POLL_PAUSE_FACTOR: u32 = 4;

/// What the root component keeps between messages, apart from widgets.
#[derive(Debug, Default)]
pub struct AppState {
    pub busy: Option<Op>,
    /// When the running poll started, if one runs.
    pub polling: Option<Instant>,
    /// No timed poll before this: a poll walks every managed tree, so the
    /// pause after one is [`POLL_PAUSE_FACTOR`] times what it took (a slow
    /// walk is not run back to back while the window is open). `None` after
    /// an act, whose result is read at once.
    pub next_poll: Option<Instant>,
    /// The least pause between timed polls: long while the state file is
    /// watched (every act of `almost` is seen at once; the timed poll only
    /// catches flags changed by other means), none otherwise (the timer
    /// paces them).
    pub min_pause: Duration,
    /// The state file changed while a poll ran: its result may predate the
    /// change, so the next tick polls again.
    pub changed_while_polling: bool,
    /// The last poll error shown (shown once, not every two seconds).
    pub poll_error: Option<String>,
    /// The last status read, so that the report of a lock or unlock can
    /// update the window at once, without waiting for the next poll.
    pub status: Option<Status>,
    /// The number of layers last listed.
    pub open_layers: usize,
    /// The files the first overview named are watched (or could not be).
    pub watch_tried: bool,
}

impl AppState {
    /// Whether a poll may start now: never during an act (a half-done lock
    /// would read as "partly protected") nor on top of another poll.
    pub fn start_poll(&mut self, now: Instant) -> bool {
        if self.busy.is_some() || self.polling.is_some() || self.next_poll.is_some_and(|t| now < t)
        {
            return false;
        }
        self.polling = Some(now);
        true
    }

    /// Records the end of a poll, and when the next may start.
    pub fn polled(&mut self, now: Instant) {
        if let Some(started) = self.polling.take() {
            let pause = now.duration_since(started) * POLL_PAUSE_FACTOR;
            self.next_poll = if std::mem::take(&mut self.changed_while_polling) {
                None
            } else {
                Some(now + pause.max(self.min_pause))
            };
        }
    }

    /// The state file changed: the next poll may start at once (or, if one
    /// runs now, right after it).
    pub fn state_changed(&mut self) {
        self.next_poll = None;
        if self.polling.is_some() {
            self.changed_while_polling = true;
        }
    }

    /// Whether an act may start now.
    pub fn start(&mut self, op: &Op) -> bool {
        if self.busy.is_some() {
            return false;
        }
        self.busy = Some(op.clone());
        true
    }

    /// A new poll error: `Some` when it should be shown (it is new).
    pub fn poll_error(&mut self, error: Option<String>) -> Option<String> {
        let fresh = error.is_some() && error != self.poll_error;
        self.poll_error = error;
        if fresh { self.poll_error.clone() } else { None }
    }

    /// Records a finished act.
    pub fn finish(&mut self) {
        self.busy = None;
    }
}

/// What "Undo last commit" says it does, when the status says there is a
/// commit to undo (whoever made it: this window, another one, a terminal).
pub fn undo_words(report: &Report) -> Option<String> {
    report
        .undo
        .as_ref()
        .map(|u| i18n_f("Puts {} back as it was before the commit", &[&u.path]))
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
    /// The review window open now (a new one for each review: closed
    /// windows are destroyed, never kept hidden; see dialogs/review.rs).
    review: Option<Controller<Review>>,
    /// The folder chooser must outlive the call that shows it.
    chooser: Option<gtk::FileChooserNative>,
    /// Watches almost's state while the window is open.
    _watch: Option<Vec<gio::FileMonitor>>,
}

/// Watches the files `almost overview` names (`watch`): every privileged
/// act of `almost` (a lock from a terminal, a timer's re-lock, a layer made
/// or committed elsewhere) rewrites one when it ends, after its last
/// change, and the config can also be edited by hand; neither is written by
/// the window's own reads. A change there is read at once, so the window
/// need not walk the trees every two seconds to notice a lock from a
/// terminal. `None` in a flatpak (the host's files are not visible) or when
/// one of them cannot be watched: then the timer alone polls, as often as
/// before. A directory that does not exist yet is watched for its creation.
fn watch_state(
    almost: &Almost,
    files: &[PathBuf],
    sender: &ComponentSender<App>,
) -> Option<Vec<gio::FileMonitor>> {
    if almost.on_host || files.is_empty() {
        return None;
    }
    let mut monitors = Vec::new();
    for file in files {
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return None;
        };
        let name = name.to_owned();
        let dir = gio::File::for_path(dir);
        let monitor = match dir
            .monitor_directory(gio::FileMonitorFlags::WATCH_MOVES, gio::Cancellable::NONE)
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cannot watch {}: {e}; polling instead", dir.uri());
                return None;
            }
        };
        let s = sender.input_sender().clone();
        monitor.connect_changed(move |_, file, other, event| {
            let matches = |f: Option<&gio::File>| {
                f.and_then(gio::File::basename)
                    .is_some_and(|n| n.as_os_str() == name)
            };
            let relevant = matches!(
                event,
                gio::FileMonitorEvent::ChangesDoneHint
                    | gio::FileMonitorEvent::Created
                    | gio::FileMonitorEvent::Deleted
                    | gio::FileMonitorEvent::MovedIn
                    | gio::FileMonitorEvent::MovedOut
                    | gio::FileMonitorEvent::Renamed
            );
            if relevant && (matches(Some(file)) || matches(other)) {
                tracing::debug!(?event, file = %file.uri(), "almost's state changed");
                s.emit(AppInput::StateChanged);
            }
        });
        monitors.push(monitor);
    }
    Some(monitors)
}

impl App {
    fn toast(&self, text: &str) {
        let toast = adw::Toast::new(text);
        if let Some(old) = self.last_toast.replace(Some(toast.clone())) {
            old.dismiss();
        }
        self.toasts.add_toast(toast);
    }

    fn show_error(&self, err: &AlmostError, failed: &str) {
        match error::describe(err, failed) {
            Shown::Toast(text) => self.toast(&text),
            Shown::Dialog { heading, body } => {
                error::present(&self.window, &heading, &body);
            }
        }
    }

    fn set_busy(&self, op: Option<&Op>) {
        let busy = op.is_some();
        self.header.emit(HeaderInput::Busy(op.map(Op::busy_words)));
        self.protection.emit(ProtectionInput::Busy(busy));
        self.layers.emit(LayersInput::Busy(busy));
    }
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
                    LayersOutput::ChooseFolder(at) => AppInput::ChooseFolder(at),
                });
        let page = adw::PreferencesPage::new();
        let top = adw::PreferencesGroup::new();
        top.add(header.widget());
        page.add(&top);
        page.add(protection.widget());
        page.add(layers.widget());
        let toasts = adw::ToastOverlay::new();
        toasts.set_child(Some(&page));
        let bar = adw::HeaderBar::new();
        bar.set_title_widget(Some(&adw::WindowTitle::new(&i18n("Almost"), &subtitle)));
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&bar);
        content.append(&toasts);
        toasts.set_vexpand(true);
        window.set_content(Some(&content));

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
                    out.emit(AppCmd::Finished(op, result));
                });
            }
            AppInput::Review(info) => {
                let review = Review::builder()
                    .launch((self.almost.clone(), self.window.clone().upcast()))
                    .forward(sender.input_sender(), |out| match out {
                        ReviewOutput::Commit { id, path, count } => {
                            AppInput::Act(Op::Commit { id, path, count })
                        }
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
            AppInput::AskDiscard(info) => {
                let path = info.path_text();
                let body = match info.changes {
                    Some(n) => ni18n_f(
                        "Its {} change is deleted. The files in {} stay as they are.",
                        "Its {} changes are deleted. The files in {} stay as they are.",
                        n,
                        &[&n.to_string(), &path],
                    ),
                    None => i18n_f(
                        "Its changes are deleted. The files in {} stay as they are.",
                        &[&path],
                    ),
                };
                let s = sender.clone();
                let op = Op::Discard {
                    id: info.id.clone(),
                    path: path.clone(),
                };
                confirm::ask(
                    &self.window,
                    &i18n_f("Discard the Layer over {}?", &[&path]),
                    &body,
                    &i18n("_Discard"),
                    move || s.input(AppInput::Act(op.clone())),
                );
            }
            AppInput::AskUndo => {
                let s = sender.clone();
                confirm::ask(
                    &self.window,
                    &i18n("Undo the Last Commit?"),
                    &i18n("The files it changed are put back as they were before it."),
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
                        self.header
                            .emit(HeaderInput::Status(Box::new(status), open));
                        self.layers.emit(LayersInput::Layers(layers));
                        self.protection
                            .emit(ProtectionInput::DefaultMode(Some(config.default_mode)));
                        self.layers.emit(LayersInput::Managed(config.paths));
                    }
                    Err(e) => {
                        self.header.emit(HeaderInput::Unreadable(e.to_string()));
                        self.protection.emit(ProtectionInput::Status(None));
                        self.protection.emit(ProtectionInput::DefaultMode(None));
                        first_error = Some(e);
                    }
                }
                let shown = first_error.as_ref().map(ToString::to_string);
                if self.state.poll_error(shown).is_some()
                    && let Some(e) = &first_error
                {
                    self.show_error(e, &i18n("The state of the system files could not be read."));
                }
            }
            AppCmd::Progress(p) => self.header.emit(HeaderInput::Progress(p)),
            AppCmd::Finished(op, result) => {
                self.state.finish();
                self.set_busy(None);
                match result {
                    Ok(reply) => {
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
                            self.header.emit(HeaderInput::Status(
                                Box::new(status.clone()),
                                self.state.open_layers,
                            ));
                        }
                        self.toast(&op.done_words());
                        for w in reply.warnings {
                            self.toast(&w);
                        }
                    }
                    Err(e) if op == Op::Undo => {
                        match error::describe_undo(&e, &op.failed_words()) {
                            Shown::Toast(text) => self.toast(&text),
                            Shown::Dialog { heading, body } => {
                                error::present(&self.window, &heading, &body);
                            }
                        }
                    }
                    Err(e) => self.show_error(&e, &op.failed_words()),
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
    use std::time::Duration;

    // What the window says of an act names what it acts on.
    #[test]
    fn acts_say_what_they_did() {
        let commit = Op::Commit {
            id: "ab".into(),
            path: "/usr".into(),
            count: 3,
        };
        assert_eq!(commit.done_words(), "3 changes applied to /usr");
        let new = Op::NewLayer(LayerPath::Host("/tmp/r/usr/lib".into()));
        assert_eq!(
            new.failed_words(),
            "No layer could be made over /tmp/r/usr/lib."
        );
    }

    #[test]
    fn one_act_at_a_time_and_no_poll_during_it() {
        let now = Instant::now();
        let mut s = AppState::default();
        assert!(s.start_poll(now));
        assert!(!s.start_poll(now));
        s.polled(now);
        assert!(s.start(&Op::Lock));
        assert!(!s.start(&Op::Undo));
        assert!(!s.start_poll(now));
        s.finish();
        assert!(s.start_poll(now));
    }

    #[test]
    fn polls_pause_for_a_multiple_of_their_duration() {
        let t0 = Instant::now();
        let mut s = AppState::default();
        assert!(s.start_poll(t0));
        // A poll that took 1.5 s (a huge tree): the next waits 6 s more.
        let end = t0 + Duration::from_millis(1_500);
        s.polled(end);
        assert!(!s.start_poll(end + Duration::from_secs(2)));
        assert!(!s.start_poll(end + Duration::from_millis(5_900)));
        assert!(s.start_poll(end + Duration::from_secs(6)));
        // After an act the pause is dropped: its result is read at once.
        s.polled(end + Duration::from_secs(7));
        s.next_poll = None;
        assert!(s.start_poll(end + Duration::from_secs(7)));
    }

    #[test]
    fn a_watched_state_slows_the_timed_polls_but_not_the_changes() {
        let t0 = Instant::now();
        let mut s = AppState {
            min_pause: Duration::from_secs(20),
            ..AppState::default()
        };
        assert!(s.start_poll(t0));
        let end = t0 + Duration::from_millis(100);
        s.polled(end);
        // A quick poll: the next timed one waits for the watched pause.
        assert!(!s.start_poll(end + Duration::from_secs(2)));
        assert!(!s.start_poll(end + Duration::from_millis(19_900)));
        // The state file changed: read at once.
        s.state_changed();
        let t1 = end + Duration::from_secs(3);
        assert!(s.start_poll(t1));
        // A change while that poll runs: its result may be older than the
        // change, so the next tick polls again.
        s.state_changed();
        s.polled(t1 + Duration::from_millis(100));
        assert!(s.start_poll(t1 + Duration::from_secs(2)));
        s.polled(t1 + Duration::from_millis(2_100));
        assert!(!s.start_poll(t1 + Duration::from_secs(4)));
    }

    #[test]
    fn a_poll_error_is_shown_once() {
        let mut s = AppState::default();
        assert_eq!(s.poll_error(Some("bad".into())), Some("bad".into()));
        assert_eq!(s.poll_error(Some("bad".into())), None);
        assert_eq!(s.poll_error(None), None);
        assert_eq!(s.poll_error(Some("bad".into())), Some("bad".into()));
    }

    #[test]
    fn undo_is_offered_whenever_the_status_has_a_commit_to_undo() {
        let mut report = Report::of_paths(almost_protocol::Mode::Locked, vec![]);
        assert_eq!(undo_words(&report), None);
        report.undo = Some(almost_protocol::UndoInfo {
            id: "ab".into(),
            path: "/usr/share".into(),
            operations: 3,
        });
        assert_eq!(
            undo_words(&report).as_deref(),
            Some("Puts /usr/share back as it was before the commit")
        );
    }
}
