// SPDX-License-Identifier: GPL-3.0-or-later
//! Crash and failure tests of `layer commit`: killed with SIGKILL at random
//! moments, and at chosen syscalls (strace fault injection, so that every
//! failure names a reproducible kill point), the next `almost` run must
//! leave the tree either exactly as it was (with the layer still there) or
//! exactly as the layer showed it (locked, and undoable), never a mix; and a
//! commit that runs out of disk space must fail cleanly, with the tree as
//! before and the layer still there. `layer undo` killed at each step must
//! be finished by the next run (or not have begun), never left half-way.

mod common;
mod layer_support;

use std::fs;
use std::process::Command;
use std::time::Duration;

use layer_support::{LayerBox, Manifest, assert_manifest_eq, manifest, seed, strace};
use nix::sys::signal::Signal;

/// Lower files under /usr/share/many (100 per directory).
const LOWER_FILES: usize = 1500;
/// New files the layer adds.
const ADDED_FILES: usize = 250;
const KILLS: usize = 22;

/// The tree of the random test: many small files and an MB-sized one.
fn build_many(sb: &LayerBox) {
    sb.write("/usr/bin/tool", "#!/bin/sh\necho tool\n");
    sb.populate("/usr/share/many", LOWER_FILES);
    sb.write(
        "/usr/lib/big-old.bin",
        (0..1u32 << 20).map(|i| (i % 239) as u8).collect::<Vec<_>>(),
    );
}

/// Makes the layer's changes through its merged view at /usr: about a
/// thousand small files touched (~170 modified, ~150 deleted one by one, 300
/// in three directories deleted whole, 100 under a directory recreated
/// opaque, 250 added) and two MB-sized files (one new, one modified). The
/// sizes keep one debug-build commit near a second.
fn change_many(sb: &LayerBox) {
    let dirs = LOWER_FILES.div_ceil(100);
    for i in 0..LOWER_FILES {
        let d = i / 100;
        if d >= dirs - 3 {
            continue; // those directories go whole, below
        }
        let p = format!("/usr/share/many/d{d:03}/f{i:05}");
        if i % 7 == 0 {
            fs::remove_file(sb.path(&p)).expect("rm");
        } else if i % 6 == 0 {
            sb.write(&p, format!("{i} changed by the layer\n"));
        }
    }
    for d in dirs - 3..dirs {
        fs::remove_dir_all(sb.path(&format!("/usr/share/many/d{d:03}"))).expect("rm -r");
    }
    fs::remove_dir_all(sb.path("/usr/share/many/d000")).expect("rm -r");
    sb.write("/usr/share/many/d000/recreated", "opaque\n");
    for i in 0..ADDED_FILES {
        sb.write(
            &format!("/usr/share/added/a{:02}/n{i:05}", i / 100),
            format!("added {i}\n"),
        );
    }
    sb.write(
        "/usr/lib/big-new.bin",
        (0..3u32 << 19).map(|i| (i % 241) as u8).collect::<Vec<_>>(),
    );
    let mut old = fs::read(sb.path("/usr/lib/big-old.bin")).expect("read");
    old.iter_mut().step_by(4096).for_each(|b| *b ^= 0x5a);
    sb.write("/usr/lib/big-old.bin", old);
}

/// Starts `layer commit ID --yes`, kills it with SIGKILL after `delay`.
/// Returns `None` when the kill landed while it ran, else (it must then
/// have succeeded) how long it took.
fn kill_commit_after(sb: &LayerBox, id: &str, delay: Duration) -> Option<Duration> {
    let p = sb.spawn(&["--json", "layer", "commit", id, "--yes"]);
    std::thread::sleep(delay);
    p.signal(Signal::SIGKILL);
    let r = p.wait(Duration::from_secs(60));
    if r.signal == Some(9) {
        return None;
    }
    r.expect_ok();
    Some(r.elapsed)
}

/// The state of a kill-and-recover loop: the tree before the layer, the
/// merged view of the current layer, and what was seen.
struct Rig<'a> {
    sb: &'a LayerBox,
    build: fn(&LayerBox),
    change: fn(&LayerBox),
    old: Manifest,
    new: Manifest,
    id: String,
    need_layer: bool,
    olds: usize,
    news: usize,
    /// Facts worth reporting that the contract does not forbid.
    notes: Vec<String>,
    /// Contract violations that do not stop the loop (reported at the end).
    problems: Vec<String>,
}

