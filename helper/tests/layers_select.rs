// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of a selective commit (issue 15): `layer commit ID
//! --only PATH…` and `--except PATH…` over the torture set of changes. Each
//! commit is checked against an oracle made from manifests: the real tree
//! must be the old one plus exactly the selected changes (and what they
//! need, which the result must name), the layer's merged view must not
//! move, and `layer diff` must list exactly the rest; also a layer of
//! several parts, SIGKILLs during a selective commit, its undo, and bad
//! selections refused with nothing changed.

mod common;
mod layer_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use layer_support::{
    LayerBox, Manifest, assert_manifest_eq, manifest, remove_xattr, set_xattr, strace,
};
use serde_json::Value;

type Changes = BTreeSet<(String, String)>;

fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ salt)
        .collect()
}

/// The tree before the layer (the torture set's, smaller files).
fn build_lower(sb: &LayerBox) {
    sb.write("/usr/bin/tool-a", "#!/bin/sh\necho a\n");
    fs::hard_link(sb.path("/usr/bin/tool-a"), sb.path("/usr/bin/tool-a-link")).expect("link");
    sb.write("/usr/bin/del-me", "delete me\n");
    sb.write("/usr/bin/mode-only", "mode\n");
    sb.write("/usr/bin/owner-only", "owner\n");
    for i in 0..12 {
        sb.write(
            &format!("/usr/share/del-tree/a{}/b/f{i}", i % 3),
            format!("{i}\n"),
        );
    }
    sb.write("/usr/share/recreate/x", "x\n");
    sb.write("/usr/share/recreate/y/z", "z\n");
    sb.write("/usr/share/file-to-dir", "a file\n");
    sb.write("/usr/share/dir-to-file/a", "a\n");
    sb.write("/usr/share/dir-to-file/sub/b", "b\n");
    sb.write("/usr/lib/libbar.so.2", b"\x7fELF bar");
    symlink("libbar.so.2", sb.path("/usr/lib/link-to-file")).expect("symlink");
    symlink("libbar.so.2", sb.path("/usr/lib/link-retarget")).expect("symlink");
    sb.write("/usr/share/move-me/f1", "f1\n");
    sb.write("/usr/share/move-me/sub/f2", "f2\n");
    sb.write("/usr/lib/xattr-user", "xu\n");
    sb.write("/usr/lib/xattr-existing", "xe\n");
    set_xattr(&sb.path("/usr/lib/xattr-existing"), "user.keep", b"1");
    set_xattr(&sb.path("/usr/lib/xattr-existing"), "user.drop", b"1");
    sb.write("/usr/share/doc/old name with spaces", "spaces\n");
    sb.write("/usr/lib/big-old.bin", pattern(300 << 10, 1));
    sb.mkdir("/usr/share/dir-meta");
    sb.write("/usr/share/dir-meta/inside", "inside\n");
    sb.write("/usr/bin/to-fifo", "will be a fifo\n");
    sb.write("/usr/lib/same", "same\n");
}

