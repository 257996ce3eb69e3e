//! Debian's coturn `turnserver` on loopback, as a STUN and TURN server for interop tests.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{free_port, port_is_free};
use crate::process::{ChildGuard, TestDir};
use crate::stun_probe;

/// The long-term-credential user name [`Coturn`] accepts.
pub const COTURN_USER: &str = "test";
/// The password of [`COTURN_USER`].
pub const COTURN_PASSWORD: &str = "test";
/// The realm [`Coturn`] announces.
pub const COTURN_REALM: &str = "librice.test";

/// How long one start attempt may take to answer STUN.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many ports are tried (another process may take a port between the probe and
/// turnserver's bind).
const START_ATTEMPTS: usize = 3;
/// How long one readiness probe waits for its response.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Pause between two rounds of readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// A running coturn `turnserver`, killed when dropped.
///
/// It runs in the foreground with no configuration file (`-n`): STUN and TURN over UDP and
/// TCP on one free port of 127.0.0.1 and, when the machine has it, ::1; long-term
/// credentials [`COTURN_USER`]:[`COTURN_PASSWORD`] in realm [`COTURN_REALM`]; relaying only
/// on loopback; no TLS, DTLS, CLI, RFC 5780 or SOFTWARE attribute; pid file, user database
/// and log in the test's [`TestDir`]. [`Coturn::start`] returns once it answers a STUN
/// Binding request on every address it listens on, over UDP and TCP.
#[derive(Debug)]
pub struct Coturn {
    process: ChildGuard,
    port: u16,
    ipv6: bool,
    tls_port: Option<u16>,
}

impl Coturn {
    /// Starts `turnserver` (the path [`require_tool`](crate::require_tool) found) and waits
    /// until it answers. Listens on ::1 too when `ipv6` is true. Panics, quoting its logs,
    /// if it does not come up.
    pub fn start(turnserver: &Path, dir: &TestDir, ipv6: bool) -> Coturn {
        Self::start_with(turnserver, dir, ipv6, &[])
    }

    /// [`Coturn::start`] with extra `turnserver` arguments (e.g. short lifetimes:
    /// `--max-allocate-lifetime`, `--permission-lifetime`, `--channel-lifetime`).
    pub fn start_with(turnserver: &Path, dir: &TestDir, ipv6: bool, extra: &[&str]) -> Coturn {
        Self::launch(turnserver, dir, ipv6, extra, None)
    }

    /// [`Coturn::start`] with a TLS listener too, on [`Coturn::tls_addr`], with a
    /// self-signed certificate made by `openssl` (the path
    /// [`require_tool`](crate::require_tool) found) in `dir`.
    pub fn start_tls(turnserver: &Path, openssl: &Path, dir: &TestDir) -> Coturn {
        Self::start_tls_with(turnserver, openssl, dir, &[])
    }

