// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the configuration as the binary uses it: `paths` and
//! `exclude` from `R/etc/almost/almost.toml` decide what gets flagged,
//! `config set/get/show` round-trip values and keep comments, `enter default`
//! applies `default_mode`, the original almost's spellings (`enter ro|rw`,
//! `check`) work, and the original `/etc/almost.ini` is imported.

mod common;

use common::Sandbox;
use serde_json::Value;

/// Finds a key anywhere in a JSON value (the exact nesting of `config show
/// --json` is not fixed by the docs).
fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

#[track_caller]
fn get(sb: &Sandbox, key: &str) -> Vec<String> {
    let r = sb.almost(&["config", "get", key]);
    r.expect_ok();
    r.stdout.lines().map(str::to_owned).collect()
}

// Checks: `paths` limits the managed set to /usr, and
// `exclude` keeps /usr/lib and /usr/share/doc (themselves and everything
// below) unflagged; /opt is not touched; status still calls this locked.
#[test]
fn paths_and_exclude_from_the_file_are_honoured() {
    let sb = Sandbox::new();
    sb.populate("/usr/lib/many", 150);
    sb.write("/usr/share/doc/pkg/README", "doc\n");
    sb.write("/usr/share/other/file", "x\n");
    sb.write_config(
        "# test config\npaths = [\"/usr\"]\nexclude = [\"/usr/lib\", \"/usr/share/doc\"]\n",
    );
    let r = sb.almost_json(&["lock"]);
    r.expect_ok();
    let res = r.result();
    let listed: Vec<&str> = res["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["path"].as_str().expect("path"))
        .collect();
    assert_eq!(listed, ["/usr"], "{}", r.describe());

    let rep = sb.flags("/usr");
    let excluded = [sb.path("/usr/lib"), sb.path("/usr/share/doc")];
    for p in &rep.locked {
        assert!(
            !excluded.iter().any(|e| p.starts_with(e)),
            "excluded entry flagged: {p:?}"
        );
    }
    for p in &rep.unlocked {
        assert!(
            excluded.iter().any(|e| p.starts_with(e)),
            "managed entry not flagged: {p:?}"
        );
    }
    assert!(rep.locked.contains(&sb.path("/usr/share/other/file")));
    assert!(rep.locked.contains(&sb.path("/usr")));
    assert!(rep.unlocked.contains(&sb.path("/usr/lib/many/d001/f00120")));
    sb.assert_unlocked("/opt");
    sb.assert_clean_outside(&["/usr"]);

    let st = sb.status();
    assert_eq!(st["mode"], "locked", "{st}");

    // Unlock honours the same set: the excluded files stay as they are.
    sb.almost(&["unlock", "--yes"]).expect_ok();
    sb.assert_unlocked("/usr");
}

// Checks: `config set default_mode` writes the file keeping
// its comments, `config get` reads it back, and `enter default` applies it:
// unlocked → unlocks, locked → locks, keep → changes nothing; the original
// spellings ro/rw are accepted as values.
#[test]
fn default_mode_set_get_and_enter_default() {
    let sb = Sandbox::new();
    let original = "# Top comment kept\ndefault_mode = \"locked\" # trailing comment\n\
                    # paths comment kept\npaths = [\"/usr\", \"/opt\"]\n";
    sb.write_config(original);
    assert_eq!(get(&sb, "default_mode"), ["locked"]);

    sb.almost(&["config", "set", "default_mode", "unlocked"])
        .expect_ok();
    let text = String::from_utf8(sb.read("/etc/almost/almost.toml")).expect("utf-8");
    for kept in ["# Top comment kept", "# paths comment kept", "\"/opt\""] {
        assert!(
            text.contains(kept),
            "{kept:?} lost from the config:\n{text}"
        );
    }
    assert!(text.contains("unlocked"), "value not written:\n{text}");
    assert_eq!(get(&sb, "default_mode"), ["unlocked"]);

    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_unlocked("/usr");
    sb.assert_unlocked("/opt");

    sb.almost(&["config", "set", "default_mode", "locked"])
        .expect_ok();
    assert_eq!(get(&sb, "default_mode"), ["locked"]);
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");

    sb.almost(&["config", "set", "default_mode", "keep"])
        .expect_ok();
    assert_eq!(get(&sb, "default_mode"), ["keep"]);
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_locked("/usr");
    sb.almost(&["unlock", "--yes"]).expect_ok();
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_unlocked("/usr");

    // The original almost's spellings.
    sb.almost(&["config", "set", "default_mode", "ro"])
        .expect_ok();
    let v = get(&sb, "default_mode");
    assert!(v == ["locked"] || v == ["ro"], "ro read back as {v:?}");
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_locked("/usr");
    sb.almost(&["config", "set", "default_mode", "rw"])
        .expect_ok();
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_unlocked("/usr");

    let text = String::from_utf8(sb.read("/etc/almost/almost.toml")).expect("utf-8");
    assert!(text.contains("# Top comment kept"), "{text}");
}

// Checks: `config set paths|exclude` replace the lists, `get`
// prints one item per line, `show --json` carries the values, and the new
// lists are what lock uses.
#[test]
fn lists_set_get_show() {
    let sb = Sandbox::new();
    sb.write("/usr/local/bin/mine", "mine\n");
    sb.almost(&["config", "set", "paths", "/usr", "/opt"])
        .expect_ok();
    assert_eq!(get(&sb, "paths"), ["/usr", "/opt"]);
    sb.almost(&["config", "set", "exclude", "/usr/local"])
        .expect_ok();
    assert_eq!(get(&sb, "exclude"), ["/usr/local"]);
    let r = sb.almost_json(&["config", "show"]);
    r.expect_ok();
    let all: Vec<Value> = r.json();
    let all = Value::Array(all);
    assert_eq!(
        find_key(&all, "exclude"),
        Some(&serde_json::json!(["/usr/local"])),
        "{}",
        r.describe()
    );
    assert_eq!(
        find_key(&all, "paths"),
        Some(&serde_json::json!(["/usr", "/opt"])),
        "{}",
        r.describe()
    );
    let text = sb.almost(&["config", "show"]);
    text.expect_ok();
    assert!(text.stdout.contains("/usr/local"), "{}", text.describe());

    sb.almost(&["lock"]).expect_ok();
    assert!(!sb.has_i("/usr/local/bin/mine"));
    assert!(!sb.has_i("/usr/local"));
    assert!(sb.has_i("/usr/bin/tool"));
    assert!(sb.has_i("/opt/app/config.json"));

    // Validation covers the whole result: /usr/local would be an exclude
    // outside every managed path, so this is refused and nothing is written.
    let before = sb.read("/etc/almost/almost.toml");
    let r = sb.almost(&["config", "set", "paths", "/opt"]);
    assert!(
        matches!(r.code, Some(4) | Some(5)),
        "an exclude outside the managed paths was accepted\n{}",
        r.describe()
    );
    assert_eq!(sb.read("/etc/almost/almost.toml"), before);
    assert_eq!(get(&sb, "paths"), ["/usr", "/opt"]);
}

// Checks: `enter ro` locks, `enter rw` unlocks, `check` is
// status (also in JSON), and unlock without --yes does not prompt when stdin
// is not a terminal.
#[test]
fn original_spellings() {
    let sb = Sandbox::new();
    sb.almost(&["enter", "ro"]).expect_ok();
    sb.assert_locked("/usr");
    sb.assert_locked("/opt");
    let r = sb.almost_json(&["check"]);
    r.expect_ok();
    assert_eq!(r.result()["mode"], "locked", "{}", r.describe());
    let text = sb.almost(&["check"]);
    text.expect_ok();
    assert!(text.stdout.to_lowercase().contains("locked"));

    sb.almost(&["enter", "rw", "--yes"]).expect_ok();
    sb.assert_unlocked("/usr");
    assert_eq!(sb.status()["mode"], "unlocked");

    sb.almost(&["enter", "ro"]).expect_ok();
    // stdin is /dev/null, not a terminal: no question, no waiting.
    sb.almost(&["enter", "rw"]).expect_ok();
    sb.assert_unlocked("/usr");
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock"]).expect_ok();
    sb.assert_unlocked("/usr");
}

fn notice_mentions_ini(r: &common::Run) -> bool {
    r.all_output().contains("almost.ini")
}

// Checks: with no almost.toml, /etc/almost.ini's
// DefaultMode=1 is imported as default_mode = unlocked, with a notice, by
// `config get`, `config show` and `status`; `enter default` applies it.
#[test]
fn ini_import_read_write() {
    let sb = Sandbox::new();
    sb.write("/etc/almost.ini", "[Almost]\nDefaultMode=1\n");
    assert!(!sb.config_path().exists());

    let r = sb.almost(&["config", "get", "default_mode"]);
    r.expect_ok();
    assert_eq!(r.stdout.trim(), "unlocked", "{}", r.describe());
    assert!(
        notice_mentions_ini(&r),
        "no import notice\n{}",
        r.describe()
    );

    let r = sb.almost_json(&["config", "show"]);
    r.expect_ok();
    let all = Value::Array(r.json());
    assert_eq!(
        find_key(&all, "default_mode"),
        Some(&Value::from("unlocked")),
        "{}",
        r.describe()
    );
    assert!(
        !r.events("warning").is_empty() || r.stderr.contains("almost.ini"),
        "no import notice\n{}",
        r.describe()
    );

    let r = sb.almost_json(&["status"]);
    r.expect_ok();
    assert!(
        notice_mentions_ini(&r),
        "status gave no notice\n{}",
        r.describe()
    );
    if let Some(dm) = find_key(&r.result(), "default_mode") {
        assert_eq!(dm, "unlocked", "{}", r.describe());
    }

    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_unlocked("/usr");
}

// Checks: DefaultMode=0 means locked; an existing almost.toml
// wins over the ini and then no import notice is given.
#[test]
fn ini_import_read_only_and_toml_precedence() {
    let sb = Sandbox::new();
    sb.write("/etc/almost.ini", "[Almost]\nDefaultMode=0\n");
    assert_eq!(get(&sb, "default_mode"), ["locked"]);
    sb.almost(&["enter", "default"]).expect_ok();
    sb.assert_locked("/usr");

    sb.write_config("default_mode = \"keep\"\n");
    let r = sb.almost(&["config", "get", "default_mode"]);
    r.expect_ok();
    assert_eq!(r.stdout.trim(), "keep", "{}", r.describe());
    assert!(
        !notice_mentions_ini(&r),
        "notice despite almost.toml\n{}",
        r.describe()
    );
}

// Checks (docs): with no `paths` configured, the managed set is those of
// /usr /bin /sbin /lib /lib32 /lib64 /libx32 /opt that are real directories:
// merged-usr symlinks (/bin -> usr/bin, /lib -> usr/lib) and a dangling
// /lib32 link are not managed (and not followed), real /sbin and /lib64 are.
#[test]
fn default_paths_are_real_directories_only() {
    let sb = Sandbox::new();
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib32", "usr/nowhere"),
    ] {
        std::os::unix::fs::symlink(target, sb.path(link)).expect("symlink");
    }
    sb.write("/sbin/init", "init\n");
    sb.write("/lib64/ld.so", "ld\n");
    let r = sb.almost_json(&["lock"]);
    r.expect_ok();
    let res = r.result();
    let mut listed: Vec<&str> = res["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["path"].as_str().expect("path"))
        .collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        ["/lib64", "/opt", "/sbin", "/usr"],
        "{}",
        r.describe()
    );
    sb.assert_locked("/sbin");
    sb.assert_locked("/lib64");
    sb.assert_locked("/usr");
    sb.assert_clean_outside(&["/usr", "/opt", "/sbin", "/lib64"]);
}

