//! librice's `iceserver` (an ICE-lite echo server on one UDP port, `librice::Endpoint`) and
//! its clients: [`IceServer`] runs the server; [`serve_at_once`] pairs many clients with a
//! session each at the same time, every pairing driven by [`pair_with`] against an
//! `iceserver --connect` relay; [`check_session`] judges one session, including that the
//! server echoed only its own client's data.

use std::net::SocketAddr;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pairing::{PairOptions, PairOutcome, Side, StopReason, pair_with};
use crate::{ChildGuard, TestDir, bin_path};

/// How long the server may take to print its `listening` line.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `iceserver`, killed when dropped.
#[derive(Debug)]
pub struct IceServer {
    process: ChildGuard,
    udp: Vec<SocketAddr>,
    signal: SocketAddr,
}

impl IceServer {
    /// Starts `iceserver` with `args` and waits for its `listening` line; panics, quoting
    /// its logs, if it does not come.
    pub fn start(dir: &TestDir, args: &[&str]) -> IceServer {
        let mut process = ChildGuard::spawn(
            Command::new(bin_path("iceserver")).args(args),
            dir,
            "iceserver",
        );
        let line = process
            .wait_for_stdout_line(READY_TIMEOUT, |l| l.contains("\"listening\""))
            .unwrap_or_else(|| panic!("iceserver did not start: {}", process.report()));
        let value: Value = serde_json::from_str(&line).expect("the listening line is JSON");
        let addr = |v: &Value| -> SocketAddr {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("not an address in {line}"))
        };
        let udp = value["udp"]
            .as_array()
            .map(|l| l.iter().map(addr).collect())
            .unwrap_or_default();
        let signal = addr(&value["signal"]);
        IceServer {
            process,
            udp,
            signal,
        }
    }

    /// The first UDP address served.
    pub fn udp(&self) -> SocketAddr {
        self.udp[0]
    }

    /// The TCP signalling address.
    pub fn signal(&self) -> SocketAddr {
        self.signal
    }

    /// `iceserver --connect SIGNAL`: one session as a stdio peer process.
    pub fn relay(&self) -> Command {
        let mut cmd = Command::new(bin_path("iceserver"));
        cmd.arg("--connect").arg(self.signal.to_string());
        cmd
    }

    /// The server process (its logs, its report).
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }
}

/// One client for [`serve_at_once`].
#[derive(Debug)]
pub struct Client {
    /// For messages, e.g. `libnice-3`.
    pub label: String,
    /// The peer process (a full agent, controlling).
    pub command: Command,
    /// The name in its PING payloads (`--name`); `None` for a browser.
    pub name: Option<String>,
}

impl Client {
    /// A client that pings with `--name name` (added here to `command`).
    pub fn named(label: &str, mut command: Command, name: &str) -> Client {
        command.args(["--name", name]);
        Client {
            label: label.to_owned(),
            command,
            name: Some(name.to_owned()),
        }
    }

    /// A browser client (Chromium): no PINGs, data judged by its `done`.
    pub fn browser(label: &str, command: Command) -> Client {
        Client {
            label: label.to_owned(),
            command,
            name: None,
        }
    }
}

/// One client's pairing with its session (client side A, server relay side B).
#[derive(Debug)]
pub struct SessionResult {
    /// The client's label.
    pub label: String,
    /// The client's PING name (`None` for a browser).
    pub name: Option<String>,
    /// The pairing.
    pub outcome: PairOutcome,
}

impl SessionResult {
    /// The session's name, from its `session` event (`iceserver-N`).
    pub fn server_name(&self) -> Option<&str> {
        self.outcome
            .b
            .events
            .iter()
            .find(|e| e["event"] == "session")?["name"]
            .as_str()
    }
}