/// Every kind of change, made through the layer (merged view at `/usr`).
fn change_through_layer(sb: &LayerBox) {
    let p = |s: &str| sb.path(s);
    sb.write("/usr/bin/tool-a", "#!/bin/sh\necho A\n");
    fs::remove_file(p("/usr/bin/del-me")).expect("rm");
    fs::remove_dir_all(p("/usr/share/del-tree")).expect("rm -r");
    // Deleted and made again: an opaque directory, with two new files.
    fs::remove_dir_all(p("/usr/share/recreate")).expect("rm -r");
    sb.write("/usr/share/recreate/fresh", "fresh\n");
    sb.write("/usr/share/recreate/second", "second\n");
    fs::remove_file(p("/usr/share/file-to-dir")).expect("rm");
    sb.write("/usr/share/file-to-dir/inside", "inside\n");
    fs::remove_dir_all(p("/usr/share/dir-to-file")).expect("rm -r");
    sb.write("/usr/share/dir-to-file", "now a file\n");
    fs::remove_file(p("/usr/lib/link-to-file")).expect("rm");
    sb.write("/usr/lib/link-to-file", "now a file\n");
    fs::remove_file(p("/usr/bin/to-fifo")).expect("rm");
    nix::unistd::mkfifo(
        &p("/usr/bin/to-fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .expect("mkfifo");
    fs::remove_file(p("/usr/lib/link-retarget")).expect("rm");
    symlink("big-new.bin", p("/usr/lib/link-retarget")).expect("symlink");
    common::sh(
        "mv",
        &[
            p("/usr/share/move-me").as_os_str(),
            p("/usr/share/moved").as_os_str(),
        ],
    );
    fs::set_permissions(p("/usr/bin/mode-only"), fs::Permissions::from_mode(0o751)).expect("chmod");
    lchown(p("/usr/bin/owner-only"), Some(1234), Some(5678)).expect("chown");
    set_xattr(&p("/usr/lib/xattr-user"), "user.test", b"hello");
    remove_xattr(&p("/usr/lib/xattr-existing"), "user.drop");
    set_xattr(&p("/usr/lib/xattr-existing"), "user.keep", b"2");
    fs::set_permissions(p("/usr/share/dir-meta"), fs::Permissions::from_mode(0o700))
        .expect("chmod dir");
    sb.write("/usr/bin/suid", "suid\n");
    lchown(p("/usr/bin/suid"), Some(42), Some(42)).expect("chown");
    fs::set_permissions(p("/usr/bin/suid"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    // Two names of a new file.
    sb.write("/usr/bin/new-a", "two names\n");
    fs::hard_link(p("/usr/bin/new-a"), p("/usr/bin/new-b")).expect("link");
    // A new file in a new directory with a space in its name.
    sb.write("/usr/share/doc/dir with space/file with space", "s\n");
    sb.write("/usr/share/doc/dir with space/other", "o\n");
    fs::remove_file(p("/usr/share/doc/old name with spaces")).expect("rm");
    sb.write("/usr/share/empty-new", "");
    sb.write("/usr/lib/libbar.so.2", "");
    sb.write("/usr/lib/big-new.bin", pattern(400 << 10, 7));
    let mut old = fs::read(p("/usr/lib/big-old.bin")).expect("read");
    old.extend_from_slice(&pattern(100 << 10, 3));
    sb.write("/usr/lib/big-old.bin", old);
    sb.mkdir("/usr/share/new-empty-dir");
    symlink("../lib/big-new.bin", p("/usr/share/link-new")).expect("symlink");
    // Copied up, changed in nothing: not a change.
    sb.write("/usr/lib/same", "same\n");
}

/// Where a test starts from: the real tree, the layer's merged view and
/// its changes.
struct Seen {
    real: Manifest,
    merged: Manifest,
    diff: Changes,
}

fn seen(sb: &LayerBox, id: &str, part: &str) -> Seen {
    Seen {
        real: manifest(&sb.lower(part)),
        merged: manifest(&sb.path(part)),
        diff: sb.diff_set(id),
    }
}

/// Whether `path` is `top` or below it.
fn under(path: &str, top: &str) -> bool {
    Path::new(path).starts_with(top)
}

/// The real tree `old` plus the changes `chosen` as the merged view shows
/// them: a deletion takes the subtree away, a replacement too before its
/// new entry goes in, anything else puts the entry in (a directory alone:
/// its changed children are changes of their own).
fn plus(old: &Manifest, merged: &Manifest, part: &str, chosen: &Changes) -> Manifest {
    let mut m = old.0.clone();
    for (path, kind) in chosen {
        let path = almost_protocol::path::decode(path).expect("a path in the protocol's encoding");
        let rel = path
            .strip_prefix(part)
            .expect("inside the part")
            .to_path_buf();
        if kind == "deleted" || kind == "replaced" {
            m.retain(|p, _| !p.starts_with(&rel));
        }
        if kind != "deleted" {
            let e = merged
                .0
                .get(&rel)
                .unwrap_or_else(|| panic!("{} not in the merged view", path.display()));
            m.insert(rel, e.clone());
        }
    }
    normalized(Manifest(m))
}

/// A manifest with the link groups of a single name dropped (a name whose
/// other name was replaced is alone in the tree now).
fn normalized(mut m: Manifest) -> Manifest {
    let mut count: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for e in m.0.values() {
        if let Some(g) = &e.link_group {
            *count.entry(g.clone()).or_default() += 1;
        }
    }
    for e in m.0.values_mut() {
        if e.link_group.as_ref().is_some_and(|g| count[g] < 2) {
            e.link_group = None;
        }
    }
    m
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// The needed changes of a result: (path, why, by).
fn needed(sel: &Value) -> BTreeSet<(String, String, String)> {
    sel["needed"]
        .as_array()
        .unwrap_or_else(|| panic!("no needed array: {sel}"))
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().expect("a string").to_owned();
            (s("path"), s("why"), s("by"))
        })
        .collect()
}

/// Runs `layer commit ID --yes ARGS` (`--only` or `--except` and paths)
/// and checks it against the oracle: the result's selection (paths asked,
/// counts, every needed change a change of the layer), the real part =
/// `before.real` plus exactly the selected changes (those at or below an
/// asked path, or all the others with --except, and the needed ones), the
/// merged view unchanged, the layer listed and mounted, `layer diff` = the
/// rest. Returns the selected changes and the selection.
#[track_caller]
fn check_commit(
    sb: &LayerBox,
    id: &str,
    part: &str,
    before: &Seen,
    except: bool,
    paths: &[&str],
) -> (Changes, Value) {
    let mut args = vec!["layer", "commit", id, "--yes"];
    args.push(if except { "--except" } else { "--only" });
    args.extend_from_slice(paths);
    let r = sb.almost_json(&args);
    r.expect_ok();
    let res = r.result();
    let sel = res["selection"].clone();
    assert_eq!(strings(&sel["paths"]), paths, "{}", r.describe());
    assert_eq!(sel["except"], except);
    let needed = needed(&sel);
    let mut chosen: Changes = before
        .diff
        .iter()
        .filter(|(p, _)| paths.iter().any(|a| under(p, a)) != except)
        .cloned()
        .collect();
    for (path, _, by) in &needed {
        let change = before
            .diff
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("needed {path} is no change of the layer"));
        assert!(
            chosen.iter().any(|(p, _)| p == by) || needed.iter().any(|(p, _, _)| p == by),
            "{path} needed by {by}, which was not selected"
        );
        chosen.insert(change.clone());
    }
    assert_eq!(sel["selected"], chosen.len(), "{}", r.describe());
    assert_eq!(
        sel["rest"],
        before.diff.len() - chosen.len(),
        "{}",
        r.describe()
    );
    assert_manifest_eq(
        &format!("real {part} vs old + {paths:?}"),
        &normalized(manifest(&sb.lower(part))),
        &plus(&before.real, &before.merged, part, &chosen),
    );
    assert_manifest_eq(
        &format!("the layer's merged view after committing {paths:?}"),
        &manifest(&sb.path(part)),
        &before.merged,
    );
    assert!(sb.listed(id).is_some(), "the layer is gone");
    assert_eq!(sb.listed(id).expect("listed")["mounted"], true);
    let rest: Changes = before.diff.difference(&chosen).cloned().collect();
    assert_eq!(
        sb.diff_set(id),
        rest,
        "layer diff after committing {paths:?}"
    );
    (chosen, sel)
}

/// A locked sandbox with the torture set's tree and a layer over /usr
/// holding its changes.
fn torture() -> (LayerBox, String) {
    let sb = LayerBox::with_size_mib(96);
    build_lower(&sb);
    sb.almost(&["lock"]).expect_ok();
    let id = sb.new_layer("/usr", &[]);
    change_through_layer(&sb);
    (sb, id)
}

// Checks: four selective commits one after the other over the torture set,
// each with the oracle of `check_commit` (real /usr = old + exactly the
// selected changes, merged view unchanged, layer mounted, `layer diff` =
// the rest): (1) --only four files whose needs are each said — a file in a
// new directory (the directory, new-directory), a file in a directory
// deleted and made again (that directory, replaced-directory), one name of
// a new hard-linked pair (the other, hard-link) — and a mode-only change;
// (2) --only a directory holding changes (/usr/share: its subtree: a
// deleted tree, file→dir, dir→file, a mv, a directory's mode, a new
// symlink, a new empty directory…); (3) --except two paths (a new big
// file and the symlink retargeted to it), plus a name not UTF-8 given in
// the protocol's encoding; (4) --only /usr, the last change: the layer is
// left empty and mounted, and the text says so. The text of (1) names
// what was added and why. The merged view never moves; the tree under the
// layer stays unlocked.
#[test]
fn selections_over_the_torture_set() {
    let (sb, id) = torture();
    // A name that is not UTF-8.
    fs::write(
        sb.path("/usr/lib")
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad-\xff")),
        "not utf-8\n",
    )
    .expect("write");
    let start = seen(&sb, &id, "/usr");
    assert!(
        start
            .diff
            .contains(&("/usr/bin/new-b".to_owned(), "added".to_owned())),
        "{:?}",
        start.diff
    );
    assert!(
        !start.diff.iter().any(|(p, _)| p == "/usr/lib/same"),
        "a copy changed in nothing is no change"
    );

    let (_, sel) = check_commit(
        &sb,
        &id,
        "/usr",
        &start,
        false,
        &[
            "/usr/share/doc/dir with space/file with space",
            "/usr/share/recreate/fresh",
            "/usr/bin/new-b",
            "/usr/bin/mode-only",
        ],
    );
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        needed(&sel),
        BTreeSet::from([
            s(
                "/usr/share/doc/dir with space",
                "new-directory",
                "/usr/share/doc/dir with space/file with space"
            ),
            s(
                "/usr/share/recreate",
                "replaced-directory",
                "/usr/share/recreate/fresh"
            ),
            s("/usr/bin/new-a", "hard-link", "/usr/bin/new-b"),
        ])
    );
    // The old entries of the replaced directory are gone from the tree;
    // its other new file stays in the layer.
    assert!(!sb.lower("/usr/share/recreate/x").exists());
    assert!(!sb.lower("/usr/share/recreate/second").exists());
    assert!(sb.path("/usr/share/recreate/second").exists());
    sb.assert_unlocked("/usr");

    let now = seen(&sb, &id, "/usr");
    check_commit(&sb, &id, "/usr", &now, false, &["/usr/share"]);

    let now = seen(&sb, &id, "/usr");
    assert!(
        now.diff.iter().any(|(p, _)| p == "/usr/lib/bad-\\xff"),
        "{:?}",
        now.diff
    );
    check_commit(
        &sb,
        &id,
        "/usr",
        &now,
        true,
        &[
            "/usr/lib/big-new.bin",
            "/usr/lib/link-retarget",
            "/usr/lib/bad-\\xff",
        ],
    );
    assert!(!sb.lower("/usr/lib/big-new.bin").exists());

    let now = seen(&sb, &id, "/usr");
    let (_, sel) = check_commit(&sb, &id, "/usr", &now, false, &["/usr"]);
    assert_eq!(sel["rest"], 0);
    assert!(sb.diff_set(&id).is_empty());
    sb.discard(&id);
    sb.finish();
}

// Checks the text of a selective commit: how many of how many changes,
// each needed change with why and by what, how many stay in the layer.
#[test]
fn the_text_says_what_was_needed_and_what_stays() {
    let (sb, id) = torture();
    let total = sb.diff_set(&id).len();
    let r = sb.almost(&[
        "layer",
        "commit",
        &id,
        "--yes",
        "--only",
        "/usr/share/doc/dir with space/file with space",
    ]);
    r.expect_ok();
    assert!(
        r.stdout
            .contains(&format!("Committed 2 of the {total} changes of layer {id}")),
        "{}",
        r.describe()
    );
    assert!(
        r.stdout.contains(
            "also committed /usr/share/doc/dir with space: the new directory it is in \
             (needed by /usr/share/doc/dir with space/file with space)"
        ),
        "{}",
        r.describe()
    );
    assert!(
        r.stdout.contains(&format!(
            "{} changes stay in layer {id}, which stays mounted",
            total - 2
        )),
        "{}",
        r.describe()
    );
    let r = sb.almost(&["layer", "commit", &id, "--yes", "--only", "/usr"]);
    r.expect_ok();
    assert!(
        r.stdout
            .contains(&format!("Layer {id} is now empty and still mounted")),
        "{}",
        r.describe()
    );
    sb.discard(&id);
    sb.finish();
}

// Checks the undo of a selective commit: the selected changes' originals
// come back (the real tree is the one from before, entry for entry, flags
// as before: unlocked beneath the layer), the layer stays listed and
// mounted with exactly the rest (`layer diff` = the changes not selected,
// the merged view shows them over the old tree).
#[test]
fn undo_of_a_selective_commit_gives_back_the_originals_and_keeps_the_rest() {
    let (sb, id) = torture();
    let start = seen(&sb, &id, "/usr");
    let (chosen, _) = check_commit(
        &sb,
        &id,
        "/usr",
        &start,
        false,
        &[
            "/usr/share/recreate",
            "/usr/bin/tool-a",
            "/usr/share/del-tree",
        ],
    );
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq(
        "real /usr after the undo vs before",
        &manifest(&sb.lower("/usr")),
        &start.real,
    );
    assert_eq!(sb.listed(&id).expect("listed")["mounted"], true);
    let rest: Changes = start.diff.difference(&chosen).cloned().collect();
    assert_eq!(sb.diff_set(&id), rest);
    assert_eq!(sb.read("/usr/lib/big-new.bin"), pattern(400 << 10, 7));
    assert_eq!(sb.read("/usr/bin/tool-a"), b"#!/bin/sh\necho a\n");
    assert!(sb.path("/usr/share/del-tree/a0/b/f0").exists());
    sb.discard(&id);
    sb.assert_locked("/usr");
    sb.finish();
}

// Checks that `keep_commits` bounds the history with selective commits
// too: with keep_commits=1, two selective commits of one layer leave one
// commit listed by `layer history` (the second) and one entry of undo data
// on disk; `layer undo` then takes the second back (its file gone from the
// tree, the first's still there), the layer keeping the rest.
#[test]
fn keep_commits_bounds_the_history_of_selective_commits() {
    let (sb, id) = torture();
    sb.almost(&["config", "set", "keep_commits=1"]).expect_ok();
    for path in ["/usr/bin/mode-only", "/usr/lib/big-new.bin"] {
        sb.almost(&["layer", "commit", &id, "--yes", "--only", path])
            .expect_ok();
    }
    let r = sb.almost_json(&["layer", "history"]);
    r.expect_ok();
    let commits = r.result()["commits"].as_array().expect("commits").clone();
    assert_eq!(commits.len(), 1, "{}", r.describe());
    let on_disk = fs::read_dir(sb.path("/var/lib/almost/commits"))
        .expect("the history's directory")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count();
    assert_eq!(on_disk, 1);
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert!(!sb.lower("/usr/lib/big-new.bin").exists());
    let mode = fs::symlink_metadata(sb.lower("/usr/bin/mode-only"))
        .expect("mode-only")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o751, "the first commit stays");
    assert_eq!(sb.listed(&id).expect("listed")["mounted"], true);
    sb.discard(&id);
    sb.finish();
}

