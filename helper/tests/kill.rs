// SPDX-License-Identifier: GPL-3.0-or-later
//! Crash tests: `almost lock` (and `unlock`) killed with SIGKILL at random
//! moments leave a state from which a new run converges, and the filesystem
//! stays consistent.

mod common;

use std::time::Duration;

use common::Sandbox;
use nix::sys::signal::Signal;

const FILES_USR: usize = 6000;
const FILES_OPT: usize = 1500;
const LOCK_KILLS: usize = 24;
const UNLOCK_KILLS: usize = 6;

fn seed() -> u64 {
    std::env::var("ALMOST_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

/// Starts `almost args`, kills it with SIGKILL after `delay`, and tells
/// whether the kill hit it while it ran (a process that already exited is a
/// zombie until reaped, so the signal is lost and its own status shows).
fn kill_after(sb: &Sandbox, args: &[&str], delay: Duration) -> bool {
    let p = sb.spawn(args);
    std::thread::sleep(delay);
    p.signal(Signal::SIGKILL);
    let r = p.wait(Duration::from_secs(30));
    if r.signal == Some(9) {
        return true;
    }
    // Finished before the kill: it must have succeeded.
    r.expect_ok();
    false
}

// Checks: on a tree of several thousand files, `lock` killed
// with SIGKILL at a random moment between 0 and one measured lock duration,
// at least 20 times; after each kill a new `lock` succeeds and the lsattr
// oracle sees every file and dir locked. Kills of `unlock` likewise converge
// to unlocked. At least a third of the kills must land mid-run, or the test
// proves nothing. The image passes e2fsck at the end. Reproduce a run with
// ALMOST_TEST_SEED.
#[test]
fn sigkill_during_lock_then_lock_converges() {
    let mut sb = Sandbox::with_size_mib(128);
    sb.populate("/usr/share/many", FILES_USR);
    sb.populate("/opt/app/many", FILES_OPT);
    let seed = seed();
    eprintln!("ALMOST_TEST_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let r = sb.almost(&["lock"]);
    r.expect_ok();
    let lock_time = r.elapsed;
    sb.almost(&["unlock", "--yes"]).expect_ok();
    let r = sb.almost(&["lock"]);
    r.expect_ok();
    // The shorter of two measurements, so that most delays fall inside a run.
    let lock_time = lock_time.min(r.elapsed).max(Duration::from_millis(5));
    let r = sb.almost(&["unlock", "--yes"]);
    r.expect_ok();
    let unlock_time = r.elapsed.max(Duration::from_millis(5));
    eprintln!("lock takes {lock_time:?}, unlock {unlock_time:?}");

    let mut mid_run = 0;
    for i in 0..LOCK_KILLS {
        let delay = lock_time.mul_f64(rng.f64());
        if kill_after(&sb, &["lock"], delay) {
            mid_run += 1;
        }
        let r = sb.almost_json(&["lock"]);
        assert_eq!(
            r.code,
            Some(0),
            "lock after kill #{i} (delay {delay:?}) failed\n{}",
            r.describe()
        );
        assert_eq!(r.result()["mode"], "locked", "{}", r.describe());
        sb.assert_locked("/usr");
        sb.assert_locked("/opt");
        sb.almost(&["unlock", "--yes"]).expect_ok();
        sb.assert_unlocked("/usr");
    }

    let mut unlock_mid_run = 0;
    for i in 0..UNLOCK_KILLS {
        sb.almost(&["lock"]).expect_ok();
        let delay = unlock_time.mul_f64(rng.f64());
        if kill_after(&sb, &["unlock", "--yes"], delay) {
            unlock_mid_run += 1;
        }
        let r = sb.almost_json(&["unlock", "--yes"]);
        assert_eq!(
            r.code,
            Some(0),
            "unlock after kill #{i} (delay {delay:?}) failed\n{}",
            r.describe()
        );
        sb.assert_unlocked("/usr");
        sb.assert_unlocked("/opt");
    }
    eprintln!(
        "{mid_run}/{LOCK_KILLS} lock kills and {unlock_mid_run}/{UNLOCK_KILLS} unlock kills \
         landed mid-run"
    );
    assert!(
        mid_run >= LOCK_KILLS / 3,
        "only {mid_run} of {LOCK_KILLS} kills hit a running lock"
    );
    assert_eq!(sb.status()["mode"], "unlocked");
    sb.unmount_and_fsck();
}
