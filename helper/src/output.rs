// SPDX-License-Identifier: GPL-3.0-or-later
//! What `almost` prints: readable text on a terminal, or one JSON event per
//! line with `--json`. Progress is drawn from a reporter thread that samples
//! the walk's counters, so the walk itself never waits on output.

use std::io::{IsTerminal, Write};
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use almost_core::protocol::{Mode, PathReport, Report};
use almost_core::system::Progress;
use almost_core::{Error, state};
use almost_protocol::{CommandResult, Event, Phase};

#[derive(Clone, Copy)]
pub struct Output {
    pub json: bool,
}

/// Where the JSON lines go: stdout (1), or the descriptor `--json-fd` named.
static JSON_FD: AtomicI32 = AtomicI32::new(1);

/// Sends the JSON lines to `fd` (`--json-fd`), which must be open; it is
/// made close-on-exec, so that a command `almost run` starts cannot write
/// into almost's protocol.
pub fn set_json_fd(fd: i32) -> Result<(), String> {
    // SAFETY: fcntl on a descriptor number only reads or sets its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(format!("--json-fd {fd}: not an open file descriptor"));
    }
    if fd == 0 || fd == 2 {
        return Err(format!(
            "--json-fd {fd}: stdin and stderr cannot carry the protocol"
        ));
    }
    if fd != 1 {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    }
    JSON_FD.store(fd, Ordering::SeqCst);
    Ok(())
}

/// Whether the JSON lines go to stdout (no `--json-fd` elsewhere).
pub fn json_on_stdout() -> bool {
    JSON_FD.load(Ordering::SeqCst) == 1
}

impl Output {
    pub fn event(&self, event: &Event) {
        let line = format!("{}\n", event.to_line());
        let fd = JSON_FD.load(Ordering::SeqCst);
        if fd == 1 {
            let mut out = std::io::stdout().lock();
            // A closed stdout (the panel went away) must not abort a lock
            // half-way.
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        } else {
            // SAFETY: the descriptor was checked open by set_json_fd and
            // is never closed by almost; ManuallyDrop keeps it open.
            let mut file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
            let _ = file.write_all(line.as_bytes());
        }
    }

    pub fn warning(&self, message: &str) {
        if self.json {
            self.event(&Event::Warning {
                message: message.to_owned(),
            });
        } else {
            eprintln!("almost: {message}");
        }
    }

    pub fn error(&self, err: &Error) {
        if self.json {
            let mut failure = almost_protocol::Failure::new(err.kind(), err.to_string());
            failure.processes = err.processes().to_vec();
            failure.commits = err.later_commits().to_vec();
            self.event(&Event::Error(failure));
        } else {
            eprintln!("almost: error: {err}");
        }
    }

    /// The one way a command says what it did: with `--json` the typed
    /// result (`result` in the variant `command` names), else the text
    /// `text` makes of it (printed as is).
    pub fn answer<T>(
        &self,
        result: T,
        command: fn(T) -> CommandResult,
        text: impl FnOnce(&T) -> String,
    ) {
        if self.json {
            self.event(&Event::result(command(result)));
        } else {
            print!("{}", text(&result));
        }
    }

    /// Starts reporting `progress` until the returned guard is dropped.
    pub fn progress(&self, phase: Phase, progress: Arc<Progress>) -> ProgressGuard {
        let stop = Arc::new(AtomicBool::new(false));
        let json = self.json;
        let tty = std::io::stderr().is_terminal();
        let thread = (json || tty).then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || report_loop(json, phase, &progress, &stop))
        });
        ProgressGuard { stop, thread }
    }
}

fn report_loop(json: bool, phase: Phase, progress: &Progress, stop: &AtomicBool) {
    let started = Instant::now();
    let mut last = u64::MAX;
    let mut drawn = false;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(if json { 200 } else { 100 }));
        let done = progress.done.load(Ordering::Relaxed);
        let total = progress.total.load(Ordering::Relaxed);
        let total = (total > 0).then_some(total.max(done));
        if json {
            if done != last {
                Output { json }.event(&Event::Progress(almost_protocol::Progress {
                    phase,
                    done,
                    total,
                    path: Some(progress.current_path()),
                }));
                last = done;
            }
        } else if started.elapsed() > Duration::from_millis(300) {
            let verb = match phase {
                Phase::Lock => "Locking",
                Phase::Unlock => "Unlocking",
                Phase::Restore => "Restoring",
                Phase::Commit => "Committing",
                Phase::Check => "Checking",
            };
            let line = match total {
                Some(t) => format!(
                    "{verb} {}: {done}/{t} entries ({}%)",
                    progress.current_path(),
                    done * 100 / t.max(1)
                ),
                None => format!("{verb} {}: {done} entries", progress.current_path()),
            };
            eprint!("\r\x1b[K{line}");
            drawn = true;
        }
    }
    if drawn {
        eprint!("\r\x1b[K");
    }
}

pub struct ProgressGuard {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ProgressGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Asks a yes/no question on the terminal. Without a terminal, with
/// `--json` or with `yes`, the answer is yes: scripts and the panel have
/// already decided.
pub fn ask(out: &Output, yes: bool, question: &str) -> almost_core::Result<()> {
    use std::io::BufRead;
    if yes || out.json || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the answer", e))?;
    match answer.trim().to_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::Cancelled),
    }
}

