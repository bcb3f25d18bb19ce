// SPDX-License-Identifier: GPL-3.0-or-later
//! `/proc/self/mountinfo`: `mounts::parse` and `mounts::unescape`.
//!
//! The first byte chooses the mode. Raw text: never a panic, at most one
//! mount a line, and what was read reads the same once the kernel writes
//! it again. Mounts described as data: written as the kernel writes them
//! (fs/proc_namespace.c escapes ` \t\n\\` in octal), they read back
//! exactly; and unescaping undoes the kernel's escaping of any string.

#![no_main]

use std::path::{Path, PathBuf};

use almost_core::mounts::{self, Mount};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// The kernel's `mangle`: ` `, `\t`, `\n` and `\` as `\ooo`.
fn mangle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\\') {
            out.push_str(&format!("\\{:03o}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// One mountinfo line as the kernel writes it.
fn line(m: &Mount, parent: u64, optional: &[&str]) -> String {
    let mut fields = vec![
        m.id.to_string(),
        parent.to_string(),
        "0:42".to_owned(),
        "/".to_owned(),
        mangle(&m.mount_point.to_string_lossy()),
        if m.read_only {
            "ro,relatime"
        } else {
            "rw,nosuid"
        }
        .to_owned(),
    ];
    fields.extend(optional.iter().map(|s| (*s).to_owned()));
    fields.push("-".to_owned());
    fields.push(mangle(&m.fstype));
    fields.push(mangle(&m.source));
    fields.push(mangle(&m.super_options));
    fields.join(" ")
}

#[derive(Arbitrary, Debug)]
struct Described {
    id: u64,
    parent: u64,
    mount_point: String,
    fstype: String,
    source: String,
    read_only: bool,
    super_options: String,
    optional: u8,
}

fn described(u: &mut Unstructured) -> arbitrary::Result<()> {
    let list: Vec<Described> = u.arbitrary()?;
    let mut text = String::new();
    let mut want = Vec::new();
    for d in list {
        // The kernel's constraints: an absolute mount point, a named type.
        if d.fstype.is_empty() {
            continue;
        }
        let m = Mount {
            id: d.id,
            mount_point: PathBuf::from(format!("/{}", d.mount_point)),
            fstype: d.fstype,
            source: d.source,
            read_only: d.read_only,
            super_options: d.super_options,
        };
        for s in [
            m.mount_point.to_str().unwrap_or_default(),
            &m.fstype,
            &m.source,
        ] {
            assert_eq!(mounts::unescape(&mangle(s)), s);
        }
        let optional: &[&str] = match d.optional % 4 {
            0 => &[],
            1 => &["shared:1"],
            2 => &["shared:7", "master:2"],
            _ => &["unbindable"],
        };
        text.push_str(&line(&m, d.parent, optional));
        text.push('\n');
        want.push(m);
    }
    assert_eq!(mounts::parse(&text), want, "{text:?}");
    Ok(())
}

fn raw(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let read = mounts::parse(&text);
    assert!(read.len() <= text.split('\n').count());
    let again: String = read.iter().map(|m| line(m, 1, &[]) + "\n").collect();
    assert_eq!(
        mounts::parse(&again),
        read,
        "{text:?} written again as {again:?}"
    );
    if let Some(m) = read.first() {
        let inside = m.mount_point.join("x");
        let holder = mounts::containing(&read, &inside).expect("a mount holds its own path");
        assert!(inside.starts_with(&holder.mount_point));
        for o in mounts::overlays_touching(&read, &m.mount_point) {
            assert_eq!(o.fstype, "overlay");
            assert_ne!(o.mount_point, Path::new("/"));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        raw(rest);
    } else {
        let _ = described(&mut Unstructured::new(rest));
    }
});
