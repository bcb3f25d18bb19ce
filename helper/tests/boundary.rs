// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the privilege boundary (issue 12, docs/SECURITY.md):
//! what a caller controls — its umask, the argv pkexec checks, the stored
//! state a crash or a hand left behind, the journal any user can write to —
//! must not steer what root does. Each test names the attack it replays.

mod common;
mod layer_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{ALMOST, DEFAULT_TIMEOUT, Run, Spawned};
use layer_support::{LayerBox, last_line_id};

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// `almost --root R args…` started by `sh` after `umask 000`, as a caller
/// of pkexec can leave it (pkexec passes the umask through).
fn almost_with_umask_000(sb: &LayerBox, args: &[&str]) -> Run {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(ALMOST)
        .arg("--root")
        .arg(&sb.root)
        .args(args)
        .env("LC_ALL", "C.UTF-8");
    Spawned::spawn(c).wait(DEFAULT_TIMEOUT)
}

// Attack: the caller's umask reaches root through pkexec. With `umask 000`
// the layer store, the undo data and the commit's backup directory inside
// the covered tree (/usr/lib/.almost-backup-ID, which becomes
// undo/saved) were created 0777, and the layer's upper directory (the
// root of the merged view) too, so the layered /usr/lib became
// world-writable. Checks: the store is 0755 (readable for an unprivileged
// `layer list`, writable by root only; one left 0777 is narrowed), the
// undo data and the saved originals (the backup directory, renamed) 0700,
// the merged /usr/lib keeps the mode of the tree beneath, and files the
// commit writes keep the layer's modes.
#[test]
fn a_callers_umask_does_not_reach_what_root_creates() {
    let sb = LayerBox::new();
    sb.write("/usr/lib/pkg/old.txt", "old\n");
    fs::set_permissions(sb.path("/usr/lib"), fs::Permissions::from_mode(0o755)).unwrap();
    sb.almost(&["lock"]).expect_ok();
    sb.mkdir("/var/lib/almost/layers");
    fs::set_permissions(
        sb.path("/var/lib/almost/layers"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();

    let r = almost_with_umask_000(&sb, &["layer", "new", "/usr/lib"]);
    r.expect_ok();
    let id = last_line_id(&r);
    assert_eq!(mode(&sb.path("/var/lib/almost/layers")), 0o755, "store");
    assert_eq!(
        mode(&sb.path("/usr/lib")),
        0o755,
        "the merged view's top took the upper directory's mode"
    );
    fs::write(sb.path("/usr/lib/pkg/old.txt"), "new\n").unwrap();
    fs::write(sb.path("/usr/lib/pkg/added.txt"), "added\n").unwrap();
    fs::set_permissions(
        sb.path("/usr/lib/pkg/added.txt"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    almost_with_umask_000(&sb, &["layer", "commit", &id, "--yes"]).expect_ok();
    assert_eq!(mode(&sb.path("/var/lib/almost/undo")), 0o700, "undo data");
    assert_eq!(
        mode(&sb.path("/var/lib/almost/undo/saved")),
        0o700,
        "the commit's backup directory (now the saved originals)"
    );
    assert_eq!(mode(&sb.path("/usr/lib")), 0o755);
    assert_eq!(mode(&sb.path("/usr/lib/pkg/added.txt")), 0o644);
    assert_eq!(sb.read("/usr/lib/pkg/old.txt"), b"new\n");
    sb.finish();
}
