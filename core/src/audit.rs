// SPDX-License-Identifier: GPL-3.0-or-later
//! The audit log: one entry per privileged act of `almost` — who (uid, the
//! uid pkexec or sudo acted for, the kernel's login uid), what (the command
//! line), which paths, and the result.
//!
//! With `--root /` and a running journal, entries go to the systemd journal
//! through its native protocol (one datagram to
//! `/run/systemd/journal/socket`, `SYSLOG_IDENTIFIER=almost`), where
//! journald adds the sender's credentials, which no caller can forge.
//! Otherwise (a sandbox root, a machine without journald) they are appended
//! to `/var/log/almost.log` under the root, one JSON object per line,
//! not fsynced (as journald does not sync each entry): the filesystem
//! commits it within seconds, with the flag changes it describes, instead
//! of making every act wait for the commit of all of them (15 ms after a
//! lock of 200,000 entries). `almost log` reads them back from either place.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::paths::{self, Root};

pub const LOG_FILE: &str = "/var/log/almost.log";
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
pub const IDENTIFIER: &str = "almost";
/// The `result` of the entry written when an act starts.
pub const STARTED: &str = "started";
/// Where journalctl is looked for (never through `PATH`).
const JOURNALCTL: &[&str] = &["/usr/bin/journalctl", "/bin/journalctl"];

/// One privileged act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When the act ended (RFC 3339, UTC).
    pub time: String,
    /// The real and effective uid of `almost`.
    pub uid: u32,
    pub euid: u32,
    /// The uid pkexec ran `almost` for (`PKEXEC_UID`, set by pkexec itself).
    pub pkexec_uid: Option<u32>,
    /// The uid sudo ran `almost` for (`SUDO_UID`).
    pub sudo_uid: Option<u32>,
    /// The kernel's audit login uid of the session (`/proc/self/loginuid`).
    pub login_uid: Option<u32>,
    pub pid: u32,
    /// The command (`lock`, `run`, `config`, …).
    pub command: String,
    /// The whole command line.
    pub argv: Vec<String>,
    /// The paths (inside the root) the act was about.
    pub paths: Vec<String>,
    /// `started` (the act begins: written before it changes anything, so
    /// that an `almost` killed half-way still leaves a trace), `ok`, or the
    /// error kind (`not-root`, `invalid-path`, …).
    pub result: String,
    pub exit_code: i32,
    /// The error message, if any.
    #[serde(default)]
    pub message: Option<String>,
    /// The account name of the user the act was done for: pkexec's or
    /// sudo's caller, else the real uid (from the system's user database;
    /// none when it has no name for the uid).
    #[serde(default)]
    pub user: Option<String>,
}

/// Who runs this process, as far as it can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub euid: u32,
    pub pkexec_uid: Option<u32>,
    pub sudo_uid: Option<u32>,
    pub login_uid: Option<u32>,
}

impl Caller {
    /// The current process. `PKEXEC_UID` and `SUDO_UID` are read here, and
    /// only here; they are recorded, and `PKEXEC_UID` also restricts what
    /// `--root` may be (paths::check_trusted_root). Neither grants anything.
    pub fn current() -> Caller {
        let env_uid = |name: &str| {
            std::env::var_os(name).and_then(|v| v.to_str().and_then(|s| s.trim().parse().ok()))
        };
        let login_uid = std::fs::read_to_string("/proc/self/loginuid")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|&u| u != u32::MAX);
        Caller {
            uid: nix::unistd::getuid().as_raw(),
            euid: nix::unistd::geteuid().as_raw(),
            pkexec_uid: env_uid("PKEXEC_UID"),
            sudo_uid: env_uid("SUDO_UID"),
            login_uid,
        }
    }
}

impl Caller {
    /// The uid the act is done for: pkexec's or sudo's caller, else the
    /// real uid.
    pub fn for_uid(&self) -> u32 {
        self.pkexec_uid.or(self.sudo_uid).unwrap_or(self.uid)
    }
}

/// The account name of `uid`, from the system's user database.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

