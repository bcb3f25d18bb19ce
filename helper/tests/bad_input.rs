// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of bad input: each case gives a clear message, the
//! documented exit code (and JSON error kind), and changes nothing — no flag
//! set (lsattr oracle) and no file rewritten.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{ALMOST, Run, Sandbox, Spawned};

/// No file or directory anywhere in the sandbox has `i`.
#[track_caller]
fn nothing_flagged(sb: &Sandbox) {
    sb.assert_clean_outside(&[]);
}

/// Runs `lock` with a config text, expecting a config error (exit 4, kind
/// "config") whose message names the file, and nothing flagged. Returns the
/// JSON error message.
#[track_caller]
fn lock_with_bad_config(sb: &Sandbox, config: &str) -> String {
    sb.write_config(config);
    let r = sb.almost(&["lock"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("almost.toml"),
        "message does not name the file\n{}",
        r.describe()
    );
    let r = sb.almost_json(&["lock"]);
    let e = r.expect_error(4, "config");
    nothing_flagged(sb);
    assert_eq!(sb.read("/etc/almost/almost.toml"), config.as_bytes());
    e["message"].as_str().expect("message").to_owned()
}

/// Whether a message locates line `line` (as "line N" or as "file:N:col").
fn names_line(msg: &str, line: usize) -> bool {
    let lower = msg.to_lowercase();
    lower.contains(&format!("line {line}")) || lower.contains(&format!("almost.toml:{line}:"))
}

fn names_column(msg: &str) -> bool {
    let lower = msg.to_lowercase();
    lower.contains("column") || lower.contains("col ") || {
        // file:LINE:COL
        lower.split("almost.toml:").nth(1).is_some_and(|rest| {
            rest.split(':')
                .take(2)
                .all(|n| n.trim().parse::<u32>().is_ok())
        })
    }
}

// Checks: malformed TOML → exit 4, JSON kind "config", the
// message names the file, line 3 and the column; nothing flagged; the file
// is not rewritten.
#[test]
fn malformed_toml() {
    let sb = Sandbox::new();
    let msg = lock_with_bad_config(&sb, "# almost\ndefault_mode = \"locked\"\npaths = [/usr]\n");
    assert!(names_line(&msg, 3), "no line 3 in {msg:?}");
    assert!(names_column(&msg), "no column in {msg:?}");
    // status reads the config too and must not pretend all is well.
    sb.almost(&["status"]).expect_code(4);
}

// Checks: an unknown key → exit 4, the message names the key
// and its line.
#[test]
fn unknown_key() {
    let sb = Sandbox::new();
    let msg = lock_with_bad_config(&sb, "default_mode = \"locked\"\ncolour = \"blue\"\n");
    assert!(msg.contains("colour"), "key not named in {msg:?}");
    assert!(names_line(&msg, 2), "no line 2 in {msg:?}");
}

// Checks: a bad default_mode value → exit 4 with its line;
// `config set default_mode` with a bad value is refused too and leaves the
// file byte for byte as it was.
#[test]
fn bad_default_mode() {
    let sb = Sandbox::new();
    let msg = lock_with_bad_config(&sb, "paths = [\"/usr\"]\ndefault_mode = \"sometimes\"\n");
    assert!(
        msg.contains("sometimes") || msg.contains("default_mode"),
        "{msg:?}"
    );
    assert!(names_line(&msg, 2), "no line 2 in {msg:?}");

    let good = "# keep me\ndefault_mode = \"locked\"\n";
    sb.write_config(good);
    let r = sb.almost(&["config", "set", "default_mode", "sometimes"]);
    // A bad value on the command line: usage (2) or config (4).
    assert!(
        matches!(r.code, Some(2) | Some(4)),
        "bad default_mode accepted\n{}",
        r.describe()
    );
    assert!(!r.stderr.trim().is_empty(), "no message\n{}", r.describe());
    assert_eq!(sb.read("/etc/almost/almost.toml"), good.as_bytes());
    let r = sb.almost(&["config", "set", "no_such_key", "x"]);
    assert!(matches!(r.code, Some(2) | Some(4)), "{}", r.describe());
    assert_eq!(sb.read("/etc/almost/almost.toml"), good.as_bytes());
    nothing_flagged(&sb);
}

// Checks: paths in the config that are relative, contain
// `..`, are `/` or a forbidden tree (/etc, /home, inside /var), nest, or an
// exclude outside the managed paths → exit 4 each; nothing flagged (in
// particular /etc is untouched).
#[test]
fn bad_paths_in_config() {
    let sb = Sandbox::new();
    for (config, what) in [
        ("paths = [\"/usr/../etc\"]\n", ".."),
        ("paths = [\"/usr/lib/..\"]\n", "trailing .."),
        ("paths = [\"usr\"]\n", "relative"),
        ("paths = [\"/\"]\n", "/"),
        ("paths = [\"/etc\"]\n", "/etc"),
        ("paths = [\"/home/user\"]\n", "in /home"),
        ("paths = [\"/usr\", \"/usr/lib\"]\n", "nested"),
        (
            "paths = [\"/usr\"]\nexclude = [\"/var/lib\"]\n",
            "exclude outside",
        ),
        (
            "paths = [\"/usr\"]\nexclude = [\"lib\"]\n",
            "relative exclude",
        ),
    ] {
        let r = {
            sb.write_config(config);
            sb.almost_json(&["lock"])
        };
        assert_eq!(
            r.code,
            Some(4),
            "config with {what} path not refused with 4\n{}",
            r.describe()
        );
        nothing_flagged(&sb);
    }
}

// Checks: `config set paths` with a bad path is an invalid
// path given on the command line → exit 5 (docs: "a path … contains ..");
// the file is not changed (and not created when absent).
#[test]
fn config_set_bad_paths() {
    let sb = Sandbox::new();
    for bad in ["../x", "usr", "/usr/../etc", "/etc", "/"] {
        let r = sb.almost_json(&["config", "set", "paths", bad]);
        r.expect_error(5, "invalid-path");
        assert!(!sb.config_path().exists(), "config written for {bad:?}");
    }
    let good = "# mine\npaths = [\"/usr\"]\n";
    sb.write_config(good);
    for bad in ["../x", "/usr/../var"] {
        sb.almost(&["config", "set", "paths", "/opt", bad])
            .expect_code(5);
        sb.almost(&["config", "set", "exclude", bad]).expect_code(5);
        assert_eq!(sb.read("/etc/almost/almost.toml"), good.as_bytes());
    }
    nothing_flagged(&sb);
}

fn almost_raw(root: &Path, args: &[&str], cwd: &Path) -> Run {
    let mut c = Command::new(ALMOST);
    c.arg("--root").arg(root).args(args).current_dir(cwd);
    Spawned::spawn(c).wait(Duration::from_secs(60))
}

// Checks: a --root that does not exist, that is relative (it
// exists relative to the working directory, so only its relativity is
// wrong), or that is a file → exit 5 (kind invalid-path); nothing flagged.
#[test]
fn bad_root() {
    let sb = Sandbox::new();
    let missing = sb.dir.join("no-such-root");
    for (root, cwd) in [
        (missing.as_path(), sb.dir.as_path()),
        (Path::new("root"), sb.dir.as_path()),
        (Path::new("./root"), sb.dir.as_path()),
        (sb.image.as_path(), sb.dir.as_path()),
    ] {
        for cmd in [&["lock"][..], &["status"], &["unlock", "--yes"]] {
            let r = almost_raw(root, cmd, cwd);
            r.expect_code(5);
            assert!(!r.stderr.trim().is_empty(), "no message\n{}", r.describe());
        }
        let r = almost_raw(root, &["--json", "lock"], cwd);
        r.expect_error(5, "invalid-path");
    }
    assert!(!missing.exists());
    nothing_flagged(&sb);
}

// Checks: a managed path on a filesystem without the
// immutable flag (vfat; ramfs where the kernel has no vfat, as on the dev VM)
// → lock exits 7 with one message for that filesystem, not one per file;
// /usr (locked before) is still fully locked; status reports /opt
// unsupported.
#[test]
fn filesystem_without_flag_support() {
    let mut sb = Sandbox::new();
    sb.almost(&["lock"]).expect_ok();
    let fstype = sb.mount_flagless("/opt", 40);
    eprintln!("/opt is {fstype}");

    let r = sb.almost(&["lock"]);
    r.expect_code(7);
    let per_file = r.stderr.lines().filter(|l| l.contains("/opt/sub")).count();
    let about_opt = r.stderr.lines().filter(|l| l.contains("/opt")).count();
    assert_eq!(per_file, 0, "one message per file\n{}", r.describe());
    assert!(
        (1..=2).contains(&about_opt),
        "expected one message about /opt\n{}",
        r.describe()
    );
    sb.assert_locked("/usr");

    let r = sb.almost_json(&["lock"]);
    r.expect_error(7, "unsupported");
    assert!(
        !r.stdout.contains("/opt/sub"),
        "per-file entries for an unsupported filesystem\n{}",
        r.describe()
    );
    sb.assert_locked("/usr");

    let r = sb.almost_json(&["status"]);
    assert!(matches!(r.code, Some(0) | Some(7)), "{}", r.describe());
    let res = r.result();
    let opt = common::path_entry(&res, "/opt");
    assert!(
        opt["unsupported"].is_string(),
        "/opt not reported unsupported: {opt}"
    );
    assert_eq!(common::path_entry(&res, "/usr")["mode"], "locked");
}

// Checks: a managed path mounted read-only → lock exits 7
// with a message that says read-only; status reports read_only for it.
#[test]
fn read_only_mount() {
    let mut sb = Sandbox::new();
    sb.bind_read_only("/opt");
    let r = sb.almost(&["lock"]);
    r.expect_code(7);
    let msg = r.stderr.to_lowercase();
    assert!(
        msg.contains("read-only") || msg.contains("read only"),
        "message does not say read-only\n{}",
        r.describe()
    );
    sb.assert_unlocked("/opt");

    let r = sb.almost_json(&["lock"]);
    r.expect_error(7, "unsupported");

    let r = sb.almost_json(&["status"]);
    assert!(matches!(r.code, Some(0) | Some(7)), "{}", r.describe());
    let res = r.result();
    assert_eq!(common::path_entry(&res, "/opt")["read_only"], true, "{res}");
    assert_eq!(
        common::path_entry(&res, "/usr")["read_only"],
        false,
        "{res}"
    );
}

// Checks (docs, usage): unknown commands and options, `run` without a command
// and a bad `--for` duration → exit 2; nothing flagged.
#[test]
fn usage_errors() {
    let sb = Sandbox::new();
    for args in [
        &["frobnicate"][..],
        &["lock", "--bogus"],
        &["run"],
        &["unlock", "--for", "soon", "--yes"],
        &["unlock", "--for", "0s", "--yes"],
        &["enter", "sideways"],
    ] {
        let r = sb.almost(args);
        r.expect_code(2);
        assert!(!r.stderr.trim().is_empty(), "no message\n{}", r.describe());
    }
    nothing_flagged(&sb);
}

// Checks (docs, usage under --json): clap's usage errors, with --json before
// or after the subcommand, are the protocol's error event on stdout (kind
// "usage", exit_code 2, clap's message naming the bad word) and exit 2, with
// nothing else on stdout; without --json they stay text on stderr and stdout
// is empty.
#[test]
fn usage_errors_under_json_are_error_events() {
    let sb = Sandbox::new();
    for (args, word) in [
        (&["--json", "frobnicate"][..], "frobnicate"),
        (&["lock", "--bogus", "--json"], "--bogus"),
        (&["--json", "run"], "<CMD>"),
        (&["config", "--json", "get"], "<KEY>"),
        (&["--json", "enter", "sideways"], "sideways"),
    ] {
        let r = sb.almost(args);
        r.expect_code(2);
        let lines = r.json();
        assert_eq!(lines.len(), 1, "one event expected\n{}", r.describe());
        let e = &lines[0];
        assert_eq!(e["event"], "error", "{}", r.describe());
        assert_eq!(e["kind"], "usage", "{}", r.describe());
        assert_eq!(e["exit_code"], 2, "{}", r.describe());
        assert_eq!(e["protocol"], 1, "{}", r.describe());
        let message = e["message"].as_str().expect("message");
        assert!(message.contains(word), "{word} not named\n{}", r.describe());
        let text_args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let t = sb.almost(&text_args);
        t.expect_code(2);
        assert!(
            t.stdout.is_empty(),
            "text mode printed on stdout\n{}",
            t.describe()
        );
        assert!(t.stderr.contains(word), "{}", t.describe());
    }
    // After `--` the words are the command's: its --json is not almost's,
    // and a usage error there stays text.
    let r = sb.almost(&["lock", "--bogus", "--", "--json"]);
    r.expect_code(2);
    assert!(r.stdout.is_empty(), "{}", r.describe());
    nothing_flagged(&sb);
}

// Checks (docs, exit 6): as root but without CAP_LINUX_IMMUTABLE no flag can
// be changed: lock runs, exits 6 (kind "partial"), counts every file and dir
// as an error with errno 1 (EPERM), lists the paths as paths inside the root
// (not host paths), and nothing is flagged.
#[test]
fn entries_that_cannot_be_changed_give_partial() {
    let sb = Sandbox::new();
    sb.populate("/usr/share/many", 50);
    let (usr_n, _) = sb.expected_counts("/usr");
    let (opt_n, _) = sb.expected_counts("/opt");
    let mut c = Command::new("setpriv");
    c.args([
        "--inh-caps=-linux_immutable",
        "--bounding-set=-linux_immutable",
        ALMOST,
        "--json",
        "--root",
    ])
    .arg(&sb.root)
    .arg("lock");
    let r = Spawned::spawn(c).wait(Duration::from_secs(60));
    r.expect_error(6, "partial");
    let res = r.result();
    let root = sb.root.to_string_lossy().into_owned();
    for (path, n) in [("/usr", usr_n), ("/opt", opt_n)] {
        let p = common::path_entry(&res, path);
        assert_eq!(p["error_count"].as_u64(), Some(n as u64), "{p}");
        let errors = p["errors"].as_array().expect("errors");
        assert!(!errors.is_empty(), "{p}");
        for err in errors {
            assert_eq!(err["errno"], 1, "{err}");
            let ep = err["path"].as_str().expect("error path");
            assert!(
                ep.starts_with(path) && !ep.contains(&root),
                "error path {ep:?} is not a path inside the root"
            );
        }
    }
    nothing_flagged(&sb);
}

/// Fills the sandbox's filesystem to its last block (root's reserve
/// included), leaving its inodes free.
fn fill_disk(sb: &Sandbox) {
    for (name, bs) in [("filler-big", "1M"), ("filler-small", "4k")] {
        // dd stops at ENOSPC and says so: expected.
        let _ = Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!(
                "of={}",
                sb.path(&format!("/home/{name}")).display()
            ))
            .arg(format!("bs={bs}"))
            .arg("status=none")
            .output()
            .expect("run dd");
    }
    // ext4 keeps some clusters back for its own metadata, so statvfs still
    // shows a few free blocks: what counts is that data no longer fits.
    let probe = sb.path("/home/probe");
    let wrote =
        std::fs::write(&probe, [0u8; 4096]).and_then(|()| std::fs::File::open(&probe)?.sync_all());
    let _ = std::fs::remove_file(&probe);
    assert_eq!(
        wrote.map_err(|e| e.raw_os_error()),
        Err(Some(libc::ENOSPC)),
        "the sandbox is not full"
    );
}

