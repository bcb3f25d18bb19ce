// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the basic layer lifecycle: `layer new` over a locked
//! tree, writes through the layer that never reach the real tree, `layer
//! list`/`diff`/`status` reporting it, the documented refusals, `layer
//! discard` restoring everything, and the original almost's `overlay …`
//! spelling mapping onto the same behaviour.

mod common;
mod layer_support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::path_entry;
use layer_support::{LayerBox, assert_manifest_eq, last_line_id, manifest};
use serde_json::Value;

/// What a test puts in /usr/lib before locking.
fn seed_usr_lib(sb: &LayerBox) {
    sb.write("/usr/lib/pkg/old.txt", "old\n");
    sb.write("/usr/lib/pkg/mode.txt", "mode\n");
    sb.write("/usr/lib/pkg/keep.txt", "keep\n");
    sb.write("/usr/share/doc/other", "other\n");
}

/// Bytes used under a directory, counted like `du --apparent-size` would not:
/// allocated blocks of every entry below it.
fn disk_usage(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let m = fs::symlink_metadata(e.path()).expect("lstat");
                    m.blocks() * 512 + if m.is_dir() { disk_usage(&e.path()) } else { 0 }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The expected error of a refused command: exit code and JSON kind.
#[track_caller]
fn expect_refusal(sb: &LayerBox, args: &[&str], code: i32, kind: &str) {
    sb.almost_json(args).expect_error(code, kind);
}

// Checks: `layer new /usr/lib` on a locked tree prints the id
// alone on its last line (and `id` in --json); creating, modifying, deleting
// and chmod-ing through the layer works although the tree was locked, while
// the real tree (seen through a bind mount of the root made before the layer)
// keeps every byte; `layer list --json` shows the layer mounted with the
// right change count and the size of its upper dir; `layer diff --json`
// lists exactly those changes (and `--patch` a unified diff of the modified
// text file); `status --json` lists the layer mount under
// `overlays` (and a layer over a whole managed path as `covered`);
// unprivileged, `layer new` is refused with 3 and `layer list` shows no
// change count; `layer discard` leaves the tree byte for byte and flag for
// flag as before, the store empty, and nothing mounted. e2fsck is clean.
#[test]
fn lifecycle_new_write_list_status_discard() {
    let sb = LayerBox::new();
    seed_usr_lib(&sb);
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));
    let flags_usr = sb.flag_map("/usr");
    let flags_opt = sb.flag_map("/opt");
    assert!(flags_usr.values().all(|&i| i), "not locked at the start");

    let r = sb.almost(&["layer", "new", "/usr/lib"]);
    r.expect_ok();
    let id = last_line_id(&r);
    assert_eq!(sb.overlays(), vec![sb.path("/usr/lib")], "overlay mount");

    // Writes through the layer, although the tree was locked.
    sb.write("/usr/lib/libfoo.so.1", b"\x7fELF changed library");
    sb.write("/usr/lib/pkg/new.txt", "new\n");
    fs::remove_file(sb.path("/usr/lib/pkg/old.txt")).expect("delete through the layer");
    fs::set_permissions(
        sb.path("/usr/lib/pkg/mode.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod through the layer");
    sb.write("/usr/lib/newdir/f", "f\n");
    sb.write("/usr/lib/pkg/keep.txt", "kept\n");
    assert_eq!(sb.read("/usr/lib/pkg/new.txt"), b"new\n");
    assert!(!sb.path("/usr/lib/pkg/old.txt").exists());

    // The real tree is untouched (its flags beneath the layer are cleared,
    // as documented; the content is not).
    assert_manifest_eq(
        "real /usr beneath the layer vs before",
        &manifest(&sb.lower("/usr")),
        &before,
    );
    assert!(!sb.lower("/usr/lib/pkg/new.txt").exists());
    assert_eq!(
        fs::read(sb.lower("/usr/lib/libfoo.so.1")).expect("read lower"),
        b"\x7fELF fake library"
    );

    // layer list --json.
    let list = sb.layer_list();
    assert_eq!(list.len(), 1, "{list:?}");
    let l = &list[0];
    assert_eq!(l["id"], id.as_str(), "{l}");
    assert_eq!(l["path"], "/usr/lib", "{l}");
    assert_eq!(l["mounted"], true, "{l}");
    assert_eq!(l["temporary"], false, "{l}");
    assert_eq!(l["changes"], 7, "change count: {l}");
    let upper = sb.path(&format!("/var/lib/almost/layers/{id}/upper"));
    assert_eq!(
        l["size"],
        disk_usage(&upper),
        "size of {}: {l}",
        upper.display()
    );
    assert!(l["size"].as_u64().unwrap_or(0) > 0, "{l}");

    // Text list names it, mounted.
    let r = sb.almost(&["layer", "list"]);
    r.expect_ok();
    let row = r
        .stdout
        .lines()
        .find(|line| line.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}\n{}", r.describe()));
    assert!(row.contains("/usr/lib") && row.contains("yes"), "{row}");

    // layer diff --json.
    let want: BTreeSet<(String, String)> = [
        ("/usr/lib/libfoo.so.1", "modified"),
        ("/usr/lib/pkg/new.txt", "added"),
        ("/usr/lib/pkg/old.txt", "deleted"),
        ("/usr/lib/pkg/mode.txt", "metadata"),
        ("/usr/lib/newdir", "added"),
        ("/usr/lib/newdir/f", "added"),
        ("/usr/lib/pkg/keep.txt", "modified"),
    ]
    .iter()
    .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(sb.diff_set(&id), want);
    // --patch: a unified diff of the modified text file.
    let r = sb.almost_json(&["layer", "diff", &id, "--patch"]);
    r.expect_ok();
    let res = r.result();
    let keep = res["changes"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["path"] == "/usr/lib/pkg/keep.txt"))
        .unwrap_or_else(|| panic!("no keep.txt in the diff\n{}", r.describe()));
    let patch = keep["patch"].as_str().unwrap_or_default();
    assert!(
        patch.contains("-keep") && patch.contains("+kept"),
        "patch of keep.txt: {keep}"
    );

    // A layer over a whole managed path, made with --json: `id` in the
    // result; status shows that path as covered.
    let r = sb.almost_json(&["layer", "new", "/opt"]);
    r.expect_ok();
    let res = r.result();
    let opt_id = res["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in the result\n{}", r.describe()))
        .to_owned();
    assert_eq!(res["path"], "/opt", "{res}");
    assert_ne!(opt_id, id);

    let st = sb.status();
    let usr = path_entry(&st, "/usr");
    let opt = path_entry(&st, "/opt");
    assert!(
        usr["overlays"]
            .as_array()
            .is_some_and(|o| o.iter().any(|p| p == "/usr/lib")),
        "status does not list the layer over /usr/lib: {st}"
    );
    assert_eq!(opt["covered"], true, "status: {st}");
    // Nothing outside the layers was unlocked by making them.
    assert_eq!(usr["unlocked"], 0, "{st}");
    assert_eq!(sb.flag_map("/usr").values().filter(|&&i| !i).count(), 0);

    // Unprivileged: refused to make a layer; may list without counts.
    let r = sb.almost_as_nobody(&["--json", "layer", "new", "/usr/share"]);
    r.expect_code(3);
    let r = sb.almost_as_nobody(&["--json", "layer", "list"]);
    r.expect_ok();
    let res = r.result();
    let mine = res["layers"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("nobody's list lacks {id}\n{}", r.describe()))
        .clone();
    assert_eq!(mine["changes"], Value::Null, "{mine}");
    assert_eq!(mine["mounted"], true, "{mine}");

    // Discard both.
    let r = sb.almost_json(&["layer", "discard", &opt_id, "--yes"]);
    r.expect_ok();
    assert_eq!(r.result()["id"], opt_id.as_str());
    sb.discard(&id);
    assert!(
        sb.overlays().is_empty(),
        "still mounted: {:?}",
        sb.overlays()
    );
    assert!(sb.layer_list().is_empty());
    assert!(
        sb.store_entries().is_empty(),
        "store not empty: {:?}",
        sb.store_entries()
    );
    assert_manifest_eq(
        "/usr after discard vs before",
        &manifest(&sb.path("/usr")),
        &before,
    );
    assert_eq!(
        sb.flag_map("/usr"),
        flags_usr,
        "flags of /usr after discard"
    );
    assert_eq!(
        sb.flag_map("/opt"),
        flags_opt,
        "flags of /opt after discard"
    );
    assert_eq!(sb.status()["mode"], "locked");
    sb.finish();
}

