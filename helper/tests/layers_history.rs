// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the history of commits: every commit keeps its
//! undo data (`/var/lib/almost/commits/<id>/`), `layer history` lists them
//! newest first with who, when, what and how much space, `layer undo
//! COMMIT` takes back any of them that no later commit overlaps (else exit
//! 13, naming the later ones), `keep_commits` bounds the history, an older
//! almost's undo data joins it, and an undo of a middle commit killed at
//! any step is finished or not begun, never half-way.

mod common;
mod layer_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use layer_support::{LayerBox, Manifest, assert_manifest_eq, last_line_id, manifest, strace};
use serde_json::Value;

const COMMITS: &str = "/var/lib/almost/commits";

/// `layer history --json`: the result.
#[track_caller]
fn history(sb: &LayerBox) -> Value {
    let r = sb.almost_json(&["layer", "history"]);
    r.expect_ok();
    r.result()
}

/// The ids `layer history --json` lists, in its order.
#[track_caller]
fn history_ids(sb: &LayerBox) -> Vec<String> {
    let h = history(sb);
    h["commits"]
        .as_array()
        .unwrap_or_else(|| panic!("no commits array: {h}"))
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The names in the history's directory, sorted.
fn entries_on_disk(sb: &LayerBox) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(sb.path(COMMITS))
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What `du -s -c -B1` says the `saved*` directories of an entry take
/// (each inode once, over all of them).
fn du_saved(dir: &Path) -> u64 {
    let saved: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read entry")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("saved"))
        })
        .collect();
    assert!(!saved.is_empty(), "no saved originals in {}", dir.display());
    let out = Command::new("du")
        .args(["-s", "-c", "-B1"])
        .args(&saved)
        .output()
        .expect("run du");
    assert!(out.status.success(), "du failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let total = text.lines().last().expect("du's total line");
    total
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("du said {text:?}"))
}

/// Makes a layer over `paths`, runs `change` in it, commits it (with
/// `env` set for the commit); returns the id.
#[track_caller]
fn commit_layer(
    sb: &LayerBox,
    paths: &[&str],
    env: &[(&str, &str)],
    change: impl FnOnce(&LayerBox),
) -> String {
    let mut args = vec!["layer", "new"];
    args.extend_from_slice(paths);
    let r = sb.almost(&args);
    r.expect_ok();
    let id = last_line_id(&r);
    change(sb);
    let mut c = sb.command(&["layer", "commit", &id, "--yes"]);
    for (k, v) in env {
        c.env(k, v);
    }
    common::Spawned::spawn(c)
        .wait(common::DEFAULT_TIMEOUT)
        .expect_ok();
    id
}

/// `now` with every entry at or below `paths` (relative to the manifest's
/// top) as in `before`: the tree with those changes alone taken back.
fn reverted(now: &Manifest, before: &Manifest, paths: &[&str]) -> Manifest {
    let hit = |p: &Path| paths.iter().any(|top| p.starts_with(top));
    let mut out: Manifest = Manifest(
        now.0
            .iter()
            .filter(|(p, _)| !hit(p))
            .map(|(p, e)| (p.clone(), e.clone()))
            .collect(),
    );
    for (p, e) in before.0.iter().filter(|(p, _)| hit(p)) {
        out.0.insert(p.clone(), e.clone());
    }
    out
}

/// Clears the immutable flag of one file (to change it by hand, as a
/// package manager would).
fn chattr(flag: &str, path: &Path) {
    let ok = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .expect("run chattr")
        .success();
    assert!(ok, "chattr {flag} {}", path.display());
}

fn seed(sb: &LayerBox) {
    sb.write("/usr/lib/a.txt", "a0\n");
    sb.write("/usr/lib/del.txt", "delete me\n");
    sb.write("/usr/lib/keep.txt", "keep\n");
    sb.write("/usr/share/doc/x.txt", "x0\n");
}

