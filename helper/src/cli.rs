// SPDX-License-Identifier: GPL-3.0-or-later
//! The command line of `almost`: typed subcommands, compatible with the
//! original almost's spellings (`check`, `enter ro|rw|default`).

use std::ffi::OsString;
use std::path::PathBuf;

use almost_core::attrs::FlagInterface;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "almost",
    version,
    about = "On-demand immutability: lock and unlock the system trees",
    long_about = "On-demand immutability: sets or clears the immutable (i) flag over the \
                  managed system trees (/usr and friends; never /home, /etc, /var). \
                  Exit codes: 0 ok, 1 internal, 2 usage, 3 not root, 4 bad config, \
                  5 invalid path, 6 some entries failed, 7 unsupported or read-only \
                  filesystem, 8 busy, 9 locked (apt-guard), 10 cancelled, 11 disk full, \
                  12 refused under pkexec."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Work on the system rooted at DIR (config, trees and state inside it)
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// One JSON object per line on stdout; no prompts, no progress bar
    #[arg(long, global = true)]
    pub json: bool,
    /// As --json, but the JSON lines go to the open file descriptor N
    /// instead of stdout (so `almost run`'s command keeps stdout)
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub json_fd: Option<i32>,
    /// More log lines on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Walker threads (default: one per CPU, at least two); for measurements
    #[arg(long, global = true, hide = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Kernel interface that writes the flag (for tests and old kernels)
    #[arg(long, global = true, hide = true, value_enum, default_value = "auto")]
    pub flag_interface: Interface,
    /// For tests only: the D-Bus address to use as the system bus (default:
    /// the system bus socket when --root is /, no bus otherwise). Refused
    /// under pkexec.
    #[arg(long, global = true, hide = true, value_name = "ADDRESS")]
    pub system_bus: Option<String>,
    /// For tests only: send the audit entries to the journald listening at
    /// SOCKET (and read them back from the journal) whatever the root
    /// (default: the system journal when --root is /, the file under the
    /// root otherwise). Refused under pkexec.
    #[arg(long, global = true, hide = true, value_name = "SOCKET")]
    pub journal_socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Interface {
    Auto,
    FileSetattr,
    Ioctl,
}

impl From<Interface> for FlagInterface {
    fn from(i: Interface) -> Self {
        match i {
            Interface::Auto => FlagInterface::Auto,
            Interface::FileSetattr => FlagInterface::FileSetattr,
            Interface::Ioctl => FlagInterface::Ioctl,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the measured state of the managed trees
    #[command(alias = "check")]
    Status,
    /// Everything a front end shows in one read: status, layers, config
    #[command(
        long_about = "Everything a front end (the panel) shows, in one read: the status, \
                      the layers and the configuration, and the files whose change means \
                      an act of almost ended. Unprivileged, like status; as root the \
                      layers' changes are counted. For programs: use --json."
    )]
    Overview,
    /// Set the immutable flag on every managed file and directory
    Lock {
        /// Lock even while `almost run` commands are under way (they may
        /// then fail half-way)
        #[arg(long)]
        force: bool,
    },
    /// Clear the immutable flag (optionally only for a while)
    Unlock(UnlockArgs),
    /// The original almost's spelling: enter ro (lock), rw (unlock), default
    Enter {
        #[arg(value_enum)]
        mode: EnterMode,
        /// Do not ask for confirmation before unlocking
        #[arg(long, short)]
        yes: bool,
        /// Lock even while `almost run` commands are under way
        #[arg(long)]
        force: bool,
    },
    /// Unlock, run a command, then restore the mode that was there before
    Run {
        /// The command and its arguments
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<OsString>,
    },
    /// Show or change the configuration (/etc/almost/almost.toml)
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Show the recent entries of the audit log (every privileged act)
    Log {
        /// How many entries
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
        lines: usize,
    },
    /// For the apt hook: fail, saying what to do, when the system is locked
    #[command(
        long_about = "For the apt hook (/etc/apt/apt.conf.d/80almost, DPkg::Pre-Invoke): \
                      exits 9 with a message on stderr saying what to do when a managed \
                      tree is locked (its top directory carries the flag) and no `almost \
                      run` is active, so that apt stops before dpkg changes anything; \
                      exits 0 silently otherwise. Reads one flag per managed path."
    )]
    AptGuard,
    /// Test changes in an overlay over a managed directory, then commit or discard
    Layer {
        #[command(subcommand)]
        action: LayerAction,
    },
    /// The original almost's spelling of layers, by path
    Overlay {
        #[command(subcommand)]
        action: OverlayAction,
    },
    /// The original almost's shell: your login shell, run as root with the
    /// system files writable until it exits (`run` of that shell)
    #[command(
        long_about = "The original almost's `shell`: `almost run` of the login shell of the \
                      user who ran sudo (root's without sudo), as the root's passwd \
                      database names it. The system files are writable until the shell \
                      exits; then the mode from before comes back (locked again if it was \
                      locked), and the programs still running files replaced meanwhile are \
                      named. Refused under pkexec, as run is."
    )]
    Shell,
    /// The original almost's states, as layers: state new, state rollback ID
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// What the boot unit runs: finish interrupted commits, re-mount layers,
    /// apply the default mode
    Boot,
    /// Internal: the process that re-locks when a timed unlock ends
    #[command(name = "__relock-timer", hide = true)]
    RelockTimer,
    /// For the Debian package's prerm: refuse while a layer is open or a
    /// commit is unfinished, else unlock every managed tree for good
    #[command(name = "package-remove", hide = true)]
    PackageRemove,
}

