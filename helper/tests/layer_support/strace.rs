// SPDX-License-Identifier: GPL-3.0-or-later
//! Crash tests driven by strace: one unkilled run of `almost` under strace
//! counts the calls of the syscalls that change the trees, the journal, the
//! undo data or the store ([`counted`]); then runs are killed with SIGKILL
//! at chosen calls ([`kill_points`], [`killed_at`]) by strace's fault
//! injection, and the test judges what the next `almost` makes of it.

use std::fs;
use std::process::Command;
use std::time::Duration;

use super::LayerBox;
use crate::common::{self, Run};

/// Runs `almost --root SANDBOX ARGS` under `strace -f -qq STRACE_ARGS`.
pub fn almost(sb: &LayerBox, args: &[&str], strace_args: &[String]) -> Run {
    let mut c = Command::new("strace");
    c.args(["-f", "-qq"])
        .args(strace_args)
        .arg(common::ALMOST)
        .arg("--root")
        .arg(&sb.root)
        .args(args)
        .env("LC_ALL", "C.UTF-8");
    common::Spawned::spawn(c).wait(Duration::from_secs(120))
}

/// Runs `almost … ARGS` under strace tracing `syscalls`, and says how often
/// its first process made each (strace's log in the sandbox's directory).
/// The caller checks the run.
pub fn counted(sb: &LayerBox, args: &[&str], syscalls: &[&str]) -> (Run, Vec<(String, usize)>) {
    let log = sb.dir.join("strace.log");
    let r = almost(
        sb,
        args,
        &[
            "-o".to_owned(),
            log.to_string_lossy().into_owned(),
            format!("-etrace={}", syscalls.join(",")),
        ],
    );
    let counts = syscall_counts(&fs::read_to_string(&log).unwrap_or_default());
    (r, counts)
}

/// How often each syscall in an `strace -f -o` log was made by the first
/// process of the log (`almost` itself).
pub fn syscall_counts(log: &str) -> Vec<(String, usize)> {
    let mut first_pid = None;
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if *first_pid.get_or_insert_with(|| pid.to_owned()) != pid || rest.starts_with("<...") {
            continue;
        }
        let Some(name) = rest.split('(').next() else {
            continue;
        };
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += 1,
            None => counts.push((name.to_owned(), 1)),
        }
    }
    counts
}

/// The calls at which to kill: every call of a syscall made up to
/// `all_up_to` times, else the first `edges`, the middle one and the last
/// `edges` (runs of similar calls, one per op); syscalls this strace has no
/// name for are left out.
pub fn kill_points(
    counts: &[(String, usize)],
    all_up_to: usize,
    edges: usize,
) -> Vec<(String, usize)> {
    let mut points = Vec::new();
    for (name, count) in counts {
        if name.starts_with("syscall_") {
            continue;
        }
        let count = *count;
        let picks: Vec<usize> = if count <= all_up_to {
            (1..=count).collect()
        } else {
            let mut p: Vec<usize> = (1..=edges).collect();
            p.push(count.div_ceil(2));
            p.extend(count + 1 - edges..=count);
            p.dedup();
            p
        };
        points.extend(picks.into_iter().map(|k| (name.clone(), k)));
    }
    points
}

/// Runs `almost … ARGS` killed with SIGKILL at the `k`th call of `name`.
/// Whether it was killed: it died of SIGKILL, or, having made fewer such
/// calls than counted (e.g. the layer was mounted already), simply
/// finished; anything else fails the test, saying `what`.
pub fn killed_at(sb: &LayerBox, args: &[&str], name: &str, k: usize, what: &str) -> bool {
    let r = almost(
        sb,
        args,
        &[
            "-o".to_owned(),
            "/dev/null".to_owned(),
            format!("-etrace={name}"),
            format!("-einject={name}:signal=KILL:when={k}"),
        ],
    );
    if r.code == Some(0) {
        return false;
    }
    assert!(
        r.signal == Some(9) || r.code == Some(137),
        "{what} ended otherwise\n{}",
        r.describe()
    );
    true
}
