// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost`: the privileged command-line tool of Almost. Parses the command
//! line, checks privileges (and, under pkexec, what `--root` may be), runs
//! the command through almost-core, records every privileged act in the
//! audit log, and turns every failure into a message and a documented exit
//! code.

mod layers;
mod output;
mod package;
mod run;
mod wire;

use std::process::ExitCode;
use std::sync::Arc;

use almost_core::audit::{self, Caller};
use almost_core::layer::{Layers, PrivateMounts};
use almost_core::paths;
use almost_core::protocol::{OfflineUpdate, Report};
use almost_core::state;
use almost_core::sysbus::{self, Inhibitor, SystemBus};
use almost_core::system::{self, Progress, System, attach_state};
use almost_core::{Error, ErrorKind, Result, config};
use almost_helper::cli;
use almost_protocol::{CommandResult, Phase};
use clap::Parser;

use cli::{Cli, Command, ConfigAction, EnterMode, UnlockArgs};
use output::Output;

fn main() -> ExitCode {
    // The caller's umask passes through pkexec and sudo: what root creates
    // (the layer store, undo data, backups inside the trees) must not take
    // its modes from the caller.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                ErrorKind::Usage.exit_code() as u8
            } else {
                0
            });
        }
    };
    let level = match cli.global.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .init();
    let out = Output {
        json: cli.global.json,
    };
    let caller = Caller::current();
    let mut act = Act::default();
    let outcome = dispatch(&cli, &out, &caller, &mut act);
    if cli.command.needs_root() {
        // A root refused under pkexec is not written to at all; any other
        // is the directory opened at the start, not its path resolved again.
        let root = act.root.as_ref();
        record_act(&cli, &caller, &act, root, outcome.as_ref().map(|c| *c));
        if let Some(root) = root
            && cli.command.may_change()
            && let Err(e) = state::mark_acted(root)
        {
            tracing::debug!("cannot mark the end of the act: {e}");
        }
    }
    match outcome {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            out.error(&err);
            ExitCode::from(err.kind().exit_code() as u8)
        }
    }
}

/// What the audit entry of this invocation needs to know from the run.
#[derive(Default)]
struct Act {
    /// The paths (inside the root) the command acted on.
    paths: Vec<String>,
    /// The root, once opened and (under pkexec) checked: entries may be
    /// written under it.
    root: Option<paths::Root>,
}

/// Records a privileged act (or the refusal of one), under `root` when it
/// may be written to. A failure to record is logged, never turned into the
/// command's failure: the act is done.
fn record_act(
    cli: &Cli,
    caller: &Caller,
    act: &Act,
    root: Option<&paths::Root>,
    outcome: std::result::Result<i32, &Error>,
) {
    let entry = audit::Entry::new(
        caller,
        cli.command.name(),
        argv(),
        act.paths.clone(),
        outcome,
    );
    let recorded = match root {
        Some(root) => audit::record(root, &entry, cli.global.journal_socket.as_deref()).map(Some),
        // A root refused under pkexec is not written to: only the system
        // journal, if there is one, hears of the attempt.
        None => audit::record_journal_only(&entry, cli.global.journal_socket.as_deref()),
    };
    match recorded {
        Ok(Some(sink)) => tracing::debug!(?sink, "recorded in the audit log"),
        Ok(None) => tracing::info!("not recorded in the audit log: no journal and no usable root"),
        // Expected for a refused attempt by a user who cannot write the log.
        Err(e) if caller.euid != 0 => {
            tracing::info!("cannot record the attempt in the audit log ({e})")
        }
        Err(e) => tracing::warn!("cannot write the audit log ({e})"),
    }
}

/// Records the start of a privileged act (see [`record_act`] for its end).
fn record_start(cli: &Cli, caller: &Caller, act: &Act, root: &paths::Root) {
    let entry = audit::Entry::started(caller, cli.command.name(), argv(), act.paths.clone());
    if let Err(e) = audit::record(root, &entry, cli.global.journal_socket.as_deref()) {
        tracing::warn!("cannot write the audit log ({e})");
    }
}

/// The command line, for the audit entries.
fn argv() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn prepare_process(threads: Option<u16>) {
    // Wide trees hold one directory fd per parent with pending subdirectories.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let threads = threads.map_or_else(
        || {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        },
        usize::from,
    );
    // The walk recurses on nothing (jobs on the heap); the large stack is
    // a margin for the libraries below it.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(64 << 20)
        .thread_name(|i| format!("almost-walk-{i}"))
        .build_global();
}

