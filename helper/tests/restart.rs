// SPDX-License-Identifier: GPL-3.0-or-later
//! End-to-end tests of "what needs a restart": after `layer commit`,
//! `layer undo` and `almost run`, the result names the running processes
//! that still use a file the act replaced or deleted — real programs copied
//! into the sandbox (`sleep` as the executable, a real shared library
//! loaded with `LD_PRELOAD`), run from the sandbox, and the real `almost`.
//! Only this sandbox's trees are looked at: the machine's own processes
//! (which use the machine's `/usr`) are never listed.

mod common;
mod layer_support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Run, q, wait_until};
use layer_support::LayerBox;
use serde_json::Value;

const EXE: &str = "/usr/bin/rsleep";
const LIB: &str = "/usr/lib/librestart-test.so.1";
/// A second program that uses nothing any act here changes.
const OTHER: &str = "/opt/app/bin/other-sleep";

/// A real shared library of this machine (read, never changed).
fn real_library() -> PathBuf {
    [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("a shared library to preload (libz or libm)")
}

fn real_sleep() -> PathBuf {
    ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("sleep")
}

/// The sandbox with the programs copied in (before any lock or layer).
fn seeded() -> LayerBox {
    let sb = LayerBox::new();
    sb.write(EXE, fs::read(real_sleep()).expect("read sleep"));
    sb.write(OTHER, fs::read(real_sleep()).expect("read sleep"));
    sb.write(LIB, fs::read(real_library()).expect("read library"));
    for p in [EXE, OTHER, LIB] {
        Command::new("chmod")
            .arg("0755")
            .arg(sb.path(p))
            .status()
            .expect("chmod");
    }
    sb
}

/// New contents for a program file: the same code with bytes appended
/// (an ELF file runs and loads the same with trailing bytes), so that a
/// commit writes a new file, not only new metadata.
fn changed(original: &Path, mark: &str) -> Vec<u8> {
    let mut bytes = fs::read(original).expect("read original");
    bytes.extend_from_slice(mark.as_bytes());
    bytes
}

/// Starts the sandbox's `exe` from the sandbox, with the sandbox's library
/// preloaded when `preload`; waits until both are mapped. Returns the pid.
fn start(sb: &mut LayerBox, exe: &str, preload: bool) -> i32 {
    let mut c = Command::new(sb.path(exe));
    c.arg("600").stdin(Stdio::null()).stdout(Stdio::null());
    if preload {
        c.env("LD_PRELOAD", sb.path(LIB));
    }
    let child = c.spawn().expect("start the sandbox's program");
    let pid = child.id() as i32;
    sb.adopt(child);
    let exe_path = sb.path(exe).to_string_lossy().into_owned();
    let lib_path = sb.path(LIB).to_string_lossy().into_owned();
    let ready = wait_until(Duration::from_secs(10), || {
        fs::read_to_string(format!("/proc/{pid}/maps"))
            .is_ok_and(|m| m.contains(&exe_path) && (!preload || m.contains(&lib_path)))
    });
    assert!(ready, "{exe} (pid {pid}) never mapped its files");
    pid
}

/// The `restart` field of the result line of a JSON run.
#[track_caller]
fn restart_of(r: &Run) -> Vec<Value> {
    let results = r.events("result");
    assert_eq!(results.len(), 1, "{}", r.describe());
    results[0]["restart"]
        .as_array()
        .unwrap_or_else(|| panic!("no restart list\n{}", r.describe()))
        .clone()
}

/// The listed pids.
fn pids(list: &[Value]) -> BTreeSet<i64> {
    list.iter()
        .map(|p| p["pid"].as_i64().expect("pid"))
        .collect()
}

/// The files listed for `pid`.
#[track_caller]
fn files_of(list: &[Value], pid: i32) -> Vec<String> {
    let p = list
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} not listed: {list:?}"));
    p["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("a path").to_owned())
        .collect()
}

// Checks (a) and (d): a program started from the locked sandbox, its
// library preloaded, is listed after a layer commit replaced both files,
// with both files named inside the root, its command name and no unit;
// a program that uses nothing the commit changed is not listed, and no
// process of the machine is. The text names the program too.
#[test]
fn a_commit_lists_the_programs_still_running_the_replaced_files() {
    let mut sb = seeded();
    let user = start(&mut sb, EXE, true);
    let other = start(&mut sb, OTHER, false);
    let id = sb.locked_with_layer("/usr");
    sb.write(EXE, changed(&real_sleep(), "new exe"));
    sb.write(LIB, changed(&real_library(), "new lib"));
    let r = sb.almost_json(&["layer", "commit", &id, "--yes"]);
    r.expect_ok();
    let list = restart_of(&r);
    assert_eq!(pids(&list), BTreeSet::from([i64::from(user)]), "{list:?}");
    assert_eq!(files_of(&list, user), vec![EXE, LIB]);
    let p = &list[0];
    assert_eq!(p["command"], "rsleep");
    assert_eq!(p["unit"], Value::Null);
    assert!(!pids(&list).contains(&i64::from(other)));
    // Replaced for real: the path now holds another inode than the one
    // mapped (what the list is about).
    assert_ne!(
        fs::metadata(sb.path(EXE)).unwrap().ino(),
        fs::metadata(format!("/proc/{user}/exe")).unwrap().ino()
    );

    // The text says the same (a second commit of a new layer: the same
    // program still runs the replaced files).
    let id = sb.new_layer("/usr", &[]);
    sb.write("/usr/share/doc/more", "more\n");
    let r = sb.almost(&["layer", "commit", &id, "--yes"]);
    r.expect_ok();
    assert!(
        r.stdout
            .contains(&format!("  {user} rsleep: {EXE}, {LIB}\n")),
        "{}",
        r.describe()
    );
    assert!(
        !r.stdout.contains(&format!("  {other} ")),
        "{}",
        r.describe()
    );
    sb.finish();
}

// Checks (c): after `layer undo`, a program started after the commit (it
// runs the committed files) is listed with both files, changed back. The
// program started before the commit is not: the undo renamed the saved
// originals back (the undo data shares the sandbox's filesystem), so the
// inodes it maps are the current files again, though its maps still say
// "(deleted)" — the case where "(deleted)" alone would be wrong.
#[test]
fn an_undo_lists_the_programs_running_the_files_it_changed_back() {
    let mut sb = seeded();
    let before = start(&mut sb, EXE, true);
    let original_ino = fs::metadata(sb.path(EXE)).unwrap().ino();
    let id = sb.locked_with_layer("/usr");
    sb.write(EXE, changed(&real_sleep(), "new exe"));
    sb.write(LIB, changed(&real_library(), "new lib"));
    sb.commit(&id);
    let after = start(&mut sb, EXE, true);
    let r = sb.almost_json(&["layer", "undo", "--yes"]);
    r.expect_ok();
    let list = restart_of(&r);
    assert_eq!(files_of(&list, after), vec![EXE, LIB], "{list:?}");
    assert_eq!(
        fs::metadata(sb.path(EXE)).unwrap().ino(),
        original_ino,
        "the undo put back the original inode"
    );
    let maps = fs::read_to_string(format!("/proc/{before}/maps")).unwrap();
    assert!(maps.contains(" (deleted)"), "{maps}");
    assert!(!pids(&list).contains(&i64::from(before)), "{list:?}");
    sb.finish();
}

// Checks (b): `almost run` whose command replaces the library the way an
// installer does (a copy beside it, then a rename over it) lists the
// program that still maps the old one, with that file only; a run that
// deletes a program's executable lists that program with it; the text of a
// run goes to stderr (stdout is the command's), and a run that changes
// nothing lists nobody (an empty list, not an absent one).
#[test]
fn a_run_lists_the_programs_still_running_what_its_command_replaced() {
    let mut sb = seeded();
    let user = start(&mut sb, EXE, true);
    let other = start(&mut sb, OTHER, false);
    sb.almost(&["lock"]).expect_ok();
    let r = sb.almost_json(&["run", "--", "true"]);
    r.expect_ok();
    assert_eq!(restart_of(&r), Vec::<Value>::new());
    let new = sb.dir.join("new-lib");
    fs::write(&new, changed(&real_library(), "new lib")).unwrap();
    let lib = sb.path(LIB);
    let script = format!(
        "cp {} {}.new && mv {}.new {}",
        q(&new),
        q(&lib),
        q(&lib),
        q(&lib)
    );
    let r = sb.almost_json(&["run", "--", "sh", "-c", &script]);
    r.expect_ok();
    let list = restart_of(&r);
    assert_eq!(pids(&list), BTreeSet::from([i64::from(user)]), "{list:?}");
    assert_eq!(files_of(&list, user), vec![LIB]);
    assert!(!pids(&list).contains(&i64::from(other)));
    sb.assert_locked("/usr");
    // A file deleted (not replaced) counts too: the program that runs it
    // is listed with it, the other one still with the library.
    let r = sb.almost_json(&["run", "--", "rm", sb.path(OTHER).to_str().unwrap()]);
    r.expect_ok();
    let list = restart_of(&r);
    assert_eq!(
        pids(&list),
        BTreeSet::from([i64::from(user), i64::from(other)]),
        "{list:?}"
    );
    assert_eq!(files_of(&list, other), vec![OTHER]);
    assert_eq!(files_of(&list, user), vec![LIB]);
    // Text: the command's output alone on stdout, the list on stderr.
    let r = sb.almost(&["run", "--", "echo", "hello"]);
    r.expect_ok();
    assert_eq!(r.stdout, "hello\n");
    assert!(
        r.stderr.contains(&format!("  {user} rsleep: {LIB}\n")),
        "{}",
        r.describe()
    );
    sb.finish();
}

/// The cgroup2 mount of this machine (the unified hierarchy).
fn cgroup2() -> PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    info.lines()
        .find_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            after.starts_with("cgroup2 ").then(|| PathBuf::from(point))
        })
        .expect("a cgroup2 mount")
}

