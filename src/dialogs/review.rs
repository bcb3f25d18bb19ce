// SPDX-License-Identifier: GPL-3.0-or-later
//! The review before every commit: the layer's changes grouped as added,
//! modified (content and metadata), deleted and replaced; the text diff of
//! the selected file in a read-only monospace view with added and removed
//! lines coloured; and an Apply Changes button under a heading that says
//! what it does ("Apply 12 changes to /usr"). The list and the diff sit
//! side by side, or, in a narrow window, as two pages (a leaflet: the
//! list, then the chosen file's diff with a back button). Esc closes. The
//! diff is read by `almost layer diff` (privileged) off the GTK thread.
//!
//! Each review is a window of its own, destroyed when it closes (never
//! kept hidden): GTK 4.8 answers an accessibility query for a toplevel
//! index past the visible windows with the last toplevel of its list, and
//! crashes if that is a hidden window (a NULL object path in
//! `g_variant_new`). With no hidden window alive, that answer is always a
//! shown one.

use std::sync::Arc;

use adw::prelude::*;
use almost_protocol::Layer as LayerInfo;
use almost_protocol::{Change, ChangeKind, EntryType};
use relm4::{Component, ComponentParts, ComponentSender};

use crate::client::{Almost, AlmostError};
use crate::components::name;
use crate::i18n::{i18n, i18n_f, ni18n_f};
use almost_protocol::Diff;

/// The groups of the list, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Added,
    Modified,
    Deleted,
    Replaced,
}

impl Group {
    pub fn of(kind: ChangeKind) -> Group {
        match kind {
            ChangeKind::Added => Group::Added,
            ChangeKind::Modified | ChangeKind::Metadata => Group::Modified,
            ChangeKind::Deleted => Group::Deleted,
            ChangeKind::Replaced => Group::Replaced,
        }
    }

    pub fn title(self, n: u64) -> String {
        let count = n.to_string();
        match self {
            Group::Added => i18n_f("Added ({})", &[&count]),
            Group::Modified => i18n_f("Modified ({})", &[&count]),
            Group::Deleted => i18n_f("Deleted ({})", &[&count]),
            Group::Replaced => i18n_f("Replaced ({})", &[&count]),
        }
    }

    fn word(self) -> String {
        match self {
            Group::Added => i18n("Added"),
            Group::Modified => i18n("Modified"),
            Group::Deleted => i18n("Deleted"),
            Group::Replaced => i18n("Replaced"),
        }
    }
}

/// Whether a change is only the folder that holds other changes (a new
/// folder with new files in it): not listed, its files are. A folder that
/// changes itself (new and empty, deleted, replaced, its mode or owner) is.
pub fn is_holder_only(changes: &[Change], i: usize) -> bool {
    let c = &changes[i];
    if c.kind != EntryType::Dir || c.change != ChangeKind::Added {
        return false;
    }
    changes
        .iter()
        .any(|other| other.path != c.path && other.path.starts_with(&c.path))
}

/// The changes a reviewer reads (those of [`is_holder_only`] left out).
pub fn shown_changes(changes: &[Change]) -> Vec<usize> {
    (0..changes.len())
        .filter(|&i| !is_holder_only(changes, i))
        .collect()
}

/// The changes grouped by the directory of the layer they lie under (a
/// layer may cover several: a software change covers /usr, /etc, …), in
/// the order of `parts`, then by kind: (the directory, when there are
/// several; the kind; the changes). Headings say "/etc · Added (2)".
pub fn group_by_part(
    changes: &[Change],
    parts: &[std::path::PathBuf],
) -> Vec<(Option<String>, Group, Vec<usize>)> {
    if parts.len() < 2 {
        return group_changes(changes)
            .into_iter()
            .map(|(g, m)| (None, g, m))
            .collect();
    }
    let shown = shown_changes(changes);
    let mut out = Vec::new();
    for part in parts {
        let under: Vec<usize> = shown
            .iter()
            .copied()
            .filter(|&i| changes[i].path.starts_with(part))
            .collect();
        let label = almost_protocol::path::encode(part);
        out.extend(
            group_indices(changes, &under)
                .into_iter()
                .map(|(g, m)| (Some(label.clone()), g, m)),
        );
    }
    out
}

/// The changes grouped, keeping each change's index in the diff.
pub fn group_changes(changes: &[Change]) -> Vec<(Group, Vec<usize>)> {
    group_indices(changes, &shown_changes(changes))
}

/// The changes at `shown` grouped by kind, each group in natural order.
fn group_indices(changes: &[Change], shown: &[usize]) -> Vec<(Group, Vec<usize>)> {
    [
        Group::Added,
        Group::Modified,
        Group::Deleted,
        Group::Replaced,
    ]
    .into_iter()
    .map(|g| {
        let mut members = shown
            .iter()
            .copied()
            .filter(|&i| Group::of(changes[i].change) == g)
            .collect::<Vec<_>>();
        members.sort_by(|&x, &y| natural_cmp(&changes[x].path_text(), &changes[y].path_text()));
        (g, members)
    })
    .filter(|(_, m)| !m.is_empty())
    .collect()
}

/// Natural order of paths: runs of digits compare as numbers ("lib2"
/// before "lib10"), the rest case-insensitively, ties by the bytes.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut digits = None;
        for (i, c) in s.char_indices() {
            let d = c.is_ascii_digit();
            if digits.is_some_and(|was| was != d) {
                out.push((digits.unwrap_or(false), &s[start..i]));
                start = i;
            }
            digits = Some(d);
        }
        if start < s.len() {
            out.push((digits.unwrap_or(false), &s[start..]));
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let order = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        };
        if order != std::cmp::Ordering::Equal {
            return order;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

/// Whether the search (`query`, lower case) keeps a row: a change's row
/// (`path`) when its path holds the text, a group's heading (no path)
/// only while nothing is searched.
pub fn search_keeps(path: Option<&str>, query: &str) -> bool {
    query.is_empty() || path.is_some_and(|p| p.to_lowercase().contains(query))
}

/// A path as a file name and the folder holding it.
pub fn name_and_folder(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => (name, "/"),
        Some((folder, name)) => (name, folder),
        None => (path, ""),
    }
}

/// "Apply 12 changes to /usr".
pub fn summary(n: u64, path: &str) -> String {
    ni18n_f(
        "Apply {} change to {}",
        "Apply {} changes to {}",
        n,
        &[&n.to_string(), path],
    )
}

/// The apply button's words: "Apply Changes" when every change is
/// checked, else "Apply 2 of 3 Changes".
pub fn apply_words(checked: usize, shown: usize) -> String {
    if checked == shown {
        i18n("Apply Changes")
    } else {
        ni18n_f(
            "Apply {} of {} Change",
            "Apply {} of {} Changes",
            shown as u64,
            &[&checked.to_string(), &shown.to_string()],
        )
    }
}

/// The same, shorter, for a narrow window: "Apply 2 of 3".
pub fn apply_short_words(checked: usize, shown: usize) -> String {
    i18n_f(
        "Apply {} of {}",
        &[&checked.to_string(), &shown.to_string()],
    )
}

