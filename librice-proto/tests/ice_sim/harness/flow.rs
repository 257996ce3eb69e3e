//! Application data for scenarios that change the network under a connection: numbered
//! datagrams both ways at 100 datagrams/s, with the signalling delivered at every tick,
//! and what arrived.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ice::{AgentNode, RTP, S0, signal};
use super::{NodeId, Sim};

/// One datagram each way every 10 ms (100 datagrams/s).
pub const TICK: Duration = Duration::from_millis(10);

const STEPS: usize = 2_000_000;

/// Numbered datagrams both ways, one each way per tick, and what arrived.
pub struct Flow {
    a: NodeId,
    b: NodeId,
    /// Datagrams sent per sender.
    pub sent: BTreeMap<NodeId, u32>,
    /// Datagrams `send` refused (no usable pair) per sender.
    pub refused: BTreeMap<NodeId, u32>,
}

impl Flow {
    /// No datagram yet between `a` and `b`.
    pub fn new(a: NodeId, b: NodeId) -> Self {
        Self {
            a,
            b,
            sent: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// Sends one datagram each way, delivers the signalling, and drives the network one tick.
    pub fn tick(&mut self, sim: &mut Sim) {
        for n in [self.a, self.b] {
            let seq = *self.sent.get(&n).unwrap_or(&0);
            let payload = format!("seq {seq}");
            let sent = sim.with_node::<AgentNode, _>(n, |node, now| {
                let t = node
                    .agent
                    .stream_mut(S0)
                    .and_then(|mut s| {
                        s.component_mut(RTP)
                            .map(|mut c| c.send(now, payload.as_bytes()))
                    })
                    .expect("component exists");
                match t {
                    Ok(t) => {
                        node.queue(t);
                        true
                    }
                    Err(_) => false,
                }
            });
            if sent {
                *self.sent.entry(n).or_default() += 1;
            } else {
                *self.refused.entry(n).or_default() += 1;
            }
        }
        signal(sim, self.a, self.b);
        signal(sim, self.b, self.a);
        sim.drive_for(TICK, STEPS);
    }

    /// The sequence numbers `n` received from its peer, in arrival order.
    pub fn received(sim: &Sim, n: NodeId) -> Vec<u32> {
        sim.node::<AgentNode>(n)
            .received
            .iter()
            .filter_map(|(_, _, _, d)| {
                std::str::from_utf8(d)
                    .ok()?
                    .strip_prefix("seq ")?
                    .parse()
                    .ok()
            })
            .collect()
    }
}
