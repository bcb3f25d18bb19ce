// SPDX-License-Identifier: GPL-3.0-or-later
//! `/etc/almost/almost.toml`: load (strict, with line and column in every
//! error), the defaults, the import of the original almost's
//! `/etc/almost.ini`, and edits that keep the file's comments and are
//! written atomically.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};
use crate::paths::{self, Root};

pub const CONFIG_FILE: &str = "/etc/almost/almost.toml";
pub const LEGACY_FILE: &str = "/etc/almost.ini";
pub const KEYS: &[&str] = &["default_mode", "paths", "exclude", "keep_commits"];
/// `keep_commits` when the file does not say: the undo data of the last 10
/// commits is kept.
pub const DEFAULT_KEEP_COMMITS: u32 = 10;
/// The most `keep_commits` may be: each kept commit holds the originals it
/// replaced, and the history is read whole by `layer history` and `undo`.
pub const MAX_KEEP_COMMITS: u32 = 1000;

/// The mode applied at boot (and by `almost enter default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultMode {
    #[default]
    Locked,
    Unlocked,
    Keep,
}

impl DefaultMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultMode::Locked => "locked",
            DefaultMode::Unlocked => "unlocked",
            DefaultMode::Keep => "keep",
        }
    }

    /// Parses a command-line value; `ro`/`rw` are the original almost's words.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "locked" | "ro" => Some(DefaultMode::Locked),
            "unlocked" | "rw" => Some(DefaultMode::Unlocked),
            "keep" => Some(DefaultMode::Keep),
            _ => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_mode: Option<DefaultMode>,
    paths: Option<Vec<Spanned<String>>>,
    exclude: Option<Vec<Spanned<String>>>,
    keep_commits: Option<Spanned<i64>>,
}

/// The effective configuration, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub default_mode: DefaultMode,
    pub paths: Vec<PathBuf>,
    pub exclude: Vec<PathBuf>,
    /// How many commits keep their undo data (0: none is kept, a commit
    /// cannot be undone).
    pub keep_commits: u32,
}

/// Checks a `keep_commits` value: a whole number from 0 to
/// [`MAX_KEEP_COMMITS`].
pub fn check_keep_commits(value: i64) -> std::result::Result<u32, String> {
    u32::try_from(value)
        .ok()
        .filter(|&n| n <= MAX_KEEP_COMMITS)
        .ok_or_else(|| {
            format!(
                "keep_commits {value}: expected a whole number from 0 (keep no undo data) to \
                 {MAX_KEEP_COMMITS}"
            )
        })
}

/// Something worth telling the user about how the config was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    ImportedLegacy { file: PathBuf, mode: DefaultMode },
    LegacyUnreadable { file: PathBuf, reason: String },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::ImportedLegacy { file, mode } => write!(
                f,
                "imported default_mode = \"{}\" from {} (no {} yet; `almost config set` writes one)",
                mode.as_str(),
                file.display(),
                CONFIG_FILE
            ),
            Notice::LegacyUnreadable { file, reason } => {
                write!(f, "ignored {}: {reason}", file.display())
            }
        }
    }
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn config_error(file: &Path, text: &str, offset: usize, message: impl Into<String>) -> Error {
    let (line, column) = line_col(text, offset);
    Error::Config {
        file: file.to_owned(),
        line,
        column,
        message: message.into(),
    }
}

/// The default managed paths: those of `DEFAULT_PATHS` that are real
/// directories under the root (a usr-merged /bin is a symlink and skipped).
pub fn default_paths(root: &Root) -> Vec<PathBuf> {
    paths::DEFAULT_PATHS
        .iter()
        .map(PathBuf::from)
        .filter(|p| {
            fs::symlink_metadata(root.host(p))
                .map(|m| m.file_type().is_dir())
                .unwrap_or(false)
        })
        .collect()
}

/// Paths excluded when the config does not set `exclude`: `/usr/local`
/// belongs to the administrator (the FHS leaves it to local installs, and on
/// ostree systems it is a writable link into `/var`), so it is never locked
/// unless the config names an `exclude` list without it.
pub const DEFAULT_EXCLUDE: &[&str] = &["/usr/local"];