/// Checks or unchecks change `i` (`checked` has one entry per change).
/// A folder's check covers what lies below it: checking or unchecking it
/// does the same to the changes beneath. Unchecking a change unchecks
/// the folders above it that are changes themselves, since applying a
/// folder applies all below it: what is checked is always what applies.
pub fn set_checked(changes: &[Change], checked: &mut [bool], i: usize, on: bool) {
    let Some(c) = changes.get(i) else { return };
    checked[i] = on;
    for (j, other) in changes.iter().enumerate() {
        if j == i {
            continue;
        }
        if c.kind == EntryType::Dir && other.path.starts_with(&c.path) {
            checked[j] = on;
        } else if !on && other.kind == EntryType::Dir && c.path.starts_with(&other.path) {
            checked[j] = false;
        }
    }
}

/// The paths of a selective commit (`layer commit --only`), as `layer
/// diff` gives them: the checked changes the review shows, or `None`
/// when every one is checked (a whole commit).
pub fn only_paths(changes: &[Change], checked: &[bool]) -> Option<Vec<String>> {
    let shown = shown_changes(changes);
    if shown
        .iter()
        .all(|&i| checked.get(i).copied().unwrap_or(true))
    {
        return None;
    }
    Some(
        shown
            .into_iter()
            .filter(|&i| checked.get(i).copied().unwrap_or(true))
            .map(|i| changes[i].path_text())
            .collect(),
    )
}

/// How a line of a unified diff is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Header,
    Hunk,
    Added,
    Removed,
    Context,
}

pub fn line_kind(line: &str) -> LineKind {
    if line.starts_with("+++ ") || line.starts_with("--- ") || line.starts_with('\\') {
        LineKind::Header
    } else if line.starts_with("@@") {
        LineKind::Hunk
    } else if line.starts_with('+') {
        LineKind::Added
    } else if line.starts_with('-') {
        LineKind::Removed
    } else {
        LineKind::Context
    }
}

/// A hunk header ("@@ -10,4 +12,5 @@") as the reader's separator: the
/// line of the new file it starts at ("Line 12"; of the old one when the
/// new file has none left).
pub fn hunk_words(line: &str) -> String {
    let start = |sign: char| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(sign))
            .and_then(|w| w.split(',').next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    match start('+').filter(|&n| n > 0).or_else(|| start('-')) {
        Some(n) => i18n_f("Line {}", &[&n.max(1).to_string()]),
        None => i18n("Changed lines"),
    }
}

/// How much of a line's colour tints the background of added and removed
/// lines.
pub const TINT: f64 = 0.12;

/// The diff's colours for a light (`false`) or dark view: (tag, text
/// colour, whether its lines get a tint of it). GNOME's palette, dark
/// enough (light) or light enough (dark) for WCAG AA (4.5:1) on the
/// tinted background; checked by a unit test.
pub fn diff_palette(dark: bool) -> [(&'static str, (u8, u8, u8), bool); 3] {
    if dark {
        [
            ("added", (0x8f, 0xf0, 0xa4), true),
            ("removed", (0xff, 0x7b, 0x63), true),
            ("hunk", (0x78, 0xae, 0xed), false),
        ]
    } else {
        [
            ("added", (0x14, 0x6c, 0x43), true),
            ("removed", (0xa5, 0x1d, 0x2d), true),
            ("hunk", (0x1a, 0x5f, 0xb4), false),
        ]
    }
}

fn rgba((r, g, b): (u8, u8, u8), alpha: f64) -> gtk::gdk::RGBA {
    gtk::gdk::RGBA::new(
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
        alpha as f32,
    )
}

/// Sets the diff tags' colours for a light or dark view.
fn paint_diff(buffer: &gtk::TextBuffer, dark: bool) {
    for (name, colour, tinted) in diff_palette(dark) {
        if let Some(tag) = buffer.tag_table().lookup(name) {
            tag.set_foreground_rgba(Some(&rgba(colour, 1.0)));
            if tinted {
                tag.set_paragraph_background_rgba(Some(&rgba(colour, TINT)));
            }
        }
    }
}

/// An entry's type in words ("file", "folder", …).
pub fn type_words(t: EntryType) -> String {
    match t {
        EntryType::File => i18n("file"),
        EntryType::Dir => i18n("folder"),
        EntryType::Symlink => i18n("symbolic link"),
        EntryType::Char | EntryType::Block => i18n("device"),
        EntryType::Fifo => i18n("named pipe"),
        EntryType::Socket => i18n("socket"),
    }
}

/// What the text view shows for a change that has no patch.
pub fn change_text(c: &Change) -> String {
    let size = |s: Option<u64>| s.map_or_else(|| "?".to_owned(), |s| s.to_string());
    let dir = c.kind == EntryType::Dir;
    let mut text = match c.change {
        ChangeKind::Added if dir => i18n("A new, empty folder."),
        ChangeKind::Added if c.kind == EntryType::File => ni18n_f(
            "A new file of {} byte.",
            "A new file of {} bytes.",
            c.new_size.unwrap_or(0),
            &[&size(c.new_size)],
        ),
        ChangeKind::Added => i18n_f("A new {}.", &[&type_words(c.kind)]),
        ChangeKind::Deleted if dir => match c.meta.old_entries {
            Some(n) if n > 0 => ni18n_f(
                "The folder is deleted, with the {} item in it.",
                "The folder is deleted, with the {} items in it.",
                n,
                &[&n.to_string()],
            ),
            _ => i18n("The folder is deleted, with everything in it."),
        },
        ChangeKind::Replaced if dir && c.old_type == Some(EntryType::Dir) => {
            match c.meta.old_entries {
                Some(n) if n > 0 => ni18n_f(
                    "The folder is made anew: the {} item it held is removed.",
                    "The folder is made anew: the {} items it held are removed.",
                    n,
                    &[&n.to_string()],
                ),
                _ => i18n("The folder is made anew: what it held is removed."),
            }
        }
        ChangeKind::Deleted => i18n_f("The {} is deleted.", &[&type_words(c.kind)]),
        ChangeKind::Replaced => i18n_f(
            "Replaced: {} → {}.",
            &[
                &c.old_type.map_or_else(|| "?".to_owned(), type_words),
                &type_words(c.kind),
            ],
        ),
        ChangeKind::Metadata if dir => {
            i18n("Only the folder's permissions, owner or attributes change.")
        }
        ChangeKind::Metadata => i18n("Only its permissions, owner or attributes change."),
        ChangeKind::Modified if c.binary => i18n_f(
            "Binary content: {} → {} bytes.",
            &[&size(c.old_size), &size(c.new_size)],
        ),
        ChangeKind::Modified => i18n("The content changes."),
    };
    let words = meta_words(&c.meta, c.kind);
    if !words.is_empty() {
        for line in words {
            text.push('\n');
            text.push_str(&line);
        }
    } else if let Some(detail) = c.detail.as_ref().filter(|_| c.meta.old_entries.is_none()) {
        // An older almost gives no data, only its English words.
        text.push('\n');
        text.push_str(detail);
    }
    text
}

/// Permission bits as `ls -l` writes them (`rwsr-xr-x`).
pub fn mode_letters(mode: u32) -> String {
    let bit = |b: u32, c: char| if mode & b != 0 { c } else { '-' };
    let exec = |x: u32, special: u32, set: char| match (mode & x != 0, mode & special != 0) {
        (true, true) => set,
        (false, true) => set.to_ascii_uppercase(),
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't'),
    ]
    .iter()
    .collect()
}

