// SPDX-License-Identifier: GPL-3.0-or-later
//! almost-core: the engine of Almost. Flags, the parallel walk, the
//! configuration, the runtime state, the JSON protocol, the audit log and
//! the system bus (PackageKit, logind). No GTK, no shells.

pub mod attrs;
pub mod audit;
pub mod config;
pub mod error;
pub mod fs;
pub mod layer;
pub mod mounts;
pub mod paths;
pub mod protocol;
pub mod restart;
pub mod state;
pub mod sysbus;
pub mod system;
pub mod walk;

#[cfg(test)]
mod testing;

pub use error::{Error, ErrorKind, Result};