fn dispatch(cli: &Cli, out: &Output, caller: &Caller, act: &mut Act) -> Result<i32> {
    let command = &cli.command;
    let is_root = nix::unistd::geteuid().is_root();
    if caller.pkexec_uid.is_some() {
        // pkexec sets PKEXEC_UID itself: its presence only restricts.
        if cli.global.system_bus.is_some() {
            return Err(Error::Usage(
                "--system-bus is for tests and is refused under pkexec".to_owned(),
            ));
        }
        if cli.global.journal_socket.is_some() {
            return Err(Error::Usage(
                "--journal-socket is for tests and is refused under pkexec".to_owned(),
            ));
        }
        let argv1 = std::env::args_os().nth(1);
        if let Some(reason) = command.pkexec_refusal(argv1.as_deref()) {
            return Err(Error::Forbidden(reason));
        }
    }
    // The root is resolved here, once: everything after (the system, the
    // audit entries, the re-lock timer) uses this directory, and under
    // pkexec only root can change where its canonical path leads.
    let root = paths::Root::open(&cli.global.root)?;
    if caller.pkexec_uid.is_some() {
        system::check_trusted(&root)?;
    }
    act.root = Some(root.try_clone()?);
    if command.needs_root() && !is_root {
        return Err(Error::NotRoot {
            command: command.name().to_owned(),
        });
    }
    let mut private = match command {
        Command::Layer { action } if is_root && layers::needs_private_mounts(action) => {
            Some(PrivateMounts::enter()?)
        }
        Command::Overlay {
            action: cli::OverlayAction::List,
        } if is_root => Some(PrivateMounts::enter()?),
        _ => None,
    };
    // A broken config must not keep the boot from locking: `boot` locks by
    // the last good config (or the built-in defaults) and fails afterwards.
    let (sys, broken_config) = match command {
        Command::Boot => {
            let (sys, broken) = System::open_for_boot(root, cli.global.flag_interface.into())?;
            (Some(sys), broken)
        }
        _ => (open_system(cli, out, command, root)?, None),
    };
    let sys = match sys {
        Some(sys) => sys,
        None => return Ok(0),
    };
    // The overview counts the layers' changes (as root) in a namespace of
    // its own, unless a crash left a commit to finish: the recovery mounts
    // and unmounts for everyone, so it runs where the system's mounts are,
    // and this once the layers are listed without their counts.
    if matches!(command, Command::Overview) && is_root && !Layers::new(&sys).needs_recovery() {
        private = Some(PrivateMounts::enter()?);
    }
    // After opening the system, which starts no thread: a private mount
    // namespace can only be entered before the walk's threads exist.
    prepare_process(cli.global.threads);
    for notice in &sys.notices {
        out.warning(&notice.to_string());
    }
    act.paths = match command {
        Command::Config { .. } => vec![config::CONFIG_FILE.to_owned()],
        Command::Lock
        | Command::Unlock(_)
        | Command::Enter { .. }
        | Command::Run { .. }
        | Command::Boot
        | Command::PackageRemove
        | Command::RelockTimer => sys
            .config
            .paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        Command::Status | Command::Overview | Command::Log { .. } | Command::AptGuard => Vec::new(),
        Command::Layer { action } => layers::audit_paths(&sys, action),
        Command::Overlay { action } => layers::overlay_audit_paths(action),
    };
    if command.needs_root() {
        // Recorded before anything changes too: an `almost` killed half-way
        // (a `run` whose almost was killed) still leaves a trace.
        record_start(cli, caller, act, &sys.root);
    }
    let bus = SystemBus::new(&sys.root, cli.global.system_bus.as_deref());
    match command {
        Command::Status => {
            let report = status(&sys, out, &bus, is_root)?;
            out.answer(report, CommandResult::Status, output::report_text);
            Ok(0)
        }
        Command::Overview => overview(&sys, out, &bus, is_root, private.as_ref()),
        Command::Lock => set_mode(&sys, out, &bus, true, CommandResult::Lock),
        Command::Unlock(args) => unlock(&sys, out, &bus, args, &cli.global),
        Command::Enter { mode, yes } => match mode {
            EnterMode::Ro => set_mode(&sys, out, &bus, true, CommandResult::Lock),
            EnterMode::Rw => unlock(
                &sys,
                out,
                &bus,
                &UnlockArgs {
                    yes: *yes,
                    duration: None,
                },
                &cli.global,
            ),
            EnterMode::Default => match sys.default_lock() {
                Some(on) => set_mode(
                    &sys,
                    out,
                    &bus,
                    on,
                    if on {
                        CommandResult::Lock
                    } else {
                        CommandResult::Unlock
                    },
                ),
                None => {
                    let mut report = sys.measure(&Progress::default())?;
                    attach_state(&mut report, &state::read(&sys.root));
                    finish_report(
                        out,
                        CommandResult::Enter,
                        report,
                        "default_mode is keep: nothing changed\n",
                    )
                }
            },
        },
        Command::Run { command } => run::run(&sys, out, &bus, command).inspect(|&exit_code| {
            // The text is the command's own output: nothing to add.
            out.answer(
                almost_protocol::RunResult { exit_code },
                CommandResult::Run,
                |_| String::new(),
            )
        }),
        Command::Config { action } => config_cmd(&sys, out, action),
        Command::Log { lines } => log_cmd(&sys, out, *lines, cli.global.journal_socket.as_deref()),
        Command::AptGuard => apt_guard(&sys),
        Command::RelockTimer => relock_timer(&sys, &bus),
        Command::Layer { action } => layers::layer(&sys, out, &bus, action, private.as_ref()),
        Command::Overlay { action } => layers::overlay(&sys, out, &bus, action, private.as_ref()),
        Command::Boot => layers::boot(&sys, out, &bus).and_then(|code| match broken_config {
            Some(broken) => Err(broken),
            None => Ok(code),
        }),
        Command::PackageRemove => package::prepare_remove(&sys, out, &bus),
    }
}

