// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of `lock`, `unlock` and `status` on a rich tree: every
//! file and directory of the managed trees gets the flag and nothing else
//! does, special entries are skipped without being opened, nested mounts are
//! not crossed, both kernel interfaces converge, a partial state is measured
//! exactly, and an unprivileged caller can look but not touch.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{OpenWatch, Sandbox, Spawned, path_entry, rich};
use serde_json::Value;

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

fn count(v: &Value) -> usize {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")) as usize
}

/// The full convergence check, with extra global arguments (e.g. the hidden
/// `--flag-interface`).
fn lock_unlock_cycle(extra: &[&str]) {
    let mut sb = Sandbox::new();
    sb.build_rich_tree();
    let watch = OpenWatch::new(&[sb.path(rich::FIFO), sb.path(rich::CHARDEV)]);
    let (usr_n, usr_special) = sb.expected_counts("/usr");
    let (opt_n, opt_special) = sb.expected_counts("/opt");
    assert!(usr_special >= 6, "the rich tree lost its special entries");

    let args = |cmd: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["--json".into()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(cmd.iter().map(|s| s.to_string()));
        a
    };
    let run = |cmd: &[&str]| {
        let a = args(cmd);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        // A generous but finite timeout: opening the fifo would hang here.
        Spawned::spawn(sb.command(&a)).wait(Duration::from_secs(60))
    };

    // --- lock ---
    let r = run(&["lock"]);
    r.expect_ok();
    let res = r.result();
    assert_eq!(res["command"], "lock", "{}", r.describe());
    assert_eq!(res["mode"], "locked", "{}", r.describe());
    let listed: BTreeSet<String> = res["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["path"].as_str().expect("path").to_owned())
        .collect();
    // Default managed set: of /usr /bin /sbin /lib* /opt only /usr and /opt exist here.
    assert_eq!(listed, ["/opt", "/usr"].map(String::from).into());
    let usr = path_entry(&res, "/usr");
    assert_eq!(usr["mode"], "locked");
    assert_eq!(count(&usr["locked"]), usr_n, "files+dirs of /usr: {usr}");
    assert_eq!(count(&usr["unlocked"]), 0);
    assert_eq!(
        count(&usr["skipped"]),
        usr_special,
        "symlinks/fifo/dev/socket: {usr}"
    );
    assert_eq!(
        strings(&usr["mount_points"]),
        [rich::BOUND, rich::TMPFS].map(String::from).into(),
        "{usr}"
    );
    assert_eq!(count(&usr["error_count"]), 0, "{usr}");
    let opt = path_entry(&res, "/opt");
    assert_eq!(count(&opt["locked"]), opt_n, "{opt}");
    assert_eq!(count(&opt["skipped"]), opt_special);
    assert!(strings(&opt["mount_points"]).is_empty());
    let changed = count(&res["changed"]);
    assert!(
        changed >= 1 && changed <= usr_n + opt_n,
        "changed = {changed}, entries = {}",
        usr_n + opt_n
    );

    // The oracle: everything managed has `i`, the tree roots included …
    assert!(sb.has_i("/usr") && sb.has_i("/opt"));
    assert_eq!(sb.assert_locked("/usr").total(), usr_n);
    sb.assert_locked("/opt");
    for p in [
        rich::NEWLINE,
        rich::SPACES,
        rich::BIG,
        rich::EMPTY,
        rich::EMPTY_DIR,
    ] {
        assert!(sb.has_i(p), "{p:?} not locked");
    }
    // … and nothing else: /home/outside (symlink and bind target), the nested
    // tmpfs, /etc, /var, the sandbox root itself.
    sb.assert_clean_outside(&["/usr", "/opt"]);
    assert!(!sb.has_i("/"));
    sb.assert_unlocked(rich::OUTSIDE);
    sb.assert_unlocked("/etc");
    sb.assert_unlocked("/var");
    // Fifo and device node were never opened.
    let opened = watch.opened();
    assert!(opened.is_empty(), "special entries were opened: {opened:?}");

    // A second lock finds nothing to change.
    let r = run(&["lock"]);
    r.expect_ok();
    assert_eq!(count(&r.result()["changed"]), 0, "{}", r.describe());

    let r = run(&["status"]);
    r.expect_ok();
    let st = r.result();
    assert_eq!(st["mode"], "locked", "{}", r.describe());
    assert_eq!(count(&path_entry(&st, "/usr")["locked"]), usr_n);

    // --- unlock ---
    let r = run(&["unlock", "--yes"]);
    r.expect_ok();
    let res = r.result();
    assert_eq!(res["mode"], "unlocked", "{}", r.describe());
    let usr = path_entry(&res, "/usr");
    assert_eq!(count(&usr["unlocked"]), usr_n, "{usr}");
    assert_eq!(count(&usr["locked"]), 0, "{usr}");
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");
    sb.assert_clean_outside(&[]);
    assert!(watch.opened().is_empty(), "special entries were opened");

    let r = run(&["status"]);
    r.expect_ok();
    assert_eq!(r.result()["mode"], "unlocked", "{}", r.describe());

    sb.unmount_and_fsck();
}

// Checks: lock on the rich tree flags every file and dir of
// /usr and /opt (roots included) and nothing outside (symlink targets, the
// bind-mount target, the nested tmpfs, /etc, /var); fifo/device/socket are
// counted as skipped and never opened (inotify) and the run does not hang;
// mount_points lists both nested mounts; status says locked; unlock clears
// everything; status says unlocked; the image passes e2fsck.
#[test]
fn lock_unlock_rich_tree_default_interface() {
    lock_unlock_cycle(&[]);
}

// Checks: the same convergence through the FS_IOC_SETFLAGS
// fallback, chosen explicitly.
#[test]
fn lock_unlock_rich_tree_ioctl() {
    lock_unlock_cycle(&["--flag-interface", "ioctl"]);
}

// Checks: the same convergence through file_setattr(2).
#[test]
fn lock_unlock_rich_tree_file_setattr() {
    lock_unlock_cycle(&["--flag-interface", "file-setattr"]);
}

// Checks: a tree locked through one interface is seen and
// unlocked through the other (both read and write the same bit).
#[test]
fn interfaces_agree() {
    let mut sb = Sandbox::new();
    sb.build_rich_tree();
    sb.almost(&["--flag-interface", "ioctl", "lock"])
        .expect_ok();
    let st = sb.almost_json(&["--flag-interface", "file-setattr", "status"]);
    st.expect_ok();
    assert_eq!(st.result()["mode"], "locked", "{}", st.describe());
    sb.almost(&["--flag-interface", "file-setattr", "unlock", "--yes"])
        .expect_ok();
    let st = sb.almost_json(&["--flag-interface", "ioctl", "status"]);
    assert_eq!(st.result()["mode"], "unlocked", "{}", st.describe());
    sb.assert_unlocked("/usr");
}

// Checks: after a lock, clearing `i` on one file by hand makes
// status report "partial" with exactly one unlocked entry in /usr, /opt still
// locked; the text output says partial too; a new lock repairs it.
#[test]
fn status_partial_counts_exactly() {
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 250);
    let (usr_n, _) = sb.expected_counts("/usr");
    sb.almost(&["lock"]).expect_ok();
    let st = Command::new("chattr")
        .arg("-i")
        .arg(sb.path("/usr/share/many/d001/f00123"))
        .status()
        .expect("chattr");
    assert!(st.success());

    let r = sb.almost_json(&["status"]);
    r.expect_ok();
    let res = r.result();
    assert_eq!(res["mode"], "partial", "{}", r.describe());
    let usr = path_entry(&res, "/usr");
    assert_eq!(usr["mode"], "partial");
    assert_eq!(count(&usr["unlocked"]), 1, "{usr}");
    assert_eq!(count(&usr["locked"]), usr_n - 1, "{usr}");
    let opt = path_entry(&res, "/opt");
    assert_eq!(opt["mode"], "locked");
    assert_eq!(count(&opt["unlocked"]), 0);

    let text = sb.almost(&["status"]);
    text.expect_ok();
    assert!(
        text.stdout.to_lowercase().contains("partial"),
        "text status does not say partial\n{}",
        text.describe()
    );

    let r = sb.almost_json(&["lock"]);
    r.expect_ok();
    assert_eq!(count(&r.result()["changed"]), 1, "{}", r.describe());
    sb.assert_locked("/usr");
}

