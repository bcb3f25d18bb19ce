// SPDX-License-Identifier: GPL-3.0-or-later
//! A layer the running system uses, as one over `/usr` is on a booted
//! system (every program started since it was mounted runs from it), can
//! neither be unmounted nor committed now: `layer commit --at-boot` and
//! `layer discard --at-boot` leave the act to the next `almost boot`, which
//! does it before the layer is mounted again. And a layer used by nobody
//! but copies of its mount in other mount namespaces (systemd services
//! started with ProtectSystem= get such a copy, with read-only mounts
//! stacked on it) is detached and committed at once instead of "busy".

mod common;
mod layer_support;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::wait_until;
use layer_support::{LayerBox, assert_manifest_eq, manifest};

fn seed(sb: &LayerBox) {
    sb.write("/usr/bin/tool", "#!/bin/sh\necho old\n");
    sb.write("/usr/share/doc/pkg/README", "old readme\n");
    sb.write("/usr/share/doc/pkg/gone", "deleted by the layer\n");
}

/// Changes made through the layer's merged view of /usr.
fn change_through_layer(sb: &LayerBox) {
    sb.write("/usr/bin/tool", "#!/bin/sh\necho new\n");
    sb.write("/usr/bin/added", "#!/bin/sh\necho added\n");
    fs::remove_file(sb.path("/usr/share/doc/pkg/gone")).expect("delete through the layer");
}

/// What a boot that did a layer's act at boot must leave: it said so
/// ("committed layer ID" / "discarded layer ID"), nothing is mounted, the
/// layer is gone, the tree is `expected` and locked.
#[track_caller]
fn assert_done_at_boot(
    sb: &LayerBox,
    r: &common::Run,
    said: &str,
    id: &str,
    expected: &layer_support::Manifest,
) {
    assert!(
        r.stdout.contains(&format!("{said} layer {id}")),
        "{}",
        r.describe()
    );
    assert!(
        sb.overlays().is_empty() && sb.listed(id).is_none(),
        "{}",
        r.describe()
    );
    assert_manifest_eq(
        &format!("the tree after the boot's {said}"),
        expected,
        &manifest(&sb.path("/usr")),
    );
    sb.assert_locked("/usr");
}

fn pending_of(sb: &LayerBox, id: &str) -> serde_json::Value {
    sb.listed(id)
        .unwrap_or_else(|| panic!("layer {id} not listed"))["pending"]
        .clone()
}

// Checks: `layer commit --at-boot` changes nothing now (the layer stays
// mounted, the tree beneath untouched) and `layer list --json` shows
// "pending": "commit"; after a simulated reboot (overlays unmounted by
// hand) `almost boot` commits it before mounting anything: the tree beneath
// equals what the merged view showed, every entry is locked, the layer is
// gone and nothing is mounted. `layer discard --at-boot` likewise leaves the
// tree beneath exactly as before the layer.
#[test]
fn commit_and_discard_at_boot_are_done_by_the_next_boot() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.lower("/usr"));

    let id = sb.new_layer("/usr", &[]);
    change_through_layer(&sb);
    let merged = manifest(&sb.path("/usr"));
    let r = sb.almost(&["layer", "commit", "--at-boot", "--yes", &id]);
    r.expect_ok();
    assert!(r.stdout.contains("next boot"), "{}", r.describe());
    assert_eq!(pending_of(&sb, &id), "commit");
    assert_eq!(sb.overlays(), vec![sb.path("/usr")], "still mounted");
    assert_manifest_eq(
        "the tree beneath before the boot",
        &before,
        &manifest(&sb.lower("/usr")),
    );

    sb.umount_overlays_by_hand();
    let r = sb.almost(&["boot"]);
    r.expect_ok();
    assert_done_at_boot(&sb, &r, "committed", &id, &merged);

    // The same with discard: the tree beneath stays as it is now.
    let now = manifest(&sb.path("/usr"));
    let id = sb.new_layer("/usr", &[]);
    sb.write("/usr/bin/tool", "#!/bin/sh\necho newer\n");
    sb.write("/usr/share/doc/pkg/another", "another\n");
    fs::remove_file(sb.path("/usr/share/doc/pkg/README")).expect("delete through the layer");
    sb.almost(&["layer", "discard", "--at-boot", "--yes", &id])
        .expect_ok();
    assert_eq!(pending_of(&sb, &id), "discard");
    sb.umount_overlays_by_hand();
    let r = sb.almost(&["boot"]);
    r.expect_ok();
    assert_done_at_boot(&sb, &r, "discarded", &id, &now);
    sb.finish();
}