/// A user or group in words: the name this system gives it, else its
/// number.
fn account_words(id: u32, group: bool) -> String {
    use nix::unistd::{Gid, Group, Uid, User};
    let name = if group {
        Group::from_gid(Gid::from_raw(id))
            .ok()
            .flatten()
            .map(|g| g.name)
    } else {
        User::from_uid(Uid::from_raw(id))
            .ok()
            .flatten()
            .map(|u| u.name)
    };
    match name {
        Some(name) => name,
        None if group => i18n_f("group {}", &[&id.to_string()]),
        None => i18n_f("user {}", &[&id.to_string()]),
    }
}

/// What changed besides the content, one sentence a line, in the panel's
/// words; first what a reviewer must not miss (a program that runs with
/// its owner's rights, a file anyone can change).
pub fn meta_words(m: &almost_protocol::layer::MetaChange, kind: EntryType) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((old, new)) = m.mode {
        let gained = |bits: u32| new & bits != 0 && old & bits == 0;
        let lost = |bits: u32| old & bits != 0 && new & bits == 0;
        if gained(0o4000) || (gained(0o2000) && kind != EntryType::Dir) {
            out.push(i18n(
                "It now runs with the rights of its owner or group, whoever starts it.",
            ));
        }
        if gained(0o002) {
            out.push(if kind == EntryType::Dir {
                i18n("Anyone can now add and remove files in it.")
            } else {
                i18n("Anyone can now change it.")
            });
        }
        if kind == EntryType::File {
            if gained(0o111) && old & 0o111 == 0 {
                out.push(i18n("It can now be run as a program."));
            } else if lost(0o111) && new & 0o111 == 0 {
                out.push(i18n("It can no longer be run as a program."));
            }
        }
        out.push(i18n_f(
            "Permissions change from {} to {}.",
            &[&mode_letters(old), &mode_letters(new)],
        ));
    }
    if let Some((old, new)) = m.owner {
        out.push(i18n_f(
            "The owner changes from {} to {}.",
            &[&account_words(old, false), &account_words(new, false)],
        ));
    }
    if let Some((old, new)) = m.group {
        out.push(i18n_f(
            "The group changes from {} to {}.",
            &[&account_words(old, true), &account_words(new, true)],
        ));
    }
    if !m.xattrs.is_empty() {
        if m.xattrs.iter().any(|x| x == "security.capability") {
            out.push(i18n(
                "Its capabilities change: the special rights it gets when run.",
            ));
        }
        out.push(i18n_f(
            "Extended attributes change: {}.",
            &[&m.xattrs.join(", ")],
        ));
    }
    if let Some((old, new)) = &m.target {
        out.push(i18n_f(
            "The link now leads to {} instead of {}.",
            &[new, old],
        ));
    }
    out
}

/// At most this many lines of a new text file are shown.
pub const MAX_SHOWN_LINES: usize = 500;

/// A new text file's content from its patch (every line added): the
/// lines without the diff's "+", the first [`MAX_SHOWN_LINES`] only, and
/// the note that says so when there are more.
pub fn new_file_lines(patch: &str) -> (Vec<&str>, Option<String>) {
    let lines: Vec<&str> = patch
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with("@@"))
        .filter_map(|l| l.strip_prefix('+'))
        .collect();
    let total = lines.len();
    if total <= MAX_SHOWN_LINES {
        return (lines, None);
    }
    let note = ni18n_f(
        "The first {} lines of {} line:",
        "The first {} lines of {} lines:",
        total as u64,
        &[&MAX_SHOWN_LINES.to_string(), &total.to_string()],
    );
    (lines[..MAX_SHOWN_LINES].to_vec(), Some(note))
}

/// Sends to the review from one of its widgets' signals. A signal can
/// still come from a window whose review has ended (GTK 4.8 delivers
/// accessibility actions to a closed review's widgets): it is dropped
/// there instead of panicking on the ended component.
fn send(s: &ComponentSender<Review>, msg: ReviewInput) {
    if s.input_sender().send(msg).is_err() {
        tracing::debug!("a closed review's widget sent a message");
    }
}

#[derive(Debug)]
pub enum ReviewInput {
    Open(Box<LayerInfo>),
    Select(usize),
    /// The list and the diff are shown one at a time (narrow) or not.
    Folded(bool),
    /// The check of change N was turned on or off.
    Check(usize, bool),
    Commit,
    /// The user asks to discard the layer (the window asks to confirm).
    Discard,
    /// An act (the commit, the discard) started or ended.
    Busy(bool),
    /// The commit or discard succeeded: the review closes.
    Done,
    /// It failed: the review stays open (try again, or discard).
    Failed,
    Close,
}

#[derive(Debug)]
pub enum ReviewOutput {
    /// Commit this layer (the user checked `count` changes; `only`: the
    /// checked paths when not all are, for `layer commit --only`).
    Commit {
        id: String,
        path: String,
        count: usize,
        only: Option<Vec<String>>,
    },
    /// Discard this layer (after a confirmation).
    Discard(Box<LayerInfo>),
    /// The diff could not be read.
    Failed(AlmostError),
}

#[derive(Debug)]
pub enum ReviewCmd {
    Loaded(String, Result<Diff, AlmostError>),
}

pub struct Review {
    almost: Arc<Almost>,
    layer: Option<LayerInfo>,
    diff: Option<Diff>,
    loading: bool,
    selected: Option<usize>,
    /// For each change of the diff, whether it is to be applied.
    checked: Vec<bool>,
    /// The list must be rebuilt.
    fresh: bool,
    /// A commit or discard is under way.
    busy: bool,
    /// The window is narrow (the leaflet folded): shorter words.
    folded: bool,
}

impl Review {
    /// Whether the Commit button may be pressed.
    pub fn can_commit(&self) -> bool {
        !self.loading
            && !self.busy
            && self.diff.as_ref().is_some_and(|d| {
                shown_changes(&d.changes)
                    .iter()
                    .any(|&i| self.checked.get(i).copied().unwrap_or(true))
            })
    }

    /// (checked, shown): the changes to apply of those listed.
    fn checked_of_shown(&self) -> (usize, usize) {
        let shown = self
            .diff
            .as_ref()
            .map(|d| shown_changes(&d.changes))
            .unwrap_or_default();
        let n = shown
            .iter()
            .filter(|&&i| self.checked.get(i).copied().unwrap_or(true))
            .count();
        (n, shown.len())
    }
}