impl<'a> Rig<'a> {
    /// Builds the tree, locks it and remembers it as the old tree.
    fn new(sb: &'a LayerBox, build: fn(&LayerBox), change: fn(&LayerBox)) -> Self {
        build(sb);
        sb.almost(&["lock"]).expect_ok();
        Rig {
            sb,
            build,
            change,
            old: manifest(&sb.path("/usr")),
            new: Manifest::default(),
            id: String::new(),
            need_layer: true,
            olds: 0,
            news: 0,
            notes: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Makes a fresh layer with the changes if the last one is gone.
    fn ensure_layer(&mut self) {
        if self.need_layer {
            self.id = self.sb.new_layer("/usr", &[]);
            (self.change)(self.sb);
            // Taken for every fresh layer: its files have new mtimes.
            self.new = manifest(&self.sb.path("/usr"));
            self.need_layer = false;
        }
    }

    /// After a problem that left the tree unusable: drops every layer,
    /// rebuilds /usr from scratch and locks it, so the loop can go on.
    fn rebuild(&mut self) {
        let sb = self.sb;
        for l in sb.layer_list() {
            let id = l["id"].as_str().unwrap_or_default().to_owned();
            sb.discard(&id);
        }
        let usr = sb.path("/usr");
        let _ = Command::new("chattr")
            .args(["-R", "-f", "-i"])
            .arg(&usr)
            .status();
        for e in fs::read_dir(&usr).expect("read /usr").flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                fs::remove_dir_all(&p).expect("rm -r");
            } else {
                fs::remove_file(&p).expect("rm");
            }
        }
        (self.build)(sb);
        sb.almost(&["lock"]).expect_ok();
        self.old = manifest(&usr);
        self.need_layer = true;
    }

    /// After a killed commit: runs `almost status` as root, then judges the
    /// real tree: old (the layer must still be there, with its changes) or
    /// new (the layer must be gone, /usr locked, and `layer undo` must bring
    /// the old tree back); a mix fails the test at once, other violations
    /// are collected.
    fn judge(&mut self, label: &str) {
        let sb = self.sb;
        let st = sb.almost_json(&["status"]);
        assert_eq!(st.code, Some(0), "{label}: status\n{}", st.describe());
        // The real tree, whether or not the layer is mounted again.
        let now = manifest(&sb.lower("/usr"));
        let listed = sb.listed(&self.id);
        if now == self.old {
            self.olds += 1;
            let l = listed.unwrap_or_else(|| {
                panic!(
                    "{label}: the tree is the old one but the layer is gone\n{}",
                    st.describe()
                )
            });
            if l["mounted"] != true {
                self.notes.push(format!(
                    "{label}: old tree, but the layer was left unmounted and the tree \
                     beneath it unlocked (status mode {})",
                    st.result()["mode"]
                ));
                sb.almost(&["layer", "mount", &self.id]).expect_ok();
            }
            let view = manifest(&sb.path("/usr"));
            let lost = view.differences(&self.new);
            assert!(
                lost.is_empty(),
                "{label}: the layer lost changes: {} differences to its view before the \
                 commit, first: {:#?}",
                lost.len(),
                &lost[..lost.len().min(5)]
            );
            return;
        }
        if now != self.new {
            let to_old = now.differences(&self.old);
            let to_new = now.differences(&self.new);
            panic!(
                "{label}: the tree is neither old nor new\n\
                 {} differences to old, first: {:#?}\n{} differences to new, first: {:#?}\n\
                 status: {}",
                to_old.len(),
                &to_old[..to_old.len().min(8)],
                to_new.len(),
                &to_new[..to_new.len().min(8)],
                st.describe()
            );
        }
        self.news += 1;
        let mut ok = true;
        if let Some(l) = listed {
            self.problems.push(format!(
                "{label}: the tree is the new one but the layer is still listed: {l}"
            ));
            ok = false;
        }
        let unlocked = sb.flags("/usr").unlocked;
        if !unlocked.is_empty() {
            self.problems.push(format!(
                "{label}: the commit is complete but {} entries of /usr were left \
                 without i (e.g. {:?}); status mode {}",
                unlocked.len(),
                unlocked.iter().next(),
                st.result()["mode"]
            ));
        }
        if !ok {
            self.rebuild();
            return;
        }
        let u = sb.almost(&["layer", "undo", "--yes"]);
        let back = manifest(&sb.path("/usr"));
        if u.code != Some(0) || back != self.old {
            self.problems.push(format!(
                "{label}: `layer undo` after the commit finished by the recovery \
                 failed to bring back the old tree ({} differences)\n{}",
                back.differences(&self.old).len(),
                u.describe()
            ));
            self.rebuild();
            return;
        }
        self.need_layer = true;
    }