// Checks: walking a tree (lock, unlock, status) leaves the access times of
// its directories alone. The mount is relatime and every directory's atime is
// set far in the past, so a plain read of the directory would update it.
#[test]
fn walks_leave_directory_access_times_alone() {
    use std::os::unix::fs::MetadataExt;
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 40);
    let dirs: Vec<std::path::PathBuf> = common::walk(&sb.path("/usr"))
        .into_iter()
        .filter(|(_, kind)| *kind == common::Kind::Dir)
        .map(|(p, _)| p)
        .collect();
    assert!(dirs.len() > 3, "the tree has too few directories: {dirs:?}");
    let old = nix::sys::time::TimeSpec::new(946_684_800, 0); // 2000-01-01
    for d in &dirs {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            d,
            &old,
            &nix::sys::time::TimeSpec::UTIME_OMIT,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .expect("utimensat");
    }
    // The control: reading a directory the ordinary way does update it, so
    // the check below can fail.
    let probe = sb.path("/usr/share");
    std::fs::read_dir(&probe).expect("read_dir").for_each(drop);
    assert_ne!(
        std::fs::metadata(&probe).expect("stat").atime(),
        946_684_800,
        "relatime did not update an old atime: the check below proves nothing"
    );
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &probe,
        &old,
        &nix::sys::time::TimeSpec::UTIME_OMIT,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .expect("utimensat");

    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["status"]).expect_ok();
    sb.almost(&["unlock", "--yes"]).expect_ok();
    for d in &dirs {
        let atime = std::fs::metadata(d).expect("stat").atime();
        assert_eq!(atime, 946_684_800, "{} got a new atime", d.display());
    }
}