    /// [`Coturn::start_tls`] with extra `turnserver` arguments.
    pub fn start_tls_with(
        turnserver: &Path,
        openssl: &Path,
        dir: &TestDir,
        extra: &[&str],
    ) -> Coturn {
        let cert = dir.path().join("turn-cert.pem");
        let key = dir.path().join("turn-key.pem");
        let status = Command::new(openssl)
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            ])
            .arg("/CN=127.0.0.1")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl could not make a certificate");
        Self::launch(turnserver, dir, false, extra, Some((cert, key)))
    }

    /// Its TLS address on 127.0.0.1, if started with [`Coturn::start_tls`].
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_port
            .map(|p| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), p))
    }

    fn launch(
        turnserver: &Path,
        dir: &TestDir,
        ipv6: bool,
        extra: &[&str],
        tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    ) -> Coturn {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port(Ipv4Addr::LOCALHOST.into());
            if ipv6 && !port_is_free(Ipv6Addr::LOCALHOST.into(), port) {
                continue;
            }
            let tls_port = tls.as_ref().map(|_| free_port(Ipv4Addr::LOCALHOST.into()));
            let mut cmd = Command::new(turnserver);
            let mut args = turnserver_args(dir, port, ipv6);
            if let (Some((cert, key)), Some(tls_port)) = (&tls, tls_port) {
                args.retain(|a| a != "--no-tls");
                args.push(format!("--tls-listening-port={tls_port}").into());
                let mut c = OsString::from("--cert=");
                c.push(cert);
                let mut k = OsString::from("--pkey=");
                k.push(key);
                args.extend([c, k]);
            }
            cmd.args(args);
            cmd.args(extra);
            let mut coturn = Coturn {
                process: ChildGuard::spawn(&mut cmd, dir, "turnserver"),
                port,
                ipv6,
                tls_port,
            };
            match coturn.wait_ready(READY_TIMEOUT) {
                Ok(()) => return coturn,
                Err(why) => failures.push(format!("{why}: {}", coturn.process.report())),
            }
        }
        panic!(
            "coturn did not come up in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n\n")
        );
    }

    /// The port it serves STUN and TURN on, over UDP and TCP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address on 127.0.0.1.
    pub fn addr_v4(&self) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), self.port)
    }

    /// Its address on ::1, if it was started with IPv6.
    pub fn addr_v6(&self) -> Option<SocketAddr> {
        self.ipv6
            .then(|| SocketAddr::new(Ipv6Addr::LOCALHOST.into(), self.port))
    }

    /// Its address in the family of `ip` (127.0.0.1 or ::1). Panics for IPv6 if it was
    /// started without.
    pub fn addr_for(&self, ip: IpAddr) -> SocketAddr {
        match ip {
            IpAddr::V4(_) => self.addr_v4(),
            IpAddr::V6(_) => self.addr_v6().expect("coturn was started with IPv6"),
        }
    }

    /// The running process, for its log paths and [`ChildGuard::report`].
    pub fn process(&mut self) -> &mut ChildGuard {
        &mut self.process
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr_v4())
            .chain(self.addr_v6())
            .collect()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        // Each listener must answer once, over UDP and over TCP.
        let mut pending: Vec<(SocketAddr, bool)> = self
            .addrs()
            .into_iter()
            .flat_map(|addr| [(addr, false), (addr, true)])
            .collect();
        while !pending.is_empty() {
            if let Some(status) = self.process.try_status() {
                return Err(format!("turnserver exited with {status}"));
            }
            // coturn keeps retrying a port it cannot bind instead of exiting, and whoever
            // holds the port might answer the probes in its place.
            let logs = self.process.stdout() + &self.process.stderr();
            if logs.contains("Address already in use") {
                return Err(format!("turnserver cannot bind port {}", self.port));
            }
            if Instant::now() >= deadline {
                let what: Vec<String> = pending
                    .iter()
                    .map(|(addr, tcp)| format!("{} {addr}", if *tcp { "TCP" } else { "UDP" }))
                    .collect();
                return Err(format!(
                    "turnserver did not answer STUN within {timeout:?} on {}",
                    what.join(", ")
                ));
            }
            pending.retain(|&(addr, tcp)| {
                let answer = if tcp {
                    stun_probe::binding_over_tcp(addr, PROBE_TIMEOUT)
                } else {
                    stun_probe::binding_over_udp(addr, PROBE_TIMEOUT)
                };
                answer.is_err()
            });
            if !pending.is_empty() {
                thread::sleep(PROBE_INTERVAL);
            }
        }
        Ok(())
    }
}

/// The command line, adapted from `shared/peers/turn_server.py` (without TLS).
fn turnserver_args(dir: &TestDir, port: u16, ipv6: bool) -> Vec<OsString> {
    let in_dir = |name: &str| dir.path().join(name).into_os_string();
    let mut args: Vec<OsString> = vec!["-n".into(), "--listening-ip=127.0.0.1".into()];
    if ipv6 {
        args.push("--listening-ip=::1".into());
    }
    args.push("--relay-ip=127.0.0.1".into());
    if ipv6 {
        args.push("--relay-ip=::1".into());
    }
    args.extend(
        [
            format!("--listening-port={port}"),
            "--min-port=49152".to_owned(),
            "--max-port=65535".to_owned(),
            "--lt-cred-mech".to_owned(),
            format!("--user={COTURN_USER}:{COTURN_PASSWORD}"),
            format!("--realm={COTURN_REALM}"),
            "--fingerprint".to_owned(),
            // coturn refuses loopback peers by default; the tests' agents live on loopback.
            "--allow-loopback-peers".to_owned(),
            "--no-cli".to_owned(),
            "--no-rfc5780".to_owned(),
            "--no-software-attribute".to_owned(),
            "--no-tls".to_owned(),
            "--no-dtls".to_owned(),
            "--log-file=stdout".to_owned(),
            "--simple-log".to_owned(),
        ]
        .map(OsString::from),
    );
    let mut pidfile = OsString::from("--pidfile=");
    pidfile.push(in_dir("turnserver.pid"));
    let mut userdb = OsString::from("--userdb=");
    userdb.push(in_dir("turndb"));
    args.extend([pidfile, userdb]);
    args
}
