// SPDX-License-Identifier: GPL-3.0-or-later
//! A system under Almost's care: its root, its configuration, and the
//! operations on its managed trees — measure, lock, unlock — with the
//! runtime state (runs, timed re-lock) settled around them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::attrs::FlagInterface;
use crate::config::{self, Config, DefaultMode, Notice};
use crate::error::{Error, Result};
use crate::layer::{Layers, commit};
use crate::mounts;
use crate::paths::{self, Root};
use crate::protocol::{Mode, PathReport, Report};
use crate::state::{self, RunState, StateGuard};
use crate::sysbus::{Inhibitor, SystemBus};
use crate::walk::{self, Action, Walk};

/// Where the entry counts of the last walks are kept, only to give progress
/// reports a total. Nothing reads it as the state of the flags.
const COUNTS_FILE: &str = "/var/lib/almost/entry-counts.json";

/// The last configuration `almost boot` loaded: what the next boot locks
/// by when the config file has become invalid (a typo must not boot the
/// system unlocked).
pub const LAST_GOOD_CONFIG: &str = "/var/lib/almost/last-good-config.toml";

/// How a privileged act opens (see [`System::begin`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Opening<'a> {
    /// Why a shutdown waits for the act (`systemd-inhibit --list` and the
    /// desktop's shutdown dialog show it); `None`: no inhibitor.
    pub why: Option<&'a str>,
    pub recover: Recovery,
    /// Settle the runtime state first.
    pub settle: bool,
}

/// Whether an act first finishes what a crash interrupted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recovery {
    #[default]
    None,
    Now,
    /// At boot: a rolled-back commit's layer is left unmounted.
    AtBoot,
}

/// A privileged act under way: the state lock (the only way to change the
/// runtime state) and the shutdown inhibitor, both released when dropped.
pub struct Act {
    pub guard: StateGuard,
    _inhibitor: Option<Inhibitor>,
}

/// Live progress of a walk, read by a reporter thread.
#[derive(Default)]
pub struct Progress {
    pub done: AtomicU64,
    /// 0 while unknown.
    pub total: AtomicU64,
    pub path: Mutex<String>,
    pub cancel: AtomicBool,
}

impl Progress {
    pub fn current_path(&self) -> String {
        self.path.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

pub struct System {
    pub root: Root,
    pub config: Config,
    pub notices: Vec<Notice>,
    pub iface: FlagInterface,
}

/// The directories under the root Almost keeps its own files in: the
/// config, the audit log, the run state, the layer store and the undo data
/// (the history of commits, and an older almost's undo data)
/// (the last good config, the entry counts and the undo stage lie beside
/// them, in `/var/lib/almost`).
pub fn own_dirs() -> Vec<&'static Path> {
    let parent = |file: &'static str| Path::new(file).parent().unwrap_or(Path::new(file));
    vec![
        parent(config::CONFIG_FILE),
        parent(crate::audit::LOG_FILE),
        Path::new(state::STATE_DIR),
        Path::new(crate::layer::STORE),
        Path::new(crate::layer::commit::UNDO_DIR),
        Path::new(crate::layer::commit::COMMITS_DIR),
    ]
}

/// Under pkexec: the root is `/` or only root can change it
/// ([`paths::check_trusted_root`]), and under any other root, only root can
/// change the directories Almost keeps its files in
/// ([`paths::check_root_only_beneath`]). `/` is the administrator's as the
/// distribution made it (Ubuntu's `/var/log` is writable by group syslog),
/// and no user can link its `var` elsewhere.
pub fn check_trusted(root: &Root) -> Result<()> {
    paths::check_trusted_root(root)?;
    if !root.is_system_root() {
        for dir in own_dirs() {
            paths::check_root_only_beneath(root, dir)?;
        }
    }
    Ok(())
}

impl System {
    /// The system under the root already opened (and, under pkexec,
    /// checked): the root is never resolved by path again.
    pub fn open(root: Root, iface: FlagInterface) -> Result<System> {
        let (config, notices) = config::load(&root)?;
        Ok(System {
            root,
            config,
            notices,
            iface,
        })
    }

