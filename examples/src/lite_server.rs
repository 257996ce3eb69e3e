//! The sessions of `iceserver` (`src/bin/iceserver.rs`): one ICE-lite agent of a
//! [`librice::Endpoint`] per client, signalled over one TCP connection in the JSON lines of
//! the interop peers (tests/interop/PROTOCOL.md) with the server in a peer's role, and the
//! protocol's data test (echo, PING). See `iceserver --help` for what a client sees.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use futures::{AsyncReadExt, StreamExt};
use librice::proto::candidate::IceCredentials;
use librice::{
    Agent, AgentEvent, AsyncTcpStream, Component, ComponentState, Endpoint, FailureReason,
    IceCandidate, Runtime, SelectedPair, Stream,
};
use serde_json::{Value, json};

use crate::protocol::{self, LineReader, round1};

/// The longest signalling line a session accepts.
pub const MAX_LINE: usize = 64 * 1024;
/// The most remote candidates a session takes.
pub const MAX_REMOTE_CANDIDATES: usize = 64;
/// How long a write to a client may take before its session is given up.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every session of a server shares.
#[derive(Debug)]
pub struct SessionConfig {
    /// The endpoint whose agents the sessions use.
    pub endpoint: Endpoint,
    /// The runtime (the endpoint's).
    pub runtime: Arc<dyn Runtime>,
    /// Send PINGs once connected.
    pub ping: bool,
    /// No loopback guard on remote candidates.
    pub allow_any: bool,
    /// Resolves when the server ends: every session then says `exit` (`timeout`).
    pub stop: Shared<oneshot::Receiver<()>>,
    /// A session whose component is not connected and whose client wrote nothing for
    /// this long ends (`exit` reason `idle`), so that clients that vanish (their
    /// connection left open, ICE never connecting or its consent lost) do not hold an
    /// agent forever. `None`: never.
    pub idle: Option<Duration>,
}

/// Writes `failed` (with `reason`) and `exit` (`refused`) to a connection the server does
/// not serve, and closes it.
pub async fn refuse(runtime: Arc<dyn Runtime>, tcp: Box<dyn AsyncTcpStream>, reason: String) {
    let (_, writer) = tcp.split();
    let mut out = Output { writer, runtime };
    if out.line(json!({"event": "failed", "reason": reason})).await {
        out.line(json!({"event": "exit", "reason": "refused", "connected": false, "done": false}))
            .await;
    }
    let _ = out.writer.close().await;
}

/// The writing half of a session's connection.
struct Output {
    writer: WriteHalf<Box<dyn AsyncTcpStream>>,
    runtime: Arc<dyn Runtime>,
}

impl Output {
    /// Writes one JSON line; false if the client is gone or took over [`WRITE_TIMEOUT`].
    async fn line(&mut self, value: Value) -> bool {
        let text = format!("{value}\n");
        let deadline = self.runtime.now() + WRITE_TIMEOUT;
        let write = async {
            self.writer.write_all(text.as_bytes()).await?;
            self.writer.flush().await
        };
        futures::select! {
            done = write.fuse() => done.is_ok(),
            () = timer(self.runtime.as_ref(), deadline).fuse() => false,
        }
    }
}

/// The signalling lines of a session's connection, as a stream.
fn lines(
    reader: ReadHalf<Box<dyn AsyncTcpStream>>,
) -> futures::stream::BoxStream<'static, Result<String, protocol::LineError>> {
    futures::stream::unfold(LineReader::new(reader, MAX_LINE), |mut r| async move {
        match r.next_line().await {
            Ok(Some(line)) => Some((Ok(line), r)),
            Ok(None) => None,
            Err(e) => Some((Err(e), r)),
        }
    })
    .boxed()
}

/// One client's session: its lite agent (one stream, one component) and its data test.
struct Session {
    name: String,
    start: Instant,
    ping: bool,
    allow_any: bool,
    out: Output,
    stream: Stream,
    component: Component,
    remote_creds: Option<IceCredentials>,
    remote_creds_at: Option<Instant>,
    remote_candidates: usize,
    connected: bool,
    pings_sent: u32,
    /// When each PING of the current round went out, by sequence number.
    ping_times: BTreeMap<u32, Instant>,
    echo_ok: bool,
    done: bool,
    restarts: u32,
    /// A restart under way: when the client's new credentials came.
    restart_at: Option<Instant>,
    /// Start PINGing (again): set on `connected` and after a restart reconnected.
    ping_start: bool,
    /// The client is gone (a write failed).
    gone: bool,
}

