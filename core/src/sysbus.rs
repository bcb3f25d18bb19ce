// SPDX-License-Identifier: GPL-3.0-or-later
//! The system bus, and what Almost asks of it: PackageKit's offline-update
//! state, and logind's shutdown inhibitor held while a whole-tree walk (or a
//! layer commit) runs, so that a shutdown cannot cut it in half.
//!
//! The bus is optional. Without one (a sandbox `--root`, a container, an
//! early boot before dbus runs) everything here degrades with one log line:
//! no inhibitor, and the offline-update state read from the `/system-update`
//! link instead. Nothing here fails a command.
//!
//! The address is the well-known system-bus socket, never an environment
//! variable (zbus's `Builder::system()` would read
//! `DBUS_SYSTEM_BUS_ADDRESS`, which a privileged helper must not obey). Tests
//! pass an explicit address instead (`almost --system-bus ADDRESS`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zbus::blocking::Connection;
use zbus::blocking::connection::Builder;

use crate::error::{Error, Result};
use crate::paths::Root;
use crate::protocol::{OfflineKind, OfflineSource, OfflineUpdate};

/// The system bus socket (the D-Bus specification's default; `/var/run` is
/// a link to `/run` on every current distribution).
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";

/// The links that make systemd boot into `system-update.target`
/// (systemd-system-update-generator checks both, without following them).
pub const SYSTEM_UPDATE_LINKS: &[&str] = &["/system-update", "/etc/system-update"];

/// How long one call may take: a hung service must not hang a lock.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

const PACKAGEKIT: &str = "org.freedesktop.PackageKit";
const PACKAGEKIT_PATH: &str = "/org/freedesktop/PackageKit";
const PACKAGEKIT_OFFLINE: &str = "org.freedesktop.PackageKit.Offline";
const LOGIND: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER: &str = "org.freedesktop.login1.Manager";

enum Target {
    Address(String),
    Disabled(String),
}

/// A lazily opened connection to the system bus, or the reason there is none.
/// Opening is attempted once; its failure is logged once.
pub struct SystemBus {
    target: Target,
    conn: OnceLock<Option<Connection>>,
    /// logind refused or is absent: said once, not asked again.
    logind_failed: AtomicBool,
}

impl SystemBus {
    /// The bus of the system at `root`: the well-known socket when `root` is
    /// `/`; for any other root none, since the machine's services do not
    /// manage a sandbox — unless `address` names one explicitly (tests).
    pub fn new(root: &Root, address: Option<&str>) -> SystemBus {
        let target = match address {
            Some(a) => Target::Address(a.to_owned()),
            None if root.is_system_root() => Target::Address(SYSTEM_BUS_ADDRESS.to_owned()),
            None => Target::Disabled(format!(
                "--root {} is not the running system",
                root.path().display()
            )),
        };
        SystemBus {
            target,
            conn: OnceLock::new(),
            logind_failed: AtomicBool::new(false),
        }
    }

    /// A bus that is never used.
    pub fn disabled(reason: &str) -> SystemBus {
        SystemBus {
            target: Target::Disabled(reason.to_owned()),
            conn: OnceLock::new(),
            logind_failed: AtomicBool::new(false),
        }
    }

    /// The connection, opened on first use; `None` without a bus.
    pub fn connection(&self) -> Option<&Connection> {
        self.conn.get_or_init(|| self.connect()).as_ref()
    }

    fn connect(&self) -> Option<Connection> {
        let address = match &self.target {
            Target::Disabled(reason) => {
                tracing::info!(
                    "not using the system bus ({reason}): no shutdown inhibitor; \
                     offline updates are seen through /system-update only"
                );
                return None;
            }
            Target::Address(a) => a,
        };
        let built = Builder::address(address.as_str())
            .map(|b| b.method_timeout(CALL_TIMEOUT))
            .and_then(|b| b.build());
        match built {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::info!(
                    "no system bus at {address} ({e}): no shutdown inhibitor; \
                     offline updates are seen through /system-update only"
                );
                None
            }
        }
    }

    /// Whether `name` has an owner now. Asking does not start the service:
    /// a `status` must not wake PackageKit up each time the panel looks.
    fn has_owner(&self, conn: &Connection, name: &str) -> zbus::Result<bool> {
        conn.call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "NameHasOwner",
            &(name,),
        )?
        .body()
        .deserialize::<bool>()
    }
}

fn get_bool(conn: &Connection, property: &str) -> zbus::Result<bool> {
    let reply = conn.call_method(
        Some(PACKAGEKIT),
        PACKAGEKIT_PATH,
        Some("org.freedesktop.DBus.Properties"),
        "Get",
        &(PACKAGEKIT_OFFLINE, property),
    )?;
    let value: zbus::zvariant::OwnedValue = reply.body().deserialize()?;
    bool::try_from(value).map_err(zbus::Error::from)
}

/// What a running PackageKit says, if one runs and answers.
fn ask_packagekit(bus: &SystemBus) -> Option<OfflineKind> {
    let conn = bus.connection()?;
    match bus.has_owner(conn, PACKAGEKIT) {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!("PackageKit is not running: looking at /system-update");
            return None;
        }
        Err(e) => {
            tracing::debug!("cannot ask the bus about PackageKit ({e})");
            return None;
        }
    }
    let asked = get_bool(conn, "UpgradePrepared").and_then(|upgrade| {
        Ok(if upgrade {
            Some(OfflineKind::Upgrade)
        } else if get_bool(conn, "UpdatePrepared")? {
            Some(OfflineKind::Update)
        } else {
            None
        })
    });
    match asked {
        Ok(kind) => kind,
        Err(e) => {
            tracing::debug!("PackageKit did not answer about offline updates ({e})");
            None
        }
    }
}

