// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost.toml`: `config::parse` on any text. What it accepts is
//! manageable, does not nest, excludes only inside what it manages, and
//! comes back unchanged through `render`; what it refuses is a config
//! error placed inside the text.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use almost_core::Error;
use almost_core::config::{self, CONFIG_FILE, Config};
use almost_core::paths::{self, Root};
use libfuzzer_sys::fuzz_target;

/// A root with some of the default paths (the parser fills in defaults
/// from the directories it finds), /bin a usr-merge symlink.
fn root() -> &'static Root {
    static ROOT: OnceLock<Root> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = almost_fuzz::scratch("config");
        for sub in ["usr/local", "usr/bin", "opt", "lib"] {
            std::fs::create_dir_all(dir.join(sub)).expect("making the root");
        }
        std::os::unix::fs::symlink("usr/bin", dir.join("bin")).expect("making the root");
        Root::open(dir).expect("opening the root")
    })
}

fn check_accepted(config: &Config, text: &str) {
    for path in config.paths.iter().chain(&config.exclude) {
        let raw = path.to_str().expect("a path from text is UTF-8");
        assert_eq!(&paths::check_manageable(raw).expect("accepted"), path);
    }
    for (i, a) in config.paths.iter().enumerate() {
        for b in &config.paths[..i] {
            assert!(
                !a.starts_with(b) && !b.starts_with(a),
                "{a:?} nests in {b:?}"
            );
        }
    }
    for x in &config.exclude {
        assert!(
            config.paths.iter().any(|m| x.starts_with(m) && x != m),
            "{x:?} excluded outside the managed paths"
        );
    }
    let rendered = config::render(config);
    let again = config::parse(root(), Path::new(CONFIG_FILE), &rendered)
        .unwrap_or_else(|e| panic!("{text:?} rendered as {rendered:?}, which fails: {e}"));
    assert_eq!(&again, config, "{text:?} rendered as {rendered:?}");
    for key in config::KEYS {
        assert!(config::get(config, key).is_some());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(root(), Path::new(CONFIG_FILE), text) {
        Ok(config) => check_accepted(&config, text),
        Err(Error::Config {
            file, line, column, ..
        }) => {
            assert_eq!(file, Path::new(CONFIG_FILE));
            let lines = text.split('\n').count();
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
            assert!(column >= 1);
        }
        Err(e) => panic!("not a config error: {e}"),
    }
});