impl Entry {
    pub fn new(
        caller: &Caller,
        command: &str,
        argv: Vec<String>,
        paths: Vec<String>,
        outcome: std::result::Result<i32, &Error>,
    ) -> Entry {
        let (result, exit_code, message) = match outcome {
            Ok(code) => ("ok".to_owned(), code, None),
            Err(e) => (
                e.kind().as_str().to_owned(),
                e.kind().exit_code(),
                Some(e.to_string()),
            ),
        };
        let for_uid = caller.for_uid();
        Entry {
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            user: user_name(for_uid),
            uid: caller.uid,
            euid: caller.euid,
            pkexec_uid: caller.pkexec_uid,
            sudo_uid: caller.sudo_uid,
            login_uid: caller.login_uid,
            pid: std::process::id(),
            command: command.to_owned(),
            argv,
            paths,
            result,
            exit_code,
            message,
        }
    }

    /// The entry that opens an act: written once the caller and the root
    /// are checked, before anything changes.
    pub fn started(caller: &Caller, command: &str, argv: Vec<String>, paths: Vec<String>) -> Entry {
        Entry {
            result: STARTED.to_owned(),
            ..Entry::new(caller, command, argv, paths, Ok(0))
        }
    }

    /// The one-line summary (the journal's MESSAGE, `almost log`'s text):
    /// the command line, who ran it (uid, the uid pkexec or sudo ran it
    /// for, with that user's name), the result, the paths.
    pub fn summary(&self) -> String {
        let mut who = format!("uid {}", self.uid);
        let via = match (self.pkexec_uid, self.sudo_uid) {
            (Some(u), _) => Some(("pkexec", u)),
            (None, Some(u)) => Some(("sudo", u)),
            (None, None) => None,
        };
        if let Some((how, u)) = via {
            match &self.user {
                Some(name) => who.push_str(&format!(", {how} for {name} (uid {u})")),
                None => who.push_str(&format!(", {how} for uid {u}")),
            }
        }
        let mut line = format!("{} ({who}): {}", self.argv.join(" "), self.result);
        if self.result != "ok" && self.result != STARTED {
            line.push_str(&format!(" (exit {})", self.exit_code));
        } else if self.exit_code != 0 {
            line.push_str(&format!(", exit {}", self.exit_code));
        }
        if !self.paths.is_empty() {
            line.push_str(&format!(" [{}]", self.paths.join(", ")));
        }
        line
    }
}

/// Where entries go for this root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Journal(PathBuf),
    File(PathBuf),
}

/// The journal when the root is `/` and journald listens; otherwise the
/// file under the root. `journal` names a journal socket to use whatever
/// the root (the tests' private journald; refused under pkexec).
pub fn sink(root: &Root, journal: Option<&Path>) -> Sink {
    if let Some(socket) = journal {
        Sink::Journal(socket.to_owned())
    } else if root.is_system_root() && Path::new(JOURNAL_SOCKET).exists() {
        Sink::Journal(PathBuf::from(JOURNAL_SOCKET))
    } else {
        Sink::File(root.host(Path::new(LOG_FILE)))
    }
}

/// Records one act. Returns where it went. A journal that refuses the
/// datagram falls back to the file.
pub fn record(root: &Root, entry: &Entry, journal: Option<&Path>) -> io::Result<Sink> {
    if let Sink::Journal(socket) = sink(root, journal) {
        match send_journal(&socket, entry) {
            Ok(()) => return Ok(Sink::Journal(socket)),
            Err(e) => tracing::warn!("the journal refused the audit entry ({e}): using {LOG_FILE}"),
        }
    }
    append_file(root, entry)?;
    Ok(Sink::File(root.host(Path::new(LOG_FILE))))
}

/// Records one act in the system's journal (or `journal`) only, for a root
/// that may not be written to. `None` when no journal runs.
pub fn record_journal_only(entry: &Entry, journal: Option<&Path>) -> io::Result<Option<Sink>> {
    let socket = journal.unwrap_or(Path::new(JOURNAL_SOCKET));
    if !socket.exists() {
        return Ok(None);
    }
    send_journal(socket, entry)?;
    Ok(Some(Sink::Journal(socket.to_owned())))
}

