// SPDX-License-Identifier: GPL-3.0-or-later
//! The "Layers" group: one row per layer (its directories, or "Software
//! Change" for a system layer; age, changes, size, whether new changes go
//! into it) opening the review, and Discard; "Add Layer…" (a software
//! change first, or a folder: the window asks) and a row to type a
//! directory for a new layer, which `almost` checks; "Undo the Last
//! Applied Changes" when there are some. Applying goes through the review
//! only.

use std::path::PathBuf;

use adw::prelude::*;
use almost_protocol::Layer as LayerInfo;
use relm4::{ComponentParts, ComponentSender, SimpleComponent};

use super::{age_words, name, now, size_words};
use crate::client::LayerPath;
use crate::i18n::{i18n, i18n_f, ni18n_f};

#[derive(Debug)]
pub enum LayersInput {
    Layers(Vec<LayerInfo>),
    /// The managed paths (from the config).
    Managed(Vec<PathBuf>),
    /// What "Undo last commit" would undo, if there is something.
    Undo(Option<String>),
    Busy(bool),
    /// The user asked for a layer over what the entry holds.
    NewTyped(String),
    /// The folder chooser answered (a path on the host).
    Chosen(PathBuf),
    ChooseFolder,
    /// A button of the row of layer `id` was pressed.
    Clicked(String, RowAct),
    Tick,
}

/// The buttons of a layer's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowAct {
    Review,
    Discard,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayersOutput {
    Review(LayerInfo),
    Discard(LayerInfo),
    /// Make a layer over this path.
    New(LayerPath),
    Undo,
    /// "Add Layer…": ask what the layer is for (a software change, or a
    /// folder).
    AskNew,
    /// The folder chooser should open here (a host path).
    ChooseFolder(PathBuf),
}

/// What to ask `almost` for: a layer over the typed path (inside the
/// root) or over the chosen folder (a host path); `almost` checks it and
/// says why it cannot, if it cannot. An empty entry asks nothing.
pub fn new_layer_path(typed: Option<&str>, chosen: Option<PathBuf>) -> Result<LayerPath, String> {
    if let Some(path) = chosen {
        return Ok(LayerPath::Host(path));
    }
    let text = typed.unwrap_or_default().trim();
    if text.is_empty() {
        return Err(i18n("Type the directory that the layer should cover."));
    }
    Ok(LayerPath::Inside(text.to_owned()))
}

/// The subtitle of a layer's row.
pub fn layer_subtitle(info: &LayerInfo, now: u64) -> String {
    let changes = match info.changes {
        Some(n) => ni18n_f("{} change", "{} changes", n, &[&n.to_string()]),
        None => i18n("changes not counted"),
    };
    // What the mount means for the user: whether new changes to the
    // folder go into the layer now.
    let mounted = if info.mounted {
        i18n("new changes go into it")
    } else {
        i18n("paused: its changes are hidden")
    };
    let facts = i18n_f(
        "Made {} · {} · {} · {}",
        &[
            &age_words(info.created, now),
            &changes,
            &size_words(info.size),
            &mounted,
        ],
    );
    // The title names one directory; a layer over several (a software
    // change's) says which.
    if info.system || info.parts().len() > 1 {
        format!("{}\n{facts}", i18n_f("Covers {}", &[&info.paths_text()]))
    } else {
        facts
    }
}

pub struct Layers {
    layers: Vec<LayerInfo>,
    managed: Vec<PathBuf>,
    root: Option<PathBuf>,
    undo: Option<String>,
    busy: bool,
    problem: Option<String>,
    /// Clear the entry after a request went out.
    clear_entry: bool,
}

impl Layers {
    pub fn new(root: Option<PathBuf>) -> Self {
        Layers {
            layers: Vec::new(),
            managed: Vec::new(),
            root,
            undo: None,
            busy: false,
            problem: None,
            clear_entry: false,
        }
    }