/// Runs session `number` (named `iceserver-<number>`) on `tcp` until it ends; returns why
/// (the reason of its `exit` line).
pub async fn run_session(
    server: &SessionConfig,
    number: u64,
    tcp: Box<dyn AsyncTcpStream>,
) -> &'static str {
    let runtime = Arc::clone(&server.runtime);
    let (reader, writer) = tcp.split();
    let mut out = Output {
        writer,
        runtime: Arc::clone(&runtime),
    };
    let built = Agent::builder()
        .endpoint(&server.endpoint)
        .lite(true)
        .build()
        .and_then(|agent| {
            let stream = agent.add_stream();
            let component = stream.add_component()?;
            let gather = stream.gather_candidates()?;
            Ok((agent, stream, component, gather))
        });
    let (agent, stream, component, gather) = match built {
        Ok(parts) => parts,
        Err(e) => {
            out.line(json!({"event": "failed", "reason": format!("cannot start an agent: {e}")}))
                .await;
            out.line(
                json!({"event": "exit", "reason": "error", "connected": false, "done": false}),
            )
            .await;
            return "error";
        }
    };
    let mut events = agent.events().fuse();
    let mut recv = component.recv().fuse();
    let mut lines = lines(reader).fuse();
    let mut session = Session {
        name: format!("iceserver-{number}"),
        start: Instant::now(),
        ping: server.ping,
        allow_any: server.allow_any,
        out,
        stream,
        component,
        remote_creds: None,
        remote_creds_at: None,
        remote_candidates: 0,
        connected: false,
        pings_sent: 0,
        ping_times: BTreeMap::new(),
        echo_ok: false,
        done: false,
        restarts: 0,
        restart_at: None,
        ping_start: false,
        gone: false,
    };
    let udp: Vec<String> = server
        .endpoint
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    session
        .emit(json!({"event": "session", "name": session.name, "udp": udp}))
        .await;
    session.describe(gather, false).await;
    let mut stop = server.stop.clone().fuse();
    // Re-armed at each line from the client and whenever it finds the component connected.
    let idle_timer = |runtime: &dyn Runtime| match server.idle {
        Some(idle) => timer(runtime, runtime.now() + idle).fuse(),
        None => futures::future::Fuse::terminated(),
    };
    let mut idle = idle_timer(runtime.as_ref());
    let mut next_ping = runtime.now();
    let mut ping_timer: futures::future::Fuse<BoxFuture<'static, ()>> =
        futures::future::Fuse::terminated();
    let reason = loop {
        if session.gone {
            break "error";
        }
        if std::mem::take(&mut session.ping_start) && session.ping {
            next_ping = runtime.now();
            ping_timer = timer(runtime.as_ref(), next_ping).fuse();
        }
        futures::select! {
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    idle = idle_timer(runtime.as_ref());
                    if let Some(reason) = session.handle_line(&line).await {
                        break reason;
                    }
                }
                Some(Err(e)) => {
                    session.emit(json!({"event": "failed", "reason": "bad_input",
                        "detail": e.to_string()})).await;
                    break "error";
                }
                None => break "stdin-eof",
            },
            event = events.next() => match event {
                Some(event) => session.handle_event(event).await,
                None => break "error",
            },
            data = recv.next() => if let Some(data) = data {
                session.handle_data(&data).await;
            },
            () = ping_timer => {
                if session.send_ping().await {
                    next_ping += protocol::PING_INTERVAL;
                    ping_timer = timer(runtime.as_ref(), next_ping).fuse();
                }
            },
            _ = stop => break "timeout",
            () = idle => {
                if session.component.state() != ComponentState::Connected {
                    break "idle";
                }
                idle = idle_timer(runtime.as_ref());
            },
        }
    };
    let mut exit = json!({"event": "exit", "reason": reason, "connected": session.connected,
        "done": session.done});
    if let Some(pair) = session.component.selected_pair() {
        exit["pairs"] = json!({"1": pair_json(&pair)});
    }
    session.emit(exit).await;
    let _ = session.out.writer.close().await;
    agent.close();
    reason
}

impl Session {
    /// Writes one line to the client (a failed write ends the session).
    async fn emit(&mut self, value: Value) {
        if !self.gone && !self.out.line(value).await {
            self.gone = true;
        }
    }