pub struct ReviewWidgets {
    title: adw::WindowTitle,
    summary: gtk::Label,
    counts: gtk::Label,
    list: gtk::ListBox,
    /// For each row of the list, the change it shows (None: a heading).
    row_changes: Vec<Option<usize>>,
    /// The check button of each listed change, by the change's index.
    checks: Vec<(usize, gtk::CheckButton)>,
    /// Set while the window itself selects a row.
    quiet: std::rc::Rc<std::cell::Cell<bool>>,
    buffer: gtk::TextBuffer,
    commit: gtk::Button,
    /// The apply button's words (ellipsized rather than widening a
    /// narrow window).
    commit_label: gtk::Label,
    discard: gtk::Button,
    stack: gtk::Stack,
}

impl Component for Review {
    type Init = (Arc<Almost>, gtk::Window);
    type Input = ReviewInput;
    type Output = ReviewOutput;
    type CommandOutput = ReviewCmd;
    type Root = adw::Window;
    type Widgets = ReviewWidgets;

    fn init_root() -> Self::Root {
        adw::Window::builder()
            .modal(true)
            .default_width(920)
            .default_height(640)
            .build()
    }

    fn init(
        (almost, parent): Self::Init,
        window: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        window.set_transient_for(Some(&parent));
        window.set_title(Some(&i18n("Review Changes")));
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        let header = adw::HeaderBar::builder()
            .show_end_title_buttons(false)
            .build();
        let title = adw::WindowTitle::new(&i18n("Review Changes"), "");
        header.set_title_widget(Some(&title));
        let cancel = gtk::Button::with_mnemonic(&i18n("_Cancel"));
        name(&cancel, &i18n("Cancel"));
        let s = sender.clone();
        cancel.connect_clicked(move |_| send(&s, ReviewInput::Close));
        header.pack_start(&cancel);
        let commit_label = gtk::Label::builder()
            .label(i18n("_Apply Changes"))
            .use_underline(true)
            .ellipsize(gtk::pango::EllipsizeMode::End)
            .build();
        let commit = gtk::Button::builder().child(&commit_label).build();
        commit_label.set_mnemonic_widget(Some(&commit));
        commit.add_css_class("suggested-action");
        commit.set_sensitive(false);
        name(&commit, &i18n("Apply Changes"));
        let s = sender.clone();
        commit.connect_clicked(move |_| send(&s, ReviewInput::Commit));
        header.pack_end(&commit);
        content.append(&header);

        let top = gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .spacing(4)
            .margin_top(12)
            .margin_bottom(12)
            .margin_start(18)
            .margin_end(18)
            .build();
        let summary = gtk::Label::builder().xalign(0.0).wrap(true).build();
        summary.add_css_class("title-3");
        let counts = gtk::Label::builder().xalign(0.0).wrap(true).build();
        counts.add_css_class("dim-label");
        top.append(&summary);
        top.append(&counts);
        content.append(&top);

        let list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::Single)
            .build();
        list.add_css_class("navigation-sidebar");
        name(&list, &i18n("Changes"));
        let list_scroll = gtk::ScrolledWindow::builder()
            .child(&list)
            .hscrollbar_policy(gtk::PolicyType::Never)
            .vexpand(true)
            .build();
        name(&list_scroll, &i18n("Changes"));
        // A search entry over the list: rows whose path holds the text.
        let search = gtk::SearchEntry::builder()
            .placeholder_text(i18n("Search the Changes"))
            .margin_start(6)
            .margin_end(6)
            .margin_top(6)
            .margin_bottom(6)
            .build();
        name(&search, &i18n("Search the changes"));
        let query = std::rc::Rc::new(std::cell::RefCell::new(String::new()));
        let q = query.clone();
        list.set_filter_func(move |row| search_keeps(row.tooltip_text().as_deref(), &q.borrow()));
        let (q, l) = (query.clone(), list.clone());
        search.connect_search_changed(move |e| {
            *q.borrow_mut() = e.text().to_lowercase();
            l.invalidate_filter();
        });
        let list_scroll = {
            let page = gtk::Box::builder()
                .orientation(gtk::Orientation::Vertical)
                .width_request(300)
                .build();
            page.append(&search);
            page.append(&list_scroll);
            page
        };
        let text = gtk::TextView::builder()
            .editable(false)
            .cursor_visible(false)
            .monospace(true)
            .wrap_mode(gtk::WrapMode::None)
            .left_margin(12)
            .right_margin(12)
            .top_margin(12)
            .bottom_margin(12)
            .build();
        name(&text, &i18n("Difference of the selected file"));
        let buffer = text.buffer();
        for tag in ["added", "removed", "hunk"] {
            buffer
                .tag_table()
                .add(&gtk::TextTag::builder().name(tag).build());
        }
        buffer
            .tag_table()
            .add(&gtk::TextTag::builder().name("header").weight(700).build());
        // The colours follow the style (light or dark) as it changes.
        let style = adw::StyleManager::default();
        paint_diff(&buffer, style.is_dark());
        let b = buffer.clone();
        style.connect_dark_notify(move |s| paint_diff(&b, s.is_dark()));
        let text_scroll = gtk::ScrolledWindow::builder()
            .child(&text)
            .hexpand(true)
            .build();
        name(&text_scroll, &i18n("Difference of the selected file"));
        // List and diff side by side; when the window is too narrow for
        // both (a phone-sized 360 px), the list, then the diff of the
        // chosen file with a way back.
        let back = gtk::Button::builder()
            .icon_name("go-previous-symbolic")
            .tooltip_text(i18n("Back to the List"))
            .halign(gtk::Align::Start)
            .margin_start(6)
            .margin_top(6)
            .css_classes(["flat"])
            .visible(false)
            .build();
        name(&back, &i18n("Back to the list of changes"));
        let diff_page = gtk::Box::new(gtk::Orientation::Vertical, 0);
        diff_page.append(&back);
        diff_page.append(&text_scroll);
        text_scroll.set_vexpand(true);
        let paned = adw::Leaflet::builder()
            .can_navigate_back(true)
            .vexpand(true)
            .build();
        paned.append(&list_scroll);
        paned
            .append(&gtk::Separator::new(gtk::Orientation::Vertical))
            .set_navigatable(false);
        paned.append(&diff_page);
        let (b, s) = (back.clone(), sender.clone());
        paned.connect_folded_notify(move |l| {
            b.set_visible(l.is_folded());
            send(&s, ReviewInput::Folded(l.is_folded()));
        });
        let (l, list_page) = (paned.clone(), list_scroll.clone());
        back.connect_clicked(move |_| l.set_visible_child(&list_page));
        let spinner = gtk::Spinner::builder()
            .spinning(true)
            .width_request(32)
            .height_request(32)
            .halign(gtk::Align::Center)
            .valign(gtk::Align::Center)
            .build();
        name(&spinner, &i18n("Reading the changes"));
        let stack = gtk::Stack::new();
        stack.add_named(&spinner, Some("loading"));
        stack.add_named(&paned, Some("changes"));
        let nothing = adw::StatusPage::builder()
            .icon_name("object-select-symbolic")
            .title(i18n("Nothing to Apply"))
            .description(i18n(
                "This layer changes no file. Discard it, or keep it for changes still to come.",
            ))
            .build();
        stack.add_named(&nothing, Some("nothing"));
        content.append(&gtk::Separator::new(gtk::Orientation::Horizontal));
        content.append(&stack);
        // Discarding is the other way out of a review (also after a
        // commit failed): below, apart from Apply Changes.
        let discard = gtk::Button::with_mnemonic(&i18n("_Discard Layer…"));
        discard.add_css_class("destructive-action");
        name(&discard, &i18n("Discard Layer…"));
        let s = sender.clone();
        discard.connect_clicked(move |_| send(&s, ReviewInput::Discard));
        let actions = gtk::ActionBar::new();
        actions.pack_start(&discard);
        content.append(&actions);
        window.set_content(Some(&content));

