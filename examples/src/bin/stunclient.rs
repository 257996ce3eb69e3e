//! `stunclient`: sends one STUN Binding request and prints the mapped address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use librice_examples::{os_random, parse_socket_addr, usage_error};
use librice_proto::stun::attr::{ErrorCode, MappedAddress, Software, XorMappedAddress};
use librice_proto::stun::transaction::{
    ResponseOutcome, RetransmitConfig, TransactionEvent, Transactions,
};
use librice_proto::stun::{
    FramingMode, Message, MessageClass, MessageType, MessageWriter, StreamFramer, TransactionId,
};
use librice_proto::{Transmit, TransportType};

const USAGE: &str = "\
usage: stunclient [--tcp] [--rto-ms N] SERVER

Sends one STUN Binding request (RFC 8489) to SERVER and prints the mapped
address the server saw, as IP:PORT ([IP]:PORT for IPv6), on the last line of
stdout. Exits 0 on success; on an error response or a timeout, prints a one-line
reason to stderr and exits 1 (2 for a bad command line).

  SERVER        IP:PORT or [IPv6]:PORT, e.g. 127.0.0.1:3478 or [::1]:3478

options:
  --tcp         use TCP instead of UDP (RFC 8489 §6.2.2; times out after 39.5 s)
  --rto-ms N    initial UDP retransmission timeout, default 500 (RFC 8489 §6.2.1:
                7 requests, then failure after 79 RTOs, 39.5 s by default)
  -h, --help    print this help";

struct Options {
    server: SocketAddr,
    transport: TransportType,
    config: RetransmitConfig,
}

fn main() {
    let options = parse_args();
    match run(&options) {
        Ok(mapped) => println!("{mapped}"),
        Err(reason) => {
            eprintln!("stunclient: {reason}");
            std::process::exit(1);
        }
    }
}

fn parse_args() -> Options {
    let mut server = None;
    let mut transport = TransportType::Udp;
    let mut config = RetransmitConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--tcp" => transport = TransportType::Tcp,
            "--rto-ms" => {
                let ms = args
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|&ms| ms > 0)
                    .unwrap_or_else(|| usage_error("--rto-ms needs a positive number", USAGE));
                config.rto = Duration::from_millis(ms);
            }
            _ if arg.starts_with('-') => usage_error(&format!("unknown option {arg}"), USAGE),
            _ if server.is_none() => {
                server = Some(
                    parse_socket_addr(&arg, "SERVER").unwrap_or_else(|e| usage_error(&e, USAGE)),
                )
            }
            _ => usage_error("only one SERVER may be given", USAGE),
        }
    }
    let server = server.unwrap_or_else(|| usage_error("SERVER is required", USAGE));
    Options {
        server,
        transport,
        config,
    }
}

/// The connection the request goes over.
enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream, StreamFramer),
}