/// Whether one of the `/system-update` links exists under the root (as a
/// link: its target does not matter, as for systemd).
fn system_update_link(root: &Root) -> Result<bool> {
    for link in SYSTEM_UPDATE_LINKS {
        let host = root.host(Path::new(link));
        match std::fs::symlink_metadata(&host) {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("looking at {}", host.display()), e)),
        }
    }
    Ok(false)
}

/// Whether an offline update is prepared for the next boot: PackageKit's
/// `UpdatePrepared` / `UpgradePrepared` when PackageKit runs on the bus,
/// else (or when it says no) the `/system-update` link under the root,
/// which is what makes systemd boot into the update (reported as an update).
pub fn offline_update_prepared(bus: &SystemBus, root: &Root) -> Result<Option<OfflineUpdate>> {
    if let Some(kind) = ask_packagekit(bus) {
        return Ok(Some(OfflineUpdate {
            kind,
            source: OfflineSource::Packagekit,
        }));
    }
    Ok(system_update_link(root)?.then_some(OfflineUpdate {
        kind: OfflineKind::Update,
        source: OfflineSource::SystemUpdateLink,
    }))
}

/// A logind inhibitor lock, held until dropped (logind releases it when the
/// last copy of its file descriptor is closed). Taking one never fails: on a
/// machine without a bus or without logind it holds nothing.
#[derive(Debug)]
pub struct Inhibitor {
    fd: Option<OwnedFd>,
}

impl Inhibitor {
    /// Calls `org.freedesktop.login1.Manager.Inhibit(what, who, why, mode)`.
    pub fn take(bus: &SystemBus, what: &str, who: &str, why: &str, mode: &str) -> Inhibitor {
        let Some(conn) = bus.connection() else {
            return Inhibitor { fd: None };
        };
        if bus.logind_failed.load(Ordering::Relaxed) {
            return Inhibitor { fd: None };
        }
        let reply = conn
            .call_method(
                Some(LOGIND),
                LOGIND_PATH,
                Some(LOGIND_MANAGER),
                "Inhibit",
                &(what, who, why, mode),
            )
            .and_then(|m| m.body().deserialize::<zbus::zvariant::OwnedFd>());
        match reply {
            Ok(fd) => {
                let fd: OwnedFd = fd.into();
                // The fd must not leak into `almost run`'s command or the
                // re-lock timer: they would hold the lock long after us.
                // zbus hands out a close-on-exec duplicate, but the fd it
                // received (without close-on-exec) lives on in its message
                // buffers for a while: mark every copy.
                if let Err(e) = set_cloexec_on_copies(&fd) {
                    tracing::warn!("cannot mark the inhibitor fd close-on-exec ({e})");
                }
                tracing::debug!(what, mode, why, "took a logind inhibitor");
                Inhibitor { fd: Some(fd) }
            }
            Err(e) => {
                bus.logind_failed.store(true, Ordering::Relaxed);
                tracing::info!("no logind inhibitor ({e}): a shutdown is not held off");
                Inhibitor { fd: None }
            }
        }
    }

    /// The inhibitor every long privileged act takes: blocks shutdown and
    /// reboot while it is held.
    pub fn shutdown(bus: &SystemBus, why: &str) -> Inhibitor {
        Inhibitor::take(bus, "shutdown", "Almost", why, "block")
    }

    pub fn is_held(&self) -> bool {
        self.fd.is_some()
    }
}

impl Drop for Inhibitor {
    fn drop(&mut self) {
        if self.fd.take().is_some() {
            tracing::debug!("released the logind inhibitor");
        }
    }
}

fn set_cloexec(fd: BorrowedFd<'_>) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD)?);
    fcntl(fd, FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// Marks close-on-exec `fd` and every other descriptor of this process
/// open on the same file (same device and inode).
fn set_cloexec_on_copies(fd: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let target = nix::sys::stat::fstat(fd.as_fd())?;
    set_cloexec(fd.as_fd())?;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(raw) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if raw == fd.as_raw_fd() {
            continue;
        }
        // SAFETY: only borrowed for two calls; a descriptor closed meanwhile
        // makes them fail (EBADF), which is ignored.
        let other = unsafe { BorrowedFd::borrow_raw(raw) };
        if let Ok(st) = nix::sys::stat::fstat(other)
            && st.st_dev == target.st_dev
            && st.st_ino == target.st_ino
        {
            let _ = set_cloexec(other);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_root_never_uses_the_machine_bus() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let bus = SystemBus::new(&root, None);
        assert!(bus.connection().is_none());
        let inhibitor = Inhibitor::shutdown(&bus, "test");
        assert!(!inhibitor.is_held());
        assert_eq!(offline_update_prepared(&bus, &root).unwrap(), None);
    }

    #[test]
    fn the_link_is_seen_even_when_dangling() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        let bus = SystemBus::disabled("test");
        std::os::unix::fs::symlink("/var/cache/nothing", dir.path().join("etc/system-update"))
            .unwrap();
        assert_eq!(
            offline_update_prepared(&bus, &root).unwrap(),
            Some(OfflineUpdate {
                kind: OfflineKind::Update,
                source: OfflineSource::SystemUpdateLink
            })
        );
    }

    #[test]
    fn an_unreachable_address_degrades() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let socket = dir.path().join("no-bus");
        let bus = SystemBus::new(&root, Some(&format!("unix:path={}", socket.display())));
        assert!(bus.connection().is_none());
        assert!(!Inhibitor::shutdown(&bus, "test").is_held());
        assert_eq!(offline_update_prepared(&bus, &root).unwrap(), None);
    }
}
