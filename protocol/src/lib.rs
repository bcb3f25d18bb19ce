// SPDX-License-Identifier: GPL-3.0-or-later
//! The protocol between `almost --json` and its callers (the panel, the
//! Ansible modules): serde types only, no engine. The on-disk formats stay
//! private to almost-core.

pub mod path;