// Checks: a layer over /usr/lib, /opt and /etc; --only a file in /opt in a
// directory new in the layer: the directory is added and said; /opt
// gets those two (not the other change in /opt), /usr/lib and /etc keep
// every byte; the layer
// stays mounted over all three with the rest (`layer diff`), its merged
// views unchanged; /etc never gets the immutable flag.
#[test]
fn a_selection_in_one_part_of_several() {
    let sb = LayerBox::new();
    sb.write("/usr/lib/pkg/old.txt", "old\n");
    sb.write("/etc/app/app.conf", "setting = 1\n");
    sb.almost(&["lock"]).expect_ok();
    let id = sb.new_layer("/usr/lib", &["/opt", "/etc"]);
    sb.write("/usr/lib/pkg/new.txt", "new\n");
    fs::remove_file(sb.path("/usr/lib/pkg/old.txt")).expect("rm");
    sb.write("/opt/app/config.json", "{\"changed\": true}\n");
    sb.write("/opt/newapp/config.json", "{}\n");
    sb.write("/etc/app/app.conf", "setting = 2\n");
    let parts = ["/usr/lib", "/opt", "/etc"];
    let before: Vec<Seen> = parts.iter().map(|p| seen(&sb, &id, p)).collect();
    let diff = sb.diff_set(&id);
    let r = sb.almost_json(&[
        "layer",
        "commit",
        &id,
        "--yes",
        "--only",
        "/opt/newapp/config.json",
    ]);
    assert_eq!(r.code, Some(0), "layer diff was {diff:?}\n{}", r.describe());
    let sel = &r.result()["selection"];
    assert_eq!(
        needed(sel),
        BTreeSet::from([(
            "/opt/newapp".to_owned(),
            "new-directory".to_owned(),
            "/opt/newapp/config.json".to_owned()
        )])
    );
    assert_eq!(
        (sel["selected"].as_u64(), sel["rest"].as_u64()),
        (Some(2), Some(diff.len() as u64 - 2))
    );
    for (part, b) in parts.iter().zip(&before) {
        let mut want = b.real.clone();
        if *part == "/opt" {
            for (rel, e) in b.merged.0.iter().filter(|(p, _)| p.starts_with("newapp")) {
                want.0.insert(rel.clone(), e.clone());
            }
        }
        assert_manifest_eq(&format!("real {part}"), &manifest(&sb.lower(part)), &want);
        assert_manifest_eq(
            &format!("merged {part}"),
            &manifest(&sb.path(part)),
            &b.merged,
        );
    }
    let rest: Changes = diff
        .into_iter()
        .filter(|(p, _)| !p.starts_with("/opt/newapp"))
        .collect();
    assert_eq!(sb.diff_set(&id), rest);
    assert_eq!(sb.overlays().len(), 3);
    sb.assert_unlocked("/etc");
    sb.discard(&id);
    sb.finish();
}