// Checks, over three commits (A over /usr/lib, B over /usr by SUDO_UID
// 4242, C over /usr/lib again; A and C both write /usr/lib/a.txt, B writes
// other files, some in the same directory as C): `layer history --json`
// lists C, B, A (newest first), each with its paths, added/changed/deleted
// counts, who (uid 0 "root"; 4242 for B, from SUDO_UID as the audit log
// finds it), an RFC 3339 time, and the size of its kept originals equal
// to what du says of its saved directories (their sum at the top); the
// text lists them in that order. `layer undo A` is refused with exit 13
// (`conflict`), the error naming C (and only C), nothing changed. A file B
// wrote changed by hand makes `layer undo B` refuse with exit 8 naming it.
// `layer undo B` (a middle commit, no overlap) then leaves exactly the
// tree with B's changes alone taken back, locked, and B leaves the history
// and the disk; `layer undo` then takes back C (the last), and again A:
// the tree is the one before A, the history empty, nothing left to undo.
#[test]
fn three_commits_listed_newest_first_and_undone_in_any_order_that_is_safe() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let s0 = manifest(&sb.lower("/usr"));

    let a = commit_layer(&sb, &["/usr/lib"], &[], |sb| {
        sb.write("/usr/lib/a.txt", "a by A\n");
        sb.write("/usr/lib/newA", "A\n");
        fs::remove_file(sb.path("/usr/lib/del.txt")).expect("rm");
    });
    let m1 = manifest(&sb.lower("/usr"));
    let b = commit_layer(&sb, &["/usr"], &[("SUDO_UID", "4242")], |sb| {
        sb.write("/usr/share/doc/x.txt", "x by B\n");
        sb.write("/usr/lib/newB", "B\n");
        sb.write("/usr/lib/dirB/f", "f\n");
    });
    let c = commit_layer(&sb, &["/usr/lib"], &[], |sb| {
        sb.write("/usr/lib/a.txt", "a by C\n");
        sb.write("/usr/lib/newC", "C\n");
    });
    let m3 = manifest(&sb.lower("/usr"));

    let h = history(&sb);
    let commits = h["commits"].as_array().expect("commits").clone();
    let ids: Vec<&str> = commits.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [c.as_str(), b.as_str(), a.as_str()], "{h}");
    let want = [
        (&c, "/usr/lib", (1, 1, 0), 0),
        (&b, "/usr", (3, 1, 0), 4242),
        (&a, "/usr/lib", (1, 1, 1), 0),
    ];
    let mut total = 0;
    for (entry, (id, path, (added, changed, deleted), uid)) in commits.iter().zip(want) {
        assert_eq!(entry["paths"], serde_json::json!([path]), "{entry}");
        assert_eq!(
            (&entry["added"], &entry["changed"], &entry["deleted"]),
            (
                &Value::from(added),
                &Value::from(changed),
                &Value::from(deleted)
            ),
            "counts of {id}: {entry}"
        );
        assert_eq!(entry["uid"], uid, "{entry}");
        if uid == 0 {
            assert_eq!(entry["user"], "root", "{entry}");
        }
        let time = entry["time"].as_str().expect("time");
        assert!(
            time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{time}"
        );
        let du = du_saved(&sb.path(&format!("{COMMITS}/{id}")));
        assert_eq!(entry["size"], du, "size of {id} vs du: {entry}");
        total += du;
    }
    assert!(total > 0);
    assert_eq!(h["size"], total, "{h}");
    assert_eq!(h["keep"], 10, "{h}");
    let text = sb.almost(&["layer", "history"]);
    text.expect_ok();
    let at = |id: &str| {
        text.stdout
            .find(id)
            .unwrap_or_else(|| panic!("{}", text.stdout))
    };
    assert!(at(&c) < at(&b) && at(&b) < at(&a), "{}", text.stdout);

    // A is overlapped by C (both wrote a.txt): refused, C named.
    let r = sb.almost_json(&["layer", "undo", &a, "--yes"]);
    let e = r.expect_error(13, "conflict");
    assert_eq!(e["commits"], serde_json::json!([c]), "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(&c) && !message.contains(&b), "{message}");
    assert_manifest_eq("after the refused undo", &manifest(&sb.lower("/usr")), &m3);
    assert_eq!(history_ids(&sb), [c.clone(), b.clone(), a.clone()]);

    // Changed by other means since B: refused, named (the check stays).
    let x = sb.path("/usr/share/doc/x.txt");
    let mtime = fs::metadata(&x).and_then(|m| m.modified()).expect("mtime");
    chattr("-i", &x);
    fs::write(&x, "by hand\n").expect("write");
    let r = sb.almost_json(&["layer", "undo", &b, "--yes"]);
    let e = r.expect_error(8, "busy");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("/usr/share/doc/x.txt"),
        "{e}"
    );
    fs::write(&x, "x by B\n").expect("write");
    fs::File::options()
        .write(true)
        .open(&x)
        .and_then(|f| f.set_modified(mtime))
        .expect("put the time back");
    chattr("+i", &x);
    assert_manifest_eq("put back by hand", &manifest(&sb.lower("/usr")), &m3);

    // B, the middle one, alone taken back.
    sb.almost(&["layer", "undo", &b, "--yes"]).expect_ok();
    let want = reverted(&m3, &m1, &["share/doc/x.txt", "lib/newB", "lib/dirB"]);
    assert_manifest_eq("B undone", &manifest(&sb.lower("/usr")), &want);
    sb.assert_locked("/usr");
    assert_eq!(history_ids(&sb), [c.clone(), a.clone()]);
    assert_eq!(entries_on_disk(&sb), sorted(vec![a.clone(), c.clone()]));

    // The last, then the one before.
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("C undone", &manifest(&sb.lower("/usr")), &m1);
    assert_eq!(history_ids(&sb), vec![a.clone()]);
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("A undone", &manifest(&sb.lower("/usr")), &s0);
    sb.assert_locked("/usr");
    assert!(history_ids(&sb).is_empty());
    assert!(
        entries_on_disk(&sb).is_empty(),
        "{:?}",
        entries_on_disk(&sb)
    );
    sb.almost_json(&["layer", "undo", "--yes"])
        .expect_error(5, "invalid-path");
    sb.finish();
}

