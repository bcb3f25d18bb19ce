// SPDX-License-Identifier: GPL-3.0-or-later
//! What needs a restart after an act that replaced or deleted system files
//! (a commit, an undo): the programs still running the old files, in plain
//! words ("2 programs still use replaced files: the cups.service service,
//! “firefox” (process 12)"), in a dialog that stays until closed (a toast
//! would go before it is read), the files and the restart commands under
//! Technical Details.

use adw::prelude::*;
use almost_protocol::NeedsRestart;

use crate::i18n::{i18n, i18n_f, ni18n, ni18n_f};

/// The programs in words: one name per service (a service's processes are
/// restarted together), else per command with its process or process
/// count, in the order almost gave them.
pub fn names(list: &[NeedsRestart]) -> Vec<String> {
    let mut units: Vec<(&str, Option<u32>)> = Vec::new();
    let mut commands: Vec<(&str, Vec<i32>)> = Vec::new();
    for p in list {
        match p.unit.as_deref() {
            Some(unit) => {
                if !units.contains(&(unit, p.user)) {
                    units.push((unit, p.user));
                }
            }
            None => match commands.iter_mut().find(|(c, _)| *c == p.command) {
                Some((_, pids)) => pids.push(p.pid),
                None => commands.push((&p.command, vec![p.pid])),
            },
        }
    }
    let units = units.into_iter().map(|(unit, user)| match user {
        Some(uid) => i18n_f("the {} service of user {}", &[unit, &uid.to_string()]),
        None => i18n_f("the {} service", &[unit]),
    });
    let commands = commands.into_iter().map(|(command, pids)| match pids[..] {
        [pid] => i18n_f("“{}” (process {})", &[command, &pid.to_string()]),
        _ => ni18n_f(
            "“{}” ({} process)",
            "“{}” ({} processes)",
            pids.len() as u64,
            &[command, &pids.len().to_string()],
        ),
    });
    units.chain(commands).collect()
}

/// The heading and body of the dialog; `None` when nothing needs a
/// restart.
pub fn words(list: &[NeedsRestart]) -> Option<(String, String)> {
    if list.is_empty() {
        return None;
    }
    let names = names(list);
    let n = names.len() as u64;
    Some((
        ni18n("A Program Needs a Restart", "Programs Need a Restart", n),
        ni18n_f(
            "{} program still uses files that were replaced or deleted: {}. It runs the old version until it is restarted: restart it, or log out and back in (restart the computer for a system service you cannot restart).",
            "{} programs still use files that were replaced or deleted: {}. They run the old version until they are restarted: restart them, or log out and back in (restart the computer for system services you cannot restart).",
            n,
            &[&n.to_string(), &names.join(", ")],
        ),
    ))
}

/// The details: each process, its files, and the command that restarts
/// its service.
pub fn details(list: &[NeedsRestart]) -> String {
    list.iter()
        .map(|p| {
            let files = p
                .files
                .iter()
                .map(|f| almost_protocol::path::encode(f))
                .collect::<Vec<_>>()
                .join(" ");
            let mut line = format!("{} {}: {files}", p.pid, p.command);
            if let Some(cmd) = p.restart_command() {
                line.push_str(&format!(" ({cmd})"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Presents the dialog over `parent` when something needs a restart.
pub fn present(parent: &impl IsA<gtk::Window>, list: &[NeedsRestart]) {
    let Some((heading, body)) = words(list) else {
        return;
    };
    let dialog = adw::MessageDialog::new(Some(parent), Some(&heading), Some(&body));
    dialog.add_responses(&[("close", &i18n("_Close"))]);
    dialog.set_close_response("close");
    dialog.set_default_response(Some("close"));
    dialog.set_body_use_markup(false);
    dialog.set_extra_child(Some(&super::error::details_expander(&details(list))));
    crate::components::name(&dialog, &heading);
    crate::components::name_buttons(&dialog);
    dialog.present();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, command: &str, unit: Option<&str>, user: Option<u32>) -> NeedsRestart {
        NeedsRestart {
            pid,
            command: command.into(),
            unit: unit.map(Into::into),
            user,
            files: vec!["/usr/lib/libx.so".into()],
        }
    }

    // A service is named once whatever its processes; a command without
    // one by its process, or its count when it runs several times.
    #[test]
    fn programs_are_named_in_plain_words() {
        let list = [
            p(10, "cupsd", Some("cups.service"), None),
            p(11, "cups-browsed", Some("cups.service"), None),
            p(12, "firefox", None, None),
            p(13, "sleep", None, None),
            p(14, "sleep", None, None),
            p(15, "pipewire", Some("pipewire.service"), Some(1000)),
        ];
        assert_eq!(
            names(&list),
            [
                "the cups.service service",
                "the pipewire.service service of user 1000",
                "“firefox” (process 12)",
                "“sleep” (2 processes)",
            ]
        );
        let (heading, body) = words(&list).unwrap();
        assert_eq!(heading, "Programs Need a Restart");
        assert!(body.starts_with(
            "4 programs still use files that were replaced or deleted: the cups.service service, "
        ));
        assert_eq!(words(&[]), None);
        let (heading, body) = words(&list[2..3]).unwrap();
        assert_eq!(heading, "A Program Needs a Restart");
        assert!(body.starts_with("1 program still uses files that were replaced or deleted: “firefox” (process 12). It runs"));
        assert_eq!(
            details(&list[..1]),
            "10 cupsd: /usr/lib/libx.so (systemctl restart cups.service)"
        );
    }
}
