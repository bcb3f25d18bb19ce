// SPDX-License-Identifier: GPL-3.0-or-later
//! What the fuzz targets share: a scratch directory of their own (on
//! tmpfs when there is one) that goes when the fuzzer exits, and the
//! configuration the layer checks are made against.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use almost_core::config::{Config, DefaultMode};

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A directory for this process only, `/dev/shm/almost-fuzz-NAME-PID…`,
/// made on first use and removed at exit (libFuzzer exits through
/// `exit`; a crash leaves it behind, which fuzz-smoke.sh cleans up).
pub fn scratch(name: &str) -> &'static Path {
    SCRATCH.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_owned()
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("almost-fuzz-{name}-{}-", std::process::id()))
            .tempdir_in(base)
            .expect("creating the scratch directory")
            .keep();
        // SAFETY: registers a plain function with no arguments; it only
        // reads a OnceLock that is set before this call.
        unsafe { libc::atexit(remove_scratch) };
        dir
    })
}

/// The configuration layer metadata and journals are checked against.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config {
        default_mode: DefaultMode::Locked,
        paths: vec![PathBuf::from("/usr"), PathBuf::from("/opt")],
        exclude: vec![PathBuf::from("/usr/local")],
        keep_commits: almost_core::config::DEFAULT_KEEP_COMMITS,
    })
}

/// Whether `path` (absolute) stays inside `top` once `.` and `..` are
/// resolved as the kernel would (without symlinks).
pub fn lexically_inside(path: &Path, top: &Path) -> bool {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir => out = PathBuf::from("/"),
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.starts_with(top)
}