// Checks that bad selections are refused with nothing done (the real tree,
// the merged view and `layer diff` as before, the layer mounted, no
// journal left): a path outside the layer, one inside it that the layer
// does not touch, a relative one, one with `..`, a copy that changes
// nothing (refused once the plan is made, the layer mounted again), an
// --except of everything (nothing left to commit), a bad escape; usage
// errors (exit 2) for --only without a path, with --except, with
// --at-boot.
#[test]
fn bad_selections_are_refused_and_nothing_changes() {
    let (sb, id) = torture();
    let start = seen(&sb, &id, "/usr");
    let journal = sb.path(&format!("/var/lib/almost/layers/{id}/commit.json"));
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--only", "/opt/elsewhere"], 5, "not inside the layer"),
        (&["--only", "/usr/bin/untouched"], 5, "has no change there"),
        (&["--only", "usr/bin/new-a"], 5, "not an absolute path"),
        (
            &["--only", "/usr/bin/../bin/new-a"],
            5,
            "not an absolute path",
        ),
        (&["--only", "/usr/lib/same"], 5, "changes nothing there"),
        (&["--except", "/usr"], 5, "no change of layer"),
        (
            &["--only", "/usr/bin/bad-\\xZZ"],
            5,
            "not a path as `layer diff` prints it",
        ),
        (&["--only"], 2, ""),
        (
            &["--only", "/usr/bin/new-a", "--except", "/usr/bin/new-b"],
            2,
            "",
        ),
        (&["--only", "/usr/bin/new-a", "--at-boot"], 2, ""),
    ];
    for (extra, code, words) in cases {
        let mut args = vec!["layer", "commit", &id, "--yes"];
        args.extend_from_slice(extra);
        let r = sb.almost_json(&args);
        if *code == 5 {
            let e = r.expect_error(5, "invalid-path");
            assert!(
                e["message"].as_str().unwrap_or("").contains(words),
                "{extra:?}: {}",
                r.describe()
            );
        } else {
            r.expect_code(*code);
        }
        let label = format!("after {extra:?}");
        assert_manifest_eq(&label, &manifest(&sb.lower("/usr")), &start.real);
        assert_manifest_eq(&label, &manifest(&sb.path("/usr")), &start.merged);
        assert_eq!(sb.diff_set(&id), start.diff, "{label}");
        assert_eq!(sb.listed(&id).expect("listed")["mounted"], true, "{label}");
        assert!(!journal.exists(), "{label}: a journal is left");
    }
    sb.almost_json(&["layer", "undo", "--yes"]).expect_code(5);
    sb.discard(&id);
    sb.finish();
}

