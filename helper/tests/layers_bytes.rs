// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end test of names that are not UTF-8 in a layer: file names are
//! bytes on Linux, and a layer holding such names is diffed, committed and
//! undone like any other.

mod common;
mod layer_support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use layer_support::{LayerBox, assert_manifest_eq, manifest};

// Checks: a layer over /usr/lib adds two files named by the bytes \xff and
// \xfe (not UTF-8) and a directory \xfd holding one, and rewrites a file
// named \xfc that was there. `layer diff --json` lists five distinct paths
// that say each byte (almost-protocol's `\xNN`; they were one replacement
// character each); `layer commit` succeeds (it failed with "path contains
// invalid UTF-8": the journal held paths as strings) and leaves the tree
// equal to the merged view before it; `layer undo` puts back the tree from
// before the commit.
#[test]
fn names_that_are_not_utf8_are_diffed_committed_and_undone() {
    let sb = LayerBox::new();
    let pkg = sb.path("/usr/lib/pkg");
    let name = |b: &[u8]| pkg.join(OsStr::from_bytes(b));
    fs::create_dir_all(&pkg).expect("mkdir");
    fs::write(name(b"\xfc"), "old\n").expect("write");
    sb.write("/usr/lib/pkg/plain", "p\n");
    let before = manifest(&sb.path("/usr/lib"));

    let id = sb.new_layer("/usr/lib", &[]);
    fs::write(name(b"\xff"), "ff\n").expect("write");
    fs::write(name(b"\xfe"), "fe\n").expect("write");
    fs::create_dir(name(b"\xfd")).expect("mkdir");
    fs::write(name(b"\xfd").join(OsStr::from_bytes(b"in\xfb")), "in\n").expect("write");
    fs::write(name(b"\xfc"), "new\n").expect("write");
    let merged = manifest(&sb.path("/usr/lib"));

    let mut paths: Vec<(String, String)> = sb
        .diff_changes(&id)
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap_or("?").to_owned(),
                c["change"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    paths.sort();
    let want = [
        (r"/usr/lib/pkg/\xfc", "modified"),
        (r"/usr/lib/pkg/\xfd", "added"),
        (r"/usr/lib/pkg/\xfd/in\xfb", "added"),
        (r"/usr/lib/pkg/\xfe", "added"),
        (r"/usr/lib/pkg/\xff", "added"),
    ]
    .map(|(p, c)| (p.to_owned(), c.to_owned()));
    assert_eq!(paths, want.to_vec(), "each byte said, each path apart");

    sb.commit(&id);
    assert_manifest_eq(
        "after the commit vs the merged view",
        &manifest(&sb.path("/usr/lib")),
        &merged,
    );
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq(
        "after the undo vs before the commit",
        &manifest(&sb.path("/usr/lib")),
        &before,
    );
    sb.finish();
}