/// The journal fields of an entry.
pub fn journal_fields(entry: &Entry) -> Vec<(&'static str, String)> {
    let json = serde_json::to_string(entry).unwrap_or_default();
    let opt = |v: Option<u32>| v.map_or_else(String::new, |u| u.to_string());
    vec![
        ("MESSAGE", entry.summary()),
        // 5 = notice for what was done or begins, 4 = warning for what was
        // refused or failed.
        (
            "PRIORITY",
            if entry.result == "ok" || entry.result == STARTED {
                "5"
            } else {
                "4"
            }
            .to_owned(),
        ),
        ("SYSLOG_IDENTIFIER", IDENTIFIER.to_owned()),
        ("ALMOST_COMMAND", entry.command.clone()),
        ("ALMOST_RESULT", entry.result.clone()),
        ("ALMOST_EXIT_CODE", entry.exit_code.to_string()),
        ("ALMOST_UID", entry.uid.to_string()),
        ("ALMOST_PKEXEC_UID", opt(entry.pkexec_uid)),
        ("ALMOST_USER", entry.user.clone().unwrap_or_default()),
        ("ALMOST_SUDO_UID", opt(entry.sudo_uid)),
        ("ALMOST_PATHS", entry.paths.join("\n")),
        ("ALMOST_ENTRY", json),
    ]
}

/// The journal's native protocol: `KEY=value\n`, or for a value holding a
/// newline `KEY\n`, its length as 64-bit little endian, the value, `\n`.
pub fn encode_journal(fields: &[(&str, String)]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (key, value) in fields {
        if value.is_empty() {
            continue;
        }
        buf.extend_from_slice(key.as_bytes());
        if value.contains('\n') {
            buf.push(b'\n');
            buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            buf.push(b'=');
        }
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'\n');
    }
    buf
}

/// Sends one entry to the journal socket at `socket`.
pub fn send_journal(socket: &Path, entry: &Entry) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let buf = encode_journal(&journal_fields(entry));
    let sent = sock.send_to(&buf, socket)?;
    if sent != buf.len() {
        return Err(io::Error::other("short datagram"));
    }
    Ok(())
}

fn open_log(root: &Root, create: bool) -> io::Result<File> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    use nix::sys::stat::Mode;
    let mut flags = OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY;
    flags |= if create {
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT
    } else {
        OFlag::O_RDONLY
    };
    // Symlinks resolve as if the root were `/`: a sandbox cannot point the
    // log outside itself.
    let mut how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    if create {
        // openat2 refuses a mode without O_CREAT.
        how = how.mode(Mode::from_bits_truncate(0o640));
    }
    let fd: OwnedFd = openat2(root.fd(), paths::relative(Path::new(LOG_FILE)), how)?;
    Ok(File::from(fd))
}

/// Appends one JSON line to the log file (not synced: see the module
/// documentation).
pub fn append_file(root: &Root, entry: &Entry) -> io::Result<()> {
    let dir = root.host(Path::new(LOG_FILE));
    if let Some(parent) = dir.parent()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut file = open_log(root, true)?;
    // One write with O_APPEND: concurrent entries never interleave.
    file.write_all(&line)
}

/// The last `n` entries of the log file (oldest first). Lines that are not
/// entries are skipped and counted.
pub fn read_file(root: &Root, n: usize) -> Result<(Vec<Entry>, usize)> {
    let host = root.host(Path::new(LOG_FILE));
    let mut file = match open_log(root, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        // The log is root's (mode 0640): say so as for any other command.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(Error::NotRoot {
                command: "log".to_owned(),
            });
        }
        Err(e) => return Err(Error::io(format!("opening {}", host.display()), e)),
    };
    let err = |e: io::Error| Error::io(format!("reading {}", host.display()), e);
    let lines = tail_lines(&mut file, n).map_err(err)?;
    let mut bad = 0;
    let entries = lines
        .iter()
        .filter_map(|l| match serde_json::from_slice::<Entry>(l) {
            Ok(e) => Some(e),
            Err(_) => {
                bad += 1;
                None
            }
        })
        .collect();
    Ok((entries, bad))
}

