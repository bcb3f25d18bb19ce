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
    assert_eq!(
        mode(&sb.path("/var/lib/almost/commits")),
        0o700,
        "the history"
    );
    let undo = format!("/var/lib/almost/commits/{id}");
    assert_eq!(mode(&sb.path(&undo)), 0o700, "undo data");
    assert_eq!(
        mode(&sb.path(&format!("{undo}/saved"))),
        0o700,
        "the commit's backup directory (now the saved originals)"
    );
    assert_eq!(mode(&sb.path("/usr/lib")), 0o755);
    assert_eq!(mode(&sb.path("/usr/lib/pkg/added.txt")), 0o644);
    assert_eq!(sb.read("/usr/lib/pkg/old.txt"), b"new\n");
    sb.finish();
}

// Attack: a corrupt `state.json` read as an empty state, so a pending
// timed re-lock was forgotten and the system stayed unlocked. Checks: with
// a timed unlock pending and its state file damaged, the next privileged
// `almost` (a status as root) says the file is damaged and locks, as the
// re-lock would have; unprivileged, status reports the restore pending.
#[test]
fn a_damaged_state_file_fails_closed() {
    let sb = LayerBox::new();
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--yes", "--for", "1h"]).expect_ok();
    sb.assert_unlocked("/usr");
    let state = sb.path("/run/almost/state.json");
    let text = fs::read(&state).expect("state.json");
    fs::write(&state, &text[..text.len() / 2]).unwrap();

    let r = sb.almost_as_nobody(&["--json", "status"]);
    r.expect_ok();
    assert_eq!(r.result()["restore"], "locked", "{}", r.describe());
    sb.assert_unlocked("/usr");

    let r = sb.almost_json(&["status"]);
    r.expect_ok();
    assert!(r.stderr.contains("damaged"), "{}", r.describe());
    assert_eq!(r.result()["mode"], "locked", "{}", r.describe());
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    sb.finish();
}

// Attack: `layer.json` was trusted. Set its path to /etc and a discard
// locked /etc; its id was not checked against its directory. Checks: a
// layer whose file names a path outside the managed trees, or another id,
// is refused by `layer discard` (exit 5, nothing locked outside) and left
// out of `layer list` (with a warning); put back as it was, it is
// discarded normally.
#[test]
fn stored_layer_metadata_is_checked() {
    let sb = LayerBox::new();
    sb.write("/usr/lib/pkg/a", "a\n");
    let id = sb.locked_with_layer("/usr/lib");
    let file = sb.path(&format!("/var/lib/almost/layers/{id}/layer.json"));
    let good = fs::read_to_string(&file).unwrap();

    for (what, forged) in [
        // (/etc is one of the system layer's directories now, which a
        // layer may cover and which is never locked: layers_multi and
        // layers_system check that with lsattr.)
        (
            "a path outside",
            good.replace("\"/usr/lib\"", "\"/home/user\""),
        ),
        (
            "a path with ..",
            good.replace("\"/usr/lib\"", "\"/usr/lib/../../etc\""),
        ),
        (
            "another id",
            good.replace(&format!("\"{id}\""), "\"0badc0de\""),
        ),
    ] {
        assert_ne!(forged, good, "{what}: nothing forged");
        fs::write(&file, &forged).unwrap();
        let r = sb.almost_json(&["layer", "discard", &id, "--yes"]);
        r.expect_code(5);
        assert!(!common::has_i(&sb.path("/etc")), "{what}: /etc locked");
        assert!(
            !common::has_i(&sb.path("/home/user")),
            "{what}: /home locked"
        );
        assert!(!common::has_i(&sb.path("/etc/hostname")), "{what}");
        let r = sb.almost_json(&["layer", "list"]);
        r.expect_ok();
        assert_eq!(
            r.result()["layers"].as_array().map(Vec::len),
            Some(0),
            "{what}: {}",
            r.describe()
        );
        assert!(r.stderr.contains("skipping"), "{what}: {}", r.describe());
    }
    fs::write(&file, &good).unwrap();
    sb.discard(&id);
    sb.assert_locked("/usr");
    sb.finish();
}

// Attack: a typo in the config made `almost boot` exit before locking
// anything, so the system booted unlocked. Checks: after a boot with a
// valid config (kept as the last good one), a typo still gives a locked
// system (by the last good config) and exit 4 naming the error; with no
// last good config either, the built-in defaults lock.
#[test]
fn boot_with_a_broken_config_still_locks() {
    let sb = LayerBox::new();
    sb.write_config("default_mode = \"locked\"\npaths = [\"/usr\", \"/opt\"]\n");
    sb.almost(&["boot"]).expect_ok();
    sb.assert_locked("/usr");
    assert!(sb.path("/var/lib/almost/last-good-config.toml").exists());
    sb.almost(&["unlock", "--yes"]).expect_ok();

    sb.write_config("default_mode = \"locked\"\npathz = [\"/usr\", \"/opt\"]\n");
    let r = sb.almost(&["boot"]);
    r.expect_code(4);
    assert!(r.stderr.contains("last good"), "{}", r.describe());
    assert!(r.stderr.contains("pathz"), "{}", r.describe());
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");

    fs::remove_file(sb.path("/var/lib/almost/last-good-config.toml")).unwrap();
    sb.write_config("default_mode = \"unlocked\"\npaths = [\"/usr\"]\n");
    sb.almost(&["unlock", "--yes"]).expect_ok();
    sb.write_config("default_mode = \"unlocked\"\npaths = [\"/usr\"\n");
    let r = sb.almost(&["boot"]);
    r.expect_code(4);
    assert!(r.stderr.contains("built-in defaults"), "{}", r.describe());
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    sb.finish();
}
