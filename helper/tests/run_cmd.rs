// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of `almost run`: the exit status of the command is passed
//! through, the command can write into the managed trees, the mode that was
//! there before is restored after success, failure and signals, a killed
//! `almost` is repaired by the next invocation once its command has ended,
//! and concurrent runs share the unlock. `almost shell` (the original
//! almost's spelling) is `run` of the invoking user's login shell.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{Sandbox, pid_alive, q, read_pid_file, wait_for_file, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;

// Checks: the exit code is the command's (7, 0, 127 for a
// missing command, 126 for a non-executable one, 128+N for a signal), and a
// locked system is locked again after each.
#[test]
fn exit_status_is_passed_through() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["run", "--", "sh", "-c", "exit 7"])
        .expect_code(7);
    sb.assert_locked("/usr");
    sb.almost(&["run", "--", "true"]).expect_ok();
    sb.almost(&["run", "sh", "-c", "exit 3"]).expect_code(3);
    sb.almost(&["run", "--", "/nonexistent/almost-test-cmd"])
        .expect_code(127);
    let not_exec = sb.dir.join("not-executable");
    fs::write(&not_exec, "#!/bin/sh\nexit 0\n").expect("write");
    sb.almost(&["run", "--", not_exec.to_str().expect("utf-8")])
        .expect_code(126);
    sb.almost(&["run", "--", "sh", "-c", "kill -TERM $$"])
        .expect_code(128 + 15);
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    assert_eq!(sb.status()["mode"], "locked");
}

// Checks: during the run the command can create and modify
// files in /usr and /opt; afterwards everything, the new files included, is
// locked again — after success and after failure.
#[test]
fn command_writes_and_lock_is_restored() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    assert!(
        fs::write(sb.path("/usr/bin/tool"), "x").is_err(),
        "locked file was writable before the run"
    );
    let script = format!(
        "set -e; echo new > {}; echo more >> {}; mkdir {}; echo n > {}/f",
        q(&sb.path("/usr/bin/new-file")),
        q(&sb.path("/usr/bin/tool")),
        q(&sb.path("/opt/newdir")),
        q(&sb.path("/opt/newdir")),
    );
    sb.almost(&["run", "--", "sh", "-c", &script]).expect_ok();
    assert_eq!(sb.read("/usr/bin/new-file"), b"new\n");
    assert!(String::from_utf8_lossy(&sb.read("/usr/bin/tool")).ends_with("more\n"));
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    assert!(sb.has_i("/usr/bin/new-file") && sb.has_i("/opt/newdir/f"));

    let script = format!("echo fail > {}; exit 1", q(&sb.path("/usr/bin/on-failure")));
    sb.almost(&["run", "--", "sh", "-c", &script])
        .expect_code(1);
    assert_eq!(sb.read("/usr/bin/on-failure"), b"fail\n");
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
}

// Checks: an unlocked system stays unlocked after run, after
// success and failure; a partial one is locked again.
#[test]
fn unlocked_stays_unlocked_partial_gets_locked() {
    let sb = Sandbox::new();
    sb.almost(&["run", "--", "true"]).expect_ok();
    sb.assert_unlocked("/usr");
    sb.almost(&["run", "--", "sh", "-c", "exit 2"])
        .expect_code(2);
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");
    assert_eq!(sb.status()["mode"], "unlocked");

    sb.almost(&["lock"]).expect_ok();
    let st = std::process::Command::new("chattr")
        .arg("-i")
        .arg(sb.path("/usr/bin/tool"))
        .status()
        .expect("chattr");
    assert!(st.success());
    assert_eq!(sb.status()["mode"], "partial");
    sb.almost(&["run", "--", "true"]).expect_ok();
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
}

/// Starts a run whose command traps `sig`, waits until it runs, sends `sig`
/// to `almost`, and checks the command got it and the lock came back.
fn signal_reaches_command(sig: Signal, trap: &str, code: i32) {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let started = sb.dir.join("started");
    let script = format!(
        "trap 'exit {code}' {trap}; touch {}; while :; do sleep 0.1; done",
        q(&started)
    );
    let run = sb.spawn(&["run", "--", "sh", "-c", &script]);
    wait_for_file(&started);
    sb.assert_unlocked("/usr");
    run.signal(sig);
    let r = run.wait(Duration::from_secs(30));
    r.expect_code(code);
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    assert_eq!(sb.status()["mode"], "locked");
}