// A full disk loses nothing. The sandbox's /run is a tmpfs of its own, as
// on a real system, and its ext4 image is filled to the last block. Checks:
// `config set` fails with exit 11 (kind `no-space`) and a message naming
// the file and the lack of space, and leaves the config byte for byte as it
// was with nothing beside it; `lock` still locks every entry (flags take no
// space; lsattr as oracle) and only warns that its audit entry could not
// be written; `layer new` fails with exit 11, lists no layer, leaves
// nothing in the layer store and the flags as they were; once space is
// freed both work, and e2fsck finds the image clean.
#[test]
fn full_disk() {
    let mut sb = Sandbox::new();
    sb.mount_tmpfs("/run");
    sb.write_config("# managed here\ndefault_mode = \"locked\"\npaths = [\"/usr\", \"/opt\"]\n");
    sb.almost(&["status"]).expect_ok();
    let config = sb.config_path();
    let config_before = std::fs::read(&config).expect("read config");
    let etc_before = dir_names(&sb.path("/etc/almost"));
    fill_disk(&sb);

    let r = sb.almost_json(&["config", "set", "default_mode", "unlocked"]);
    let err = r.expect_error(11, "no-space");
    let msg = err["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("almost.toml") && msg.contains("No space left"),
        "{}",
        r.describe()
    );
    assert_eq!(std::fs::read(&config).expect("read config"), config_before);
    assert_eq!(dir_names(&sb.path("/etc/almost")), etc_before);

    let r = sb.almost(&["lock"]);
    r.expect_ok();
    assert!(r.stderr.contains("audit"), "{}", r.describe());
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");

    let r = sb.almost_json(&["layer", "new", "/usr/share"]);
    r.expect_error(11, "no-space");
    let list = sb.almost_json(&["layer", "list"]);
    list.expect_ok();
    assert_eq!(
        list.result()["layers"],
        serde_json::json!([]),
        "{}",
        list.describe()
    );
    let store = sb.path("/var/lib/almost/layers");
    assert!(
        !store.exists() || dir_names(&store).is_empty(),
        "a failed layer new left {:?}",
        dir_names(&store)
    );
    sb.assert_locked("/usr");

    for name in ["filler-big", "filler-small"] {
        std::fs::remove_file(sb.path(&format!("/home/{name}"))).expect("rm filler");
    }
    sb.almost(&["config", "set", "default_mode", "unlocked"])
        .expect_ok();
    let r = sb.almost_json(&["layer", "new", "/usr/share"]);
    r.expect_ok();
    let id = r.result()["id"].as_str().expect("layer id").to_owned();
    sb.almost(&["layer", "discard", &id, "--yes"]).expect_ok();
    sb.assert_locked("/usr");
    sb.unmount_and_fsck();
}

/// The names in a directory, sorted.
fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