// Checks: status works as `nobody` and reads the real flags;
// lock and unlock as `nobody` exit 3 (kind not-root) and change nothing.
#[test]
fn unprivileged_status_works_and_changes_are_refused() {
    let mut sb = Sandbox::new();
    sb.build_rich_tree();

    let r = sb.almost_as_nobody(&["--json", "status"]);
    r.expect_ok();
    assert_eq!(r.result()["mode"], "unlocked", "{}", r.describe());

    let r = sb.almost_as_nobody(&["--json", "lock"]);
    let err = r.expect_error(3, "not-root");
    assert_eq!(err["exit_code"], 3);
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");
    sb.assert_clean_outside(&[]);
    sb.almost_as_nobody(&["lock"]).expect_code(3);
    sb.almost_as_nobody(&["enter", "ro"]).expect_code(3);
    sb.assert_unlocked("/usr");

    sb.almost(&["lock"]).expect_ok();
    let r = sb.almost_as_nobody(&["--json", "status"]);
    r.expect_ok();
    assert_eq!(r.result()["mode"], "locked", "{}", r.describe());
    sb.almost_as_nobody(&["unlock", "--yes"]).expect_code(3);
    sb.almost_as_nobody(&["config", "set", "default_mode", "unlocked"])
        .expect_code(3);
    assert!(!sb.config_path().exists(), "nobody wrote the config");
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
}

// Checks (docs, JSON output): every stdout line of `--json` lock/unlock is a
// JSON object; progress events name the phase as in the documented example
// (`"phase":"lock"` for lock, `"unlock"` for unlock), count up to a total that
// is null or not exceeded, and name a managed path; the result comes last.
#[test]
fn progress_events_follow_the_protocol() {
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 3000);
    for (cmd, phase) in [(&["lock"][..], "lock"), (&["unlock", "--yes"], "unlock")] {
        let r = sb.almost_json(cmd);
        r.expect_ok();
        let events = r.json();
        assert_eq!(
            events.last().map(|e| e["event"].clone()),
            Some(Value::from("result")),
            "the result is not the last line\n{}",
            r.describe()
        );
        for e in events.iter().filter(|e| e["event"] == "progress") {
            assert_eq!(e["phase"], phase, "progress of {cmd:?}: {e}");
            let done = e["done"].as_u64().unwrap_or_else(|| panic!("done: {e}"));
            if let Some(total) = e["total"].as_u64() {
                assert!(done <= total, "done > total: {e}");
            } else {
                assert!(e["total"].is_null(), "total: {e}");
            }
            let path = e["path"].as_str().unwrap_or_default();
            assert!(
                path == "/usr" || path == "/opt",
                "progress path {path:?}: {e}"
            );
        }
    }
}

