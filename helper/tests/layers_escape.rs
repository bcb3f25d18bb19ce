// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of what keeps a commit (and an undo) inside the tree:
//! a layer over directories that users other than root can change is
//! refused, and a directory swapped for a symlink to the outside during a
//! commit leads nowhere.

mod common;
mod layer_support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use layer_support::{LayerBox, assert_manifest_eq, manifest};

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Content, mode and inode of a file (`None`: gone): what the attack
/// would change.
fn file_state(p: &Path) -> Option<(Vec<u8>, u32, u64)> {
    let m = fs::symlink_metadata(p).ok()?;
    Some((fs::read(p).ok()?, m.mode(), m.ino()))
}

// Checks: `layer new` over a tree holding a directory owned by another
// user (mode 0555: its owner can chmod it back), or a world-writable one,
// is refused with exit 7 (kind unsupported) naming them, and leaves no
// layer behind; a root-owned sticky directory (as /tmp) and a system
// account's 0700 directory (as polkitd's rules.d) are no reason to refuse.
// A layer made over a clean tree, in which root then makes a directory of
// a user's (as a package's script may), cannot be committed:
// refused the same way, the layer still mounted, the tree unchanged; and
// `layer undo` of that commit is refused while a directory of the tree is
// a user's. Fails without the check (every act succeeds).
#[test]
fn directories_users_can_change_are_refused() {
    let sb = LayerBox::new();
    sb.write("/usr/share/foo/a", "a\n");
    sb.write("/usr/share/bar/b", "b\n");
    chmod(&sb.path("/usr/share/foo"), 0o555);
    chown(sb.path("/usr/share/foo"), Some(1000), Some(1000)).expect("chown");
    chmod(&sb.path("/usr/share/bar"), 0o777);

    let r = sb.almost_json(&["layer", "new", "/usr"]);
    let err = r.expect_error(7, "unsupported");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/usr/share/foo") && message.contains("/usr/share/bar"),
        "the refusal names the directories\n{}",
        r.describe()
    );
    assert!(sb.store_entries().is_empty(), "{:?}", sb.store_entries());
    assert!(sb.overlays().is_empty());

    // Made root's again; a sticky root-owned directory is accepted.
    chown(sb.path("/usr/share/foo"), Some(0), Some(0)).expect("chown");
    chmod(&sb.path("/usr/share/foo"), 0o755);
    chmod(&sb.path("/usr/share/bar"), 0o1777);
    // A system account's directory, as polkitd's rules.d: part of the system.
    sb.write("/usr/share/rules.d/r", "r\n");
    chown(sb.path("/usr/share/rules.d"), Some(101), Some(0)).expect("chown");
    chmod(&sb.path("/usr/share/rules.d"), 0o700);
    let before = manifest(&sb.lower("/usr"));
    let id = sb.new_layer("/usr", &[]);
    sb.write("/usr/share/pkg/data", "d\n");
    chown(sb.path("/usr/share/pkg"), Some(1000), Some(1000)).expect("chown");

    let r = sb.almost_json(&["layer", "commit", &id, "--yes"]);
    let err = r.expect_error(7, "unsupported");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/usr/share/pkg"),
        "{}",
        r.describe()
    );
    assert!(sb.listed(&id).is_some_and(|l| l["mounted"] == true));
    assert_manifest_eq(
        "the tree after a refused commit",
        &manifest(&sb.lower("/usr")),
        &before,
    );

    // Given back to root, the same layer commits.
    chown(sb.path("/usr/share/pkg"), Some(0), Some(0)).expect("chown");
    sb.commit(&id);
    assert_eq!(sb.read("/usr/share/pkg/data"), b"d\n");

    // An undo writes beneath the tree too: refused while a directory in
    // it is a user's, done once it is root's again.
    chown(sb.path("/usr/share/foo"), Some(1000), Some(1000)).expect("chown");
    let r = sb.almost_json(&["layer", "undo", "--yes"]);
    r.expect_code(7);
    assert!(r.stdout.contains("/usr/share/foo"), "{}", r.describe());
    assert_eq!(sb.read("/usr/share/pkg/data"), b"d\n");
    chown(sb.path("/usr/share/foo"), Some(0), Some(0)).expect("chown");
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert!(!sb.path("/usr/share/pkg").exists());
    sb.finish();
}