// Checks: SIGTERM sent to almost reaches the command (which
// exits 42 from its trap), almost exits 42 and the lock is restored.
#[test]
fn sigterm_is_forwarded_and_state_restored() {
    signal_reaches_command(Signal::SIGTERM, "TERM", 42);
}

// Checks: the same for SIGINT.
#[test]
fn sigint_is_forwarded_and_state_restored() {
    signal_reaches_command(Signal::SIGINT, "INT", 43);
}

// Checks: the same for SIGHUP (documented as forwarded too).
#[test]
fn sighup_is_forwarded_and_state_restored() {
    signal_reaches_command(Signal::SIGHUP, "HUP", 44);
}

/// A command that writes its pid to `pidfile` as soon as it runs, then
/// waits for `go` to exist and exits 0.
fn pid_then_wait(pidfile: &Path, go: &Path) -> String {
    let p = q(pidfile);
    format!(
        "echo $$ > {p}.tmp; mv {p}.tmp {p}; while [ ! -e {} ]; do sleep 0.05; done; exit 0",
        q(go)
    )
}

// Checks: almost killed with SIGKILL while its command runs:
// while the command is alive nobody re-locks under it (status leaves the
// tree unlocked); once the command has ended, the next `almost status` run
// as root restores the locked state.
#[test]
fn sigkill_of_almost_is_repaired_by_next_status() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let pidfile = sb.dir.join("cmd.pid");
    let go = sb.dir.join("go");
    let script = pid_then_wait(&pidfile, &go);
    let run = sb.spawn(&["run", "--", "sh", "-c", &script]);
    let cmd_pid = read_pid_file(&pidfile);
    run.signal(Signal::SIGKILL);
    let r = run.wait(Duration::from_secs(10));
    assert_eq!(r.signal, Some(9), "{}", r.describe());

    if pid_alive(cmd_pid) {
        let st = sb.almost_json(&["status"]);
        st.expect_ok();
        sb.assert_unlocked("/usr");
        assert_ne!(
            st.result()["mode"],
            "locked",
            "status re-locked while the command still runs\n{}",
            st.describe()
        );
    } else {
        eprintln!("note: the command died with almost; the 'still running' half is skipped");
    }
    fs::write(&go, "").expect("touch go");
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(cmd_pid)),
        "the command did not end"
    );
    // The next invocation restores the lock.
    let st = sb.almost_json(&["status"]);
    st.expect_ok();
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    let st = sb.status();
    assert_eq!(st["mode"], "locked", "{st}");
    assert_eq!(st["runs"], Value::Array(vec![]), "{st}");
}

// Checks: the command never runs before its pid is recorded. strace holds
// almost for a second after each clone (the spawn of the command included);
// the command writes its pid file as soon as it runs, and almost is killed
// then. Had the command started before almost recorded it, the run would
// know no command and the next `status` would lock the tree under it (it
// did, in about one run in seven under load, before the command was held
// until its pid was saved).
#[test]
fn a_command_never_runs_before_its_pid_is_recorded() {
    if !common::strace_available() {
        return;
    }
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let pidfile = sb.dir.join("cmd.pid");
    let go = sb.dir.join("go");
    let script = pid_then_wait(&pidfile, &go);
    let mut c = std::process::Command::new("strace");
    c.args([
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=clone,clone3",
        "-e",
        "inject=clone,clone3:delay_exit=1000000",
    ])
    .arg(common::ALMOST)
    .arg("--root")
    .arg(&sb.root)
    .args(["run", "--", "sh", "-c", &script]);
    let run = common::Spawned::spawn(c);
    let cmd_pid = read_pid_file(&pidfile);
    // almost is the command's parent (strace traces it, it is not a shell).
    let stat = fs::read_to_string(format!("/proc/{cmd_pid}/stat")).expect("command's stat");
    let ppid: i32 = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split(' ').nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    common::kill(ppid, Signal::SIGKILL);
    let r = run.wait(Duration::from_secs(20));
    assert!(r.code.is_some() || r.signal.is_some(), "{}", r.describe());
    assert!(pid_alive(cmd_pid), "the command died with almost");

    let st = sb.almost_json(&["status"]);
    st.expect_ok();
    sb.assert_unlocked("/usr");
    assert_ne!(
        st.result()["mode"],
        "locked",
        "status locked the tree under a running command\n{}",
        st.describe()
    );
    fs::write(&go, "").expect("touch go");
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(cmd_pid)),
        "the command did not end"
    );
    sb.almost_json(&["status"]).expect_ok();
    sb.assert_locked("/usr");
}

