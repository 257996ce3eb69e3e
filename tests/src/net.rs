//! Picking ports for servers that a test starts.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

/// How many ports [`free_port`] tries before giving up.
const ATTEMPTS: usize = 100;

/// Whether `port` can be bound on `ip` for both UDP and TCP right now.
pub fn port_is_free(ip: IpAddr, port: u16) -> bool {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok()
}

/// A port on `ip` that is free for both UDP and TCP (both sockets were bound, then closed).
///
/// Another process may take the port before the caller's server binds it; launchers
/// retry with a new port when their server does not come up. Panics if no port is found.
pub fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..ATTEMPTS {
        let Ok(tcp) = TcpListener::bind(SocketAddr::new(ip, 0)) else {
            continue;
        };
        let Ok(port) = tcp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if UdpSocket::bind(SocketAddr::new(ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on {ip} after {ATTEMPTS} attempts");
}
