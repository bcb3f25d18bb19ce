// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost`: the privileged command-line tool of Almost. Parses the command
//! line, checks privileges, runs the command through almost-core and turns
//! every failure into a message and a documented exit code.

mod cli;
mod layers;
mod output;
mod run;

use std::process::ExitCode;
use std::sync::Arc;

use almost_core::config;
use almost_core::layer::{Layers, PrivateMounts};
use almost_core::protocol::Report;
use almost_core::state;
use almost_core::system::{self, Progress, System, attach_state};
use almost_core::{Error, ErrorKind, Result};
use clap::Parser;

use cli::{Cli, Command, ConfigAction, EnterMode, UnlockArgs};
use output::Output;

fn main() -> ExitCode {
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
    match dispatch(&cli, &out) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            out.error(&err);
            ExitCode::from(err.kind().exit_code() as u8)
        }
    }
}

fn prepare_process(threads: Option<u16>) {
    // Deep trees hold one directory fd per level and per worker.
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
    // A large stack: the walk recurses once per directory level.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(64 << 20)
        .thread_name(|i| format!("almost-walk-{i}"))
        .build_global();
}

fn dispatch(cli: &Cli, out: &Output) -> Result<i32> {
    let command = &cli.command;
    let is_root = nix::unistd::geteuid().is_root();
    if command.needs_root() && !is_root {
        return Err(Error::NotRoot {
            command: command.name().to_owned(),
        });
    }
    let private = match command {
        Command::Layer { action } if is_root && layers::needs_private_mounts(action) => {
            Some(PrivateMounts::enter()?)
        }
        Command::Overlay {
            action: cli::OverlayAction::List,
        } if is_root => Some(PrivateMounts::enter()?),
        _ => None,
    };
    prepare_process(cli.global.threads);
    let sys = System::open(&cli.global.root, cli.global.flag_interface.into())?;
    for notice in &sys.notices {
        out.warning(&notice.to_string());
    }
    match command {
        Command::Status => status(&sys, out, is_root),
        Command::Lock => set_mode(&sys, out, true, "lock"),
        Command::Unlock(args) => unlock(&sys, out, args, &cli.global),
        Command::Enter { mode, yes } => match mode {
            EnterMode::Ro => set_mode(&sys, out, true, "lock"),
            EnterMode::Rw => unlock(
                &sys,
                out,
                &UnlockArgs {
                    yes: *yes,
                    duration: None,
                },
                &cli.global,
            ),
            EnterMode::Default => match sys.default_lock() {
                Some(on) => set_mode(&sys, out, on, if on { "lock" } else { "unlock" }),
                None => {
                    let mut report = sys.measure(&Progress::default())?;
                    attach_state(&mut report, &state::read(&sys.root));
                    finish_report(
                        out,
                        "enter",
                        &report,
                        "default_mode is keep: nothing changed\n",
                    )
                }
            },
        },
        Command::Run { command } => run::run(&sys, out, command),
        Command::Config { action } => config_cmd(&sys, out, action),
        Command::RelockTimer => relock_timer(&sys),
        Command::Layer { action } => layers::layer(&sys, out, action, private.as_ref()),
        Command::Overlay { action } => layers::overlay(&sys, out, action, private.as_ref()),
        Command::Boot => layers::boot(&sys, out),
    }
}

fn report_json(report: &Report) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or(serde_json::Value::Null)
}

/// Prints a report and turns its failures into the command's error.
fn finish_report(out: &Output, command: &str, report: &Report, heading: &str) -> Result<i32> {
    if out.json {
        out.result(command, report_json(report));
    } else {
        print!("{heading}{}", output::report_text(report));
    }
    match system::outcome(report) {
        Some(err) if command != "status" => Err(err),
        _ => Ok(0),
    }
}

fn status(sys: &System, out: &Output, is_root: bool) -> Result<i32> {
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
            let _shown = out.progress("restore", progress.clone());
            layers::recover(sys, out, &progress);
            sys.settle(&mut guard, &progress)?;
        }
    }
    let _shown = out.progress("check", progress.clone());
    let mut report = sys.measure(&progress)?;
    drop(_shown);
    let layers = Layers::new(sys);
    report.interrupted_commit = layers.interrupted_commit();
    report.undo = layers
        .last_commit()
        .map(|j| almost_core::protocol::UndoInfo {
            id: j.layer.id,
            path: j.layer.path.to_string_lossy().into_owned(),
            operations: j.ops.len(),
        });
    finish_report(out, "status", &report, "")
}

