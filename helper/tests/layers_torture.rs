// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end torture test of a layer over a locked `/usr`: every kind of
//! change overlayfs can record (whiteouts, opaque directories, type changes,
//! copy+delete renames, metadata-only changes, xattrs in the user, trusted
//! and security namespaces, hard links, odd names, empty and large files)
//! goes through one layer; the commit must make the real tree equal the
//! layer's merged view entry for entry, and `layer undo` must give back the
//! tree from before, entry for entry.

mod common;
mod layer_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::process::Command;

use layer_support::{LayerBox, assert_manifest_eq, manifest, remove_xattr, set_xattr, xattrs_of};

const BIG_NEW: usize = 6 << 20;
const BIG_OLD: usize = 2 << 20;

fn pattern(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ salt)
        .collect()
}

/// The tree before the layer.
fn build_lower(sb: &LayerBox) {
    sb.write("/usr/bin/tool-a", "#!/bin/sh\necho a\n");
    fs::hard_link(sb.path("/usr/bin/tool-a"), sb.path("/usr/bin/tool-a-link")).expect("link");
    sb.write("/usr/bin/del-me", "delete me\n");
    sb.write("/usr/bin/mode-only", "mode\n");
    sb.write("/usr/bin/owner-only", "owner\n");
    for i in 0..20 {
        sb.write(
            &format!("/usr/share/del-tree/a{}/b/c/f{i}", i % 3),
            format!("{i}\n"),
        );
    }
    sb.write("/usr/share/recreate/x", "x\n");
    sb.write("/usr/share/recreate/y/z", "z\n");
    sb.write("/usr/share/file-to-dir", "a file\n");
    sb.write("/usr/share/dir-to-file/a", "a\n");
    sb.write("/usr/share/dir-to-file/sub/b", "b\n");
    sb.write("/usr/lib/libbar.so.2", b"\x7fELF bar");
    symlink("libbar.so.2", sb.path("/usr/lib/link-to-file")).expect("symlink");
    symlink("libbar.so.2", sb.path("/usr/lib/link-retarget")).expect("symlink");
    sb.write("/usr/share/move-me/f1", "f1\n");
    sb.write("/usr/share/move-me/sub/f2", "f2\n");
    symlink("../f1", sb.path("/usr/share/move-me/sub/up")).expect("symlink");
    sb.write("/usr/lib/xattr-user", "xu\n");
    sb.write("/usr/lib/xattr-trusted", "xt\n");
    sb.write("/usr/lib/xattr-existing", "xe\n");
    set_xattr(&sb.path("/usr/lib/xattr-existing"), "user.keep", b"1");
    set_xattr(&sb.path("/usr/lib/xattr-existing"), "user.drop", b"1");
    sb.write("/usr/share/doc/old name with spaces", "spaces\n");
    sb.write("/usr/share/doc/old\nnewline", "newline\n");
    sb.write("/usr/lib/big-old.bin", pattern(BIG_OLD, 1));
    sb.mkdir("/usr/share/dir-meta");
    sb.write("/usr/share/dir-meta/inside", "inside\n");
    sb.write("/usr/bin/to-fifo", "will be a fifo\n");
}

