// SPDX-License-Identifier: GPL-3.0-or-later
//! Helpers of the unit tests.

use std::path::Path;
use std::process::Command;

/// A temp dir whose immutable flags are cleared (`chattr -R -f -i`) before
/// it is deleted, also when the test fails half-way: `rm` fails on `i`.
pub struct FlagDir(tempfile::TempDir);

impl FlagDir {
    pub fn new() -> Self {
        FlagDir(tempfile::tempdir().expect("temp dir"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for FlagDir {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .args(["-R", "-f", "-i"])
            .arg(self.0.path())
            .status();
    }
}
