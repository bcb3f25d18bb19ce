// SPDX-License-Identifier: GPL-3.0-or-later
//! Build-time generator for `almost`'s man pages and shell completions, from
//! the same clap definition the binary parses (almost_helper::cli), so that
//! they cannot drift from it. Meson (or a packager) runs:
//!
//!     cargo run -p xtask -- man DIR           # almost.1, almost-lock.1, …
//!     cargo run -p xtask -- completions DIR   # almost.bash, _almost, almost.fish
//!
//! Hidden options and subcommands (test-only, internal) are left out.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use almost_helper::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [what, dir] if what == "man" => man_pages(Path::new(dir)),
        [what, dir] if what == "completions" => completions(Path::new(dir)),
        _ => {
            eprintln!("usage: xtask man DIR | xtask completions DIR");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The sections clap does not know: exit status, files, environment.
fn extra_sections() -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "success"),
        ("1", "internal error"),
        ("2", "bad arguments"),
        ("3", "the command needs root"),
        ("4", "the configuration file is invalid"),
        (
            "5",
            "a path or --root is invalid (also: --root refused under pkexec)",
        ),
        ("6", "some entries could not be changed"),
        (
            "7",
            "a filesystem cannot carry the immutable flag, or is read-only",
        ),
        ("8", "a resource is busy"),
        ("9", "locked: the system files are locked (apt-guard)"),
        ("10", "the user declined the confirmation"),
    ] {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(meaning)]);
    }
    roff.text([
        bold("almost run"),
        roman(" exits with its command's status once the command has started."),
    ]);
    roff.control("SH", ["FILES"]);
    for (file, what) in [
        ("/etc/almost/almost.toml", "the configuration"),
        (
            "/run/almost/",
            "runtime state: running almost run commands, a timed re-lock",
        ),
        ("/var/lib/almost/", "layer storage"),
        (
            "/var/log/almost.log",
            "the audit log when no systemd journal runs (or under a --root other than /)",
        ),
        (
            "/etc/apt/apt.conf.d/80almost",
            "the apt hook that runs almost apt-guard",
        ),
    ] {
        roff.control("TP", []);
        roff.text([italic(file)]);
        roff.text([roman(what)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", []);
    roff.text([bold("PKEXEC_UID")]);
    roff.text([roman(
        "Set by pkexec. It is recorded in the audit log, and it restricts --root to / or a \
         directory that only root can change. No other environment variable changes what \
         almost does.",
    )]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "chattr(1), lsattr(1), pkexec(1), journalctl(1), systemd.offline-updates(7)",
    )]);
    roff
}

/// Writes almost.1 (with the extra sections) and one page per visible
/// subcommand (almost-lock.1, almost-config-set.1, …).
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = command();
    let mut files = Vec::new();
    let main = dir.join("almost.1");
    let mut buf = Vec::new();
    Man::new(cmd.clone()).render(&mut buf)?;
    extra_sections().to_writer(&mut buf)?;
    std::fs::File::create(&main)?.write_all(&buf)?;
    files.push(main);
    fn subpages(cmd: &clap::Command, dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            files.push(Man::new(sub.clone()).generate_to(dir)?);
            subpages(sub, dir, files)?;
        }
        Ok(())
    }
    subpages(&cmd, dir, &mut files)?;
    Ok(files)
}

/// A copy of `cmd` without its hidden arguments and subcommands: the
/// completion generators offer everything they are given, and test-only
/// options or internal subcommands are nothing to offer a user.
fn visible_only(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_owned()).disable_help_subcommand(true);
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        out = out.long_about(about.clone());
    }
    if let Some(v) = cmd.get_version() {
        out = out.version(v.to_owned());
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        out = out.arg(arg.clone());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out = out.subcommand(visible_only(sub));
    }
    out
}

/// Writes the bash, zsh and fish completions.
pub fn completions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = visible_only(&Cli::command());
    cmd.build();
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| clap_complete::generate_to(shell, &mut cmd, "almost", dir))
        .collect()
}
