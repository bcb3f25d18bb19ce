// SPDX-License-Identifier: GPL-3.0-or-later
//! A private D-Bus system bus for the tests, with small services on it that
//! answer as PackageKit and logind would.
//!
//! [`PrivateBus`] runs a real `dbus-daemon` with a configuration of its own
//! (a unix socket in a temporary directory, a policy that allows everything)
//! and stops it when dropped; `almost --system-bus ADDRESS` is pointed at it.
//! Nothing here touches the machine's own bus.
//!
//! [`FakeLogind`] hands out the write end of a fresh pipe for
//! each `Inhibit` call and watches the read end; when `almost` closes its
//! copy, the read end hits EOF and the inhibitor is recorded as released.
//! Each take and release runs a snapshot closure, so a test can tell what
//! state the sandbox was in at those moments.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::blocking::Connection;
use zbus::blocking::connection::Builder;

/// A `dbus-daemon` of the test's own.
pub struct PrivateBus {
    child: Child,
    _dir: tempfile::TempDir,
    /// The address to hand to `almost --system-bus`.
    pub address: String,
    pub socket: PathBuf,
}

impl PrivateBus {
    pub fn start() -> PrivateBus {
        let dir = tempfile::Builder::new()
            .prefix("almost-bus-")
            .tempdir()
            .expect("temp dir");
        // `nobody` must be able to reach the socket for unprivileged checks.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, crate::common::bus_config(&socket)).expect("write bus config");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--print-address", "--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dbus-daemon (is the dbus package installed?)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the bus address");
        let address = line.trim().to_owned();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address: {line:?}"
        );
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777))
            .expect("chmod socket");
        PrivateBus {
            child,
            _dir: dir,
            address,
            socket,
        }
    }

    /// A client connection (to own a name and serve objects).
    pub fn connect(&self) -> Builder<'static> {
        Builder::address(self.address.as_str()).expect("bus address")
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// PackageKit
// ---------------------------------------------------------------------------

/// What the fake PackageKit says; change it between calls.
#[derive(Clone, Default)]
pub struct OfflineState(Arc<Mutex<(bool, bool)>>);

impl OfflineState {
    /// Sets (UpdatePrepared, UpgradePrepared).
    pub fn set(&self, update: bool, upgrade: bool) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = (update, upgrade);
    }
    fn get(&self) -> (bool, bool) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct FakeOffline(OfflineState);

#[zbus::interface(name = "org.freedesktop.PackageKit.Offline")]
impl FakeOffline {
    #[zbus(property, name = "UpdatePrepared")]
    fn update_prepared(&self) -> bool {
        self.0.get().0
    }
    #[zbus(property, name = "UpgradePrepared")]
    fn upgrade_prepared(&self) -> bool {
        self.0.get().1
    }
}

/// Owns org.freedesktop.PackageKit on the bus until the connection is dropped.
pub fn serve_packagekit(bus: &PrivateBus, state: OfflineState) -> Connection {
    bus.connect()
        .name("org.freedesktop.PackageKit")
        .expect("name")
        .serve_at("/org/freedesktop/PackageKit", FakeOffline(state))
        .expect("serve")
        .build()
        .expect("connect the fake PackageKit")
}

// ---------------------------------------------------------------------------
// logind
// ---------------------------------------------------------------------------

/// One `Inhibit` call as the fake logind saw it.
#[derive(Debug, Clone)]
pub struct InhibitCall {
    pub what: String,
    pub who: String,
    pub why: String,
    pub mode: String,
    /// The snapshot taken when the inhibitor was handed out.
    pub at_take: String,
    /// The snapshot taken when its fd was closed by every holder.
    pub at_release: Option<String>,
}

pub type Snapshot = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
pub struct Inhibits(Arc<Mutex<Vec<InhibitCall>>>);

impl Inhibits {
    pub fn calls(&self) -> Vec<InhibitCall> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until every inhibitor handed out has been released.
    pub fn wait_all_released(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.calls().iter().all(|c| c.at_release.is_some()) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct FakeLogind {
    calls: Inhibits,
    snapshot: Snapshot,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogind {
    #[zbus(name = "Inhibit")]
    fn inhibit(
        &self,
        what: String,
        who: String,
        why: String,
        mode: String,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedFd> {
        // CLOEXEC: no child of the test may hold the write end.
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        let index = {
            let mut calls = self.calls.0.lock().unwrap_or_else(|e| e.into_inner());
            calls.push(InhibitCall {
                what,
                who,
                why,
                mode,
                at_take: (self.snapshot)(),
                at_release: None,
            });
            calls.len() - 1
        };
        let calls = self.calls.clone();
        let snapshot = self.snapshot.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(read);
            let mut buf = [0u8; 64];
            // Returns 0 (EOF) once the last copy of the write end is closed.
            while matches!(file.read(&mut buf), Ok(n) if n > 0) {}
            let at = snapshot();
            calls.0.lock().unwrap_or_else(|e| e.into_inner())[index].at_release = Some(at);
        });
        Ok(write.into())
    }
}

/// Owns org.freedesktop.login1 on the bus until the connection is dropped.
pub fn serve_logind(bus: &PrivateBus, snapshot: Snapshot) -> (Connection, Inhibits) {
    let calls = Inhibits(Arc::new(Mutex::new(Vec::new())));
    let conn = bus
        .connect()
        .name("org.freedesktop.login1")
        .expect("name")
        .serve_at(
            "/org/freedesktop/login1",
            FakeLogind {
                calls: calls.clone(),
                snapshot,
            },
        )
        .expect("serve")
        .build()
        .expect("connect the fake logind");
    (conn, calls)
}