    /// Writes the description of a round of candidates (the first, or a restart's).
    async fn describe(&mut self, gather: librice::GatherStream, restart: bool) {
        let deadline = self.out.runtime.now() + WRITE_TIMEOUT;
        let collect = gather.map(|c| c.to_string()).collect::<Vec<_>>();
        let candidates = futures::select! {
            c = collect.fuse() => c,
            () = timer(self.out.runtime.as_ref(), deadline).fuse() => Vec::new(),
        };
        let creds = self.stream.local_credentials();
        let mut line = json!({"ufrag": creds.ufrag(), "pwd": creds.pwd(),
            "candidates": candidates, "end_of_candidates": true, "ice_lite": true});
        if restart {
            line["restart"] = true.into();
        }
        self.emit(line).await;
    }

    /// Applies one line from the client; returns an exit reason to stop.
    async fn handle_line(&mut self, line: &str) -> Option<&'static str> {
        if line.trim().is_empty() {
            return None;
        }
        let Some(obj) = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.as_object().cloned())
        else {
            let detail: String = line.chars().take(120).collect();
            self.emit(json!({"event": "failed", "reason": "bad_input",
                "detail": format!("not a JSON object: {detail:?}")}))
                .await;
            return Some("error");
        };
        match obj.get("cmd").and_then(Value::as_str) {
            Some("close") => return Some("close"),
            Some("restart") => {
                self.emit(json!({"event": "error", "reason": "restart_unsupported",
                    "by": "local"}))
                    .await;
                return None;
            }
            _ => {}
        }
        if let Some(send) = obj.get("send") {
            let text = send.as_str().unwrap_or_default();
            if let Err(e) = self.component.send(text.as_bytes()).await {
                eprintln!("iceserver: {}: send failed: {e}", self.name);
            }
            return None;
        }
        if obj.get("ice_lite").and_then(Value::as_bool) == Some(true) {
            // RFC 8445 §6.1.1: two lite agents cannot connect (neither checks).
            self.emit(json!({"event": "error", "reason": "peer_is_lite"}))
                .await;
        }
        if let (Some(ufrag), Some(pwd)) = (
            obj.get("ufrag").and_then(Value::as_str),
            obj.get("pwd").and_then(Value::as_str),
        ) {
            match IceCredentials::new(ufrag, pwd) {
                Ok(creds) => self.remote_credentials(creds).await,
                Err(e) => {
                    self.emit(json!({"event": "error", "reason": "bad_credentials",
                        "detail": e.to_string()}))
                        .await
                }
            }
        }
        let mut candidates: Vec<&Value> = obj
            .get("candidates")
            .and_then(Value::as_array)
            .map(|l| l.iter().collect())
            .unwrap_or_default();
        candidates.extend(obj.get("candidate"));
        for c in candidates {
            self.add_candidate(c).await;
        }
        if obj.get("end_of_candidates").and_then(Value::as_bool) == Some(true) {
            self.stream.end_of_remote_candidates();
        }
        None
    }

    /// The client's credentials: new ones after the first are its restart, which the
    /// session follows (RFC 8839 §4.4.1.1.1) with a new description.
    async fn remote_credentials(&mut self, creds: IceCredentials) {
        let changed = self.remote_creds.as_ref().is_some_and(|c| *c != creds);
        if self.remote_creds.as_ref() == Some(&creds) {
            return;
        }
        self.stream.set_remote_credentials(creds.clone());
        self.remote_creds_at.get_or_insert_with(Instant::now);
        self.remote_creds = Some(creds);
        if !changed {
            return;
        }
        self.restarts += 1;
        self.restart_at = Some(Instant::now());
        self.remote_candidates = 0;
        match self.stream.gather_candidates() {
            Ok(round) => {
                self.describe(round, true).await;
                self.emit(json!({"event": "restarted", "by": "remote"}))
                    .await;
            }
            Err(e) => {
                self.emit(json!({"event": "error", "reason": "restart_failed",
                    "detail": e.to_string()}))
                    .await
            }
        }
    }

    async fn add_candidate(&mut self, value: &Value) {
        let refuse =
            |detail: String| json!({"event": "error", "reason": "bad_candidate", "detail": detail});
        if self.remote_candidates >= MAX_REMOTE_CANDIDATES {
            let detail = format!("more than {MAX_REMOTE_CANDIDATES} candidates");
            return self.emit(refuse(detail)).await;
        }
        let Some(text) = value.as_str() else {
            return self.emit(refuse(format!("not a string: {value}"))).await;
        };
        let candidate = match IceCandidate::parse(text) {
            Ok(c) => c,
            Err(e) => return self.emit(refuse(format!("{text:?}: {e}"))).await,
        };
        if !self.allow_any
            && candidate
                .as_address()
                .is_none_or(|c| !c.address().ip().is_loopback())
        {
            eprintln!(
                "iceserver: {}: dropped non-loopback candidate {text:?}",
                self.name
            );
            return;
        }
        self.remote_candidates += 1;
        if let Err(e) = self.stream.add_remote_candidate(candidate) {
            self.emit(refuse(format!("{text:?}: {e}"))).await;
        }
    }

    async fn handle_event(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::SelectedPair { pair, .. } if !self.connected => {
                self.connected = true;
                self.ping_start = true;
                let since = self.remote_creds_at.unwrap_or_else(Instant::now);
                let line = self.pair_event("connected", &pair, since);
                self.emit(line).await;
            }
            AgentEvent::SelectedPairChanged { new, .. } => {
                if let Some(at) = self.restart_at.take() {
                    let mut line = self.pair_event("reconnected_after_restart", &new, at);
                    line["by"] = "remote".into();
                    line["restarts"] = self.restarts.into();
                    self.emit(line).await;
                    self.echo_ok = false;
                    self.ping_times.clear();
                    self.ping_start = true;
                } else {
                    let mut line = pair_json(&new);
                    line["event"] = "selected_changed".into();
                    line["component"] = 1.into();
                    self.emit(line).await;
                }
            }
            AgentEvent::ComponentFailed { reason, .. } => {
                let code = match reason {
                    FailureReason::ConsentLost => "consent_lost",
                    FailureReason::AuthenticationFailed(_) => "authentication_failed",
                    FailureReason::ChecksFailed(_) => "checks_failed",
                    FailureReason::NominationTimeout => "nomination_timeout",
                    _ => "other",
                };
                self.emit(json!({"event": "failed", "component": 1, "reason": code,
                    "detail": reason.to_string()}))
                    .await;
            }
            _ => {}
        }
    }

    /// `connected` or `reconnected_after_restart`: the pair, the server socket it uses
    /// (`local_base`), the time since `since` and since the session started.
    fn pair_event(&self, event: &str, pair: &SelectedPair, since: Instant) -> Value {
        let ms = |t: Instant| round1(t.elapsed().as_secs_f64() * 1000.0);
        let mut line = pair_json(pair);
        line["event"] = event.into();
        line["pairs"] = json!({"1": pair_json(pair)});
        line["local_base"] = pair.local_base.to_string().into();
        line["elapsed_ms"] = ms(since).into();
        line["since_start_ms"] = ms(self.start).into();
        line
    }

    async fn handle_data(&mut self, data: &[u8]) {
        self.emit(protocol::recv_event(1, data)).await;
        let Some(echo) = protocol::echo_reply(data) else {
            let Some(seq) = protocol::echoed_ping(data, &self.name, 1) else {
                return;
            };
            if std::mem::replace(&mut self.echo_ok, true) {
                return;
            }
            let after = self
                .ping_times
                .get(&seq)
                .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
            let mut line = json!({"event": "echo_ok", "component": 1,
                "echo_after_ms": round1(after), "pings_sent": self.pings_sent});
            if self.restarts > 0 {
                line["restarts"] = self.restarts.into();
            }
            self.emit(line).await;
            if !self.done {
                self.done = true;
                self.emit(json!({"event": "done", "ok": true})).await;
            }
            return;
        };
        if let Err(e) = self.component.send(&echo).await {
            eprintln!("iceserver: {}: echo failed: {e}", self.name);
        }
    }

    /// Sends the next PING unless echoed or [`protocol::MAX_PINGS`] went out; returns
    /// whether to keep pinging.
    async fn send_ping(&mut self) -> bool {
        if self.echo_ok || self.ping_times.len() as u32 >= protocol::MAX_PINGS {
            return false;
        }
        let seq = self.pings_sent;
        let payload = protocol::ping_payload(&self.name, 1, seq);
        if let Err(e) = self.component.send(payload.as_bytes()).await {
            eprintln!("iceserver: {}: ping failed: {e}", self.name);
        }
        self.pings_sent += 1;
        self.ping_times.insert(seq, Instant::now());
        true
    }
}

/// A future that completes at `deadline` on `runtime`'s clock.
pub fn timer(runtime: &dyn Runtime, deadline: Instant) -> BoxFuture<'static, ()> {
    let mut timer = runtime.new_timer(deadline);
    Box::pin(futures::future::poll_fn(move |cx| {
        timer.as_mut().poll_elapsed(cx)
    }))
}

/// A selected pair as the protocol shows it.
fn pair_json(pair: &SelectedPair) -> Value {
    json!({"local": pair.local.to_string(), "remote": pair.remote.to_string()})
}