        // The window's own selection of the first change must not turn
        // the page when folded: only the user's does.
        let quiet = std::rc::Rc::new(std::cell::Cell::new(false));
        let s = sender.clone();
        let (l, page, q) = (paned.clone(), diff_page.clone(), quiet.clone());
        list.connect_row_selected(move |_, row| {
            if let Some(row) = row {
                send(&s, ReviewInput::Select(row.index() as usize));
                if l.is_folded() && !q.get() {
                    l.set_visible_child(&page);
                }
            }
        });
        let s = sender.clone();
        let (l, page) = (paned.clone(), diff_page.clone());
        list.connect_row_activated(move |_, row| {
            send(&s, ReviewInput::Select(row.index() as usize));
            if l.is_folded() {
                l.set_visible_child(&page);
            }
        });
        // Esc closes, as in every GNOME dialog.
        let keys = gtk::ShortcutController::new();
        let s = sender.clone();
        keys.add_shortcut(gtk::Shortcut::new(
            gtk::ShortcutTrigger::parse_string("Escape"),
            Some(gtk::CallbackAction::new(move |_, _| {
                send(&s, ReviewInput::Close);
                gtk::glib::Propagation::Stop
            })),
        ));
        window.add_controller(keys);
        let s = sender.clone();
        window.connect_close_request(move |_| {
            // Close destroys the window.
            send(&s, ReviewInput::Close);
            gtk::glib::Propagation::Stop
        });

        let widgets = ReviewWidgets {
            title,
            summary,
            counts,
            list,
            row_changes: Vec::new(),
            checks: Vec::new(),
            quiet,
            buffer,
            commit,
            commit_label,
            discard,
            stack,
        };
        let model = Review {
            almost,
            layer: None,
            diff: None,
            loading: false,
            selected: None,
            checked: Vec::new(),
            fresh: false,
            busy: false,
            folded: false,
        };
        ComponentParts { model, widgets }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut ReviewWidgets,
        msg: ReviewInput,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        self.fresh = false;
        match msg {
            ReviewInput::Open(layer) => {
                let id = layer.id.clone();
                self.layer = Some(*layer);
                self.diff = None;
                self.loading = true;
                self.selected = None;
                self.fresh = true;
                let almost = self.almost.clone();
                sender.spawn_oneshot_command(move || {
                    let diff = almost.diff(&id);
                    ReviewCmd::Loaded(id, diff)
                });
                root.present();
            }
            ReviewInput::Select(row) => {
                self.selected = widgets.row_changes.get(row).copied().flatten();
            }
            ReviewInput::Folded(folded) => self.folded = folded,
            ReviewInput::Check(i, on) => {
                if let Some(diff) = &self.diff
                    && self.checked.get(i).is_some_and(|&was| was != on)
                {
                    set_checked(&diff.changes, &mut self.checked, i, on);
                }
            }
            ReviewInput::Commit => {
                if self.can_commit()
                    && let (Some(layer), Some(diff)) = (&self.layer, &self.diff)
                {
                    // The review stays open until the commit ends: closed
                    // when it succeeded (Done), kept when it failed.
                    let _ = sender.output(ReviewOutput::Commit {
                        id: layer.id.clone(),
                        path: layer.paths_text(),
                        count: self.checked_of_shown().0,
                        only: only_paths(&diff.changes, &self.checked),
                    });
                }
            }
            ReviewInput::Discard => {
                if let Some(layer) = self.layer.as_ref().filter(|_| !self.busy) {
                    let _ = sender.output(ReviewOutput::Discard(Box::new(layer.clone())));
                }
            }
            ReviewInput::Busy(busy) => self.busy = busy,
            ReviewInput::Failed => self.busy = false,
            ReviewInput::Done => {
                self.layer = None;
                self.diff = None;
                root.destroy();
            }
            ReviewInput::Close => {
                self.layer = None;
                self.diff = None;
                root.destroy();
            }
        }
        self.draw(widgets, &sender);
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut ReviewWidgets,
        cmd: ReviewCmd,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        let ReviewCmd::Loaded(id, result) = cmd;
        if self.layer.as_ref().map(|l| &l.id) != Some(&id) {
            return; // closed meanwhile, or another layer opened
        }
        self.loading = false;
        self.fresh = true;
        match result {
            Ok(diff) => {
                self.selected = (!diff.changes.is_empty()).then_some(0);
                // Every change is checked at first.
                self.checked = vec![true; diff.changes.len()];
                self.diff = Some(diff);
            }
            Err(e) => {
                self.layer = None;
                root.destroy();
                let _ = sender.output(ReviewOutput::Failed(e));
            }
        }
        self.draw(widgets, &sender);
    }
}