    /// The model's reaction to a message: what to ask of the app.
    pub fn apply(&mut self, msg: LayersInput) -> Option<LayersOutput> {
        self.clear_entry = false;
        match msg {
            LayersInput::Layers(list) => {
                self.layers = list;
                None
            }
            LayersInput::Clicked(id, act) => {
                // The layer as last listed, not as it was when its row was
                // made: the row is kept while the layer lives.
                let info = self.layers.iter().find(|l| l.id == id)?.clone();
                if self.busy {
                    return None;
                }
                Some(match act {
                    RowAct::Review => LayersOutput::Review(info),
                    RowAct::Discard => LayersOutput::Discard(info),
                })
            }
            LayersInput::Managed(m) => {
                self.managed = m;
                None
            }
            LayersInput::Undo(u) => {
                self.undo = u;
                None
            }
            LayersInput::Busy(b) => {
                self.busy = b;
                None
            }
            LayersInput::NewTyped(text) => self.ask_new(new_layer_path(Some(&text), None)),
            LayersInput::Chosen(path) => self.ask_new(new_layer_path(None, Some(path))),
            LayersInput::ChooseFolder => {
                let inside = self
                    .managed
                    .first()
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from("/usr"));
                let host = match &self.root {
                    Some(root) => root.join(inside.strip_prefix("/").unwrap_or(&inside)),
                    None => inside,
                };
                Some(LayersOutput::ChooseFolder(host))
            }
            LayersInput::Tick => None,
        }
    }

    fn ask_new(&mut self, path: Result<LayerPath, String>) -> Option<LayersOutput> {
        if self.busy {
            return None;
        }
        match path {
            Ok(path) => {
                self.problem = None;
                self.clear_entry = true;
                Some(LayersOutput::New(path))
            }
            Err(problem) => {
                self.problem = Some(problem);
                None
            }
        }
    }
}

pub struct LayersWidgets {
    /// The layer rows (and the "No Layers" row), above the fixed rows.
    list: gtk::ListBox,
    /// One row per layer id, kept while the layer exists and updated in
    /// place: rows that the accessibility tree exposes are not torn down
    /// and rebuilt on every change of a count.
    rows: Vec<(String, adw::ActionRow, gtk::Box)>,
    empty: adw::ActionRow,
    entry: adw::EntryRow,
    problem: adw::ActionRow,
    undo: adw::ActionRow,
    add: gtk::Button,
}

impl SimpleComponent for Layers {
    type Init = Option<PathBuf>;
    type Input = LayersInput;
    type Output = LayersOutput;
    type Root = adw::PreferencesGroup;
    type Widgets = LayersWidgets;

    fn init_root() -> Self::Root {
        adw::PreferencesGroup::builder()
            .title(i18n("Layers"))
            .description(i18n(
                "A layer over a system directory keeps what an installation or a change writes there apart: review it, then apply it to the directory or discard it.",
            ))
            .build()
    }

