// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of a layer's mount: a busy mount (a process with its cwd
//! or an open file in the layer) makes `layer commit` and `layer discard`
//! refuse with exit 8 naming the process and change nothing; a mount that
//! vanished (as after a reboot) shows as not mounted, is mounted again by
//! `layer mount` with its changes, and can be committed or discarded as it is.

mod common;
mod layer_support;

use std::fs;
use std::process::{Command, Stdio};

use layer_support::{LayerBox, assert_manifest_eq, manifest};

fn seed(sb: &LayerBox) {
    sb.write("/usr/lib/pkg/a.txt", "a\n");
    sb.write("/usr/lib/pkg/b.txt", "b\n");
    sb.write("/usr/lib/pkg/sub/c.txt", "c\n");
}

/// Asserts a refusal because of a busy mount: exit 8, kind `busy`, the
/// message names `pid` and `command`, and so does the error's `processes`
/// list (the data a reader names them from in its own words).
#[track_caller]
fn expect_busy(sb: &LayerBox, args: &[&str], pid: i32, command: &str) {
    let r = sb.almost_json(args);
    let err = r.expect_error(8, "busy");
    let msg = err["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&pid.to_string()) && msg.contains(command),
        "the message does not name pid {pid} ({command}): {msg:?}"
    );
    let named = err["processes"].as_array().is_some_and(|ps| {
        ps.iter()
            .any(|p| p["pid"] == pid && p["command"] == command)
    });
    assert!(named, "processes does not hold {pid} ({command}): {err}");
    // The same in text mode, on stderr.
    let r = sb.almost(args);
    r.expect_code(8);
    assert!(
        r.stderr.contains(&pid.to_string()) && r.stderr.contains(command),
        "{}",
        r.describe()
    );
}

// Checks: with a layer over /usr/lib of a locked tree and a
// process whose cwd is inside the layer, `layer commit --yes` and `layer
// discard --yes` fail with exit 8 (kind `busy`) and name its pid and command
// (`sleep`); the same with a process holding a file of the layer open
// (`tail -f`). Nothing changes: the layer stays listed and mounted with the
// same view, the real tree keeps every byte, `status` finds nothing to
// finish. Once the processes have ended, `layer discard` works and the tree
// is byte for byte and flag for flag as before the layer. e2fsck is clean.
#[test]
fn busy_layer_refuses_commit_and_discard() {
    let mut sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));
    let flags_usr = sb.flag_map("/usr");
    let flags_opt = sb.flag_map("/opt");

    let id = sb.new_layer("/usr/lib", &[]);
    sb.write("/usr/lib/pkg/a.txt", "changed in the layer\n");
    sb.write("/usr/lib/pkg/new.txt", "new\n");
    // The layer's mount point is /usr/lib: its view is read there.
    let view = manifest(&sb.path("/usr/lib"));

    // A process with its cwd in the layer.
    let sleeper = Command::new("sleep")
        .arg("300")
        .current_dir(sb.path("/usr/lib/pkg/sub"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sleep");
    let sleeper = sb.adopt(sleeper);
    let sleeper_pid = sb.child_pid(sleeper);
    expect_busy(
        &sb,
        &["layer", "commit", &id, "--yes"],
        sleeper_pid,
        "sleep",
    );
    expect_busy(
        &sb,
        &["layer", "discard", &id, "--yes"],
        sleeper_pid,
        "sleep",
    );
    expect_busy(
        &sb,
        &["overlay", "commit", "/usr/lib", "--yes"],
        sleeper_pid,
        "sleep",
    );
    sb.end_child(sleeper);

    // A process with a file of the layer open (its cwd elsewhere).
    let tail = Command::new("tail")
        .arg("-f")
        .arg(sb.path("/usr/lib/pkg/b.txt"))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tail");
    let tail = sb.adopt(tail);
    let tail_pid = sb.child_pid(tail);
    // tail opens the file right after it starts.
    assert!(
        common::wait_until(std::time::Duration::from_secs(5), || {
            fs::read_dir(format!("/proc/{tail_pid}/fd")).is_ok_and(|rd| {
                rd.flatten()
                    .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t.ends_with("pkg/b.txt")))
            })
        }),
        "tail did not open the file"
    );
    expect_busy(&sb, &["layer", "commit", &id, "--yes"], tail_pid, "tail");
    expect_busy(&sb, &["layer", "discard", &id, "--yes"], tail_pid, "tail");

    // Nothing changed.
    let l = sb.listed(&id).expect("layer still listed");
    assert_eq!(l["mounted"], true, "{l}");
    assert_manifest_eq("the layer's view", &manifest(&sb.path("/usr/lib")), &view);
    assert_manifest_eq("the real tree", &manifest(&sb.lower("/usr")), &before);
    let st = sb.almost_json(&["status"]);
    st.expect_ok();
    assert!(st.events("warning").is_empty(), "{}", st.describe());
    sb.end_child(tail);

    sb.discard(&id);
    assert!(sb.overlays().is_empty());
    assert!(sb.layer_list().is_empty());
    assert_manifest_eq("after discard", &manifest(&sb.path("/usr")), &before);
    assert_eq!(sb.flag_map("/usr"), flags_usr, "flags of /usr");
    assert_eq!(sb.flag_map("/opt"), flags_opt, "flags of /opt");
    sb.finish();
}