#[derive(Debug, Subcommand)]
pub enum LayerAction {
    /// Mount a new layer over PATH… (managed directories or ones inside
    /// them, /etc, the package manager's state), one layer over them all
    New {
        #[arg(required_unless_present = "system", value_name = "PATH")]
        paths: Vec<String>,
        /// The layer a software change needs: the managed trees, /etc and
        /// the package manager's state (/var/lib/dpkg, /var/lib/apt, …)
        #[arg(long, conflicts_with_all = ["paths", "host"])]
        system: bool,
        /// Discard the layer at the next boot instead of re-mounting it
        #[arg(long)]
        temporary: bool,
        /// Each PATH is a path of this machine below --root's directory
        /// (what a file chooser gives), not a path inside the root
        #[arg(long)]
        host: bool,
    },
    /// List the layers with their state, changes and size
    List,
    /// Show every change a layer makes
    Diff {
        id: String,
        /// Add unified diffs of modified text files
        #[arg(long)]
        patch: bool,
    },
    /// Apply a layer's changes to the system (asks first on a terminal)
    Commit {
        id: String,
        #[arg(long, short)]
        yes: bool,
        /// Commit at the next boot, before anything starts (for a layer in
        /// use by running programs, such as one over /usr)
        #[arg(long)]
        at_boot: bool,
        /// Commit only these changes (paths as `layer diff` prints them; a
        /// directory selects everything below it) and what they need; the
        /// rest stays in the layer, which stays mounted
        #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with_all = ["except", "at_boot"])]
        only: Vec<String>,
        /// Commit every change but these (and what the committed ones need)
        #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with = "at_boot")]
        except: Vec<String>,
    },
    /// Unmount a layer and delete its changes
    Discard {
        id: String,
        #[arg(long, short)]
        yes: bool,
        /// Discard at the next boot, before anything starts
        #[arg(long)]
        at_boot: bool,
    },
    /// Mount a layer again (after a reboot, it shows as not mounted)
    Mount { id: String },
    /// Take a commit back (default: the last one); an older one only when
    /// no later commit touched the same paths (else exit 13, naming them)
    Undo {
        /// The commit's id, as `layer history` lists it
        commit: Option<String>,
        #[arg(long, short)]
        yes: bool,
        /// Undo even though paths the commit wrote have changed since
        /// (those changes are lost); without it such an undo is refused
        /// (exit 8) and the paths are named
        #[arg(long)]
        force: bool,
    },
    /// The commits that can still be undone, newest first
    History,
}

#[derive(Debug, Subcommand)]
pub enum OverlayAction {
    /// layer new PATH
    New { path: String },
    /// layer list
    List,
    /// layer commit, by path
    Commit {
        path: String,
        #[arg(long, short)]
        yes: bool,
    },
    /// layer discard, by path
    Discard {
        path: String,
        #[arg(long, short)]
        yes: bool,
    },
}

/// The original almost's `state` spellings, each one a layer command.
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// A new state: a persistent system layer (`layer new --system`)
    New,
    /// Go back to before the commit ID (`layer undo ID`: any commit of
    /// `layer history` that no later commit overlaps)
    Rollback {
        id: String,
        #[arg(long, short)]
        yes: bool,
        /// Roll back even though paths the commit wrote have changed since
        #[arg(long)]
        force: bool,
    },
}