// Checks: concurrent `lock`s (as boot unit, panel and a user might start
// them) all succeed and leave the tree fully locked; concurrent identical
// `unlock`s likewise leave it fully unlocked.
#[test]
fn concurrent_identical_commands_converge() {
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 2000);
    let runs: Vec<Spawned> = (0..3).map(|_| sb.spawn(&["lock"])).collect();
    for r in runs {
        r.wait(Duration::from_secs(60)).expect_ok();
    }
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    let runs: Vec<Spawned> = (0..3).map(|_| sb.spawn(&["unlock", "--yes"])).collect();
    for r in runs {
        r.wait(Duration::from_secs(60)).expect_ok();
    }
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");
}

// Checks: a lock and an unlock started together do not leave the tree in a
// state nobody asked for: whatever each exits with, the end state is fully
// locked or fully unlocked, never partial.
#[test]
fn racing_lock_and_unlock_end_in_a_whole_state() {
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 3000);
    for round in 0..5 {
        let a = sb.spawn(&["lock"]);
        let b = sb.spawn(&["unlock", "--yes"]);
        let ra = a.wait(Duration::from_secs(60));
        let rb = b.wait(Duration::from_secs(60));
        for r in [&ra, &rb] {
            assert!(
                matches!(r.code, Some(0) | Some(8)),
                "round {round}\n{}",
                r.describe()
            );
        }
        let rep = sb.flags("/usr");
        assert!(
            rep.locked.is_empty() || rep.unlocked.is_empty(),
            "round {round}: racing lock and unlock left {} locked and {} unlocked",
            rep.locked.len(),
            rep.unlocked.len()
        );
    }
}

