// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of the apt hook with the real `apt-get` and `dpkg`
//! installing a real (tiny) .deb into a sandbox root.
//!
//! apt is confined to the sandbox by an `APT_CONFIG` file that sets
//! `Dir` to the root before apt reads its configuration parts, so the
//! machine's own `/etc/apt/apt.conf.d` hooks never run and its dpkg
//! database is never read or written; dpkg gets `--root`. The hook is the
//! shipped `data/apt/80almost`, installed into the sandbox's
//! `/etc/apt/apt.conf.d` with `/usr/bin/almost` replaced by the binary
//! under test and `--root`.
//!
//! Locked: apt stops before dpkg unpacks anything (no file, no database
//! change) and shows almost's advice. Without the hook, the same install
//! half-happens — which is what the hook is for. Unlocked, or under
//! `almost run`, the install proceeds untouched.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ALMOST, Run, Sandbox, Spawned};

const HOOK: &str = include_str!("../../data/apt/80almost");

/// Builds `name`_1.0_all.deb (with a file in /usr and one in /etc) in `dir`.
fn build_deb(dir: &Path, name: &str) -> PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    let write = |p: &str, text: &str| {
        let p = tree.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "DEBIAN/control",
        &format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: all\n\
             Maintainer: Almost tests <tests@example.invalid>\n\
             Description: a package the apt-guard test installs\n"
        ),
    );
    write(&format!("usr/share/{name}/hello.txt"), "hello\n");
    write(&format!("etc/{name}/hello.conf"), "conf\n");
    let deb = dir.join(format!("{name}_1.0_all.deb"));
    common::sh(
        "dpkg-deb",
        &[
            "--root-owner-group".as_ref(),
            "-b".as_ref(),
            tree.as_os_str(),
            deb.as_os_str(),
        ],
    );
    deb
}

/// A minimal dpkg database and apt tree inside the sandbox, and the apt
/// configuration file that confines apt to it.
fn setup_apt(sb: &Sandbox, with_hook: bool) -> PathBuf {
    for d in [
        "/var/lib/dpkg/info",
        "/var/lib/dpkg/updates",
        "/var/lib/dpkg/triggers",
        "/var/lib/apt/lists/partial",
        "/var/cache/apt/archives/partial",
        "/var/log/apt",
        "/etc/apt/apt.conf.d",
        "/etc/apt/preferences.d",
        "/etc/apt/sources.list.d",
    ] {
        sb.mkdir(d);
    }
    sb.write("/var/lib/dpkg/status", "");
    sb.write("/var/lib/dpkg/available", "");
    sb.write("/etc/apt/sources.list", "");
    let root = sb.root.display();
    if with_hook {
        let hook = HOOK
            .replace("[ -x /usr/bin/almost ]", &format!("[ -x '{ALMOST}' ]"))
            .replace(
                "/usr/bin/almost apt-guard",
                &format!("'{ALMOST}' --root '{root}' apt-guard"),
            );
        assert_ne!(
            hook, HOOK,
            "the hook no longer calls /usr/bin/almost apt-guard"
        );
        sb.write("/etc/apt/apt.conf.d/80almost", hook);
    }
    let conf = sb.dir.join("apt.conf");
    std::fs::write(
        &conf,
        format!(
            "Dir \"{root}/\";\n\
             Dir::State::status \"{root}/var/lib/dpkg/status\";\n\
             DPkg::Options {{ \"--root={root}\"; }};\n\
             APT::Sandbox::User \"root\";\n"
        ),
    )
    .expect("write apt.conf");
    conf
}

fn apt_command(conf: &Path, deb: &Path) -> Command {
    let mut c = Command::new("apt-get");
    c.args(["-q", "-y", "install"])
        .arg(deb)
        .env("APT_CONFIG", conf)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C.UTF-8");
    c
}

fn apt_install(conf: &Path, deb: &Path) -> Run {
    Spawned::spawn(apt_command(conf, deb)).wait(common::DEFAULT_TIMEOUT)
}

fn installed(sb: &Sandbox, name: &str) -> bool {
    String::from_utf8_lossy(&sb.read("/var/lib/dpkg/status"))
        .contains(&format!("Package: {name}\n"))
}

#[test]
fn the_hook_parses_and_calls_the_guard_only_if_almost_exists() {
    let out = Command::new("apt-config")
        .arg("-c")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/apt/80almost"))
        .args(["dump", "DPkg::Pre-Invoke"])
        .env("APT_CONFIG", "/nonexistent")
        .output()
        .expect("apt-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "DPkg::Pre-Invoke:: \"if [ -x /usr/bin/almost ]; then /usr/bin/almost apt-guard; fi\";"
        ),
        "{text}"
    );
}

