// SPDX-License-Identifier: GPL-3.0-or-later
//! What `config show`, `config set` and `config get` answer. The file's own
//! format (TOML, comments kept) is almost-core's business.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
}

/// The effective configuration (defaults filled in), and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub default_mode: DefaultMode,
    #[serde(with = "crate::path::list")]
    pub paths: Vec<PathBuf>,
    #[serde(with = "crate::path::list")]
    pub exclude: Vec<PathBuf>,
    /// How many commits keep their undo data (`keep_commits`; 0: none).
    /// Absent from an older almost's answer: then the default, 10.
    #[serde(default = "default_keep_commits")]
    pub keep_commits: u32,
    /// The configuration file, inside the root.
    #[serde(with = "crate::path")]
    pub file: PathBuf,
}

/// The default of `keep_commits`.
pub const DEFAULT_KEEP_COMMITS: u32 = 10;

fn default_keep_commits() -> u32 {
    DEFAULT_KEEP_COMMITS
}

/// `config get KEY`: the value, as its words (a list has one per item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    pub key: String,
    pub value: Vec<String>,
}
