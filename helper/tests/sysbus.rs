// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of what `almost` asks of the system bus, against a real
//! private `dbus-daemon` with fake PackageKit and logind services on it:
//! the offline-update state in `status` (from PackageKit, from the
//! `/system-update` link, or none), the logind inhibitor held exactly around
//! the walks (taken before the first flag changes, released after the last,
//! not held while `almost run`'s command runs), and a missing bus costing
//! one log line and nothing else.

mod common;
mod fakebus;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{Sandbox, has_i, wait_until};
use fakebus::{OfflineState, PrivateBus, Snapshot, serve_logind, serve_packagekit};
use serde_json::{Value, json};

const OFFLINE_TEXT: &str = "An offline update is prepared: the system will be unprotected for it.";

fn status_with_bus(sb: &Sandbox, bus: &str) -> Value {
    let r = sb.almost_json(&["--system-bus", bus, "status"]);
    r.expect_ok();
    r.result()
}

// PackageKit's answer is reported, upgrade before update; "not prepared"
// is null; the text status says what it means.
#[test]
fn offline_update_from_packagekit() {
    let sb = Sandbox::new();
    let bus = PrivateBus::start();
    let state = OfflineState::default();
    let _pk = serve_packagekit(&bus, state.clone());

    assert_eq!(
        status_with_bus(&sb, &bus.address)["offline_update"],
        Value::Null
    );
    let text = sb.almost(&["--system-bus", &bus.address, "status"]);
    text.expect_ok();
    assert!(!text.stdout.contains(OFFLINE_TEXT), "{}", text.describe());

    state.set(true, false);
    assert_eq!(
        status_with_bus(&sb, &bus.address)["offline_update"],
        json!({"kind": "update", "source": "packagekit"})
    );
    let text = sb.almost(&["--system-bus", &bus.address, "status"]);
    text.expect_ok();
    assert!(text.stdout.contains(OFFLINE_TEXT), "{}", text.describe());

    state.set(true, true);
    assert_eq!(
        status_with_bus(&sb, &bus.address)["offline_update"],
        json!({"kind": "upgrade", "source": "packagekit"})
    );

    // Unprivileged, as the panel asks.
    let r = sb.almost_as_nobody(&["--json", "--system-bus", &bus.address, "status"]);
    r.expect_ok();
    assert_eq!(
        r.result()["offline_update"],
        json!({"kind": "upgrade", "source": "packagekit"})
    );
}

// Without PackageKit on the bus (or without a bus, or when PackageKit says
// nothing is prepared) the /system-update link under the root decides.
#[test]
fn offline_update_from_the_system_update_link() {
    let sb = Sandbox::new();
    let bus = PrivateBus::start();
    assert_eq!(
        status_with_bus(&sb, &bus.address)["offline_update"],
        Value::Null
    );
    assert_eq!(sb.status()["offline_update"], Value::Null);

    std::os::unix::fs::symlink("/var/cache/PackageKit", sb.path("/system-update")).expect("link");
    let link = json!({"kind": "update", "source": "system-update-link"});
    assert_eq!(status_with_bus(&sb, &bus.address)["offline_update"], link);
    assert_eq!(sb.status()["offline_update"], link, "no bus at all");
    let state = OfflineState::default();
    let _pk = serve_packagekit(&bus, state.clone());
    assert_eq!(
        status_with_bus(&sb, &bus.address)["offline_update"],
        link,
        "PackageKit says no, the link says yes"
    );
    state.set(true, false);
    assert_eq!(
        status_with_bus(&sb, &bus.address)["offline_update"],
        json!({"kind": "update", "source": "packagekit"})
    );
    let text = sb.almost(&["status"]);
    text.expect_ok();
    assert!(text.stdout.contains(OFFLINE_TEXT), "{}", text.describe());
}

/// A snapshot of the sandbox for the fake logind: whether the tool file is
/// locked, and how many entries of /usr are not.
fn snapshot(sb: &Sandbox) -> Snapshot {
    let tool: PathBuf = sb.path("/usr/bin/tool");
    let usr: PathBuf = sb.path("/usr");
    Arc::new(move || {
        format!(
            "tool={} usr_unlocked={}",
            if has_i(&tool) { "locked" } else { "unlocked" },
            common::flag_report(&usr).unlocked.len()
        )
    })
}

