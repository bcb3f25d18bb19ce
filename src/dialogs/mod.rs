// SPDX-License-Identifier: GPL-3.0-or-later
//! The panel's dialogs: the review before every commit (a component), the
//! error dialog and the confirmation before a destructive act.

pub mod confirm;
pub mod error;
pub mod review;
