// SPDX-License-Identifier: GPL-3.0-or-later
//! Validation of the shipped data files: the systemd units with
//! `systemd-analyze verify` (on copies whose ExecStart points at the binary
//! under test, since /usr/bin/almost is not installed here; any warning
//! counts as a failure, and deliberately broken copies must fail), their
//! ordering promises, and the polkit policy with `xmllint` against polkit's
//! DTD, plus the values the DTD cannot check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use almost_helper::cli::{Cli, Command as AlmostCommand};
use clap::Parser;

const ALMOST: &str = env!("CARGO_BIN_EXE_almost");

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Section → key → values (a key may repeat), comments dropped.
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (k, v) = line.split_once('=').expect("key=value");
        out.entry(section.clone())
            .or_default()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    out
}

/// Every word of every value of `key` in `section`.
fn words(
    unit: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    section: &str,
    key: &str,
) -> Vec<String> {
    unit.get(section)
        .and_then(|s| s.get(key))
        .map(|vs| {
            vs.iter()
                .flat_map(|v| v.split_whitespace().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `systemd-analyze verify` on the given unit texts (written under their
/// names in a temp dir). Ok only with exit 0 and not a word of output.
fn verify(units: &[(&str, String)]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for (name, text) in units {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write unit");
        paths.push(p);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .current_dir(dir.path())
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze (systemd is needed)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {text}", out.status))
    }
}

const UNITS: [&str; 2] = ["almost-boot.service", "almost-offline-update.service"];

fn installed_copy(name: &str) -> String {
    let text = read(&format!("systemd/{name}"));
    assert!(text.contains("ExecStart=/usr/bin/almost "), "{name}");
    text.replace("/usr/bin/almost", ALMOST)
}

#[test]
fn units_verify_cleanly_and_broken_ones_do_not() {
    let units: Vec<(&str, String)> = UNITS.iter().map(|n| (*n, installed_copy(n))).collect();
    verify(&units).unwrap_or_else(|e| panic!("systemd-analyze verify: {e}"));

    // The controls: each breakage must be caught.
    let boot = installed_copy("almost-boot.service");
    for (what, broken) in [
        ("a bad Type=", boot.replace("Type=oneshot", "Type=oneshut")),
        (
            "an unknown key",
            boot.replace("RemainAfterExit=yes", "RemainAfterExits=yes"),
        ),
        (
            "a missing binary",
            boot.replace(ALMOST, "/nonexistent/almost"),
        ),
        (
            "a bad timeout",
            boot.replace("TimeoutStartSec=15min", "TimeoutStartSec=soon"),
        ),
    ] {
        assert_ne!(broken, boot, "{what}: the unit text changed shape");
        assert!(
            verify(&[("almost-boot.service", broken)]).is_err(),
            "systemd-analyze verify did not catch {what}"
        );
    }
}

#[test]
fn the_boot_unit_runs_early_and_not_during_an_offline_update() {
    let unit = parse_unit(&read("systemd/almost-boot.service"));
    assert_eq!(
        words(&unit, "Service", "ExecStart"),
        ["/usr/bin/almost", "boot"]
    );
    assert_eq!(words(&unit, "Service", "Type"), ["oneshot"]);
    assert_eq!(words(&unit, "Service", "RemainAfterExit"), ["yes"]);
    assert_eq!(words(&unit, "Unit", "DefaultDependencies"), ["no"]);
    let after = words(&unit, "Unit", "After");
    let before = words(&unit, "Unit", "Before");
    assert!(after.contains(&"local-fs.target".to_owned()), "{after:?}");
    assert!(before.contains(&"sysinit.target".to_owned()), "{before:?}");
    assert!(
        words(&unit, "Unit", "RequiresMountsFor").contains(&"/var/lib/almost".to_owned()),
        "the layer store must be mounted"
    );
    let conditions = words(&unit, "Unit", "ConditionPathExists");
    assert!(
        conditions.contains(&"!/system-update".to_owned()),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&"!/etc/system-update".to_owned()),
        "{conditions:?}"
    );
    assert_eq!(words(&unit, "Install", "WantedBy"), ["sysinit.target"]);
}

#[test]
fn the_offline_update_unit_unlocks_before_packagekit() {
    let unit = parse_unit(&read("systemd/almost-offline-update.service"));
    let exec = words(&unit, "Service", "ExecStart");
    assert_eq!(exec[0], "/usr/bin/almost");
    // The arguments are ones almost accepts, and mean an unprompted unlock.
    let cli = Cli::try_parse_from(exec.iter().map(String::as_str)).expect("ExecStart parses");
    match cli.command {
        AlmostCommand::Unlock(args) => assert!(args.yes && args.duration.is_none()),
        other => panic!("ExecStart runs {other:?}, not unlock"),
    }
    let before = words(&unit, "Unit", "Before");
    for target in [
        "packagekit-offline-update.service",
        "system-update-pre.target",
        "system-update.target",
    ] {
        assert!(
            before.contains(&target.to_owned()),
            "not Before={target}: {before:?}"
        );
    }
    assert!(words(&unit, "Unit", "Wants").contains(&"system-update-pre.target".to_owned()));
    assert_eq!(
        words(&unit, "Install", "WantedBy"),
        ["system-update.target"]
    );
    assert_eq!(words(&unit, "Unit", "DefaultDependencies"), ["no"]);
}

fn xmllint(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new("xmllint")
        .args(args)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run xmllint (libxml2-utils)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("xmllint")
}

const POLKIT_DTD: &str = "/usr/share/polkit-1/policyconfig-1.dtd";

#[test]
fn the_polkit_policy_is_valid_and_says_what_it_allows() {
    let policy = read("org.almost.policy.in");
    let out = xmllint(&["--noout"], &policy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dtd = Path::new(POLKIT_DTD).exists();
    if dtd {
        let out = xmllint(&["--noout", "--dtdvalid", POLKIT_DTD], &policy);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let broken = policy.replace(
            "<allow_any>no</allow_any>",
            "<allow_anyone>no</allow_anyone>",
        );
        assert!(
            !xmllint(&["--noout", "--dtdvalid", POLKIT_DTD], &broken)
                .status
                .success()
        );
    } else {
        eprintln!("{POLKIT_DTD} missing (polkitd not installed): well-formedness only");
    }
    let broken = policy.replace("</defaults>", "");
    assert!(
        !xmllint(&["--noout"], &broken).status.success(),
        "xmllint missed a broken file"
    );

    // What the DTD cannot check.
    // One action per command allowed under pkexec, each with the path and
    // its argv1 (the helper's unit test checks the list against its own);
    // nobody remote or inactive; what each asks of an active session.
    assert_eq!(policy.matches("<action id=").count(), 4);
    assert_eq!(policy.matches("<allow_any>no</allow_any>").count(), 4);
    assert_eq!(
        policy
            .matches("<allow_inactive>no</allow_inactive>")
            .count(),
        4
    );
    assert_eq!(
        policy
            .matches(
                r#"<annotate key="org.freedesktop.policykit.exec.path">@bindir@/almost</annotate>"#
            )
            .count(),
        4
    );
    for (id, argv1, active) in [
        ("org.almost.lock", "lock", "auth_admin_keep"),
        ("org.almost.unlock", "unlock", "auth_admin_keep"),
        ("org.almost.layer", "layer", "auth_admin"),
        ("org.almost.config", "config", "auth_admin"),
    ] {
        let start = policy
            .find(&format!(r#"<action id="{id}">"#))
            .unwrap_or_else(|| panic!("no action {id}"));
        let action = &policy[start..start + policy[start..].find("</action>").expect("end")];
        assert!(
            action.contains(&format!("<allow_active>{active}</allow_active>")),
            "{id}: {action}"
        );
        assert!(
            action.contains(&format!(
                r#"<annotate key="org.freedesktop.policykit.exec.argv1">{argv1}</annotate>"#
            )),
            "{id}: {action}"
        );
    }
    assert!(policy.contains("unlock the system files"));
}