/// Builds `levels` nested directories named `name` under `top` with a file
/// `bottom` at the end, through directory fds (the full path is longer than
/// PATH_MAX), and returns an fd of the deepest directory.
fn build_deep(top: &std::path::Path, name: &str, levels: usize) -> std::os::fd::OwnedFd {
    use nix::fcntl::{OFlag, open, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let mut fd = open(top, dir_flags, Mode::empty()).expect("open top");
    for _ in 0..levels {
        mkdirat(&fd, name, Mode::from_bits_truncate(0o755)).expect("mkdirat");
        fd = openat(&fd, name, dir_flags, Mode::empty()).expect("openat");
    }
    let f = openat(
        &fd,
        "bottom",
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .expect("create bottom");
    nix::unistd::write(&f, b"x").expect("write bottom");
    fd
}

/// lsattr's flag columns for `bottom` and `.` in the directory behind `fd`
/// (lsattr runs there through /proc/<pid>/fd/<n>, so its paths stay short).
fn lsattr_in(fd: &std::os::fd::OwnedFd) -> Vec<String> {
    use std::os::fd::AsRawFd;
    let here = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
    let out = Command::new("lsattr")
        .args(["-d", "bottom", "."])
        .current_dir(&here)
        .output()
        .expect("lsattr");
    assert!(
        out.status.success(),
        "lsattr in the deep dir: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect()
}

// Checks: names that are not UTF-8 are flagged like any other and the JSON
// output stays valid; a tree deeper than PATH_MAX (90 levels of 60-byte
// names, over 5000 bytes) is walked to the bottom, counted exactly, locked
// and unlocked.
#[test]
fn non_utf8_names_and_paths_longer_than_path_max() {
    use std::os::unix::ffi::OsStrExt;
    let sb = Sandbox::new();
    let weird = sb
        .path("/usr/share")
        .join(std::ffi::OsStr::from_bytes(b"bad-\xff\xfe-name"));
    std::fs::write(&weird, "x").expect("write non-UTF-8 name");
    let deep = build_deep(&sb.path("/opt"), &"n".repeat(60), 90);
    let (opt_before, _) = sb.expected_counts("/opt/app");

    let r = sb.almost_json(&["lock"]);
    r.expect_ok();
    let res = r.result();
    assert_eq!(res["mode"], "locked", "{}", r.describe());
    // /opt itself, /opt/app's entries, 90 dirs and the bottom file.
    assert_eq!(
        count(&path_entry(&res, "/opt")["locked"]),
        1 + opt_before + 90 + 1,
        "{}",
        r.describe()
    );
    assert!(common::has_i(&weird), "non-UTF-8 name not locked");
    sb.assert_locked("/usr");
    for flags in lsattr_in(&deep) {
        assert!(flags.contains('i'), "deep entry not locked: {flags}");
    }
    assert_eq!(sb.status()["mode"], "locked");

    sb.almost(&["unlock", "--yes"]).expect_ok();
    for flags in lsattr_in(&deep) {
        assert!(!flags.contains('i'), "deep entry still locked: {flags}");
    }
    assert!(!common::has_i(&weird));
}

// Checks: an overlay mount inside a managed tree is reported in `overlays`
// (and as a mount point) and is not crossed: its merged view gets no flag.
#[test]
fn overlay_inside_managed_tree_is_reported_not_crossed() {
    let sb = Sandbox::new();
    sb.write("/var/lib/ov/lower/file", "lower\n");
    sb.mkdir("/var/lib/ov/upper");
    sb.mkdir("/var/lib/ov/work");
    sb.mkdir("/usr/share/ov");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        sb.path("/var/lib/ov/lower").display(),
        sb.path("/var/lib/ov/upper").display(),
        sb.path("/var/lib/ov/work").display()
    );
    let mut sb = sb;
    sb.mount_overlay(&opts, "/usr/share/ov");
    let r = sb.almost_json(&["lock"]);
    r.expect_ok();
    let usr = path_entry(&r.result(), "/usr").clone();
    assert_eq!(
        strings(&usr["overlays"]),
        ["/usr/share/ov".to_owned()].into(),
        "{usr}"
    );
    assert!(
        strings(&usr["mount_points"]).contains("/usr/share/ov"),
        "{usr}"
    );
    assert!(!sb.has_i("/usr/share/ov/file"));
    assert!(!sb.has_i("/var/lib/ov/lower/file"));
    assert!(
        !sb.path("/var/lib/ov/upper/file").exists(),
        "the walk copied a file up into the overlay"
    );
    let st = sb.status();
    assert_eq!(
        strings(&path_entry(&st, "/usr")["overlays"]),
        ["/usr/share/ov".to_owned()].into()
    );
}

// Checks (docs: status "never trusts a state file"): with garbage in every
// file of the runtime state directory, status still measures the flags
// (a hand-made partial state is reported as partial by an unprivileged
// status); a status as root takes the damaged state as a pending re-lock
// and locks (fail closed, see boundary.rs); lock still works.
#[test]
fn corrupt_state_files_are_not_trusted() {
    let sb = Sandbox::new();
    sb.almost(&["unlock", "--for", "1h", "--yes"]).expect_ok();
    sb.almost(&["lock"]).expect_ok();
    let state = sb.path("/run/almost");
    let mut corrupted = 0;
    for entry in std::fs::read_dir(&state).expect("the state directory exists") {
        let p = entry.expect("entry").path();
        if p.is_file() {
            std::fs::write(&p, "garbage{{\n").expect("corrupt");
            corrupted += 1;
        }
    }
    assert!(
        corrupted > 0,
        "no state file to corrupt in {}",
        state.display()
    );
    let st = Command::new("chattr")
        .arg("-i")
        .arg(sb.path("/usr/bin/tool"))
        .status()
        .expect("chattr");
    assert!(st.success());
    let r = sb.almost_as_nobody(&["--json", "status"]);
    r.expect_ok();
    let st = r.result();
    assert_eq!(st["mode"], "partial", "{st}");
    assert_eq!(count(&path_entry(&st, "/usr")["unlocked"]), 1, "{st}");
    assert_eq!(sb.status()["mode"], "locked");
    sb.almost(&["lock"]).expect_ok();
    sb.assert_locked("/usr");
}
