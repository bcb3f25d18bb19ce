// SPDX-License-Identifier: GPL-3.0-or-later
//! `layer.json`: `layer::parse_meta` on any bytes. What it accepts names
//! its own directory and normalised parts (the first its `path`), each
//! inside a managed, not excluded tree or one of the system layer's
//! directories, none inside another, and reads back the same once written
//! again.

#![no_main]

use std::path::Path;

use almost_core::layer::{self, LayerMeta};
use almost_core::{Error, paths};
use libfuzzer_sys::fuzz_target;

const ID: &str = "0badc0de";

fn check_accepted(meta: &LayerMeta, file: &Path) {
    let config = almost_fuzz::config();
    assert_eq!(meta.id, ID);
    let parts = meta.parts();
    assert_eq!(parts[0], meta.path);
    for (i, part) in parts.iter().enumerate() {
        // A system layer's directory exactly (never managed), or a clean
        // path inside a managed, not excluded tree.
        if !layer::is_system_part(part) {
            let raw = part.to_str().expect("a path from JSON is UTF-8");
            assert_eq!(&paths::check_manageable(raw).expect("a clean path"), part);
            assert!(config.paths.iter().any(|m| part.starts_with(m)));
            assert!(!config.exclude.iter().any(|x| part.starts_with(x)));
        }
        // No part lies in another, none is given twice.
        for other in &parts[i + 1..] {
            assert!(!part.starts_with(other) && !other.starts_with(part));
        }
    }
    let bytes = serde_json::to_vec(meta).expect("encoding");
    let again = layer::parse_meta(file, ID, config, &bytes).expect("written back, refused");
    assert_eq!(&again, meta);
}

fuzz_target!(|data: &[u8]| {
    let file = Path::new("/var/lib/almost/layers/0badc0de/layer.json");
    match layer::parse_meta(file, ID, almost_fuzz::config(), data) {
        Ok(meta) => check_accepted(&meta, file),
        Err(Error::InvalidPath { path, .. }) => assert_eq!(Path::new(&path), file),
        Err(e) => panic!("not an invalid-path error: {e}"),
    }
});
