// SPDX-License-Identifier: GPL-3.0-or-later
//! Running `almost`.

use super::*;

/// What one run of a program produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// What was run, for messages.
    pub cmdline: String,
    /// The exit code, `None` if it died of a signal.
    pub code: Option<i32>,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// A readable dump for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "$ {}\nexit code: {:?}, signal: {:?}, took {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.code, self.signal, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Every line of stdout parsed as JSON (panics on a line that is not).
    #[track_caller]
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("stdout line is not JSON ({e}): {l:?}\n{}", self.describe())
                })
            })
            .collect()
    }

    /// The events of one kind (`"result"`, `"error"`, `"warning"`, `"progress"`).
    #[track_caller]
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.json()
            .into_iter()
            .filter(|v| v["event"] == kind)
            .collect()
    }

    /// The one `result` event.
    #[track_caller]
    pub fn result(&self) -> Value {
        let mut r = self.events("result");
        assert_eq!(
            r.len(),
            1,
            "expected exactly one result event\n{}",
            self.describe()
        );
        r.remove(0)
    }

    /// The one `error` event, if any.
    #[track_caller]
    pub fn error_event(&self) -> Option<Value> {
        let mut r = self.events("error");
        assert!(
            r.len() <= 1,
            "more than one error event\n{}",
            self.describe()
        );
        r.pop()
    }

    /// Expects the documented failure: exit `code` and exactly one JSON
    /// error event of `kind` that names the same exit code. Returns the event
    /// (for checks of its message).
    #[track_caller]
    pub fn expect_error(&self, code: i32, kind: &str) -> Value {
        self.expect_code(code);
        let e = self
            .error_event()
            .unwrap_or_else(|| panic!("no JSON error event\n{}", self.describe()));
        assert_eq!(e["kind"], kind, "{}", self.describe());
        assert_eq!(e["exit_code"], code, "{}", self.describe());
        e
    }

    /// stdout and stderr together, for "the message says …" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// The `paths[]` entry of a status/lock/unlock result for one managed path.
#[track_caller]
pub fn path_entry<'a>(result: &'a Value, path: &str) -> &'a Value {
    result["paths"]
        .as_array()
        .unwrap_or_else(|| panic!("result has no paths array: {result}"))
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("result has no entry for {path}: {result}"))
}

/// A started process whose output is being collected.
pub struct Spawned {
    pub child: Child,
    cmdline: String,
    started: Instant,
    out: Drain,
    err: Drain,
}

/// Collects one pipe in a thread. The pipe may stay open after the process
/// has ended (a killed `almost run` leaves its command holding it), so the
/// collector can be read before EOF.
pub(crate) struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Drain {
    fn start(r: Option<impl Read + Send + 'static>) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        if let Some(mut r) = r {
            let b = Arc::clone(&buf);
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match r.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => b
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(());
            });
        } else {
            let _ = tx.send(());
        }
        Drain { buf, done }
    }

    /// What was read, waiting at most `grace` for the end of the pipe.
    fn take(&self, grace: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(grace);
        std::mem::take(&mut *self.buf.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Spawned {
    pub fn spawn(mut cmd: Command) -> Self {
        let cmdline = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let out = Drain::start(child.stdout.take());
        let err = Drain::start(child.stderr.take());
        Spawned {
            child,
            cmdline,
            started: Instant::now(),
            out,
            err,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        kill(self.pid(), sig);
    }

    /// Whether it has exited (does not reap).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the end; kills it and panics if it takes longer than `timeout`.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Run {
        let deadline = Instant::now() + timeout;
        let status: ExitStatus = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let run = self.collect(None);
                    panic!("timed out after {timeout:?} (hung?)\n{}", run.describe());
                }
                Err(e) => panic!("waiting for {}: {e}", self.cmdline),
            }
        };
        self.collect(Some(status))
    }

    fn collect(&mut self, status: Option<ExitStatus>) -> Run {
        let elapsed = self.started.elapsed();
        // Children that outlive the process may keep the pipes open.
        let out = self.out.take(Duration::from_secs(2));
        let err = self.err.take(Duration::from_secs(1));
        Run {
            cmdline: self.cmdline.clone(),
            code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            elapsed,
        }
    }
}