// Checks: with a layer over /usr/lib, `layer new` refuses a
// path outside the managed set and the system layer's directories (/home/x,
// /var/lib: /etc is one of those now), an overlapping path (a parent
// /usr and a child /usr/lib/pkg), a path that does not exist, a file, a
// symlink, a relative path, a path with `..`, and a directory with a mount
// point inside: each with exit 5 and kind `invalid-path`, and after all of
// them nothing changed: same layers, same store, same mounts, same flags,
// same real tree.
#[test]
fn new_layer_refusals_change_nothing() {
    let mut sb = LayerBox::new();
    seed_usr_lib(&sb);
    std::os::unix::fs::symlink("lib", sb.path("/usr/lib64")).expect("symlink");
    sb.mount_tmpfs("/usr/share/mnt");
    let id = sb.locked_with_layer("/usr/lib");

    let list = sb.layer_list();
    let store = sb.store_entries();
    let mounts = sb.overlays();
    let flags_usr = sb.flag_map("/usr");
    let flags_opt = sb.flag_map("/opt");
    let real = manifest(&sb.lower("/usr"));

    for path in [
        "/home/x",
        "/var/lib",
        "/usr",
        "/usr/lib",
        "/usr/lib/pkg",
        "/usr/nonexistent",
        "/usr/bin/tool",
        "/usr/lib64",
        "usr/bin",
        "/usr/lib/../bin",
        "/usr/share",
    ] {
        expect_refusal(&sb, &["layer", "new", path], 5, "invalid-path");
        expect_refusal(
            &sb,
            &["layer", "new", path, "--temporary"],
            5,
            "invalid-path",
        );
    }
    // The overlap message names the layer in the way.
    let r = sb.almost(&["layer", "new", "/usr"]);
    r.expect_code(5);
    assert!(r.all_output().contains(&id), "{}", r.describe());

    assert_eq!(sb.layer_list(), list, "layers changed");
    assert_eq!(sb.store_entries(), store, "store changed");
    assert_eq!(sb.overlays(), mounts, "mounts changed");
    assert_eq!(sb.flag_map("/usr"), flags_usr, "flags of /usr changed");
    assert_eq!(sb.flag_map("/opt"), flags_opt, "flags of /opt changed");
    assert_manifest_eq("real /usr", &manifest(&sb.lower("/usr")), &real);

    // Unknown ids are refused too, without touching anything.
    for args in [
        vec!["layer", "commit", "deadbeef", "--yes"],
        vec!["layer", "discard", "deadbeef", "--yes"],
        vec!["layer", "diff", "deadbeef"],
        vec!["layer", "mount", "deadbeef"],
        vec!["layer", "discard", "../../../etc", "--yes"],
    ] {
        expect_refusal(&sb, &args, 5, "invalid-path");
    }
    assert_eq!(sb.layer_list(), list, "layers changed");

    sb.discard(&id);
    sb.finish();
}