/// The last `n` non-empty lines, reading backwards in chunks: the log grows
/// for years and `almost log` wants its end.
fn tail_lines(file: &mut File, n: usize) -> io::Result<Vec<Vec<u8>>> {
    const CHUNK: u64 = 64 * 1024;
    let len = file.seek(SeekFrom::End(0))?;
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        if start == 0 || newlines > n {
            break;
        }
        let step = CHUNK.min(start);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0u8; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let mut lines: Vec<Vec<u8>> = buf
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    // The first piece may be the end of a line cut by the chunking.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
}

/// The last `n` entries from the journal, through
/// `journalctl -t almost _UID=0 -o json -n N` (argv, no shell). Only what
/// a root process sent: any user can write to the journal under the
/// identifier `almost`, with an `ALMOST_ENTRY` field too, but `_UID` is
/// added by journald from the sender's credentials. (A refused attempt by
/// a user, which almost records as that user, stays in the journal but is
/// not shown here: it cannot be told from a forgery.)
pub fn read_journal(n: usize) -> Result<Vec<Entry>> {
    let exe = JOURNALCTL
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| Error::io("reading the journal", io::Error::other("no journalctl")))?;
    let out = Command::new(exe)
        .args([
            "-t",
            IDENTIFIER,
            "_UID=0",
            "-o",
            "json",
            "--all",
            "--no-pager",
            "-q",
            "-n",
        ])
        .arg(n.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .env_clear()
        .output()
        .map_err(|e| Error::io(format!("running {exe}"), e))?;
    if !out.status.success() {
        return Err(Error::io(
            format!("{exe} failed"),
            io::Error::other(out.status.to_string()),
        ));
    }
    Ok(parse_journal_json(&out.stdout))
}

/// Entries from `journalctl -o json` lines (those without an `ALMOST_ENTRY`
/// field, e.g. written by something else under the same identifier, and
/// those not sent by root, `_UID` 0, are skipped).
pub fn parse_journal_json(output: &[u8]) -> Vec<Entry> {
    output
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter(|v| v.get("_UID").and_then(|u| u.as_str()) == Some("0"))
        .filter_map(|v| {
            v.get("ALMOST_ENTRY")
                .and_then(|e| e.as_str())
                .and_then(|s| serde_json::from_str(s).ok())
        })
        .collect()
}

