// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the system layer (`almost layer new --system`,
//! issue 14) with a real dpkg database in a sandbox root: the package's
//! files (/usr), its conffile (/etc), dpkg's database (/var/lib/dpkg) and
//! what its postinst records (/var/lib/systemd/deb-systemd-helper-enabled,
//! the record deb-systemd-helper writes) change together through the layer,
//! are discarded together (dpkg no longer knows the package) or committed
//! together (`dpkg --verify` clean), and an upgrade's commit is undone with
//! the database; the apt guard lets apt through while the layer is mounted.

mod common;
mod layer_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use layer_support::{LayerBox, Manifest, assert_manifest_eq, manifest};

const PKG: &str = "almost-sys-test";
/// Where the postinst records the unit it "enabled", as deb-systemd-helper
/// does.
const DSH: &str = "/var/lib/systemd/deb-systemd-helper-enabled";
/// The directories compared before and after (the layer's parts here).
const TREES: [&str; 4] = ["/usr", "/etc", "/var/lib/dpkg", DSH];

/// Builds PKG_VERSION_all.deb: a file in /usr, a conffile in /etc, and a
/// postinst that writes deb-systemd-helper's record of an enabled unit.
fn build_deb(dir: &Path, version: &str) -> PathBuf {
    let src = dir.join(format!("src-{version}"));
    let w = |rel: &str, data: &str, mode: u32| {
        let p = src.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, data).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    w(
        "DEBIAN/control",
        &format!(
            "Package: {PKG}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: Almost Tests <tests@example.invalid>\n\
             Description: system layer test package\n"
        ),
        0o644,
    );
    w(
        "DEBIAN/conffiles",
        &format!("/etc/{PKG}/{PKG}.conf\n"),
        0o644,
    );
    w(
        "DEBIAN/postinst",
        &format!(
            "#!/bin/sh\nset -e\nd=\"$DPKG_ROOT{DSH}\"\nmkdir -p \"$d/multi-user.target.wants\"\n\
             echo /etc/systemd/system/multi-user.target.wants/{PKG}.service \
             > \"$d/{PKG}.service.dsh-also\"\n\
             echo {version} > \"$d/multi-user.target.wants/{PKG}.service\"\n"
        ),
        0o755,
    );
    w(
        &format!("usr/bin/{PKG}"),
        &format!("#!/bin/sh\necho {version}\n"),
        0o755,
    );
    w(
        &format!("usr/share/{PKG}/data"),
        &format!("data {version}\n"),
        0o644,
    );
    w(
        &format!("etc/{PKG}/{PKG}.conf"),
        &format!("version = {version}\n"),
        0o644,
    );
    for d in ["usr", "usr/bin", "usr/share", "etc"] {
        fs::set_permissions(src.join(d), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let deb = dir.join(format!("{PKG}_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&src)
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    assert!(out.status.success(), "dpkg-deb: {out:?}");
    deb
}

/// A dpkg database, the record directory and a bit of apt's state.
fn database(sb: &LayerBox) {
    for d in [
        "/var/lib/dpkg/info",
        "/var/lib/dpkg/updates",
        "/var/lib/dpkg/triggers",
        "/var/lib/dpkg/alternatives",
        "/var/lib/apt/lists/partial",
        DSH,
        "/var/log",
    ] {
        sb.mkdir(d);
    }
    for f in ["/var/lib/dpkg/status", "/var/lib/dpkg/available"] {
        sb.write(f, "");
    }
}

fn dpkg(sb: &LayerBox, args: &[&str]) -> Output {
    Command::new("dpkg")
        .arg(format!("--root={}", sb.root.display()))
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run dpkg")
}

#[track_caller]
fn dpkg_ok(sb: &LayerBox, args: &[&str]) -> String {
    let out = dpkg(sb, args);
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn install(sb: &LayerBox, deb: &Path) {
    dpkg_ok(
        sb,
        &[
            "--force-not-root",
            "--force-script-chrootless",
            "--no-triggers",
            "-i",
            &deb.to_string_lossy(),
        ],
    );
}

/// The installed version per `dpkg -s`, or None when dpkg does not know
/// the package as installed.
fn version(sb: &LayerBox) -> Option<String> {
    let out = dpkg(sb, &["-s", PKG]);
    let text = String::from_utf8_lossy(&out.stdout);
    (out.status.success() && text.contains("Status: install ok installed"))
        .then(|| {
            text.lines()
                .find_map(|l| l.strip_prefix("Version: "))
                .map(str::to_owned)
        })
        .flatten()
}

#[track_caller]
fn assert_audit_clean(sb: &LayerBox) {
    let out = dpkg(sb, &["--audit"]);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "dpkg --audit: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn real(sb: &LayerBox) -> Vec<Manifest> {
    TREES.iter().map(|t| manifest(&sb.lower(t))).collect()
}

fn seen(sb: &LayerBox) -> Vec<Manifest> {
    TREES.iter().map(|t| manifest(&sb.path(t))).collect()
}

#[track_caller]
fn assert_trees_eq(what: &str, left: &[Manifest], right: &[Manifest]) {
    for ((t, l), r) in TREES.iter().zip(left).zip(right) {
        assert_manifest_eq(&format!("{what}: {t}"), l, r);
    }
}

/// `layer new --system --json`: the id, after checking that it covers the
/// managed trees, /etc and the package state this root has, says what it
/// left out, and is recorded as a system layer.
fn system_layer(sb: &LayerBox) -> String {
    let r = sb.almost_json(&["layer", "new", "--system"]);
    r.expect_ok();
    let new = r.result();
    let paths: Vec<&str> = new["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p.as_str().expect("str"))
        .collect();
    assert_eq!(
        paths,
        ["/usr", "/opt", "/etc", "/var/lib/dpkg", "/var/lib/apt", DSH],
        "{new}"
    );
    let left_out: Vec<&str> = new["left_out"]
        .as_array()
        .expect("left_out")
        .iter()
        .map(|p| p.as_str().expect("str"))
        .collect();
    assert_eq!(
        left_out,
        ["/var/cache/debconf", "/var/lib/ucf", "/var/lib/pam"],
        "{new}"
    );
    assert_eq!(new["system"], true, "{new}");
    let id = new["id"].as_str().expect("id").to_owned();
    assert_eq!(sb.listed(&id).expect("listed")["system"], true);
    // In text, its row says what it is in the PATH column, and the line
    // below names every directory (the row stays a table row).
    let r = sb.almost(&["layer", "list"]);
    r.expect_ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}\n{}", r.describe()));
    assert!(lines[at].contains("system (6 directories)"), "{}", r.stdout);
    assert!(lines[at].len() < 100, "a long row: {}", lines[at]);
    assert_eq!(
        lines.get(at + 1).map(|l| l.trim()),
        Some(paths.join(", ").as_str()),
        "{}",
        r.stdout
    );
    id
}

// Checks: on a locked root with a dpkg database, `layer new --system`
// covers /usr, /opt, /etc, /var/lib/dpkg, /var/lib/apt and the
// deb-systemd-helper records (the rest of the measured set is not in this
// root and is said to be left out; a layer inside it is refused, naming
// it); `apt-guard` then succeeds, saying the
// change goes into the layer, and refuses again (exit 9) once the layer is
// gone. A package installed with `dpkg --root` through it (its files, its
// conffile, dpkg's database and its postinst's record) leaves the real
// trees as they were; discarded, `dpkg -s` no longer knows it, `dpkg
// --audit` is clean, and /usr, /etc, /var/lib/dpkg and the record directory
// are as before (manifests); /etc and /var/lib/dpkg never carry the
// immutable flag (lsattr), /usr is locked again.
#[test]
fn a_package_installed_through_a_system_layer_is_discarded_whole() {
    let sb = LayerBox::new();
    let deb = build_deb(&sb.dir, "1.0");
    database(&sb);
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["apt-guard"]).expect_code(9);
    let before = real(&sb);

    let id = system_layer(&sb);
    // A layer inside one of its directories is refused, naming it.
    let r = sb.almost(&["layer", "new", "/usr/lib"]);
    r.expect_code(5);
    assert!(
        r.stderr.contains(&format!(
            "overlaps the system layer {id} (its directory /usr)"
        )),
        "{}",
        r.describe()
    );
    let guard = sb.almost(&["apt-guard"]);
    guard.expect_ok();
    assert!(
        guard.stderr.contains(&format!("system layer {id}")),
        "{}",
        guard.describe()
    );
    install(&sb, &deb);
    assert_eq!(version(&sb).as_deref(), Some("1.0"));
    assert!(sb.path(&format!("{DSH}/{PKG}.service.dsh-also")).exists());
    assert_trees_eq("real trees during the install", &real(&sb), &before);
    sb.assert_unlocked("/etc");
    sb.assert_unlocked("/var/lib/dpkg");

    sb.discard(&id);
    assert!(sb.overlays().is_empty(), "{:?}", sb.overlays());
    assert_eq!(version(&sb), None, "dpkg still knows the package");
    assert_audit_clean(&sb);
    assert_trees_eq("after discard", &real(&sb), &before);
    assert!(!sb.path(&format!("/etc/{PKG}")).exists());
    sb.assert_locked("/usr");
    sb.assert_unlocked("/etc");
    sb.assert_unlocked("/var/lib/dpkg");
    sb.almost(&["apt-guard"]).expect_code(9);
    sb.finish();
}

// Checks: the same install committed: every tree equals the layer's merged
// view from before the commit (manifests), `dpkg --verify` is clean (its
// md5sums were written, so it proves something), the conffile and the
// postinst's record are there, /usr is locked, /etc is not. Then an upgrade
// to 2.0 through a new system layer, committed (`dpkg -s` says 2.0), and
// `layer undo`: /usr, /etc, /var/lib/dpkg and the records are again as
// after the first commit, `dpkg -s` says 1.0, `dpkg --verify` is clean.
#[test]
fn a_committed_install_is_coherent_and_an_upgrade_is_undone_with_the_database() {
    let sb = LayerBox::new();
    let v1 = build_deb(&sb.dir, "1.0");
    let v2 = build_deb(&sb.dir, "2.0");
    database(&sb);
    sb.almost(&["lock"]).expect_ok();

    let id = system_layer(&sb);
    install(&sb, &v1);
    let merged = seen(&sb);
    sb.commit(&id);
    assert_trees_eq("after commit vs the merged view", &real(&sb), &merged);
    assert_eq!(version(&sb).as_deref(), Some("1.0"));
    let verify = dpkg(&sb, &["--verify", PKG]);
    assert!(
        verify.status.success() && verify.stdout.is_empty(),
        "dpkg --verify: {verify:?}"
    );
    assert!(
        sb.path(&format!("/var/lib/dpkg/info/{PKG}.md5sums"))
            .exists()
    );
    assert!(
        sb.path(&format!("/var/lib/dpkg/info/{PKG}.conffiles"))
            .exists()
    );
    assert_eq!(
        sb.read(&format!("/etc/{PKG}/{PKG}.conf")),
        b"version = 1.0\n"
    );
    assert!(sb.path(&format!("{DSH}/{PKG}.service.dsh-also")).exists());
    assert_audit_clean(&sb);
    sb.assert_locked("/usr");
    sb.assert_unlocked("/etc");
    let after_v1 = real(&sb);

    let id = system_layer(&sb);
    install(&sb, &v2);
    assert_eq!(version(&sb).as_deref(), Some("2.0"));
    sb.commit(&id);
    assert_eq!(version(&sb).as_deref(), Some("2.0"));
    assert_eq!(
        sb.read(&format!("/etc/{PKG}/{PKG}.conf")),
        b"version = 2.0\n"
    );
    assert_eq!(sb.read(&format!("/usr/share/{PKG}/data")), b"data 2.0\n");

    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_eq!(version(&sb).as_deref(), Some("1.0"), "dpkg -s after undo");
    assert_trees_eq("after the undo of the upgrade", &real(&sb), &after_v1);
    assert_eq!(sb.read(&format!("/usr/share/{PKG}/data")), b"data 1.0\n");
    let verify = dpkg(&sb, &["--verify", PKG]);
    assert!(
        verify.status.success() && verify.stdout.is_empty(),
        "dpkg --verify after undo: {verify:?}"
    );
    assert_audit_clean(&sb);
    sb.assert_locked("/usr");
    sb.assert_unlocked("/etc");
    sb.assert_unlocked("/var/lib/dpkg");
    sb.finish();
}