/// The default excludes: those of `DEFAULT_EXCLUDE` inside a managed path.
pub fn default_exclude(managed: &[PathBuf]) -> Vec<PathBuf> {
    DEFAULT_EXCLUDE
        .iter()
        .map(PathBuf::from)
        .filter(|p| managed.iter().any(|m| p.starts_with(m) && p != m))
        .collect()
}

/// Two of `paths` (indices) of which one lies inside the other (or both are
/// the same), the later in the file first; `None` if none nest. Sorted by
/// components, a path is followed by everything inside it, so only
/// neighbours need comparing: O(n log n), not a comparison of every pair
/// (20,000 paths took 30 s).
fn nesting_pair(paths: &[(PathBuf, usize)]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by(|&a, &b| paths[a].0.cmp(&paths[b].0).then(a.cmp(&b)));
    order
        .windows(2)
        .filter(|w| paths[w[1]].0.starts_with(&paths[w[0]].0))
        // Of every nesting pair found, the one whose later path comes
        // first in the file: the error points at the earliest culprit.
        .map(|w| (w[0].max(w[1]), w[0].min(w[1])))
        .min()
}

/// Parses and validates the text of a config file.
pub fn parse(root: &Root, file: &Path, text: &str) -> Result<Config> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        config_error(file, text, offset, e.message().trim().to_owned())
    })?;
    let check = |items: &[Spanned<String>]| -> Result<Vec<(PathBuf, usize)>> {
        items
            .iter()
            .map(|item| {
                paths::check_manageable(item.get_ref())
                    .map(|p| (p, item.span().start))
                    .map_err(|e| config_error(file, text, item.span().start, e.to_string()))
            })
            .collect()
    };
    let managed = match &raw.paths {
        Some(items) => {
            let managed = check(items)?;
            if let Some((a, b)) = nesting_pair(&managed) {
                return Err(config_error(
                    file,
                    text,
                    managed[a].1,
                    format!(
                        "{} overlaps {} (managed paths may not nest)",
                        managed[a].0.display(),
                        managed[b].0.display()
                    ),
                ));
            }
            managed.into_iter().map(|(p, _)| p).collect()
        }
        None => default_paths(root),
    };
    let exclude = match &raw.exclude {
        Some(items) => {
            let exclude = check(items)?;
            let managed_set: BTreeSet<&Path> = managed.iter().map(PathBuf::as_path).collect();
            for (path, offset) in &exclude {
                // A proper ancestor managed: one lookup per level.
                if !path.ancestors().skip(1).any(|a| managed_set.contains(a)) {
                    return Err(config_error(
                        file,
                        text,
                        *offset,
                        format!("{} is not inside a managed path", path.display()),
                    ));
                }
            }
            exclude.into_iter().map(|(p, _)| p).collect()
        }
        None => default_exclude(&managed),
    };
    let keep_commits = match &raw.keep_commits {
        Some(n) => check_keep_commits(*n.get_ref())
            .map_err(|e| config_error(file, text, n.span().start, e))?,
        None => DEFAULT_KEEP_COMMITS,
    };
    Ok(Config {
        default_mode: raw.default_mode.unwrap_or_default(),
        paths: managed,
        exclude,
        keep_commits,
    })
}

/// Reads the original almost's `DefaultMode` (0 = read-only, 1 = read-write).
fn read_legacy(text: &str) -> std::result::Result<DefaultMode, String> {
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim().to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let key = key.strip_prefix("Almost::").unwrap_or(key);
        if (section.eq_ignore_ascii_case("almost") || section.is_empty())
            && key.eq_ignore_ascii_case("DefaultMode")
        {
            return match value.trim().trim_matches('"') {
                "0" | "ro" => Ok(DefaultMode::Locked),
                "1" | "rw" => Ok(DefaultMode::Unlocked),
                other => Err(format!(
                    "DefaultMode {other:?} is neither 0 (ro) nor 1 (rw)"
                )),
            };
        }
    }
    Err("no DefaultMode in [Almost]".to_owned())
}

