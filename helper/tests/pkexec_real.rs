// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost` through the real pkexec, as the panel runs it: a user (here
//! `nobody`) runs `pkexec almost …`, polkitd decides, and almost runs as
//! root with `PKEXEC_UID` set by pkexec itself.
//!
//! pkexec talks to the system bus at its fixed socket (it ignores
//! `DBUS_SYSTEM_BUS_ADDRESS`), so each invocation runs through
//! `build-aux/with-polkit.sh`: a mount namespace of its own (inside the
//! test's already private one), a tmpfs over `/run` holding a private
//! `dbus-daemon`'s socket, `polkitd` started by hand on it, and bind mounts
//! that put the policy under test (with `@bindir@` filled in) in
//! `/usr/share/polkit-1/actions` and a test rule in `/etc/polkit-1/rules.d`.
//! The daemons are stopped and the namespace vanishes when the invocation
//! ends; the machine's own polkit and bus are never touched.
//!
//! Skipped, with a message, when pkexec or polkitd is not installed
//! (build-aux/install-deps.sh installs both).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{ALMOST, Run, Sandbox, Spawned};

const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
const PKEXEC: &str = "/usr/bin/pkexec";

/// A rule that lets `nobody` run almost without authenticating (there is
/// no authentication agent in a test).
const ALLOW_NOBODY: &str = r#"polkit.addRule(function(action, subject) {
    if (action.id == "org.almost.almost" && subject.user == "nobody") {
        return polkit.Result.YES;
    }
});
"#;

/// Runs a command where pkexec works against a private polkitd (a mount
/// namespace with a tmpfs over /run, a private system bus, the policy and
/// rules bind-mounted); shared with the GUI tests.
const WITH_POLKIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../build-aux/with-polkit.sh");

struct Polkit {
    dir: tempfile::TempDir,
}

impl Polkit {
    fn new(allow_nobody: bool) -> Polkit {
        let dir = tempfile::Builder::new()
            .prefix("almost-polkit-")
            .tempdir()
            .expect("tempdir");
        let actions = dir.path().join("actions");
        let rules = dir.path().join("rules");
        std::fs::create_dir(&actions).expect("mkdir");
        std::fs::create_dir(&rules).expect("mkdir");
        let bindir = Path::new(ALMOST).parent().expect("bindir");
        let policy = include_str!("../../data/org.almost.policy.in")
            .replace("@bindir@", &bindir.display().to_string());
        std::fs::write(actions.join("org.almost.policy"), policy).expect("write policy");
        if allow_nobody {
            std::fs::write(rules.join("50-almost-test.rules"), ALLOW_NOBODY).expect("rule");
        }
        // polkitd runs as its own user and must read the files.
        for p in [dir.path(), &actions, &rules] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Polkit { dir }
    }

    /// `nobody$ pkexec ALMOST args…` in a namespace with polkitd running.
    fn pkexec(&self, args: &[&str]) -> Run {
        let mut c = Command::new("bash");
        c.arg(WITH_POLKIT)
            .arg(self.dir.path())
            .args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ])
            .args([
                "env",
                "-i",
                "SHELL=/bin/sh",
                "PATH=/usr/bin:/bin",
                "LC_ALL=C.UTF-8",
            ])
            .arg(PKEXEC)
            .arg(ALMOST)
            .args(args)
            .env("POLKITD", POLKITD);
        Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT)
    }
}

fn available() -> bool {
    let ok = Path::new(POLKITD).exists() && Path::new(PKEXEC).exists();
    if !ok {
        eprintln!("SKIPPED: pkexec or polkitd is not installed (build-aux/install-deps.sh)");
    }
    ok
}

fn root_arg(sb: &Sandbox) -> String {
    sb.root.display().to_string()
}

#[test]
fn through_the_real_pkexec() {
    common::assert_private_mount_namespace();
    if !available() {
        return;
    }
    let sb = Sandbox::new();
    let root = root_arg(&sb);
    let polkit = Polkit::new(true);

    // Authorised by the rule: almost runs as root, with PKEXEC_UID.
    let r = polkit.pkexec(&["--root", &root, "--json", "lock"]);
    r.expect_ok();
    assert_eq!(r.result()["mode"], "locked", "{}", r.describe());
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    let log = String::from_utf8_lossy(&sb.read("/var/log/almost.log")).into_owned();
    let entry: serde_json::Value =
        serde_json::from_str(log.lines().last().expect("an entry")).expect("JSON");
    assert_eq!(entry["pkexec_uid"], 65534, "{entry}");
    assert_eq!(entry["euid"], 0, "{entry}");
    assert_eq!(entry["command"], "lock");

    // A root others may write to is refused, even for an authorised user.
    std::fs::set_permissions(&sb.root, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let r = polkit.pkexec(&["--root", &root, "unlock", "--yes"]);
    r.expect_code(5);
    assert!(
        r.stderr.contains("writable by group or others"),
        "{}",
        r.describe()
    );
    std::fs::set_permissions(&sb.root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    sb.assert_locked("/usr");

    // Test-only options are refused under pkexec.
    polkit
        .pkexec(&["--root", &root, "--system-bus", "unix:path=/x", "status"])
        .expect_code(2);
    polkit
        .pkexec(&["--root", &root, "--journal-socket", "/x", "status"])
        .expect_code(2);

    let r = polkit.pkexec(&["--root", &root, "unlock", "--yes"]);
    r.expect_ok();
    sb.assert_unlocked("/usr");
}

#[test]
fn not_authorised_without_a_rule() {
    common::assert_private_mount_namespace();
    if !available() {
        return;
    }
    let sb = Sandbox::new();
    let root = root_arg(&sb);
    // allow_active is auth_admin_keep, and nobody is in no active session
    // and has no agent: pkexec says not authorised (127), almost never runs.
    let polkit = Polkit::new(false);
    let r = polkit.pkexec(&["--root", &root, "lock"]);
    r.expect_code(127);
    assert!(r.stderr.contains("Not authorized"), "{}", r.describe());
    sb.assert_clean_outside(&[]);
    assert!(!sb.path("/var/log/almost.log").exists());
}
