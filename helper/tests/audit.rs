// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the audit log. In file mode (a sandbox root is never
//! the running system, so entries go to `/var/log/almost.log` under it):
//! one JSON line per privileged act — lock, unlock, run, config set, a
//! timed re-lock, refusals — with who, the command line, the paths and the
//! result; nothing for what is not privileged; and `almost log` showing
//! the recent entries. In journal mode (the test-only `--journal-socket`
//! stands in for `--root /`): the same entries through a real, private
//! systemd-journald, read back by `almost log` and by journalctl.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{Sandbox, Spawned, wait_until};
use serde_json::Value;

/// Every entry of the file log, the starts of acts included.
fn all_entries(sb: &Sandbox) -> Vec<Value> {
    let text = std::fs::read_to_string(sb.path("/var/log/almost.log")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// The entries that end an act (without the `started` ones).
fn entries(sb: &Sandbox) -> Vec<Value> {
    all_entries(sb)
        .into_iter()
        .filter(|v| v["result"] != "started")
        .collect()
}

fn with_env(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> common::Run {
    let mut c: Command = sb.command(args);
    for (k, v) in env {
        c.env(k, v);
    }
    Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT)
}

#[test]
fn every_privileged_act_is_recorded() {
    let sb = Sandbox::new();
    sb.almost(&["status"]).expect_ok();
    sb.almost(&["config", "show"]).expect_ok();
    sb.almost(&["apt-guard"]).expect_ok();
    assert!(
        !sb.path("/var/log/almost.log").exists(),
        "something unprivileged was recorded: {:?}",
        entries(&sb)
    );

    sb.almost(&["lock"]).expect_ok();
    let mut c = sb.command_pkexec_order(&["unlock", "--yes"]);
    c.env("PKEXEC_UID", "1000");
    Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT).expect_ok();
    with_env(
        &sb,
        &["run", "--", "sh", "-c", "exit 3"],
        &[("SUDO_UID", "1234")],
    )
    .expect_code(3);
    sb.almost(&["config", "set", "default_mode", "unlocked"])
        .expect_ok();
    sb.almost(&["config", "set", "paths", "/etc"])
        .expect_code(5);
    // Refused: not root. A user cannot append to root's log file (in the
    // journal, which every user may write to, it would be recorded).
    let refused = sb.almost_as_nobody(&["-v", "lock"]);
    refused.expect_code(3);
    assert!(
        refused.stderr.contains("cannot record the attempt"),
        "{}",
        refused.describe()
    );

    let log = sb.path("/var/log/almost.log");
    let mode = std::fs::metadata(&log).expect("log").permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the audit log is readable by others");
    let e = entries(&sb);
    let commands: Vec<&str> = e.iter().map(|v| v["command"].as_str().unwrap()).collect();
    assert_eq!(
        commands,
        ["lock", "unlock", "run", "config", "config"],
        "{e:#?}"
    );
    for v in &e {
        assert_eq!(v["uid"], 0);
        assert_eq!(v["euid"], 0);
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
        let argv: Vec<&str> = v["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let root = sb.root.to_str().unwrap();
        assert!(
            argv[1..3] == ["--root", root] || argv[2..4] == ["--root", root],
            "{v}"
        );
    }
    assert_eq!(e[0]["result"], "ok");
    assert_eq!(e[0]["exit_code"], 0);
    assert_eq!(e[0]["paths"], serde_json::json!(["/usr", "/opt"]));
    assert_eq!(e[0]["pkexec_uid"], Value::Null);
    assert_eq!(e[1]["pkexec_uid"], 1000, "{}", e[1]);
    assert_eq!(e[2]["sudo_uid"], 1234, "{}", e[2]);
    assert_eq!(
        e[2]["result"], "ok",
        "the command ran: its status is the run's"
    );
    assert_eq!(e[2]["exit_code"], 3);
    assert_eq!(e[2]["argv"].as_array().unwrap().last().unwrap(), "exit 3");
    assert_eq!(
        e[3]["paths"],
        serde_json::json!(["/etc/almost/almost.toml"])
    );
    assert_eq!(e[3]["result"], "ok");
    assert_eq!(e[4]["result"], "invalid-path");
    // Each act that passed the checks was recorded when it started too,
    // before its end, by the same process.
    let all = all_entries(&sb);
    for end in &e {
        let start = all
            .iter()
            .position(|v| v["result"] == "started" && v["pid"] == end["pid"])
            .unwrap_or_else(|| panic!("no start for {end}"));
        let stop = all.iter().position(|v| v == end).unwrap();
        assert!(start < stop, "{all:#?}");
        assert_eq!(all[start]["command"], end["command"]);
        assert_eq!(all[start]["paths"], end["paths"]);
    }
    assert_eq!(e[4]["exit_code"], 5);
    assert!(
        e[4]["message"].as_str().is_some_and(|m| m.contains("/etc")),
        "{}",
        e[4]
    );
}

#[test]
fn the_relock_timer_records_its_relock() {
    let sb = Sandbox::new();
    sb.almost(&["unlock", "--yes", "--for", "1s"]).expect_ok();
    assert!(
        wait_until(Duration::from_secs(30), || entries(&sb)
            .iter()
            .any(|v| v["command"] == "__relock-timer")),
        "no entry from the timer: {:?}",
        entries(&sb)
    );
    let e = entries(&sb);
    let timer = e.iter().find(|v| v["command"] == "__relock-timer").unwrap();
    assert_eq!(timer["result"], "ok");
    sb.assert_locked("/usr");
}

#[test]
fn almost_log_shows_the_recent_entries() {
    let sb = Sandbox::new();
    let r = sb.almost(&["log"]);
    r.expect_ok();
    assert!(
        r.stdout.contains("No privileged act recorded yet"),
        "{}",
        r.describe()
    );
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--yes"]).expect_ok();
    sb.almost(&["config", "set", "default_mode", "keep"])
        .expect_ok();
    sb.almost(&["lock"]).expect_ok();

    let r = sb.almost(&["log", "-n", "3"]);
    r.expect_ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.describe());
    assert!(
        lines[1].contains(" lock (uid 0): started [/usr, /opt]"),
        "{}",
        r.describe()
    );
    assert!(
        lines[0].contains("config set default_mode keep (uid 0): ok"),
        "{}",
        r.describe()
    );
    assert!(
        lines[2].contains(" lock (uid 0): ok [/usr, /opt]"),
        "{}",
        r.describe()
    );

    let r = sb.almost_json(&["log", "--lines", "10"]);
    r.expect_ok();
    let result = r.result();
    let commands: Vec<&str> = result["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["result"] != "started")
        .map(|v| v["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["lock", "unlock", "config", "lock"]);
    // Reading the log is not an act of its own.
    assert_eq!(all_entries(&sb).len(), 8);

    // The log is root's.
    let r = sb.almost_as_nobody(&["log"]);
    r.expect_code(3);
    assert!(r.stderr.contains("sudo almost log"), "{}", r.describe());

    // A damaged line is skipped and counted, not fatal.
    let mut text = std::fs::read(sb.path("/var/log/almost.log")).unwrap();
    text.extend_from_slice(b"{ half a line\n");
    std::fs::write(sb.path("/var/log/almost.log"), text).unwrap();
    let r = sb.almost(&["log"]);
    r.expect_ok();
    assert_eq!(r.stdout.lines().count(), 8, "{}", r.describe());
    assert!(
        r.stderr
            .contains("1 lines of the audit log are not entries"),
        "{}",
        r.describe()
    );
}

/// Runs `script` (bash, with `$ALMOST`, `$ROOT` and `$OUT` set) beside a
/// private systemd-journald (build-aux/with-journald.sh); its files land in
/// the returned directory.
fn with_journald(sb: &Sandbox, script: &str) -> (tempfile::TempDir, common::Run) {
    let out = tempfile::Builder::new()
        .prefix("almost-journal-")
        .tempdir()
        .expect("tempdir");
    let mut c = Command::new("bash");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../build-aux/with-journald.sh"
    ))
    .args(["bash", "-c", script])
    .env("ALMOST", common::ALMOST)
    .env("ROOT", &sb.root)
    .env("OUT", out.path());
    let run = Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT);
    (out, run)
}

fn read(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

// Journal mode against a real journald: a lock by root (its start and its
// end) and a lock refused to nobody are sent as native-protocol
// datagrams; journalctl shows them with the fields almost sets
// (identifier, priority, command, result, the whole entry) and the
// credentials journald adds itself (_UID 0 and 65534: a caller cannot
// forge them). Attack (issue 12): any user can write to the journal under
// the identifier almost, a whole ALMOST_ENTRY included, to forge or bury
// entries. `almost log` reads back only what root sent: the start and the
// end of the lock, oldest first, not nobody's forged entry nor its logger
// line (nor its refused attempt, which cannot be told from a forgery);
// nothing is written to the file under the root.
#[test]
fn journal_mode_through_a_real_journald() {
    common::assert_private_mount_namespace();
    if !std::path::Path::new("/lib/systemd/systemd-journald").exists() {
        eprintln!("SKIPPED: systemd-journald is not installed (build-aux/install-deps.sh)");
        return;
    }
    let sb = Sandbox::new();
    let (out, run) = with_journald(
        &sb,
        r#"
A=("$ALMOST" --root "$ROOT" --journal-socket /run/systemd/journal/socket)
"${A[@]}" --json lock >"$OUT/lock.out" 2>"$OUT/lock.err"
echo $? >"$OUT/lock.rc"
setpriv --reuid=65534 --regid=65534 --clear-groups "${A[@]}" lock >"$OUT/refused.out" 2>"$OUT/refused.err"
echo $? >"$OUT/refused.rc"
# A user forging an entry of almost's, whole ALMOST_ENTRY field included
# (logger --journald sends the fields as given, natively), and a plain
# `logger -t almost` line.
forged='{"time":"2030-01-01T00:00:00Z","uid":0,"euid":0,"pkexec_uid":null,"sudo_uid":null,"login_uid":null,"pid":1,"command":"unlock","argv":["almost","unlock"],"paths":["/usr"],"result":"ok","exit_code":0,"message":null}'
printf 'SYSLOG_IDENTIFIER=almost\nMESSAGE=forged\nALMOST_ENTRY=%s\n' "$forged" |
    setpriv --reuid=65534 --regid=65534 --clear-groups logger --journald
setpriv --reuid=65534 --regid=65534 --clear-groups logger -t almost "almost unlock (uid 0): ok"
# journald writes what it receives on its own time: wait for all four.
for _ in $(seq 100); do
    [ "$(journalctl -t almost -o json --all | grep -c ALMOST_ENTRY)" -ge 4 ] && break
    sleep 0.1
done
journalctl -t almost -o json --all >"$OUT/journal.out" 2>"$OUT/journal.err"
"${A[@]}" --json log -n 10 >"$OUT/log.out" 2>"$OUT/log.err"
echo $? >"$OUT/log.rc"
"#,
    );
    run.expect_ok();
    let dir = out.path();
    let said = |name: &str| {
        format!(
            "{name}: {}{}",
            read(dir, &format!("{name}.out")),
            read(dir, &format!("{name}.err"))
        )
    };
    assert_eq!(read(dir, "lock.rc").trim(), "0", "{}", said("lock"));
    assert_eq!(read(dir, "refused.rc").trim(), "3", "{}", said("refused"));
    sb.assert_locked("/usr");
    assert!(
        !sb.path("/var/log/almost.log").exists(),
        "journal mode wrote the file too: {:?}",
        entries(&sb)
    );

    let journal: Vec<Value> = read(dir, "journal.out")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &Value| v.get("ALMOST_ENTRY").is_some())
        .collect();
    assert_eq!(journal.len(), 4, "{}", said("journal"));
    let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    assert_eq!(field(&journal[0], "ALMOST_RESULT"), "started");
    assert_eq!(field(&journal[0], "PRIORITY"), "5");
    assert_eq!(field(&journal[0], "_UID"), "0", "journald's credential");
    assert_eq!(field(&journal[1], "SYSLOG_IDENTIFIER"), "almost");
    assert_eq!(field(&journal[1], "ALMOST_COMMAND"), "lock");
    assert_eq!(field(&journal[1], "ALMOST_RESULT"), "ok");
    assert_eq!(field(&journal[1], "PRIORITY"), "5");
    assert_eq!(field(&journal[1], "_UID"), "0", "journald's credential");
    assert_eq!(field(&journal[1], "_TRANSPORT"), "journal");
    assert_eq!(field(&journal[2], "ALMOST_RESULT"), "not-root");
    assert_eq!(field(&journal[2], "PRIORITY"), "4");
    assert_eq!(field(&journal[2], "_UID"), "65534", "journald's credential");
    assert_eq!(field(&journal[3], "MESSAGE"), "forged");
    assert_eq!(field(&journal[3], "_UID"), "65534", "journald's credential");
    let first: Value = serde_json::from_str(&field(&journal[1], "ALMOST_ENTRY")).expect("entry");
    assert_eq!(first["paths"], serde_json::json!(["/usr", "/opt"]));

    assert_eq!(read(dir, "log.rc").trim(), "0", "{}", said("log"));
    let log = read(dir, "log.out");
    let result: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "result")
        .unwrap_or_else(|| panic!("no result: {}", said("log")));
    let results: Vec<&str> = result["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["started", "ok"], "{result}");
}

// The end of every privileged act is marked in /run/almost/acted (what an
// open panel watches to read the state again), and nothing read-only marks
// it, or a panel reading the state would wake itself up: a status, a layer
// list and a config show as root leave it absent; a lock, an unlock and a
// config set each write it, after their change (the flags are already set
// when the file appears).
#[test]
fn the_end_of_each_act_is_marked_and_reads_do_not_mark() {
    let sb = Sandbox::new();
    let acted = sb.path("/run/almost/acted");
    sb.almost(&["lock"]).expect_ok();
    assert!(acted.exists(), "lock did not mark its end");
    sb.assert_locked("/usr");
    std::fs::remove_file(&acted).expect("rm acted");
    for args in [
        &["status"][..],
        &["layer", "list"],
        &["config", "show"],
        &["log"],
    ] {
        sb.almost(args).expect_ok();
        assert!(!acted.exists(), "{args:?} marked an act");
    }
    for args in [
        &["unlock", "--yes"][..],
        &["config", "set", "default_mode", "unlocked"],
    ] {
        sb.almost(args).expect_ok();
        assert!(acted.exists(), "{args:?} did not mark its end");
        std::fs::remove_file(&acted).expect("rm acted");
    }
    // A layer: made (marked), diffed (privileged, but only a read: not
    // marked), discarded (marked).
    let r = sb.almost_json(&["layer", "new", "/usr"]);
    r.expect_ok();
    let id = r.result()["id"].as_str().expect("id").to_owned();
    assert!(acted.exists(), "layer new did not mark its end");
    std::fs::remove_file(&acted).expect("rm acted");
    sb.almost(&["layer", "diff", &id]).expect_ok();
    assert!(!acted.exists(), "layer diff marked an act");
    sb.almost(&["layer", "discard", &id, "--yes"]).expect_ok();
    assert!(acted.exists(), "layer discard did not mark its end");
}

// Attack (issue 12): an act was recorded only when it ended, so a `run`
// whose almost was killed (SIGKILL: no handler runs) left no trace.
// Checks: the start of the run is in the log, with its command line, before
// almost is killed; no end entry follows.
#[test]
fn a_killed_run_leaves_its_start_in_the_log() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let pid_file = sb.dir.join("child.pid");
    let script = format!("echo $$ > {}; exec sleep 60", common::q(&pid_file));
    let run = sb.spawn(&["run", "--", "sh", "-c", &script]);
    let child = common::read_pid_file(&pid_file);
    run.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = run.wait(common::DEFAULT_TIMEOUT);
    common::kill(child, nix::sys::signal::Signal::SIGKILL);
    let all = all_entries(&sb);
    let runs: Vec<&Value> = all.iter().filter(|v| v["command"] == "run").collect();
    assert_eq!(runs.len(), 1, "{all:#?}");
    assert_eq!(runs[0]["result"], "started");
    assert!(
        runs[0]["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == &Value::from(script.as_str())),
        "{all:#?}"
    );
    // The next almost restores the lock (the run is dead).
    sb.almost(&["lock"]).expect_ok();
}
