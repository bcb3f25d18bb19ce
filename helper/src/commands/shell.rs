// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost shell`: the original almost's shell, given the meaning of
//! `run` here — the login shell of the user who ran sudo (root's without
//! sudo), as the root's own passwd database names it, run as root with the
//! system files writable; when it exits the mode from before comes back.
//! It says so on entry and on exit, as the original did. Refused under
//! pkexec (a root shell for the caller), as `run` is.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use almost_core::Result;
use almost_core::audit::Caller;
use almost_core::paths::Root;
use almost_core::system::System;

use super::Ctx;

/// The shell when the passwd database names none that can be used.
const FALLBACK: &str = "/bin/sh";

pub fn run(ctx: Ctx) -> Result<i32> {
    // The user who ran sudo (pkexec is refused before this), else root.
    let caller = Caller::current();
    let uid = caller.sudo_uid.unwrap_or(caller.uid);
    let shell = login_shell(&ctx.sys.root, uid);
    let entered = format!(
        "almost shell: the system files are writable until you leave this shell (exit or \
         Ctrl-D); {} runs as root.",
        shell.display()
    );
    let code = super::run::run_saying(ctx, &[shell.into_os_string()], Some(&entered))?;
    if !ctx.out.json {
        eprintln!("{}", left(ctx.sys));
    }
    Ok(code)
}

/// What is said when the shell has exited: whether the trees are locked
/// again (each tree's top directory carries the flag, as apt-guard reads
/// it) — they are not when they were unlocked before, or while another
/// `almost run` goes on.
fn left(sys: &System) -> &'static str {
    let mut any = false;
    let all = sys.config.paths.iter().all(|path| {
        let Ok(fd) = sys.root.open_dir(path) else {
            return true;
        };
        any = true;
        almost_core::attrs::get_immutable(fd.as_fd(), c"", sys.iface).unwrap_or(false)
    });
    if any && all {
        "almost shell: left; the system files are protected again."
    } else {
        "almost shell: left; the system files stay writable (they were not locked before, or \
         another `almost run` is still under way)."
    }
}

/// The login shell of `uid` in the root's passwd database; root's when
/// `uid` has none that can be used (no entry, `nologin`, `false`), else
/// `/bin/sh`.
fn login_shell(root: &Root, uid: u32) -> PathBuf {
    let passwd = read_passwd(root).unwrap_or_default();
    [uid, 0]
        .into_iter()
        .find_map(|u| shell_of(&passwd, u).filter(|s| usable(s)))
        .unwrap_or_else(|| PathBuf::from(FALLBACK))
}

fn read_passwd(root: &Root) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let fd = almost_core::fs::open_beneath(root.fd(), Path::new("etc/passwd"), libc::O_RDONLY, 0)?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The shell field of `uid`'s line (`name:pw:uid:gid:gecos:home:shell`);
/// an empty one is `/bin/sh`, as passwd(5) says.
fn shell_of(passwd: &[u8], uid: u32) -> Option<PathBuf> {
    passwd.split(|&b| b == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if fields.len() != 7 || std::str::from_utf8(fields[2]).ok()?.parse::<u32>().ok()? != uid {
            return None;
        }
        Some(if fields[6].is_empty() {
            PathBuf::from(FALLBACK)
        } else {
            PathBuf::from(OsString::from_vec(fields[6].to_vec()))
        })
    })
}

/// A shell one can work in: an absolute path, not one that refuses a
/// login.
fn usable(shell: &Path) -> bool {
    shell.is_absolute()
        && !matches!(
            shell.file_name().and_then(|n| n.to_str()),
            Some("nologin" | "false")
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shell of a uid is its line's seventh field; an empty field is
    // /bin/sh; a malformed line or another uid's is not read; a shell that
    // refuses logins or is not absolute is not used.
    #[test]
    fn the_shell_comes_from_the_uid_line() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
broken:x:1000\n\
alice:x:1000:1000:Alice,,,:/home/alice:/usr/bin/zsh\n\
bob:x:1001:1001::/home/bob:\n";
        assert_eq!(shell_of(passwd, 1000), Some("/usr/bin/zsh".into()));
        assert_eq!(shell_of(passwd, 0), Some("/bin/bash".into()));
        assert_eq!(shell_of(passwd, 1001), Some("/bin/sh".into()));
        assert_eq!(shell_of(passwd, 4242), None);
        assert!(!usable(&shell_of(passwd, 1).unwrap()));
        assert!(!usable(Path::new("/bin/false")));
        assert!(!usable(Path::new("bash")));
        assert!(usable(Path::new("/usr/bin/fish")));
    }
}
