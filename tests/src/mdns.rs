//! Running mDNS tests where multicast works and stays on the machine: a private network
//! namespace, made by the test, with only `lo`, which gets the `MULTICAST` flag and a
//! route for 224.0.0.0/4 (Linux gives `lo` neither by default). Nothing in it reaches any
//! other host.
//!
//! A test calls [`mdns_suite`] from a plain `#[test]`: outside the namespace it re-runs
//! the binary's ignored tests named with its filter inside a new one; inside it returns
//! and those ignored tests do the work. [`ForeignHost`] is another mDNS host there.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command as Process;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use librice_proto::mdns::{MDNS_PORT, Mdns, MdnsConfig, MdnsEvent};
use socket2::{Domain, Protocol, Socket, Type};

use crate::tools::{in_ci, require_tool};

/// The variable set inside the namespace made by [`mdns_suite`].
const IN_NETNS: &str = "LIBRICE_MDNS_NETNS";

/// What runs inside the namespace before the test binary: loopback up, multicast on, a
/// multicast route (IPv4; IPv6 multicast on `lo` needs nothing more).
const SETUP: &str = "ip link set lo up && ip link set lo multicast on && \
                     ip route add 224.0.0.0/4 dev lo";

/// True inside the namespace made by [`mdns_suite`].
pub fn in_mdns_netns() -> bool {
    std::env::var_os(IN_NETNS).is_some_and(|v| v == "1")
}

/// Outside the namespace: re-runs the ignored tests of this test binary whose names
/// contain `filter` inside a new private network namespace with multicast on loopback,
/// and panics (naming `what`) if they fail. Without `unshare` or the privilege to make a
/// namespace (root, or user namespaces), it skips with a printed reason, except in CI
/// where it fails. Inside the namespace it does nothing.
pub fn mdns_suite(filter: &str, what: &str) {
    if in_mdns_netns() {
        return;
    }
    let (Some(unshare), Some(_ip)) = (
        require_tool("unshare", "util-linux"),
        require_tool("ip", "iproute2"),
    ) else {
        return;
    };
    // Root makes a plain network namespace; otherwise try a user namespace too.
    let mut prefix: Option<Vec<&str>> = None;
    for flags in [&["--net"][..], &["--user", "--map-root-user", "--net"][..]] {
        let ok = Process::new(&unshare)
            .args(flags)
            .args(["sh", "-c", SETUP])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            prefix = Some(flags.to_vec());
            break;
        }
    }
    let Some(flags) = prefix else {
        let why = "cannot make a network namespace with multicast on loopback \
                   (`unshare --net` and `ip` need root or user namespaces)";
        assert!(!in_ci(), "{why}");
        eprintln!("skipping: {why}");
        return;
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Process::new(&unshare)
        .args(&flags)
        .args([
            "sh",
            "-c",
            &format!("{SETUP} && {IN_NETNS}=1 exec \"$@\""),
            "mdns-netns",
        ])
        .arg(exe)
        .args(["--ignored", "--test-threads=1", "--nocapture", filter])
        .status()
        .expect("unshare runs");
    assert!(
        status.success(),
        "{what} failed inside the network namespace (see the output above)"
    );
}