/// Shows a name readably even when it holds a newline or other controls.
pub fn show_path(path: &str) -> String {
    if path.chars().any(|c| c.is_control()) {
        format!("{path:?}")
    } else {
        path.to_owned()
    }
}

/// Shows a path of the protocol readably: its encoding (every byte
/// unambiguous), quoted when it holds a newline or other controls.
pub fn shown(path: &std::path::Path) -> String {
    show_path(&almost_protocol::path::encode(path))
}

fn mode_words(mode: Mode) -> &'static str {
    match mode {
        Mode::Locked => "locked (system files are protected)",
        Mode::Unlocked => "unlocked (system files are writable)",
        Mode::Partial => "partially locked",
    }
}

fn path_line(p: &PathReport) -> String {
    if let Some(reason) = &p.unsupported {
        return format!("  {:<12} not managed: {reason}", show_path(&p.path));
    }
    if p.covered {
        return format!(
            "  {:<12} covered by a layer: writable through it, its changes stay in the layer;\n  {:<12} the files beneath are unlocked until the layer is committed or discarded",
            show_path(&p.path),
            ""
        );
    }
    let mut line = format!(
        "  {:<12} {:<9} {} locked, {} unlocked, {} skipped",
        show_path(&p.path),
        p.mode.as_str(),
        p.locked,
        p.unlocked,
        p.skipped
    );
    if p.changed > 0 {
        line.push_str(&format!(", {} changed", p.changed));
    }
    if p.read_only {
        line.push_str(" [read-only mount]");
    }
    for m in &p.mount_points {
        line.push_str(&format!(
            "\n  {:<12} not crossed: mount point {}",
            "",
            show_path(m)
        ));
    }
    for o in &p.overlays {
        line.push_str(&format!(
            "\n  {:<12} overlay mounted at {}",
            "",
            show_path(o)
        ));
    }
    for e in &p.errors {
        line.push_str(&format!(
            "\n  {:<12} error: {}: {}",
            "",
            show_path(&e.path),
            e.message
        ));
    }
    if p.error_count > p.errors.len() as u64 {
        line.push_str(&format!(
            "\n  {:<12} … and {} more errors",
            "",
            p.error_count - p.errors.len() as u64
        ));
    }
    line
}

/// The text form of a report, as `status`, `lock` and `unlock` print it.
pub fn report_text(report: &Report) -> String {
    let mut text = format!("System files: {}\n", mode_words(report.mode));
    for p in &report.paths {
        text.push_str(&path_line(p));
        text.push('\n');
    }
    if report.paths.is_empty() {
        text.push_str("  (no managed paths)\n");
    }
    if let Some(id) = &report.interrupted_commit {
        text.push_str(&format!(
            "The commit of layer {id} was interrupted: the next privileged almost run finishes or rolls it back\n"
        ));
    }
    if let Some(undo) = &report.undo {
        text.push_str(&format!(
            "The last commit (layer {} into {}) can be undone: almost layer undo\n",
            undo.id,
            if undo.paths.is_empty() {
                undo.path.clone()
            } else {
                undo.paths.join(", ")
            }
        ));
    }
    if let Some(at) = report.relock_at {
        let left = at.saturating_sub(state::now());
        text.push_str(&format!(
            "Locks again in {} (timed unlock)\n",
            humantime::format_duration(Duration::from_secs(left))
        ));
    }
    for run in &report.runs {
        text.push_str(&format!(
            "Unlocked while running (pid {}): {}\n",
            run.pid, run.command
        ));
    }
    if let Some(mode) = report.restore {
        text.push_str(&format!(
            "Will return to {} when those end\n",
            mode.as_str()
        ));
    }
    if report.offline_update.is_some() {
        text.push_str("An offline update is prepared: the system will be unprotected for it.\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_newlines_are_quoted() {
        assert_eq!(show_path("/usr/a b"), "/usr/a b");
        assert_eq!(show_path("/usr/a\nb"), "\"/usr/a\\nb\"");
    }

    #[test]
    fn report_text_mentions_what_matters() {
        let usr = PathReport {
            mode: Mode::Partial,
            locked: 3,
            unlocked: 1,
            skipped: 2,
            mount_points: vec!["/usr/mnt".into()],
            ..PathReport::new("/usr")
        };
        let report = Report {
            relock_at: Some(state::now() + 60),
            restore: Some(Mode::Locked),
            offline_update: Some(almost_core::protocol::OfflineUpdate {
                kind: almost_core::protocol::OfflineKind::Update,
                source: almost_core::protocol::OfflineSource::Packagekit,
            }),
            ..Report::of_paths(Mode::Partial, vec![usr])
        };
        let text = report_text(&report);
        assert!(text.contains("partially locked"), "{text}");
        assert!(text.contains("3 locked, 1 unlocked, 2 skipped"), "{text}");
        assert!(text.contains("mount point /usr/mnt"), "{text}");
        assert!(text.contains("Locks again in"), "{text}");
        assert!(
            text.contains("An offline update is prepared: the system will be unprotected for it."),
            "{text}"
        );
    }
}
