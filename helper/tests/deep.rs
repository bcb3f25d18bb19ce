// SPDX-License-Identifier: GPL-3.0-or-later
//! Deep trees (issue 12): anyone with a writable directory in a managed
//! tree, or in a layer, can make a chain of directories as deep as the
//! filesystem allows. A chain of 3,500 single-child directories aborted
//! `lock` and `status` with a stack overflow (a half-locked tree, and a
//! crashing `almost boot`); `layer diff`, `commit` and `list` aborted at
//! 1,900; `layer new` left a store entry without metadata. Nothing may
//! recurse on the depth of its input: these tests use 100,000 levels, made
//! with `mkdirat`/`openat` relative to the last directory (no path that
//! long can be named).

mod common;
mod layer_support;

use std::os::fd::OwnedFd;
use std::path::Path;

use layer_support::LayerBox;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, mkdirat};

const LEVELS: usize = 100_000;
/// The chain written inside a layer (through the overlay, into its upper
/// directory on the same image): far past PATH_MAX and past the 1,900
/// levels that aborted `layer diff` before.
const LAYER_LEVELS: usize = 100_000;

/// Makes `levels` nested directories `d/d/d/…` under `top` and a file
/// `bottom` in the last one.
fn chain(top: &Path, levels: usize) {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd: OwnedFd = open(top, flags, Mode::empty()).expect("open top");
    for i in 0..levels {
        mkdirat(&fd, "d", Mode::from_bits_truncate(0o755))
            .unwrap_or_else(|e| panic!("mkdir at level {i}: {e}"));
        fd = openat(&fd, "d", flags, Mode::empty()).expect("open level");
    }
    openat(
        &fd,
        "bottom",
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .expect("bottom file");
}

fn count(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[track_caller]
fn path_counts(r: &common::Run, path: &str) -> (u64, u64) {
    let res = r.result();
    let p = common::path_entry(&res, path);
    (count(&p["locked"]), count(&p["unlocked"]))
}

// Checks: with a 100,000-level chain under /usr/share, `lock`, `status`,
// `unlock` and `boot` finish (no signal), and count every level (the
// chain's directories and the file at the bottom are all locked, then all
// unlocked); `layer new` over it works and leaves a complete store entry,
// `layer list` works, a change beside the chain is diffed and committed;
// a 100,000-level chain written inside a layer is listed, makes
// `layer diff` and `layer commit` fail cleanly (exit 1, nothing changed,
// no signal) and is removed whole by `layer discard`.
#[test]
fn a_100000_level_chain_is_walked_without_recursion() {
    let sb = LayerBox::with_mkfs(1200, &["-N", "260000"]);
    sb.write("/usr/share/doc/keep", "keep\n");
    sb.mkdir("/usr/share/deep");
    chain(&sb.path("/usr/share/deep"), LEVELS);
    let entries = (LEVELS + 1) as u64;

    let r = sb.almost_json(&["lock"]);
    r.expect_ok();
    let (locked, unlocked) = path_counts(&r, "/usr");
    assert!(locked > entries && unlocked == 0, "{}", r.describe());
    let r = sb.almost_json(&["status"]);
    r.expect_ok();
    assert_eq!(r.result()["mode"], "locked", "{}", r.describe());
    let r = sb.almost_json(&["unlock", "--yes"]);
    r.expect_ok();
    let (locked, unlocked) = path_counts(&r, "/usr");
    assert!(locked == 0 && unlocked > entries, "{}", r.describe());
    sb.write_config("default_mode = \"locked\"\npaths = [\"/usr\", \"/opt\"]\n");
    let r = sb.almost_json(&["boot"]);
    r.expect_ok();
    let r = sb.almost_json(&["status"]);
    r.expect_ok();
    assert_eq!(r.result()["mode"], "locked", "{}", r.describe());

    // A layer over the deep tree.
    let id = sb.new_layer("/usr/share", &[]);
    let store = sb.path("/var/lib/almost/layers");
    let names: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, std::slice::from_ref(&id), "store entries");
    assert!(store.join(&id).join("layer.json").exists());
    assert!(sb.listed(&id).is_some());
    sb.write("/usr/share/doc/added", "added\n");
    let diff = sb.diff_set(&id);
    assert_eq!(
        diff.into_iter().collect::<Vec<_>>(),
        [("/usr/share/doc/added".to_owned(), "added".to_owned())]
    );
    sb.commit(&id);
    assert_eq!(sb.read("/usr/share/doc/added"), b"added\n");

    // A deep chain inside a layer.
    let id = sb.new_layer("/usr/lib", &[]);
    chain(&sb.path("/usr/lib"), LAYER_LEVELS);
    assert!(sb.listed(&id).is_some(), "the layer is not listed");
    for args in [
        vec!["--json", "layer", "diff", &id],
        vec!["--json", "layer", "commit", &id, "--yes"],
    ] {
        let r = sb.almost(&args);
        assert_eq!(r.code, Some(1), "{}", r.describe());
        assert!(r.stdout.contains("too long"), "{}", r.describe());
    }
    assert!(sb.listed(&id).is_some(), "a failed commit lost the layer");
    sb.discard(&id);
    let left: Vec<_> = std::fs::read_dir(&store).unwrap().collect();
    assert!(left.is_empty(), "store not emptied: {left:?}");
    sb.finish();
}
