//! What an agent keeps to send requests of its own: its STUN transactions, the pacing of
//! new ones (RFC 8445 §14.2), the queued server queries and the pair foundations that
//! order its checks (§6.1.2.6, §6.1.4.2). Boxed on first use: an ICE-lite
//! agent, which sends no request (RFC 8445 §2.5), never has it (208 B less in each of a
//! server's agents).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::gather::GatherJob;
use super::{AgentConfig, PairId, StreamId, Txn};
use crate::compact::{VecMap, VecSet};
use crate::stun::TransactionId;
use crate::stun::transaction::Transactions;

/// The request machinery of an agent (see the module docs).
///
/// Invariant: every id in `cancelled` is a transaction of `txns` still in flight or just
/// ended (its timeout or answer removes it).
#[derive(Debug)]
pub(super) struct Requests {
    /// Connectivity and consent checks in flight.
    pub txns: Transactions<Txn>,
    /// STUN server queries in flight.
    pub gather_txns: Transactions<Txn>,
    /// Checks whose retransmissions stopped (RFC 8445 §7.3.1.4): their timeout is no failure.
    pub cancelled: VecSet<TransactionId>,
    /// The earliest time the next paced transaction may start (RFC 8445 §14.2); `None`
    /// until the first one.
    pub next_slot: Option<Instant>,
    /// Round robin over the check lists (and gathering, as one more entry).
    pub turn: usize,
    /// Server queries waiting for their pacing slot.
    pub gather_queue: VecDeque<GatherJob>,
    /// Server queries over TCP waiting for their connection, by request id.
    pub tcp_connects: BTreeMap<u64, GatherJob>,
    /// Pair foundation (local, remote) -> a small number, and the pairs that share it in
    /// every check list, for unfreezing (RFC 8445 §6.1.4.2, §7.2.5.3.3).
    pub pair_foundations: VecMap<(Box<str>, Box<str>), u32>,
    pub foundation_pairs: VecMap<u32, Vec<(StreamId, PairId)>>,
    /// The id of the next TCP connection asked for ([`super::IoRequest::TcpConnect`]).
    next_tcp_id: u64,
}

impl Requests {
    fn new(config: &AgentConfig) -> Self {
        Self {
            txns: Transactions::new(config.check_retransmit),
            gather_txns: Transactions::new(config.gather_retransmit),
            cancelled: VecSet::new(),
            next_slot: None,
            turn: 0,
            gather_queue: VecDeque::new(),
            tcp_connects: BTreeMap::new(),
            pair_foundations: VecMap::new(),
            foundation_pairs: VecMap::new(),
            next_tcp_id: 1,
        }
    }

    /// The requests of `slot`, made on first use with `config`.
    pub fn of<'a>(slot: &'a mut Option<Box<Requests>>, config: &AgentConfig) -> &'a mut Self {
        slot.get_or_insert_with(|| Box::new(Requests::new(config)))
    }

    /// A new id for a TCP connection request.
    pub fn next_tcp_id(&mut self) -> u64 {
        let id = self.next_tcp_id;
        self.next_tcp_id += 1;
        id
    }

    /// Abandons check or consent transaction `id` (its retransmissions, its timeout, its
    /// answer) and returns its context if it was in flight.
    pub fn cancel(&mut self, id: &TransactionId) -> Option<Txn> {
        self.cancelled.remove(id);
        self.txns.cancel(id)
    }
}