fn run(options: &Options) -> Result<SocketAddr, String> {
    let server = options.server;
    let unspecified: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid address")
    } else {
        "[::]:0".parse().expect("valid address")
    };
    let (mut link, local) = match options.transport {
        TransportType::Udp => {
            let socket =
                UdpSocket::bind(unspecified).map_err(|e| format!("binding a UDP socket: {e}"))?;
            socket
                .connect(server)
                .map_err(|e| format!("setting UDP peer {server}: {e}"))?;
            let local = socket.local_addr().map_err(|e| e.to_string())?;
            (Link::Udp(socket), local)
        }
        TransportType::Tcp => {
            let stream = TcpStream::connect_timeout(&server, options.config.reliable_timeout)
                .map_err(|e| format!("connecting to {server} over TCP: {e}"))?;
            let local = stream.local_addr().map_err(|e| e.to_string())?;
            (
                Link::Tcp(stream, StreamFramer::new(FramingMode::Stun)),
                local,
            )
        }
    };

    let mut request = Vec::with_capacity(64);
    let txid = TransactionId(os_random());
    let mut w = MessageWriter::new(&mut request, MessageType::BINDING_REQUEST, txid);
    w.add(&Software("librice stunclient"))
        .map_err(|e| e.to_string())?;
    w.add_fingerprint().map_err(|e| e.to_string())?;

    let mut transactions = Transactions::new(options.config);
    let transmit = Transmit {
        transport: options.transport,
        from: local,
        to: server,
        data: request,
    };
    transactions
        .start(Instant::now(), transmit, (), None, None)
        .map_err(|e| e.to_string())?;

    let mut buf = vec![0u8; 65536];
    let mut last_io_error = None;
    loop {
        let now = Instant::now();
        while let Some(t) = transactions.poll_transmit(now) {
            let sent = match &mut link {
                Link::Udp(socket) => socket.send(&t.data).map(|_| ()),
                Link::Tcp(stream, _) => stream.write_all(&t.data),
            };
            if let Err(e) = sent {
                last_io_error = Some(format!("sending to {server}: {e}"));
            }
        }
        if let Some(TransactionEvent::TimedOut { .. }) = transactions.poll_event() {
            let waited = options.config.transaction_timeout(options.transport);
            let detail = last_io_error
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            return Err(format!(
                "no response from {server} over {} after {:.1} s{detail}",
                options.transport,
                waited.as_secs_f64()
            ));
        }
        let Some(deadline) = transactions.poll_timeout() else {
            return Err("internal error: no transaction in flight".into());
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            transactions.handle_timeout(Instant::now());
            continue;
        }
        match receive(&mut link, &mut buf, wait) {
            Ok(Received::Datagram(len)) => {
                if let Some(result) = handle(&mut transactions, &buf[..len], local) {
                    return result;
                }
            }
            Ok(Received::Stream) => {
                let Link::Tcp(_, framer) = &mut link else {
                    unreachable!("only TCP links deliver stream data");
                };
                while let Some(frame) = framer.next_frame() {
                    let frame = frame.map_err(|e| format!("reading from {server}: {e}"))?;
                    let bytes = frame.bytes.to_vec();
                    if let Some(result) = handle(&mut transactions, &bytes, local) {
                        return result;
                    }
                }
            }
            Ok(Received::Closed) => {
                return Err(format!(
                    "{server} closed the TCP connection without answering"
                ));
            }
            Ok(Received::Nothing) => transactions.handle_timeout(Instant::now()),
            Err(e) => {
                // e.g. ICMP port unreachable on the connected UDP socket: the request is
                // retransmitted anyway, as the server may appear.
                last_io_error = Some(format!("receiving from {server}: {e}"));
                if matches!(link, Link::Tcp(..)) {
                    return Err(last_io_error.unwrap_or_default());
                }
                std::thread::sleep(Duration::from_millis(10).min(wait));
            }
        }
    }
}

enum Received {
    Datagram(usize),
    Stream,
    Closed,
    Nothing,
}

fn receive(link: &mut Link, buf: &mut [u8], wait: Duration) -> std::io::Result<Received> {
    let timed_out = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    };
    match link {
        Link::Udp(socket) => {
            socket.set_read_timeout(Some(wait))?;
            match socket.recv(buf) {
                Ok(len) => Ok(Received::Datagram(len)),
                Err(e) if timed_out(&e) => Ok(Received::Nothing),
                Err(e) => Err(e),
            }
        }
        Link::Tcp(stream, framer) => {
            stream.set_read_timeout(Some(wait))?;
            match stream.read(buf) {
                Ok(0) => Ok(Received::Closed),
                Ok(len) => {
                    framer.push(&buf[..len]);
                    Ok(Received::Stream)
                }
                Err(e) if timed_out(&e) => Ok(Received::Nothing),
                Err(e) => Err(e),
            }
        }
    }
}

/// Handles one received message; `Some` once the transaction is over.
fn handle(
    transactions: &mut Transactions<()>,
    data: &[u8],
    local: SocketAddr,
) -> Option<Result<SocketAddr, String>> {
    let msg = Message::parse(data).ok()?;
    if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
        return None;
    }
    match transactions.handle_response(&msg) {
        ResponseOutcome::Matched { .. } => {}
        _ => return None,
    }
    Some(match msg.class() {
        MessageClass::Success => mapped_address(&msg)
            .ok_or_else(|| "the success response has no (XOR-)MAPPED-ADDRESS".to_string())
            .inspect(|mapped| {
                if *mapped != local && !local.ip().is_unspecified() {
                    eprintln!("stunclient: local address {local}, mapped {mapped}");
                }
            }),
        _ => Err(match msg.attribute::<ErrorCode<'_>>() {
            Ok(Some(e)) => format!("error response {} {}", e.code, e.reason),
            _ => "error response without a valid ERROR-CODE".to_string(),
        }),
    })
}

/// XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from servers that only send that (RFC 8489
/// §14.1 keeps it for RFC 3489 compatibility).
fn mapped_address(msg: &Message<'_>) -> Option<SocketAddr> {
    if let Ok(Some(XorMappedAddress(addr))) = msg.attribute::<XorMappedAddress>() {
        return Some(addr);
    }
    msg.attribute::<MappedAddress>()
        .ok()
        .flatten()
        .map(|MappedAddress(a)| a)
}
