//! A pairing driver for programs that speak the interop peers' JSON-lines signalling
//! protocol (`icepeer`, aioice-peer, nice-peer, ...): start two of them, forward each
//! side's description and candidate lines to the other, and record the events of both.
//!
//! [`PeerProcess`] runs one such program with piped stdin and stdout; a reader thread
//! copies its stdout to a log file in a [`TestDir`] and sends each line, parsed as JSON,
//! with the [`Instant`] it was read, through an mpsc channel. [`pair`] and [`pair_with`]
//! drive two of them and return a [`PairOutcome`]; a [`Session`] does the same for a caller
//! that decides itself when to stop (and may kill a side first). Every wait is bounded.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{Reaped, TestDir};

/// How long a peer may take to exit once its stdin is closed before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Once both sides have connected, received data and printed `echo_ok`, how long [`pair`]
/// still waits for both `done` events (`done` follows the last component's `echo_ok`).
pub const DONE_GRACE: Duration = Duration::from_secs(2);

/// How often waiting helpers look at a process or a log again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How many trailing stderr lines [`PeerProcess::report`] quotes.
const REPORT_LINES: usize = 15;

/// The keys of signalling lines (the ones [`pair`] forwards).
const SIGNAL_KEYS: &[&str] = &[
    "ufrag",
    "pwd",
    "candidates",
    "candidate",
    "end_of_candidates",
];

/// One of the two sides of a pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first command given to [`pair`].
    A,
    /// The second command given to [`pair`].
    B,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// `"A"` or `"B"`.
    pub fn name(self) -> &'static str {
        match self {
            Side::A => "A",
            Side::B => "B",
        }
    }
}

/// What the reader thread of a [`PeerProcess`] saw on its stdout.
#[derive(Debug, Clone)]
pub enum Output {
    /// A line that parsed as JSON.
    Json(Value),
    /// A non-empty line that is not JSON (a protocol violation), without its line end.
    NotJson(String),
    /// The end of stdout: the process exited or closed it.
    Eof,
}

/// One item from a [`PeerProcess`]'s reader thread.
#[derive(Debug, Clone)]
pub struct PeerLine {
    /// Which process it comes from.
    pub side: Side,
    /// When the reader thread read it.
    pub at: Instant,
    /// The raw line, without its line end (empty for [`Output::Eof`]).
    pub raw: String,
    /// What it was.
    pub output: Output,
}

impl PeerLine {
    /// The JSON object of the line, if it is one.
    pub fn json(&self) -> Option<&Value> {
        match &self.output {
            Output::Json(v) => Some(v),
            _ => None,
        }
    }

    /// The `event` field of the line, if it is an event line.
    pub fn event(&self) -> Option<&str> {
        self.json()?.get("event")?.as_str()
    }
}

/// A protocol peer process: stdin and stdout piped, stderr in a log file of a [`TestDir`],
/// stdout copied line by line to another log file there by a reader thread. Killed and
/// reaped when dropped if it is still running.
#[derive(Debug)]
pub struct PeerProcess {
    side: Side,
    label: String,
    child: Reaped,
    stdin: Option<ChildStdin>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    reader: Option<JoinHandle<()>>,
    killed: bool,
}