/// Every change, made through the layer (merged view at `/usr`).
fn change_through_layer(sb: &LayerBox) {
    let p = |s: &str| sb.path(s);
    // Content change of one name of a lower hard link pair.
    sb.write("/usr/bin/tool-a", "#!/bin/sh\necho A\n");
    // Delete a file, a directory tree.
    fs::remove_file(p("/usr/bin/del-me")).expect("rm");
    fs::remove_dir_all(p("/usr/share/del-tree")).expect("rm -r");
    // Delete then recreate a directory (opaque).
    fs::remove_dir_all(p("/usr/share/recreate")).expect("rm -r");
    sb.write("/usr/share/recreate/fresh", "fresh\n");
    // File → directory (empty: a populated one has a test of its own below),
    // directory → file, symlink → file, file → fifo, symlink retargeted.
    fs::remove_file(p("/usr/share/file-to-dir")).expect("rm");
    sb.mkdir("/usr/share/file-to-dir");
    fs::remove_dir_all(p("/usr/share/dir-to-file")).expect("rm -r");
    sb.write("/usr/share/dir-to-file", "now a file\n");
    fs::remove_file(p("/usr/lib/link-to-file")).expect("rm");
    sb.write("/usr/lib/link-to-file", "now a file\n");
    fs::remove_file(p("/usr/bin/to-fifo")).expect("rm");
    nix::unistd::mkfifo(
        &p("/usr/bin/to-fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .expect("mkfifo");
    fs::remove_file(p("/usr/lib/link-retarget")).expect("rm");
    symlink("big-new.bin", p("/usr/lib/link-retarget")).expect("symlink");
    // Rename a directory with mv (redirect_dir=off: copy + delete).
    common::sh(
        "mv",
        &[
            p("/usr/share/move-me").as_os_str(),
            p("/usr/share/moved").as_os_str(),
        ],
    );
    // Metadata only: mode, owner, xattrs (user, trusted), a directory's mode.
    fs::set_permissions(p("/usr/bin/mode-only"), fs::Permissions::from_mode(0o751)).expect("chmod");
    lchown(p("/usr/bin/owner-only"), Some(1234), Some(5678)).expect("chown");
    set_xattr(&p("/usr/lib/xattr-user"), "user.test", b"hello");
    set_xattr(&p("/usr/lib/xattr-trusted"), "trusted.almost", b"t1");
    remove_xattr(&p("/usr/lib/xattr-existing"), "user.drop");
    set_xattr(&p("/usr/lib/xattr-existing"), "user.keep", b"2");
    fs::set_permissions(p("/usr/share/dir-meta"), fs::Permissions::from_mode(0o700))
        .expect("chmod dir");
    // A file with a capability (setcap, i.e. security.capability).
    sb.write("/usr/bin/ping-like", "#!/bin/sh\necho ping\n");
    fs::set_permissions(p("/usr/bin/ping-like"), fs::Permissions::from_mode(0o755)).expect("chmod");
    common::sh(
        "setcap",
        &[
            "cap_net_raw+ep".as_ref(),
            p("/usr/bin/ping-like").as_os_str(),
        ],
    );
    // A set-uid file owned by someone else (chown clears set-id bits).
    sb.write("/usr/bin/suid", "suid\n");
    lchown(p("/usr/bin/suid"), Some(42), Some(42)).expect("chown");
    fs::set_permissions(p("/usr/bin/suid"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    // Hard links: two names of a new file.
    sb.write("/usr/bin/new-a", "two names\n");
    fs::hard_link(p("/usr/bin/new-a"), p("/usr/bin/new-b")).expect("link");
    // Names with spaces and newlines (new ones, and deletion of old ones).
    sb.write("/usr/share/doc/dir with space/file with space", "s\n");
    sb.write("/usr/share/doc/new\nline\nname", "n\n");
    fs::remove_file(p("/usr/share/doc/old name with spaces")).expect("rm");
    fs::remove_file(p("/usr/share/doc/old\nnewline")).expect("rm");
    // Empty files, new and emptied.
    sb.write("/usr/share/empty-new", "");
    sb.write("/usr/lib/libbar.so.2", "");
    // Large files: a new one, and an old one appended to.
    sb.write("/usr/lib/big-new.bin", pattern(BIG_NEW, 7));
    let mut old = fs::read(p("/usr/lib/big-old.bin")).expect("read");
    old.extend_from_slice(&pattern(1 << 20, 3));
    sb.write("/usr/lib/big-old.bin", old);
    // New empty directory and a new symlink.
    sb.mkdir("/usr/share/new-empty-dir");
    symlink("../lib/big-new.bin", p("/usr/share/link-new")).expect("symlink");
}

// Checks: one layer over a locked /usr receives: a deleted
// file, a deleted directory tree, a directory deleted and recreated (opaque),
// a file replaced by an (empty) directory, a directory tree replaced by a
// file, a symlink replaced by a file, a file by a fifo, a retargeted symlink, a directory renamed with mv (copy + delete), a
// mode-only, an owner-only and a directory-mode change, user.* and trusted.*
// xattrs set and removed, a file with a capability (setcap), a set-uid file,
// a content change of one name of a hard-linked pair, a new file with two
// names, names with spaces and newlines, empty files and MB-sized files.
// `layer diff` classifies the key ones (deleted, replaced, metadata, added);
// after `layer commit` the real /usr equals the merged view captured before
// the commit, entry for entry (type, mode, owner, size, sha256, link target,
// device, every xattr, mtime of non-dirs, hard-link structure), every file
// and directory carries `i` again; `layer undo` restores the pre-layer tree
// entry for entry, locked; e2fsck -fn is clean at the end.
#[test]
fn torture_commit_equals_merged_view_and_undo_restores() {
    let sb = LayerBox::with_size_mib(192);
    build_lower(&sb);
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));
    sb.assert_locked("/usr");

    let id = sb.new_layer("/usr", &[]);
    change_through_layer(&sb);
    let merged = manifest(&sb.path("/usr"));
    // The real tree did not move.
    assert_manifest_eq(
        "real /usr beneath the layer",
        &manifest(&sb.lower("/usr")),
        &before,
    );
    // Sanity of the merged view itself (the oracle sees what was done).
    let xe = xattrs_of(&sb.path("/usr/lib/xattr-existing"));
    assert_eq!(xe.get(&b"user.keep"[..]), Some(&b"2".to_vec()));
    assert!(!xe.contains_key(&b"user.drop"[..]));
    let cap = Command::new("getcap")
        .arg(sb.path("/usr/bin/ping-like"))
        .output()
        .expect("getcap");
    assert!(
        String::from_utf8_lossy(&cap.stdout).contains("cap_net_raw"),
        "setcap did not stick in the layer: {cap:?}"
    );

    let diff: BTreeMap<String, String> = sb.diff_set(&id).into_iter().collect();
    let expect = [
        ("/usr/bin/del-me", "deleted"),
        ("/usr/share/del-tree", "deleted"),
        ("/usr/share/move-me", "deleted"),
        ("/usr/share/moved", "added"),
        ("/usr/share/recreate", "replaced"),
        ("/usr/share/file-to-dir", "replaced"),
        ("/usr/share/dir-to-file", "replaced"),
        ("/usr/lib/link-to-file", "replaced"),
        ("/usr/bin/to-fifo", "replaced"),
        ("/usr/bin/mode-only", "metadata"),
        ("/usr/bin/owner-only", "metadata"),
        ("/usr/lib/xattr-user", "metadata"),
        ("/usr/lib/xattr-trusted", "metadata"),
        ("/usr/lib/xattr-existing", "metadata"),
        ("/usr/share/dir-meta", "metadata"),
        ("/usr/bin/tool-a", "modified"),
        ("/usr/lib/big-old.bin", "modified"),
        ("/usr/lib/libbar.so.2", "modified"),
        ("/usr/bin/ping-like", "added"),
        ("/usr/bin/new-a", "added"),
        ("/usr/bin/new-b", "added"),
        ("/usr/share/doc/new\nline\nname", "added"),
        ("/usr/share/doc/old name with spaces", "deleted"),
        ("/usr/share/doc/old\nnewline", "deleted"),
        ("/usr/lib/big-new.bin", "added"),
        ("/usr/share/empty-new", "added"),
        ("/usr/share/new-empty-dir", "added"),
    ];
    let mut wrong = Vec::new();
    for (path, kind) in expect {
        if diff.get(path).map(String::as_str) != Some(kind) {
            wrong.push(format!(
                "{path:?}: expected {kind}, diff says {:?}",
                diff.get(path)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "layer diff misclassifies:\n{}\nfull diff: {diff:#?}",
        wrong.join("\n")
    );

    let r = sb.almost(&["layer", "commit", &id, "--yes"]);
    r.expect_ok();
    assert!(sb.overlays().is_empty(), "{:?}", sb.overlays());
    assert_manifest_eq(
        "real /usr after commit vs the merged view before it",
        &manifest(&sb.path("/usr")),
        &merged,
    );
    sb.assert_locked("/usr");
    for touched in [
        "/usr/bin/tool-a",
        "/usr/bin/ping-like",
        "/usr/bin/new-a",
        "/usr/share/recreate",
        "/usr/share/recreate/fresh",
        "/usr/lib/big-new.bin",
        "/usr/share/moved/sub/f2",
    ] {
        assert!(sb.has_i(touched), "{touched:?} lacks i after commit");
    }
    assert_eq!(sb.status()["mode"], "locked");

    let r = sb.almost(&["layer", "undo", "--yes"]);
    r.expect_ok();
    assert_manifest_eq(
        "real /usr after undo vs before the layer",
        &manifest(&sb.path("/usr")),
        &before,
    );
    sb.assert_locked("/usr");
    assert!(
        fs::read_dir(sb.path("/var/lib/almost/commits")).map_or(true, |d| d.count() == 0),
        "undo data left after undo"
    );
    // Nothing left to undo.
    sb.almost_json(&["layer", "undo", "--yes"]).expect_code(5);
    sb.finish();
}

// Checks (split out of the torture set so that one failure does
// not hide the others): a file and a symlink of the lower tree replaced
// through the layer by directories *with content* (what a package upgrade
// turning a file into a directory does). `layer commit` must succeed and the
// real /usr must then equal the merged view, locked; `layer undo` restores
// the tree from before.
#[test]
fn file_and_symlink_replaced_by_populated_directories() {
    let sb = LayerBox::new();
    sb.write("/usr/share/file-to-dir", "a file\n");
    sb.write("/usr/lib/target", "t\n");
    symlink("target", sb.path("/usr/lib/link-to-dir")).expect("symlink");
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));

    let id = sb.new_layer("/usr", &[]);
    fs::remove_file(sb.path("/usr/share/file-to-dir")).expect("rm");
    sb.write("/usr/share/file-to-dir/inside", "inside\n");
    sb.write("/usr/share/file-to-dir/sub/deeper", "deeper\n");
    fs::remove_file(sb.path("/usr/lib/link-to-dir")).expect("rm");
    sb.write("/usr/lib/link-to-dir/inside", "inside\n");
    let merged = manifest(&sb.path("/usr"));

    let r = sb.almost(&["layer", "commit", &id, "--yes"]);
    let listed = sb.listed(&id);
    assert_eq!(
        r.code,
        Some(0),
        "commit of a file/symlink replaced by a populated directory failed \
         (layer afterwards: {listed:?}, overlays: {:?})\n{}",
        sb.overlays(),
        r.describe()
    );
    assert_manifest_eq(
        "real /usr after commit vs the merged view",
        &manifest(&sb.path("/usr")),
        &merged,
    );
    sb.assert_locked("/usr");
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq(
        "real /usr after undo vs before",
        &manifest(&sb.path("/usr")),
        &before,
    );
    sb.assert_locked("/usr");
    sb.finish();
}
