// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost`: the privileged command-line tool of Almost. Parses the command
//! line, checks privileges (and, under pkexec, what `--root` may be), opens
//! the system, records every privileged act in the audit log (`audit.rs`),
//! dispatches to the command (`commands/`, one file each), and turns every
//! failure into a message and a documented exit code.

mod audit;
mod commands;
mod output;
mod wire;

use std::process::ExitCode;

use almost_core::audit::Caller;
use almost_core::layer::{Layers, PrivateMounts};
use almost_core::paths;
use almost_core::state;
use almost_core::sysbus::SystemBus;
use almost_core::system::{self, System};
use almost_core::{Error, ErrorKind, Result};
use almost_helper::cli;
use clap::Parser;

use cli::{Cli, Command};
use output::Output;

fn main() -> ExitCode {
    // The caller's umask passes through pkexec and sudo: what root creates
    // (the layer store, undo data, backups inside the trees) must not take
    // its modes from the caller.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Under --json a caller reads stdout for the outcome: a usage
            // error is the protocol's error event there, as any other.
            if e.use_stderr() && json_asked() {
                // clap's message is the paragraph before its usage line.
                let rendered = e.render().to_string();
                let message = rendered
                    .trim_start()
                    .trim_start_matches("error: ")
                    .split("\n\n")
                    .next()
                    .unwrap_or_default()
                    .split('\n')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ");
                Output { json: true }
                    .event(&almost_protocol::Event::error(ErrorKind::Usage, message));
                return ExitCode::from(ErrorKind::Usage.exit_code() as u8);
            }
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
    if let Some(fd) = cli.global.json_fd
        && let Err(message) = output::set_json_fd(fd)
    {
        Output { json: true }.event(&almost_protocol::Event::error(ErrorKind::Usage, message));
        return ExitCode::from(ErrorKind::Usage.exit_code() as u8);
    }
    let out = Output {
        json: cli.global.json || cli.global.json_fd.is_some(),
    };
    let caller = Caller::current();
    let mut act = audit::Act::default();
    let outcome = dispatch(&cli, &out, &caller, &mut act);
    if cli.command.needs_root() {
        // A root refused under pkexec is not written to at all; any other
        // is the directory opened at the start, not its path resolved again.
        let root = act.root.as_ref();
        audit::record_act(&cli, &caller, &act, root, outcome.as_ref().map(|c| *c));
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

/// Whether `--json` is among almost's own arguments (before a `--`, after
/// which the words are a command's), for errors clap finds before it has
/// parsed anything.
fn json_asked() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json" || a == "--json-fd" || a.to_string_lossy().starts_with("--json-fd="))
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

fn dispatch(cli: &Cli, out: &Output, caller: &Caller, act: &mut audit::Act) -> Result<i32> {
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
        Command::Layer { action } if is_root && commands::layer::needs_private_mounts(action) => {
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
    act.paths = audit::act_paths(command, &sys);
    if command.needs_root() {
        // Recorded before anything changes too: an `almost` killed half-way
        // (a `run` whose almost was killed) still leaves a trace.
        audit::record_start(cli, caller, act, &sys.root);
    }
    let bus = SystemBus::new(&sys.root, cli.global.system_bus.as_deref());
    let ctx = commands::Ctx {
        sys: &sys,
        out,
        bus: &bus,
        global: &cli.global,
        is_root,
        private: private.as_ref(),
    };
    let code = commands::run(command, ctx)?;
    // `boot` locked by the last good config: the broken one is its error.
    match broken_config {
        Some(broken) => Err(broken),
        None => Ok(code),
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
