// SPDX-License-Identifier: GPL-3.0-or-later
//! The wire types almost-core produces itself (the measured state of the
//! trees), from almost-protocol, where every type of `almost --json` is
//! defined. The rest of the protocol (layers, config, log) is filled by
//! `almost` from core's own types.

pub use almost_protocol::status::{
    EntryError, Mode, OfflineKind, OfflineSource, OfflineUpdate, PathReport, Report, RunInfo,
    UndoInfo,
};