impl Review {
    fn draw(&self, w: &mut ReviewWidgets, sender: &ComponentSender<Self>) {
        let path = self
            .layer
            .as_ref()
            .map(|l| l.paths_text())
            .unwrap_or_default();
        w.title.set_subtitle(&path);
        w.stack.set_visible_child_name(if self.loading {
            "loading"
        } else if self.diff.as_ref().is_some_and(|d| d.changes.is_empty()) {
            "nothing"
        } else {
            "changes"
        });
        w.commit.set_sensitive(self.can_commit());
        let (n, m) = self.checked_of_shown();
        let words = apply_words(n, m);
        w.commit_label.set_text_with_mnemonic(&if n == m {
            i18n("_Apply Changes")
        } else if self.folded {
            format!("_{}", apply_short_words(n, m))
        } else {
            format!("_{words}")
        });
        // Narrow, "Apply 2 of 3" takes the title's room (the window's
        // own title still names it).
        w.title.set_visible(!self.folded || n == m);
        // Screen readers get the whole words, narrow or not.
        name(&w.commit, &words);
        w.commit.set_tooltip_text(Some(&words));
        w.discard
            .set_sensitive(!self.busy && !self.loading && self.layer.is_some());
        if self.fresh {
            while let Some(row) = w.list.row_at_index(0) {
                w.list.remove(&row);
            }
            w.row_changes.clear();
            w.checks.clear();
            let changes = self.diff.as_ref().map_or(&[][..], |d| &d.changes[..]);
            w.summary.set_label(&if self.loading {
                i18n("Reading the changes…")
            } else if changes.is_empty() {
                i18n("This layer changes nothing")
            } else {
                summary(shown_changes(changes).len() as u64, &path)
            });
            w.counts.set_label(
                &group_changes(changes)
                    .iter()
                    .map(|(g, m)| g.title(m.len() as u64))
                    .collect::<Vec<_>>()
                    .join(" · "),
            );
            let parts = self
                .diff
                .as_ref()
                .map(|d| d.parts().to_vec())
                .unwrap_or_default();
            let groups = group_by_part(changes, &parts);
            let mut first_change_row = None;
            for (part, group, members) in &groups {
                let words = match part {
                    Some(part) => i18n_f("{} · {}", &[part, &group.title(members.len() as u64)]),
                    None => group.title(members.len() as u64),
                };
                let heading = gtk::Label::builder()
                    .label(&words)
                    .xalign(0.0)
                    .margin_top(8)
                    .build();
                heading.add_css_class("heading");
                // A heading, not a stop for Tab (it does nothing), named
                // by its words for screen readers.
                let row = gtk::ListBoxRow::builder()
                    .child(&heading)
                    .selectable(false)
                    .activatable(false)
                    .focusable(false)
                    .build();
                name(&row, &words);
                w.list.append(&row);
                w.row_changes.push(None);
                for &i in members {
                    let change = &changes[i];
                    // The file's name, and under it its folder (elided
                    // from the start when long: the name stays whole).
                    let path = change.path_text();
                    let (file, folder) = name_and_folder(&path);
                    let title = gtk::Label::builder()
                        .label(file)
                        .xalign(0.0)
                        .ellipsize(gtk::pango::EllipsizeMode::Middle)
                        .build();
                    let subtitle = gtk::Label::builder()
                        .label(folder)
                        .xalign(0.0)
                        .ellipsize(gtk::pango::EllipsizeMode::Start)
                        .css_classes(["caption", "dim-label"])
                        .build();
                    let lines = gtk::Box::new(gtk::Orientation::Vertical, 2);
                    lines.set_hexpand(true);
                    lines.append(&title);
                    lines.append(&subtitle);
                    // Whether it is applied: all checked at first.
                    let check = gtk::CheckButton::builder()
                        .active(self.checked.get(i).copied().unwrap_or(true))
                        .valign(gtk::Align::Center)
                        .build();
                    name(&check, &i18n_f("Include {}", &[&path]));
                    let (s, q) = (sender.clone(), w.quiet.clone());
                    check.connect_toggled(move |c| {
                        if !q.get() {
                            send(&s, ReviewInput::Check(i, c.is_active()));
                        }
                    });
                    let line = gtk::Box::new(gtk::Orientation::Horizontal, 6);
                    line.append(&check);
                    line.append(&lines);
                    w.checks.push((i, check));
                    let row = gtk::ListBoxRow::builder().child(&line).build();
                    row.set_tooltip_text(Some(&change.path_text()));
                    name(
                        &row,
                        &i18n_f("{}: {}", &[&group.word(), &change.path_text()]),
                    );
                    w.list.append(&row);
                    if first_change_row.is_none() {
                        first_change_row = Some(row.clone());
                    }
                    w.row_changes.push(Some(i));
                }
            }
            if let Some(row) = first_change_row {
                w.quiet.set(true);
                w.list.select_row(Some(&row));
                w.quiet.set(false);
            }
        }
        // The checks follow the model (a folder's covers its changes).
        w.quiet.set(true);
        for (i, check) in &w.checks {
            check.set_active(self.checked.get(*i).copied().unwrap_or(true));
        }
        w.quiet.set(false);
        let change = self
            .diff
            .as_ref()
            .zip(self.selected)
            .and_then(|(d, i)| d.changes.get(i));
        w.buffer.set_text("");
        let Some(change) = change else { return };
        let mut end = w.buffer.end_iter();
        w.buffer.insert_with_tags_by_name(
            &mut end,
            &format!("{}\n\n", change.path_text()),
            &["header"],
        );
        match &change.patch {
            // A new text file: its content as it will be, not a diff.
            Some(patch) if change.change == ChangeKind::Added => {
                let (lines, note) = new_file_lines(patch);
                let mut end = w.buffer.end_iter();
                if let Some(note) = note {
                    w.buffer
                        .insert_with_tags_by_name(&mut end, &format!("{note}\n"), &["hunk"]);
                }
                let mut end = w.buffer.end_iter();
                w.buffer.insert(&mut end, &lines.concat());
            }
            Some(patch) => {
                // No diff syntax for the reader: the file headers
                // ("--- a/…", "+++ b/…") go, each hunk header becomes
                // "Line N" above its lines.
                let mut first_hunk = true;
                for line in patch.split_inclusive('\n') {
                    let kind = match line_kind(line) {
                        // Below the first hunk, "--- x" is a removed line
                        // "-- x" (file headers come only before it).
                        LineKind::Header if !first_hunk && line.starts_with('+') => LineKind::Added,
                        LineKind::Header if !first_hunk && line.starts_with('-') => {
                            LineKind::Removed
                        }
                        kind => kind,
                    };
                    let (text, tag) = match kind {
                        LineKind::Header => continue,
                        LineKind::Hunk => {
                            let gap = if first_hunk { "" } else { "\n" };
                            first_hunk = false;
                            (format!("{gap}{}\n", hunk_words(line)), Some("hunk"))
                        }
                        LineKind::Added => (line.to_owned(), Some("added")),
                        LineKind::Removed => (line.to_owned(), Some("removed")),
                        LineKind::Context => (line.to_owned(), None),
                    };
                    let mut end = w.buffer.end_iter();
                    match tag {
                        Some(tag) => w.buffer.insert_with_tags_by_name(&mut end, &text, &[tag]),
                        None => w.buffer.insert(&mut end, &text),
                    }
                }
            }
            None => {
                let mut end = w.buffer.end_iter();
                w.buffer.insert(&mut end, &change_text(change));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use almost_protocol::EntryType;

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            change: kind,
            kind: EntryType::File,
            old_type: None,
            old_size: Some(3),
            new_size: Some(5),
            old_hash: None,
            new_hash: None,
            detail: None,
            meta: Default::default(),
            binary: false,
            patch: None,
        }
    }

    #[test]
    fn changes_are_grouped_with_metadata_under_modified() {
        let changes = vec![
            change("/usr/d", ChangeKind::Deleted),
            change("/usr/a", ChangeKind::Added),
            change("/usr/m", ChangeKind::Metadata),
            change("/usr/c", ChangeKind::Modified),
        ];
        assert_eq!(
            group_changes(&changes),
            vec![
                (Group::Added, vec![1]),
                // In natural order of their paths: /usr/c, then /usr/m.
                (Group::Modified, vec![3, 2]),
                (Group::Deleted, vec![0]),
            ]
        );
        assert_eq!(Group::Modified.title(2), "Modified (2)");
    }

    // Files are listed in the order a person expects, each by its name
    // with the folder beside it.
    #[test]
    fn paths_in_natural_order_by_name_and_folder() {
        let mut paths = vec![
            "/usr/lib10.so",
            "/usr/Lib2.so",
            "/usr/lib2.so",
            "/usr/a/b",
            "/usr/lib1.so",
        ];
        paths.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            paths,
            [
                "/usr/a/b",
                "/usr/lib1.so",
                "/usr/Lib2.so",
                "/usr/lib2.so",
                "/usr/lib10.so"
            ]
        );
        assert_eq!(natural_cmp("x007", "x7"), std::cmp::Ordering::Less);
        assert_eq!(
            name_and_folder("/usr/share/doc/modify.txt"),
            ("modify.txt", "/usr/share/doc")
        );
        assert_eq!(name_and_folder("/usr"), ("usr", "/"));
        let changes = vec![
            change("/usr/f10", ChangeKind::Added),
            change("/usr/f9", ChangeKind::Added),
        ];
        assert_eq!(group_changes(&changes), vec![(Group::Added, vec![1, 0])]);
    }

