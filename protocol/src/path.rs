// SPDX-License-Identifier: GPL-3.0-or-later
//! File names are bytes on Linux; JSON strings are Unicode. A path crosses
//! the protocol as a string that says every byte unambiguously:
//!
//! - valid UTF-8 is itself, except the backslash, written `\\`;
//! - a byte that is not part of valid UTF-8 is written `\xNN` (two lowercase
//!   hex digits).
//!
//! So `b"caf\xe9"` is `caf\xe9` and a name that really is `caf\xe9` (with a
//! backslash) is `caf\\xe9`. [`decode`] is the exact inverse of [`encode`]
//! and refuses any other escape. Use the serde helpers with
//! `#[serde(with = "almost_protocol::path")]` on a `PathBuf` field.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serializer};

/// The protocol's string for `bytes`.
pub fn encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The protocol's string for `path`.
pub fn encode(path: &Path) -> String {
    encode_bytes(path.as_os_str().as_bytes())
}

/// A string that is not the protocol's encoding of any path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub text: String,
    pub at: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: a backslash at byte {} must start \\\\ or \\xNN (NN two hex digits)",
            self.text, self.at
        )
    }
}

impl std::error::Error for DecodeError {}

/// The bytes `text` stands for.
pub fn decode_bytes(text: &str) -> Result<Vec<u8>, DecodeError> {
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let bad = || DecodeError {
            text: text.to_owned(),
            at: i,
        };
        match raw.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = raw.get(i + 2..i + 4).ok_or_else(bad)?;
                let digits = std::str::from_utf8(hex).map_err(|_| bad())?;
                if !digits
                    .bytes()
                    .all(|d| d.is_ascii_digit() || (b'a'..=b'f').contains(&d))
                {
                    return Err(bad());
                }
                let byte = u8::from_str_radix(digits, 16).map_err(|_| bad())?;
                out.push(byte);
                i += 4;
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// The path `text` stands for.
pub fn decode(text: &str) -> Result<PathBuf, DecodeError> {
    decode_bytes(text).map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
}

/// serde: a `PathBuf` field as the protocol's string.
pub fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(path))
}

/// serde: a `PathBuf` field from the protocol's string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let text = String::deserialize(d)?;
    decode(&text).map_err(serde::de::Error::custom)
}

/// serde for `Vec<PathBuf>`: `#[serde(with = "almost_protocol::path::list")]`.
pub mod list {
    use super::*;
    use serde::ser::SerializeSeq;

    pub fn serialize<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(paths.len()))?;
        for p in paths {
            seq.serialize_element(&encode(p))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| decode(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// How a path is shown to a person: the protocol's string (readable, and
/// two different names never look the same).
pub fn display(path: &Path) -> String {
    encode(path)
}

/// `OsStr` helper for callers that hold a name, not a path.
pub fn encode_name(name: &OsStr) -> String {
    encode_bytes(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_is_itself_but_the_backslash() {
        assert_eq!(encode(Path::new("/usr/share/café")), "/usr/share/café");
        assert_eq!(encode(Path::new("/a\\b")), "/a\\\\b");
    }

    // Two names that differ in an invalid byte stay different, and a name
    // that spells an escape is told apart from the byte it spells.
    #[test]
    fn invalid_bytes_are_unambiguous() {
        let ff = encode_bytes(b"/x\xff");
        let fe = encode_bytes(b"/x\xfe");
        let spelled = encode_bytes(b"/x\\xff");
        assert_eq!(ff, "/x\\xff");
        assert_eq!(fe, "/x\\xfe");
        assert_eq!(spelled, "/x\\\\xff");
        assert_ne!(ff, fe);
        assert_ne!(ff, spelled);
    }

    #[test]
    fn decode_inverts_encode() {
        let cases: [&[u8]; 7] = [
            b"",
            b"/usr/bin/ls",
            b"/caf\xc3\xa9",
            b"/caf\xe9",
            b"\\\\x41\xff\xfe\\",
            b"\xf0\x9f\x98",
            b"/a\x00b",
        ];
        for bytes in cases {
            let text = encode_bytes(bytes);
            assert_eq!(decode_bytes(&text).unwrap(), bytes, "{text:?}");
        }
    }

    #[test]
    fn decode_refuses_other_escapes() {
        for bad in ["\\", "a\\n", "\\x4", "\\xZZ", "\\xFF", "\\x+1", "end\\"] {
            let e = decode_bytes(bad).unwrap_err();
            assert_eq!(e.text, bad);
        }
    }

    #[test]
    fn serde_round_trip() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "crate::path")]
            p: PathBuf,
            #[serde(with = "crate::path::list")]
            l: Vec<PathBuf>,
        }
        let t = T {
            p: PathBuf::from(std::ffi::OsString::from_vec(b"/x\xff".to_vec())),
            l: vec![PathBuf::from("/a\\b")],
        };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"p":"/x\\xff","l":["/a\\\\b"]}"#);
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
    }
}