/// Reads the recent entries from wherever this root's entries go.
pub fn recent(root: &Root, n: usize, journal: Option<&Path>) -> Result<(Vec<Entry>, usize)> {
    match sink(root, journal) {
        Sink::Journal(_) => Ok((read_journal(n)?, 0)),
        Sink::File(_) => read_file(root, n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(result: &str) -> Entry {
        Entry {
            time: "2025-01-01T00:00:00Z".into(),
            uid: 0,
            euid: 0,
            pkexec_uid: Some(1000),
            sudo_uid: None,
            login_uid: Some(1000),
            pid: 42,
            command: "lock".into(),
            argv: vec!["almost".into(), "lock".into()],
            paths: vec!["/usr".into(), "/opt".into()],
            result: result.into(),
            exit_code: if result == "ok" { 0 } else { 3 },
            message: None,
            user: None,
        }
    }

    // Checks: the entry names the user it was done for (pkexec's caller
    // first), in the summary and in a field of its own; root is named
    // too, and a uid without a name gives none.
    #[test]
    fn the_entry_names_the_user() {
        let caller = Caller {
            uid: 0,
            euid: 0,
            pkexec_uid: Some(0),
            sudo_uid: Some(65534),
            login_uid: None,
        };
        let e = Entry::new(&caller, "lock", vec!["almost".into()], vec![], Ok(0));
        assert_eq!(
            e.user.as_deref(),
            Some("root"),
            "pkexec's caller comes first"
        );
        assert!(
            e.summary().contains("pkexec for root (uid 0)"),
            "{}",
            e.summary()
        );
        let fields = journal_fields(&e);
        assert!(
            fields.contains(&("ALMOST_USER", "root".to_owned())),
            "{fields:?}"
        );
        let caller = Caller {
            sudo_uid: Some(4_000_000_000),
            pkexec_uid: None,
            ..caller
        };
        let e = Entry::new(&caller, "lock", vec!["almost".into()], vec![], Ok(0));
        assert_eq!(e.user, None, "a uid with no account has no name");
    }

    #[test]
    fn native_protocol_encoding() {
        let buf = encode_journal(&[
            ("MESSAGE", "hello".into()),
            ("EMPTY", String::new()),
            ("MULTI", "a\nb".into()),
        ]);
        let mut want = b"MESSAGE=hello\nMULTI\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(buf, want);
    }

    #[test]
    fn journal_datagram_round_trips_through_journalctl_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        let e = entry("not-root");
        send_journal(&path, &e).unwrap();
        let mut buf = vec![0u8; 65536];
        let n = server.recv(&mut buf).unwrap();
        let got = &buf[..n];
        let text = String::from_utf8_lossy(got);
        assert!(text.contains("SYSLOG_IDENTIFIER=almost\n"), "{text}");
        assert!(text.contains("PRIORITY=4\n"), "{text}");
        assert!(text.contains("ALMOST_RESULT=not-root\n"), "{text}");
        assert!(text.contains("ALMOST_PKEXEC_UID=1000\n"), "{text}");
        assert!(
            text.contains("MESSAGE=almost lock (uid 0, pkexec for uid 1000): not-root"),
            "{text}"
        );
        // What journalctl -o json would print for it.
        let json_field = text
            .lines()
            .find_map(|l| l.strip_prefix("ALMOST_ENTRY="))
            .unwrap();
        let line = serde_json::json!({"SYSLOG_IDENTIFIER": "almost", "_UID": "0", "ALMOST_ENTRY": json_field});
        let other = serde_json::json!({"SYSLOG_IDENTIFIER": "almost", "_UID": "0", "MESSAGE": "x"});
        // Sent by a user: whatever it says, not an entry of almost's.
        let forged = serde_json::json!({"SYSLOG_IDENTIFIER": "almost", "_UID": "1000", "ALMOST_ENTRY": json_field});
        let out = format!("{line}\n{other}\n{forged}\n");
        assert_eq!(parse_journal_json(out.as_bytes()), vec![e]);
    }

    #[test]
    fn file_log_appends_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(read_file(&root, 5).unwrap(), (vec![], 0));
        for i in 0..30 {
            let mut e = entry("ok");
            e.pid = i;
            // Long lines, so that the tail crosses chunk boundaries.
            e.argv.push("x".repeat(10_000));
            append_file(&root, &e).unwrap();
        }
        let (entries, bad) = read_file(&root, 7).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(
            entries.iter().map(|e| e.pid).collect::<Vec<_>>(),
            (23..30).collect::<Vec<_>>()
        );
        let (all, _) = read_file(&root, 1000).unwrap();
        assert_eq!(all.len(), 30);
        let meta = std::fs::metadata(dir.path().join("var/log/almost.log")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("var/log/almost.log"))
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        let (entries, bad) = read_file(&root, 3).unwrap();
        assert_eq!((entries.len(), bad), (2, 1));
    }

    #[test]
    fn the_log_cannot_be_redirected_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("var")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("var/log")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        // The absolute link resolves inside the root, where it leads nowhere.
        assert!(append_file(&root, &entry("ok")).is_err());
        assert!(!outside.path().join("almost.log").exists());
    }

    #[test]
    fn summary_names_who_and_what() {
        let e = entry("ok");
        assert_eq!(
            e.summary(),
            "almost lock (uid 0, pkexec for uid 1000): ok [/usr, /opt]"
        );
    }
}