// Checks `keep_commits`: `config set` refuses -1, 1001, a word and two
// values (exit 4, the key named, the file unchanged) and takes 2; over
// four commits the history holds at most the two newest, and the oldest
// two are gone from the history and from the disk; `layer history` gives
// their space (the sum of the two). With keep_commits=0 a commit leaves
// no undo data at all (the older entries go too) and `layer undo` has
// nothing to take back.
#[test]
fn keep_commits_bounds_the_history() {
    let sb = LayerBox::new();
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["config", "set", "keep_commits=2"]).expect_ok();
    let file = fs::read_to_string(sb.config_path()).expect("config");
    for bad in ["keep_commits=-1", "keep_commits=1001", "keep_commits=many"] {
        let r = sb.almost_json(&["config", "set", bad]);
        let e = r.expect_error(4, "config");
        assert!(
            e["message"].as_str().unwrap().contains("keep_commits"),
            "{bad}: {e}"
        );
    }
    sb.almost_json(&["config", "set", "keep_commits", "1", "2"])
        .expect_error(4, "config");
    assert_eq!(fs::read_to_string(sb.config_path()).unwrap(), file);
    let r = sb.almost_json(&["config", "get", "keep_commits"]);
    r.expect_ok();
    assert_eq!(r.result()["value"], serde_json::json!(["2"]));

    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(commit_layer(&sb, &["/usr/lib"], &[], |sb| {
            sb.write(&format!("/usr/lib/n{i}"), format!("{i}\n"));
            sb.write("/usr/lib/shared", format!("{i}\n"));
        }));
        let listed = history_ids(&sb);
        assert_eq!(listed.len(), (i + 1).min(2), "{listed:?}");
    }
    assert_eq!(history_ids(&sb), [ids[3].clone(), ids[2].clone()]);
    assert_eq!(
        entries_on_disk(&sb),
        sorted(vec![ids[2].clone(), ids[3].clone()])
    );
    let h = history(&sb);
    let sizes: u64 = ids[2..]
        .iter()
        .map(|id| du_saved(&sb.path(&format!("{COMMITS}/{id}"))))
        .sum();
    assert_eq!(h["size"], sizes, "{h}");
    assert_eq!(h["keep"], 2, "{h}");

    sb.almost(&["config", "set", "keep_commits=0"]).expect_ok();
    commit_layer(&sb, &["/usr/lib"], &[], |sb| sb.write("/usr/lib/n4", "4\n"));
    assert!(history_ids(&sb).is_empty());
    assert!(
        entries_on_disk(&sb).is_empty(),
        "{:?}",
        entries_on_disk(&sb)
    );
    sb.almost_json(&["layer", "undo", "--yes"])
        .expect_error(5, "invalid-path");
    assert_eq!(sb.read("/usr/lib/n4"), b"4\n");
    sb.assert_locked("/usr");
    sb.finish();
}

