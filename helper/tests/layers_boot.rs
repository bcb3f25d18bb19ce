// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end test of `almost boot` with layers: after a simulated reboot
//! (every layer's mount gone, a stale `almost run` record, a pending timed
//! unlock whose timer died) `boot` re-mounts the persistent layer, discards
//! the temporary one, clears the stale runtime state and applies the
//! default mode, locking everything except what lies beneath a mounted layer.

mod common;
mod layer_support;

use std::fs;
use std::time::Duration;

use common::{kill, path_entry, pid_alive, pids_with_cmdline, q, read_pid_file, wait_until};
use layer_support::{LayerBox, assert_manifest_eq, flag_map_of, manifest};
use nix::sys::signal::Signal;
use serde_json::Value;

fn state_file(sb: &LayerBox) -> Value {
    let p = sb.path("/run/almost/state.json");
    serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

// Checks: with default_mode locked, a persistent layer over
// /usr/lib and a temporary one over /opt/app (both with changes), a pending
// `unlock --for 1h` whose timer process is killed, and an `almost run` killed
// with SIGKILL together with its command (a stale run record), all layer
// mounts are taken away by hand (a reboot). `almost boot` then exits 0 and:
// the persistent layer is listed and mounted again with its changes; the
// temporary one is gone (not listed, not in the store, not mounted) and the
// tree it covered is exactly as before it, locked; the runtime state has no
// run and no pending re-lock, and `status` shows none and mode `locked`,
// with /usr/lib listed as a layer mount; every file and directory is locked
// except the tree beneath the mounted layer (whose flags a layer clears).
#[test]
fn boot_remounts_persistent_drops_temporary_clears_stale_state() {
    let sb = LayerBox::new();
    sb.write("/usr/lib/pkg/a.txt", "a\n");
    sb.write("/opt/app/data/d.txt", "d\n");
    sb.almost(&["config", "set", "default_mode", "locked"])
        .expect_ok();
    sb.almost(&["lock"]).expect_ok();
    let opt_before = manifest(&sb.path("/opt"));

    let persistent = sb.new_layer("/usr/lib", &[]);
    sb.write("/usr/lib/pkg/a.txt", "changed in the persistent layer\n");
    sb.write("/usr/lib/pkg/new.txt", "new\n");
    let usr_lib_view = manifest(&sb.path("/usr/lib"));
    let temporary = sb.new_layer("/opt/app", &["--temporary"]);
    sb.write("/opt/app/data/d.txt", "changed in the temporary layer\n");
    sb.write("/opt/app/extra", "extra\n");
    let l = sb.listed(&temporary).expect("temporary listed");
    assert_eq!(l["temporary"], true, "{l}");

    // A pending timed unlock whose timer dies.
    sb.almost(&["unlock", "--for", "1h", "--yes"]).expect_ok();
    let needle = sb.root.to_string_lossy().into_owned();
    let mut timers = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            timers = pids_with_cmdline(&needle)
                .into_iter()
                .filter(|p| {
                    fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("__relock-timer"))
                })
                .collect();
            !timers.is_empty()
        }),
        "no timer process"
    );
    for &p in &timers {
        kill(p, Signal::SIGKILL);
    }

    // A stale run: almost and its command both killed.
    let pidfile = sb.dir.join("cmd.pid");
    let script = format!(
        "echo $$ > {p}.tmp; mv {p}.tmp {p}; exec sleep 300",
        p = q(&pidfile)
    );
    let run = sb.spawn(&["run", "--", "sh", "-c", &script]);
    let cmd_pid = read_pid_file(&pidfile);
    run.signal(Signal::SIGKILL);
    kill(cmd_pid, Signal::SIGKILL);
    let r = run.wait(Duration::from_secs(10));
    assert_eq!(r.signal, Some(9), "{}", r.describe());
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(cmd_pid)));
    for &p in &timers {
        assert!(wait_until(Duration::from_secs(5), || !pid_alive(p)));
    }
    let state = state_file(&sb);
    assert!(
        state["runs"].as_array().is_some_and(|r| !r.is_empty()),
        "no run recorded: {state}"
    );
    assert!(!state["relock_at"].is_null(), "no timed re-lock: {state}");

    // The reboot.
    sb.umount_overlays_by_hand();
    let r = sb.almost_json(&["boot"]);
    r.expect_ok();

    // The persistent layer is back with its changes.
    let l = sb.listed(&persistent).expect("persistent layer gone");
    assert_eq!(l["mounted"], true, "{l}");
    assert_eq!(sb.overlays(), vec![sb.path("/usr/lib")]);
    assert_manifest_eq(
        "persistent layer's view after boot",
        &manifest(&sb.path("/usr/lib")),
        &usr_lib_view,
    );
    // The temporary one is gone, and so are its changes.
    assert!(
        sb.listed(&temporary).is_none(),
        "temporary layer still listed"
    );
    assert_eq!(sb.store_entries(), vec![persistent.clone()]);
    assert_manifest_eq("/opt after boot", &manifest(&sb.path("/opt")), &opt_before);

    // No stale runtime state.
    let state = state_file(&sb);
    assert!(
        state["runs"].as_array().is_none_or(|r| r.is_empty()),
        "{state}"
    );
    assert!(state["relock_at"].is_null(), "{state}");
    let st = sb.status();
    assert_eq!(st["mode"], "locked", "{st}");
    assert_eq!(st["runs"], Value::Array(vec![]), "{st}");
    assert!(st["relock_at"].is_null(), "{st}");
    assert!(
        path_entry(&st, "/usr")["overlays"]
            .as_array()
            .is_some_and(|o| o.iter().any(|p| p == "/usr/lib")),
        "{st}"
    );

    // Locked everywhere but beneath the mounted layer (the oracle's walk
    // does not enter the layer's mount).
    let usr = sb.assert_locked("/usr");
    assert!(
        usr.mount_points.contains(&sb.path("/usr/lib")),
        "the walk did not meet the layer mount"
    );
    sb.assert_locked("/opt");
    let beneath = flag_map_of(&sb.lower("/usr/lib"));
    assert!(
        beneath.values().all(|&i| !i),
        "the tree beneath the mounted layer has locked entries: {beneath:?}"
    );
    sb.assert_clean_outside(&["/usr", "/opt"]);
    sb.finish();
}
