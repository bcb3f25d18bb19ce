// SPDX-License-Identifier: GPL-3.0-or-later
//! The sandbox.

use super::*;

/// Paths (inside the root) of the interesting entries of the rich tree.
pub mod rich {
    pub const TOOL: &str = "/usr/bin/tool";
    pub const TOOL_HARDLINK: &str = "/usr/bin/tool-hardlink";
    pub const OPT_HARDLINK: &str = "/opt/app/bin/tool-link";
    pub const EMPTY: &str = "/usr/bin/empty";
    pub const BIG: &str = "/usr/lib/big.bin";
    pub const LIB: &str = "/usr/lib/libfoo.so.1";
    pub const LIB_SYMLINK: &str = "/usr/lib/libfoo.so";
    pub const ABS_LINK_OUT: &str = "/usr/lib/outside-abs";
    pub const REL_LINK_OUT: &str = "/usr/share/outside-rel";
    pub const SPACES: &str = "/usr/share/doc/name with spaces.txt";
    pub const SPACES_DIR: &str = "/usr/share/doc/dir with spaces";
    pub const NEWLINE: &str = "/usr/share/doc/new\nline";
    pub const EMPTY_DIR: &str = "/usr/share/doc/empty-dir";
    pub const FIFO: &str = "/usr/share/fifo";
    pub const CHARDEV: &str = "/usr/share/null-dev";
    pub const SOCKET: &str = "/usr/share/sock";
    pub const DEEP: &str = "/usr/share/deep";
    pub const DEEP_LEVELS: usize = 120;
    pub const TMPFS: &str = "/usr/share/tmpfs-mnt";
    pub const OUTSIDE: &str = "/home/outside";
    pub const BOUND: &str = "/usr/lib/bound";
    pub const OPT_APP: &str = "/opt/app/bin/app";
}

/// A fresh ext4 image mounted under a temporary directory, with a fake
/// system root in it. Dropping it clears every flag and unmounts everything.
pub struct Sandbox {
    tmp: Option<tempfile::TempDir>,
    /// The temporary directory (holds the image and the mount point).
    pub dir: PathBuf,
    /// The ext4 image file.
    pub image: PathBuf,
    /// The mounted root, passed to `almost --root`.
    pub root: PathBuf,
    /// Nested mounts we made, in mount order (unmounted in reverse).
    nested: Vec<PathBuf>,
    mounted: bool,
}

impl Sandbox {
    /// A 64 MiB sandbox with the basic fake root.
    pub fn new() -> Self {
        Self::with_size_mib(64)
    }

    /// A sandbox whose ext4 image has `mib` MiB.
    pub fn with_size_mib(mib: u64) -> Self {
        Self::with_mkfs(mib, &[])
    }