// Checks: an exclude naming a single file keeps just that file unflagged;
// its directory and siblings are locked.
#[test]
fn exclude_a_single_file() {
    let sb = Sandbox::new();
    sb.write("/usr/bin/other", "o\n");
    sb.write_config("exclude = [\"/usr/bin/tool\"]\n");
    sb.almost(&["lock"]).expect_ok();
    let rep = sb.flags("/usr");
    assert_eq!(
        rep.unlocked.into_iter().collect::<Vec<_>>(),
        [sb.path("/usr/bin/tool")],
        "only the excluded file may stay unlocked"
    );
    assert!(sb.has_i("/usr/bin") && sb.has_i("/usr/bin/other"));
    assert_eq!(sb.status()["mode"], "locked");
}

// Checks (config set, several keys): `paths=/opt exclude=/opt/cache` is
// valid only as a pair (each alone leaves an exclude outside the managed
// paths, refused with exit 4 and the file untouched); together it is one
// write that keeps the file's comment, and lock then follows it.
#[test]
fn set_several_keys_valid_only_together() {
    let sb = Sandbox::new();
    sb.write("/opt/cache/f", "x\n");
    sb.write("/opt/keep/g", "x\n");
    let text = "# mine\npaths = [\"/usr\"]  # the trees\nexclude = [\"/usr/local\"]\n";
    sb.write_config(text);
    for alone in ["paths=/opt", "exclude=/opt/cache"] {
        let r = sb.almost_json(&["config", "set", alone]);
        r.expect_code(4);
        assert_eq!(r.error_event().expect("error")["kind"], "config");
        assert_eq!(sb.read("/etc/almost/almost.toml"), text.as_bytes());
    }
    let r = sb.almost_json(&["config", "set", "paths=/opt", "exclude=/opt/cache"]);
    r.expect_ok();
    let res = r.result();
    assert_eq!(
        res["paths"],
        serde_json::json!(["/opt"]),
        "{}",
        r.describe()
    );
    assert_eq!(res["exclude"], serde_json::json!(["/opt/cache"]));
    let after = String::from_utf8(sb.read("/etc/almost/almost.toml")).expect("utf-8");
    assert!(after.starts_with("# mine\n"), "{after}");
    assert_eq!(get(&sb, "paths"), ["/opt"]);
    assert_eq!(get(&sb, "exclude"), ["/opt/cache"]);
    sb.almost(&["lock"]).expect_ok();
    assert!(common::has_i(&sb.path("/opt/keep/g")));
    assert!(!common::has_i(&sb.path("/opt/cache/f")));
    assert!(!common::has_i(&sb.path("/usr")));
    sb.almost(&["unlock", "--yes"]).expect_ok();
}

