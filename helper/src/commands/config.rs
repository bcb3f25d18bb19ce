// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost config show|get|set`: the configuration, read or written
//! (validated, atomically, comments kept).

use almost_core::config::{self, Change};
use almost_core::{Error, Result};
use almost_helper::cli::ConfigAction;
use almost_protocol::CommandResult;

use super::Ctx;
use crate::wire;

pub fn run(ctx: Ctx, action: &ConfigAction) -> Result<i32> {
    let Ctx { sys, out, .. } = ctx;
    match action {
        ConfigAction::Show => out.answer(wire::config(&sys.config), CommandResult::Config, |_| {
            config::render(&sys.config)
        }),
        ConfigAction::Get { key } => {
            let values = config::get(&sys.config, key).ok_or_else(|| Error::Config {
                file: config::CONFIG_FILE.into(),
                line: 0,
                column: 0,
                message: format!("unknown key {key:?} (known: {})", config::KEYS.join(", ")),
            })?;
            // The lists' paths as the protocol writes paths (the text
            // shows them as the file has them).
            let encoded = |paths: &[std::path::PathBuf]| {
                paths
                    .iter()
                    .map(|p| almost_protocol::path::encode(p))
                    .collect()
            };
            let value = almost_protocol::ConfigValue {
                key: key.clone(),
                value: match key.as_str() {
                    "paths" => encoded(&sys.config.paths),
                    "exclude" => encoded(&sys.config.exclude),
                    _ => values.clone(),
                },
            };
            out.answer(value, CommandResult::ConfigGet, |_| {
                values.iter().map(|v| format!("{v}\n")).collect()
            });
        }
        ConfigAction::Set { words } => {
            let config = config::edit(&sys.root, &set_changes(words)?)?;
            out.answer(wire::config(&config), CommandResult::Config, |_| {
                config::render(&config)
            });
        }
        ConfigAction::Unset { keys } => {
            let changes: Vec<_> = keys.iter().cloned().map(Change::Unset).collect();
            let config = config::edit(&sys.root, &changes)?;
            out.answer(wire::config(&config), CommandResult::Config, |_| {
                config::render(&config)
            });
        }
    }
    Ok(0)
}

/// The changes `config set WORDS…` asks for: `KEY VALUE…` (one key, the
/// original form) or `KEY=VALUE…` (several keys; a list key repeated takes
/// each value in turn; `KEY=` alone is the empty list).
fn set_changes(words: &[String]) -> Result<Vec<Change>> {
    let is_pair = |w: &str| {
        w.split_once('=')
            .is_some_and(|(k, _)| config::KEYS.contains(&k))
    };
    let Some(first) = words.first() else {
        return Err(Error::Usage("config set: nothing to set".to_owned()));
    };
    if !is_pair(first) {
        let [key, values @ ..] = words else {
            return Err(Error::Usage("config set: nothing to set".to_owned()));
        };
        if values.is_empty() {
            return Err(Error::Usage(format!(
                "config set {key}: no value (for an empty list: config set {key}=)"
            )));
        }
        return Ok(vec![Change::Set(key.clone(), values.to_vec())]);
    }
    let mut changes: Vec<Change> = Vec::new();
    for word in words {
        let Some((key, value)) = word.split_once('=').filter(|_| is_pair(word)) else {
            return Err(Error::Usage(format!(
                "config set: {word:?} is not KEY=VALUE (known keys: {})",
                config::KEYS.join(", ")
            )));
        };
        let existing = changes.iter_mut().find_map(|c| match c {
            Change::Set(k, values) if k == key => Some(values),
            _ => None,
        });
        match existing {
            // `exclude=` alone is the empty list; with other values it says
            // nothing.
            Some(values) if !value.is_empty() => values.push(value.to_owned()),
            Some(_) => {}
            None => changes.push(Change::Set(
                key.to_owned(),
                if value.is_empty() {
                    Vec::new()
                } else {
                    vec![value.to_owned()]
                },
            )),
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn set_words_in_both_forms() {
        let set = |k: &str, v: &[&str]| Change::Set(k.to_owned(), words(v));
        assert_eq!(
            set_changes(&words(&["paths", "/usr", "/opt"])).unwrap(),
            [set("paths", &["/usr", "/opt"])]
        );
        // A value holding '=' in the original form stays a value.
        assert_eq!(
            set_changes(&words(&["exclude", "/usr/a=b"])).unwrap(),
            [set("exclude", &["/usr/a=b"])]
        );
        assert_eq!(
            set_changes(&words(&[
                "paths=/usr",
                "exclude=",
                "paths=/opt",
                "default_mode=keep"
            ]))
            .unwrap(),
            [
                set("paths", &["/usr", "/opt"]),
                set("exclude", &[]),
                set("default_mode", &["keep"])
            ]
        );
        assert!(set_changes(&words(&["paths=/usr", "/opt"])).is_err());
        assert!(set_changes(&words(&["exclude"])).is_err());
    }
}