// Checks: the other way round, a layer over /usr makes
// `layer new /usr/lib` (and `overlay new /usr/lib`, and a second /usr) fail
// with exit 5, and nothing changes: one layer, one mount, the same real tree.
#[test]
fn layer_over_usr_refuses_usr_lib() {
    let sb = LayerBox::new();
    seed_usr_lib(&sb);
    let id = sb.locked_with_layer("/usr");
    let real = manifest(&sb.lower("/usr"));
    for args in [
        ["layer", "new", "/usr/lib"],
        ["overlay", "new", "/usr/lib"],
        ["layer", "new", "/usr"],
    ] {
        expect_refusal(&sb, &args, 5, "invalid-path");
    }
    let list = sb.layer_list();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(sb.overlays(), vec![sb.path("/usr")]);
    assert_manifest_eq("real /usr", &manifest(&sb.lower("/usr")), &real);
    sb.discard(&id);
    sb.assert_locked("/usr");
    sb.finish();
}

// Checks: the original spelling maps onto layers by path:
// `overlay new /usr/lib` prints the id alone on its last line and mounts a
// layer; `overlay list --json` shows it; `overlay commit /usr/lib --yes`
// puts the change into the real tree and locks it again; `overlay discard
// /usr/lib --yes` on a second layer drops its change and leaves the tree as
// the commit left it (byte for byte, flags too); a path without a layer is
// refused with 5; `layer undo` then restores the tree from before the commit.
#[test]
fn overlay_spelling_maps_onto_layers() {
    let sb = LayerBox::new();
    seed_usr_lib(&sb);
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));

    let r = sb.almost(&["overlay", "new", "/usr/lib"]);
    r.expect_ok();
    let id = last_line_id(&r);
    sb.write("/usr/lib/pkg/keep.txt", "changed by the overlay\n");
    sb.write("/usr/lib/pkg/added.txt", "added\n");

    let r = sb.almost_json(&["overlay", "list"]);
    r.expect_ok();
    let res = r.result();
    let layers = res["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{res}");
    assert_eq!(layers[0]["id"], id.as_str());
    assert_eq!(layers[0]["path"], "/usr/lib");
    assert_eq!(layers[0]["mounted"], true);
    assert_eq!(layers[0]["changes"], 2);

    expect_refusal(
        &sb,
        &["overlay", "commit", "/usr/share", "--yes"],
        5,
        "invalid-path",
    );
    expect_refusal(
        &sb,
        &["overlay", "discard", "/usr/share", "--yes"],
        5,
        "invalid-path",
    );

    sb.almost(&["overlay", "commit", "/usr/lib", "--yes"])
        .expect_ok();
    assert!(sb.overlays().is_empty());
    assert!(sb.layer_list().is_empty());
    assert_eq!(
        sb.read("/usr/lib/pkg/keep.txt"),
        b"changed by the overlay\n"
    );
    assert_eq!(sb.read("/usr/lib/pkg/added.txt"), b"added\n");
    sb.assert_locked("/usr");
    let committed = manifest(&sb.path("/usr"));

    // A second layer, discarded by path.
    sb.almost(&["overlay", "new", "/usr/lib"]).expect_ok();
    sb.write("/usr/lib/pkg/keep.txt", "never committed\n");
    fs::remove_file(sb.path("/usr/lib/pkg/added.txt")).expect("rm");
    sb.almost(&["overlay", "discard", "/usr/lib", "--yes"])
        .expect_ok();
    assert!(sb.overlays().is_empty());
    assert!(sb.layer_list().is_empty());
    assert_manifest_eq(
        "after overlay discard vs after commit",
        &manifest(&sb.path("/usr")),
        &committed,
    );
    sb.assert_locked("/usr");

    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("after undo vs before", &manifest(&sb.path("/usr")), &before);
    sb.assert_locked("/usr");
    sb.finish();
}

// Checks (flags as before): on an unlocked system a layer
// neither locks the tree when it is discarded nor when it is committed: the
// committed files and the rest of the managed trees carry no `i` afterwards.
#[test]
fn unlocked_system_stays_unlocked() {
    let sb = LayerBox::new();
    seed_usr_lib(&sb);
    sb.almost(&["unlock", "--yes"]).expect_ok();
    let before = manifest(&sb.path("/usr"));

    let id = sb.new_layer("/usr/lib", &[]);
    sb.write("/usr/lib/pkg/discarded.txt", "x\n");
    sb.discard(&id);
    assert_manifest_eq("after discard", &manifest(&sb.path("/usr")), &before);
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");

    let id = sb.new_layer("/usr/lib", &[]);
    sb.write("/usr/lib/pkg/committed.txt", "y\n");
    sb.commit(&id);
    assert_eq!(sb.read("/usr/lib/pkg/committed.txt"), b"y\n");
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");
    assert_eq!(sb.status()["mode"], "unlocked");
    sb.finish();
}
