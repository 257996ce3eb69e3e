//! TCP connection set-up for simultaneous opens (RFC 6544 `tcptype so`) on the simulated
//! network, at the level of SYNs: [`SimultaneousOpens`] is the TCP stack of one host for
//! the connections its agent asks to open from a fixed port
//! ([`IoRequest::IceTcpConnect`](librice_proto::agent::IoRequest::IceTcpConnect) with
//! `simultaneous_open`).
//!
//! A connect sends a SYN (a [`SYN`] packet) from the local port to the remote address, and
//! sends it again after 1 s, 2 s and 4 s, as a TCP stack does (RFC 6298 §2: 1 s initial
//! RTO, doubled); 8 s after the last it gives up (a timeout). SYNs travel like every other
//! packet: through the NATs, which map them as any outbound packet and drop an
//! unsolicited inbound one silently (RFC 5382 REQ-4: a NAT must not answer an unsolicited
//! SYN for at least 6 s), so a SYN gets through a NAT once the host behind it has sent its
//! own SYN to the sender: the SYNs cross.
//!
//! A SYN that reaches a host with a connect of its own from the SYN's destination to the
//! SYN's source in progress is a simultaneous open (RFC 9293 §3.5): both ends
//! are connected, and the host answers with a [`SYN_ACK`] so that the other end, whose
//! own SYN may have been dropped on the way, is connected too. A SYN that finds no such
//! connect is refused with an [`RST`] (nothing listens on an `so` port), and the connect
//! that sent it fails.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use librice_proto::{Transmit, TransportType};

/// A SYN (never a valid STUN message nor application data of the tests).
pub const SYN: &[u8] = b"\xffsim:SYN";
/// The answer to a SYN that crossed one of the answering host's own.
pub const SYN_ACK: &[u8] = b"\xffsim:SYN-ACK";
/// The answer to a SYN that found nothing.
pub const RST: &[u8] = b"\xffsim:RST";

/// The first SYN retransmission timeout (RFC 6298 §2.1).
pub const SYN_RTO: Duration = Duration::from_secs(1);
/// SYN retransmissions before giving up.
pub const SYN_RETRIES: u32 = 3;

/// How a simultaneous open ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoOutcome {
    /// Connected: the SYNs crossed.
    Connected,
    /// Refused by the peer's host (an RST).
    Refused,
    /// No answer to any SYN.
    TimedOut,
}

/// One connect in progress.
#[derive(Debug, Clone)]
struct Connect {
    id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    next_syn: Instant,
    rto: Duration,
    retries: u32,
}

/// What the agent must be told about a connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Open from this local address.
    Connected(u64, SocketAddr),
    /// Failed.
    Failed(u64),
}

/// The simultaneous opens of one host (see the module docs).
#[derive(Debug, Default)]
pub struct SimultaneousOpens {
    connects: Vec<Connect>,
    /// Every outcome: (when, local, remote, how).
    pub outcomes: Vec<(Instant, SocketAddr, SocketAddr, SoOutcome)>,
    /// SYNs sent, retransmissions included.
    pub syns_sent: usize,
}

fn packet(from: SocketAddr, to: SocketAddr, data: &[u8]) -> Transmit<Vec<u8>> {
    Transmit {
        transport: TransportType::Tcp,
        from,
        to,
        data: data.to_vec(),
    }
}

impl SimultaneousOpens {
    /// Starts connect `id` from `local` to `remote`: the SYN to send.
    pub fn connect(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Transmit<Vec<u8>> {
        self.connects.push(Connect {
            id,
            local,
            remote,
            next_syn: now + SYN_RTO,
            rto: SYN_RTO,
            retries: 0,
        });
        self.syns_sent += 1;
        packet(local, remote, SYN)
    }

    /// True for the packets of this model (handled by [`Self::handle_packet`]).
    pub fn is_segment(transmit: &Transmit<Vec<u8>>) -> bool {
        transmit.transport == TransportType::Tcp
            && [SYN, SYN_ACK, RST].contains(&transmit.data.as_slice())
    }

    fn take(&mut self, local: SocketAddr, remote: SocketAddr) -> Option<Connect> {
        let i = self
            .connects
            .iter()
            .position(|c| c.local == local && c.remote == remote)?;
        Some(self.connects.remove(i))
    }

    /// A packet of this model arrived: the answer to send back, if any, and what to tell
    /// the agent.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        transmit: &Transmit<Vec<u8>>,
    ) -> (Option<Transmit<Vec<u8>>>, Option<Answer>) {
        let (local, remote) = (transmit.to, transmit.from);
        let data = transmit.data.as_slice();
        let connect = self.take(local, remote);
        if data == SYN {
            return match connect {
                Some(c) => {
                    self.outcomes
                        .push((now, local, remote, SoOutcome::Connected));
                    (
                        Some(packet(local, remote, SYN_ACK)),
                        Some(Answer::Connected(c.id, local)),
                    )
                }
                None => (Some(packet(local, remote, RST)), None),
            };
        }
        let Some(c) = connect else {
            // Late: the connect ended already.
            return (None, None);
        };
        if data == SYN_ACK {
            self.outcomes
                .push((now, local, remote, SoOutcome::Connected));
            (None, Some(Answer::Connected(c.id, local)))
        } else {
            self.outcomes.push((now, local, remote, SoOutcome::Refused));
            (None, Some(Answer::Failed(c.id)))
        }
    }

    /// When the next SYN is due again (or a connect gives up).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.connects.iter().map(|c| c.next_syn).min()
    }

    /// Retransmits the SYNs that are due and gives up on connects that had all their
    /// retransmissions: the SYNs to send and the connects that failed.
    pub fn handle_timeout(&mut self, now: Instant) -> (Vec<Transmit<Vec<u8>>>, Vec<u64>) {
        let mut syns = Vec::new();
        let mut failed = Vec::new();
        let mut outcomes = Vec::new();
        self.connects.retain_mut(|c| {
            if c.next_syn > now {
                return true;
            }
            if c.retries == SYN_RETRIES {
                outcomes.push((now, c.local, c.remote, SoOutcome::TimedOut));
                failed.push(c.id);
                return false;
            }
            c.retries += 1;
            c.rto *= 2;
            c.next_syn = now + c.rto;
            syns.push(packet(c.local, c.remote, SYN));
            true
        });
        self.syns_sent += syns.len();
        self.outcomes.extend(outcomes);
        (syns, failed)
    }
}
