// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the layer hardening of issue 12: an undo that would
//! throw away later changes is refused, hard links between names of
//! symlinks, fifos and device nodes survive a commit, the undo copy across
//! filesystems is synced before the backup goes, recovery says what it did
//! with a commit it abandoned, and a crashed `layer new` leaves nothing
//! behind.

mod common;
mod layer_support;

use layer_support::{LayerBox, assert_manifest_eq, manifest};

// Checks (issue 12, "undo overwrites what happened since"): after a commit
// of a layer over /usr/lib, `almost run` rewrites a file the commit wrote
// and adds a file to a directory the commit touched. `layer undo` is then
// refused with exit 8 (kind busy), naming both paths, and changes nothing:
// the later content stays and the undo is still offered. `layer undo
// --force` then puts back the tree from before the commit, locked.
#[test]
fn undo_refuses_to_overwrite_later_changes() {
    let sb = LayerBox::new();
    sb.write("/usr/lib/pkg/a.txt", "old\n");
    sb.write("/usr/lib/pkg/b.txt", "b\n");
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));

    let id = sb.new_layer("/usr/lib", &[]);
    sb.write("/usr/lib/pkg/a.txt", "from the layer\n");
    sb.write("/usr/lib/pkg/new.txt", "new\n");
    sb.almost(&["layer", "commit", &id, "--yes"]).expect_ok();

    let a = sb.path("/usr/lib/pkg/a.txt");
    let later = sb.path("/usr/lib/pkg/later.txt");
    let script = format!(
        "printf 'changed later\\n' > {} && printf x > {}",
        common::q(&a),
        common::q(&later)
    );
    sb.almost(&["run", "--", "sh", "-c", &script]).expect_ok();
    let changed = manifest(&sb.path("/usr"));

    let r = sb.almost_json(&["layer", "undo", "--yes"]);
    r.expect_code(8);
    let err = r.error_event().expect("an error event");
    assert_eq!(err["kind"], "busy", "{}", r.describe());
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/usr/lib/pkg/a.txt")
            && message.contains("/usr/lib/pkg/ (names added or removed)"),
        "the refusal must name the changed file and directory\n{}",
        r.describe()
    );
    assert!(message.contains("--force"), "{}", r.describe());
    assert_manifest_eq(
        "after a refused undo",
        &manifest(&sb.path("/usr")),
        &changed,
    );
    let st = sb.almost_json(&["status"]);
    assert!(!st.result()["undo"].is_null(), "{}", st.describe());

    sb.almost(&["layer", "undo", "--yes", "--force"])
        .expect_ok();
    assert_manifest_eq(
        "after undo --force vs before the commit",
        &manifest(&sb.path("/usr")),
        &{
            // --force overwrites what the commit wrote; a file it never
            // knew of is left alone.
            let mut m = before.clone();
            m.0.insert(
                "lib/pkg/later.txt".into(),
                changed.0[std::path::Path::new("lib/pkg/later.txt")].clone(),
            );
            m
        },
    );
    sb.assert_locked("/usr");
    sb.finish();
}
