// SPDX-License-Identifier: GPL-3.0-or-later
//! The generated man pages and completions: the main page names every
//! visible subcommand and global option (and no hidden one), each
//! subcommand has its page, `man -l` renders every page without a groff
//! warning (a broken page must produce one), and bash completes the
//! subcommands and options of the real definition.

use std::path::{Path, PathBuf};
use std::process::Command;

use almost_helper::cli::Cli;
use clap::CommandFactory;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn generate(what: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(XTASK)
        .arg(what)
        .arg(dir.path())
        .output()
        .expect("run xtask");
    assert!(
        out.status.success(),
        "xtask {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    (dir, files)
}

/// The visible subcommand names, recursively, as page names.
fn visible_pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix}-{}", sub.get_name());
        out.push(name.clone());
        visible_pages(sub, &name, out);
    }
}

fn man_available() -> bool {
    Command::new("man").arg("--version").output().is_ok()
}

/// `man -l` with groff warnings on: the warnings (stderr), or None without man.
fn man_warnings(page: &Path) -> Option<String> {
    if !man_available() {
        return None;
    }
    let out = Command::new("man")
        .args(["-P", "cat", "--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("run man");
    assert!(out.status.success(), "man -l {} failed", page.display());
    assert!(!out.stdout.is_empty(), "man rendered nothing");
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_man_page_covers_every_subcommand_and_renders_cleanly() {
    let (dir, files) = generate("man");
    let cli = Cli::command();
    let main = dir.path().join("almost.1");
    assert!(files.contains(&main), "{files:?}");
    let text = std::fs::read_to_string(&main).expect("almost.1");
    let subcommands: Vec<&clap::Command> = cli.get_subcommands().collect();
    assert!(subcommands.len() >= 8);
    for sub in &subcommands {
        let name = sub.get_name();
        let named = text.contains(&format!("almost\\-{}", name.replace('-', "\\-")));
        assert_eq!(
            named,
            !sub.is_hide_set(),
            "{name} is {}in almost.1",
            if named { "" } else { "not " }
        );
    }
    for option in ["root", "json", "verbose"] {
        assert!(
            text.contains(&format!("\\-\\-{option}")),
            "--{option} missing"
        );
    }
    for hidden in ["system", "threads", "flag"] {
        assert!(
            !text.contains(&format!("\\-\\-{hidden}")),
            "hidden --{hidden}… in the man page"
        );
    }
    for section in ["EXIT STATUS", "FILES", "ENVIRONMENT", "SEE ALSO"] {
        assert!(
            text.contains(&format!(".SH \"{section}\""))
                || text.contains(&format!(".SH {section}")),
            "{section} missing"
        );
    }

    let mut pages = Vec::new();
    visible_pages(&cli, "almost", &mut pages);
    assert!(pages.contains(&"almost-config-set".to_owned()));
    for page in &pages {
        let p = dir.path().join(format!("{page}.1"));
        assert!(files.contains(&p), "{page}.1 not generated: {files:?}");
    }
    assert_eq!(files.len(), pages.len() + 1, "{files:?}");

    for f in &files {
        if let Some(warnings) = man_warnings(f) {
            assert!(warnings.trim().is_empty(), "{}: {warnings}", f.display());
        }
    }
    // The control: a page with an unknown macro does warn.
    let broken = dir.path().join("broken.1");
    std::fs::write(&broken, format!("{text}.BOGUS macro\n")).expect("write");
    if let Some(warnings) = man_warnings(&broken) {
        assert!(
            warnings.contains("BOGUS"),
            "groff warnings are not seen: {warnings:?}"
        );
    } else {
        eprintln!("man is not installed: rendering not checked");
    }
}

/// What bash's completion offers after `words` (the last one is completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let code = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; _almost almost '{}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword]
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &code])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_offer_the_real_commands_and_nothing_hidden() {
    let (dir, files) = generate("completions");
    for name in ["almost.bash", "_almost", "almost.fish"] {
        let p = dir.path().join(name);
        assert!(files.contains(&p), "{name}: {files:?}");
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains("apt-guard"), "{name} lacks apt-guard");
        for hidden in ["__relock-timer", "system-bus", "flag-interface", "threads"] {
            assert!(!text.contains(hidden), "{name} offers hidden {hidden}");
        }
    }
    let bash = dir.path().join("almost.bash");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&bash)
        .status()
        .expect("bash -n");
    assert!(status.success());
    let top = bash_complete(&bash, &["almost", ""]);
    for sub in Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
    {
        assert!(
            top.contains(&sub.get_name().to_owned()),
            "{} not offered: {top:?}",
            sub.get_name()
        );
    }
    assert_eq!(bash_complete(&bash, &["almost", "lo"]), ["lock", "log"]);
    assert_eq!(
        bash_complete(&bash, &["almost", "config", "s"]),
        ["show", "set"]
    );
    assert!(bash_complete(&bash, &["almost", "unlock", "--"]).contains(&"--for".to_owned()));
    for (shell, flag) in [("fish", "--no-execute"), ("zsh", "-n")] {
        let script = dir.path().join(if shell == "fish" {
            "almost.fish"
        } else {
            "_almost"
        });
        match Command::new(shell).arg(flag).arg(&script).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{shell}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => eprintln!("{shell} is not installed: its completion is not parsed"),
        }
    }
}