    /// For `almost boot`, which must protect the system whatever the
    /// config file says: with a valid config, as [`System::open`] (and the
    /// config is kept as the last good one); with an invalid one, the last
    /// good config, or the built-in defaults with `default_mode` locked,
    /// and the config's error beside, for the caller to report once the
    /// trees are locked.
    pub fn open_for_boot(root: Root, iface: FlagInterface) -> Result<(System, Option<Error>)> {
        let last_good = root.host(Path::new(LAST_GOOD_CONFIG));
        match config::load(&root) {
            Ok((config, notices)) => {
                if let Err(e) = config::write_atomic(&last_good, config::render(&config).as_bytes())
                {
                    tracing::warn!("cannot keep {}: {e}", last_good.display());
                }
                let sys = System {
                    root,
                    config,
                    notices,
                    iface,
                };
                Ok((sys, None))
            }
            Err(broken) => {
                let kept = fs::read_to_string(&last_good)
                    .ok()
                    .and_then(|text| config::parse(&root, Path::new(LAST_GOOD_CONFIG), &text).ok());
                let config = match kept {
                    Some(config) => {
                        tracing::warn!(
                            "the configuration is invalid ({broken}): locking by the last \
                             good one, {LAST_GOOD_CONFIG}"
                        );
                        config
                    }
                    None => {
                        tracing::warn!(
                            "the configuration is invalid ({broken}) and no last good one \
                             is kept: locking by the built-in defaults"
                        );
                        let mut config =
                            config::parse(&root, Path::new("(built-in defaults)"), "")?;
                        config.default_mode = DefaultMode::Locked;
                        config
                    }
                };
                let sys = System {
                    root,
                    config,
                    notices: Vec::new(),
                    iface,
                };
                Ok((sys, Some(broken)))
            }
        }
    }