// The inhibitor is taken before the walk changes anything and released
// after it has finished, for lock and for unlock; it asks for a blocking
// shutdown inhibitor in Almost's name.
#[test]
fn inhibitor_is_held_around_lock_and_unlock() {
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 2000);
    let bus = PrivateBus::start();
    let (_logind, inhibits) = serve_logind(&bus, snapshot(&sb));

    sb.almost(&["--system-bus", &bus.address, "lock"])
        .expect_ok();
    assert!(
        inhibits.wait_all_released(Duration::from_secs(5)),
        "inhibitor not released: {:?}",
        inhibits.calls()
    );
    let calls = inhibits.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    assert_eq!(
        (c.what.as_str(), c.who.as_str(), c.mode.as_str()),
        ("shutdown", "Almost", "block")
    );
    assert!(c.why.contains("Locking"), "{c:?}");
    let total = sb.flags("/usr").total();
    assert_eq!(
        c.at_take,
        format!("tool=unlocked usr_unlocked={total}"),
        "taken after the walk began"
    );
    assert_eq!(
        c.at_release.as_deref(),
        Some("tool=locked usr_unlocked=0"),
        "released before the walk ended"
    );

    sb.almost(&["--system-bus", &bus.address, "unlock", "--yes"])
        .expect_ok();
    assert!(inhibits.wait_all_released(Duration::from_secs(5)));
    let calls = inhibits.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1].why.contains("Unlocking"), "{calls:?}");
    assert_eq!(calls[1].at_take, "tool=locked usr_unlocked=0");
    assert_eq!(
        calls[1].at_release.as_deref(),
        Some(format!("tool=unlocked usr_unlocked={total}").as_str())
    );

    // status takes none: it changes nothing.
    sb.almost(&["--system-bus", &bus.address, "status"])
        .expect_ok();
    assert_eq!(inhibits.calls().len(), 2);
    sb.assert_unlocked("/usr");

    // A timed unlock starts the re-lock timer while it holds the inhibitor:
    // the timer, which lives on, must not inherit it.
    sb.almost(&["--system-bus", &bus.address, "lock"])
        .expect_ok();
    sb.almost(&[
        "--system-bus",
        &bus.address,
        "unlock",
        "--yes",
        "--for",
        "1h",
    ])
    .expect_ok();
    assert!(
        inhibits.wait_all_released(Duration::from_secs(5)),
        "the re-lock timer holds the inhibitor: {:?}",
        inhibits.calls()
    );
    assert_eq!(inhibits.calls().len(), 4);
    assert!(!sb.status()["relock_at"].is_null(), "no timer pending");
    sb.kill_leftovers();
}

// `almost run`: one inhibitor around the unlock, released before the
// command starts, none while it runs, one around the restore.
#[test]
fn inhibitor_is_not_held_while_the_run_command_runs() {
    let sb = Sandbox::new();
    let bus = PrivateBus::start();
    let (_logind, inhibits) = serve_logind(&bus, snapshot(&sb));
    sb.almost(&["--system-bus", &bus.address, "lock"])
        .expect_ok();
    assert!(inhibits.wait_all_released(Duration::from_secs(5)));
    assert_eq!(inhibits.calls().len(), 1);

    let started = sb.dir.join("started");
    let go = sb.dir.join("go");
    let script = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.05; done",
        started.display(),
        go.display()
    );
    let run = sb.spawn(&[
        "--system-bus",
        &bus.address,
        "run",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        wait_until(Duration::from_secs(30), || started.exists()),
        "the command did not start"
    );
    assert!(
        inhibits.wait_all_released(Duration::from_secs(5)),
        "an inhibitor is held while the command runs: {:?}",
        inhibits.calls()
    );
    let calls = inhibits.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[1].why.contains("Unlocking"), "{calls:?}");
    assert_eq!(calls[1].at_take, "tool=locked usr_unlocked=0");
    assert!(
        calls[1]
            .at_release
            .as_deref()
            .is_some_and(|s| s.starts_with("tool=unlocked"))
    );

    std::fs::write(&go, "").expect("write go");
    run.wait(common::DEFAULT_TIMEOUT).expect_ok();
    assert!(inhibits.wait_all_released(Duration::from_secs(5)));
    let calls = inhibits.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls[2].why.contains("Restoring"), "{calls:?}");
    assert!(calls[2].at_take.starts_with("tool=unlocked"), "{calls:?}");
    assert_eq!(
        calls[2].at_release.as_deref(),
        Some("tool=locked usr_unlocked=0")
    );
    sb.assert_locked("/usr");
}

/// The stderr lines that speak of the system bus.
fn bus_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("system bus"))
        .collect()
}

// No bus (an address where nothing listens, or a sandbox root with no
// address at all): every command works, and says so in one line (at -v).
#[test]
fn without_a_bus_almost_works_and_says_so_once() {
    let sb = Sandbox::new();
    let nowhere = format!("unix:path={}", sb.dir.join("no-bus-here").display());
    for args in [
        vec!["-v", "--system-bus", &nowhere, "lock"],
        vec!["-v", "--system-bus", &nowhere, "status"],
        vec!["-v", "--system-bus", &nowhere, "run", "--", "true"],
        vec!["-v", "--system-bus", &nowhere, "unlock", "--yes"],
        vec!["-v", "lock"],
        vec!["-v", "run", "--", "true"],
    ] {
        let r = sb.almost(&args);
        r.expect_ok();
        let lines = bus_lines(&r.stderr);
        assert_eq!(
            lines.len(),
            1,
            "expected one line about the bus\n{}",
            r.describe()
        );
        assert!(
            !r.stderr.contains("ERROR") && !r.stderr.contains("WARN"),
            "{}",
            r.describe()
        );
    }
    sb.assert_locked("/usr");
    // Without -v, not a word.
    let r = sb.almost(&["--system-bus", &nowhere, "status"]);
    r.expect_ok();
    assert!(r.stderr.is_empty(), "{}", r.describe());
}