// Checks: a layer whose mount vanished (unmounted by hand, as
// after a reboot) shows in `layer list --json` as not mounted, still with its
// change count; `layer mount ID` mounts it again with its changes (the view
// equals the one before) and a second `layer mount` is harmless; a layer
// unmounted by hand is committed as it is (the real tree then equals its
// view, locked); another layer unmounted by hand is discarded (the tree is
// then as after the commit, locked, nothing mounted, the store empty).
#[test]
fn vanished_mount_list_mount_commit_discard() {
    let sb = LayerBox::new();
    seed(&sb);
    sb.almost(&["lock"]).expect_ok();

    let id = sb.new_layer("/usr/lib", &[]);
    sb.write("/usr/lib/pkg/a.txt", "changed\n");
    fs::remove_file(sb.path("/usr/lib/pkg/b.txt")).expect("rm");
    sb.write("/usr/lib/pkg/sub/d.txt", "d\n");
    // The layer's mount point is /usr/lib: its view is read there.
    let view = manifest(&sb.path("/usr/lib"));
    let outside = manifest(&sb.path("/usr"));

    sb.umount_overlays_by_hand();
    let l = sb.listed(&id).expect("listed");
    assert_eq!(l["mounted"], false, "{l}");
    assert_eq!(l["changes"], 3, "{l}");
    let r = sb.almost(&["layer", "list"]);
    r.expect_ok();
    let row = r
        .stdout
        .lines()
        .find(|line| line.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}\n{}", r.describe()));
    assert!(row.contains(" no "), "not shown as unmounted: {row}");

    sb.almost(&["layer", "mount", &id]).expect_ok();
    assert_eq!(sb.overlays(), vec![sb.path("/usr/lib")]);
    assert_eq!(sb.listed(&id).expect("listed")["mounted"], true);
    assert_manifest_eq(
        "view after layer mount",
        &manifest(&sb.path("/usr/lib")),
        &view,
    );
    sb.almost(&["layer", "mount", &id]).expect_ok();
    assert_eq!(sb.overlays().len(), 1, "mounted twice: {:?}", sb.overlays());

    // Commit of an unmounted layer.
    sb.umount_overlays_by_hand();
    sb.commit(&id);
    assert!(sb.overlays().is_empty(), "{:?}", sb.overlays());
    let after = manifest(&sb.path("/usr"));
    assert_manifest_eq("/usr/lib after commit", &after.subtree("lib"), &view);
    // Outside /usr/lib nothing moved.
    let mut rest = after.clone();
    rest.0.retain(|p, _| !p.starts_with("lib"));
    let mut rest_before = outside.clone();
    rest_before.0.retain(|p, _| !p.starts_with("lib"));
    assert_manifest_eq("/usr outside lib after commit", &rest, &rest_before);
    sb.assert_locked("/usr");
    let committed = manifest(&sb.path("/usr"));

    // Discard of an unmounted layer.
    let id2 = sb.new_layer("/usr/lib", &[]);
    sb.write("/usr/lib/pkg/a.txt", "never\n");
    sb.write("/usr/lib/pkg/e.txt", "never\n");
    sb.umount_overlays_by_hand();
    sb.discard(&id2);
    assert!(sb.overlays().is_empty());
    assert!(sb.store_entries().is_empty(), "{:?}", sb.store_entries());
    assert_manifest_eq("after discard", &manifest(&sb.path("/usr")), &committed);
    sb.assert_locked("/usr");
    sb.finish();
}