impl PeerProcess {
    /// Spawns `cmd` as side `side`, with logs `<dir>/NN-<name>.stdout.log` and
    /// `.stderr.log`; its stdout lines go to `tx`. Panics if it cannot be started.
    pub fn spawn(
        mut cmd: Command,
        dir: &TestDir,
        name: &str,
        side: Side,
        tx: Sender<PeerLine>,
    ) -> PeerProcess {
        let label = command_line(&cmd);
        let base = dir.unique_path(name, "log");
        let stdout_path = base.with_extension("stdout.log");
        let stderr_path = base.with_extension("stderr.log");
        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        let stdout_log = File::create(&stdout_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stdout_path.display()));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{label}`: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let reader = thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || read_lines(side, stdout, stdout_log, tx))
            .expect("a reader thread can be started");
        PeerProcess {
            side,
            label,
            child: Reaped::new(child),
            stdin,
            stdout_path,
            stderr_path,
            reader: Some(reader),
            killed: false,
        }
    }

    /// Spawns `cmd` alone (as side A) and returns it with the receiving end of its lines.
    pub fn spawn_alone(
        cmd: Command,
        dir: &TestDir,
        name: &str,
    ) -> (PeerProcess, Receiver<PeerLine>) {
        let (tx, rx) = mpsc::channel();
        (PeerProcess::spawn(cmd, dir, name, Side::A, tx), rx)
    }

    /// Its side.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The command line it was started with.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The file its stdout is copied to.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// The file that receives its stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Everything it has written to stderr so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Writes `line` and a newline to its stdin. Returns false (and closes stdin) if the
    /// write fails, for example because it exited, or if stdin was closed already.
    pub fn send_line(&mut self, line: &str) -> bool {
        let Some(stdin) = self.stdin.as_mut() else {
            return false;
        };
        let ok = stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .is_ok();
        if !ok {
            self.stdin = None;
        }
        ok
    }

    /// Closes its stdin (EOF), once.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether its stdin is still open.
    pub fn stdin_open(&self) -> bool {
        self.stdin.is_some()
    }

    /// Its exit status if it has exited, without blocking.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_status()
    }

    /// Waits at most `timeout` for it to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait_timeout(timeout)
    }

    /// Closes stdin, waits at most `grace` for it to exit, kills it if it has not, and
    /// returns its status. Also waits (boundedly) for the reader thread to finish, so that
    /// its stdout log is complete.
    pub fn stop(&mut self, grace: Duration) -> ExitStatus {
        self.close_stdin();
        let status = match self.wait_timeout(grace) {
            Some(status) => status,
            None => {
                self.killed = true;
                self.child.kill()
            }
        };
        self.join_reader(Duration::from_secs(2));
        status
    }

    /// Kills it now (SIGKILL), if it is still running, and reaps it; its stdout reader
    /// goes on until the pipe ends.
    pub fn kill(&mut self) -> ExitStatus {
        self.killed = true;
        self.child.kill()
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether [`stop`](Self::stop) or [`kill`](Self::kill) had to kill it.
    pub fn was_killed(&self) -> bool {
        self.killed
    }

    fn join_reader(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(reader) = self.reader.as_ref() {
            if reader.is_finished() {
                let _ = self.reader.take().map(JoinHandle::join);
            } else if Instant::now() >= deadline {
                // Something else holds the pipe open; leave the thread detached.
                self.reader = None;
            } else {
                thread::sleep(POLL_INTERVAL);
            }
        }
    }

    /// Waits at most `timeout` for a stderr line for which `matches` is true and returns
    /// it; `None` if the deadline passes first.
    pub fn wait_for_stderr_line(
        &self,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let err = self.stderr();
            let complete = err.rfind('\n').map_or("", |end| &err[..end]);
            if let Some(line) = complete.lines().find(|l| matches(l)) {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// A description for failure messages: command line, pid, status, log paths and the
    /// last stderr lines.
    pub fn report(&mut self) -> String {
        let status = match self.try_status() {
            Some(status) if self.killed => format!("killed, {status}"),
            Some(status) => format!("exited with {status}"),
            None => "still running".to_owned(),
        };
        format!(
            "{}: `{}` (pid {}, {status})\n  stdout: {}\n  stderr: {} (last lines):\n{}",
            self.side.name(),
            self.label,
            self.child.id(),
            self.stdout_path.display(),
            self.stderr_path.display(),
            tail(&self.stderr(), REPORT_LINES),
        )
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        // Close stdin first; the child itself is killed, if still running, when the
        // `Reaped` field drops.
        self.stdin = None;
    }
}

fn read_lines(side: Side, stdout: std::process::ChildStdout, mut log: File, tx: Sender<PeerLine>) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let at = Instant::now();
                let _ = log.write_all(&buf);
                let _ = log.flush();
                let raw = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if raw.trim().is_empty() {
                    continue;
                }
                let output = match serde_json::from_str::<Value>(&raw) {
                    Ok(v) => Output::Json(v),
                    Err(_) => Output::NotJson(raw.clone()),
                };
                // The receiver may be gone (the driver finished); keep draining the pipe.
                let _ = tx.send(PeerLine {
                    side,
                    at,
                    raw,
                    output,
                });
            }
        }
    }
    let _ = tx.send(PeerLine {
        side,
        at: Instant::now(),
        raw: String::new(),
        output: Output::Eof,
    });
}

/// Receives lines from `rx` until one satisfies `matches` (returned), the channel reports
/// [`Output::Eof`] or disconnects, or `timeout` passes (`None`). Every line received,
/// including the matching one, is appended to `seen`.
pub fn wait_for_line(
    rx: &Receiver<PeerLine>,
    timeout: Duration,
    seen: &mut Vec<PeerLine>,
    matches: impl Fn(&PeerLine) -> bool,
) -> Option<PeerLine> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(_) => return None,
        };
        seen.push(line.clone());
        if matches(&line) {
            return Some(line);
        }
        if matches!(line.output, Output::Eof) {
            return None;
        }
    }
}

/// What one side of a pairing did.
#[derive(Debug, Clone)]
pub struct SideOutcome {
    /// The command line.
    pub command: String,
    /// Its stdout log.
    pub stdout_log: PathBuf,
    /// Its stderr log.
    pub stderr_log: PathBuf,
    /// Whether it printed a `connected` event.
    pub connected: bool,
    /// The (first) `connected` event.
    pub connected_event: Option<Value>,
    /// From when the driver had both sides' descriptions (their ufrag/pwd lines) to when
    /// it read this side's `connected` (zero if `connected` came first).
    pub connect_time: Option<Duration>,
    /// When the driver read its `connected` event.
    pub connected_at: Option<Instant>,
    /// How many `recv` events it printed.
    pub recv: usize,
    /// The `data` field of each `recv` event.
    pub recv_data: Vec<String>,
    /// Whether it printed an `echo_ok` event.
    pub echo_ok: bool,
    /// The `component` of each `echo_ok` event.
    pub echo_ok_components: Vec<u64>,
    /// The `done` event, if it printed one.
    pub done_event: Option<Value>,
    /// Whether it printed `{"event":"done","ok":true}`.
    pub done: bool,
    /// The reason of its first `failed` event.
    pub failed: Option<String>,
    /// When the driver read that `failed` event, from the start of both processes.
    pub failed_after: Option<Duration>,
    failed_at: Option<Instant>,
    /// Its exit code (`None` if a signal ended it).
    pub exit_code: Option<i32>,
    /// Whether the driver had to kill it after [`EXIT_GRACE`].
    pub killed: bool,
    /// Its `exit` event.
    pub exit_event: Option<Value>,
    /// Its first description line (the one with `ufrag`).
    pub description: Option<Value>,
    /// When the driver read that description line.
    pub description_at: Option<Instant>,
    /// Every event line it printed, in order.
    pub events: Vec<Value>,
    /// Every signalling line it printed, in order, as printed.
    pub signalling: Vec<String>,
    /// Lines that were not JSON objects (protocol violations).
    pub bad_lines: Vec<String>,
    /// Signalling lines of the other side that could not be written to its stdin.
    pub undelivered: usize,
    /// The `by` of each `restarted` event (`"local"` or `"remote"`), in order.
    pub restarted: Vec<String>,
    /// Each `reconnected_after_restart` event (its `elapsed_ms`: restart to new pair).
    pub reconnected_after_restart: Vec<Value>,
    /// When the driver read the last `reconnected_after_restart` event.
    pub reconnected_at: Option<Instant>,
    /// How many `recv` events it printed after its last `reconnected_after_restart`.
    pub recv_after_restart: usize,
    /// The `echo_ok` events it printed after a restart (those with `restarts` >= 1).
    pub echo_ok_after_restart: Vec<Value>,
    /// Whether, after its last `reconnected_after_restart`, it printed a `stats` event (a
    /// browser's) with `bytes_sent` > 0 and `bytes_received` > 0.
    pub stats_after_restart: bool,
    /// Each `selected_changed` event.
    pub selected_changed: Vec<Value>,
    /// The `reason` of each `error` event (a refused command, e.g. `restart_unsupported`).
    pub errors: Vec<String>,
    /// When the driver wrote each injected `{"cmd":"restart"}` line to its stdin.
    pub restart_sent_at: Vec<Instant>,
}

impl SideOutcome {
    fn new(process: &PeerProcess) -> SideOutcome {
        SideOutcome {
            command: process.label().to_owned(),
            stdout_log: process.stdout_path().to_owned(),
            stderr_log: process.stderr_path().to_owned(),
            connected: false,
            connected_event: None,
            connect_time: None,
            connected_at: None,
            recv: 0,
            recv_data: Vec::new(),
            echo_ok: false,
            echo_ok_components: Vec::new(),
            done_event: None,
            done: false,
            failed: None,
            failed_after: None,
            failed_at: None,
            exit_code: None,
            killed: false,
            exit_event: None,
            description: None,
            description_at: None,
            events: Vec::new(),
            signalling: Vec::new(),
            bad_lines: Vec::new(),
            undelivered: 0,
            restarted: Vec::new(),
            reconnected_after_restart: Vec::new(),
            reconnected_at: None,
            recv_after_restart: 0,
            echo_ok_after_restart: Vec::new(),
            stats_after_restart: false,
            selected_changed: Vec::new(),
            errors: Vec::new(),
            restart_sent_at: Vec::new(),
        }
    }

    /// The `elapsed_ms` of its last `reconnected_after_restart` event: from the restart
    /// (its command, or reading the peer's new credentials) to the new selected pair.
    pub fn restart_elapsed_ms(&self) -> Option<f64> {
        self.reconnected_after_restart
            .last()?
            .get("elapsed_ms")?
            .as_f64()
    }

    /// The `reason` of its `exit` event.
    pub fn exit_reason(&self) -> Option<&str> {
        self.exit_event.as_ref()?.get("reason")?.as_str()
    }

    /// Whether it finished the data test: `connected`, a `recv`, `echo_ok` and `done`.
    pub fn complete(&self) -> bool {
        self.connected && self.recv > 0 && self.echo_ok && self.done
    }

    /// Its whole stderr (lossy UTF-8).
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_log)
    }

    fn record_event(&mut self, value: &Value, at: Instant) {
        self.events.push(value.clone());
        let event = value.get("event").and_then(Value::as_str).unwrap_or("");
        match event {
            "connected" if !self.connected => {
                self.connected = true;
                self.connected_event = Some(value.clone());
                self.connected_at = Some(at);
            }
            "recv" => {
                self.recv += 1;
                if self.reconnected_at.is_some() {
                    self.recv_after_restart += 1;
                }
                let data = value.get("data").and_then(Value::as_str).unwrap_or("");
                self.recv_data.push(data.to_owned());
            }
            "echo_ok" => {
                self.echo_ok = true;
                if value.get("restarts").and_then(Value::as_u64).unwrap_or(0) >= 1 {
                    self.echo_ok_after_restart.push(value.clone());
                }
                if let Some(c) = value.get("component").and_then(Value::as_u64) {
                    self.echo_ok_components.push(c);
                }
            }
            "done" if value.get("ok").and_then(Value::as_bool) == Some(true) => {
                self.done = true;
                self.done_event = Some(value.clone());
            }
            "failed" if self.failed.is_none() => {
                let reason = value.get("reason").and_then(Value::as_str).unwrap_or("");
                self.failed = Some(reason.to_owned());
                self.failed_at = Some(at);
            }
            "exit" => self.exit_event = Some(value.clone()),
            "restarted" => {
                let by = value.get("by").and_then(Value::as_str).unwrap_or("");
                self.restarted.push(by.to_owned());
            }
            "reconnected_after_restart" => {
                self.reconnected_after_restart.push(value.clone());
                self.reconnected_at = Some(at);
                // Data counts from the newest restart's pair on.
                self.recv_after_restart = 0;
                self.stats_after_restart = false;
            }
            "stats" if self.reconnected_at.is_some() => {
                let positive = |k: &str| value.get(k).and_then(Value::as_u64).unwrap_or(0) > 0;
                if positive("bytes_sent") && positive("bytes_received") {
                    self.stats_after_restart = true;
                }
            }
            "selected_changed" => self.selected_changed.push(value.clone()),
            "error" => {
                let reason = value.get("reason").and_then(Value::as_str).unwrap_or("");
                self.errors.push(reason.to_owned());
            }
            _ => {}
        }
    }
}

/// Why [`pair_with`] stopped driving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Both sides connected, received data and printed `echo_ok` (and `done`, unless
    /// [`DONE_GRACE`] passed first).
    Complete,
    /// A side printed `failed` (and the options asked to stop on it), or, with
    /// [`PairOptions::restarts`], an `error` event.
    Failed(Side),
    /// Both sides' stdout ended (they exited by themselves).
    BothExited,
    /// The time limit passed.
    Limit,
}

/// The result of [`pair`]: what each side did, and how the run ended.
#[derive(Debug, Clone)]
pub struct PairOutcome {
    /// Side A (the first command).
    pub a: SideOutcome,
    /// Side B (the second command).
    pub b: SideOutcome,
    /// Why the driver stopped.
    pub stop: StopReason,
    /// From the start of both processes to the stop.
    pub elapsed: Duration,
    /// The directory holding the logs.
    pub log_dir: PathBuf,
}

impl PairOutcome {
    /// One side.
    pub fn side(&self, side: Side) -> &SideOutcome {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// A description for failure messages and test output: both commands, what each side
    /// did, and where the logs are.
    pub fn report(&self) -> String {
        let mut out = format!(
            "pairing stopped ({:?}) after {:.1?}; logs in {}\n",
            self.stop,
            self.elapsed,
            self.log_dir.display()
        );
        for side in [Side::A, Side::B] {
            let s = self.side(side);
            out.push_str(&format!(
                "{}: `{}`\n  connected={} connect_time={:?} recv={} echo_ok={} done={} failed={:?} \
                 failed_after={:?} exit_code={:?}{} exit={}\n  selected: {}\n  stdout: {}\n  stderr: {}\n",
                side.name(),
                s.command,
                s.connected,
                s.connect_time,
                s.recv,
                s.echo_ok,
                s.done,
                s.failed,
                s.failed_after,
                s.exit_code,
                if s.killed { " (killed)" } else { "" },
                s.exit_event
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), Value::to_string),
                s.connected_event
                    .as_ref()
                    .and_then(|e| e.get("pairs"))
                    .map_or_else(|| "none".to_owned(), Value::to_string),
                s.stdout_log.display(),
                s.stderr_log.display(),
            ));
            if !s.restart_sent_at.is_empty()
                || !s.restarted.is_empty()
                || !s.errors.is_empty()
                || !s.selected_changed.is_empty()
            {
                out.push_str(&format!(
                    "  restarts sent={} restarted={:?} reconnected_after_restart={} elapsed_ms={:?} \
                     recv_after_restart={} echo_ok_after_restart={} stats_after_restart={} \
                     selected_changed={} errors={:?}\n",
                    s.restart_sent_at.len(),
                    s.restarted,
                    s.reconnected_after_restart.len(),
                    s.restart_elapsed_ms(),
                    s.recv_after_restart,
                    s.echo_ok_after_restart.len(),
                    s.stats_after_restart,
                    s.selected_changed.len(),
                    s.errors,
                ));
            }
            if !s.bad_lines.is_empty() {
                out.push_str(&format!("  non-JSON stdout lines: {:?}\n", s.bad_lines));
            }
            let err = s.stderr();
            if !err.trim().is_empty() {
                out.push_str(&format!(
                    "  stderr (last lines):\n{}\n",
                    tail(&err, REPORT_LINES)
                ));
            }
        }
        out
    }
}

/// A rewriter of forwarded signalling lines: (from side, parsed line) to the replacement.
pub type Rewrite<'a> = Box<dyn FnMut(Side, &Value) -> Option<Value> + 'a>;

/// How [`pair_with`] drives a pairing.
pub struct PairOptions<'a> {
    /// Stop as soon as either side prints `failed` (default true).
    pub stop_on_failed: bool,
    /// Called with each signalling line (from side, parsed line) before it is forwarded;
    /// `Some(value)` forwards `value` instead of the verbatim line. Default: none.
    pub rewrite: Option<Rewrite<'a>>,
    /// The sides that are browsers (Chromium): they neither ping nor echo, and report
    /// `done` once bytes went both ways on their selected pair. A browser side is complete
    /// when it is connected and done; the other side then needs no `echo_ok`, only data
    /// received. Default: none.
    pub browsers: Vec<Side>,
    /// Restarts to inject: `{"cmd":"restart"}` is written to that side's stdin that long
    /// after both sides printed `connected` (PROTOCOL.md, "Restart"). With any, the pairing
    /// is complete only once every restart was sent, both sides printed
    /// `reconnected_after_restart` after the last one, and data flowed on the new pairs: a
    /// browser side's `stats` with bytes both ways, a `recv` on any other side after its
    /// `reconnected_after_restart`, and (when neither side is a browser) an `echo_ok`
    /// with `restarts` on both. A `done` before that does not end it; an `error` event
    /// (a refused restart) ends it at once ([`StopReason::Failed`]). Default: none (the
    /// pairing ends as without restarts).
    pub restarts: Vec<(Side, Duration)>,
    /// How long both sides keep running once the pairing is complete, before they are
    /// stopped (their `exit` events then tell how things stand after that). Default: 0.
    pub linger: Duration,
}

impl Default for PairOptions<'_> {
    fn default() -> Self {
        PairOptions {
            stop_on_failed: true,
            rewrite: None,
            browsers: Vec::new(),
            restarts: Vec::new(),
            linger: Duration::ZERO,
        }
    }
}

impl std::fmt::Debug for PairOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairOptions")
            .field("stop_on_failed", &self.stop_on_failed)
            .field("rewrite", &self.rewrite.is_some())
            .field("browsers", &self.browsers)
            .field("restarts", &self.restarts)
            .field("linger", &self.linger)
            .finish()
    }
}

/// Starts `a` and `b`, forwards every signalling line (a JSON object without an `event`
/// key) of each to the other's stdin verbatim, and records both sides' events, until both
/// sides are connected, have received data (`recv`) and have printed `echo_ok` (then at
/// most [`DONE_GRACE`] longer, for both `done` events), either prints `failed`, both exit,
/// or `limit` passes. Then it closes both stdins, waits up to [`EXIT_GRACE`] for each to
/// exit (killing it after that), and collects the exit codes and `exit` events.
pub fn pair(a: Command, b: Command, dir: &TestDir, limit: Duration) -> PairOutcome {
    pair_with(a, b, dir, limit, PairOptions::default())
}

/// [`pair`] with [`PairOptions`].
pub fn pair_with(
    a: Command,
    b: Command,
    dir: &TestDir,
    limit: Duration,
    options: PairOptions<'_>,
) -> PairOutcome {
    let PairOptions {
        stop_on_failed,
        rewrite,
        browsers,
        restarts,
        linger,
    } = options;
    let mut session = Session::start(a, b, dir, rewrite);
    let deadline = session.start + limit;
    let mut complete_at: Option<Instant> = None;
    // Restarts not yet sent, latest first (so the next one is popped from the end).
    let mut pending = restarts.clone();
    pending.sort_by_key(|(_, delay)| std::cmp::Reverse(*delay));
    let stop = loop {
        let both_connected = match (session.sides[0].connected_at, session.sides[1].connected_at) {
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        };
        if let Some(both) = both_connected {
            while let Some(&(side, delay)) = pending.last()
                && Instant::now() >= both + delay
            {
                pending.pop();
                let i = idx(side);
                session.procs[i].send_line(r#"{"cmd":"restart"}"#);
                session.sides[i].restart_sent_at.push(Instant::now());
            }
        }
        let [sa, sb] = &session.sides;
        if !restarts.is_empty() {
            if !sa.errors.is_empty() {
                break StopReason::Failed(Side::A);
            }
            if !sb.errors.is_empty() {
                break StopReason::Failed(Side::B);
            }
            let last_sent = sa.restart_sent_at.iter().chain(&sb.restart_sent_at).max();
            let side_complete = |side: Side, s: &SideOutcome| {
                let Some(at) = s.reconnected_at else {
                    return false;
                };
                if last_sent.is_none_or(|sent| at < *sent) {
                    return false;
                }
                if browsers.contains(&side) {
                    s.stats_after_restart
                } else if browsers.is_empty() {
                    s.recv_after_restart > 0 && !s.echo_ok_after_restart.is_empty()
                } else {
                    s.recv_after_restart > 0
                }
            };
            if pending.is_empty() && side_complete(Side::A, sa) && side_complete(Side::B, sb) {
                break StopReason::Complete;
            }
        } else if browsers.is_empty() {
            if complete_at.is_none()
                && sa.connected
                && sb.connected
                && sa.recv > 0
                && sb.recv > 0
                && sa.echo_ok
                && sb.echo_ok
            {
                complete_at = Some(Instant::now());
            }
            if let Some(at) = complete_at
                && ((sa.done && sb.done) || at.elapsed() >= DONE_GRACE)
            {
                break StopReason::Complete;
            }
        } else {
            let side_complete = |side: Side, s: &SideOutcome| {
                if browsers.contains(&side) {
                    s.connected && s.done
                } else {
                    s.connected && s.recv > 0
                }
            };
            if side_complete(Side::A, sa) && side_complete(Side::B, sb) {
                break StopReason::Complete;
            }
        }
        if stop_on_failed {
            if sa.failed.is_some() {
                break StopReason::Failed(Side::A);
            }
            if sb.failed.is_some() {
                break StopReason::Failed(Side::B);
            }
        }
        if session.eof[0] && session.eof[1] {
            break StopReason::BothExited;
        }
        let now = Instant::now();
        if now >= deadline {
            break StopReason::Limit;
        }
        let mut until = complete_at.map_or(deadline, |at| deadline.min(at + DONE_GRACE));
        if let (Some(both), Some((_, delay))) = (both_connected, pending.last()) {
            until = until.min(both + *delay);
        }
        if !session.next_line(until) {
            break StopReason::BothExited;
        }
    };
    if stop == StopReason::Complete && !linger.is_zero() {
        let until = Instant::now() + linger;
        while Instant::now() < until && session.next_line(until) {}
    }
    session.finish(stop)
}

/// Two protocol peers started and signalled as by [`pair`], for a caller that decides when
/// to stop: it reads lines with [`run_until`](Self::run_until), looks at what each side did
/// ([`side`](Self::side), [`timeline`](Self::timeline)), may kill a side
/// ([`kill`](Self::kill)), and ends with [`finish`](Self::finish). Dropping it kills both
/// processes.
pub struct Session<'a> {
    procs: [PeerProcess; 2],
    rx: Receiver<PeerLine>,
    sides: [SideOutcome; 2],
    eof: [bool; 2],
    timeline: Vec<(Side, Instant, Value)>,
    rewrite: Option<Rewrite<'a>>,
    start: Instant,
    log_dir: PathBuf,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("procs", &self.procs)
            .field("eof", &self.eof)
            .field("log_dir", &self.log_dir)
            .finish()
    }
}

impl<'a> Session<'a> {
    /// Starts `a` (side A) and `b` (side B) with their logs in `dir`; signalling lines are
    /// forwarded verbatim, or as `rewrite` returns them.
    pub fn start(a: Command, b: Command, dir: &TestDir, rewrite: Option<Rewrite<'a>>) -> Self {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        let procs = [
            PeerProcess::spawn(a, dir, "A", Side::A, tx.clone()),
            PeerProcess::spawn(b, dir, "B", Side::B, tx),
        ];
        let sides = [SideOutcome::new(&procs[0]), SideOutcome::new(&procs[1])];
        Session {
            procs,
            rx,
            sides,
            eof: [false, false],
            timeline: Vec::new(),
            rewrite,
            start,
            log_dir: dir.path().to_owned(),
        }
    }

    /// When both processes were started.
    pub fn started(&self) -> Instant {
        self.start
    }

    /// What one side did so far.
    pub fn side(&self, side: Side) -> &SideOutcome {
        &self.sides[idx(side)]
    }

    /// Every event line of both sides so far, with the side and when it was read.
    pub fn timeline(&self) -> &[(Side, Instant, Value)] {
        &self.timeline
    }

    /// Whether a side's stdout has ended (it exited or was killed).
    pub fn exited(&self, side: Side) -> bool {
        self.eof[idx(side)]
    }

    /// The process of one side (for its pid, logs and report).
    pub fn process(&mut self, side: Side) -> &mut PeerProcess {
        &mut self.procs[idx(side)]
    }

    /// Reads and handles lines until `stop` holds (true), `until` passes or both sides'
    /// stdouts end (false unless `stop` then holds).
    pub fn run_until(&mut self, until: Instant, mut stop: impl FnMut(&Self) -> bool) -> bool {
        loop {
            if stop(self) {
                return true;
            }
            if Instant::now() >= until || (self.eof[0] && self.eof[1]) || !self.next_line(until) {
                return stop(self);
            }
        }
    }

    /// Kills one side now (SIGKILL, with its stdin still open, so that it gets no chance
    /// to shut down) and reaps it; returns when it was killed.
    pub fn kill(&mut self, side: Side) -> Instant {
        self.procs[idx(side)].kill();
        Instant::now()
    }

    /// Waits for one line until `until` and handles it (forwarding signalling lines).
    /// Returns false if the channel is closed (both readers gone).
    fn next_line(&mut self, until: Instant) -> bool {
        match self
            .rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            Ok(line) => {
                self.handle(line, true);
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    fn handle(&mut self, line: PeerLine, forward: bool) {
        let i = idx(line.side);
        let o = idx(line.side.other());
        match &line.output {
            Output::Eof => self.eof[i] = true,
            Output::NotJson(raw) => self.sides[i].bad_lines.push(raw.clone()),
            Output::Json(value) => {
                let Some(obj) = value.as_object() else {
                    self.sides[i].bad_lines.push(line.raw.clone());
                    return;
                };
                if obj.contains_key("event") {
                    self.sides[i].record_event(value, line.at);
                    self.timeline.push((line.side, line.at, value.clone()));
                } else {
                    let sides = &mut self.sides;
                    if obj.contains_key("ufrag") && sides[i].description.is_none() {
                        sides[i].description = Some(value.clone());
                        sides[i].description_at = Some(line.at);
                    }
                    if !SIGNAL_KEYS.iter().any(|k| obj.contains_key(*k)) {
                        sides[i].bad_lines.push(line.raw.clone());
                    }
                    sides[i].signalling.push(line.raw.clone());
                    if forward {
                        let text = self
                            .rewrite
                            .as_mut()
                            .and_then(|f| f(line.side, value))
                            .map_or_else(|| line.raw.clone(), |v| v.to_string());
                        if !self.procs[o].send_line(&text) {
                            sides[o].undelivered += 1;
                        }
                    }
                }
            }
        }
    }

    /// Shuts down: closes both stdins, keeps reading (exit events, late lines) until both
    /// stdouts end or [`EXIT_GRACE`] passes, kills whatever is left, and returns what both
    /// sides did, with `stop` as the reason the caller stopped.
    pub fn finish(mut self, stop: StopReason) -> PairOutcome {
        let elapsed = self.start.elapsed();
        for p in self.procs.iter_mut() {
            p.close_stdin();
        }
        let grace_end = Instant::now() + EXIT_GRACE;
        while !(self.eof[0] && self.eof[1]) {
            let now = Instant::now();
            if now >= grace_end {
                break;
            }
            match self.rx.recv_timeout(grace_end - now) {
                Ok(line) => self.handle(line, false),
                Err(_) => break,
            }
        }
        for i in 0..2 {
            let left = grace_end.saturating_duration_since(Instant::now());
            let status = self.procs[i].stop(left);
            self.sides[i].exit_code = status.code();
            self.sides[i].killed = self.procs[i].was_killed();
        }
        // Lines read just before a kill.
        while let Ok(line) = self.rx.try_recv() {
            self.handle(line, false);
        }

        // Connection times from when the driver had both descriptions.
        let both = match (self.sides[0].description_at, self.sides[1].description_at) {
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        };
        let start = self.start;
        for s in self.sides.iter_mut() {
            s.failed_after = s.failed_at.map(|at| at.saturating_duration_since(start));
            s.connect_time = match (both, s.connected_at) {
                (Some(both), Some(at)) => Some(at.saturating_duration_since(both)),
                _ => None,
            };
        }

        let [a, b] = self.sides.clone();
        PairOutcome {
            a,
            b,
            stop,
            elapsed,
            log_dir: self.log_dir.clone(),
        }
    }
}

fn idx(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
