// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of `--root` under pkexec (issue 12, docs/SECURITY.md,
//! "`--root` under pkexec"): the root is resolved once, so a symlink
//! flipped while `almost` runs never sends root's writes into a tree the
//! caller controls; the directories Almost keeps its own files in under a
//! root-owned root must be reached without links and be root's alone; and
//! a timed unlock under pkexec re-locks by itself, its timer acting on the
//! root that was checked.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{ALMOST, DEFAULT_TIMEOUT, NOBODY, Run, Sandbox, Spawned, wait_until};

/// `almost SUBCOMMAND --root ROOT rest…` with `PKEXEC_UID` set, as pkexec
/// runs what the panel asks for.
fn as_pkexec(root: &Path, args: &[&str]) -> Run {
    let (sub, rest) = args.split_first().expect("a subcommand");
    let mut c = std::process::Command::new(ALMOST);
    c.arg(sub)
        .arg("--root")
        .arg(root)
        .args(rest)
        .env("PKEXEC_UID", "1000")
        .env("LC_ALL", "C.UTF-8");
    Spawned::spawn(c).wait(DEFAULT_TIMEOUT)
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// A directory owned by `nobody` (mode 0755), as a user's own.
fn users_dir(p: &Path) -> PathBuf {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).expect("chown");
    chmod(p, 0o755);
    p.to_path_buf()
}

/// Every entry under `dir` (not `dir` itself).
fn entries(dir: &Path) -> Vec<PathBuf> {
    common::walk(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p != dir)
        .collect()
}