/// Makes a tmpfs with shared propagation (as every mount is on a systemd
/// system) holding another tmpfs, then becomes strace running ALMOST with
/// the rest of the arguments, its return from mount(2) delayed by 3 s. Run
/// in a mount namespace of its own (`unshare -m`): the shared mount must
/// never appear in the tests' namespace, which has to stay private.
const SHARED_THEN_STRACE: &str = r#"set -e
top=$1; shift
mount -t tmpfs almost-shared "$top"
mount --make-shared "$top"
mkdir "$top/sub"
mount -t tmpfs almost-sub "$top/sub"
# strace delays only the calls it traces: trace=mount, output dropped.
exec strace -f -qq -o /dev/null -e trace=mount -e inject=mount:delay_exit=3000000 "$@"
"#;

// Checks: `layer list` (like `layer diff`) looks beneath the layers in a
// mount namespace of its own, whose mounts must stay slaves of the
// system's: an unmount made outside while it runs must reach it, or it
// would keep the unmounted filesystem (a USB stick, say) alive until it
// ends. In a namespace of their own with a shared mount, strace holds
// almost for a while just after it has set up its namespace (a delay on
// the return of its mount(2)); the test waits until almost's namespace no
// longer shares that mount (made a slave, or private), unmounts the inner
// mount outside (in strace's namespace), and requires it gone from
// almost's mountinfo too. Fails with a private (MS_PRIVATE) namespace.
#[test]
fn a_layer_listing_does_not_pin_what_is_unmounted_outside() {
    if !common::strace_available() {
        return;
    }
    let sb = LayerBox::new();
    seed(&sb);
    let id = sb.new_layer("/usr/lib", &[]);
    let dir = tempfile::Builder::new()
        .prefix("almost-shared-")
        .tempdir()
        .expect("tempdir");
    let top = dir.path().to_path_buf();
    let sub = top.join("sub");

    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "--", "bash", "-c"])
        .arg(SHARED_THEN_STRACE)
        .arg("shared-then-strace")
        .arg(&top)
        .arg(common::ALMOST)
        .arg("--root")
        .arg(&sb.root)
        .args(["--json", "layer", "list"]);
    let tracer = common::Spawned::spawn(c);
    let outside = format!("/proc/{}/ns/mnt", tracer.pid());
    let children = || {
        fs::read_to_string(format!("/proc/{0}/task/{0}/children", tracer.pid()))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .collect::<Vec<i32>>()
    };
    // almost (strace's child), once its namespace no longer shares `top`.
    let mut almost_pid = None;
    common::wait_until(std::time::Duration::from_secs(20), || {
        let theirs = fs::read_link(&outside).ok();
        almost_pid = children().into_iter().find(|pid| {
            fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() != theirs
                && common::mountinfo(&pid.to_string())
                    .iter()
                    .any(|(p, prop)| *p == top && !prop.contains("shared:"))
        });
        almost_pid.is_some()
    });
    let almost_pid = almost_pid.expect("almost did not set up its own namespace in time");
    let propagation = common::mountinfo(&almost_pid.to_string())
        .into_iter()
        .find(|(p, _)| *p == top)
        .map(|(_, prop)| prop)
        .unwrap_or_default();

    common::sh(
        "nsenter",
        &[
            format!("--mount={outside}").as_ref(),
            "umount".as_ref(),
            sub.as_os_str(),
        ],
    );
    let seen = common::mountinfo(&almost_pid.to_string());
    // Still held by strace: the answer comes from its namespace, not from
    // a process that has gone.
    assert!(
        seen.iter().any(|(p, _)| *p == top),
        "almost ended before the check: {seen:?}"
    );
    let still = seen.iter().any(|(p, _)| *p == sub);
    let r = tracer.wait(common::DEFAULT_TIMEOUT);
    r.expect_ok();
    assert!(
        !still,
        "an unmount outside did not reach almost's namespace (its {} is `{propagation}`): \
         it kept the filesystem alive",
        top.display()
    );
    assert!(propagation.contains("master:"), "{propagation}");
    let listed = r.result();
    assert_eq!(listed["layers"][0]["id"], id.as_str(), "{}", r.describe());
    sb.discard(&id);
    sb.finish();
}

