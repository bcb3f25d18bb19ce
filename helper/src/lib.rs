// SPDX-License-Identifier: GPL-3.0-or-later
//! The library half of the `almost` crate: only the command-line definition,
//! so that build-time tools (xtask: man pages, shell completions) can read
//! the same clap definition the binary parses.

pub mod cli;