/// Opens the system for every command but `boot`; `None` when there is
/// nothing to do (apt-guard with a broken config).
fn open_system(
    cli: &Cli,
    out: &Output,
    command: &Command,
    root: paths::Root,
) -> Result<Option<System>> {
    match System::open(root, cli.global.flag_interface.into()) {
        Ok(sys) => Ok(Some(sys)),
        // The guard only saves apt from failing half-way; when it cannot
        // tell (a broken config), it must not be what stops every install.
        Err(e) if matches!(command, Command::AptGuard) => {
            out.warning(&format!(
                "apt-guard cannot tell whether the system is locked: {e}"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Why each kind of walk holds off a shutdown (shown by `systemd-inhibit
/// --list` and by the desktop's shutdown dialog).
const WHY_LOCK: &str = "Locking the system files";
const WHY_UNLOCK: &str = "Unlocking the system files";
const WHY_RESTORE: &str = "Restoring the protection of the system files";

fn offline_update(sys: &System, out: &Output, bus: &SystemBus) -> Option<OfflineUpdate> {
    sysbus::offline_update_prepared(bus, &sys.root).unwrap_or_else(|e| {
        out.warning(&format!(
            "cannot tell whether an offline update is prepared: {e}"
        ));
        None
    })
}

/// Prints the report of an act (as `command`'s result) and turns its
/// failures into the command's error.
fn finish_report(
    out: &Output,
    command: fn(Report) -> CommandResult,
    report: Report,
    heading: &str,
) -> Result<i32> {
    let failed = system::outcome(&report);
    out.answer(report, command, |r| {
        format!("{heading}{}", output::report_text(r))
    });
    match failed {
        Some(err) => Err(err),
        None => Ok(0),
    }
}

/// The measured state and what is pending (what `status` answers). As
/// root, first what an earlier act left undone: an interrupted commit, an
/// overdue re-lock, the end of a killed `almost run`.
fn status(sys: &System, out: &Output, bus: &SystemBus, is_root: bool) -> Result<Report> {
    let progress = Arc::new(Progress::default());
    if is_root {
        // The next invocation after a killed run or an expired timer
        // restores: a status as root is such an invocation.
        let pending = Layers::new(sys).needs_recovery();
        let guard = if pending {
            Some(state::lock(&sys.root)?)
        } else {
            state::try_lock(&sys.root)?
        };
        if let Some(mut guard) = guard {
            let _inhibit = (pending || guard.state.restore.is_some())
                .then(|| Inhibitor::shutdown(bus, WHY_RESTORE));
            let _shown = out.progress(Phase::Restore, progress.clone());
            layers::recover(sys, out, &progress);
            sys.settle(&mut guard, &progress)?;
        }
    }
    let _shown = out.progress(Phase::Check, progress.clone());
    let mut report = sys.measure(&progress)?;
    drop(_shown);
    report.offline_update = offline_update(sys, out, bus);
    let layers = Layers::new(sys);
    report.interrupted_commit = layers.interrupted_commit();
    report.undo = layers
        .last_commit()
        .map(|j| almost_core::protocol::UndoInfo {
            id: j.layer.id,
            path: j.layer.path.to_string_lossy().into_owned(),
            operations: j.ops.len(),
        });
    Ok(report)
}

/// `almost overview`: the status, the layers and the config in one read.
fn overview(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    is_root: bool,
    private: Option<&PrivateMounts>,
) -> Result<i32> {
    let report = status(sys, out, bus, is_root)?;
    let infos = layers::infos(sys, private)?;
    let result = almost_protocol::Overview {
        status: report,
        layers: infos.iter().map(wire::layer).collect(),
        config: wire::config(&sys.config),
        watch: [
            std::path::Path::new(state::STATE_DIR).join(state::ACTED_FILE),
            std::path::PathBuf::from(config::CONFIG_FILE),
        ]
        .iter()
        .map(|inside| sys.root.host(inside))
        .collect(),
    };
    out.answer(Box::new(result), CommandResult::Overview, |o| {
        format!(
            "{}\n{}",
            output::report_text(&o.status),
            layers::list_text(&infos)
        )
    });
    Ok(0)
}

fn set_mode(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    on: bool,
    command: fn(Report) -> CommandResult,
) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    let _inhibit = Inhibitor::shutdown(bus, if on { WHY_LOCK } else { WHY_UNLOCK });
    let mut guard = state::lock(&sys.root)?;
    layers::recover(sys, out, &progress);
    sys.settle(&mut guard, &progress)?;
    let shown = out.progress(
        if on { Phase::Lock } else { Phase::Unlock },
        progress.clone(),
    );
    let report = sys.set_mode(&mut guard, on, &progress)?;
    drop(shown);
    finish_report(out, command, report, "")
}

fn confirm_unlock(sys: &System, out: &Output, args: &UnlockArgs) -> Result<()> {
    let paths: Vec<String> = sys
        .config
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    output::ask(
        out,
        args.yes,
        &format!(
            "Unlock {}? Any root process will be able to change these files.",
            paths.join(", ")
        ),
    )
}

fn unlock(
    sys: &System,
    out: &Output,
    bus: &SystemBus,
    args: &UnlockArgs,
    global: &cli::Global,
) -> Result<i32> {
    confirm_unlock(sys, out, args)?;
    let Some(duration) = args.duration else {
        return set_mode(sys, out, bus, false, CommandResult::Unlock);
    };
    let progress = Arc::new(Progress::default());
    let _inhibit = Inhibitor::shutdown(bus, WHY_UNLOCK);
    let mut guard = state::lock(&sys.root)?;
    sys.settle(&mut guard, &progress)?;
    // A timed unlock ends locked, whatever the mode was before: that is what
    // the user asked for ("unlock for ten minutes").
    guard.state.restore = Some(almost_core::protocol::Mode::Locked);
    let at = state::now() + duration.as_secs().max(1);
    guard.state.relock_at = Some(guard.state.relock_at.map_or(at, |t| t.max(at)));
    guard.state.stop_timer();
    guard.state.timer = state::Proc::of(spawn_timer(global, &sys.root)?);
    guard.save()?;
    let shown = out.progress(Phase::Unlock, progress.clone());
    let mut report = sys.apply(false, &progress)?;
    drop(shown);
    attach_state(&mut report, &guard.state);
    finish_report(out, CommandResult::Unlock, report, "")
}

/// Starts the detached process that re-locks when the timer runs out. If it
/// dies, the next `almost` invocation does the overdue re-lock instead.
/// It gets the canonical path of the root this process opened, not
/// `--root` as given: under pkexec that path was checked to be root's
/// alone, so it still leads there, whatever became of a link in `--root`.
fn spawn_timer(global: &cli::Global, root: &paths::Root) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the almost executable", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root")
        .arg(root.path())
        .arg("--flag-interface")
        .arg(match global.flag_interface {
            cli::Interface::Auto => "auto",
            cli::Interface::FileSetattr => "file-setattr",
            cli::Interface::Ioctl => "ioctl",
        })
        .args(
            global
                .system_bus
                .as_ref()
                .map(|a| ["--system-bus", a.as_str()])
                .into_iter()
                .flatten(),
        )
        .args(
            global
                .journal_socket
                .as_ref()
                .map(|s| [std::ffi::OsStr::new("--journal-socket"), s.as_os_str()])
                .into_iter()
                .flatten(),
        )
        .arg("__relock-timer")
        // Root starts the timer for the root it checked, on the time the
        // caller asked for; the timer is no pkexec command and would be
        // refused (exit 12) as one, leaving the tree unlocked until the
        // next privileged act.
        .env_remove("PKEXEC_UID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .current_dir("/");
    // SAFETY: setsid is async-signal-safe; nothing else runs in pre_exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Error::io("starting the re-lock timer", e))?;
    Ok(child.id() as i32)
}

fn relock_timer(sys: &System, bus: &SystemBus) -> Result<i32> {
    loop {
        let mut guard = state::lock(&sys.root)?;
        let Some(at) = guard.state.relock_at else {
            return Ok(0);
        };
        let now = state::now();
        if at <= now {
            let _inhibit = Inhibitor::shutdown(bus, WHY_RESTORE);
            sys.settle(&mut guard, &Progress::default())?;
            return Ok(0);
        }
        drop(guard);
        std::thread::sleep(std::time::Duration::from_secs((at - now).min(30)));
    }
}

fn config_cmd(sys: &System, out: &Output, action: &ConfigAction) -> Result<i32> {
    match action {
        ConfigAction::Show => out.answer(wire::config(&sys.config), CommandResult::Config, |_| {
            config::render(&sys.config)
        }),
        ConfigAction::Get { key } => {
            let values = config::get(&sys.config, key).ok_or_else(|| Error::Config {
                file: config::CONFIG_FILE.into(),
                line: 0,
                column: 0,
                message: format!("unknown key {key:?} (known: {})", config::KEYS.join(", ")),
            })?;
            let value = almost_protocol::ConfigValue {
                key: key.clone(),
                value: values,
            };
            out.answer(value, CommandResult::ConfigGet, |v| {
                v.value.iter().map(|v| format!("{v}\n")).collect()
            });
        }
        ConfigAction::Set { key, values } => {
            let config = config::set(&sys.root, key, values)?;
            out.answer(wire::config(&config), CommandResult::Config, |_| {
                config::render(&config)
            });
        }
    }
    Ok(0)
}

/// `almost log`: the recent audit entries, oldest first.
fn log_cmd(
    sys: &System,
    out: &Output,
    lines: usize,
    journal: Option<&std::path::Path>,
) -> Result<i32> {
    let (entries, bad) = audit::recent(&sys.root, lines, journal)?;
    if bad > 0 {
        out.warning(&format!("{bad} lines of the audit log are not entries"));
    }
    let result = almost_protocol::LogEntries {
        entries: entries.iter().map(wire::log_entry).collect(),
    };
    out.answer(result, CommandResult::Log, |_| {
        if entries.is_empty() {
            return "No privileged act recorded yet.\n".to_owned();
        }
        entries
            .iter()
            .map(|e| format!("{}  {}\n", e.time, e.summary()))
            .collect()
    });
    Ok(0)
}

/// `almost apt-guard`: refuses (exit 9, with what to do) when a managed
/// tree is locked — its top directory carries the flag: one read per path,
/// no walk — and no `almost run` is under way; succeeds silently otherwise.
fn apt_guard(sys: &System) -> Result<i32> {
    if state::read(&sys.root).runs.iter().any(|r| r.is_alive()) {
        return Ok(0);
    }
    let mut locked = Vec::new();
    for path in &sys.config.paths {
        // A missing or symlinked path is not a tree of its own.
        let Ok(fd) = sys.root.open_dir(path) else {
            continue;
        };
        match almost_core::attrs::get_immutable(std::os::fd::AsFd::as_fd(&fd), c"", sys.iface) {
            Ok(true) => locked.push(path.to_string_lossy().into_owned()),
            Ok(false) => {}
            Err(e) => tracing::debug!("{}: cannot read the flag ({e})", path.display()),
        }
    }
    if locked.is_empty() {
        Ok(0)
    } else {
        Err(Error::Locked { paths: locked })
    }
}