// --- systemd-udevd holding a layer over /usr --------------------------------

/// A stand-in for systemd-udevd: perl run from a copy named `udevadm`
/// through a link `systemd-udevd`, as Debian 12 runs udevd (so its
/// command and executable say udevd), holding a
/// file of the layer open as udevd holds its hardware database. With
/// `reload`, on SIGHUP it closes the file and opens the same path again,
/// as udevd reloads, and leaves `reloaded` in `dir`; without, it ignores
/// SIGHUP. It leaves `ready` in `dir` once the file is open.
const FAKE_UDEVD: &str = r#"
my ($path, $dir, $reload) = @ARGV;
open(my $fh, '<', $path) or die "open $path: $!";
if ($reload) {
    # The mark first: almost goes on as soon as the file is closed.
    $SIG{HUP} = sub {
        open(my $m, '>', "$dir/reloaded") or die; close $m;
        close $fh;
        open($fh, '<', $path) or die "reopen $path: $!";
    };
} else {
    $SIG{HUP} = 'IGNORE';
}
open(my $m, '>', "$dir/ready") or die; close $m;
while (1) { sleep 1 }
"#;

/// A directory anyone can enter holding the copy of perl named udevadm
/// and its link systemd-udevd (Debian 12's layout: the link's name is the
/// command's, `/proc/PID/exe` names udevadm).
fn udevd_copy() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("almost-udevd-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    fs::copy("/usr/bin/perl", dir.path().join("udevadm")).expect("copy perl");
    std::os::unix::fs::symlink("udevadm", dir.path().join("systemd-udevd")).expect("symlink");
    dir
}

