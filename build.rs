// SPDX-License-Identifier: GPL-3.0-or-later
//! Compiles the translations listed in po/LINGUAS into
//! `$OUT_DIR/locale/<lang>/LC_MESSAGES/almost.mo` with msgfmt (checking
//! them on the way), so a cargo-built panel runs translated. Meson will
//! install them for real later. Without msgfmt the panel builds untranslated.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let locale = out.join("locale");
    println!(
        "cargo:rustc-env=ALMOST_PANEL_BUILD_LOCALEDIR={}",
        locale.display()
    );
    println!("cargo:rerun-if-changed=po/LINGUAS");
    let linguas = std::fs::read_to_string("po/LINGUAS").unwrap_or_default();
    for lang in linguas
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let po = Path::new("po").join(format!("{lang}.po"));
        println!("cargo:rerun-if-changed={}", po.display());
        let dir = locale.join(lang).join("LC_MESSAGES");
        if let Err(e) = std::fs::create_dir_all(&dir) {
            println!("cargo:warning=cannot create {}: {e}", dir.display());
            continue;
        }
        match Command::new("msgfmt")
            .arg("--check")
            .arg("-o")
            .arg(dir.join("almost.mo"))
            .arg(&po)
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("msgfmt --check {} failed ({s})", po.display()),
            Err(e) => {
                println!("cargo:warning=msgfmt not found ({e}): the panel is built untranslated")
            }
        }
    }
}