fn set_mode(sys: &System, out: &Output, on: bool, command: &str) -> Result<i32> {
    let progress = Arc::new(Progress::default());
    let mut guard = state::lock(&sys.root)?;
    layers::recover(sys, out, &progress);
    sys.settle(&mut guard, &progress)?;
    let shown = out.progress(if on { "lock" } else { "unlock" }, progress.clone());
    let report = sys.set_mode(&mut guard, on, &progress)?;
    drop(shown);
    finish_report(out, command, &report, "")
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

fn unlock(sys: &System, out: &Output, args: &UnlockArgs, global: &cli::Global) -> Result<i32> {
    confirm_unlock(sys, out, args)?;
    let Some(duration) = args.duration else {
        return set_mode(sys, out, false, "unlock");
    };
    let progress = Arc::new(Progress::default());
    let mut guard = state::lock(&sys.root)?;
    sys.settle(&mut guard, &progress)?;
    // A timed unlock ends locked, whatever the mode was before: that is what
    // the user asked for ("unlock for ten minutes").
    guard.state.restore = Some(almost_core::protocol::Mode::Locked);
    let at = state::now() + duration.as_secs().max(1);
    guard.state.relock_at = Some(guard.state.relock_at.map_or(at, |t| t.max(at)));
    guard.state.stop_timer();
    guard.state.timer = state::Proc::of(spawn_timer(global)?);
    guard.save()?;
    let shown = out.progress("unlock", progress.clone());
    let mut report = sys.apply(false, &progress)?;
    drop(shown);
    attach_state(&mut report, &guard.state);
    finish_report(out, "unlock", &report, "")
}

/// Starts the detached process that re-locks when the timer runs out. If it
/// dies, the next `almost` invocation does the overdue re-lock instead.
fn spawn_timer(global: &cli::Global) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the almost executable", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root")
        .arg(&global.root)
        .arg("--flag-interface")
        .arg(match global.flag_interface {
            cli::Interface::Auto => "auto",
            cli::Interface::FileSetattr => "file-setattr",
            cli::Interface::Ioctl => "ioctl",
        })
        .arg("__relock-timer")
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

fn relock_timer(sys: &System) -> Result<i32> {
    loop {
        let mut guard = state::lock(&sys.root)?;
        let Some(at) = guard.state.relock_at else {
            return Ok(0);
        };
        let now = state::now();
        if at <= now {
            sys.settle(&mut guard, &Progress::default())?;
            return Ok(0);
        }
        drop(guard);
        std::thread::sleep(std::time::Duration::from_secs((at - now).min(30)));
    }
}

fn config_cmd(sys: &System, out: &Output, action: &ConfigAction) -> Result<i32> {
    match action {
        ConfigAction::Show => {
            if out.json {
                out.result(
                    "config",
                    serde_json::to_value(&sys.config).unwrap_or_default(),
                );
            } else {
                print!("{}", config::render(&sys.config));
            }
        }
        ConfigAction::Get { key } => {
            let values = config::get(&sys.config, key).ok_or_else(|| Error::Config {
                file: config::CONFIG_FILE.into(),
                line: 0,
                column: 0,
                message: format!("unknown key {key:?} (known: {})", config::KEYS.join(", ")),
            })?;
            if out.json {
                let mut body = serde_json::Map::new();
                body.insert("key".into(), key.clone().into());
                body.insert(
                    "value".into(),
                    serde_json::to_value(&values).unwrap_or_default(),
                );
                out.result("config", serde_json::Value::Object(body));
            } else {
                for v in values {
                    println!("{v}");
                }
            }
        }
        ConfigAction::Set { key, values } => {
            let config = config::set(&sys.root, key, values)?;
            if out.json {
                out.result("config", serde_json::to_value(&config).unwrap_or_default());
            } else {
                print!("{}", config::render(&config));
            }
        }
    }
    Ok(0)
}
