// SPDX-License-Identifier: GPL-3.0-or-later
//! Small process helpers.

use super::*;

/// Runs a helper program (mount, mkfs, …) and panics with its output on failure.
pub fn sh(prog: &str, args: &[&OsStr]) -> String {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {:?} failed ({}):\n{}{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`sh`] but returns the status instead of panicking; for cleanup.
pub(crate) fn sh_quiet(prog: &str, args: &[&OsStr]) -> Result<(), String> {
    match Command::new(prog).args(args).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{prog} {:?}: {}: {}",
            args,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{prog}: {e}")),
    }
}

/// Quotes a path for `sh -c`.
pub fn q(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

/// Waits until a file exists (written by a child).
#[track_caller]
pub fn wait_for_file(p: &Path) {
    assert!(
        wait_until(Duration::from_secs(30), || p.exists()),
        "{} did not appear (the command did not start?)",
        p.display()
    );
}

/// Waits for a pid file (written by a child) and reads the pid in it.
#[track_caller]
pub fn read_pid_file(p: &Path) -> i32 {
    wait_for_file(p);
    fs::read_to_string(p)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

/// Polls `cond` every 50 ms until it holds or `timeout` has passed.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// Sends a signal to a process by id.
pub fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

/// Pids of live processes whose command line contains `needle`, except ours.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let joined: Vec<u8> = cmdline
            .iter()
            .map(|&b| if b == 0 { b' ' } else { b })
            .collect();
        if String::from_utf8_lossy(&joined).contains(needle) && pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}