// Checks: two concurrent runs share the unlock: status lists
// both; when the first ends the tree stays unlocked and the second can still
// write into /usr; when the second ends the tree is locked.
#[test]
fn concurrent_runs_last_one_restores() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let script = |name: &str, write: &Path| {
        format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.05; done; echo {name} > {}",
            q(&sb.dir.join(format!("{name}-started"))),
            q(&sb.dir.join(format!("{name}-go"))),
            q(write)
        )
    };
    let a = sb.spawn(&[
        "run",
        "--",
        "sh",
        "-c",
        &script("a", &sb.path("/usr/bin/from-a")),
    ]);
    wait_for_file(&sb.dir.join("a-started"));
    let b = sb.spawn(&[
        "run",
        "--",
        "sh",
        "-c",
        &script("b", &sb.path("/usr/bin/from-b")),
    ]);
    wait_for_file(&sb.dir.join("b-started"));

    let st = sb.status();
    assert_eq!(
        st["runs"].as_array().map(Vec::len),
        Some(2),
        "status does not list both runs: {st}"
    );
    assert!(
        !st["restore"].is_null(),
        "no restore mode while runs are active: {st}"
    );

    fs::write(sb.dir.join("a-go"), "").expect("touch");
    a.wait(Duration::from_secs(30)).expect_ok();
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");

    fs::write(sb.dir.join("b-go"), "").expect("touch");
    b.wait(Duration::from_secs(30)).expect_ok();
    assert_eq!(sb.read("/usr/bin/from-b"), b"b\n");
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    let st = sb.status();
    assert_eq!(st["mode"], "locked");
    assert_eq!(st["runs"], Value::Array(vec![]), "{st}");
}

// Checks: `run` as `nobody` exits 3 before starting the command (the marker
// file is not created) and leaves the tree locked.
#[test]
fn run_needs_root_and_does_not_start_the_command() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let marker = sb.dir.join("marker");
    let script = format!("touch {}", q(&marker));
    sb.almost_as_nobody(&["run", "--", "sh", "-c", &script])
        .expect_code(3);
    assert!(!marker.exists(), "the command ran");
    sb.assert_locked("/usr");
}

// Checks: under --json the command's stdout goes to almost's stderr, so
// almost's stdout holds only its own events (one result with the command's
// exit code), even when the command prints a line that looks like one;
// without --json the command's stdout is almost's stdout byte for byte.
#[test]
fn json_keeps_the_command_output_off_stdout() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let script = r#"printf '%s\n' '{"event":"result","protocol":1,"command":"run","exit_code":0}'; printf 'plain\n'; printf 'to-err\n' >&2; exit 3"#;
    let r = sb.almost_json(&["run", "--", "sh", "-c", script]);
    r.expect_code(3);
    let events = r.json();
    assert!(
        events
            .iter()
            .all(|e| e["event"] != "result" || e["command"] == "run"),
        "{}",
        r.describe()
    );
    let result = r.result();
    assert_eq!(result["exit_code"], 3, "{}", r.describe());
    assert!(!r.stdout.contains("plain"), "{}", r.describe());
    assert!(r.stderr.contains("plain\n"), "{}", r.describe());
    assert!(
        r.stderr
            .contains(r#"{"event":"result","protocol":1,"command":"run","exit_code":0}"#),
        "{}",
        r.describe()
    );
    assert!(r.stderr.contains("to-err\n"), "{}", r.describe());
    sb.assert_locked("/usr");

    let t = sb.almost(&["run", "--", "sh", "-c", "printf 'a\\0b\\nc'"]);
    t.expect_ok();
    assert_eq!(t.stdout, "a\0b\nc", "{}", t.describe());
    sb.assert_locked("/usr");
}

