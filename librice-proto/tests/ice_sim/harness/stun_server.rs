//! A public STUN server as a simulated node.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use librice_proto::Transmit;
use librice_proto::stun::attr::{AlternateServer, ErrorCode};
use librice_proto::stun::server::{BindingServer, Outcome, ServerAuth};
use librice_proto::stun::{Message, MessageClass, MessageWriter};

use super::Node;

/// A node answering STUN Binding requests (no authentication) on every address and port
/// it owns.
///
/// Each request is answered to its source, on the same transport, from the address it was
/// sent to. A TCP "packet" is taken to hold exactly one STUN message (the harness does not
/// model streams).
#[derive(Debug)]
pub struct StunServerNode {
    server: BindingServer,
    outbox: VecDeque<Transmit<Vec<u8>>>,
    answered: usize,
    ignored: usize,
    /// Every Binding request is answered with 300 Try Alternate naming this server.
    redirect: Option<SocketAddr>,
}

impl Default for StunServerNode {
    fn default() -> Self {
        Self::new()
    }
}

impl StunServerNode {
    /// A server with `ServerAuth::None`.
    pub fn new() -> Self {
        Self {
            server: BindingServer::new(ServerAuth::None),
            outbox: VecDeque::new(),
            answered: 0,
            ignored: 0,
            redirect: None,
        }
    }

    /// A server that answers every Binding request with 300 Try Alternate and an
    /// ALTERNATE-SERVER of `alternate` (RFC 8489 §10).
    pub fn redirecting(alternate: SocketAddr) -> Self {
        Self {
            redirect: Some(alternate),
            ..Self::new()
        }
    }

    /// The 300 answer to `data`, if this server redirects and it is a request.
    fn try_alternate(&self, data: &[u8]) -> Option<Vec<u8>> {
        let alternate = self.redirect?;
        let msg = Message::parse(data).ok()?;
        if msg.class() != MessageClass::Request {
            return None;
        }
        let mut out = Vec::with_capacity(64);
        let mut w = MessageWriter::new(&mut out, msg.message_type().error(), msg.transaction_id());
        w.add(&ErrorCode::with_default_reason(ErrorCode::TRY_ALTERNATE))
            .ok()?;
        w.add(&AlternateServer(alternate)).ok()?;
        w.add_fingerprint().ok()?;
        Some(out)
    }

    /// How many requests got a response (success or error).
    pub fn answered(&self) -> usize {
        self.answered
    }

    /// How many received packets got no response.
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// Queues an arbitrary packet to send (from any of the node's addresses), e.g. to probe
    /// a NAT's filtering from the server's IP with another port.
    pub fn send_raw(&mut self, transmit: Transmit<Vec<u8>>) {
        self.outbox.push_back(transmit);
    }
}

impl Node for StunServerNode {
    fn handle_incoming(&mut self, _now: Instant, transmit: Transmit<Vec<u8>>) {
        let answer = self.try_alternate(&transmit.data).or_else(|| {
            let mut out = Vec::new();
            match self.server.handle(transmit.from, &transmit.data, &mut out) {
                Outcome::Success | Outcome::Error(_) => Some(out),
                _ => None,
            }
        });
        let Some(data) = answer else {
            self.ignored += 1;
            return;
        };
        self.answered += 1;
        self.outbox.push_back(Transmit {
            transport: transmit.transport,
            from: transmit.to,
            to: transmit.from,
            data,
        });
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.outbox.pop_front()
    }
}