/// Turns an entry of the history into what an older almost left at
/// `legacy` (`/var/lib/almost/undo` or `undo.new`): no record, and the
/// journal as an almost before parts wrote it (the one part's ops, after
/// and before at the top; the layer without paths).
fn make_legacy(sb: &LayerBox, from: &str, legacy: &str) {
    let from = sb.path(from);
    let to = sb.path(legacy);
    fs::rename(&from, &to).expect("move to the old place");
    fs::remove_file(to.join("record.json")).expect("no record in the old format");
    layer_support::rewrite(&to.join("undo.json"), layer_support::to_old_journal);
}

// Checks the upgrade from an older almost (one undo directory, the last
// commit's): its `/var/lib/almost/undo` (old journal format, no record)
// becomes a history entry (uid unknown, counts from its journal, size as
// du says), and a whole `undo.new` left beside it the newest one; both old
// directories are gone, and `layer undo` takes them back newest first.
// Then the old almost killed while handing over the undo data of a commit
// (its `undo` still the previous commit's, `undo.new` the interrupted
// commit's, the commit's journal still there; made here by killing a
// commit at its last rename, strace -P, and moving the new stage and entry
// to the old places): the next run finishes the commit, whose entry is
// the newest, with its author (uid 0), the previous one after it; both
// undo in turn to the tree before them.
#[test]
fn an_older_almosts_undo_data_becomes_the_newest_history() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let s0 = manifest(&sb.lower("/usr"));
    let x = commit_layer(&sb, &["/usr/lib"], &[], |sb| {
        sb.write("/usr/lib/a.txt", "a by X\n");
        sb.write("/usr/lib/newX", "X\n");
    });
    let mx = manifest(&sb.lower("/usr"));
    let y = commit_layer(&sb, &["/usr/share"], &[], |sb| {
        sb.write("/usr/share/doc/x.txt", "x by Y\n");
    });
    let my = manifest(&sb.lower("/usr"));
    make_legacy(&sb, &format!("{COMMITS}/{x}"), "/var/lib/almost/undo");
    make_legacy(&sb, &format!("{COMMITS}/{y}"), "/var/lib/almost/undo.new");
    fs::remove_dir(sb.path(COMMITS)).expect("the history is empty");

    let h = history(&sb);
    let commits = h["commits"].as_array().expect("commits");
    let ids: Vec<&str> = commits.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [y.as_str(), x.as_str()], "{h}");
    assert_eq!(commits[1]["uid"], Value::Null, "{h}");
    assert_eq!(commits[1]["paths"], serde_json::json!(["/usr/lib"]), "{h}");
    assert_eq!(
        (&commits[1]["added"], &commits[1]["changed"]),
        (&Value::from(1), &Value::from(1)),
        "{h}"
    );
    assert_eq!(
        commits[1]["size"],
        du_saved(&sb.path(&format!("{COMMITS}/{x}"))),
        "{h}"
    );
    assert!(!sb.path("/var/lib/almost/undo").exists());
    assert!(!sb.path("/var/lib/almost/undo.new").exists());
    assert_manifest_eq("nothing changed", &manifest(&sb.lower("/usr")), &my);
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("Y undone", &manifest(&sb.lower("/usr")), &mx);
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("X undone", &manifest(&sb.lower("/usr")), &s0);

    if !common::strace_available() {
        sb.finish();
        return;
    }
    // The old almost killed between its two renames.
    let w = commit_layer(&sb, &["/usr/lib"], &[], |sb| {
        sb.write("/usr/lib/newW", "W\n");
    });
    let mw = manifest(&sb.lower("/usr"));
    let r = sb.almost(&["layer", "new", "/usr/share"]);
    r.expect_ok();
    let z = last_line_id(&r);
    sb.write("/usr/share/doc/z", "Z\n");
    let mz = manifest(&sb.path("/usr/share"));
    // The rename of the stage into place (strace 6.1's -P matches
    // rename's first path).
    let stage = sb.path(&format!("{COMMITS}/.new-{z}"));
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(&stage)
        .args([
            "-e",
            "trace=rename,renameat,renameat2",
            "-e",
            "inject=rename,renameat,renameat2:signal=KILL:when=1",
        ])
        .arg(common::ALMOST)
        .arg("--root")
        .arg(&sb.root)
        .args(["layer", "commit", &z, "--yes"])
        .env("LC_ALL", "C.UTF-8");
    let r = common::Spawned::spawn(c).wait(Duration::from_secs(120));
    assert!(
        r.signal == Some(9) || r.code == Some(137),
        "the commit was not killed at its hand-over\n{}",
        r.describe()
    );
    assert!(sb.path(&format!("{COMMITS}/.new-{z}")).is_dir());
    make_legacy(&sb, &format!("{COMMITS}/{w}"), "/var/lib/almost/undo");
    make_legacy(
        &sb,
        &format!("{COMMITS}/.new-{z}"),
        "/var/lib/almost/undo.new",
    );
    fs::remove_dir(sb.path(COMMITS)).expect("the history is empty");

    let st = sb.almost_json(&["status"]);
    st.expect_ok();
    assert_manifest_eq("Z finished", &manifest(&sb.lower("/usr/share")), &mz);
    assert_manifest_eq(
        "beside Z",
        &manifest(&sb.lower("/usr")).subtree("lib"),
        &mw.subtree("lib"),
    );
    let h = history(&sb);
    let commits = h["commits"].as_array().expect("commits");
    let ids: Vec<&str> = commits.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [z.as_str(), w.as_str()], "{h}");
    assert_eq!(commits[0]["uid"], 0, "{h}");
    assert_eq!(commits[1]["uid"], Value::Null, "{h}");
    assert!(!sb.path("/var/lib/almost/undo").exists());
    assert!(!sb.path("/var/lib/almost/undo.new").exists());
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("Z undone", &manifest(&sb.lower("/usr")), &mw);
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("W undone", &manifest(&sb.lower("/usr")), &s0);
    sb.assert_locked("/usr");
    sb.finish();
}