    /// A sandbox whose ext4 image has `mib` MiB, made with these extra
    /// `mkfs.ext4` options (`-N COUNT` for many inodes).
    pub fn with_mkfs(mib: u64, mkfs: &[&str]) -> Self {
        assert_private_mount_namespace();
        let tmp = tempfile::Builder::new()
            .prefix("almost-e2e-")
            .tempdir()
            .expect("create temp dir");
        let dir = tmp.path().to_path_buf();
        // `nobody` must be able to reach the root for the unprivileged checks.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        let image = dir.join("root.img");
        let root = dir.join("root");
        fs::create_dir(&root).expect("mkdir root");
        sh("truncate", os!["-s", format!("{mib}M"), image]);
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("-q"),
            OsStr::new("-F"),
            OsStr::new("-E"),
            OsStr::new("lazy_itable_init=0"),
        ];
        args.extend(mkfs.iter().map(OsStr::new));
        args.push(image.as_os_str());
        sh("mkfs.ext4", &args);
        let mut sb = Sandbox {
            tmp: Some(tmp),
            dir,
            image,
            root,
            nested: Vec::new(),
            mounted: false,
        };
        sh("mount", os!["-o", "loop", sb.image, sb.root]);
        sb.mounted = true;
        sb.build_base();
        sb
    }

    /// The host path of a path inside the root (`"/usr/bin"` or `"usr/bin"`).
    pub fn path(&self, inner: &str) -> PathBuf {
        self.root.join(inner.trim_start_matches('/'))
    }

    /// The path inside the root of a host path under it (for messages and JSON).
    pub fn inner(&self, host: &Path) -> String {
        match host.strip_prefix(&self.root) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => host.display().to_string(),
        }
    }

    pub fn write(&self, inner: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(inner);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn mkdir(&self, inner: &str) {
        let p = self.path(inner);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }

    pub fn read(&self, inner: &str) -> Vec<u8> {
        let p = self.path(inner);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    fn build_base(&self) {
        for d in [
            "/usr/bin",
            "/usr/lib",
            "/usr/share/doc",
            "/opt/app/bin",
            "/etc/almost",
            "/home/user",
            "/var/lib",
            "/run",
        ] {
            self.mkdir(d);
        }
        self.write(rich::TOOL, "#!/bin/sh\necho tool\n");
        self.write(rich::LIB, b"\x7fELF fake library");
        self.write("/usr/share/doc/README", "Almost test root\n");
        self.write(rich::OPT_APP, "#!/bin/sh\necho app\n");
        self.write("/opt/app/config.json", "{}\n");
        self.write("/etc/hostname", "sandbox\n");
        self.write("/home/user/.profile", "# profile\n");
        self.write("/var/lib/state", "state\n");
    }

    /// The config file of the sandbox.
    pub fn config_path(&self) -> PathBuf {
        self.path("/etc/almost/almost.toml")
    }

    pub fn write_config(&self, text: &str) {
        self.write("/etc/almost/almost.toml", text);
    }

    /// Adds every kind of entry to the managed trees, two nested mounts and
    /// outside targets (see [`rich`]).
    pub fn build_rich_tree(&mut self) {
        self.write(rich::EMPTY, "");
        self.write("/usr/share/doc/also-empty", "");
        let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        self.write(rich::BIG, big);
        self.write(rich::SPACES, "spaces\n");
        self.write(&format!("{}/inner file", rich::SPACES_DIR), "inner\n");
        self.write(rich::NEWLINE, "newline in the name\n");
        self.mkdir(rich::EMPTY_DIR);
        self.write("/usr/share/doc/pkg/changelog", "1.0\n");
        self.write("/opt/app/lib/data.bin", vec![7u8; 4096]);
        self.write("/opt/app/share/empty", "");

        // Outside the managed trees: targets of a symlink and of a bind mount.
        self.write(&format!("{}/file1", rich::OUTSIDE), "outside 1\n");
        self.write(&format!("{}/sub/file2", rich::OUTSIDE), "outside 2\n");

        // Symlinks: to a file inside, to a dir outside (absolute and relative).
        symlink("libfoo.so.1", self.path(rich::LIB_SYMLINK)).expect("symlink");
        symlink(rich::OUTSIDE, self.path(rich::ABS_LINK_OUT)).expect("symlink");
        symlink("../../home/outside", self.path(rich::REL_LINK_OUT)).expect("symlink");

        // Hard links, inside one tree and across the two managed trees.
        fs::hard_link(self.path(rich::TOOL), self.path(rich::TOOL_HARDLINK)).expect("link");
        fs::hard_link(self.path(rich::TOOL), self.path(rich::OPT_HARDLINK)).expect("link");

        // A fifo, a character device (1:3, like /dev/null) and a socket.
        nix::unistd::mkfifo(
            &self.path(rich::FIFO),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .expect("mkfifo");
        nix::sys::stat::mknod(
            &self.path(rich::CHARDEV),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod");
        let sock = self.path(rich::SOCKET);
        assert!(
            sock.as_os_str().len() < 108,
            "socket path too long: {sock:?}"
        );
        // The socket file stays after the listener is dropped (which it must
        // be, or it would keep the mount busy).
        drop(UnixListener::bind(&sock).expect("bind unix socket"));

        // Deep nesting.
        let mut deep = String::from(rich::DEEP);
        for _ in 0..rich::DEEP_LEVELS {
            deep.push_str("/d");
        }
        self.write(&format!("{deep}/bottom"), "deep\n");

        // A nested tmpfs with files inside, and a bind mount of an outside dir.
        self.mount_tmpfs(rich::TMPFS);
        self.write(&format!("{}/in-tmpfs", rich::TMPFS), "tmpfs file\n");
        self.write(&format!("{}/sub/in-tmpfs-2", rich::TMPFS), "tmpfs file 2\n");
        self.bind_mount(rich::OUTSIDE, rich::BOUND);
    }

    /// Adds `n` small files under `inner`, 100 per directory.
    pub fn populate(&self, inner: &str, n: usize) {
        for i in 0..n {
            let p = self.path(&format!("{inner}/d{:03}/f{i:05}", i / 100));
            if i % 100 == 0 {
                fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            }
            fs::write(&p, format!("{i}\n")).expect("write");
        }
    }

    /// Mounts a fresh tmpfs at `inner` (created if needed).
    pub fn mount_tmpfs(&mut self, inner: &str) {
        let p = self.path(inner);
        fs::create_dir_all(&p).expect("mkdir mount point");
        sh(
            "mount",
            os!["-t", "tmpfs", "-o", "size=4m", "almost-test", p],
        );
        self.nested.push(p);
    }

    /// Bind-mounts `src` at `dst` (both inside the root).
    pub fn bind_mount(&mut self, src: &str, dst: &str) {
        let d = self.path(dst);
        fs::create_dir_all(&d).expect("mkdir mount point");
        sh("mount", os!["--bind", self.path(src), d]);
        self.nested.push(d);
    }

    /// Mounts an overlayfs with `options` at `inner`.
    pub fn mount_overlay(&mut self, options: &str, inner: &str) {
        let p = self.path(inner);
        fs::create_dir_all(&p).expect("mkdir mount point");
        sh(
            "mount",
            os!["-t", "overlay", "-o", options, "almost-test-ov", p],
        );
        self.nested.push(p);
    }

    /// Makes the bind mount of `inner` on itself read-only.
    pub fn bind_read_only(&mut self, inner: &str) {
        let p = self.path(inner);
        sh("mount", os!["--bind", p, p]);
        self.nested.push(p.clone());
        sh("mount", os!["-o", "remount,bind,ro", p]);
    }

    /// Mounts, at `inner`, a filesystem that cannot carry the immutable flag
    /// and puts `files` files in it: vfat from a fresh image when the kernel
    /// has vfat, ramfs otherwise. Returns the filesystem type.
    pub fn mount_flagless(&mut self, inner: &str, files: usize) -> &'static str {
        let p = self.path(inner);
        fs::create_dir_all(&p).expect("mkdir mount point");
        let has_vfat = fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .split_whitespace()
            .any(|f| f == "vfat");
        let fstype = if has_vfat {
            let img = self.dir.join(format!("vfat-{}.img", self.nested.len()));
            sh("truncate", os!["-s", "8M", img]);
            sh("mkfs.vfat", os!["-n", "ALMOSTT", img]);
            sh("mount", os!["-o", "loop", img, p]);
            "vfat"
        } else {
            sh("mount", os!["-t", "ramfs", "almost-test", p]);
            "ramfs"
        };
        self.nested.push(p);
        for i in 0..files {
            self.write(&format!("{inner}/sub/f{i}.txt"), format!("{i}\n"));
        }
        fstype
    }

    // --- running almost ---------------------------------------------------

    /// A `Command` for `almost --root R [args]` (environment pinned so the
    /// messages are untranslated).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(ALMOST);
        c.arg("--root").arg(&self.root).args(args);
        c.env("LC_ALL", "C.UTF-8").env_remove("LANGUAGE");
        c
    }

    /// A `Command` for `almost SUBCOMMAND --root R [rest]`: the subcommand
    /// first, as pkexec needs it (it picks the polkit action by `argv[1]`,
    /// and almost refuses anything else under pkexec).
    pub fn command_pkexec_order(&self, args: &[&str]) -> Command {
        let (sub, rest) = args.split_first().expect("a subcommand");
        let mut c = Command::new(ALMOST);
        c.arg(sub).arg("--root").arg(&self.root).args(rest);
        c.env("LC_ALL", "C.UTF-8").env_remove("LANGUAGE");
        c
    }

    /// `almost --root R args…`, waited for with [`DEFAULT_TIMEOUT`].
    pub fn almost(&self, args: &[&str]) -> Run {
        Spawned::spawn(self.command(args)).wait(DEFAULT_TIMEOUT)
    }

    /// `almost --root R --json args…`.
    pub fn almost_json(&self, args: &[&str]) -> Run {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        self.almost(&a)
    }

    /// Starts `almost --root R args…` without waiting.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        Spawned::spawn(self.command(args))
    }

    /// `almost --root R args…` as `nobody` (no groups).
    pub fn almost_as_nobody(&self, args: &[&str]) -> Run {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(ALMOST)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .env_remove("LANGUAGE");
        Spawned::spawn(c).wait(DEFAULT_TIMEOUT)
    }

    /// `status --json`, asserted successful, returning the result event.
    #[track_caller]
    pub fn status(&self) -> Value {
        let r = self.almost_json(&["status"]);
        r.expect_ok();
        r.result()
    }

    // --- the oracle -----------------------------------------------------------

    /// The lsattr report for a tree inside the root.
    pub fn flags(&self, inner: &str) -> FlagReport {
        flag_report(&self.path(inner))
    }

    /// Whether one file or dir inside the root has `i`.
    pub fn has_i(&self, inner: &str) -> bool {
        has_i(&self.path(inner))
    }

    /// Asserts every file and directory under `inner` (inclusive) has `i`.
    #[track_caller]
    pub fn assert_locked(&self, inner: &str) -> FlagReport {
        let rep = self.flags(inner);
        assert!(
            rep.unlocked.is_empty(),
            "{} of {} files/dirs under {inner} lack the immutable flag:\n{}",
            rep.unlocked.len(),
            rep.total(),
            sample(&rep.unlocked)
        );
        assert!(rep.total() > 0, "nothing to check under {inner}");
        rep
    }

    /// Asserts no file or directory under `inner` (inclusive) has `i`.
    #[track_caller]
    pub fn assert_unlocked(&self, inner: &str) -> FlagReport {
        let rep = self.flags(inner);
        assert!(
            rep.locked.is_empty(),
            "{} of {} files/dirs under {inner} have the immutable flag:\n{}",
            rep.locked.len(),
            rep.total(),
            sample(&rep.locked)
        );
        rep
    }

    /// Asserts that nothing anywhere in the sandbox has `i` except under the
    /// given trees; walks into nested mounts too (each from its own root).
    #[track_caller]
    pub fn assert_clean_outside(&self, managed: &[&str]) {
        let managed: Vec<PathBuf> = managed.iter().map(|m| self.path(m)).collect();
        let mut tops = vec![self.root.clone()];
        tops.extend(self.nested.iter().cloned());
        let mut bad = BTreeSet::new();
        for top in tops {
            let rep = flag_report(&top);
            for p in rep.locked {
                // A nested mount's contents are never managed, even when the
                // mount point lies inside a managed tree.
                let in_nested = top != self.root;
                if in_nested || !managed.iter().any(|m| p.starts_with(m)) {
                    bad.insert(p);
                }
            }
        }
        assert!(
            bad.is_empty(),
            "entries outside the managed trees have the immutable flag:\n{}",
            sample(&bad)
        );
    }

    /// Counts of a whole managed tree as `almost` should report them.
    pub fn expected_counts(&self, inner: &str) -> (usize, usize) {
        let entries = walk(&self.path(inner));
        let flaggable = entries.iter().filter(|(_, k)| k.flaggable()).count();
        let special = entries.iter().filter(|(_, k)| k.special()).count();
        (flaggable, special)
    }

    /// The nested mounts made so far (host paths).
    pub fn nested_mounts(&self) -> &[PathBuf] {
        &self.nested
    }

    // --- cleanup ----------------------------------------------------------------

    /// Kills leftover processes of this sandbox (e.g. a timer started by
    /// `unlock --for`): those whose command line names the sandbox directory.
    pub fn kill_leftovers(&self) {
        let needle = self.dir.to_string_lossy().into_owned();
        for pid in pids_with_cmdline(&needle) {
            kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }

    fn unmount_all(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.mounted {
            return problems;
        }
        self.kill_leftovers();
        let mut tops = vec![self.root.clone()];
        tops.extend(self.nested.iter().cloned());
        for top in &tops {
            // -f: quiet about symlinks, fifos, devices and sockets.
            let _ = sh_quiet("chattr", os!["-R", "-f", "-i", top]);
        }
        // The root first in the list, so that it is unmounted last.
        for p in tops.iter().rev() {
            let mut ok = false;
            for _ in 0..20 {
                match sh_quiet("umount", os![p]) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(_) => thread::sleep(Duration::from_millis(100)),
                }
            }
            if !ok {
                if let Err(e) = sh_quiet("umount", os!["-l", p]) {
                    problems.push(format!("cannot unmount {}: {e}", p.display()));
                } else {
                    problems.push(format!("{} was busy; lazily unmounted", p.display()));
                }
            }
        }
        self.nested.clear();
        self.mounted = false;
        problems
    }

    /// Unmounts everything and asserts `e2fsck -fn` finds the image clean.
    #[track_caller]
    pub fn unmount_and_fsck(&mut self) {
        let problems = self.unmount_all();
        assert!(problems.is_empty(), "unmount problems: {problems:?}");
        // An `almost` that entered a private mount namespace of its own (to
        // look beneath a layer) while another test of this binary ran holds
        // a copy of every mount, this image's too: our umount then only
        // detached it, and the filesystem lives on until that process ends.
        // The loop device (autoclear) goes when the filesystem does; e2fsck
        // of a live filesystem would see its journal unreplayed.
        let released = wait_until(Duration::from_secs(20), || {
            Command::new("losetup")
                .arg("-j")
                .arg(&self.image)
                .output()
                .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
        });
        assert!(
            released,
            "the image's filesystem is still in use 20 s after its unmount"
        );
        let out = Command::new("e2fsck")
            .arg("-fn")
            .arg(&self.image)
            .output()
            .expect("run e2fsck");
        assert!(
            out.status.success(),
            "e2fsck -fn found problems ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never panic here: this runs while a failed test unwinds.
        for p in self.unmount_all() {
            eprintln!("sandbox cleanup: {p}");
        }
        if let Some(tmp) = self.tmp.take() {
            let path = tmp.path().to_path_buf();
            if let Err(e) = tmp.close() {
                eprintln!("sandbox cleanup: cannot remove {}: {e}", path.display());
            }
        }
    }
}