/// A run whose command waits for `NAME-go` (after touching `NAME-started`)
/// and then writes `NAME` into `write` (inside /usr): it fails if the tree
/// was locked under it.
fn waiting_run(sb: &Sandbox, name: &str, write: &str) -> common::Spawned {
    let script = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.05; done; echo {name} > {}",
        q(&sb.dir.join(format!("{name}-started"))),
        q(&sb.dir.join(format!("{name}-go"))),
        q(&sb.path(write))
    );
    let run = sb.spawn(&["run", "--", "sh", "-c", &script]);
    wait_for_file(&sb.dir.join(format!("{name}-started")));
    run
}

// Checks: while an `almost run` is under way, `lock` (and `enter ro`) is
// refused with exit 8, kind "busy", a message naming the run (pid of its
// command, the command line) and saying it locks again when it ends; the
// tree stays unlocked, so the command can still write; `unlock` under it
// is harmless (exit 0) and then the run leaves the tree unlocked; with the
// lock refused, the run ends well and locks again as before it.
#[test]
fn lock_is_refused_while_a_run_is_under_way() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let run = waiting_run(&sb, "a", "/usr/bin/from-a");
    let child = sb.status()["runs"][0]["pid"]
        .as_i64()
        .expect("the run's pid");
    for args in [&["lock"][..], &["enter", "ro"]] {
        let mut a = args.to_vec();
        a.insert(0, "--json");
        let r = sb.almost(&a);
        let e = r.expect_error(8, "busy");
        let message = e["message"].as_str().expect("message");
        assert!(
            message.contains(&format!("pid {child}")) && message.contains("while [ ! -e"),
            "the run is not named\n{}",
            r.describe()
        );
        assert!(message.contains("locks the system again"), "{message}");
        assert!(message.contains("--force"), "{message}");
        sb.assert_unlocked("/usr");
    }
    fs::write(sb.dir.join("a-go"), "").expect("touch");
    run.wait(Duration::from_secs(30)).expect_ok();
    assert_eq!(sb.read("/usr/bin/from-a"), b"a\n");
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");

    // An unlock under a run is the user's choice: the run does not undo it.
    let run = waiting_run(&sb, "b", "/usr/bin/from-b");
    sb.almost(&["unlock", "--yes"]).expect_ok();
    fs::write(sb.dir.join("b-go"), "").expect("touch");
    run.wait(Duration::from_secs(30)).expect_ok();
    assert_eq!(sb.read("/usr/bin/from-b"), b"b\n");
    sb.assert_unlocked("/usr");
    assert_eq!(sb.status()["mode"], "unlocked");
}

// Checks: `lock --force` under a run locks at once (the run's command then
// cannot write: it fails) and the tree stays locked after the run.
#[test]
fn lock_force_locks_under_a_run() {
    let sb = Sandbox::new();
    sb.almost(&["unlock", "--yes"]).expect_ok();
    let run = waiting_run(&sb, "a", "/usr/bin/from-a");
    sb.almost(&["lock", "--force"]).expect_ok();
    sb.assert_locked("/usr");
    fs::write(sb.dir.join("a-go"), "").expect("touch");
    let r = run.wait(Duration::from_secs(30));
    assert_ne!(
        r.code,
        Some(0),
        "the command wrote into a locked tree\n{}",
        r.describe()
    );
    assert!(!sb.path("/usr/bin/from-a").exists());
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
}

