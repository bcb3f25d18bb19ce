// SPDX-License-Identifier: GPL-3.0-or-later
//! From almost-core's types to the protocol's: what `almost --json` prints
//! is almost-protocol's types, filled here from core's (whose on-disk
//! formats, such as `layer.json`, are not part of the protocol).

use std::path::{Path, PathBuf};

use almost_core::audit;
use almost_core::config;
use almost_core::layer::commit::CommitReport;
use almost_core::layer::diff::Change;
use almost_core::layer::entry::EntryType;
use almost_core::layer::{self, LayerInfo, LayerMeta};
use almost_protocol as wire;

pub fn at_boot(act: layer::AtBoot) -> wire::AtBoot {
    match act {
        layer::AtBoot::Commit => wire::AtBoot::Commit,
        layer::AtBoot::Discard => wire::AtBoot::Discard,
    }
}

pub fn layer(info: &LayerInfo) -> wire::Layer {
    wire::Layer {
        id: info.meta.id.clone(),
        path: info.meta.path.clone(),
        paths: info.meta.parts().to_vec(),
        system: info.meta.system,
        created: info.meta.created,
        temporary: info.meta.temporary,
        mounted: info.mounted,
        changes: info.changes,
        size: info.size,
        pending: info.pending.map(at_boot),
    }
}

pub fn new_layer(meta: &LayerMeta, left_out: &[PathBuf]) -> wire::NewLayer {
    wire::NewLayer {
        id: meta.id.clone(),
        path: meta.path.clone(),
        paths: meta.parts().to_vec(),
        system: meta.system,
        left_out: left_out.to_vec(),
        created: meta.created,
        temporary: meta.temporary,
    }
}

pub fn layer_ref(meta: &LayerMeta, at_boot: bool) -> wire::LayerRef {
    wire::LayerRef {
        id: meta.id.clone(),
        path: meta.path.clone(),
        paths: meta.parts().to_vec(),
        at_boot,
    }
}

pub fn commit_report(report: &CommitReport) -> wire::CommitReport {
    wire::CommitReport {
        id: report.id.clone(),
        path: report.path.clone(),
        paths: report.paths.clone(),
        applied: report.applied as u64,
        outcome: report.outcome.clone(),
    }
}

pub fn entry_type(t: EntryType) -> wire::EntryType {
    match t {
        EntryType::File => wire::EntryType::File,
        EntryType::Dir => wire::EntryType::Dir,
        EntryType::Symlink => wire::EntryType::Symlink,
        EntryType::Char => wire::EntryType::Char,
        EntryType::Block => wire::EntryType::Block,
        EntryType::Fifo => wire::EntryType::Fifo,
        EntryType::Socket => wire::EntryType::Socket,
    }
}

// core's `Change::path` turns from a `String` into a `PathBuf`: the
// conversion holds for both.
#[allow(clippy::useless_conversion)]
pub fn change(c: &Change) -> wire::Change {
    wire::Change {
        path: PathBuf::from(c.path.clone()),
        change: c.change,
        kind: entry_type(c.kind),
        old_type: c.old_type.map(entry_type),
        old_size: c.old_size,
        new_size: c.new_size,
        old_hash: c.old_hash.clone(),
        new_hash: c.new_hash.clone(),
        detail: c.detail.clone(),
        meta: c.meta.clone(),
        binary: c.binary,
        patch: c.patch.clone(),
    }
}

pub fn diff(meta: &LayerMeta, changes: &[Change]) -> wire::Diff {
    wire::Diff {
        id: meta.id.clone(),
        path: meta.path.clone(),
        paths: meta.parts().to_vec(),
        changes: changes.iter().map(change).collect(),
    }
}

pub fn default_mode(m: config::DefaultMode) -> wire::DefaultMode {
    match m {
        config::DefaultMode::Locked => wire::DefaultMode::Locked,
        config::DefaultMode::Unlocked => wire::DefaultMode::Unlocked,
        config::DefaultMode::Keep => wire::DefaultMode::Keep,
    }
}

pub fn config(c: &config::Config) -> wire::Config {
    wire::Config {
        default_mode: default_mode(c.default_mode),
        paths: c.paths.clone(),
        exclude: c.exclude.clone(),
        keep_commits: c.keep_commits,
        file: Path::new(config::CONFIG_FILE).to_owned(),
    }
}

pub fn log_entry(e: &audit::Entry) -> wire::LogEntry {
    wire::LogEntry {
        time: e.time.clone(),
        uid: e.uid,
        euid: e.euid,
        pkexec_uid: e.pkexec_uid,
        sudo_uid: e.sudo_uid,
        login_uid: e.login_uid,
        pid: e.pid,
        command: e.command.clone(),
        argv: e.argv.clone(),
        paths: e.paths.clone(),
        result: e.result.clone(),
        exit_code: e.exit_code,
        message: e.message.clone(),
        user: e.user.clone(),
    }
}
