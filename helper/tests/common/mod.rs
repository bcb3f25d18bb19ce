// SPDX-License-Identifier: GPL-3.0-or-later
//! The shared fixture of the end-to-end tests of `almost`.
//!
//! It owns everything a test needs to touch a real filesystem without touching
//! the machine: a [`Sandbox`] is a fresh ext4 loop image mounted under a
//! temporary directory and filled with a small fake system root, handed to the
//! binary with `--root`. It also owns the oracle the tests judge the binary by
//! (`lsattr`, called on regular files and directories found by a walk of our
//! own that never crosses a mount point), the runner that starts `almost` with
//! a timeout, and the cleanup that always clears the flags and unmounts, even
//! after a failed assertion.
//!
//! Every test binary runs inside a private mount namespace
//! (`unshare -m --propagation private cargo test …`); [`Sandbox::new`] refuses
//! to mount anything otherwise.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const ALMOST: &str = env!("CARGO_BIN_EXE_almost");

/// How long one `almost` invocation may take before the test calls it hung.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The uid/gid of `nobody`, used for the unprivileged checks.
pub const NOBODY: u32 = 65534;

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(AsRef::<OsStr>::as_ref(&$a)),*] };
}

mod inotify;
mod oracle;
mod process;
mod run;
mod safety;
mod sandbox;

// Every test file uses only some sections.
#[allow(unused_imports)]
pub use {inotify::*, oracle::*, process::*, run::*, safety::*, sandbox::*};
