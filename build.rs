// SPDX-License-Identifier: GPL-3.0-or-later
//! Sets the panel's application id (ALMOST_PANEL_APP_ID, for src/config.rs)
//! from ALMOST_APP_ID, which meson passes for its profile, and compiles the
//! translations listed in po/LINGUAS into
//! `$OUT_DIR/locale/<lang>/LC_MESSAGES/almost.mo` with msgfmt (checking
//! them on the way), so a cargo-built panel runs translated. Meson
//! installs them for real. Without msgfmt the panel builds untranslated.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The release application id; meson's development profile appends `.Devel`.
const APP_ID: &str = "org.almost.Panel";

fn main() {
    // The application id, from meson (build-aux/cargo-build.sh) or the
    // release one for a plain cargo build.
    println!("cargo:rerun-if-env-changed=ALMOST_APP_ID");
    let app_id = std::env::var("ALMOST_APP_ID")
        .ok()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| APP_ID.to_owned());
    let devel = format!("{APP_ID}.Devel");
    if app_id != APP_ID && app_id != devel {
        panic!("ALMOST_APP_ID={app_id:?}: it must be {APP_ID} or {devel}");
    }
    println!("cargo:rustc-env=ALMOST_PANEL_APP_ID={app_id}");
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