/// Loads the configuration of `root`, with the notices to show.
pub fn load(root: &Root) -> Result<(Config, Vec<Notice>)> {
    let file = root.host(Path::new(CONFIG_FILE));
    match fs::read_to_string(&file) {
        Ok(text) => return Ok((parse(root, Path::new(CONFIG_FILE), &text)?, Vec::new())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::ConfigRead { file, source: e }),
    }
    let paths = default_paths(root);
    let mut config = Config {
        default_mode: DefaultMode::default(),
        exclude: default_exclude(&paths),
        paths,
        keep_commits: DEFAULT_KEEP_COMMITS,
    };
    let mut notices = Vec::new();
    let legacy = root.host(Path::new(LEGACY_FILE));
    match fs::read_to_string(&legacy) {
        Ok(text) => match read_legacy(&text) {
            Ok(mode) => {
                config.default_mode = mode;
                notices.push(Notice::ImportedLegacy {
                    file: PathBuf::from(LEGACY_FILE),
                    mode,
                });
            }
            Err(reason) => notices.push(Notice::LegacyUnreadable {
                file: PathBuf::from(LEGACY_FILE),
                reason,
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => notices.push(Notice::LegacyUnreadable {
            file: PathBuf::from(LEGACY_FILE),
            reason: e.to_string(),
        }),
    }
    Ok((config, notices))
}

pub use crate::fs::{write_atomic, write_atomic_unsynced};

/// Renders the effective configuration as TOML.
pub fn render(config: &Config) -> String {
    let list = |items: &[PathBuf]| {
        let quoted: Vec<String> = items
            .iter()
            .map(|p| toml_edit::Value::from(p.to_string_lossy().as_ref()).to_string())
            .collect();
        format!("[{}]", quoted.join(", "))
    };
    format!(
        "default_mode = \"{}\"\npaths = {}\nexclude = {}\nkeep_commits = {}\n",
        config.default_mode.as_str(),
        list(&config.paths),
        list(&config.exclude),
        config.keep_commits
    )
}

/// One value of the configuration, as `config get` prints it.
pub fn get(config: &Config, key: &str) -> Option<Vec<String>> {
    let list = |v: &[PathBuf]| v.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match key {
        "default_mode" => Some(vec![config.default_mode.as_str().to_owned()]),
        "paths" => Some(list(&config.paths)),
        "exclude" => Some(list(&config.exclude)),
        "keep_commits" => Some(vec![config.keep_commits.to_string()]),
        _ => None,
    }
}

/// Takes `key` out of `doc`, keeping what stood above it (comments, blank
/// lines): it goes to the key after it, or to the end of the file.
fn remove_keeping_comments(doc: &mut toml_edit::DocumentMut, key: &str) {
    let table = doc.as_table_mut();
    let prefix = table
        .key_mut(key)
        .and_then(|mut k| {
            k.leaf_decor_mut()
                .prefix()
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    let next = keys
        .iter()
        .position(|k| k == key)
        .and_then(|i| keys.get(i + 1))
        .cloned();
    table.remove(key);
    if prefix.trim().is_empty() {
        return;
    }
    match next.as_deref().and_then(|n| table.key_mut(n)) {
        Some(mut k) => {
            let decor = k.leaf_decor_mut();
            let old = decor
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_owned();
            decor.set_prefix(format!("{prefix}{old}"));
        }
        None => {
            let old = doc.trailing().as_str().unwrap_or_default().to_owned();
            doc.set_trailing(format!("{prefix}{old}"));
        }
    }
}

/// One change of `config set` / `config unset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// KEY takes VALUES (a list may be empty).
    Set(String, Vec<String>),
    /// KEY leaves the file: its default applies again.
    Unset(String),
}

/// Sets KEY to VALUES in the config file of `root`, keeping the rest of the
/// file (comments included), validating the result before writing it.
pub fn set(root: &Root, key: &str, values: &[String]) -> Result<Config> {
    edit(root, &[Change::Set(key.to_owned(), values.to_vec())])
}

/// Applies `changes` to the config file of `root` at once: every change is
/// checked, then the whole result is validated (so `paths` and `exclude`
/// need only fit together), and it is written in one atomic replace; if
/// anything is refused nothing is written. The rest of the file (comments,
/// layout) is kept.
pub fn edit(root: &Root, changes: &[Change]) -> Result<Config> {
    let file = root.host(Path::new(CONFIG_FILE));
    let display = Path::new(CONFIG_FILE);
    let (text, imported) = match fs::read_to_string(&file) {
        Ok(text) => (text, None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (config, _) = load(root)?;
            (
                "# Almost configuration: see `man almost` or docs/almost.md.\n".to_owned(),
                Some(config.default_mode),
            )
        }
        Err(e) => return Err(Error::ConfigRead { file, source: e }),
    };
    // A file that does not parse is not edited blindly: report it as is.
    parse(root, display, &text)?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let offset = e.span().map_or(0, |s| s.start);
        config_error(display, &text, offset, e.message().to_owned())
    })?;
    let bad_value = |reason: String| Error::Config {
        file: display.to_owned(),
        line: 0,
        column: 0,
        message: reason,
    };
    let unknown = |other: &str| {
        bad_value(format!(
            "unknown key {other:?} (known: {})",
            KEYS.join(", ")
        ))
    };
    if let Some(mode) = imported
        && !changes
            .iter()
            .any(|c| matches!(c, Change::Set(k, _) | Change::Unset(k) if k == "default_mode"))
    {
        doc["default_mode"] = toml_edit::value(mode.as_str());
    }
    let mut seen = Vec::new();
    for change in changes {
        let key = match change {
            Change::Set(key, _) | Change::Unset(key) => key.as_str(),
        };
        if seen.contains(&key) {
            return Err(bad_value(format!("{key} is given twice")));
        }
        seen.push(key);
        match change {
            Change::Unset(key) => {
                if !KEYS.contains(&key.as_str()) {
                    return Err(unknown(key));
                }
                remove_keeping_comments(&mut doc, key);
            }
            Change::Set(key, values) => match key.as_str() {
                "default_mode" => {
                    let [value] = values.as_slice() else {
                        return Err(bad_value("default_mode takes one value".to_owned()));
                    };
                    let mode = DefaultMode::parse(value).ok_or_else(|| {
                        bad_value(format!(
                            "default_mode {value:?}: expected locked, unlocked or keep"
                        ))
                    })?;
                    doc["default_mode"] = toml_edit::value(mode.as_str());
                }
                "paths" | "exclude" => {
                    for value in values {
                        paths::check_manageable(value)?;
                    }
                    let mut array = toml_edit::Array::new();
                    for value in values {
                        array.push(value.as_str());
                    }
                    doc[key.as_str()] = toml_edit::value(array);
                }
                "keep_commits" => {
                    let [value] = values.as_slice() else {
                        return Err(bad_value("keep_commits takes one value".to_owned()));
                    };
                    let n = value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| {
                            bad_value(format!(
                                "keep_commits {value:?}: expected a whole number from 0 (keep \
                                 no undo data) to {MAX_KEEP_COMMITS}"
                            ))
                        })
                        .and_then(|n| check_keep_commits(n).map_err(bad_value))?;
                    doc["keep_commits"] = toml_edit::value(i64::from(n));
                }
                other => return Err(unknown(other)),
            },
        }
    }
    let new_text = doc.to_string();
    let config = parse(root, display, &new_text)?;
    write_atomic(&file, new_text.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(dirs: &[&str]) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        for d in dirs {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let root = Root::open(dir.path()).unwrap();
        (dir, root)
    }

    fn err(root: &Root, text: &str) -> String {
        parse(root, Path::new(CONFIG_FILE), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_the_real_directories() {
        let (dir, root) = root_with(&["usr", "opt", "etc"]);
        std::os::unix::fs::symlink("usr/bin", dir.path().join("bin")).unwrap();
        let config = parse(&root, Path::new(CONFIG_FILE), "").unwrap();
        assert_eq!(
            config.paths,
            vec![PathBuf::from("/usr"), PathBuf::from("/opt")]
        );
        assert_eq!(config.default_mode, DefaultMode::Locked);
        assert_eq!(
            config.exclude,
            vec![PathBuf::from("/usr/local")],
            "/usr/local is the administrator's: excluded by default"
        );
    }

    #[test]
    fn usr_local_is_excluded_unless_the_config_says_otherwise() {
        let (_d, root) = root_with(&["usr/local", "opt"]);
        let parsed = |text: &str| parse(&root, Path::new(CONFIG_FILE), text).unwrap();
        // Default paths, or /usr named: /usr/local excluded.
        assert_eq!(parsed("").exclude, vec![PathBuf::from("/usr/local")]);
        assert_eq!(
            parsed("paths = [\"/usr\"]\n").exclude,
            vec![PathBuf::from("/usr/local")]
        );
        // No managed path holds it: nothing to exclude.
        assert!(parsed("paths = [\"/opt\"]\n").exclude.is_empty());
        // An explicit list replaces the default, even an empty one.
        assert!(parsed("exclude = []\n").exclude.is_empty());
        assert_eq!(
            parsed("exclude = [\"/usr/share/doc\"]\n").exclude,
            vec![PathBuf::from("/usr/share/doc")]
        );
        // Without a config file at all, the same default.
        assert_eq!(
            load(&root).unwrap().0.exclude,
            vec![PathBuf::from("/usr/local")]
        );
    }

    // Checks (issue 12): the nesting check of `paths` and the check that each
    // `exclude` lies in a managed path are not quadratic: 20,000 managed
    // paths and 20,000 excludes parse in under 2 s in a debug build
    // (comparing every pair took 30 s); and a path nesting with one 20,000
    // lines earlier is still found, pointed at by its line, as are paths
    // nesting out of order, while `/opt/p1` and `/opt/p10` (a common
    // prefix of bytes, not of components) do not nest.
    #[test]
    fn twenty_thousand_paths_are_checked_in_n_log_n() {
        let (_d, root) = root_with(&["opt"]);
        let n = 20_000;
        let mut text = String::from("paths = [\n");
        for i in 0..n {
            text.push_str(&format!("  \"/opt/p{i}\",\n"));
        }
        text.push_str("]\nexclude = [\n");
        for i in (0..n).rev() {
            text.push_str(&format!("  \"/opt/p{i}/cache\",\n"));
        }
        text.push_str("]\n");
        let start = std::time::Instant::now();
        let config = parse(&root, Path::new(CONFIG_FILE), &text).unwrap();
        let took = start.elapsed();
        assert_eq!((config.paths.len(), config.exclude.len()), (n, n));
        assert!(took < std::time::Duration::from_secs(2), "took {took:?}");

        // Line 1 is `paths = [`, /opt/p7 on line 9, the last path on n + 2.
        let nested = text.replacen("]\nexclude", "  \"/opt/p7/sub\",\n]\nexclude", 1);
        let e = err(&root, &nested);
        assert!(
            e.starts_with(&format!("/etc/almost/almost.toml:{}:3:", n + 2)),
            "{e}"
        );
        assert!(e.contains("/opt/p7/sub overlaps /opt/p7 "), "{e}");
        let e = err(
            &root,
            "paths = [\"/usr/a\", \"/opt\", \"/usr/b\", \"/usr\"]\n",
        );
        assert!(e.starts_with("/etc/almost/almost.toml:1:38:"), "{e}");
        assert!(e.contains("/usr overlaps /usr/a "), "{e}");
        let e = err(&root, "paths = [\"/usr\", \"/usr\"]\n");
        assert!(e.contains("may not nest"), "{e}");
        let e = err(&root, "paths = [\"/opt/p1\"]\nexclude = [\"/opt/p10/x\"]\n");
        assert!(e.contains("not inside a managed path"), "{e}");
        let e = err(&root, "paths = [\"/opt/p1\"]\nexclude = [\"/opt/p1\"]\n");
        assert!(e.contains("not inside a managed path"), "{e}");
    }

    #[test]
    fn errors_name_line_and_column() {
        let (_d, root) = root_with(&["usr"]);
        let e = err(&root, "default_mode = \"locked\"\nbogus = 1\n");
        assert!(e.starts_with("/etc/almost/almost.toml:2:1:"), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e = err(&root, "default_mode = \"sideways\"\n");
        assert!(e.starts_with("/etc/almost/almost.toml:1:16:"), "{e}");
        let e = err(&root, "paths = [\"/usr\",\n  \"/usr/../etc\"]\n");
        assert!(e.starts_with("/etc/almost/almost.toml:2:3:"), "{e}");
        let e = err(&root, "paths = [\"/usr\", \"/usr/lib\"]\n");
        assert!(e.contains("may not nest"), "{e}");
        let e = err(&root, "paths = [\"/usr\"]\nexclude = [\"/opt/x\"]\n");
        assert!(e.contains("not inside a managed path"), "{e}");
        let e = err(&root, "paths = [\"/home\"]\n");
        assert!(e.contains("never managed"), "{e}");
        let e = err(&root, "paths = [\n");
        assert!(e.contains(":2:") || e.contains(":1:"), "{e}");
    }

    // Checks keep_commits: 10 when absent, a whole number from 0 to 1000
    // read from the file (a bad one is an error with its line and column),
    // and `config set` refusing anything else with the range in its error
    // and the file unchanged; 0 is accepted (no undo data kept).
    #[test]
    fn keep_commits_is_a_bounded_whole_number() {
        let (dir, root) = root_with(&["usr", "etc/almost"]);
        let file = dir.path().join("etc/almost/almost.toml");
        let parsed = |text: &str| parse(&root, Path::new(CONFIG_FILE), text);
        assert_eq!(parsed("").unwrap().keep_commits, DEFAULT_KEEP_COMMITS);
        assert_eq!(parsed("keep_commits = 0\n").unwrap().keep_commits, 0);
        assert_eq!(parsed("keep_commits = 1000\n").unwrap().keep_commits, 1000);
        for bad in ["keep_commits = -1\n", "keep_commits = 1001\n"] {
            let e = err(&root, bad);
            assert!(
                e.starts_with("/etc/almost/almost.toml:1:16:") && e.contains("0 (keep no undo"),
                "{e}"
            );
        }
        assert!(err(&root, "keep_commits = \"3\"\n").contains(":1:16:"));
        fs::write(&file, "# mine\n").unwrap();
        let config = set(&root, "keep_commits", &["3".to_owned()]).unwrap();
        assert_eq!(config.keep_commits, 3);
        assert_eq!(get(&config, "keep_commits"), Some(vec!["3".to_owned()]));
        let before = fs::read_to_string(&file).unwrap();
        assert!(before.contains("keep_commits = 3") && before.contains("# mine"));
        for bad in [&["-1"][..], &["abc"], &["1.5"], &["1001"], &["2", "3"], &[]] {
            let values: Vec<String> = bad.iter().map(|v| (*v).to_owned()).collect();
            let e = set(&root, "keep_commits", &values).unwrap_err().to_string();
            assert!(e.contains("keep_commits"), "{bad:?}: {e}");
            assert_eq!(fs::read_to_string(&file).unwrap(), before, "{bad:?}");
        }
    }

    #[test]
    fn legacy_ini() {
        assert_eq!(
            read_legacy("[Almost]\nDefaultMode = 1\n"),
            Ok(DefaultMode::Unlocked)
        );
        assert_eq!(
            read_legacy("[Almost]\nCurrentMode=1\nDefaultMode=0\n"),
            Ok(DefaultMode::Locked)
        );
        assert!(read_legacy("[Almost]\nDefaultMode=7\n").is_err());
        assert!(read_legacy("[Other]\nDefaultMode=1\n").is_err());
    }

    #[test]
    fn set_keeps_comments_and_validates() {
        let (dir, root) = root_with(&["usr", "opt", "etc/almost"]);
        let file = dir.path().join("etc/almost/almost.toml");
        fs::write(&file, "# keep me\ndefault_mode = \"locked\" # and me\n").unwrap();
        let config = set(&root, "default_mode", &["unlocked".to_owned()]).unwrap();
        assert_eq!(config.default_mode, DefaultMode::Unlocked);
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("# keep me") && text.contains("\"unlocked\""),
            "{text}"
        );
        set(&root, "paths", &["/usr".to_owned()]).unwrap();
        let before = fs::read_to_string(&file).unwrap();
        assert!(set(&root, "paths", &["../x".to_owned()]).is_err());
        assert!(set(&root, "default_mode", &["maybe".to_owned()]).is_err());
        assert!(set(&root, "colour", &["blue".to_owned()]).is_err());
        assert!(
            set(&root, "exclude", &["/opt/x".to_owned()]).is_err(),
            "exclude outside /usr"
        );
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            before,
            "a refused set changed the file"
        );
        let config = load(&root).unwrap().0;
        assert_eq!(config.paths, vec![PathBuf::from("/usr")]);
        assert_eq!(
            parse(&root, Path::new(CONFIG_FILE), &render(&config)).unwrap(),
            config
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
