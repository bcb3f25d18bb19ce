// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of a real package manager writing into a layer: a small
//! `.deb` built in the test with `dpkg-deb --build` is installed with
//! `dpkg --root` into a sandbox whose `/usr` is locked and covered by a
//! layer; then the layer is committed (the files are there, locked, and
//! agree with dpkg's own database) or discarded (the tree is byte for byte
//! and flag for flag as before).

mod common;
mod layer_support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use layer_support::{LayerBox, Manifest, assert_manifest_eq, manifest};

const PKG: &str = "hello-almost";

/// Builds `hello-almost_1.0_all.deb` under `dir` and returns it with the
/// directory tree it was built from (the package's files, DEBIAN excluded).
fn build_deb(dir: &Path) -> (PathBuf, PathBuf) {
    let src = dir.join("pkg-src");
    let w = |rel: &str, data: &[u8], mode: u32| {
        let p = src.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, data).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    w(
        "DEBIAN/control",
        format!(
            "Package: {PKG}\nVersion: 1.0\nArchitecture: all\n\
             Maintainer: Almost Tests <tests@example.invalid>\n\
             Description: test package for almost layers\n"
        )
        .as_bytes(),
        0o644,
    );
    w(
        &format!("usr/bin/{PKG}"),
        b"#!/bin/sh\necho hello from almost\n",
        0o755,
    );
    w(
        &format!("usr/share/doc/{PKG}/copyright"),
        b"GPL-3.0-or-later\n",
        0o644,
    );
    w(
        &format!("usr/share/doc/{PKG}/README with space"),
        b"read me\n",
        0o644,
    );
    w(
        &format!("usr/lib/{PKG}/plugins/libplug.so"),
        &(0..70_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
        0o644,
    );
    w(&format!("usr/lib/{PKG}/data/table.txt"), b"1 2 3\n", 0o640);
    symlink("plugins", src.join(format!("usr/lib/{PKG}/current"))).expect("symlink");
    for d in ["usr", "usr/bin", "usr/lib", "usr/share", "usr/share/doc"] {
        fs::set_permissions(src.join(d), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let deb = dir.join(format!("{PKG}_1.0_all.deb"));
    let out = Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg("--build")
        .arg(&src)
        .arg(&deb)
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb --build failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (deb, src)
}

/// A minimal dpkg database (and log dir) in the sandbox.
fn dpkg_database(sb: &LayerBox) {
    for d in [
        "/var/lib/dpkg/info",
        "/var/lib/dpkg/updates",
        "/var/lib/dpkg/triggers",
        "/var/lib/dpkg/alternatives",
        "/var/log",
    ] {
        sb.mkdir(d);
    }
    for f in ["/var/lib/dpkg/status", "/var/lib/dpkg/available"] {
        sb.write(f, "");
    }
}

/// `dpkg --root=R args…`, with output for messages.
fn dpkg(sb: &LayerBox, args: &[&str]) -> std::process::Output {
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
        "dpkg {args:?} failed ({}):\n{}{}",
        out.status,
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

/// Paths (inside the root, "/usr/…") of everything the package ships,
/// directories included.
fn package_paths(src: &Path) -> BTreeSet<String> {
    let m = manifest(&src.join("usr"));
    m.0.keys()
        .map(|rel| {
            if rel.as_os_str().is_empty() {
                "/usr".to_owned()
            } else {
                format!("/usr/{}", rel.display())
            }
        })
        .collect()
}

/// The package's own files and dirs (what `layer diff` must call added):
/// everything below the dirs the base tree already has.
fn package_own_paths(src: &Path) -> BTreeSet<String> {
    package_paths(src)
        .into_iter()
        .filter(|p| p.contains(PKG))
        .collect()
}

/// Compares every shipped entry with what is installed: same type, mode,
/// content, link target (owner and times are dpkg's business).
#[track_caller]
fn assert_installed_as_shipped(sb: &LayerBox, src: &Path) {
    let shipped: Manifest = manifest(&src.join("usr"));
    let installed = manifest(&sb.path("/usr"));
    for (rel, want) in &shipped.0 {
        let got = installed
            .0
            .get(rel)
            .unwrap_or_else(|| panic!("/usr/{} is not installed", rel.display()));
        assert_eq!(
            (got.kind, got.sha256.as_ref(), got.link.as_ref()),
            (want.kind, want.sha256.as_ref(), want.link.as_ref()),
            "/usr/{}",
            rel.display()
        );
        if want.kind != 'l' {
            assert_eq!(got.mode, want.mode, "mode of /usr/{}", rel.display());
        }
    }
}

// Checks: dpkg really writes into a layer: with /usr locked
// and a layer over it, `dpkg --root -i` of a package with files in /usr/bin,
// /usr/share/doc/<pkg>, /usr/lib/<pkg>/… succeeds (through the layer) while
// the real /usr keeps every byte; `layer diff --json` lists exactly the
// package's files and directories as added; `layer commit --yes` puts them
// into the real tree with the shipped content, mode and link target; they
// carry `i` (the tree was locked) and so does the rest of /usr; `dpkg -L`
// lists exactly what is on disk and `dpkg --verify` finds nothing wrong.
#[test]
fn dpkg_install_into_layer_then_commit() {
    let sb = LayerBox::new();
    let (deb, src) = build_deb(&sb.dir);
    dpkg_database(&sb);
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));

    let id = sb.new_layer("/usr", &[]);
    install(&sb, &deb);
    assert_manifest_eq(
        "real /usr while dpkg wrote into the layer",
        &manifest(&sb.lower("/usr")),
        &before,
    );

    let added: BTreeSet<String> = sb
        .diff_set(&id)
        .into_iter()
        .map(|(p, kind)| {
            assert_eq!(kind, "added", "{p} is {kind}, not added");
            p
        })
        .collect();
    assert_eq!(added, package_own_paths(&src), "layer diff vs the package");
    let merged = manifest(&sb.path("/usr"));

    sb.commit(&id);
    assert!(sb.overlays().is_empty(), "{:?}", sb.overlays());
    assert!(sb.layer_list().is_empty());
    assert_manifest_eq(
        "/usr after commit vs the layer's view",
        &manifest(&sb.path("/usr")),
        &merged,
    );
    assert_installed_as_shipped(&sb, &src);
    for p in package_own_paths(&src) {
        if fs::symlink_metadata(sb.path(&p))
            .expect("lstat")
            .file_type()
            .is_symlink()
        {
            continue;
        }
        assert!(sb.has_i(&p), "{p} lacks the immutable flag after commit");
    }
    sb.assert_locked("/usr");
    assert_eq!(sb.status()["mode"], "locked");

    // dpkg's database agrees with the disk.
    let listed: BTreeSet<String> = dpkg_ok(&sb, &["-L", PKG])
        .lines()
        .filter(|l| *l != "/.")
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, package_paths(&src), "dpkg -L vs the package");
    for p in &listed {
        assert!(
            fs::symlink_metadata(sb.path(p)).is_ok(),
            "dpkg -L lists {p}, which is not on disk"
        );
    }
    let verify = dpkg(&sb, &["--verify", PKG]);
    assert!(
        verify.status.success() && verify.stdout.is_empty(),
        "dpkg --verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        sb.path(&format!("/var/lib/dpkg/info/{PKG}.md5sums"))
            .exists(),
        "dpkg kept no md5sums: --verify proved nothing"
    );
    sb.finish();
}

// Checks: the same install discarded: after `layer discard`
// the real /usr and /opt are byte for byte (full manifest: type, mode, owner,
// size, sha256, link target, xattrs, mtime, hard links) and flag for flag as
// before the layer, none of the package's files exist, nothing is mounted
// and the store is empty.
#[test]
fn dpkg_install_into_layer_then_discard() {
    let sb = LayerBox::new();
    let (deb, src) = build_deb(&sb.dir);
    dpkg_database(&sb);
    sb.almost(&["lock"]).expect_ok();
    let before_usr = manifest(&sb.path("/usr"));
    let before_opt = manifest(&sb.path("/opt"));
    let flags_usr = sb.flag_map("/usr");
    let flags_opt = sb.flag_map("/opt");

    let id = sb.new_layer("/usr", &[]);
    install(&sb, &deb);
    assert!(sb.path(&format!("/usr/bin/{PKG}")).exists());
    assert_eq!(
        sb.diff_set(&id).len(),
        package_own_paths(&src).len(),
        "layer diff"
    );

    sb.discard(&id);
    assert!(sb.overlays().is_empty());
    assert!(sb.store_entries().is_empty(), "{:?}", sb.store_entries());
    for p in package_own_paths(&src) {
        assert!(
            fs::symlink_metadata(sb.path(&p)).is_err(),
            "{p} survived the discard"
        );
    }
    assert_manifest_eq(
        "/usr after discard",
        &manifest(&sb.path("/usr")),
        &before_usr,
    );
    assert_manifest_eq(
        "/opt after discard",
        &manifest(&sb.path("/opt")),
        &before_opt,
    );
    assert_eq!(sb.flag_map("/usr"), flags_usr, "flags of /usr");
    assert_eq!(sb.flag_map("/opt"), flags_opt, "flags of /opt");
    sb.finish();
}
