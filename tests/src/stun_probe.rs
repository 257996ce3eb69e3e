//! STUN Binding requests written byte by byte, independently of librice's own codec.
//!
//! Used to check that a server is up and answering, and as a second, minimal client for
//! librice's `stund` (notably over TCP, which coturn's `turnutils_stunclient` cannot do).
//! Only what that needs is here: a 20-byte Binding request with no attributes (RFC 8489
//! §5, §6), and the XOR-MAPPED-ADDRESS (§14.2) of a Binding success response.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The magic cookie of RFC 5389 / RFC 8489 STUN messages.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The message type of a Binding request.
pub const BINDING_REQUEST: u16 = 0x0001;
/// The message type of a Binding success response.
pub const BINDING_SUCCESS: u16 = 0x0101;
/// The attribute type of XOR-MAPPED-ADDRESS.
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// The outcome of one successful Binding transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The local address the request was sent from.
    pub local: SocketAddr,
    /// The XOR-MAPPED-ADDRESS of the response, if it had one.
    pub mapped: Option<SocketAddr>,
}

/// A transaction id that differs on every call (not cryptographically random: a clock,
/// the process id and a counter, mixed).
pub fn new_transaction_id() -> [u8; 12] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut id = [0; 12];
    for chunk in id.chunks_mut(4) {
        // splitmix64 step
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes()[..4]);
    }
    id
}

/// The 20 bytes of a Binding request without attributes: type 0x0001, length 0, the
/// magic cookie and `transaction_id`.
pub fn binding_request(transaction_id: &[u8; 12]) -> [u8; 20] {
    let mut msg = [0; 20];
    msg[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // bytes 2..4: length 0
    msg[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    msg[8..20].copy_from_slice(transaction_id);
    msg
}

/// Checks that `msg` is a whole Binding success response to `transaction_id`, and returns
/// its XOR-MAPPED-ADDRESS if it has one. `Err` says what is wrong otherwise.
pub fn parse_binding_success(
    msg: &[u8],
    transaction_id: &[u8; 12],
) -> Result<Option<SocketAddr>, String> {
    if msg.len() < 20 {
        return Err(format!("{} bytes is shorter than a STUN header", msg.len()));
    }
    let msg_type = u16::from_be_bytes([msg[0], msg[1]]);
    let length = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    if msg_type != BINDING_SUCCESS {
        return Err(format!(
            "message type {msg_type:#06x}, not a Binding success response"
        ));
    }
    if msg[4..8] != MAGIC_COOKIE.to_be_bytes() || &msg[8..20] != transaction_id {
        return Err("magic cookie or transaction id does not match the request".to_owned());
    }
    if msg.len() != 20 + length {
        return Err(format!(
            "header says {length} attribute bytes, {} follow",
            msg.len() - 20
        ));
    }
    let mut attrs = &msg[20..];
    while attrs.len() >= 4 {
        let attr_type = u16::from_be_bytes([attrs[0], attrs[1]]);
        let attr_len = usize::from(u16::from_be_bytes([attrs[2], attrs[3]]));
        let padded = (attr_len + 3) & !3;
        if attrs.len() < 4 + padded {
            return Err(format!("attribute {attr_type:#06x} runs past the message"));
        }
        if attr_type == XOR_MAPPED_ADDRESS {
            return decode_xor_address(&attrs[4..4 + attr_len], transaction_id).map(Some);
        }
        attrs = &attrs[4 + padded..];
    }
    Ok(None)
}

/// Runs one Binding transaction over UDP: sends a request to `server` from a new socket
/// (bound to `server`'s IP when that is a loopback address, so that the local and mapped
/// addresses can be compared), and waits at most `timeout` for its success response,
/// ignoring any other datagram.
pub fn binding_over_udp(server: SocketAddr, timeout: Duration) -> io::Result<Binding> {
    let bind_ip = if server.ip().is_loopback() {
        server.ip()
    } else if server.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let socket = UdpSocket::bind(SocketAddr::new(bind_ip, 0))?;
    let local = socket.local_addr()?;
    let txid = new_transaction_id();
    socket.send_to(&binding_request(&txid), server)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no Binding response",
            ));
        }
        socket.set_read_timeout(Some(left))?;
        let (n, from) = socket.recv_from(&mut buf)?;
        if from != server {
            continue;
        }
        if let Ok(mapped) = parse_binding_success(&buf[..n], &txid) {
            return Ok(Binding { local, mapped });
        }
    }
}