// Checks: `almost boot` run by hand while a run is under way does not lock
// under it (the command still writes) and warns naming the run; the
// default mode (locked) is applied when the run ends.
#[test]
fn boot_under_a_run_leaves_the_default_mode_to_its_end() {
    let sb = Sandbox::new();
    sb.write_config("default_mode = \"locked\"\n");
    sb.almost(&["unlock", "--yes"]).expect_ok();
    let run = waiting_run(&sb, "a", "/usr/bin/from-a");
    let r = sb.almost_json(&["boot"]);
    r.expect_ok();
    let warnings = r.events("warning");
    assert!(
        warnings.iter().any(|w| w["message"]
            .as_str()
            .is_some_and(|m| m.contains("while [ ! -e"))),
        "{}",
        r.describe()
    );
    sb.assert_unlocked("/usr");
    assert_eq!(sb.status()["runs"].as_array().map(Vec::len), Some(1));
    fs::write(sb.dir.join("a-go"), "").expect("touch");
    run.wait(Duration::from_secs(30)).expect_ok();
    assert_eq!(sb.read("/usr/bin/from-a"), b"a\n");
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
}

// Checks (--json-fd): with the protocol on descriptor 3, the command's
// stdout stays almost's stdout byte for byte, the JSON lines (one result with
// the command's exit code) are all in what fd 3 received, and the command
// cannot write into fd 3 (almost makes it close-on-exec).
#[test]
fn json_fd_leaves_stdout_to_the_command() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let events = sb.dir.join("events");
    let script = "printf 'out\\0put'; printf 'to-err\\n' >&2; echo intruder >&3; exit 4";
    let inner = format!(
        "exec 3>{}; exec {} --root {} --json-fd 3 run -- sh -c {}",
        q(&events),
        q(std::path::Path::new(common::ALMOST)),
        q(&sb.root),
        q(std::path::Path::new(script))
    );
    let mut c = std::process::Command::new("sh");
    c.args(["-c", &inner]);
    let r = common::Spawned::spawn(c).wait(Duration::from_secs(30));
    r.expect_code(4);
    assert_eq!(r.stdout, "out\0put", "{}", r.describe());
    assert!(r.stderr.contains("to-err"), "{}", r.describe());
    let lines = fs::read_to_string(&events).expect("events");
    assert!(!lines.contains("intruder"), "{lines}");
    let parsed: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let results: Vec<&Value> = parsed.iter().filter(|e| e["event"] == "result").collect();
    assert_eq!(results.len(), 1, "{lines}");
    assert_eq!(results[0]["exit_code"], 4, "{lines}");
    sb.assert_locked("/usr");
    // A descriptor that is not open is a usage error.
    sb.almost(&["--json-fd", "987", "status"]).expect_code(2);
}

// Checks: a timed re-lock that falls due while an `almost run` is under way
// waits for it (the timer settles, but no lock under the run: the command
// still writes after the deadline), and the run's end locks, as the timed
// unlock asked.
#[test]
fn timed_relock_waits_for_a_run() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--for", "2s", "--yes"]).expect_ok();
    let run = waiting_run(&sb, "a", "/usr/bin/from-a");
    // Past the deadline: the timer (which sleeps until it) has woken and
    // settled by now.
    std::thread::sleep(Duration::from_secs(4));
    sb.assert_unlocked("/usr");
    fs::write(sb.dir.join("a-go"), "").expect("touch");
    run.wait(Duration::from_secs(30)).expect_ok();
    assert_eq!(sb.read("/usr/bin/from-a"), b"a\n");
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
}

/// `almost --root R [--json] shell` as root, with SUDO_UID when given, the
/// script on the shell's standard input.
fn shell(sb: &Sandbox, json: bool, sudo_uid: Option<u32>, script: &str) -> std::process::Output {
    let input = sb.dir.join("shell-input");
    fs::write(&input, script).expect("write the script");
    let mut c = sb.command(if json {
        &["--json", "shell"][..]
    } else {
        &["shell"]
    });
    c.env_remove("SUDO_UID").env_remove("PKEXEC_UID");
    if let Some(uid) = sudo_uid {
        c.env("SUDO_UID", uid.to_string());
    }
    c.stdin(fs::File::open(&input).expect("open the script"))
        .output()
        .expect("run almost shell")
}

/// The sandbox's passwd database: root's shell is /bin/sh, alice's (1000)
/// /bin/bash, nobody's (65534) nologin.
fn with_passwd(sb: &Sandbox) {
    sb.write(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\n\
         alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    );
}

