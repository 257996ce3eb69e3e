//! Per-test temporary directories and child processes that cannot outlive their test.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How often a waiting helper looks at a child process again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How many trailing lines of each log [`ChildGuard::report`] quotes.
const REPORT_LINES: usize = 20;

/// A private temporary directory for one test: `<temp_dir>/librice-tests-<pid>-<n>`.
///
/// Logs, pid files and databases of the processes a test starts go here. On drop the
/// directory is removed, unless the thread is panicking (the test failed): then it is kept
/// and its path printed, so the logs of a failing run can be read.
///
/// Declare it before the [`ChildGuard`]s that log into it, so that they are dropped (and
/// their processes killed) first.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
    next_log: AtomicUsize,
}

impl TestDir {
    /// Creates a new, empty directory (panics if it cannot).
    pub fn new() -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("librice-tests-{}-{n}", process::id()));
        // A leftover of an earlier process that had the same pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create test directory {}: {e}", path.display()));
        TestDir {
            path,
            next_log: AtomicUsize::new(0),
        }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path in this directory for a new file named after `stem`, never returned before.
    pub fn unique_path(&self, stem: &str, extension: &str) -> PathBuf {
        let n = self.next_log.fetch_add(1, Ordering::Relaxed);
        self.path.join(format!("{n:02}-{stem}.{extension}"))
    }
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("test failed: logs kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process that is killed (SIGKILL) and reaped when this guard is dropped, even
/// when the test panics.
///
/// Its stdin is `/dev/null`; its stdout and stderr go to two log files in a [`TestDir`],
/// which [`stdout`](Self::stdout), [`stderr`](Self::stderr) and [`report`](Self::report)
/// read back.
#[derive(Debug)]
pub struct ChildGuard {
    child: Reaped,
    label: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

/// A child process and its exit status once seen; killed and reaped when dropped if it is
/// still running. [`ChildGuard`] and the pairing's peer processes wait on it.
#[derive(Debug)]
pub(crate) struct Reaped {
    child: Child,
    status: Option<ExitStatus>,
}

impl Reaped {
    pub(crate) fn new(child: Child) -> Reaped {
        Reaped {
            child,
            status: None,
        }
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited, without blocking.
    pub(crate) fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits at most `timeout` for it to exit; `None` if it is still running.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Kills it (it may have exited already) and reaps it.
    pub(crate) fn kill(&mut self) -> ExitStatus {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let status = self.child.wait().expect("a killed child can be reaped");
        self.status = Some(status);
        status
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.status.is_none() {
            // Our own child, by its handle; it may have exited already, which is fine.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ChildGuard {
    /// Spawns `cmd` with its output logged to `<dir>/NN-<name>.stdout.log` and
    /// `.stderr.log`. Panics if it cannot be started.
    pub fn spawn(cmd: &mut Command, dir: &TestDir, name: &str) -> ChildGuard {
        let label = command_line(cmd);
        let base = dir.unique_path(name, "log");
        let stdout_path = base.with_extension("stdout.log");
        let stderr_path = base.with_extension("stderr.log");
        let create = |path: &Path| {
            File::create(path)
                .unwrap_or_else(|e| panic!("cannot create log file {}: {e}", path.display()))
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(create(&stdout_path))
            .stderr(create(&stderr_path))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{label}`: {e}"));
        ChildGuard {
            child: Reaped::new(child),
            label,
            stdout_path,
            stderr_path,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The file that receives its stdout.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// The file that receives its stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Everything it has written to stdout so far (lossy UTF-8).
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything it has written to stderr so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Its exit status if it has exited, without blocking.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_status()
    }

    /// Waits at most `timeout` for it to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait_timeout(timeout)
    }

    /// Waits at most `timeout` for a complete stdout line for which `matches` is true, and
    /// returns it (without the line end). `None` if the process exits or the deadline
    /// passes first.
    pub fn wait_for_stdout_line(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            // Read the status first: output written before the exit is then in the file.
            let exited = self.try_status().is_some();
            let out = self.stdout();
            let complete = out.rfind('\n').map_or("", |end| &out[..end]);
            if let Some(line) = complete.lines().find(|l| matches(l)) {
                return Some(line.to_owned());
            }
            if exited || Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits at most `timeout` for it to exit and returns its status and output. Panics
    /// with a [`report`](Self::report) if it is still running then (it is killed on drop).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        match self.wait_timeout(timeout) {
            Some(status) => Finished {
                status,
                stdout: self.stdout(),
                stderr: self.stderr(),
                label: self.label.clone(),
            },
            None => panic!("still running after {timeout:?}: {}", self.report()),
        }
    }

    /// A description for a failure message: the command line, pid, exit status if known,
    /// the log paths and the last lines of each log.
    pub fn report(&mut self) -> String {
        let status = match self.try_status() {
            Some(status) => format!("exited with {status}"),
            None => "still running".to_owned(),
        };
        format!(
            "`{}` (pid {}, {status})\n--- stdout {} (last lines):\n{}\n--- stderr {} (last lines):\n{}",
            self.label,
            self.id(),
            self.stdout_path.display(),
            tail(&self.stdout(), REPORT_LINES),
            self.stderr_path.display(),
            tail(&self.stderr(), REPORT_LINES),
        )
    }
}

/// A signal [`signal`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGKILL: the process dies at once, without a word to its peers.
    Kill,
    /// SIGSTOP: the process is frozen (its sockets stay open, nothing is answered).
    Stop,
    /// SIGCONT: a stopped process goes on.
    Cont,
}

/// Sends `sig` to the process `pid`, or with `group` to every process of the process group
/// `pid`. Only for processes the test started itself (or that they started).
pub fn signal(pid: u32, group: bool, sig: Signal) -> std::io::Result<()> {
    let signo = match sig {
        Signal::Kill => libc::SIGKILL,
        Signal::Stop => libc::SIGSTOP,
        Signal::Cont => libc::SIGCONT,
    };
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| std::io::Error::other(format!("refusing to signal pid {pid}")))?;
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    let rc = unsafe { libc::kill(target, signo) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What a process that ran to completion left behind (see [`ChildGuard::finish`]).
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Its whole stdout (lossy UTF-8).
    pub stdout: String,
    /// Its whole stderr (lossy UTF-8).
    pub stderr: String,
    /// The command line it was started with.
    pub label: String,
}

impl Finished {
    /// A description for a failure message: command line, status and both outputs.
    pub fn report(&self) -> String {
        format!(
            "`{}` exited with {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.label, self.status, self.stdout, self.stderr
        )
    }
}

fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