// Checks an undo an older almost had begun (its undo data with the
// `undoing` marker, as it writes it before unlocking anything): the next
// privileged run (`status`) brings it into the history and finishes it
// there: the tree is the one before the commit, locked, and nothing is
// left in the history or at the old place.
#[test]
fn an_undo_an_older_almost_had_begun_is_finished() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let s0 = manifest(&sb.lower("/usr"));
    let x = commit_layer(&sb, &["/usr/lib"], &[], |sb| {
        sb.write("/usr/lib/a.txt", "a by X\n");
        fs::remove_file(sb.path("/usr/lib/del.txt")).expect("rm");
    });
    make_legacy(&sb, &format!("{COMMITS}/{x}"), "/var/lib/almost/undo");
    fs::write(sb.path("/var/lib/almost/undo/undoing"), "relock").expect("marker");
    sb.almost_json(&["status"]).expect_ok();
    assert_manifest_eq("the undo finished", &manifest(&sb.lower("/usr")), &s0);
    sb.assert_locked("/usr");
    assert!(history_ids(&sb).is_empty());
    assert!(
        entries_on_disk(&sb).is_empty(),
        "{:?}",
        entries_on_disk(&sb)
    );
    assert!(!sb.path("/var/lib/almost/undo").exists());
    sb.finish();
}

