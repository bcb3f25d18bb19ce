// SPDX-License-Identifier: GPL-3.0-or-later
//! The panel's dialogs: the review before every commit (a component), the
//! error dialog, the confirmation before a destructive act, and what
//! needs a restart after an act.

pub mod confirm;
pub mod error;
pub mod restart;
pub mod review;
