// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of `unlock --for`: the pending re-lock is shown by
//! status, happens by itself after the caller has exited, is performed by the
//! next invocation when its timer process was killed, and is cancelled by an
//! explicit lock or unlock.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Sandbox, kill, pids_with_cmdline, wait_until};
use nix::sys::signal::Signal;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The oracle's view: every managed file and dir has `i`.
fn fully_locked(sb: &Sandbox) -> bool {
    sb.flags("/usr").unlocked.is_empty() && sb.flags("/opt").unlocked.is_empty()
}

// Checks: `unlock --for 2s` unlocks at once, status shows a
// relock_at about 2 s ahead, and with no further command the tree is locked
// again after the deadline (polled with lsattr, not with almost) but not
// before it; the deadline is never less than 2 s after the command began
// (started early in a second, where rounding down made it so); status
// then shows no pending re-lock.
#[test]
fn timed_unlock_relocks_by_itself() {
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 200);
    sb.almost(&["lock"]).expect_ok();
    // Started early in a second: a deadline counted from the second
    // rounded down then lies less than 2 s after the command began (a
    // full run saw it lock again after 1.07 s).
    let precise = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64()
    };
    while precise().fract() >= 0.05 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let began = precise();
    let t0 = now();
    let started = Instant::now();
    sb.almost(&["unlock", "--for", "2s", "--yes"]).expect_ok();
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");
    let st = sb.status();
    let at = st["relock_at"]
        .as_u64()
        .unwrap_or_else(|| panic!("no relock_at in status: {st}"));
    assert!(
        (t0 + 1..=t0 + 4).contains(&at),
        "relock_at {at} is not about 2 s after {t0}"
    );
    assert!(
        at as f64 >= began + 2.0,
        "relock_at {at} is less than 2 s after the unlock began ({began:.3})"
    );
    assert_eq!(st["mode"], "unlocked", "{st}");

    assert!(
        wait_until(Duration::from_secs(10), || fully_locked(&sb)),
        "not locked again 10 s after unlock --for 2s"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "re-locked after {took:?}, before the 2 s were over"
    );
    let st = sb.status();
    assert_eq!(st["mode"], "locked", "{st}");
    assert!(st["relock_at"].is_null(), "relock still pending: {st}");
}

// Checks: the timer process is found by its command line
// (it names the sandbox root) and killed; past the deadline the tree is
// still unlocked (nothing else re-locked it); the next `almost status` run
// as root performs the overdue re-lock.
#[test]
fn killed_timer_relock_done_by_next_invocation() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--for", "2s", "--yes"]).expect_ok();
    let needle = sb.root.to_string_lossy().into_owned();
    let mut timers = Vec::new();
    assert!(
        wait_until(Duration::from_secs(2), || {
            timers = pids_with_cmdline(&needle);
            !timers.is_empty()
        }),
        "no timer process whose command line names {needle}"
    );
    for &pid in &timers {
        kill(pid, Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        pids_with_cmdline(&needle).is_empty(),
        "a timer process came back"
    );
    sb.assert_unlocked("/usr");

    let r = sb.almost_json(&["status"]);
    r.expect_ok();
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    let st = sb.status();
    assert_eq!(st["mode"], "locked", "{st}");
    assert!(st["relock_at"].is_null(), "{st}");
}

// Checks (docs): a plain lock or unlock cancels a pending timed re-lock: after
// `unlock --for 2s`, `lock`, `unlock --yes`, the tree is still unlocked well
// past the old deadline and status shows nothing pending.
#[test]
fn lock_and_unlock_cancel_pending_relock() {
    let sb = Sandbox::new();
    sb.almost(&["unlock", "--for", "2s", "--yes"]).expect_ok();
    sb.almost(&["lock"]).expect_ok();
    assert!(sb.status()["relock_at"].is_null());
    sb.almost(&["unlock", "--yes"]).expect_ok();
    std::thread::sleep(Duration::from_millis(3500));
    sb.assert_unlocked("/usr");
    let st = sb.status();
    assert_eq!(st["mode"], "unlocked", "{st}");
    assert!(st["relock_at"].is_null(), "{st}");

    // And a second timed unlock replaces the first: the later deadline wins.
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--for", "2s", "--yes"]).expect_ok();
    sb.almost(&["unlock", "--for", "1h", "--yes"]).expect_ok();
    std::thread::sleep(Duration::from_millis(3500));
    sb.assert_unlocked("/usr");
    let at = sb.status()["relock_at"].as_u64().expect("relock_at");
    assert!(at > now() + 3000, "relock_at {at} is not the 1 h one");
    sb.almost(&["lock"]).expect_ok();
}

// Checks: once a plain `lock` has cancelled a timed re-lock, the timer
// process goes away instead of sleeping out its hour (it holds the sandbox
// root open, so a lingering timer keeps the filesystem busy: umount fails).
#[test]
fn cancelled_timer_process_exits() {
    let sb = Sandbox::new();
    sb.almost(&["unlock", "--for", "1h", "--yes"]).expect_ok();
    let needle = sb.root.to_string_lossy().into_owned();
    assert!(
        wait_until(Duration::from_secs(2), || !pids_with_cmdline(&needle)
            .is_empty()),
        "no timer process"
    );
    sb.almost(&["lock"]).expect_ok();
    assert!(
        wait_until(Duration::from_secs(5), || pids_with_cmdline(&needle)
            .is_empty()),
        "the timer of a cancelled timed unlock is still running 5 s after lock: {:?}",
        pids_with_cmdline(&needle)
    );
}

// Checks: a timed unlock as `nobody` is refused with exit 3 and starts no
// timer; the tree stays locked.
#[test]
fn timed_unlock_needs_root() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    sb.almost_as_nobody(&["unlock", "--for", "2s", "--yes"])
        .expect_code(3);
    std::thread::sleep(Duration::from_millis(300));
    assert!(pids_with_cmdline(&sb.root.to_string_lossy()).is_empty());
    sb.assert_locked("/usr");
    assert!(sb.status()["relock_at"].is_null());
}
