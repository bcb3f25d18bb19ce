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
const POLKIT_ACTIONS: &str = "/usr/share/polkit-1/actions";

/// A site rule that lets `nobody` lock and unlock without authenticating
/// (there is no authentication agent in a test), and nothing else.
const ALLOW_NOBODY: &str = r#"polkit.addRule(function(action, subject) {
    if ((action.id == "org.almost.lock" || action.id == "org.almost.unlock")
        && subject.user == "nobody") {
        return polkit.Result.YES;
    }
});
"#;

/// A rule that lets `nobody` run anything through pkexec (the generic
/// `org.freedesktop.policykit.exec` action too): what almost itself still
/// refuses then shows.
const ALLOW_NOBODY_EVERYTHING: &str = r#"polkit.addRule(function(action, subject) {
    if (subject.user == "nobody") {
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
    fn new(rule: Option<&str>) -> Polkit {
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
        // polkit's own actions, as on a real system: pkexec falls back to
        // org.freedesktop.policykit.exec for a command line that matches
        // no action of ours.
        let own = Path::new(POLKIT_ACTIONS).join("org.freedesktop.policykit.policy");
        std::fs::copy(&own, actions.join("org.freedesktop.policykit.policy"))
            .unwrap_or_else(|e| panic!("{}: {e}", own.display()));
        if let Some(rule) = rule {
            std::fs::write(rules.join("50-almost-test.rules"), rule).expect("rule");
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
    let polkit = Polkit::new(Some(ALLOW_NOBODY));

    // Authorised by the rule: almost runs as root, with PKEXEC_UID.
    let r = polkit.pkexec(&["lock", "--root", &root, "--json"]);
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
    let r = polkit.pkexec(&["unlock", "--root", &root, "--yes"]);
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
        .pkexec(&["unlock", "--root", &root, "--system-bus", "unix:path=/x"])
        .expect_code(2);
    polkit
        .pkexec(&["unlock", "--root", &root, "--journal-socket", "/x"])
        .expect_code(2);

    let r = polkit.pkexec(&["unlock", "--root", &root, "--yes"]);
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
    let polkit = Polkit::new(None);
    let r = polkit.pkexec(&["lock", "--root", &root]);
    r.expect_code(127);
    assert!(r.stderr.contains("Not authorized"), "{}", r.describe());
    sb.assert_clean_outside(&[]);
    assert!(!sb.path("/var/log/almost.log").exists());
}

// Attack: one polkit action for everything, so a site rule meant for lock
// and unlock let its users do anything almost does, `run` (a root shell)
// included. Checks, through the real pkexec and polkitd, with the shipped
// policy and a rule saying yes to org.almost.lock and org.almost.unlock
// only: pkexec tells the acts apart by argv[1] (a lock and an unlock pass;
// `layer new`, `config set`, `run`, and an unlock with `--root` before the
// subcommand are not authorised, 127, and almost never runs). With a rule
// saying yes to everything (the generic org.freedesktop.policykit.exec
// action too), almost itself refuses `run` and an option before the
// subcommand (12): the action polkit checked must be the act performed.
#[test]
fn each_act_has_its_action_and_run_is_refused() {
    common::assert_private_mount_namespace();
    if !available() {
        return;
    }
    let sb = Sandbox::new();
    let root = root_arg(&sb);
    let marker = sb.dir.join("ran-as-root");
    let touch = format!("touch {}", common::q(&marker));

    let polkit = Polkit::new(Some(ALLOW_NOBODY));
    polkit.pkexec(&["lock", "--root", &root]).expect_ok();
    sb.assert_locked("/usr");
    for refused in [
        &["layer", "new", "/usr/lib", "--root", &root][..],
        &["config", "set", "default_mode", "unlocked", "--root", &root],
        &["run", "--root", &root, "--", "sh", "-c", &touch],
        &["--root", &root, "unlock", "--yes"],
    ] {
        // (For the generic action pkexec may first fail to start its
        // text agent: no terminal here. Either way 127, almost not run.)
        polkit.pkexec(refused).expect_code(127);
    }
    assert!(!marker.exists(), "run ran");
    sb.assert_locked("/usr");
    assert!(
        std::fs::read_dir(sb.path("/var/lib/almost/layers"))
            .map_or(true, |mut d| d.next().is_none()),
        "a layer was made"
    );
    polkit
        .pkexec(&["unlock", "--root", &root, "--yes"])
        .expect_ok();
    sb.assert_unlocked("/usr");

    let polkit = Polkit::new(Some(ALLOW_NOBODY_EVERYTHING));
    let r = polkit.pkexec(&["run", "--root", &root, "--", "sh", "-c", &touch]);
    r.expect_code(12);
    assert!(r.stderr.contains("use sudo"), "{}", r.describe());
    assert!(!marker.exists(), "run ran under pkexec");
    let r = polkit.pkexec(&["--root", &root, "lock"]);
    r.expect_code(12);
    sb.assert_unlocked("/usr");
}
