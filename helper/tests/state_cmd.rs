// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the original almost's `state` spellings, given
//! their meaning here: `state new` is `layer new --system`, `state
//! rollback ID` is `layer undo ID` (any commit of the history that no
//! later one overlaps; an ID not in it is refused and nothing changes).

mod common;
mod layer_support;

use std::process::Command;

use common::{Run, Spawned};
use layer_support::LayerBox;
use serde_json::Value;

#[track_caller]
fn result(r: &Run) -> Value {
    r.expect_ok();
    let results = r.events("result");
    assert_eq!(results.len(), 1, "{}", r.describe());
    results[0].clone()
}

// Checks: `state new` makes a persistent system layer, as `layer new
// --system` does (the managed trees and /etc among its parts); a change
// through it committed can be rolled back by `state rollback ID` with the
// layer's id, which answers as `layer undo` and puts the tree back, also
// when a later commit (over /opt, not overlapping) stays; an id not in the
// history is refused (exit 5) and changes nothing; once rolled back, the
// same id is refused too.
#[test]
fn state_new_is_a_system_layer_and_rollback_undoes_the_last_commit() {
    let sb = LayerBox::new();
    sb.almost(&["lock"]).expect_ok();
    let made = result(&sb.almost_json(&["state", "new"]));
    assert_eq!(made["command"], "layer new", "{made}");
    assert_eq!(made["system"], true, "{made}");
    assert_eq!(made["temporary"], false, "{made}");
    let paths: Vec<&str> = made["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().expect("a path"))
        .collect();
    for part in ["/usr", "/opt", "/etc"] {
        assert!(paths.contains(&part), "{part} not covered: {made}");
    }
    let id = made["id"].as_str().expect("id").to_owned();
    let listed = sb.listed(&id).expect("listed");
    assert_eq!(listed["system"], true);

    sb.write("/usr/bin/installed", "new program\n");
    sb.commit(&id);
    assert!(sb.path("/usr/bin/installed").exists());

    let later = sb.new_layer("/opt", &[]);
    sb.write("/opt/app/later", "later\n");
    sb.commit(&later);

    let r = sb.almost_json(&["state", "rollback", "0000ffff", "--yes"]);
    let err = r.expect_error(5, "invalid-path");
    let message = err["message"].as_str().unwrap_or("");
    assert!(message.contains("no such commit"), "{}", r.describe());
    assert!(
        sb.path("/usr/bin/installed").exists(),
        "refused, yet changed"
    );

    let undone = result(&sb.almost_json(&["state", "rollback", &id, "--yes"]));
    assert_eq!(undone["command"], "layer undo", "{undone}");
    assert_eq!(undone["id"], id.as_str());
    assert!(!sb.path("/usr/bin/installed").exists(), "not rolled back");
    assert!(
        sb.path("/opt/app/later").exists(),
        "the later commit went too"
    );
    sb.assert_locked("/usr");

    let r = sb.almost_json(&["state", "rollback", &id, "--yes"]);
    let err = r.expect_error(5, "invalid-path");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("no such commit"),
        "{}",
        r.describe()
    );
    sb.finish();
}

// Checks: the state commands have no polkit action of their own: under
// pkexec they are refused (exit 12) and no layer is made.
#[test]
fn state_is_refused_under_pkexec() {
    let sb = LayerBox::new();
    let mut c: Command = sb.command_pkexec_order(&["state", "new", "--json"]);
    c.env("PKEXEC_UID", "1000");
    let r = Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT);
    r.expect_error(12, "forbidden");
    assert!(sb.layer_list().is_empty());
    sb.finish();
}