// Checks the attack of issue 12: a layer adds /usr/share/evil (made a
// user's, uid 1000) with evil/sub/x. While the commit runs (every
// rename(2) of almost held 300 ms by strace, so the test is never late),
// as soon as evil/sub is in the tree it is swapped for a symlink to a
// directory outside the root — what evil's owner can do. Root must then
// neither chmod that directory (the metadata of evil/sub) nor write or
// replace the file in it (evil/sub/x): checked by content, mode and inode.
// Before the fix, the outside directory became 0755 and outside/x was
// replaced by the layer's file, then deleted by the roll-back.
#[test]
fn a_directory_swapped_for_a_symlink_during_a_commit_leads_nowhere() {
    if !common::strace_available() {
        return;
    }
    let sb = LayerBox::new();
    sb.write("/usr/share/doc/keep", "k\n");
    let outside = sb.dir.join("outside");
    fs::create_dir(&outside).expect("mkdir outside");
    chmod(&outside, 0o700);
    fs::write(outside.join("x"), "outside\n").expect("write");
    chmod(&outside.join("x"), 0o600);
    let outside_before = (
        file_state(&outside.join("x")),
        fs::metadata(&outside).expect("stat").mode(),
    );

    let id = sb.new_layer("/usr", &[]);
    sb.write("/usr/share/evil/sub/x", "from the layer\n");
    chmod(&sb.path("/usr/share/evil/sub"), 0o755);
    chmod(&sb.path("/usr/share/evil/sub/x"), 0o755);
    chown(sb.path("/usr/share/evil"), Some(1000), Some(1000)).expect("chown");

    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=rename,renameat,renameat2",
    ])
    .args(["-e", "inject=rename,renameat,renameat2:delay_exit=300000"])
    .arg(common::ALMOST)
    .arg("--root")
    .arg(&sb.root)
    .args(["layer", "commit", &id, "--yes"])
    .env("LC_ALL", "C.UTF-8");
    let mut run = common::Spawned::spawn(cmd);
    let sub = sb.lower("/usr/share/evil/sub");
    let mut swapped = false;
    common::wait_until(Duration::from_secs(60), || {
        if !fs::symlink_metadata(&sub).is_ok_and(|m| m.is_dir()) {
            return !run.running();
        }
        fs::rename(&sub, sb.lower("/usr/share/evil/sub.moved")).expect("move sub away");
        symlink(&outside, &sub).expect("plant the symlink");
        swapped = true;
        true
    });
    let r = run.wait(common::DEFAULT_TIMEOUT);
    eprintln!("swapped: {swapped}\n{}", r.describe());
    assert_eq!(
        (
            file_state(&outside.join("x")),
            fs::metadata(&outside).expect("stat").mode()
        ),
        outside_before,
        "root changed what lies outside the root\nswapped: {swapped}\n{}",
        r.describe()
    );
    // Either refused before anything (the user's directory), or the
    // symlink was met and refused: the outside stays as it was.
    assert!(r.code != Some(0) || !swapped, "{}", r.describe());
    let _ = fs::remove_file(&sub);
    sb.finish();
}

// Checks: the tree a layer covers is opened beneath the root without a
// symlink anywhere on the way, not only in its last name. After `layer
// new /usr/share/app`, /usr/share (the covered directory's parent) is
// swapped for a symlink to a directory outside the root holding an `app`
// of its own. The commit is refused with an error, and what the symlink
// leads to is unchanged (no file of the layer written there, no backup
// made in it); once the parent is put back, the layer is still there to
// commit. Today the first walk of the tree refuses it ("is a symlink"),
// before the commit opens anything to write: this passed before the trees
// were opened beneath the root too. The window after that walk (a swap
// once the plan is made) is apply::tests::a_symlink_above_the_tree_is_refused.
#[test]
fn a_parent_of_the_tree_swapped_for_a_symlink_is_refused() {
    let sb = LayerBox::new();
    sb.write("/usr/share/app/keep", "k\n");
    let outside = sb.dir.join("outside");
    fs::create_dir_all(outside.join("app")).expect("mkdir outside");
    fs::write(outside.join("app/keep"), "outside\n").expect("write");
    let outside_before = manifest(&outside);

    let id = sb.new_layer("/usr/share/app", &[]);
    sb.write("/usr/share/app/new", "from the layer\n");
    sb.write("/usr/share/app/keep", "changed\n");
    let share = sb.lower("/usr/share");
    fs::rename(&share, sb.lower("/usr/share.real")).expect("move share away");
    symlink(&outside, &share).expect("plant the symlink");

    let r = sb.almost(&["layer", "commit", &id, "--yes"]);
    eprintln!("{}", r.describe());
    assert_ne!(r.code, Some(0), "{}", r.describe());
    // The message names the symlink that refused it, the parent.
    assert!(
        r.stderr.contains("lies beneath a symlink, /usr/share "),
        "{}",
        r.describe()
    );
    assert_manifest_eq("outside", &manifest(&outside), &outside_before);

    fs::remove_file(&share).expect("remove the symlink");
    fs::rename(sb.lower("/usr/share.real"), &share).expect("put share back");
    assert!(sb.listed(&id).is_some(), "the layer is kept");
    sb.finish();
}
