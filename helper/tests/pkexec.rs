// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of what `almost` allows under pkexec and to users who
//! are not root: with `PKEXEC_UID` in its environment (as pkexec sets it),
//! only `lock`, `unlock`, `layer` and `config` run, each named first
//! (exit 12 otherwise: `run` is a root shell); `--root` must be `/` or a
//! directory only root can change, else exit 5 and nothing touched;
//! `--system-bus` is refused; and a user who is not root can change
//! nothing at all (exit 3), pkexec variable or not.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Run, Sandbox, Spawned};

/// `almost SUBCOMMAND --root R rest…` with `PKEXEC_UID` set, as pkexec
/// runs what the panel asks for.
fn as_pkexec(sb: &Sandbox, args: &[&str]) -> Run {
    let mut c = sb.command_pkexec_order(args);
    c.env("PKEXEC_UID", "1000");
    Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT)
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[track_caller]
fn refused_root(r: &Run, what: &str) {
    r.expect_code(5);
    assert!(r.stderr.contains(what), "{}", r.describe());
}

#[test]
fn under_pkexec_the_root_must_be_root_only() {
    let sb = Sandbox::new();
    // The sandbox as made: root-owned 0755 all the way up (/tmp is sticky).
    as_pkexec(&sb, &["lock"]).expect_ok();
    as_pkexec(&sb, &["unlock", "--yes"]).expect_ok();
    sb.assert_unlocked("/usr");

    chmod(&sb.root, 0o777);
    refused_root(&as_pkexec(&sb, &["lock"]), "writable by group or others");
    let r = as_pkexec(&sb, &["lock", "--json"]);
    r.expect_error(5, "invalid-path");
    chmod(&sb.root, 0o755);

    chmod(&sb.dir, 0o775);
    refused_root(&as_pkexec(&sb, &["lock"]), "writable by group or others");
    chmod(&sb.dir, 0o755);

    std::os::unix::fs::chown(&sb.root, Some(1000), None).expect("chown");
    refused_root(&as_pkexec(&sb, &["lock"]), "owned by uid 1000");
    std::os::unix::fs::chown(&sb.root, Some(0), None).expect("chown");

    // A symlink to an untrusted tree is judged by its target.
    let link = sb.dir.join("link-root");
    std::os::unix::fs::symlink(&sb.root, &link).expect("symlink");
    chmod(&sb.root, 0o757);
    let mut c = std::process::Command::new(common::ALMOST);
    c.arg("lock")
        .arg("--root")
        .arg(&link)
        .env("PKEXEC_UID", "1000");
    refused_root(&Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT), "writable");
    chmod(&sb.root, 0o755);

    // A test-only option has no business under pkexec.
    as_pkexec(&sb, &["lock", "--system-bus", "unix:path=/nonexistent"]).expect_code(2);

    sb.assert_clean_outside(&[]);
    assert!(
        !sb.path("/var/log/almost.log").exists()
            || !std::fs::read_to_string(sb.path("/var/log/almost.log"))
                .unwrap()
                .contains("invalid-path"),
        "a refused root was written to"
    );
    // Without PKEXEC_UID, root may point almost at any directory.
    chmod(&sb.root, 0o777);
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--yes"]).expect_ok();
    chmod(&sb.root, 0o755);
}

#[test]
fn a_user_who_is_not_root_can_change_nothing() {
    let mut sb = Sandbox::new();
    sb.build_rich_tree();
    let config = "default_mode = \"locked\"\npaths = [\"/usr\", \"/opt\"]\n";
    sb.write_config(config);
    let privileged: &[&[&str]] = &[
        &["lock"],
        &["unlock", "--yes"],
        &["unlock", "--yes", "--for", "10m"],
        &["enter", "ro"],
        &["enter", "rw", "--yes"],
        &["enter", "default"],
        &["run", "--", "touch", "/tmp/almost-should-not-run"],
        &["config", "set", "default_mode", "unlocked"],
        &["config", "set", "paths", "/usr"],
    ];
    for args in privileged {
        let r = sb.almost_as_nobody(args);
        r.expect_code(3);
        assert!(r.stderr.contains("must run as root"), "{}", r.describe());
        // With PKEXEC_UID set by the caller, as if pkexec had run it.
        // The subcommand first, as pkexec needs it; `run` and `enter` have no
        // polkit action and are refused before the uid is looked at.
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(common::ALMOST)
            .arg(args[0])
            .arg("--root")
            .arg(&sb.root)
            .args(&args[1..])
            .env("PKEXEC_UID", "65534");
        let code = if ["run", "enter"].contains(&args[0]) {
            12
        } else {
            3
        };
        Spawned::spawn(c)
            .wait(common::DEFAULT_TIMEOUT)
            .expect_code(code);
    }
    assert!(!Path::new("/tmp/almost-should-not-run").exists());
    sb.assert_clean_outside(&[]);
    assert_eq!(sb.read("/etc/almost/almost.toml"), config.as_bytes());
    assert!(!sb.path("/run/almost").exists(), "state written by a user");
    assert!(
        !sb.path("/var/log/almost.log").exists(),
        "log written by a user"
    );
    // What needs no root still works.
    sb.almost_as_nobody(&["status"]).expect_ok();
    sb.almost_as_nobody(&["apt-guard"]).expect_ok();
}

// Attack: `almost run` under pkexec is a root shell. With one polkit action
// for everything, a site rule letting a group lock and unlock without a
// password gave that group root: `PKEXEC_UID=… almost run -- id` printed
// uid 0. Checks: under pkexec, `run` is refused with exit 12 (kind
// `forbidden`, saying to use sudo) and its command never starts; so are
// `enter` and `boot`, which have no action of their own; and a command
// line whose first argument is not the subcommand (`--root R unlock`,
// where polkit would have matched its action on "--root") is refused too,
// with the tree left locked. Without PKEXEC_UID (sudo, a root shell) `run`
// still works.
#[test]
fn under_pkexec_run_and_options_first_are_refused() {
    let sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let marker = sb.dir.join("ran-as-root");
    let touch = format!("touch {}", common::q(&marker));
    let r = as_pkexec(&sb, &["run", "--json", "--", "sh", "-c", &touch]);
    let err = r.expect_error(12, "forbidden");
    assert!(
        err["message"].as_str().unwrap_or("").contains("sudo"),
        "{}",
        r.describe()
    );
    assert!(!marker.exists(), "the command ran under pkexec");
    as_pkexec(&sb, &["enter", "rw", "--yes"]).expect_code(12);
    as_pkexec(&sb, &["boot"]).expect_code(12);
    sb.assert_locked("/usr");

    // The act polkit checked must be the act performed.
    let mut c = sb.command(&["unlock", "--yes"]);
    c.env("PKEXEC_UID", "1000");
    let r = Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT);
    r.expect_code(12);
    assert!(r.stderr.contains("must come first"), "{}", r.describe());
    sb.assert_locked("/usr");

    // By root without pkexec, run is what it always was.
    sb.almost(&["run", "--", "sh", "-c", &touch]).expect_ok();
    assert!(marker.exists());
    sb.assert_locked("/usr");
}
