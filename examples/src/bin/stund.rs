//! `stund`: a STUN server (RFC 8489 Binding) on UDP and TCP, on one address and port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use librice_examples::{parse_socket_addr, usage_error};
use librice_proto::stun::server::{BindingServer, Outcome};
use librice_proto::stun::{FrameKind, FramingMode, StreamFramer};

const USAGE: &str = "\
usage: stund ADDR

Serves STUN Binding requests (RFC 8489) over UDP and TCP on ADDR until killed,
answering each with the client's address in XOR-MAPPED-ADDRESS.

  ADDR    IP:PORT or [IPv6]:PORT to listen on, e.g. 127.0.0.1:3478 or [::1]:3478

Prints `listening on ADDR` once both sockets are bound. Malformed input is dropped
or answered with the error RFC 8489 prescribes; the server keeps serving.

options:
  -h, --help    print this help";

/// Most TCP connections served at once; more are closed on accept.
const MAX_TCP_CONNECTIONS: usize = 256;
/// A TCP connection idle this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    let mut addr = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ if arg.starts_with('-') => usage_error(&format!("unknown option {arg}"), USAGE),
            _ if addr.is_none() => {
                addr =
                    Some(parse_socket_addr(&arg, "ADDR").unwrap_or_else(|e| usage_error(&e, USAGE)))
            }
            _ => usage_error("only one ADDR may be given", USAGE),
        }
    }
    let Some(addr) = addr else {
        usage_error("ADDR is required", USAGE);
    };
    if let Err(e) = run(addr) {
        eprintln!("stund: {e}");
        std::process::exit(1);
    }
}

fn run(addr: SocketAddr) -> std::io::Result<()> {
    let udp = UdpSocket::bind(addr)?;
    let addr = udp.local_addr()?;
    let tcp = TcpListener::bind(addr)?;
    let server = Arc::new(BindingServer::default().with_software("librice stund"));
    println!("listening on {addr}");

    let tcp_server = Arc::clone(&server);
    std::thread::spawn(move || serve_tcp(tcp, tcp_server));
    serve_udp(udp, &server)
}

fn serve_udp(socket: UdpSocket, server: &BindingServer) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(1500);
    loop {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            // ICMP errors from earlier sends surface here on some systems: keep serving.
            Err(e) if is_transient(&e) => continue,
            Err(e) => return Err(e),
        };
        out.clear();
        if answers(server.handle(from, &buf[..len], &mut out))
            && let Err(e) = socket.send_to(&out, from)
        {
            eprintln!("stund: sending to {from}: {e}");
        }
    }
}

fn serve_tcp(listener: TcpListener, server: Arc<BindingServer>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("stund: accept: {e}");
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_TCP_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue; // dropping the stream closes it
        }
        let server = Arc::clone(&server);
        let active = Arc::clone(&active);
        std::thread::spawn(move || {
            if let Err(e) = serve_connection(stream, &server)
                && !is_transient(&e)
            {
                eprintln!("stund: TCP connection: {e}");
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Serves one TCP connection: STUN messages back to back (RFC 8489 §6.2.2).
fn serve_connection(mut stream: TcpStream, server: &BindingServer) -> std::io::Result<()> {
    let peer = stream.peer_addr()?;
    stream.set_read_timeout(Some(TCP_IDLE_TIMEOUT))?;
    let mut framer = StreamFramer::new(FramingMode::Stun);
    let mut buf = vec![0u8; 16384];
    let mut out = Vec::with_capacity(1500);
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        framer.push(&buf[..n]);
        while let Some(frame) = framer.next_frame() {
            let Ok(frame) = frame else {
                // Not STUN: the stream cannot be resynchronised, so close it.
                return Ok(());
            };
            debug_assert_eq!(frame.kind, FrameKind::Stun);
            out.clear();
            if answers(server.handle(peer, frame.bytes, &mut out)) {
                stream.write_all(&out)?;
            }
        }
    }
}

fn answers(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Success | Outcome::Error(_))
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | Interrupted
            | WouldBlock
            | TimedOut
    )
}