    fn init(
        root_dir: Option<PathBuf>,
        group: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::None)
            .css_classes(["boxed-list"])
            .margin_bottom(12)
            .build();
        name(&list, &i18n("Layers"));
        // The empty state says what a layer is for, not just "none".
        let empty = adw::ActionRow::builder()
            .title(i18n("No Layers"))
            .subtitle(i18n(
                "Before installing or changing something in a system directory, add a layer over it: you then see what changed, and keep it or undo it.",
            ))
            .build();
        empty.add_prefix(&gtk::Image::from_icon_name("view-paged-symbolic"));
        words_whole(&empty);
        list.append(&empty);
        group.add(&list);
        // The fixed rows go in a list of their own below the layers (a
        // group puts its own rows above any other child).
        let fixed = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::None)
            .css_classes(["boxed-list"])
            .build();
        group.add(&fixed);

        // "Add Layer…" in the group's header picks the directory in a
        // folder chooser; the entry below takes a typed one.
        let add = gtk::Button::builder()
            .label(i18n("Add Layer…"))
            .valign(gtk::Align::Center)
            .build();
        name(&add, &i18n("Add a layer"));
        let s = sender.clone();
        add.connect_clicked(move |_| {
            let _ = s.output(LayersOutput::AskNew);
        });
        group.set_header_suffix(Some(&add));

        let entry = adw::EntryRow::builder()
            .title(i18n("Directory of a New Layer, Such as /usr/share"))
            .show_apply_button(true)
            .build();
        name(&entry, &i18n("Directory for a new layer"));
        let s = sender.clone();
        entry.connect_apply(move |e| s.input(LayersInput::NewTyped(e.text().to_string())));
        let choose = gtk::Button::builder()
            .icon_name("folder-open-symbolic")
            .valign(gtk::Align::Center)
            .tooltip_text(i18n("Choose a Folder…"))
            .css_classes(["flat"])
            .build();
        name(&choose, &i18n("Choose a folder for a new layer"));
        let s = sender.clone();
        choose.connect_clicked(move |_| s.input(LayersInput::ChooseFolder));
        entry.add_suffix(&choose);
        // The entry's own apply button has no name: give it one.
        if let Some(apply) = super::descendants(&entry)
            .into_iter()
            .filter_map(|w| w.downcast::<gtk::Button>().ok())
            .find(|b| b.label().is_none() && b != &choose)
        {
            name(&apply, &i18n("Make the layer"));
        }
        fixed.append(&entry);

        let problem = adw::ActionRow::builder().visible(false).build();
        problem.add_css_class("error");
        problem.add_prefix(&gtk::Image::from_icon_name("dialog-warning-symbolic"));
        fixed.append(&problem);

        let undo = adw::ActionRow::builder()
            .title(i18n("Undo the Last Applied Changes"))
            .visible(false)
            .build();
        let undo_button = gtk::Button::builder()
            .label(i18n("Undo…"))
            .valign(gtk::Align::Center)
            .build();
        name(&undo_button, &i18n("Undo the last applied changes"));
        let s = sender.clone();
        undo_button.connect_clicked(move |_| {
            let _ = s.output(LayersOutput::Undo);
        });
        undo.add_suffix(&undo_button);
        fixed.append(&undo);

        let widgets = LayersWidgets {
            list,
            rows: Vec::new(),
            empty,
            entry,
            problem,
            undo,
            add,
        };
        ComponentParts {
            model: Layers::new(root_dir),
            widgets,
        }
    }

    fn update(&mut self, msg: LayersInput, sender: ComponentSender<Self>) {
        if let Some(out) = self.apply(msg) {
            let _ = sender.output(out);
        }
    }

    fn update_view(&self, w: &mut LayersWidgets, sender: ComponentSender<Self>) {
        let alive = |id: &str| self.layers.iter().any(|l| l.id == id);
        w.rows.retain(|(id, row, _)| {
            let keep = alive(id);
            if !keep {
                w.list.remove(row);
            }
            keep
        });
        for info in &self.layers {
            if !w.rows.iter().any(|(id, ..)| *id == info.id) {
                let (row, buttons) = layer_row(info, &sender);
                w.list.append(&row);
                w.rows.push((info.id.clone(), row, buttons));
            }
        }
        let now = now();
        for (id, row, buttons) in &w.rows {
            if let Some(info) = self.layers.iter().find(|l| l.id == *id) {
                let subtitle = layer_subtitle(info, now);
                if row.subtitle().as_deref() != Some(subtitle.as_str()) {
                    row.set_subtitle(&subtitle);
                }
            }
            buttons.set_sensitive(!self.busy);
        }
        w.empty.set_visible(self.layers.is_empty());
        w.entry.set_sensitive(!self.busy);
        w.add.set_sensitive(!self.busy);
        if self.clear_entry {
            w.entry.set_text("");
        }
        w.problem.set_visible(self.problem.is_some());
        if let Some(p) = &self.problem {
            w.problem.set_title(p);
        }
        w.undo.set_visible(self.undo.is_some());
        w.undo.set_sensitive(!self.busy);
        if let Some(u) = &self.undo {
            w.undo.set_subtitle(u);
        }
    }
}

/// The row's title and subtitle wrap between words, never inside one
/// ("chang-es"): at 360 px the subtitle takes two lines instead.
fn words_whole(row: &adw::ActionRow) {
    for label in super::descendants(row)
        .into_iter()
        .filter_map(|w| w.downcast::<gtk::Label>().ok())
    {
        label.set_wrap_mode(gtk::pango::WrapMode::Word);
    }
}

/// A layer's title: "Software Change" for a system layer, else the
/// directories it covers.
pub fn layer_title(info: &LayerInfo) -> String {
    if info.system {
        i18n("Software Change")
    } else {
        info.paths_text()
    }
}