/// Pairs every client with a session of `server`, all at once (a thread each), and returns
/// the outcomes in the clients' order and the time from the start until every side of
/// every pairing was connected (`None` if one never was).
pub fn serve_at_once(
    server: &IceServer,
    clients: Vec<Client>,
    dir: &TestDir,
    limit: Duration,
) -> (Vec<SessionResult>, Option<Duration>) {
    let start = Instant::now();
    let results: Vec<SessionResult> = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let relay = server.relay();
                scope.spawn(move || {
                    let browsers = if client.name.is_none() {
                        vec![Side::A]
                    } else {
                        Vec::new()
                    };
                    let options = PairOptions {
                        browsers,
                        ..PairOptions::default()
                    };
                    let outcome = pair_with(client.command, relay, dir, limit, options);
                    SessionResult {
                        label: client.label,
                        name: client.name,
                        outcome,
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a pairing thread panicked"))
            .collect()
    });
    let all_connected = results
        .iter()
        .flat_map(|r| [r.outcome.a.connected_at, r.outcome.b.connected_at])
        .collect::<Option<Vec<Instant>>>()
        .and_then(|at| at.into_iter().max())
        .map(|last| last.saturating_duration_since(start));
    (results, all_connected)
}

/// Judges one session: both sides connected and the pairing complete (data both ways:
/// `echo_ok` on both sides, or a browser's `done` and data at the server); the server's
/// selected pair on `udp`; and every datagram either side received is its peer's PING or
/// the echo of its own PING (a browser's: DTLS records only), so that the session echoed
/// only its own client's data.
pub fn check_session(r: &SessionResult, udp: SocketAddr) -> Result<(), String> {
    let (client, session) = (&r.outcome.a, &r.outcome.b);
    let fail = |what: String| Err(format!("{}: {what}\n{}", r.label, r.outcome.report()));
    if r.outcome.stop != StopReason::Complete || !client.connected || !session.connected {
        return fail("the pairing did not complete".into());
    }
    let base = session
        .connected_event
        .as_ref()
        .and_then(|e| e["local_base"].as_str());
    if base != Some(udp.to_string().as_str()) {
        return fail(format!("the session's pair is on {base:?}, not {udp}"));
    }
    let Some(server_name) = r.server_name() else {
        return fail("the session printed no name".into());
    };
    match &r.name {
        Some(name) => {
            if !(client.recv > 0 && client.echo_ok && session.recv > 0 && session.echo_ok) {
                return fail("no data both ways".into());
            }
            if let Some(d) = foreign(&session.recv_data, name, server_name) {
                return fail(format!("{server_name} received someone else's data: {d:?}"));
            }
            if let Some(d) = foreign(&client.recv_data, server_name, name) {
                return fail(format!("{name} received someone else's data: {d:?}"));
            }
        }
        None => {
            if !(client.done && session.recv > 0) {
                return fail("no data both ways".into());
            }
            if let Some(d) = not_dtls(&session.recv_data) {
                return fail(format!(
                    "{server_name} got more than its browser's DTLS: {d:?}"
                ));
            }
        }
    }
    Ok(())
}

/// The first of `received` (the `data` of `recv` events) that is neither a PING of `peer`
/// nor the echo of a PING of `me`.
fn foreign<'a>(received: &'a [String], peer: &str, me: &str) -> Option<&'a String> {
    let ping = format!("PING:{peer}:");
    let echo = format!("ECHO:PING:{me}:");
    received
        .iter()
        .find(|d| !d.starts_with(&ping) && !d.starts_with(&echo))
}

/// The first of `received` that is not a DTLS record (RFC 7983: first byte 20 to 63).
fn not_dtls(received: &[String]) -> Option<&String> {
    received.iter().find(|d| {
        d.chars()
            .next()
            .is_none_or(|c| !(20..=63).contains(&u32::from(c)))
    })
}

/// Checks every session ([`check_session`]) and that their names differ; panics with every
/// problem found. Prints one line per client kind: how many, all passed.
pub fn assert_sessions(
    results: &[SessionResult],
    udp: SocketAddr,
    all_connected: Option<Duration>,
) {
    let mut problems: Vec<String> = results
        .iter()
        .filter_map(|r| check_session(r, udp).err())
        .collect();
    let mut names: Vec<&str> = results
        .iter()
        .filter_map(SessionResult::server_name)
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != results.len() {
        problems.push(format!(
            "{} sessions for {} clients: {names:?}",
            names.len(),
            results.len()
        ));
    }
    let slowest = results
        .iter()
        .filter_map(|r| r.outcome.b.connect_time)
        .max();
    println!(
        "{} sessions at once on {udp}: all connected {all_connected:.1?} after the start, \
         slowest session {slowest:.1?} after signalling; {} problem(s)",
        results.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn another_sessions_data_is_foreign() {
        let own = data(&["PING:client-1:1:0", "ECHO:PING:iceserver-2:1:0"]);
        assert_eq!(foreign(&own, "client-1", "iceserver-2"), None);
        let mixed = data(&["PING:client-1:1:0", "PING:client-10:1:0"]);
        assert_eq!(
            foreign(&mixed, "client-1", "iceserver-2").map(String::as_str),
            Some("PING:client-10:1:0")
        );
        let echo_of_other = data(&["ECHO:PING:iceserver-3:1:0"]);
        assert!(foreign(&echo_of_other, "client-1", "iceserver-2").is_some());
    }

    #[test]
    fn only_dtls_records_pass() {
        assert_eq!(not_dtls(&data(&["\u{16}\u{fe}\u{fd}"])), None);
        assert!(not_dtls(&data(&["PING:x:1:0"])).is_some());
        assert!(not_dtls(&data(&[""])).is_some());
    }
}