// Checks a layer of two parts (/usr/lib and /opt) in the history: listed
// with both paths, its size what du says of `saved` and `saved-1`
// together; with a later commit over /usr/share it is a middle commit
// without overlap, and `layer undo ID` takes both parts back at once
// while the later commit stays.
#[test]
fn a_commit_of_several_directories_is_one_history_entry() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let (usr0, opt0) = (manifest(&sb.lower("/usr")), manifest(&sb.lower("/opt")));
    let m = commit_layer(&sb, &["/usr/lib", "/opt"], &[], |sb| {
        sb.write("/usr/lib/a.txt", "a by M\n");
        sb.write("/opt/app/config.json", "{\"m\":1}\n");
        sb.write("/opt/app/new", "new\n");
    });
    let n = commit_layer(&sb, &["/usr/share"], &[], |sb| {
        sb.write("/usr/share/doc/n", "N\n");
    });
    let after = manifest(&sb.lower("/usr"));
    let h = history(&sb);
    let commits = h["commits"].as_array().expect("commits");
    assert_eq!(commits[1]["id"], m.as_str(), "{h}");
    assert_eq!(
        commits[1]["paths"],
        serde_json::json!(["/usr/lib", "/opt"]),
        "{h}"
    );
    let entry = sb.path(&format!("{COMMITS}/{m}"));
    assert!(entry.join("saved-1").is_dir());
    assert_eq!(commits[1]["size"], du_saved(&entry), "{h}");
    sb.almost(&["layer", "undo", &m, "--yes"]).expect_ok();
    let want = reverted(&after, &usr0, &["lib"]);
    assert_manifest_eq("/usr/lib undone", &manifest(&sb.lower("/usr")), &want);
    assert_manifest_eq("/opt undone", &manifest(&sb.lower("/opt")), &opt0);
    assert_eq!(history_ids(&sb), vec![n.clone()]);
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    sb.finish();
}

// Checks that two commits of one layer (a selective commit, `--only`,
// then the rest) are two entries of the history with ids of their own
// (the layer's, then the layer's with a suffix; `status` offers the
// newest by that id), and that the older one, which the later does not
// overlap, is undone alone, then the later.
#[test]
fn two_commits_of_one_layer_have_ids_of_their_own() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let s0 = manifest(&sb.lower("/usr"));
    let r = sb.almost(&["layer", "new", "/usr/lib"]);
    r.expect_ok();
    let id = last_line_id(&r);
    sb.write("/usr/lib/one", "1\n");
    sb.write("/usr/lib/two", "2\n");
    sb.almost(&["layer", "commit", &id, "--only", "/usr/lib/one", "--yes"])
        .expect_ok();
    sb.almost(&["layer", "commit", &id, "--yes"]).expect_ok();
    let ids = history_ids(&sb);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[1], id, "the first commit has the layer's id: {ids:?}");
    assert!(
        ids[0] != id && ids[0].starts_with(&format!("{id}-")),
        "{ids:?}"
    );
    // status offers the newest by the id `layer history` gives it.
    let status = sb.status();
    assert_eq!(status["undo"]["id"], ids[0].as_str(), "{status}");
    sb.almost(&["layer", "undo", &id, "--yes"]).expect_ok();
    assert!(!sb.lower("/usr/lib/one").exists());
    assert_eq!(sb.read("/usr/lib/two"), b"2\n");
    assert_eq!(history_ids(&sb), vec![ids[0].clone()]);
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("both undone", &manifest(&sb.lower("/usr")), &s0);
    sb.finish();
}