    fn dir(path: &str, kind: ChangeKind) -> Change {
        Change {
            kind: EntryType::Dir,
            ..change(path, kind)
        }
    }

    // A new folder that only holds new files is not a change of its own
    // (its files are listed); a new empty folder, a deleted one and one
    // whose mode changed are, and say so.
    #[test]
    fn folders_are_listed_only_when_they_change_themselves() {
        let changes = vec![
            dir("/usr/share/app", ChangeKind::Added),
            change("/usr/share/app/a.txt", ChangeKind::Added),
            dir("/usr/share/empty", ChangeKind::Added),
            dir("/usr/share/gone", ChangeKind::Deleted),
            dir("/usr/share/mode", ChangeKind::Metadata),
            // Not a parent: a sibling whose name starts the same.
            dir("/usr/share/ap", ChangeKind::Added),
        ];
        assert_eq!(shown_changes(&changes), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            group_changes(&changes),
            vec![
                (Group::Added, vec![5, 1, 2]),
                (Group::Modified, vec![4]),
                (Group::Deleted, vec![3]),
            ]
        );
        assert_eq!(change_text(&changes[2]), "A new, empty folder.");
        assert_eq!(
            change_text(&changes[3]),
            "The folder is deleted, with everything in it."
        );
        assert_eq!(
            change_text(&changes[4]),
            "Only the folder's permissions, owner or attributes change."
        );
    }

    // A layer over several directories lists its changes by directory,
    // in the layer's order, then by kind; over one, by kind only.
    #[test]
    fn changes_are_grouped_by_directory() {
        let changes = vec![
            change("/usr/bin/tool", ChangeKind::Added),
            change("/etc/tool.conf", ChangeKind::Added),
            change("/etc/old.conf", ChangeKind::Deleted),
            change("/usr/lib/x.so", ChangeKind::Modified),
        ];
        let parts = vec![
            std::path::PathBuf::from("/usr"),
            std::path::PathBuf::from("/etc"),
        ];
        assert_eq!(
            group_by_part(&changes, &parts),
            vec![
                (Some("/usr".into()), Group::Added, vec![0]),
                (Some("/usr".into()), Group::Modified, vec![3]),
                (Some("/etc".into()), Group::Added, vec![1]),
                (Some("/etc".into()), Group::Deleted, vec![2]),
            ]
        );
        assert_eq!(
            group_by_part(&changes, &parts[..1])[0],
            (None, Group::Added, vec![1, 0])
        );
    }

    // A new text file shows its lines (no "+", no "@@"), the first 500 of
    // a longer one with a note that says so.
    #[test]
    fn a_new_text_file_shows_its_content() {
        let patch = "--- /dev/null\n+++ b/usr/x\n@@ -0,0 +1,2 @@\n+one\n+two\n";
        assert_eq!(new_file_lines(patch), (vec!["one\n", "two\n"], None));
        let long: String = std::iter::once("@@ -0,0 +1,600 @@\n".to_owned())
            .chain((0..600).map(|i| format!("+line {i}\n")))
            .collect();
        let (lines, note) = new_file_lines(&long);
        assert_eq!(lines.len(), MAX_SHOWN_LINES);
        assert_eq!(lines[499], "line 499\n");
        assert_eq!(note.as_deref(), Some("The first 500 lines of 600 lines:"));
    }

    #[test]
    fn the_search_keeps_the_paths_holding_its_text() {
        assert!(search_keeps(None, ""));
        assert!(search_keeps(Some("/usr/a"), ""));
        assert!(!search_keeps(None, "mod"));
        assert!(search_keeps(Some("/usr/share/doc/Modify.txt"), "modi"));
        assert!(!search_keeps(Some("/usr/share/doc/added.txt"), "modi"));
    }

    /// The view's background in libadwaita 1.2 (light, dark): what the
    /// diff's colours are read against.
    const VIEW_BACKGROUND: [(u8, u8, u8); 2] = [(0xff, 0xff, 0xff), (0x1e, 0x1e, 0x1e)];

    fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    fn blend(fg: (u8, u8, u8), bg: (u8, u8, u8), alpha: f64) -> (u8, u8, u8) {
        let mix =
            |f: u8, b: u8| (f64::from(f) * alpha + f64::from(b) * (1.0 - alpha)).round() as u8;
        (mix(fg.0, bg.0), mix(fg.1, bg.1), mix(fg.2, bg.2))
    }

    // WCAG AA: every coloured line of the diff reads at 4.5:1 or more on
    // its (tinted) background, light and dark. The colours before
    // (#26a269 on its tint: 2.9:1 light; #c01c28: 2.6:1 dark) fail this.
    #[test]
    fn diff_colours_have_aa_contrast() {
        for (dark, background) in [(false, VIEW_BACKGROUND[0]), (true, VIEW_BACKGROUND[1])] {
            for (name, colour, tinted) in diff_palette(dark) {
                let behind = if tinted {
                    blend(colour, background, TINT)
                } else {
                    background
                };
                let ratio = contrast(colour, behind);
                assert!(ratio >= 4.5, "{name} (dark: {dark}): {ratio:.2}:1");
            }
        }
        // The check itself: the old light green on its tint fails it.
        let old = (0x26, 0xa2, 0x69);
        assert!(contrast(old, blend(old, VIEW_BACKGROUND[0], TINT)) < 4.5);
    }

    #[test]
    fn the_summary_says_what_commit_does() {
        assert_eq!(summary(12, "/usr"), "Apply 12 changes to /usr");
        assert_eq!(summary(1, "/usr/share"), "Apply 1 change to /usr/share");
    }

    #[test]
    fn diff_lines_are_classified() {
        assert_eq!(line_kind("--- a/usr/x"), LineKind::Header);
        assert_eq!(line_kind("+++ b/usr/x"), LineKind::Header);
        assert_eq!(line_kind("@@ -1 +1 @@"), LineKind::Hunk);
        assert_eq!(line_kind("+new"), LineKind::Added);
        assert_eq!(line_kind("-old"), LineKind::Removed);
        assert_eq!(line_kind(" same"), LineKind::Context);
        assert_eq!(line_kind("\\ No newline at end of file"), LineKind::Header);
        // A removed line that starts with "--" is still a removed line.
        assert_eq!(line_kind("--x"), LineKind::Removed);
    }