/// Cgroups made for a test, removed (deepest first) when dropped, after
/// the processes in them ended.
struct Cgroups(Vec<PathBuf>);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// Checks (e): a process in a systemd service's cgroup is listed with that
// unit, and one in a service of a user's manager with the unit and the
// uid. No systemd runs as PID 1 here, so no real unit can be started:
// the processes are moved into real cgroups (cgroup2) named as systemd
// names them (`…/foo.service`, `…/user@4242.service/app.slice/bar.service`),
// so what is read is the kernel's own /proc/PID/cgroup.
#[test]
fn a_program_in_a_service_is_listed_with_its_unit() {
    // Made before the sandbox, so removed after its programs ended even
    // when the test fails.
    let top = cgroup2().join(format!("almost-test-{}.slice", std::process::id()));
    let system = top.join("almost-restart-test.service");
    let user_mgr = top.join("user@4242.service");
    let user_app = user_mgr.join("app.slice");
    let user_svc = user_app.join("almost-user-test.service");
    let groups = Cgroups(vec![
        top.clone(),
        system.clone(),
        user_mgr.clone(),
        user_app.clone(),
        user_svc.clone(),
    ]);
    for dir in &groups.0 {
        fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    }
    let mut sb = seeded();
    let in_system = start(&mut sb, EXE, true);
    let in_user = start(&mut sb, EXE, true);
    fs::write(system.join("cgroup.procs"), in_system.to_string()).expect("move to the service");
    fs::write(user_svc.join("cgroup.procs"), in_user.to_string()).expect("move to the user's");
    let id = sb.locked_with_layer("/usr");
    sb.write(LIB, changed(&real_library(), "new lib"));
    let r = sb.almost_json(&["layer", "commit", &id, "--yes"]);
    r.expect_ok();
    let list = restart_of(&r);
    let of = |pid: i32| {
        list.iter()
            .find(|p| p["pid"] == pid)
            .unwrap_or_else(|| panic!("{pid} not listed: {list:?}"))
            .clone()
    };
    assert_eq!(of(in_system)["unit"], "almost-restart-test.service");
    assert_eq!(of(in_system)["user"], Value::Null);
    assert_eq!(of(in_user)["unit"], "almost-user-test.service");
    assert_eq!(of(in_user)["user"], 4242);
    let id = sb.new_layer("/usr", &[]);
    sb.write("/usr/share/doc/more", "more\n");
    let r = sb.almost(&["layer", "commit", &id, "--yes"]);
    r.expect_ok();
    assert!(
        r.stdout.contains(&format!(
            "  {in_system} rsleep [almost-restart-test.service: systemctl restart \
             almost-restart-test.service]: {LIB}\n"
        )),
        "{}",
        r.describe()
    );
    assert!(
        r.stdout.contains(
            "[almost-user-test.service: systemctl --user -M 4242@ restart almost-user-test.service]"
        ),
        "{}",
        r.describe()
    );
    sb.finish();
    drop(groups);
    assert!(!top.exists(), "the test's cgroups were not removed");
}