    /// A last commit, not killed, must give the merged view, locked; then
    /// the collected problems fail the test.
    fn conclude(mut self) {
        self.ensure_layer();
        self.sb
            .almost(&["layer", "commit", &self.id, "--yes"])
            .expect_ok();
        assert_manifest_eq("final commit", &manifest(&self.sb.path("/usr")), &self.new);
        self.sb.assert_locked("/usr");
        eprintln!("outcomes: {} old tree, {} new tree", self.olds, self.news);
        for n in &self.notes {
            eprintln!("note: {n}");
        }
        assert!(
            self.problems.is_empty(),
            "{} problems:\n{}",
            self.problems.len(),
            self.problems.join("\n\n")
        );
    }
}

// Checks: a layer over a locked /usr (1500 files) with about
// a thousand small files modified/deleted/added, whole directories deleted,
// an opaque directory and MB-sized files (see `change_many`); `layer commit`
// is killed with SIGKILL at a random moment within a measured commit
// duration, at least 20 times. After each kill the next `almost status` (as
// root) succeeds, and then the real /usr equals either the manifest from
// before the layer or the layer's merged view, exactly (no leftover temp or
// backup entry either). When it is the old one the layer is still listed
// with all its changes (re-mounted by hand if the kill left it unmounted,
// which is reported as a note) and the next round commits it again; when it
// is the new one the layer is gone, /usr is locked, and `layer undo` brings
// back the old tree exactly, after which a fresh layer gets the same
// changes. A mix fails at once; the other violations are collected (the tree
// is rebuilt to go on) and reported at the end. A final unkilled commit gives
// the merged view. Reproduce with ALMOST_TEST_SEED.
#[test]
fn sigkill_during_commit_gives_old_or_new_tree() {
    let sb = LayerBox::with_size_mib(256);
    let mut rig = Rig::new(&sb, build_many, change_many);
    let mut rng = fastrand::Rng::with_seed(seed());

    // Measure one commit (and check commit + undo once, unkilled).
    rig.ensure_layer();
    let r = sb.almost(&["layer", "commit", &rig.id, "--yes"]);
    r.expect_ok();
    let mut commit_time = r.elapsed;
    assert_manifest_eq("first commit", &manifest(&sb.path("/usr")), &rig.new);
    sb.assert_locked("/usr");
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("first undo", &manifest(&sb.path("/usr")), &rig.old);
    rig.need_layer = true;
    eprintln!("one commit takes {commit_time:?}");

    let mut mid_run = 0;
    for round in 0..KILLS {
        rig.ensure_layer();
        let delay = commit_time.mul_f64(rng.f64());
        match kill_commit_after(&sb, &rig.id, delay) {
            None => mid_run += 1,
            // On a busy machine the first measure may be long: keep the
            // shortest full commit seen as the range of the delays.
            Some(took) => commit_time = commit_time.min(took),
        }
        rig.judge(&format!("round {round} (kill after {delay:?})"));
    }
    eprintln!("{KILLS} kills, {mid_run} of them while the commit ran");
    assert!(
        mid_run >= KILLS / 2,
        "only {mid_run} of {KILLS} kills landed while the commit ran"
    );
    rig.conclude();
    sb.finish();
}

/// The syscalls at which the deterministic test kills a commit: every step
/// that changes the tree, the journal, the undo data or the store.
const KILL_SYSCALLS: &[&str] = &[
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "fsync",
    "fdatasync",
    "syncfs",
    "umount2",
    "mount",
    "lsetxattr",
    "fsetxattr",
    "fremovexattr",
    "fchownat",
    "lchown",
    "fchown",
    "fchmod",
    "fchmodat",
    "symlinkat",
    "mknodat",
    "utimensat",
];