    // Hunk headers read as the line they start at, never as "@@".
    #[test]
    fn hunk_headers_read_as_lines() {
        assert_eq!(hunk_words("@@ -10,4 +12,5 @@"), "Line 12");
        assert_eq!(hunk_words("@@ -1 +1 @@"), "Line 1");
        assert_eq!(hunk_words("@@ -0,0 +1,3 @@"), "Line 1");
        // Everything removed: where it was.
        assert_eq!(hunk_words("@@ -7,2 +0,0 @@"), "Line 7");
        assert_eq!(hunk_words("@@ nonsense @@"), "Changed lines");
    }

    #[test]
    fn a_change_without_patch_is_described() {
        assert_eq!(
            change_text(&change("/a", ChangeKind::Added)),
            "A new file of 5 bytes."
        );
        assert_eq!(
            change_text(&change("/a", ChangeKind::Deleted)),
            "The file is deleted."
        );
        let mut bin = change("/a", ChangeKind::Modified);
        bin.binary = true;
        // From an older almost: only its English words.
        bin.detail = Some("mode 0644 → 0755".into());
        assert_eq!(
            change_text(&bin),
            "Binary content: 3 → 5 bytes.\nmode 0644 → 0755"
        );
        // From this one: the data, said in the panel's words instead.
        bin.meta.mode = Some((0o644, 0o755));
        assert_eq!(
            change_text(&bin),
            "Binary content: 3 → 5 bytes.\nIt can now be run as a program.\n\
             Permissions change from rw-r--r-- to rwxr-xr-x."
        );
        let mut dir = change("/d", ChangeKind::Deleted);
        dir.kind = EntryType::Dir;
        dir.detail = Some("directory with 12 entries".into());
        dir.meta.old_entries = Some(12);
        assert_eq!(
            change_text(&dir),
            "The folder is deleted, with the 12 items in it."
        );
    }

    // Checks: permission bits read as ls writes them, the special bits
    // included (s, S, t).
    #[test]
    fn permissions_in_letters() {
        assert_eq!(mode_letters(0o644), "rw-r--r--");
        assert_eq!(mode_letters(0o4755), "rwsr-xr-x");
        assert_eq!(mode_letters(0o2644), "rw-r-Sr--");
        assert_eq!(mode_letters(0o1777), "rwxrwxrwt");
        assert_eq!(mode_letters(0o1776), "rwxrwxrwT");
    }

    // Checks: what a reviewer must not miss comes first and in plain
    // words — a program that runs with its owner's rights, a file anyone
    // can change, capabilities; owners by name when the system knows
    // them, by number otherwise; a link's new target.
    #[test]
    fn what_else_changes_in_words() {
        use almost_protocol::layer::MetaChange;
        let setuid = MetaChange {
            mode: Some((0o755, 0o4755)),
            ..MetaChange::default()
        };
        assert_eq!(
            meta_words(&setuid, EntryType::File),
            [
                "It now runs with the rights of its owner or group, whoever starts it.",
                "Permissions change from rwxr-xr-x to rwsr-xr-x."
            ]
        );
        let open = MetaChange {
            mode: Some((0o755, 0o777)),
            ..MetaChange::default()
        };
        assert_eq!(
            meta_words(&open, EntryType::Dir)[0],
            "Anyone can now add and remove files in it."
        );
        assert_eq!(
            meta_words(&open, EntryType::File)[0],
            "Anyone can now change it."
        );
        let owner = MetaChange {
            owner: Some((0, 3_999_999)),
            xattrs: vec!["security.capability".into()],
            target: Some(("a".into(), "b".into())),
            ..MetaChange::default()
        };
        assert_eq!(
            meta_words(&owner, EntryType::Symlink),
            [
                "The owner changes from root to user 3999999.",
                "Its capabilities change: the special rights it gets when run.",
                "Extended attributes change: security.capability.",
                "The link now leads to b instead of a."
            ]
        );
        assert!(meta_words(&MetaChange::default(), EntryType::File).is_empty());
    }

    #[test]
    fn commit_needs_a_loaded_non_empty_diff() {
        let mut r = Review {
            almost: Arc::new(Almost {
                exe: "/x".into(),
                root: None,
                is_root: true,
                on_host: false,
            }),
            layer: None,
            diff: None,
            loading: true,
            selected: None,
            checked: vec![],
            fresh: false,
            busy: false,
            folded: false,
        };
        assert!(!r.can_commit());
        r.loading = false;
        r.diff = Some(Diff {
            id: "a".into(),
            path: "/usr".into(),
            paths: vec!["/usr".into()],
            changes: vec![],
        });
        assert!(!r.can_commit());
        r.diff
            .as_mut()
            .unwrap()
            .changes
            .push(change("/usr/a", ChangeKind::Added));
        assert!(r.can_commit());
        // Not twice: while its commit runs, the button is off.
        r.busy = true;
        assert!(!r.can_commit());
        // Nothing checked: nothing to apply.
        r.busy = false;
        r.checked = vec![false];
        assert!(!r.can_commit());
        assert_eq!(r.checked_of_shown(), (0, 1));
    }

    // A folder's check covers the changes below it; unchecking one of
    // them unchecks the folder (applying it would apply them all); all
    // checked is a whole commit, else `--only` the checked paths.
    #[test]
    fn checks_cover_folders_and_make_the_selection() {
        let changes = vec![
            dir("/usr/share/mode", ChangeKind::Metadata),
            change("/usr/share/mode/a", ChangeKind::Added),
            change("/usr/share/mode/b", ChangeKind::Modified),
            change("/usr/share/model", ChangeKind::Added),
            // Only the holder of its file: never listed nor passed.
            dir("/usr/share/new", ChangeKind::Added),
            change("/usr/share/new/x", ChangeKind::Added),
        ];
        let mut checked = vec![true; changes.len()];
        assert_eq!(only_paths(&changes, &checked), None);
        set_checked(&changes, &mut checked, 0, false);
        // The folder and both below it; not /usr/share/model beside it.
        assert_eq!(checked, [false, false, false, true, true, true]);
        assert_eq!(
            only_paths(&changes, &checked),
            Some(vec!["/usr/share/model".into(), "/usr/share/new/x".into()])
        );
        set_checked(&changes, &mut checked, 0, true);
        assert_eq!(checked, [true; 6]);
        set_checked(&changes, &mut checked, 2, false);
        assert_eq!(checked, [false, true, false, true, true, true]);
        assert_eq!(
            only_paths(&changes, &checked),
            Some(vec![
                "/usr/share/mode/a".into(),
                "/usr/share/model".into(),
                "/usr/share/new/x".into()
            ])
        );
        assert_eq!(apply_words(3, 5), "Apply 3 of 5 Changes");
        assert_eq!(apply_words(0, 1), "Apply 0 of 1 Change");
        assert_eq!(apply_words(4, 4), "Apply Changes");
        assert_eq!(apply_short_words(3, 5), "Apply 3 of 5");
    }
}