/// Starts the stand-in (root) on `file` and waits until it holds it.
fn start_fake_udevd(sb: &mut LayerBox, bin: &tempfile::TempDir, file: &str, reload: bool) -> usize {
    let child = Command::new(bin.path().join("systemd-udevd"))
        .arg("-e")
        .arg(FAKE_UDEVD)
        .arg(sb.path(file))
        .arg(bin.path())
        .arg(if reload { "1" } else { "" })
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the stand-in udevd");
    let index = sb.adopt(child);
    assert!(
        common::wait_until(std::time::Duration::from_secs(5), || bin
            .path()
            .join("ready")
            .exists()),
        "the stand-in udevd did not start"
    );
    index
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Asserts a refusal as busy (exit 8, in JSON) naming `pid` as
/// systemd-udevd.
#[track_caller]
fn expect_refused(sb: &LayerBox, args: &[&str], pid: i32) {
    let err = sb.almost_json(args).expect_error(8, "busy");
    let named = err["processes"].as_array().is_some_and(|ps| {
        ps.iter()
            .any(|p| p["pid"] == pid && p["command"] == "systemd-udevd")
    });
    assert!(
        named,
        "processes does not hold {pid} (systemd-udevd): {err}"
    );
}

/// A locked sandbox with a hardware database in /usr, and the stand-in's
/// executable.
fn udevd_box() -> (LayerBox, tempfile::TempDir) {
    let sb = LayerBox::new();
    seed(&sb);
    sb.write("/usr/lib/udev/hwdb.bin", "hardware database\n");
    sb.almost(&["lock"]).expect_ok();
    (sb, udevd_copy())
}

// Checks: systemd-udevd maps its hardware database again from a layer over
// /usr at the first device event (busy.rs says why), so every layer over
// /usr of a running system was refused as busy (the VM's CI run:
// "in use by 189 (systemd-udevd)"). A root process run as Debian runs
// udevd holding a file of the layer stands in for it: `layer discard`
// must succeed — the part detached, the process asked to reload (SIGHUP:
// it left `reloaded`), alive afterwards — and the tree be as before; then
// the same for `layer commit` (the tree then equals the layer's view).
// Locked again both times. Before the release, both were refused with
// exit 8 naming systemd-udevd.
#[test]
fn systemd_udevd_holding_a_layer_is_asked_to_let_go() {
    let (mut sb, bin) = udevd_box();
    for act in ["discard", "commit"] {
        let before = manifest(&sb.path("/usr"));
        let id = sb.new_layer("/usr", &[]);
        sb.write("/usr/lib/pkg/a.txt", format!("{act} in the layer\n"));
        let view = manifest(&sb.path("/usr"));
        let _ = fs::remove_file(bin.path().join("reloaded"));
        let _ = fs::remove_file(bin.path().join("ready"));
        let udevd = start_fake_udevd(&mut sb, &bin, "/usr/lib/udev/hwdb.bin", true);
        let pid = sb.child_pid(udevd);
        sb.almost(&["layer", act, &id, "--yes"]).expect_ok();
        assert!(
            bin.path().join("reloaded").exists(),
            "{act}: udevd was not asked to reload"
        );
        assert!(alive(pid), "udevd did not survive the {act}");
        assert!(sb.overlays().is_empty(), "{:?}", sb.overlays());
        assert!(sb.layer_list().is_empty());
        let after = manifest(&sb.path("/usr"));
        let expected = if act == "commit" { &view } else { &before };
        assert_manifest_eq(&format!("/usr after the {act}"), &after, expected);
        sb.assert_locked("/usr");
        sb.end_child(udevd);
    }
    sb.finish();
}

// Checks: a udevd that does not let go when asked (it ignores SIGHUP) does
// not make almost go on with the layer half gone: after the wait, `layer
// discard` is refused (exit 8, naming it), the layer is mounted again with
// its view, listed, and the tree unchanged; once it has ended the discard
// works and the tree is as before.
#[test]
fn a_udevd_that_does_not_let_go_leaves_the_layer_as_it_was() {
    let (mut sb, bin) = udevd_box();
    let before = manifest(&sb.path("/usr"));
    let id = sb.new_layer("/usr", &[]);
    sb.write("/usr/lib/pkg/new.txt", "new\n");
    let view = manifest(&sb.path("/usr"));
    let udevd = start_fake_udevd(&mut sb, &bin, "/usr/lib/udev/hwdb.bin", false);
    let pid = sb.child_pid(udevd);

    // Once only: the part mounted again after the refusal is a new mount,
    // which the stand-in does not hold (it keeps the detached one).
    expect_refused(&sb, &["layer", "discard", &id, "--yes"], pid);
    assert!(alive(pid));
    assert_eq!(sb.overlays(), vec![sb.path("/usr")]);
    assert_eq!(sb.listed(&id).expect("listed")["mounted"], true);
    assert_manifest_eq("the layer's view", &manifest(&sb.path("/usr")), &view);
    assert_manifest_eq("the real tree", &manifest(&sb.lower("/usr")), &before);

    sb.end_child(udevd);
    sb.discard(&id);
    let after = manifest(&sb.path("/usr"));
    assert_manifest_eq("/usr after the discard", &after, &before);
    sb.finish();
}

// Checks: a user's process is never taken for udevd, whatever it is
// called: one run as nobody from the same copy named systemd-udevd,
// holding a file of the layer (an fd it inherited), gets no signal (SIGHUP
// would end it: it has no handler) and the layer is not detached: `layer
// discard` is refused (exit 8) naming it, the layer still mounted.
#[test]
fn a_users_process_named_systemd_udevd_is_not_signalled() {
    let (mut sb, bin) = udevd_box();
    let id = sb.new_layer("/usr", &[]);
    let held = fs::File::open(sb.path("/usr/lib/udev/hwdb.bin")).expect("open");
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin.path().join("systemd-udevd"))
        .args(["-e", "sleep 300"])
        .current_dir("/")
        .stdin(held)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start setpriv");
    let index = sb.adopt(child);
    let pid = sb.child_pid(index);
    assert!(
        common::wait_until(std::time::Duration::from_secs(5), || {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "systemd-udevd")
        }),
        "the process did not become systemd-udevd"
    );
    expect_refused(&sb, &["layer", "discard", &id, "--yes"], pid);
    assert!(alive(pid), "the user's process was signalled");
    assert_eq!(sb.overlays(), vec![sb.path("/usr")]);
    sb.end_child(index);
    sb.discard(&id);
    sb.finish();
}