// Checks: a layer in use by nobody but the almost that commits it — almost
// runs from the layer when the layer covers /usr/bin, as on a real system
// — and by copies of its mount in another mount namespace (a "service"
// with a read-only bind mount stacked on its copy, as systemd makes for
// ProtectSystem=) is committed at once: the unmount detaches it (before,
// the commit failed "busy: the mount is in use", naming no one). A process
// with its working directory in the layer does use it: the commit is
// refused (exit 8), names that process, points at --at-boot, and changes
// nothing.
#[test]
fn a_layer_used_only_by_almost_itself_is_detached_a_real_user_is_named() {
    // Room for a copy of the (debug) almost binary inside the tree.
    let mut sb = LayerBox::with_size_mib(512);
    seed(&sb);
    fs::copy(common::ALMOST, sb.path("/usr/bin/almost")).expect("copy almost into the tree");
    let id = sb.locked_with_layer("/usr");
    sb.write("/usr/share/doc/pkg/README", "new readme\n");
    let merged = manifest(&sb.path("/usr"));

    // A "service" in its own mount namespace, with /usr made read-only by
    // a bind mount on its copy of the layer's mount. (The test's own
    // namespace is private, so the copy is not a slave of ours here; on a
    // systemd system it is, and Linux 6.1 then refuses a plain unmount.)
    let usr = sb.path("/usr");
    let script = format!(
        "mount --bind '{0}' '{0}' && mount -o remount,bind,ro '{0}' && echo ready && exec sleep 600",
        usr.display()
    );
    let mut service = Command::new("unshare");
    service
        .args(["--mount", "--propagation", "slave", "sh", "-c", &script])
        .current_dir("/")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = service.spawn().expect("start the service");
    let mut ready = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(child.stdout.take().expect("stdout"), 6),
        &mut ready,
    )
    .expect("read ready");
    assert_eq!(ready, "ready\n");
    let service_index = sb.adopt(child);

    // The almost inside the layer: its executable is on the layer's mount.
    let inner_almost = sb.path("/usr/bin/almost");
    let root = sb.root.clone();
    let commit_from_inside = || {
        let mut c = Command::new(&inner_almost);
        c.arg("--root")
            .arg(&root)
            .args(["layer", "commit", "--yes", &id])
            .env("LC_ALL", "C.UTF-8");
        common::Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT)
    };

    // A user of the layer: its cwd is inside.
    let mut user = Command::new("sleep");
    user.arg("600").current_dir(sb.path("/usr/share/doc"));
    let c = user.spawn().expect("start the user");
    let user_pid = c.id();
    let user_index = sb.adopt(c);
    let r = commit_from_inside();
    r.expect_code(8);
    let said = r.all_output();
    assert!(said.contains(&format!("{user_pid} (sleep)")), "{said}");
    assert!(said.contains("--at-boot"), "{said}");
    assert!(
        sb.listed(&id).is_some(),
        "a refused commit removed the layer"
    );
    assert_eq!(
        fs::read_to_string(sb.lower("/usr/share/doc/pkg/README")).expect("read"),
        "old readme\n",
        "a refused commit changed the tree"
    );

    sb.end_child(user_index);
    assert!(wait_until(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{user_pid}")).exists()
    }));
    let r = commit_from_inside();
    r.expect_ok();
    assert!(sb.listed(&id).is_none(), "{}", r.describe());
    assert!(sb.overlays().is_empty(), "still mounted after the commit");
    assert_manifest_eq("the committed tree", &merged, &manifest(&sb.path("/usr")));
    sb.end_child(service_index);
    sb.finish();
}

// Checks: a commit at boot cut by a crash while it was still preparing
// (killed at its first syncfs, the journal says "preparing") is done by
// the next boot without mounting the layer first: recovery at boot rolls
// the commit back and leaves the layer unmounted, then the boot commits
// it (strace sees no overlay mount in that boot). On a real system a
// layer mounted by the recovery is at once in use by udevd and the like,
// and the commit at boot was refused (found by the VM rig's power cuts).
// The tree ends as the layer showed it, locked, the layer gone.
#[test]
fn a_commit_at_boot_cut_while_preparing_is_done_by_the_next_boot_unmounted() {
    if !common::strace_available() {
        return;
    }
    let sb = LayerBox::new();
    seed(&sb);
    let id = sb.locked_with_layer("/usr");
    change_through_layer(&sb);
    let merged = manifest(&sb.path("/usr"));
    sb.almost(&["layer", "commit", "--at-boot", "--yes", &id])
        .expect_ok();
    sb.umount_overlays_by_hand();

    let traced = |inject: &[&str], log: &std::path::Path| {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-o"])
            .arg(log)
            .args(["-etrace=mount,syncfs"])
            .args(inject)
            .arg(common::ALMOST)
            .arg("--root")
            .arg(&sb.root)
            .arg("boot");
        common::Spawned::spawn(c).wait(Duration::from_secs(120))
    };
    let log = sb.dir.join("boot1.strace");
    let r = traced(&["-einject=syncfs:signal=KILL:when=1"], &log);
    assert!(
        r.signal == Some(9) || r.code == Some(137),
        "the boot was not killed\n{}",
        r.describe()
    );
    let journal = sb.path(&format!("/var/lib/almost/layers/{id}/commit.json"));
    let text = fs::read_to_string(&journal).expect("the journal of the killed commit");
    assert!(text.contains("\"phase\":\"preparing\""), "{text}");

    let log = sb.dir.join("boot2.strace");
    let r = traced(&[], &log);
    r.expect_ok();
    let calls = fs::read_to_string(&log).expect("strace log");
    let overlay_mounts: Vec<&str> = calls
        .lines()
        .filter(|l| l.contains("mount(") && l.contains("\"overlay\""))
        .collect();
    let over_the_tree = format!("\"{}\"", sb.path("/usr").display());
    assert!(
        !overlay_mounts.is_empty(),
        "strace saw no mount of the layer's view at all: {calls}"
    );
    assert!(
        !overlay_mounts.iter().any(|l| l.contains(&over_the_tree)),
        "the boot mounted the layer over its tree before committing it: {overlay_mounts:?}\n{}",
        r.describe()
    );
    assert_done_at_boot(&sb, &r, "committed", &id, &merged);
    sb.finish();
}