// Checks: `almost shell` run by sudo for alice runs alice's login shell
// from the root's passwd (bash, not root's sh), as root, in the unlocked
// system: it can write in /usr; it says on entry that the system is
// writable until the shell exits and on exit that it is protected again;
// the exit status is the shell's; the tree is locked again afterwards.
#[test]
fn shell_runs_the_sudo_users_login_shell_with_the_system_writable() {
    let sb = Sandbox::new();
    with_passwd(&sb);
    sb.almost(&["lock"]).expect_ok();
    let seen = sb.dir.join("seen");
    let script = format!(
        "touch {}\nprintf '%s %s' \"$(readlink /proc/$$/exe)\" \"$(id -u)\" > {}\nexit 3\n",
        q(&sb.path("/usr/bin/from-shell")),
        q(&seen)
    );
    let out = shell(&sb, false, Some(1000), &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(sb.path("/usr/bin/from-shell").exists(), "{stderr}");
    let bash = fs::canonicalize("/bin/bash").expect("bash");
    assert_eq!(
        fs::read_to_string(&seen).expect("the shell ran"),
        format!("{} 0", bash.display())
    );
    assert!(
        stderr.contains("writable until you leave this shell"),
        "{stderr}"
    );
    assert!(stderr.contains("protected again"), "{stderr}");
    let entered = stderr.find("writable until").unwrap();
    let left = stderr.find("protected again").unwrap();
    assert!(entered < left, "{stderr}");
    sb.assert_locked("/usr");
    assert!(sb.has_i("/usr/bin/from-shell"));
}

// Checks: without sudo the shell is root's (from the root's passwd: sh);
// a sudo user whose shell refuses logins (nologin), or who has no entry,
// gets root's too; an unlocked system stays unlocked and the exit says
// so; with --json the answer is `run`'s (command `run`, the exit code,
// the restart list) and the entry and exit lines are not printed.
#[test]
fn shell_falls_back_to_roots_shell_and_answers_as_run() {
    let sb = Sandbox::new();
    with_passwd(&sb);
    sb.almost(&["lock"]).expect_ok();
    let seen = sb.dir.join("seen");
    let script = format!("readlink /proc/$$/exe > {}\n", q(&seen));
    let sh = fs::canonicalize("/bin/sh").expect("sh");
    for sudo in [None, Some(65534), Some(4242)] {
        let out = shell(&sb, false, sudo, &script);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            fs::read_to_string(&seen).expect("the shell ran").trim(),
            sh.to_str().unwrap(),
            "sudo uid {sudo:?}"
        );
    }
    let out = shell(&sb, true, Some(1000), "exit 0\n");
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let result = lines.last().expect("a result");
    assert_eq!(result["event"], "result");
    assert_eq!(result["command"], "run");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["restart"], Value::Array(vec![]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("writable until"), "{stderr}");
    sb.assert_locked("/usr");

    sb.almost(&["unlock", "--yes"]).expect_ok();
    let out = shell(&sb, false, None, "exit 0\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stay writable"), "{stderr}");
    sb.assert_unlocked("/usr");
}

// Attack: `pkexec almost shell` would give whoever polkit let through a
// root shell. Checks: under pkexec (PKEXEC_UID set, the subcommand first)
// it is refused as `run` is, exit 12 `forbidden` saying to use sudo, and
// no shell starts (its script would leave a marker); the tree stays locked.
#[test]
fn shell_is_refused_under_pkexec() {
    let sb = Sandbox::new();
    with_passwd(&sb);
    sb.almost(&["lock"]).expect_ok();
    let marker = sb.dir.join("shell-ran");
    let input = sb.dir.join("shell-input");
    fs::write(&input, format!("touch {}\n", q(&marker))).unwrap();
    let mut c = sb.command_pkexec_order(&["shell", "--json"]);
    c.env("PKEXEC_UID", "1000")
        .stdin(fs::File::open(&input).unwrap());
    let out = c.output().expect("run almost");
    assert_eq!(out.status.code(), Some(12), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err: Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON");
    assert_eq!(err["kind"], "forbidden");
    assert!(err["message"].as_str().unwrap().contains("sudo"), "{err}");
    assert!(!marker.exists(), "a shell ran under pkexec");
    sb.assert_locked("/usr");
}