/// The tree of the deterministic test.
fn build_small(sb: &LayerBox) {
    for i in 0..4 {
        sb.write(&format!("/usr/share/s/f{i}"), format!("f{i}\n"));
    }
    sb.write("/usr/share/s/deldir/x", "x\n");
    sb.write("/usr/share/s/deldir/sub/y", "y\n");
    sb.write("/usr/share/s/opq/p", "p\n");
}

/// A small layer: every kind of op, few of each.
fn change_small(sb: &LayerBox) {
    sb.write("/usr/share/s/f0", "f0 changed\n");
    fs::remove_file(sb.path("/usr/share/s/f1")).expect("rm");
    fs::set_permissions(
        sb.path("/usr/share/s/f2"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    sb.write("/usr/share/s/new/n0", "n0\n");
    fs::hard_link(
        sb.path("/usr/share/s/new/n0"),
        sb.path("/usr/share/s/new/n1"),
    )
    .expect("ln");
    fs::remove_dir_all(sb.path("/usr/share/s/deldir")).expect("rm -r");
    fs::remove_dir_all(sb.path("/usr/share/s/opq")).expect("rm -r");
    sb.write("/usr/share/s/opq/q", "q\n");
    std::os::unix::fs::symlink("f0", sb.path("/usr/share/s/link")).expect("symlink");
}

// Checks (deterministic half): the same judgement as the random
// test, for a small layer with every kind of op (modify, delete, chmod, new
// hard-linked files, a deleted directory, an opaque directory, a symlink),
// killed with SIGKILL (strace's syscall fault injection) at the calls of the
// syscalls that change the tree, the journal, the undo data or the layer
// store: rename*, link*, unlink*, mkdir*, rmdir, fsync*, syncfs, umount2,
// mount, *setxattr, *chown, *chmod, symlinkat, mknodat, utimensat, counted
// on one unkilled commit (every
// call of a syscall made up to 5 times, else the first two, the middle one and
// the last two). After each kill `almost status` runs and the tree must be
// old (layer still there with all its changes) or new (layer gone, /usr
// locked, `layer undo` gives the old tree back); a mix fails at once, the
// other violations are collected, the tree rebuilt, and all of them reported
// at the end. Skipped, loudly, when strace is not installed.
#[test]
fn sigkill_at_each_step_of_a_small_commit() {
    if !common::strace_available() {
        return;
    }
    let sb = LayerBox::new();
    let mut rig = Rig::new(&sb, build_small, change_small);

    // Count the calls of one unkilled commit.
    rig.ensure_layer();
    let (r, counts) = strace::counted(&sb, &["layer", "commit", &rig.id, "--yes"], KILL_SYSCALLS);
    r.expect_ok();
    assert_manifest_eq("unkilled commit", &manifest(&sb.path("/usr")), &rig.new);
    sb.almost(&["layer", "undo", "--yes"]).expect_ok();
    assert_manifest_eq("unkilled undo", &manifest(&sb.path("/usr")), &rig.old);
    rig.need_layer = true;
    let total: usize = counts.iter().map(|(_, c)| c).sum();
    eprintln!("kill points: {total} ({counts:?})");
    assert!(total >= 20, "too few kill points: {counts:?}");

    let mut killed = 0;
    for (name, k) in strace::kill_points(&counts, 5, 2) {
        rig.ensure_layer();
        let args = ["layer", "commit", rig.id.as_str(), "--yes"];
        let what = format!("commit killed at {name} #{k}");
        killed += usize::from(strace::killed_at(&sb, &args, &name, k, &what));
        rig.judge(&format!("killed at {name} #{k}"));
    }
    eprintln!("{killed} commits killed");
    rig.conclude();
    sb.finish();
}

/// The undo test's state: the tree before the commit, the committed tree,
/// and what was seen.
struct UndoRig<'a> {
    sb: &'a LayerBox,
    old: Manifest,
    new: Manifest,
    committed: bool,
    olds: usize,
    news: usize,
}

impl<'a> UndoRig<'a> {
    fn new(sb: &'a LayerBox) -> Self {
        build_small(sb);
        sb.almost(&["lock"]).expect_ok();
        UndoRig {
            sb,
            old: manifest(&sb.path("/usr")),
            new: Manifest::default(),
            committed: false,
            olds: 0,
            news: 0,
        }
    }

    /// Commits a fresh layer with the small changes, unless the last commit
    /// is still there to undo.
    fn ensure_committed(&mut self) {
        if self.committed {
            return;
        }
        let sb = self.sb;
        let id = sb.new_layer("/usr", &[]);
        change_small(sb);
        let view = manifest(&sb.path("/usr"));
        sb.commit(&id);
        assert_manifest_eq("commit", &manifest(&sb.lower("/usr")), &view);
        self.new = view;
        self.committed = true;
    }

    /// After a killed undo: `almost status` (as root, so it finishes an
    /// interrupted undo) must succeed, and the real /usr must then be the
    /// tree from before the commit, locked, with the undo data gone and no
    /// undo offered (the undo had begun: it was finished), or the committed
    /// tree, locked, with the undo still offered (it had not begun), which
    /// a new `layer undo` then takes back. Anything else fails at once.
    fn judge(&mut self, label: &str) {
        let sb = self.sb;
        let st = sb.almost_json(&["status"]);
        assert_eq!(st.code, Some(0), "{label}: status\n{}", st.describe());
        let undo = st.result()["undo"].clone();
        let now = manifest(&sb.lower("/usr"));
        if now == self.old {
            self.olds += 1;
            assert!(
                undo.is_null(),
                "{label}: the tree is back but an undo is still offered: {undo}"
            );
            assert!(
                fs::read_dir(sb.path("/var/lib/almost/commits")).map_or(true, |d| d.count() == 0),
                "{label}: the tree is back but the undo data is still there"
            );
        } else if now == self.new {
            self.news += 1;
            assert!(
                !undo.is_null(),
                "{label}: the committed tree, but no undo offered\n{}",
                st.describe()
            );
            sb.assert_locked("/usr");
            let u = sb.almost(&["layer", "undo", "--yes"]);
            u.expect_ok();
            assert_manifest_eq(label, &manifest(&sb.lower("/usr")), &self.old);
        } else {
            panic!(
                "{label}: the tree is neither the one before the commit nor the \
                 committed one\n{} differences to before, first: {:#?}\n{} to the \
                 commit, first: {:#?}\nstatus: {}",
                now.differences(&self.old).len(),
                &now.differences(&self.old)[..now.differences(&self.old).len().min(8)],
                now.differences(&self.new).len(),
                &now.differences(&self.new)[..now.differences(&self.new).len().min(8)],
                st.describe()
            );
        }
        sb.assert_locked("/usr");
        self.committed = false;
    }
}

/// Kills `layer undo` at each step (see the test below); `cross_fs` puts the
/// undo data on a tmpfs of its own, so the originals are copied back, not
/// renamed.
fn undo_killed_at_each_step(cross_fs: bool) {
    if !common::strace_available() {
        return;
    }
    let mut sb = LayerBox::new();
    if cross_fs {
        sb.mount_big_tmpfs("/var/lib/almost", 32);
    }
    let mut rig = UndoRig::new(&sb);

    // Count the calls of one unkilled undo.
    rig.ensure_committed();
    let (r, counts) = strace::counted(&sb, &["layer", "undo", "--yes"], KILL_SYSCALLS);
    r.expect_ok();
    assert_manifest_eq("unkilled undo", &manifest(&sb.lower("/usr")), &rig.old);
    sb.assert_locked("/usr");
    rig.committed = false;
    let points = strace::kill_points(&counts, 5, 2);
    eprintln!("kill points: {} ({counts:?})", points.len());
    assert!(points.len() >= 10, "too few kill points: {counts:?}");

    let mut killed = 0;
    for (name, k) in points {
        rig.ensure_committed();
        let what = format!("undo killed at {name} #{k}");
        killed += usize::from(strace::killed_at(
            &sb,
            &["layer", "undo", "--yes"],
            &name,
            k,
            &what,
        ));
        rig.judge(&format!("undo killed at {name} #{k}"));
    }
    eprintln!(
        "{killed} undos killed: {} finished by the next run, {} had not begun",
        rig.olds, rig.news
    );
    assert!(
        rig.olds > 0 && rig.news > 0,
        "the kills did not reach both sides of the start of the undo"
    );
    sb.finish();
}

// Checks: `layer undo` of a small commit with every kind of op, killed with
// SIGKILL (strace's fault injection) at the calls of the syscalls that change
// the tree or the undo data (as for the commit above). After each kill the
// next `almost status` finishes an undo that had begun: the real /usr is then
// exactly the tree from before the commit, locked, the undo data gone; if the
// undo had not begun, /usr is the committed tree, locked, the undo still
// offered, and `layer undo` takes it back. A mix, a tree left unlocked or an
// undo stuck half-way fails. Both outcomes must occur.
#[test]
fn sigkill_at_each_step_of_an_undo() {
    undo_killed_at_each_step(false);
}

// Checks: the same, with the undo data on another filesystem than /usr (a
// tmpfs on /var/lib/almost): the saved originals are copied back under a
// temporary name, and a kill during the copy must not leave a partial copy
// that passes for the whole.
#[test]
fn sigkill_at_each_step_of_an_undo_across_filesystems() {
    undo_killed_at_each_step(true);
}

// Checks: the layer store (/var/lib/almost) is a tmpfs of its
// own, so the layer's upper dir holds more data than the nearly full ext4
// tree beneath can take. `layer commit` fails with exit 11 (no-space) and a
// message naming the lack of space; afterwards the real /usr equals the
// manifest from before exactly (nothing half-applied, no temp or backup
// entry), the layer is still listed and mounted again with its changes
// (its merged view unchanged), and e2fsck is clean. A discard afterwards
// gives back the old tree, locked.
#[test]
fn full_disk_during_commit_rolls_back() {
    let mut sb = LayerBox::new();
    sb.mount_big_tmpfs("/var/lib/almost", 96);
    sb.write("/usr/share/data/existing.txt", "existing\n");
    for i in 0..50 {
        sb.write(&format!("/usr/share/data/small/s{i:02}"), format!("{i}\n"));
    }
    sb.almost(&["lock"]).expect_ok();
    let before = manifest(&sb.path("/usr"));
    let flags_before = sb.flag_map("/usr");

    let id = sb.new_layer("/usr", &[]);
    // Small changes first (they fit), then more than the disk can take.
    sb.write("/usr/share/data/existing.txt", "changed\n");
    for i in 0..50 {
        sb.write(
            &format!("/usr/share/data/small/s{i:02}"),
            format!("{i} new\n"),
        );
    }
    for i in 0..4 {
        sb.write(
            &format!("/usr/share/data/zz-big-{i}.bin"),
            (0..4u32 << 20)
                .map(|j| (j % 251) as u8 ^ i as u8)
                .collect::<Vec<_>>(),
        );
    }
    let merged = manifest(&sb.path("/usr"));

    // Fill the ext4 image, leaving ~3 MiB free (less than the 16 MiB needed).
    let st = nix::sys::statvfs::statvfs(&sb.path("/home")).expect("statvfs");
    let free = st.blocks_free() as u64 * st.fragment_size() as u64;
    let fill = free.saturating_sub(3 << 20);
    common::sh(
        "fallocate",
        &[
            "-l".as_ref(),
            fill.to_string().as_ref(),
            sb.path("/home/filler").as_os_str(),
        ],
    );

    let r = sb.almost(&["layer", "commit", &id, "--yes"]);
    eprintln!("the commit on a full disk:\n{}", r.describe());
    assert_eq!(
        r.code,
        Some(11),
        "commit on a full disk did not fail with exit 11 (no-space)\n{}",
        r.describe()
    );
    let out = r.all_output().to_lowercase();
    assert!(
        out.contains("no space left") || out.contains("enospc"),
        "the error does not say the disk is full\n{}",
        r.describe()
    );
    assert_manifest_eq(
        "real /usr after the failed commit",
        &manifest(&sb.lower("/usr")),
        &before,
    );
    let l = sb
        .listed(&id)
        .unwrap_or_else(|| panic!("the layer is gone after a failed commit\n{}", r.describe()));
    assert_eq!(l["mounted"], true, "layer not mounted again: {l}");
    assert_manifest_eq(
        "the layer's view after the failed commit",
        &manifest(&sb.path("/usr")),
        &merged,
    );
    // A status as root finds nothing left to finish.
    let st = sb.almost_json(&["status"]);
    st.expect_ok();
    assert!(st.events("warning").is_empty(), "{}", st.describe());
    assert_manifest_eq(
        "real /usr after status",
        &manifest(&sb.lower("/usr")),
        &before,
    );

    fs::remove_file(sb.path("/home/filler")).expect("rm filler");
    sb.discard(&id);
    assert_manifest_eq("/usr after discard", &manifest(&sb.path("/usr")), &before);
    assert_eq!(sb.flag_map("/usr"), flags_before, "flags after discard");
    sb.finish();
}