// Checks the recovery of a later selective commit of a layer (its id the
// layer's with a suffix) killed once its originals are in its history
// stage: killed (strace -P) at the move of its backup into the stage, the
// move then done by hand, so that the stage `.new-ID-xxxx` holds the only
// copy of the originals. The next run (`status`) must keep that stage,
// finish the commit (the tree as the layer showed it) and keep its undo
// data: `layer undo` of that commit then gives back the tree before it.
// Failed before: the stage, not named by the layer's id, was deleted as
// stale and the commit applied again, keeping the new files as the
// originals.
#[test]
fn a_later_commit_of_a_layer_killed_after_its_stage_took_the_originals_is_finished() {
    if !common::strace_available() {
        return;
    }
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let r = sb.almost(&["layer", "new", "/usr/lib"]);
    r.expect_ok();
    let id = last_line_id(&r);
    sb.write("/usr/lib/one", "1\n");
    sb.write("/usr/lib/a.txt", "a changed\n");
    sb.almost(&["layer", "commit", &id, "--only", "/usr/lib/one", "--yes"])
        .expect_ok();
    let before = manifest(&sb.lower("/usr/lib"));
    let after = manifest(&sb.path("/usr/lib"));
    let backup = sb.path(&format!("/usr/lib/.almost-backup-{id}"));
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(&backup)
        .args([
            "-e",
            "trace=rename,renameat,renameat2",
            "-e",
            "inject=rename,renameat,renameat2:signal=KILL:when=1",
        ])
        .arg(common::ALMOST)
        .arg("--root")
        .arg(&sb.root)
        .args(["layer", "commit", &id, "--yes"])
        .env("LC_ALL", "C.UTF-8");
    let r = common::Spawned::spawn(c).wait(Duration::from_secs(120));
    assert!(
        r.signal == Some(9) || r.code == Some(137),
        "the commit was not killed at the move of its backup\n{}",
        r.describe()
    );
    let stages: Vec<String> = entries_on_disk(&sb)
        .into_iter()
        .filter(|n| n.starts_with(&format!(".new-{id}-")))
        .collect();
    assert_eq!(stages.len(), 1, "{:?}", entries_on_disk(&sb));
    let stage = sb.path(&format!("{COMMITS}/{}", stages[0]));
    fs::rename(&backup, stage.join("saved")).expect("the move the commit was making");

    sb.almost_json(&["status"]).expect_ok();
    assert_manifest_eq(
        "the commit finished",
        &manifest(&sb.lower("/usr/lib")),
        &after,
    );
    let ids = history_ids(&sb);
    let second = stages[0].trim_start_matches(".new-").to_owned();
    assert_eq!(ids, [second.clone(), id.clone()]);
    sb.almost(&["layer", "undo", &second, "--yes"]).expect_ok();
    assert_manifest_eq(
        "the later commit undone",
        &manifest(&sb.lower("/usr/lib")),
        &before,
    );
    sb.finish();
}

// --- killing an undo of a middle commit -------------------------------------

/// The syscalls at which the undo is killed: every step that changes the
/// tree or the history (as layers_crash.rs's list).
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
    "fdatasync",
    "syncfs",
    "lsetxattr",
    "fsetxattr",
    "fremovexattr",
    "fchownat",
    "lchown",
    "fchown",
    "fchmod",
    "fchmodat",
    "symlinkat",
    "mknodat",
    "utimensat",
];

