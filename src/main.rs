// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost-panel`: the GNOME control panel of Almost. Parses its own options
//! (`--root DIR` runs everything against a sandbox root), sets up gettext
//! and starts the relm4 application.

mod app;
mod client;
mod components;
mod config;
mod dialogs;
mod i18n;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use gtk::prelude::*;

/// The panel's command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    root: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Invocation {
    Run(Options),
    Help,
    /// The version and the application id (which says the build profile).
    Version,
}

fn parse_options(args: &[String]) -> Result<Invocation, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "--version" => return Ok(Invocation::Version),
            "--root" => {
                let dir = args.next().ok_or("--root needs a directory")?;
                options.root = Some(PathBuf::from(dir));
            }
            other if other.starts_with("--root=") => {
                options.root = Some(PathBuf::from(&other["--root=".len()..]));
            }
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    if let Some(root) = &options.root
        && (!root.is_absolute() || !root.is_dir())
    {
        return Err(format!(
            "--root {}: not an existing absolute directory",
            root.display()
        ));
    }
    Ok(Invocation::Run(options))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_options(&args) {
        Ok(Invocation::Run(options)) => options,
        Ok(Invocation::Help) => {
            println!(
                "Usage: almost-panel [--root DIR]\n\n  --root DIR  work on the sandbox system rooted at DIR (passed to every almost call)\n  --version   print the version and the application id"
            );
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!(
                "almost-panel {} ({})",
                env!("CARGO_PKG_VERSION"),
                config::APP_ID
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("almost-panel: {e}");
            return ExitCode::from(2);
        }
    };
    i18n::init();
    gtk::glib::set_application_name(&i18n::i18n("Almost"));
    let almost = Arc::new(client::Almost::new(options.root.clone()));
    let app = relm4::RelmApp::new(config::APP_ID);
    if options.root.is_some() {
        // A sandbox window is its own instance, beside the real one.
        relm4::main_application().set_flags(gtk::gio::ApplicationFlags::NON_UNIQUE);
    }
    app.with_args(vec!["almost-panel".to_owned()])
        .run::<app::App>(almost);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_parse() {
        assert_eq!(parse_options(&[]), Ok(Invocation::Run(Options::default())));
        assert_eq!(
            parse_options(&args(&["--root", "/tmp"])),
            Ok(Invocation::Run(Options {
                root: Some("/tmp".into())
            }))
        );
        assert_eq!(parse_options(&args(&["--help"])), Ok(Invocation::Help));
        assert_eq!(
            parse_options(&args(&["--root", "/tmp", "--version"])),
            Ok(Invocation::Version)
        );
        assert!(parse_options(&args(&["--root"])).is_err());
        assert!(parse_options(&args(&["--root", "relative"])).is_err());
        assert!(parse_options(&args(&["--root", "/no/such/dir/here"])).is_err());
        assert!(parse_options(&args(&["--bogus"])).is_err());
    }
}