// Attack: the trusted-root check canonicalised `--root`, and the root was
// resolved by path again afterwards (opening it, the audit entry, the
// timer's argv). A user-owned symlink flipped between a trusted root and a
// tree of the user's won 33 of 150 tries: root wrote its state and audit
// log into the user's tree. Here a thread flips such a link (owned by
// nobody, in nobody's directory: the flipper's own identity plays no part
// in how the kernel resolves it) as fast as it can while `PKEXEC_UID=…
// almost lock --root LINK` runs 150 times; after each run the user's tree
// must still be empty. Some runs must have reached the trusted root and
// some been refused, or the race was not run at all.
#[test]
fn a_flipped_symlink_never_steers_root_into_a_users_tree() {
    let sb = Sandbox::new();
    let user = users_dir(&sb.dir.join("user"));
    let untrusted = users_dir(&user.join("tree"));
    let link = user.join("root-link");
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, link) = (stop.clone(), link.clone());
        let targets = [sb.root.clone(), untrusted.clone()];
        let tmp = user.join("root-link.new");
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = &targets[(flips % 2) as usize];
                let _ = fs::remove_file(&tmp);
                symlink(target, &tmp).expect("symlink");
                lchown(&tmp, Some(NOBODY), Some(NOBODY)).expect("lchown");
                fs::rename(&tmp, &link).expect("rename");
                flips += 1;
            }
            flips
        })
    };
    let (mut reached, mut refused, mut wins) = (0, 0, 0);
    let mut other = Vec::new();
    for _ in 0..150 {
        let r = as_pkexec(&link, &["lock", "--json"]);
        match r.code {
            Some(0) => reached += 1,
            Some(5) => refused += 1,
            _ => other.push(r.describe()),
        }
        let written = entries(&untrusted);
        if !written.is_empty() {
            wins += 1;
            for p in written.iter().rev() {
                let _ = fs::remove_file(p).or_else(|_| fs::remove_dir(p));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().expect("flipper");
    eprintln!(
        "{reached} runs reached the trusted root, {refused} were refused, {wins} wrote into the user's tree ({flips} flips)"
    );
    assert_eq!(
        wins, 0,
        "root wrote into the user's tree in {wins} of 150 runs \
         ({reached} reached the trusted root, {refused} were refused, {flips} flips)"
    );
    assert!(
        other.is_empty(),
        "unexpected outcomes:\n{}",
        other.join("\n")
    );
    assert!(
        reached > 0 && refused > 0,
        "the race did not happen: {reached} runs reached the trusted root, \
         {refused} were refused ({flips} flips)"
    );
    sb.assert_locked("/usr");
}

// Attack: the check looked at the root and its parents only. A root-owned
// root whose `var` is a symlink into a user's directory put the layer
// store, the audit log (and so on) where the user could swap them. Under
// pkexec such a root is refused (exit 5, naming /var) and nothing is
// written into the user's directory; a sticky world-writable `var/log` is
// refused too (only root may change what Almost keeps). Under sudo the
// administrator's root is taken as it is.
#[test]
fn a_root_whose_var_leads_to_a_user_is_refused() {
    let sb = Sandbox::new();
    let user = users_dir(&sb.dir.join("user-var"));
    users_dir(&user.join("lib"));
    users_dir(&user.join("log"));
    fs::remove_dir_all(sb.path("/var")).expect("rm var");
    symlink(&user, sb.path("/var")).expect("symlink var");
    for args in [&["lock"][..], &["unlock", "--yes"], &["layer", "list"]] {
        let r = as_pkexec(&sb.root, args);
        r.expect_code(5);
        assert!(
            r.stderr.contains("/var") && r.stderr.contains("symbolic link"),
            "{}",
            r.describe()
        );
        let written: Vec<_> = entries(&user)
            .into_iter()
            .filter(|p| p != &user.join("lib") && p != &user.join("log"))
            .collect();
        assert!(written.is_empty(), "{args:?} wrote {written:?}");
    }
    sb.assert_unlocked("/usr");

    // A real `var`, with a `log` anyone may write to, sticky or not.
    fs::remove_file(sb.path("/var")).expect("rm var link");
    sb.mkdir("/var/log");
    for mode in [0o1777, 0o777, 0o775] {
        chmod(&sb.path("/var/log"), mode);
        let r = as_pkexec(&sb.root, &["lock"]);
        r.expect_code(5);
        assert!(
            r.stderr.contains("/var/log") && r.stderr.contains("writable by group or others"),
            "mode {mode:o}: {}",
            r.describe()
        );
        assert!(!sb.path("/var/log/almost.log").exists(), "mode {mode:o}");
    }
    chmod(&sb.path("/var/log"), 0o755);
    as_pkexec(&sb.root, &["lock"]).expect_ok();
    as_pkexec(&sb.root, &["unlock", "--yes"]).expect_ok();
}

// The same with the directory Almost keeps its layers, undo data and last
// good config in: `var/lib/almost` owned by a user (so writable by them) is
// refused under pkexec before anything is written there; under sudo the
// administrator's root is taken as it is.
#[test]
fn a_users_var_lib_almost_is_refused() {
    let sb = Sandbox::new();
    let own = users_dir(&sb.path("/var/lib/almost"));
    for args in [&["lock"][..], &["layer", "new", "/usr"], &["layer", "list"]] {
        let r = as_pkexec(&sb.root, args);
        r.expect_code(5);
        assert!(
            r.stderr.contains("/var/lib/almost") && r.stderr.contains("owned by uid 65534"),
            "{}",
            r.describe()
        );
        assert!(
            entries(&own).is_empty(),
            "{args:?} wrote {:?}",
            entries(&own)
        );
    }
    // Root-owned but writable by its group: refused as well.
    std::os::unix::fs::chown(&own, Some(0), Some(0)).expect("chown");
    chmod(&own, 0o775);
    let r = as_pkexec(&sb.root, &["layer", "list"]);
    r.expect_code(5);
    assert!(
        r.stderr.contains("writable by group or others"),
        "{}",
        r.describe()
    );
    // Without PKEXEC_UID (sudo, a root shell) the administrator decides.
    std::os::unix::fs::chown(&own, Some(NOBODY), Some(NOBODY)).expect("chown");
    chmod(&own, 0o755);
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--yes"]).expect_ok();
}

// The re-lock timer of a timed unlock is `almost` started again, with the
// root on its command line. Under pkexec it inherited PKEXEC_UID and was
// refused at once (`__relock-timer` is no pkexec command), so a timed
// unlock from the panel stayed unlocked until the next privileged act. It
// now runs, on the canonical path of the root its parent checked, and the
// tree is locked again by itself.
#[test]
fn a_timed_unlock_under_pkexec_relocks_by_itself() {
    let sb = Sandbox::new();
    as_pkexec(&sb.root, &["lock"]).expect_ok();
    as_pkexec(&sb.root, &["unlock", "--yes", "--for", "2s"]).expect_ok();
    sb.assert_unlocked("/usr");
    assert!(
        wait_until(Duration::from_secs(15), || sb
            .flags("/usr")
            .unlocked
            .is_empty()),
        "not locked again 15 s after a timed unlock of 2 s under pkexec"
    );
}