impl StateAction {
    /// The layer command it stands for (`state rollback ID` is `layer
    /// undo ID`).
    pub fn as_layer(&self) -> LayerAction {
        match self {
            StateAction::New => LayerAction::New {
                paths: Vec::new(),
                system: true,
                temporary: false,
                host: false,
            },
            StateAction::Rollback { id, yes, force } => LayerAction::Undo {
                commit: Some(id.clone()),
                yes: *yes,
                force: *force,
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
    /// Lock again after this long (90s, 10m, 1h, 1h30m)
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (try 90s, 10m, 1h)"))?;
    if d.is_zero() {
        return Err("the duration must be longer than zero".to_owned());
    }
    if d > std::time::Duration::from_secs(366 * 24 * 3600) {
        return Err("the duration is longer than a year".to_owned());
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnterMode {
    /// Read-only: lock
    Ro,
    /// Read-write: unlock
    Rw,
    /// The configured default mode
    Default,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration
    Show,
    /// Print one value (default_mode, paths, exclude, keep_commits)
    Get { key: String },
    /// Set values (validated together, written atomically, comments kept):
    /// KEY VALUE… for one key, or KEY=VALUE… for several (a list key
    /// repeated takes each value; `exclude=` alone is the empty list)
    Set {
        #[arg(
            required = true,
            num_args = 1..,
            allow_hyphen_values = true,
            value_name = "KEY VALUE…|KEY=VALUE…"
        )]
        words: Vec<String>,
    },
    /// Remove keys from the file, so their defaults apply (atomically)
    Unset {
        #[arg(required = true, num_args = 1.., value_name = "KEY")]
        keys: Vec<String>,
    },
}

/// The subcommands that may run under pkexec, each matched by a polkit
/// action of its own on `argv[1]` (`org.freedesktop.policykit.exec.argv1`
/// in data/org.almost.policy.in).
pub const PKEXEC_COMMANDS: [&str; 4] = ["lock", "unlock", "layer", "config"];

impl Command {
    /// Why this command line may not run under pkexec (`argv1` is the word
    /// pkexec matched the action on), or `None` when it may. pkexec picks
    /// the action by `argv[1]`, so the subcommand must be there: with an
    /// option first (`--root R unlock`) polkit would have checked another
    /// action than the act. `run` (a program of the caller's choosing, as
    /// root) and every other command without an action of its own are
    /// refused: they are for sudo, where the administrator's rules apply.
    pub fn pkexec_refusal(&self, argv1: Option<&std::ffi::OsStr>) -> Option<String> {
        let name = self.name();
        if !PKEXEC_COMMANDS.contains(&name) {
            return Some(match self {
                Command::Run { .. } => "`almost run` would run a program of the caller's \
                                        choosing as root; use sudo"
                    .to_owned(),
                Command::Shell => {
                    "`almost shell` would give the caller a root shell; use sudo".to_owned()
                }
                _ => format!(
                    "`almost {name}` has no polkit action (only {} do); use sudo",
                    PKEXEC_COMMANDS.join(", ")
                ),
            });
        }
        if argv1 != Some(std::ffi::OsStr::new(name)) {
            return Some(format!(
                "the subcommand must come first (almost {name} [OPTIONS]…): polkit \
                 chose its action by the first argument, {:?}",
                argv1.unwrap_or_default()
            ));
        }
        None
    }

    /// Whether the command changes the system and so needs root.
    pub fn needs_root(&self) -> bool {
        !matches!(
            self,
            Command::Status
                | Command::Overview
                | Command::Log { .. }
                | Command::AptGuard
                | Command::Config {
                    action: ConfigAction::Show | ConfigAction::Get { .. }
                }
                | Command::Layer {
                    action: LayerAction::List
                }
                | Command::Overlay {
                    action: OverlayAction::List
                }
        )
    }

    /// Whether the command may change the system, its state or its
    /// config: the privileged ones but `layer diff` (root only because it
    /// reads overlayfs' trusted xattrs) and `layer history` (root only
    /// because the undo data is root's; a reader that refreshes it when
    /// an act ends must not make an act end). Their end is marked for the
    /// panel (`/run/almost/acted`).
    pub fn may_change(&self) -> bool {
        self.needs_root()
            && !matches!(
                self,
                Command::Layer {
                    action: LayerAction::Diff { .. } | LayerAction::History
                }
            )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Overview => "overview",
            Command::Lock { .. } => "lock",
            Command::Unlock(_) => "unlock",
            Command::Enter { .. } => "enter",
            Command::Run { .. } => "run",
            Command::Config { .. } => "config",
            Command::Log { .. } => "log",
            Command::AptGuard => "apt-guard",
            Command::Layer { .. } => "layer",
            Command::Overlay { .. } => "overlay",
            Command::Shell => "shell",
            Command::State { .. } => "state",
            Command::Boot => "boot",
            Command::RelockTimer => "__relock-timer",
            Command::PackageRemove => "package-remove",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_original_spellings_and_run_arguments() {
        let cli = Cli::try_parse_from(["almost", "--root", "/tmp/r", "check"]).unwrap();
        assert!(matches!(cli.command, Command::Status));
        let cli = Cli::try_parse_from(["almost", "enter", "ro"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Enter {
                mode: EnterMode::Ro,
                ..
            }
        ));
        let cli = Cli::try_parse_from(["almost", "run", "--", "ls", "-la", "--root"]).unwrap();
        let Command::Run { command } = cli.command else {
            panic!()
        };
        assert_eq!(command, ["ls", "-la", "--root"]);
        let cli = Cli::try_parse_from(["almost", "run", "sh", "-c", "exit 3"]).unwrap();
        let Command::Run { command } = cli.command else {
            panic!()
        };
        assert_eq!(command.len(), 3);
        assert!(Cli::try_parse_from(["almost", "run"]).is_err());
        let cli = Cli::try_parse_from(["almost", "log", "-n", "5"]).unwrap();
        assert!(matches!(cli.command, Command::Log { lines: 5 }));
        let cli =
            Cli::try_parse_from(["almost", "--system-bus", "unix:path=/x", "apt-guard"]).unwrap();
        assert!(matches!(cli.command, Command::AptGuard));
        assert_eq!(cli.global.system_bus.as_deref(), Some("unix:path=/x"));
        assert!(!cli.command.needs_root());
        assert!(Cli::try_parse_from(["almost", "enter", "sideways"]).is_err());
    }

    #[test]
    fn under_pkexec_the_subcommand_comes_first_and_has_an_action() {
        let refusal = |argv: &[&str]| {
            let cli = Cli::try_parse_from(argv).unwrap();
            cli.command
                .pkexec_refusal(argv.get(1).map(std::ffi::OsStr::new))
        };
        for ok in [
            &["almost", "lock", "--root", "/r", "--json"][..],
            &["almost", "unlock", "--yes", "--json"],
            &["almost", "layer", "--json", "diff", "--patch", "ab12"],
            &[
                "almost",
                "config",
                "--root",
                "/r",
                "set",
                "default_mode",
                "locked",
            ],
        ] {
            assert_eq!(refusal(ok), None, "{ok:?}");
        }
        // Global options before the subcommand: polkit matched "--root".
        assert!(refusal(&["almost", "--root", "/r", "unlock", "--yes"]).is_some());
        assert!(refusal(&["almost", "--json", "lock"]).is_some());
        // No action of their own.
        for refused in [
            &["almost", "run", "--", "id"][..],
            &["almost", "enter", "rw"],
            &["almost", "boot"],
            &["almost", "status"],
            &["almost", "overlay", "list"],
            &["almost", "__relock-timer"],
            &["almost", "shell"],
            &["almost", "state", "new"],
            &["almost", "state", "rollback", "ab12"],
        ] {
            assert!(refusal(refused).is_some(), "{refused:?}");
        }
        assert!(
            refusal(&["almost", "run", "--", "id"])
                .unwrap()
                .contains("sudo")
        );
        // The policy names exactly these, each with its argv1.
        let policy = include_str!("../../data/org.almost.policy.in");
        for name in PKEXEC_COMMANDS {
            assert!(
                policy.contains(&format!(
                    "<annotate key=\"org.freedesktop.policykit.exec.argv1\">{name}</annotate>"
                )),
                "no action for {name}"
            );
        }
        assert_eq!(
            policy
                .matches("<annotate key=\"org.freedesktop.policykit.exec.argv1\">")
                .count(),
            PKEXEC_COMMANDS.len(),
            "an action the helper refuses"
        );
        assert_eq!(
            policy.matches("<action id=").count(),
            PKEXEC_COMMANDS.len(),
            "an action without argv1 (pkexec would pick it for any command line)"
        );
    }

    // Reading the history needs root but marks no act's end (a panel that
    // reads it when an act ends would read it for ever); undo does.
    #[test]
    fn layer_history_is_root_only_and_changes_nothing() {
        let command = |argv: &[&str]| Cli::try_parse_from(argv).unwrap().command;
        let history = command(&["almost", "layer", "history"]);
        assert!(history.needs_root() && !history.may_change());
        let undo = command(&["almost", "layer", "undo", "0badc0de", "--yes"]);
        assert!(undo.needs_root() && undo.may_change());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        let cli = Cli::try_parse_from(["almost", "unlock", "--for", "10m", "--yes"]).unwrap();
        let Command::Unlock(args) = cli.command else {
            panic!()
        };
        assert_eq!(args.duration.unwrap().as_secs(), 600);
    }
}