// Checks (config set, atomic): a second key refused (a forbidden path, an
// exclude outside the paths, a bad mode, an unknown key, a word that is not
// KEY=VALUE) refuses the whole command (exit 4, or 5 for the path, 2 for
// the form) and leaves the file byte for byte as it was, the valid first
// key included.
#[test]
fn a_refused_key_writes_nothing() {
    let sb = Sandbox::new();
    let text = "# keep me\ndefault_mode = \"locked\"\npaths = [\"/usr\", \"/opt\"]\n";
    sb.write_config(text);
    for (args, code) in [
        (&["default_mode=unlocked", "paths=/etc"][..], 5),
        (&["default_mode=unlocked", "exclude=/sbin/x"], 4),
        (&["exclude=/usr/local", "default_mode=sideways"], 4),
        (&["default_mode=unlocked", "colour=blue"], 2),
        (&["default_mode=unlocked", "/usr"], 2),
    ] {
        let mut a = vec!["config", "set"];
        a.extend_from_slice(args);
        let r = sb.almost_json(&a);
        r.expect_code(code);
        assert!(r.error_event().is_some(), "{}", r.describe());
        assert_eq!(
            sb.read("/etc/almost/almost.toml"),
            text.as_bytes(),
            "{args:?} changed the file"
        );
    }
    assert_eq!(get(&sb, "default_mode"), ["locked"]);
}