/// The middle commit of the kill test: every kind of op in /usr/share/s.
fn change_b(sb: &LayerBox) {
    sb.write("/usr/share/s/f0", "f0 changed\n");
    fs::remove_file(sb.path("/usr/share/s/f1")).expect("rm");
    fs::set_permissions(
        sb.path("/usr/share/s/f2"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    sb.write("/usr/share/s/new/n0", "n0\n");
    fs::hard_link(
        sb.path("/usr/share/s/new/n0"),
        sb.path("/usr/share/s/new/n1"),
    )
    .expect("ln");
    fs::remove_dir_all(sb.path("/usr/share/s/deldir")).expect("rm -r");
    std::os::unix::fs::symlink("f0", sb.path("/usr/share/s/link")).expect("symlink");
}

/// What the middle commit touches, relative to /usr.
const B_PATHS: &[&str] = &[
    "share/s/f0",
    "share/s/f1",
    "share/s/f2",
    "share/s/new",
    "share/s/deldir",
    "share/s/link",
];

/// One round of the kill test: a middle commit B and a later one C (new
/// names in the same directory, and /usr/lib/c.txt), then the tree with B
/// taken back and the tree as it is.
struct Round {
    b: String,
    old: Manifest,
    new: Manifest,
}

fn round(sb: &LayerBox, i: usize) -> Round {
    let before = manifest(&sb.lower("/usr"));
    let b = commit_layer(sb, &["/usr"], &[], change_b);
    commit_layer(sb, &["/usr"], &[], |sb| {
        sb.write(&format!("/usr/share/s/c{i}"), "c\n");
        sb.write("/usr/lib/c.txt", format!("round {i}\n"));
    });
    let new = manifest(&sb.lower("/usr"));
    Round {
        b,
        old: reverted(&new, &before, B_PATHS),
        new,
    }
}

// Checks: `layer undo B` of a middle commit B (every kind of op: modify,
// delete, chmod, new hard-linked files, a deleted directory, a symlink)
// with a later commit C beside it (new names in B's directory), killed
// with SIGKILL (strace fault injection) at 20 or more calls of the
// syscalls that change the tree or the history, counted on one unkilled
// undo. After each kill `almost status` (as root: it finishes an undo
// that had begun) succeeds and the real /usr is either the tree with B
// alone taken back (B gone from the history, C still in it) or the tree
// as it was (B still in the history, and `layer undo B` then takes it
// back), locked; never a mix. Both outcomes must occur.
#[test]
fn an_undo_of_a_middle_commit_killed_at_each_step_is_old_or_new() {
    if !common::strace_available() {
        return;
    }
    let sb = LayerBox::new();
    for i in 0..4 {
        sb.write(&format!("/usr/share/s/f{i}"), format!("f{i}\n"));
    }
    sb.write("/usr/share/s/deldir/x", "x\n");
    sb.write("/usr/share/s/deldir/sub/y", "y\n");
    sb.almost(&["lock"]).expect_ok();

    let first = round(&sb, 0);
    let (r, counts) = strace::counted(&sb, &["layer", "undo", &first.b, "--yes"], KILL_SYSCALLS);
    r.expect_ok();
    assert_manifest_eq("unkilled undo", &manifest(&sb.lower("/usr")), &first.old);
    let points = strace::kill_points(&counts, 5, 2);
    eprintln!("kill points: {} {points:?}", points.len());
    assert!(points.len() >= 20, "too few kill points: {points:?}");

    let (mut olds, mut news, mut killed) = (0, 0, 0);
    for (n, (name, k)) in points.iter().enumerate() {
        let label = format!("undo killed at {name} #{k}");
        let rd = round(&sb, n + 1);
        let args = ["layer", "undo", rd.b.as_str(), "--yes"];
        killed += usize::from(strace::killed_at(&sb, &args, name, *k, &label));
        let st = sb.almost_json(&["status"]);
        assert_eq!(st.code, Some(0), "{label}: status\n{}", st.describe());
        let now = manifest(&sb.lower("/usr"));
        let ids = history_ids(&sb);
        if now == rd.old {
            olds += 1;
            assert!(
                !ids.contains(&rd.b),
                "{label}: B undone but listed: {ids:?}"
            );
        } else if now == rd.new {
            news += 1;
            assert!(ids.contains(&rd.b), "{label}: B not undone but not listed");
            sb.almost(&["layer", "undo", &rd.b, "--yes"]).expect_ok();
            assert_manifest_eq(&label, &manifest(&sb.lower("/usr")), &rd.old);
        } else {
            panic!(
                "{label}: neither old nor new\nto old: {:#?}\nto new: {:#?}",
                now.differences(&rd.old),
                now.differences(&rd.new)
            );
        }
        assert!(
            !entries_on_disk(&sb).iter().any(|n| n.starts_with('.')),
            "{label}: a stage or trash left: {:?}",
            entries_on_disk(&sb)
        );
        sb.assert_locked("/usr");
    }
    eprintln!("{killed} undos killed: {olds} finished by the next run, {news} had not begun");
    assert!(
        olds > 0 && news > 0,
        "the kills did not reach both sides of the start of the undo"
    );
    sb.finish();
}
