// SPDX-License-Identifier: GPL-3.0-or-later
//! The watch of the files `almost overview` names: a change there is read
//! at once.

use std::path::PathBuf;

use gtk::gio;
use gtk::prelude::*;
use relm4::ComponentSender;

use super::{App, AppInput};
use crate::client::Almost;

/// Watches the files `almost overview` names (`watch`): every privileged
/// act of `almost` (a lock from a terminal, a timer's re-lock, a layer made
/// or committed elsewhere) rewrites one when it ends, after its last
/// change, and the config can also be edited by hand; neither is written by
/// the window's own reads. A change there is read at once, so the window
/// need not walk the trees every two seconds to notice a lock from a
/// terminal. `None` in a flatpak (the host's files are not visible) or when
/// one of them cannot be watched: then the timer alone polls, as often as
/// before. A directory that does not exist yet is watched for its creation.
pub fn watch_state(
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