// Checks (config unset, empty exclude): `config set exclude=` writes an
// empty list (lock then flags /usr/local too), `config unset exclude` takes
// the key out of the file (comments and other keys kept) and the default
// (/usr/local) applies again, the comment above it kept; unset of an unknown key is refused (exit 4)
// with the file unchanged.
#[test]
fn unset_and_empty_exclude() {
    let sb = Sandbox::new();
    sb.write("/usr/local/bin/tool", "x\n");
    let text = "# top\ndefault_mode = \"keep\"\n# why\nexclude = [\"/usr/local\"]  # mine\n";
    sb.write_config(text);
    sb.almost(&["config", "set", "exclude="]).expect_ok();
    let after = String::from_utf8(sb.read("/etc/almost/almost.toml")).expect("utf-8");
    assert!(after.contains("exclude = []"), "{after}");
    assert!(get(&sb, "exclude").is_empty());
    sb.almost(&["lock"]).expect_ok();
    assert!(common::has_i(&sb.path("/usr/local/bin/tool")));
    sb.almost(&["unlock", "--yes"]).expect_ok();

    sb.almost(&["config", "unset", "exclude"]).expect_ok();
    let after = String::from_utf8(sb.read("/etc/almost/almost.toml")).expect("utf-8");
    assert!(!after.contains("exclude"), "{after}");
    assert!(after.contains("# why\n"), "the comment went: {after}");
    assert!(
        after.starts_with("# top\ndefault_mode = \"keep\"\n"),
        "{after}"
    );
    assert_eq!(get(&sb, "exclude"), ["/usr/local"]);

    let before = sb.read("/etc/almost/almost.toml");
    sb.almost(&["config", "unset", "default_mode", "colour"])
        .expect_code(4);
    assert_eq!(sb.read("/etc/almost/almost.toml"), before);
    sb.almost(&["lock"]).expect_ok();
    assert!(!common::has_i(&sb.path("/usr/local/bin/tool")));
    sb.almost(&["unlock", "--yes"]).expect_ok();
}
