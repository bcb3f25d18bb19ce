// SPDX-License-Identifier: GPL-3.0-or-later
//! Translation hygiene: every source file that calls the gettext wrappers
//! is listed in po/POTFILES.in, every string they mark is in po/almost.pot
//! (so the template is not stale and xgettext read it), and each language
//! of po/LINGUAS (fr, de, es) translates every message of the template.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const WRAPPERS: [&str; 4] = ["i18n(", "i18n_f(", "ni18n(", "ni18n_f("];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Reads a C/Rust string literal starting just after its opening quote.
fn literal(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => {
                out.push('\\');
                out.push(chars.next()?);
            }
            c => out.push(c),
        }
    }
    None
}

/// The string literals passed as first (and, for plurals, second)
/// argument of a wrapper, outside `#[cfg(test)]` code.
fn marked_strings(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut found = Vec::new();
    for wrapper in WRAPPERS {
        let mut rest = code;
        while let Some(at) = rest.find(wrapper) {
            let before = rest[..at].chars().last();
            rest = &rest[at + wrapper.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // ni18n( contains i18n(
            }
            let args = rest.trim_start();
            let Some(args) = args.strip_prefix('"') else {
                continue; // a definition or a call with a variable
            };
            let Some(first) = literal(args) else { continue };
            found.push(first.clone());
            if wrapper.starts_with("ni18n") {
                let after = args[first.len() + 1..].trim_start();
                if let Some(second) = after
                    .strip_prefix(',')
                    .map(str::trim_start)
                    .and_then(|a| a.strip_prefix('"'))
                    .and_then(literal)
                {
                    found.push(second);
                }
            }
        }
    }
    found
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn potfiles() -> BTreeSet<String> {
    fs::read_to_string(root().join("po/POTFILES.in"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// One entry of a .po/.pot file: msgid, msgid_plural (empty if none),
/// msgstr (all plural forms), fuzzy.
type Entry = (String, String, Vec<String>, bool);

/// The entries of a .po/.pot file, and the plural msgids.
fn po_file(path: &Path) -> (Vec<Entry>, Vec<String>) {
    let text = fs::read_to_string(path).unwrap();
    let mut entries = Vec::new();
    let mut plurals = Vec::new();
    for block in text.split("\n\n") {
        let fuzzy = block
            .lines()
            .any(|l| l.starts_with("#,") && l.contains("fuzzy"));
        let mut id = String::new();
        let mut plural = String::new();
        let mut strs: Vec<String> = Vec::new();
        let mut current: Option<&mut String> = None;
        for line in block.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("msgid ") {
                id = literal(&v[1..]).unwrap_or_default();
                current = Some(&mut id);
            } else if let Some(v) = line.strip_prefix("msgid_plural ") {
                plural = literal(&v[1..]).unwrap_or_default();
                current = Some(&mut plural);
            } else if line.starts_with("msgstr") {
                let v = &line[line.find('"').unwrap() + 1..];
                strs.push(literal(v).unwrap_or_default());
                current = None;
            } else if let Some(v) = line.strip_prefix('"') {
                let part = literal(v).unwrap_or_default();
                match current.as_deref_mut() {
                    Some(s) => s.push_str(&part),
                    None => {
                        if let Some(last) = strs.last_mut() {
                            last.push_str(&part);
                        }
                    }
                }
            }
        }
        if !plural.is_empty() {
            plurals.push(plural.clone());
        }
        if !strs.is_empty() {
            entries.push((id, plural, strs, fuzzy));
        }
    }
    (entries, plurals)
}

fn po_entries(path: &Path) -> Vec<Entry> {
    po_file(path).0
}

#[test]
fn potfiles_lists_every_file_that_calls_gettext() {
    let listed = potfiles();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut missing = Vec::new();
    for file in files {
        let source = fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !marked_strings(&source).is_empty() && !listed.contains(&rel) {
            missing.push(rel);
        }
    }
    assert!(missing.is_empty(), "po/POTFILES.in misses {missing:?}");
    for file in &listed {
        assert!(
            root().join(file).is_file(),
            "po/POTFILES.in lists a missing file {file}"
        );
    }
}

#[test]
fn the_template_holds_every_marked_string() {
    let (entries, plurals) = po_file(&root().join("po/almost.pot"));
    let pot: BTreeSet<String> = entries
        .into_iter()
        .map(|(id, _, _, _)| id)
        .chain(plurals)
        .collect();
    let mut missing = Vec::new();
    for file in potfiles() {
        let source = fs::read_to_string(root().join(&file)).unwrap();
        for s in marked_strings(&source) {
            if !pot.contains(&s) {
                missing.push(format!("{file}: {s:?}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "po/almost.pot is stale (regenerate it, see po/README.md): {missing:#?}"
    );
}

/// Checks that po/LANG.po translates every message of the template: its
/// header declares UTF-8 and the language's `plural_forms`, no entry is
/// missing, empty or fuzzy (a plural entry has all nplurals forms), and every
/// translation keeps the `{}` placeholders of its msgid (the plural forms
/// after the first, those of msgid_plural).
fn assert_complete(lang: &str, plural_forms: &str) {
    let pot: BTreeSet<String> = po_entries(&root().join("po/almost.pot"))
        .into_iter()
        .map(|(id, _, _, _)| id)
        .filter(|id| !id.is_empty())
        .collect();
    let po = po_entries(&root().join(format!("po/{lang}.po")));
    let header = &po.iter().find(|(id, _, _, _)| id.is_empty()).unwrap().2[0];
    assert!(
        header.contains(&format!("Plural-Forms: {plural_forms}")),
        "{lang}.po: {header}"
    );
    assert!(header.contains("charset=UTF-8"), "{lang}.po: {header}");
    let nplurals: usize = plural_forms
        .strip_prefix("nplurals=")
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let mut untranslated = Vec::new();
    for id in &pot {
        match po.iter().find(|(i, _, _, _)| i == id) {
            Some((_, plural, strs, false)) if strs.iter().all(|s| !s.is_empty()) => {
                if !plural.is_empty() {
                    assert_eq!(strs.len(), nplurals, "plural forms of {id:?} in {lang}.po");
                }
                for (form, s) in strs.iter().enumerate() {
                    let source = if form == 0 || plural.is_empty() {
                        id
                    } else {
                        plural
                    };
                    assert_eq!(
                        s.matches("{}").count(),
                        source.matches("{}").count(),
                        "placeholders of {source:?} in {lang}.po: {s:?}"
                    );
                }
            }
            _ => untranslated.push(id.clone()),
        }
    }
    assert!(
        untranslated.is_empty(),
        "{lang}.po misses {untranslated:#?}"
    );
}

#[test]
fn french_is_complete() {
    assert_complete("fr", "nplurals=2; plural=(n > 1);");
}

#[test]
fn german_is_complete() {
    assert_complete("de", "nplurals=2; plural=(n != 1);");
}

#[test]
fn spanish_is_complete() {
    assert_complete("es", "nplurals=2; plural=(n != 1);");
}

/// Every language of po/LINGUAS has a test above (a language added to
/// LINGUAS without one would not be checked for completeness).
#[test]
fn every_language_is_checked() {
    let linguas = fs::read_to_string(root().join("po/LINGUAS")).unwrap();
    let langs: Vec<&str> = linguas
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(langs, ["de", "es", "fr"]);
}

#[test]
fn the_scanner_finds_marked_strings() {
    let found = marked_strings(
        "let a = i18n(\"One\"); ni18n_f(\"{} file\", \"{} files\", n, &[]); x_i18n(\"no\"); i18n(var);",
    );
    assert_eq!(found, ["One", "{} file", "{} files"]);
}