/// Another mDNS host on the namespace's loopback: a sans-IO [`Mdns`] on its own socket
/// (0.0.0.0:5353, shared with the agents' service, joined to 224.0.0.251 on 127.0.0.1),
/// driven by a thread. It publishes and resolves what the test asks, and records the
/// goodbyes (address records with TTL 0, RFC 6762 §10.1) it hears.
pub struct ForeignHost {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<MdnsEvent>,
    goodbyes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

enum Command {
    Publish(String, IpAddr),
    Resolve(String),
}

impl ForeignHost {
    /// Starts it, with its RNG seeded with `seed`.
    pub fn start(seed: u64) -> io::Result<ForeignHost> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        socket.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)?;
        socket.set_multicast_loop_v4(true)?;
        socket.set_multicast_ttl_v4(255)?;
        socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, MDNS_PORT)).into())?;
        socket.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &Ipv4Addr::LOCALHOST)?;
        socket.set_read_timeout(Some(Duration::from_millis(5)))?;
        let socket: UdpSocket = socket.into();
        let (commands, command_rx) = mpsc::channel();
        let (event_tx, events) = mpsc::channel();
        let goodbyes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let config = MdnsConfig::default()
            .rng_seed(seed)
            .ipv6(false)
            .unicast_responses(false);
        let thread = {
            let (goodbyes, stop) = (Arc::clone(&goodbyes), Arc::clone(&stop));
            std::thread::spawn(move || {
                run_foreign(
                    socket,
                    Mdns::new(config),
                    command_rx,
                    event_tx,
                    goodbyes,
                    stop,
                )
            })
        };
        Ok(ForeignHost {
            commands,
            events,
            goodbyes,
            stop,
            thread: Some(thread),
        })
    }

    /// Publishes `name` for `ip`.
    pub fn publish(&self, name: &str, ip: IpAddr) {
        let _ = self.commands.send(Command::Publish(name.to_owned(), ip));
    }

    /// Resolves `name`.
    pub fn resolve(&self, name: &str) {
        let _ = self.commands.send(Command::Resolve(name.to_owned()));
    }

    /// The next event of its `Mdns`, waiting at most `limit`.
    pub fn next_event(&self, limit: Duration) -> Option<MdnsEvent> {
        self.events.recv_timeout(limit).ok()
    }

    /// Whether it heard a goodbye for `name` (case-insensitive).
    pub fn heard_goodbye(&self, name: &str) -> bool {
        let names = self.goodbyes.lock().unwrap_or_else(|e| e.into_inner());
        names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl Drop for ForeignHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_foreign(
    socket: UdpSocket,
    mut mdns: Mdns,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<MdnsEvent>,
    goodbyes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 9000];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Ok(command) = commands.try_recv() {
            let done = match command {
                Command::Publish(name, ip) => mdns.publish(now, &name, &[ip]),
                Command::Resolve(name) => mdns.resolve(now, &name),
            };
            if let Err(e) = done {
                eprintln!("foreign mDNS host refused a command: {e}");
            }
        }
        if mdns.poll_timeout().is_some_and(|t| t <= now) {
            mdns.handle_timeout(now);
        }
        while let Some(t) = mdns.poll_transmit(now) {
            let _ = socket.send_to(&t.data, t.to);
        }
        while let Some(event) = mdns.poll_event() {
            let _ = events.send(event);
        }
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            let names = goodbye_names(&buf[..len]);
            if !names.is_empty() {
                goodbyes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(names);
            }
            mdns.handle_incoming(Instant::now(), from, &buf[..len]);
        }
    }
}

/// The names of the A/AAAA answers with TTL 0 of a DNS response (empty for anything
/// else, or anything malformed).
fn goodbye_names(msg: &[u8]) -> Vec<String> {
    let be16 =
        |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?])) };
    let mut out = Vec::new();
    let (Some(flags), Some(qd), Some(an)) = (be16(2), be16(4), be16(6)) else {
        return out;
    };
    if flags & 0x8000 == 0 {
        return out;
    }
    let mut at = 12;
    for _ in 0..qd {
        let Some((_, end)) = read_name(msg, at) else {
            return out;
        };
        at = end + 4;
    }
    for _ in 0..an {
        let Some((name, end)) = read_name(msg, at) else {
            return out;
        };
        let (Some(rtype), Some(ttl_hi), Some(ttl_lo), Some(len)) =
            (be16(end), be16(end + 4), be16(end + 6), be16(end + 8))
        else {
            return out;
        };
        if matches!(rtype, 1 | 28) && ttl_hi == 0 && ttl_lo == 0 {
            out.push(name);
        }
        at = end + 10 + usize::from(len);
    }
    out
}

/// A (possibly compressed) name at `at`: its text and where the field after it starts.
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(at)?;
        if len & 0xc0 == 0xc0 {
            let target = usize::from(u16::from_be_bytes([len & 0x3f, *msg.get(at + 1)?]));
            end.get_or_insert(at + 2);
            at = target;
            continue;
        }
        if len == 0 {
            return Some((labels.join("."), end.unwrap_or(at + 1)));
        }
        let label = msg.get(at + 1..at + 1 + usize::from(len))?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += 1 + usize::from(len);
    }
    None
}