/// Runs one Binding transaction over a new TCP connection to `server` (STUN over TCP
/// needs no framing: RFC 8489 §6.2.2), bounded by `timeout` for connecting and for
/// reading the response.
pub fn binding_over_tcp(server: SocketAddr, timeout: Duration) -> io::Result<Binding> {
    let mut stream = TcpStream::connect_timeout(&server, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let local = stream.local_addr()?;
    let txid = new_transaction_id();
    stream.write_all(&binding_request(&txid))?;
    let mut msg = vec![0; 20];
    stream.read_exact(&mut msg)?;
    let length = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    msg.resize(20 + length, 0);
    stream.read_exact(&mut msg[20..])?;
    let mapped = parse_binding_success(&msg, &txid)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Binding { local, mapped })
}

// RFC 8489 §14.2: family, X-Port = port ^ (cookie >> 16), X-Address = address ^ cookie
// (IPv4) or ^ (cookie || transaction id) (IPv6).
fn decode_xor_address(value: &[u8], transaction_id: &[u8; 12]) -> Result<SocketAddr, String> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = |v: &[u8]| u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    match value {
        [_, 0x01, ..] if value.len() == 8 => {
            let mut ip = [0; 4];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = value[4 + i] ^ cookie[i];
            }
            Ok(SocketAddr::new(Ipv4Addr::from(ip).into(), port(value)))
        }
        [_, 0x02, ..] if value.len() == 20 => {
            let mut ip = [0; 16];
            let key = cookie.iter().chain(transaction_id);
            for ((b, v), k) in ip.iter_mut().zip(&value[4..]).zip(key) {
                *b = v ^ k;
            }
            Ok(SocketAddr::new(Ipv6Addr::from(ip).into(), port(value)))
        }
        _ => Err(format!("malformed XOR-MAPPED-ADDRESS value {value:02x?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.2: the IPv4 response test vector, with its XOR-MAPPED-ADDRESS
    /// 192.0.2.1:32853 (other attributes are skipped).
    #[test]
    fn decodes_rfc5769_ipv4_response() {
        let txid = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let msg: &[u8] = &[
            0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
            0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
            0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
            0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
            0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
            0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
        ];
        assert_eq!(
            parse_binding_success(msg, &txid),
            Ok(Some("192.0.2.1:32853".parse().unwrap()))
        );
    }

    /// RFC 5769 §2.3: the IPv6 response test vector, XOR-MAPPED-ADDRESS
    /// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
    #[test]
    fn decodes_rfc5769_ipv6_response() {
        let txid = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let msg: &[u8] = &[
            0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
            0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
            0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02,
            0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
            0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6,
            0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
            0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
        ];
        assert_eq!(
            parse_binding_success(msg, &txid),
            Ok(Some(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            ))
        );
    }

    #[test]
    fn rejects_other_transaction_and_request() {
        let txid = new_transaction_id();
        let other = new_transaction_id();
        assert_ne!(txid, other);
        let mut msg = binding_request(&txid);
        assert!(
            parse_binding_success(&msg, &txid).is_err(),
            "a request is not a response"
        );
        msg[1] = 0x01;
        msg[0] = 0x01;
        assert_eq!(parse_binding_success(&msg, &txid), Ok(None));
        assert!(parse_binding_success(&msg, &other).is_err());
        assert!(parse_binding_success(&msg[..19], &txid).is_err());
    }
}