    fn load_counts(&self) -> HashMap<String, u64> {
        fs::read(self.root.host(Path::new(COUNTS_FILE)))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_counts(&self, report: &Report) {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let counts: HashMap<&str, u64> = report
            .paths
            .iter()
            .map(|p| (p.path.as_str(), p.locked + p.unlocked + p.skipped))
            .collect();
        if let Ok(bytes) = serde_json::to_vec(&counts) {
            // Only a progress estimate: a failure to save it, or its loss
            // in a crash, is harmless, so it is not synced.
            let _ = config::write_atomic_unsynced(&self.root.host(Path::new(COUNTS_FILE)), &bytes);
        }
    }

    /// Walks every managed path with `action`.
    fn walk_all(&self, action: Action, progress: &Progress) -> Result<Report> {
        let excludes = walk::exclude_map(self.config.exclude.iter().map(PathBuf::as_path));
        let mount_table = mounts::read().unwrap_or_default();
        let parents = walk::mount_parents(&mount_table, |p| self.root.inside(p));
        let known = self.load_counts();
        let total: u64 = self
            .config
            .paths
            .iter()
            .map(|p| {
                known
                    .get(almost_protocol::path::encode(p).as_str())
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        progress.total.store(total, Ordering::Relaxed);
        let mut paths = Vec::new();
        for path in &self.config.paths {
            if let Ok(mut current) = progress.path.lock() {
                *current = almost_protocol::path::encode(path);
            }
            paths.push(self.walk_one(path, action, &excludes, &mount_table, &parents, progress)?);
        }
        let locked: u64 = paths
            .iter()
            .filter(|p| p.unsupported.is_none())
            .map(|p| p.locked)
            .sum();
        let unlocked: u64 = paths
            .iter()
            .filter(|p| p.unsupported.is_none())
            .map(|p| p.unlocked)
            .sum();
        let report = Report::of_paths(Mode::from_counts(locked, unlocked), paths);
        // Only a lock or unlock records counts: status writes nothing.
        if matches!(action, Action::Set(_)) && !progress.cancel.load(Ordering::Relaxed) {
            self.save_counts(&report);
        }
        Ok(report)
    }

    fn walk_one(
        &self,
        path: &Path,
        action: Action,
        excludes: &HashMap<PathBuf, std::collections::HashSet<std::ffi::OsString>>,
        mount_table: &[mounts::Mount],
        mount_parents: &std::collections::HashSet<PathBuf>,
        progress: &Progress,
    ) -> Result<PathReport> {
        let host = self.root.host(path);
        let mut report = PathReport {
            overlays: mounts::overlays_touching(mount_table, &host)
                .into_iter()
                .map(|m| self.inside_name(&m.mount_point))
                .collect(),
            ..PathReport::new(almost_protocol::path::encode(path))
        };
        if let Some(layer) = mount_table
            .iter()
            .rev()
            .find(|m| m.fstype == "overlay" && m.mount_point == host)
        {
            // Walking the merged view would copy every file up into the layer.
            report.covered = true;
            tracing::info!(
                "{} is covered by the overlay {}: not walked",
                path.display(),
                layer.source
            );
            return Ok(report);
        }
        let fd = match self.root.open_dir(path) {
            Ok(fd) => fd,
            Err(e) => {
                report.unsupported = Some(match e.raw_os_error() {
                    Some(libc::ENOENT) => "does not exist".to_owned(),
                    Some(libc::ELOOP) => match self.first_symlink(path) {
                        Some(link) if link != path => format!(
                            "lies beneath a symlink, {} (a managed path is walked only \
                             through real directories)",
                            almost_protocol::path::encode(&link)
                        ),
                        _ => {
                            "is a symlink (its target is managed on its own, if at all)".to_owned()
                        }
                    },
                    Some(libc::ENOTDIR) => "is not a directory".to_owned(),
                    _ => e.to_string(),
                });
                return Ok(report);
            }
        };
        let fstype = mounts::containing(mount_table, &host)
            .map_or_else(|| "unknown".to_owned(), |m| m.fstype.clone());
        report.read_only = nix::sys::statvfs::fstatvfs(&fd)
            .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
            .unwrap_or(false);
        if report.read_only && matches!(action, Action::Set(_)) {
            report.unsupported = Some(format!("the {fstype} filesystem is mounted read-only"));
            return Ok(report);
        }
        let walk = Walk {
            action,
            iface: self.iface,
            excludes,
            mount_parents,
            progress: &progress.done,
            cancel: &progress.cancel,
        };
        let counts = walk
            .run(fd, path)
            .map_err(|e| Error::io(format!("walking {}", path.display()), e))?;
        if counts.unsupported {
            report.unsupported = Some(format!(
                "the {fstype} filesystem cannot carry the immutable flag"
            ));
            return Ok(report);
        }
        report.mode = Mode::from_counts(counts.locked, counts.unlocked);
        report.locked = counts.locked;
        report.unlocked = counts.unlocked;
        report.skipped = counts.skipped;
        report.changed = counts.changed;
        report.mount_points = counts.mount_points;
        report.errors = counts.errors;
        report.error_count = counts.error_count;
        Ok(report)
    }

    fn inside_name(&self, host: &Path) -> String {
        self.root.inside(host).map_or_else(
            || almost_protocol::path::encode(host),
            |p| almost_protocol::path::encode(&p),
        )
    }

    /// Sets or clears the flag over one directory inside a managed path
    /// (the tree a layer covers). Excludes are honoured.
    pub fn apply_subtree(&self, path: &Path, on: bool, progress: &Progress) -> Result<PathReport> {
        let excludes = walk::exclude_map(self.config.exclude.iter().map(PathBuf::as_path));
        let mount_table = mounts::read().unwrap_or_default();
        let parents = walk::mount_parents(&mount_table, |p| self.root.inside(p));
        let report = self.walk_one(
            path,
            Action::Set(on),
            &excludes,
            &mount_table,
            &parents,
            progress,
        )?;
        if let Some(err) = outcome_of_path(&report) {
            return Err(err);
        }
        Ok(report)
    }

    /// Sets or clears the flag over a tree given by its host path, outside
    /// the managed set (a layer's own storage, before it is deleted).
    pub fn apply_host_tree(&self, host: &Path, on: bool, progress: &Progress) -> Result<()> {
        let excludes = HashMap::new();
        let mount_table = mounts::read().unwrap_or_default();
        let parents = walk::mount_parents(&mount_table, |p| Some(p.to_owned()));
        let walk = Walk {
            action: Action::Set(on),
            iface: self.iface,
            excludes: &excludes,
            mount_parents: &parents,
            progress: &progress.done,
            cancel: &progress.cancel,
        };
        let fd: std::os::fd::OwnedFd = fs::File::open(host)
            .map_err(|e| Error::io(format!("opening {}", host.display()), e))?
            .into();
        let counts = walk
            .run(fd, host)
            .map_err(|e| Error::io(format!("walking {}", host.display()), e))?;
        match counts.errors.first() {
            Some(first) if !counts.unsupported => Err(Error::Partial {
                failed: counts.error_count,
                first: format!("{}: {}", first.path, first.message),
            }),
            _ => Ok(()),
        }
    }

    /// Reads the flags of every managed path.
    pub fn measure(&self, progress: &Progress) -> Result<Report> {
        let mut report = self.walk_all(Action::Read, progress)?;
        attach_state(&mut report, &state::read(&self.root));
        Ok(report)
    }

    /// Sets (`true`) or clears the flag over every managed path. The caller
    /// holds the state lock.
    pub fn apply(&self, on: bool, progress: &Progress) -> Result<Report> {
        self.walk_all(Action::Set(on), progress)
    }

    /// Ends what is over: dead runs, an expired timer; when no temporary
    /// unlock is left, applies the mode to restore. Returns the report of
    /// that restore, if one was applied.
    pub fn settle(&self, guard: &mut StateGuard, progress: &Progress) -> Result<Option<Report>> {
        let now = state::now();
        let mut dirty = guard.state_mut().prune_dead();
        if guard.state_mut().relock_at.is_some_and(|t| t <= now) {
            guard.state_mut().relock_at = None;
            guard.state_mut().stop_timer();
            dirty = true;
        }
        let mut applied = None;
        if !guard.state_mut().temporary_unlock_active(now)
            && let Some(mode) = guard.state_mut().restore
        {
            tracing::info!(
                mode = mode.as_str(),
                "restoring the mode from before the temporary unlock"
            );
            applied = Some(self.apply(mode != Mode::Unlocked, progress)?);
            guard.state_mut().restore = None;
            dirty = true;
        }
        if dirty {
            guard.save()?;
        }
        Ok(applied)
    }

    /// An explicit lock or unlock: it becomes the mode to keep, ending any
    /// pending timed re-lock; commands running under `almost run` go on.
    /// A lock under runs still going on would make them fail half-way (an
    /// upgrade writing into a locked tree): it is refused as busy, naming
    /// them, unless `force`. An unlock under them is harmless.
    pub fn set_mode(
        &self,
        guard: &mut StateGuard,
        on: bool,
        force: bool,
        progress: &Progress,
    ) -> Result<Report> {
        if on && !force {
            guard.state_mut().prune_dead();
            refuse_under_runs(guard.state())?;
        }
        guard.state_mut().relock_at = None;
        guard.state_mut().stop_timer();
        guard.state_mut().restore = if guard.state_mut().runs.is_empty() {
            None
        } else {
            // Runs still going on must not undo the user's explicit choice
            // when they end.
            Some(if on { Mode::Locked } else { Mode::Unlocked })
        };
        guard.save()?;
        let mut report = self.apply(on, progress)?;
        attach_state(&mut report, guard.state());
        Ok(report)
    }

    /// Finishes or rolls back what a crash interrupted (a commit, an undo,
    /// a deletion from the layer store); says what it did, one sentence
    /// each. At boot a rolled-back commit's layer is left unmounted: the
    /// boot mounts the layers after their acts at boot. Call it under the
    /// state lock ([`System::begin`] does).
    pub fn recover(&self, progress: &Arc<Progress>, at_boot: bool) -> Vec<String> {
        let layers = Layers::new(self);
        let results = if at_boot {
            layers.recover_at_boot(progress)
        } else {
            layers.recover(progress)
        };
        let mut said = Vec::new();
        for result in results {
            said.push(match result {
                Ok(report) if report.outcome == "undone" => format!(
                    "finished the interrupted undo of the commit of layer {} over {}",
                    report.id,
                    report.path.display()
                ),
                Ok(report) if report.outcome.starts_with(commit::OUTCOME_ABANDONED) => format!(
                    "abandoned the interrupted commit of layer {id} over {}: it had not \
                     changed anything yet, so it was rolled back and the tree is as before; {}",
                    report.path.display(),
                    if report.outcome == commit::OUTCOME_ABANDONED {
                        "the layer is mounted again".to_owned()
                    } else if at_boot {
                        "the boot goes on with the layer".to_owned()
                    } else {
                        format!(
                            "the layer could not be mounted again (try: almost layer mount {})",
                            report.id
                        )
                    },
                    id = report.id,
                ),
                Ok(report) => format!(
                    "finished the interrupted commit of layer {} over {}",
                    report.id,
                    report.path.display()
                ),
                Err(e) => e.to_string(),
            });
        }
        if let Err(e) = layers.empty_trash(progress) {
            said.push(e.to_string());
        }
        said
    }

    /// The first component of `inside` (a path inside the root) that is a
    /// symlink, for saying which one refused a walk; read without
    /// following any.
    fn first_symlink(&self, inside: &Path) -> Option<PathBuf> {
        let mut at = PathBuf::from("/");
        for part in inside.components().skip(1) {
            at.push(part);
            let meta = std::fs::symlink_metadata(self.root.host(&at)).ok()?;
            if meta.file_type().is_symlink() {
                return Some(at);
            }
        }
        None
    }

    /// The one opening of a privileged act: hold off a shutdown (`why`,
    /// if the act walks or writes for long), take the state lock (waiting
    /// for another `almost`), finish what a crash interrupted, and settle
    /// the runtime state (end dead runs and expired timers, restore the
    /// mode they held) — each as `opening` asks. What the recovery did is
    /// given to `say`. The act holds the lock until it is dropped.
    pub fn begin(
        &self,
        bus: &SystemBus,
        opening: Opening,
        progress: &Arc<Progress>,
        say: &mut dyn FnMut(String),
    ) -> Result<Act> {
        let inhibitor = opening.why.map(|why| Inhibitor::shutdown(bus, why));
        let guard = state::lock(&self.root)?;
        self.open_act(guard, inhibitor, opening, progress, say)
    }

    /// [`begin`](Self::begin) for a reader that repairs only in passing
    /// (`status` as root): it waits for the state lock only when a crash
    /// left a commit to finish; otherwise, if another `almost` holds the
    /// lock, it is that one's business and `None` comes back at once. The
    /// shutdown is held off (`why`) only when there is something to do.
    pub fn try_begin(
        &self,
        bus: &SystemBus,
        opening: Opening,
        progress: &Arc<Progress>,
        say: &mut dyn FnMut(String),
    ) -> Result<Option<Act>> {
        let pending = crate::layer::Layers::new(self).needs_recovery();
        let guard = if pending {
            state::lock(&self.root)?
        } else {
            match state::try_lock(&self.root)? {
                Some(guard) => guard,
                None => return Ok(None),
            }
        };
        let work = pending || guard.state().restore.is_some();
        let inhibitor = opening
            .why
            .filter(|_| work)
            .map(|why| Inhibitor::shutdown(bus, why));
        self.open_act(guard, inhibitor, opening, progress, say)
            .map(Some)
    }

    fn open_act(
        &self,
        mut guard: StateGuard,
        inhibitor: Option<Inhibitor>,
        opening: Opening,
        progress: &Arc<Progress>,
        say: &mut dyn FnMut(String),
    ) -> Result<Act> {
        match opening.recover {
            Recovery::None => {}
            Recovery::Now => self
                .recover(progress, false)
                .into_iter()
                .for_each(&mut *say),
            Recovery::AtBoot => self.recover(progress, true).into_iter().for_each(&mut *say),
        }
        if opening.settle {
            self.settle(&mut guard, progress)?;
        }
        Ok(Act {
            guard,
            _inhibitor: inhibitor,
        })
    }

    /// The mode `enter default` applies, if any.
    pub fn default_lock(&self) -> Option<bool> {
        match self.config.default_mode {
            DefaultMode::Locked => Some(true),
            DefaultMode::Unlocked => Some(false),
            DefaultMode::Keep => None,
        }
    }
}

/// The refusal of a lock while `almost run` commands are under way: each
/// named (pid, command), with what happens when the last one ends.
pub fn refuse_under_runs(state: &RunState) -> Result<()> {
    if state.runs.is_empty() {
        return Ok(());
    }
    let runs = state
        .runs
        .iter()
        .map(|r| {
            let info = r.info();
            format!("pid {}: {}", info.pid, info.command)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let after = match state.restore {
        Some(Mode::Unlocked) => "leaves the system unlocked",
        _ => "locks the system again",
    };
    Err(Error::Busy {
        what: "the system".to_owned(),
        detail: format!(
            "`almost run` under way ({runs}), which would fail half-way in a locked tree; \
             the last run to end {after}; lock anyway with --force"
        ),
    })
}

/// Copies the runtime state (pending re-lock, runs) into a report.
pub fn attach_state(report: &mut Report, state: &RunState) {
    report.relock_at = state.relock_at.filter(|t| *t > state::now());
    report.runs = state
        .runs
        .iter()
        .filter(|r| r.is_alive())
        .map(|r| r.info())
        .collect();
    report.restore = state.restore;
}

fn outcome_of_path(p: &PathReport) -> Option<Error> {
    outcome(&Report::of_paths(p.mode, vec![p.clone()]))
}

/// The error a finished operation amounts to, if any: an unsupported or
/// read-only path first, then entries that could not be changed.
pub fn outcome(report: &Report) -> Option<Error> {
    if let Some(p) = report.paths.iter().find(|p| p.unsupported.is_some()) {
        let reason = p.unsupported.clone().unwrap_or_default();
        return Some(Error::Unsupported {
            path: almost_protocol::path::decode(&p.path).unwrap_or_else(|_| PathBuf::from(&p.path)),
            reason,
        });
    }
    let failed = report.error_count();
    if failed > 0 {
        let first = report
            .paths
            .iter()
            .flat_map(|p| p.errors.first())
            .next()
            .map_or_else(String::new, |e| format!("{}: {}", e.path, e.message));
        return Some(Error::Partial { failed, first });
    }
    None
}