#[test]
fn locked_apt_stops_before_dpkg_and_says_what_to_do() {
    let sb = Sandbox::new();
    let deb = build_deb(&sb.dir, "almost-test-pkg");
    let conf = setup_apt(&sb, true);
    sb.almost(&["lock"]).expect_ok();
    let status_before = sb.read("/var/lib/dpkg/status");

    let r = apt_install(&conf, &deb);
    assert!(
        r.code != Some(0),
        "apt succeeded on a locked system\n{}",
        r.describe()
    );
    let all = r.all_output();
    assert!(
        all.contains("the system files are locked (/usr, /opt)"),
        "{}",
        r.describe()
    );
    assert!(all.contains("sudo almost run -- apt"), "{}", r.describe());
    assert!(
        all.contains("almost layer new --system"),
        "{}",
        r.describe()
    );
    assert!(all.contains("Almost panel"), "{}", r.describe());
    assert!(!all.contains("Unpacking"), "dpkg ran\n{}", r.describe());
    assert!(!sb.path("/usr/share/almost-test-pkg").exists());
    assert!(
        !sb.path("/etc/almost-test-pkg").exists(),
        "dpkg unpacked into /etc"
    );
    assert_eq!(
        sb.read("/var/lib/dpkg/status"),
        status_before,
        "dpkg database changed"
    );
    assert!(
        std::fs::read_dir(sb.path("/var/lib/dpkg/updates"))
            .expect("updates")
            .next()
            .is_none(),
        "dpkg journal written"
    );
    sb.assert_locked("/usr");

    // Under `almost run` the guard lets it through; afterwards the new
    // files are locked with the rest.
    let mut c = Command::new(ALMOST);
    c.arg("--root").arg(&sb.root).args(["run", "--"]);
    let apt = apt_command(&conf, &deb);
    c.arg(apt.get_program()).args(apt.get_args());
    for (k, v) in apt.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let r = Spawned::spawn(c).wait(common::DEFAULT_TIMEOUT);
    r.expect_ok();
    assert!(installed(&sb, "almost-test-pkg"), "{}", r.describe());
    assert_eq!(sb.read("/usr/share/almost-test-pkg/hello.txt"), b"hello\n");
    assert!(sb.has_i("/usr/share/almost-test-pkg/hello.txt"));
    sb.assert_locked("/usr");
}

#[test]
fn unlocked_apt_installs_untouched() {
    let sb = Sandbox::new();
    let deb = build_deb(&sb.dir, "almost-test-pkg");
    let conf = setup_apt(&sb, true);
    // Never locked, then locked and unlocked again.
    apt_install(&conf, &deb).expect_ok();
    assert!(installed(&sb, "almost-test-pkg"));
    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["unlock", "--yes"]).expect_ok();
    let deb2 = build_deb(&sb.dir, "almost-test-two");
    let r = apt_install(&conf, &deb2);
    r.expect_ok();
    assert!(!r.all_output().contains("locked"), "{}", r.describe());
    assert!(installed(&sb, "almost-test-two"));
    assert_eq!(sb.read("/etc/almost-test-two/hello.conf"), b"conf\n");
    sb.assert_unlocked("/usr");
}

// The control: without the hook, apt on a locked system runs dpkg, which
// starts unpacking and fails half-way — what the guard prevents.
#[test]
fn without_the_hook_dpkg_half_installs() {
    let sb = Sandbox::new();
    let deb = build_deb(&sb.dir, "almost-test-pkg");
    let conf = setup_apt(&sb, false);
    sb.almost(&["lock"]).expect_ok();
    let r = apt_install(&conf, &deb);
    assert!(r.code != Some(0), "{}", r.describe());
    let all = r.all_output();
    assert!(all.contains("Unpacking"), "{}", r.describe());
    assert!(all.contains("Operation not permitted"), "{}", r.describe());
    assert!(!all.contains("sudo almost run"), "{}", r.describe());
}

// The guard itself: one flag per managed path, exit 9 and kind "locked"
// naming the locked ones, silent while an `almost run` is under way.
#[test]
fn the_guard_reads_the_top_flags_and_respects_runs() {
    let sb = Sandbox::new();
    let r = sb.almost(&["apt-guard"]);
    r.expect_ok();
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "{}",
        r.describe()
    );
    // Only /opt's top directory carries the flag: that is enough.
    common::sh("chattr", &["+i".as_ref(), sb.path("/opt").as_os_str()]);
    let r = sb.almost_json(&["apt-guard"]);
    let e = r.expect_error(9, "locked");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("locked (/opt)")),
        "{e}"
    );
    common::sh("chattr", &["-i".as_ref(), sb.path("/opt").as_os_str()]);

    sb.almost(&["lock"]).expect_ok();
    sb.almost(&["apt-guard"]).expect_code(9);
    let go = sb.dir.join("go");
    let started = sb.dir.join("started");
    let script = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.05; done",
        started.display(),
        go.display()
    );
    let run = sb.spawn(&["run", "--", "sh", "-c", &script]);
    assert!(common::wait_until(
        std::time::Duration::from_secs(30),
        || started.exists()
    ));
    // Even if something locked a tree again meanwhile, a run is under way:
    // its package manager must not be stopped half-way.
    common::sh("chattr", &["+i".as_ref(), sb.path("/usr").as_os_str()]);
    sb.almost(&["apt-guard"]).expect_ok();
    std::fs::write(&go, "").expect("go");
    run.wait(common::DEFAULT_TIMEOUT).expect_ok();
    sb.almost(&["apt-guard"]).expect_code(9);

    // A broken configuration: the guard cannot tell, says so, and lets apt
    // go on (dpkg itself still fails on locked files).
    sb.write_config("default_mode = \"sideways\"\n");
    let r = sb.almost(&["apt-guard"]);
    r.expect_ok();
    assert!(
        r.stderr.contains("apt-guard cannot tell"),
        "{}",
        r.describe()
    );
}
