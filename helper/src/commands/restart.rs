// SPDX-License-Identifier: GPL-3.0-or-later
//! What the acts that change system files (`layer commit`, `layer undo`,
//! `run`) say at their end: the running processes that still use files the
//! act replaced or deleted ([`almost_core::restart`]), as the result's
//! `restart` field with `--json` and as a few lines of text otherwise.

use std::path::PathBuf;
use std::time::Instant;

use almost_core::restart;
use almost_core::system::System;
use almost_protocol::{Answer, CommandResult, Event, NeedsRestart};

use crate::output::{Output, shown};

/// How many files of one process the text names (the JSON has them all).
const FILES_SHOWN: usize = 4;

/// The processes to restart after an act on `trees` (inside the root);
/// `None`, with a warning, when `/proc` cannot be read (the act itself is
/// done: this is only a hint).
pub fn look(sys: &System, out: &Output, trees: &[PathBuf]) -> Option<Vec<NeedsRestart>> {
    let started = Instant::now();
    match restart::scan(&sys.root, trees, restart::TIME_LIMIT) {
        Ok(found) => {
            tracing::debug!(
                "processes to restart: {} found in {:?}",
                found.len(),
                started.elapsed()
            );
            Some(found)
        }
        Err(e) => {
            out.warning(&format!("cannot tell which programs to restart: {e}"));
            None
        }
    }
}

/// An act's answer with the processes to restart after it: what
/// [`Output::answer`] prints, plus the result's `restart` field or their
/// text after the result's. Made where the act answers
/// (`let out = &Answering::new(sys, out, trees);`), so the answer itself
/// reads as every other command's.
pub struct Answering<'a> {
    sys: &'a System,
    out: &'a Output,
    trees: &'a [PathBuf],
}

impl<'a> Answering<'a> {
    /// After an act on `trees` (inside the root).
    pub fn new(sys: &'a System, out: &'a Output, trees: &'a [PathBuf]) -> Self {
        Answering { sys, out, trees }
    }

    pub fn answer<T>(
        &self,
        result: T,
        command: fn(T) -> CommandResult,
        text_of: impl FnOnce(&T) -> String,
    ) {
        let found = look(self.sys, self.out, self.trees);
        if self.out.json {
            self.out.event(&with_restart(command(result), found));
        } else {
            print!(
                "{}{}",
                text_of(&result),
                text(found.as_deref().unwrap_or(&[]))
            );
        }
    }
}

/// The result line with its `restart` field.
pub fn with_restart(result: CommandResult, found: Option<Vec<NeedsRestart>>) -> Event {
    let mut answer = Answer::from(result);
    answer.restart = found;
    Event::Result(Box::new(answer))
}

/// The processes to restart, for a terminal (nothing when there are none).
pub fn text(found: &[NeedsRestart]) -> String {
    if found.is_empty() {
        return String::new();
    }
    let mut text = format!(
        "{} still use{} files this replaced or deleted, and run the old code until \
         restarted:\n",
        if found.len() == 1 {
            "1 program".to_owned()
        } else {
            format!("{} programs", found.len())
        },
        if found.len() == 1 { "s" } else { "" }
    );
    for p in found {
        let mut files: Vec<String> = p.files.iter().take(FILES_SHOWN).map(|f| shown(f)).collect();
        if p.files.len() > FILES_SHOWN {
            files.push(format!("and {} more", p.files.len() - FILES_SHOWN));
        }
        let unit = match (&p.unit, p.restart_command()) {
            (Some(unit), Some(how)) => format!(" [{unit}: {how}]"),
            _ => String::new(),
        };
        text.push_str(&format!(
            "  {} {}{unit}: {}\n",
            p.pid,
            p.command,
            files.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    // The text names each process with its unit and how to restart it,
    // and caps the files it lists; nothing at all when none is found.
    #[test]
    fn the_text_names_processes_units_and_a_few_files() {
        assert_eq!(text(&[]), "");
        let many = NeedsRestart {
            pid: 12,
            command: "cron".into(),
            unit: Some("cron.service".into()),
            user: None,
            files: (0..6)
                .map(|i| PathBuf::from(format!("/usr/lib/l{i}.so")))
                .collect(),
        };
        let one = NeedsRestart {
            pid: 40,
            command: "sleep".into(),
            unit: None,
            user: None,
            files: vec!["/usr/bin/sleep".into()],
        };
        let t = text(&[many, one]);
        assert!(t.starts_with("2 programs still use files"), "{t}");
        assert!(
            t.contains(
                "  12 cron [cron.service: systemctl restart cron.service]: /usr/lib/l0.so, \
                 /usr/lib/l1.so, /usr/lib/l2.so, /usr/lib/l3.so, and 2 more\n"
            ),
            "{t}"
        );
        assert!(t.contains("  40 sleep: /usr/bin/sleep\n"), "{t}");
    }
}