fn layer_row(info: &LayerInfo, sender: &ComponentSender<Layers>) -> (adw::ActionRow, gtk::Box) {
    let path = info.paths_text();
    let row = adw::ActionRow::builder().title(layer_title(info)).build();
    row.add_prefix(&gtk::Image::from_icon_name("view-paged-symbolic"));
    let buttons = gtk::Box::builder()
        .spacing(6)
        .valign(gtk::Align::Center)
        .build();
    let id = info.id.clone();
    let make = |label: String, accessible: String, act: RowAct, trash: bool| {
        let button = if trash {
            let b = gtk::Button::from_icon_name("user-trash-symbolic");
            b.add_css_class("flat");
            b.set_tooltip_text(Some(&label));
            b
        } else {
            gtk::Button::with_label(&label)
        };
        name(&button, &accessible);
        let s = sender.clone();
        let id = id.clone();
        button.connect_clicked(move |_| s.input(LayersInput::Clicked(id.clone(), act)));
        buttons.append(&button);
    };
    // One way to the review (applying goes through it: there is no
    // blind commit): the button, or the row itself.
    make(
        i18n("Review…"),
        i18n_f("Review the layer over {}", &[&path]),
        RowAct::Review,
        false,
    );
    make(
        i18n("Discard…"),
        i18n_f("Discard the layer over {}", &[&path]),
        RowAct::Discard,
        true,
    );
    row.add_suffix(&buttons);
    row.set_activatable(true);
    let s = sender.clone();
    row.connect_activated(move |_| s.input(LayersInput::Clicked(id.clone(), RowAct::Review)));
    words_whole(&row);
    (row, buttons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed() -> Vec<PathBuf> {
        vec![PathBuf::from("/usr"), PathBuf::from("/opt")]
    }

    // A typed path goes as a path inside the root, a chosen folder as a
    // host path (almost checks and maps both); an empty entry is refused
    // here.
    #[test]
    fn a_new_layer_is_asked_of_almost_as_typed_or_chosen() {
        assert_eq!(
            new_layer_path(Some(" /usr/share "), None),
            Ok(LayerPath::Inside("/usr/share".into()))
        );
        assert_eq!(
            new_layer_path(None, Some("/tmp/r/usr/lib".into())),
            Ok(LayerPath::Host("/tmp/r/usr/lib".into()))
        );
        assert!(new_layer_path(Some("  "), None).is_err());
    }

    fn info(changes: Option<u64>, mounted: bool) -> LayerInfo {
        LayerInfo {
            id: "ab".into(),
            path: "/usr/share".into(),
            paths: vec!["/usr/share".into()],
            system: false,
            created: 0,
            temporary: false,
            mounted,
            changes,
            size: 2048,
            pending: None,
        }
    }

    // A software change (a system layer) is titled as such and says the
    // directories it covers; so does any layer over several.
    #[test]
    fn a_layer_over_several_directories_names_them() {
        let mut system = info(Some(2), true);
        system.paths = vec!["/usr".into(), "/etc".into(), "/var/lib/dpkg".into()];
        system.path = "/usr".into();
        system.system = true;
        assert_eq!(layer_title(&system), "Software Change");
        assert!(
            layer_subtitle(&system, 0).starts_with("Covers /usr, /etc, /var/lib/dpkg\nMade "),
            "{}",
            layer_subtitle(&system, 0)
        );
        let one = info(Some(2), true);
        assert_eq!(layer_title(&one), "/usr/share");
        assert!(layer_subtitle(&one, 0).starts_with("Made "));
    }

    #[test]
    fn a_row_says_age_changes_size_and_mount() {
        assert_eq!(
            layer_subtitle(&info(Some(3), true), 300),
            "Made 5 minutes ago · 3 changes · 2.0\u{a0}KiB · new changes go into it"
        );
        assert_eq!(
            layer_subtitle(&info(None, false), 10),
            "Made just now · changes not counted · 2.0\u{a0}KiB · paused: its changes are hidden"
        );
    }

    #[test]
    fn the_model_asks_almost_for_what_is_typed() {
        let mut l = Layers::new(None);
        l.apply(LayersInput::Managed(managed()));
        assert_eq!(l.apply(LayersInput::NewTyped(" ".into())), None);
        assert!(l.problem.is_some());
        assert_eq!(
            l.apply(LayersInput::NewTyped("/usr/share".into())),
            Some(LayersOutput::New(LayerPath::Inside("/usr/share".into())))
        );
        assert!(l.problem.is_none() && l.clear_entry);
        l.apply(LayersInput::Busy(true));
        assert_eq!(l.apply(LayersInput::NewTyped("/usr/share".into())), None);
        l.apply(LayersInput::Busy(false));
        assert!(
            l.apply(LayersInput::Layers(vec![info(Some(1), true)]))
                .is_none()
        );
        // A row's buttons act on the layer as last listed.
        l.apply(LayersInput::Layers(vec![info(Some(4), true)]));
        assert_eq!(
            l.apply(LayersInput::Clicked("ab".into(), RowAct::Review)),
            Some(LayersOutput::Review(info(Some(4), true)))
        );
        assert_eq!(
            l.apply(LayersInput::Clicked("ab".into(), RowAct::Discard)),
            Some(LayersOutput::Discard(info(Some(4), true)))
        );
        assert_eq!(
            l.apply(LayersInput::Clicked("gone".into(), RowAct::Review)),
            None
        );
        let mut sandboxed = Layers::new(Some("/r".into()));
        sandboxed.apply(LayersInput::Managed(managed()));
        assert_eq!(
            sandboxed.apply(LayersInput::ChooseFolder),
            Some(LayersOutput::ChooseFolder("/r/usr".into()))
        );
    }
}
