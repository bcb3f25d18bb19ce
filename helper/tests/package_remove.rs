// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost package-remove`, what the Debian package's prerm runs before dpkg
//! removes almost: it refuses, changing nothing, while a layer is open or a
//! commit is unfinished, and otherwise unlocks every managed tree for good —
//! also when it runs inside the `almost run -- apt remove almost` that
//! removes the package (that run must not lock again when apt ends), and
//! when a timed re-lock is pending (it must not fire later).

mod common;
mod layer_support;

use std::fs;

use common::ALMOST;
use layer_support::LayerBox;

fn seed(sb: &LayerBox) {
    sb.write("/usr/bin/tool", "#!/bin/sh\n");
    sb.write("/usr/lib/pkg/data", "data\n");
    sb.write("/opt/app/file", "app\n");
}

#[track_caller]
fn assert_all(sb: &LayerBox, locked: bool) {
    for top in ["/usr", "/opt"] {
        let flags = sb.flag_map(top);
        let wrong: Vec<_> = flags.iter().filter(|(_, i)| **i != locked).collect();
        assert!(
            wrong.is_empty(),
            "{top}: expected every entry {}, these are not: {wrong:?}",
            if locked { "locked" } else { "unlocked" }
        );
    }
}

// Checks: with a layer open, package-remove exits 8 (busy), names the layer
// and what to do, and changes nothing (the tree outside the layer stays
// locked, the layer stays mounted and listed). With an interrupted commit
// (its journal in the layer's directory) it names the commit instead. Once
// the layer is discarded, it unlocks every entry of every managed tree.
#[test]
fn refuses_with_a_layer_or_an_unfinished_commit_then_unlocks() {
    let sb = LayerBox::new();
    seed(&sb);
    let id = sb.locked_with_layer("/usr/lib");

    let r = sb.almost(&["package-remove"]);
    r.expect_code(8);
    let said = r.all_output();
    assert!(said.contains(&id) && said.contains("/usr/lib"), "{said}");
    assert!(said.contains("commit or discard"), "{said}");
    assert!(
        sb.has_i("/usr/bin/tool") && sb.has_i("/opt/app/file"),
        "a refusal unlocked"
    );
    assert!(sb.listed(&id).is_some(), "a refusal removed the layer");
    assert_eq!(
        sb.overlays(),
        vec![sb.path("/usr/lib")],
        "a refusal unmounted"
    );

    // A commit journal left by a crash: the commit is unfinished.
    let journal = sb.path(&format!("/var/lib/almost/layers/{id}/commit.json"));
    fs::write(&journal, "{}").expect("write journal");
    let r = sb.almost(&["package-remove"]);
    r.expect_code(8);
    let said = r.all_output();
    assert!(
        said.contains(&format!("the commit of layer {id}")),
        "{said}"
    );
    assert!(said.contains("almost status"), "{said}");
    fs::remove_file(&journal).expect("remove journal");
    assert!(sb.has_i("/usr/bin/tool"), "a refusal unlocked");

    sb.almost(&["layer", "discard", &id]).expect_ok();
    assert_all(&sb, true);
    sb.almost(&["package-remove"]).expect_ok();
    assert_all(&sb, false);
    sb.finish();
}

// Checks: run inside `almost run` (as when `almost run -- apt remove almost`
// runs the prerm), package-remove unlocks, and the run, when its command
// ends, leaves the trees unlocked instead of restoring "locked". A pending
// timed re-lock (`unlock --for`) is cancelled: status shows none afterwards.
#[test]
fn inside_almost_run_and_with_a_timed_unlock_the_trees_stay_unlocked() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let root = sb.root.to_str().expect("utf-8 root").to_owned();
    let script = format!("{ALMOST} --root '{root}' package-remove");
    sb.almost(&["run", "--", "sh", "-c", &script]).expect_ok();
    assert_all(&sb, false);
    assert!(sb.status()["restore"].is_null(), "{}", sb.status());

    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--yes", "--for", "1h"]).expect_ok();
    assert!(sb.status()["relock_at"].is_u64(), "{}", sb.status());
    sb.almost(&["package-remove"]).expect_ok();
    let status = sb.status();
    assert!(
        status["relock_at"].is_null(),
        "the timed re-lock is still pending: {status}"
    );
    assert_eq!(status["mode"], "unlocked", "{status}");
    sb.finish();
}

// Checks: package-remove is for maintainer scripts run by root, not for a
// user through pkexec: refused (12, forbidden: it has no polkit action),
// nothing unlocked.
#[test]
fn refused_under_pkexec() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let mut cmd = sb.command(&["package-remove"]);
    cmd.env("PKEXEC_UID", "65534");
    let r = common::Spawned::spawn(cmd).wait(common::DEFAULT_TIMEOUT);
    r.expect_code(12);
    assert!(
        r.all_output().contains("has no polkit action"),
        "{}",
        r.describe()
    );
    assert_all(&sb, true);
    sb.finish();
}