/// The syscalls that change the trees, the layer, the journal or the
/// undo data: where a selective commit is killed.
const KILL_SYSCALLS: &[&str] = &[
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "fsync",
    "syncfs",
    "umount2",
    "mount",
    "fchown",
    "fchmod",
    "fsetxattr",
    "lremovexattr",
    "fremovexattr",
];

const ONLY: [&str; 3] = [
    "/usr/share/recreate/fresh",
    "/usr/bin/new-b",
    "/usr/share/doc/dir with space/file with space",
];

/// `layer commit ID --yes --only` the three files of [`ONLY`].
fn commit_only(id: &str) -> Vec<&str> {
    let mut args = vec!["layer", "commit", id, "--yes", "--only"];
    args.extend(ONLY);
    args
}

// Checks: a selective commit (three files, each needing another change: a
// replaced directory, a hard link's other name, a new directory) killed
// with SIGKILL (strace's fault injection) at calls that change the trees,
// the layer, the journal or the undo data (each call of one up to 4 times,
// else the first, middle and last, counted on an unkilled run; 20 points
// at least), then `almost status` (which recovers): the real /usr is then
// either the old tree, with the layer holding every change, or the old
// tree plus exactly the selection, with the layer holding the rest; in
// both cases the layer is listed and mounted, its merged view unchanged;
// after the new case, `layer undo` gives the old tree back. Skipped,
// loudly, without strace.
#[test]
fn a_selective_commit_killed_leaves_old_or_old_plus_the_selection() {
    if !common::strace_available() {
        return;
    }
    let (sb, first) = torture();
    let old = manifest(&sb.lower("/usr"));
    let fresh = |sb: &LayerBox| {
        let id = sb.new_layer("/usr", &[]);
        change_through_layer(sb);
        id
    };
    let start = seen(&sb, &first, "/usr");
    let (r, counts) = strace::counted(&sb, &commit_only(&first), KILL_SYSCALLS);
    r.expect_ok();
    let rest = sb.diff_set(&first);
    let chosen: Changes = start.diff.difference(&rest).cloned().collect();
    assert_eq!(chosen.len(), 6, "{chosen:?}");
    assert_manifest_eq(
        "unkilled: old + the selection",
        &normalized(manifest(&sb.lower("/usr"))),
        &plus(&old, &start.merged, "/usr", &chosen),
    );
    assert_manifest_eq(
        "unkilled: merged",
        &manifest(&sb.path("/usr")),
        &start.merged,
    );
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("unkilled undo", &manifest(&sb.lower("/usr")), &old);
    sb.discard(&first);
    let points = strace::kill_points(&counts, 4, 1);
    eprintln!("kill points: {} ({counts:?})", points.len());
    assert!(points.len() >= 20, "too few kill points: {counts:?}");

    let (mut olds, mut news, mut killed) = (0, 0, 0);
    let mut layer = None;
    for (name, k) in &points {
        let (id, start) = layer.take().unwrap_or_else(|| {
            let id = fresh(&sb);
            let start = seen(&sb, &id, "/usr");
            (id, start)
        });
        let new = plus(&old, &start.merged, "/usr", &chosen);
        let what = format!("commit killed at {name} #{k}");
        killed += usize::from(strace::killed_at(&sb, &commit_only(&id), name, *k, &what));
        let st = sb.almost(&["status"]);
        assert_eq!(st.code, Some(0), "{name} #{k}: status\n{}", st.describe());
        let label = format!("killed at {name} #{k}");
        let now = normalized(manifest(&sb.lower("/usr")));
        assert!(sb.listed(&id).is_some(), "{label}: the layer is gone");
        assert_eq!(
            sb.listed(&id).expect("listed")["mounted"],
            true,
            "{label}: not mounted\n{}",
            st.describe()
        );
        assert_manifest_eq(
            &format!("{label}: the merged view"),
            &manifest(&sb.path("/usr")),
            &start.merged,
        );
        if now == normalized(old.clone()) {
            olds += 1;
            assert_eq!(sb.diff_set(&id), start.diff, "{label}: the layer's changes");
            layer = Some((id, start));
        } else if now == new {
            news += 1;
            let rest: Changes = start.diff.difference(&chosen).cloned().collect();
            assert_eq!(sb.diff_set(&id), rest, "{label}: the rest");
            sb.almost(&["layer", "undo", "--yes"]).expect_ok();
            assert_manifest_eq(
                &format!("{label}: undo"),
                &manifest(&sb.lower("/usr")),
                &old,
            );
            sb.discard(&id);
        } else {
            assert_manifest_eq(&format!("{label}: neither old nor new"), &now, &new);
        }
    }
    eprintln!("{killed} commits killed: {olds} old, {news} new");
    assert!(killed >= 20, "only {killed} commits were killed");
    assert!(
        olds > 0 && news > 0,
        "{olds} old, {news} new: one side never seen"
    );
    if let Some((id, _)) = layer {
        sb.discard(&id);
    }
    sb.finish();
}
