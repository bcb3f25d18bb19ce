// SPDX-License-Identifier: GPL-3.0-or-later
//! The mount table as `/proc/self/mountinfo` tells it: which mounts cover
//! or sit inside a managed path, and of what type.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
    pub read_only: bool,
    pub super_options: String,
}

/// Undoes the octal escapes (`\040` for a space) of mountinfo fields.
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Three octal digits of a byte: the kernel writes nothing above
        // `\377`, and anything else stays as written.
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && (b'0'..=b'3').contains(&bytes[i + 1])
            && bytes[i + 2..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of a mountinfo file; lines it cannot read are skipped.
/// A line ends at `\n` only: the kernel does not escape `\r`.
pub fn parse(text: &str) -> Vec<Mount> {
    text.split('\n')
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            if left.len() < 6 || right.len() < 3 {
                return None;
            }
            Some(Mount {
                id: left[0].parse().ok()?,
                mount_point: PathBuf::from(unescape(left[4])),
                read_only: left[5].split(',').any(|o| o == "ro"),
                fstype: unescape(right[0]),
                source: unescape(right[1]),
                super_options: unescape(right[2]),
            })
        })
        .collect()
}

pub fn read() -> io::Result<Vec<Mount>> {
    Ok(parse(&fs::read_to_string("/proc/self/mountinfo")?))
}

/// The mount that holds `host_path` (the longest mount point above it).
pub fn containing<'a>(mounts: &'a [Mount], host_path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| host_path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

/// Overlay mounts on, above or inside `host_path`.
pub fn overlays_touching<'a>(mounts: &'a [Mount], host_path: &Path) -> Vec<&'a Mount> {
    mounts
        .iter()
        .filter(|m| m.fstype == "overlay")
        .filter(|m| m.mount_point.starts_with(host_path) || host_path.starts_with(&m.mount_point))
        .filter(|m| m.mount_point != Path::new("/"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 7:0 / /tmp/r rw,relatime - ext4 /dev/loop0 rw
41 40 0:50 / /tmp/r/usr/my\\040dir ro,relatime - tmpfs tmpfs ro
42 40 0:51 / /tmp/r/usr overlay rw - overlay overlay rw,lowerdir=/tmp/r/usr,upperdir=/x/u,workdir=/x/w
";

    #[test]
    fn parses_and_unescapes() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[2].mount_point, PathBuf::from("/tmp/r/usr/my dir"));
        assert!(mounts[2].read_only);
        assert_eq!(mounts[1].source, "/dev/loop0");
        assert!(mounts[3].super_options.contains("lowerdir=/tmp/r/usr"));
    }

    // Found by fuzzing (fuzz/fuzz_targets/mountinfo.rs): the kernel
    // escapes the type (a FUSE subtype is the mounter's choice) as it
    // escapes the other fields.
    #[test]
    fn the_type_is_unescaped_too() {
        let mounts = parse("50 22 0:60 / /mnt/x rw - fuse.my\\040fs src rw\n");
        assert_eq!(mounts[0].fstype, "fuse.my fs");
    }

    // Found by fuzzing: `\4xx` and above is no octal byte (the kernel
    // never writes one); it stays as written instead of overflowing.
    #[test]
    fn an_escape_above_a_byte_is_kept_as_text() {
        assert_eq!(unescape("a\\400b\\777"), "a\\400b\\777");
        assert_eq!(unescape("\\377\\101"), "\u{fffd}A");
    }

    // Found by fuzzing: a line ends at `\n` only; a `\r` before it is the
    // last field's (the kernel does not escape it).
    #[test]
    fn a_carriage_return_is_data() {
        let mounts = parse("50 22 0:60 / /mnt rw - tmpfs src rw,x=a\r\n");
        assert_eq!(mounts[0].super_options, "rw,x=a\r");
    }

    #[test]
    fn finds_containing_and_overlays() {
        let mounts = parse(SAMPLE);
        assert_eq!(containing(&mounts, Path::new("/tmp/r/opt")).unwrap().id, 40);
        assert_eq!(containing(&mounts, Path::new("/etc")).unwrap().id, 22);
        assert_eq!(overlays_touching(&mounts, Path::new("/tmp/r/usr")).len(), 1);
        assert_eq!(
            overlays_touching(&mounts, Path::new("/tmp/r/usr/lib")).len(),
            1
        );
        assert!(overlays_touching(&mounts, Path::new("/tmp/r/opt")).is_empty());
    }
}
