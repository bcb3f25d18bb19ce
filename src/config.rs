// SPDX-License-Identifier: GPL-3.0-or-later
//! Build constants of the panel: its application id (from build.rs), the
//! gettext domain, where the installed `almost` and the translations live
//! (the Debian install paths).

/// The application id (also the icon name and the desktop file's name):
/// `org.almost.Panel`, or `org.almost.Panel.Devel` when meson's development
/// profile builds the panel (build.rs checks what meson passes).
pub const APP_ID: &str = env!("ALMOST_PANEL_APP_ID");

/// Whether this is the development profile's build.
pub fn is_devel() -> bool {
    APP_ID.ends_with(".Devel")
}

/// The gettext domain shared by the panel and its data files.
pub const GETTEXT_PACKAGE: &str = "almost";

/// Where the installed translations are.
pub const LOCALEDIR: &str = "/usr/share/locale";

/// Where build.rs compiled the translations of this source tree (used when
/// the panel runs from a cargo build directory, not from /usr).
pub const BUILD_LOCALEDIR: &str = env!("ALMOST_PANEL_BUILD_LOCALEDIR");

/// The installed `almost`, used when no `almost` sits next to the panel's
/// own executable. Never taken from the environment.
pub const INSTALLED_ALMOST: &str = "/usr/bin/almost";

/// The program that runs `almost` with root rights for an unprivileged panel.
pub const PKEXEC: &str = "/usr/bin/pkexec";

/// Inside a flatpak: the program (in the runtime) that runs a command on
/// the host, through the portal the manifest's
/// `--talk-name=org.freedesktop.Flatpak` opens.
pub const FLATPAK_SPAWN: &str = "/usr/bin/flatpak-spawn";

/// The file every flatpak sandbox has at its root.
pub const FLATPAK_INFO: &str = "/.flatpak-info";

/// How often the window ticks (countdowns) and, when it cannot watch
/// almost's state file, re-reads the state made outside it.
pub const POLL_SECONDS: u32 = 2;

/// The least pause between timed re-reads while almost's state file is
/// watched: they only catch flags changed without almost (`chattr` by hand).
pub const WATCHED_POLL_SECONDS: u32 = 20;
