//! The endpoint's one task: reads the shared sockets in batches, routes each datagram to
//! its agent, runs the agents that have input, a due timer or something to flush, and
//! sends what they produce.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::IoSliceMut;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use librice_proto::mux::MuxAgentId;
use librice_proto::{Transmit, TransportType};

use super::EndpointShared;
use crate::driver::Outbox;
use crate::ingest::Outgoing;
use crate::runtime::{DeadlineTimer, RECV_BATCH_MAX, RecvInfo};
use crate::send::relock;
use crate::shared::Shared;

/// Loop iterations per poll before yielding to the runtime.
const MAX_ROUNDS: usize = 16;

/// Datagrams read from one socket per round before moving on (in batches of up to
/// [`RECV_BATCH_MAX`], or one at a time where the runtime's sockets read one per call).
const DATAGRAMS_PER_SOCKET: usize = 4 * RECV_BATCH_MAX;

pub(crate) struct EndpointDriver {
    ep: Arc<EndpointShared>,
    timer: DeadlineTimer,
    /// The receive slots, `slot` bytes each, [`RECV_BATCH_MAX`] of them.
    bufs: Vec<u8>,
    slot: usize,
    info: [RecvInfo; RECV_BATCH_MAX],
    routed: Vec<Option<MuxAgentId>>,
    next_socket: usize,
    /// The agents' deadlines: (deadline, slot), and each slot's entry in it.
    deadlines: BTreeSet<(Instant, u32)>,
    deadline_of: Vec<Option<Instant>>,
    /// Agents to run this round (scratch, kept for its capacity).
    ready: Vec<u32>,
    outgoing: Vec<Outgoing>,
    outbox: Outbox<MuxAgentId>,
}

impl EndpointDriver {
    pub fn new(ep: Arc<EndpointShared>, max_datagram: usize) -> Self {
        // One byte more than the largest datagram taken: one that fills its slot was
        // longer, and is dropped rather than cut.
        let slot = max_datagram + 1;
        Self {
            ep,
            timer: DeadlineTimer::default(),
            bufs: vec![0; slot * RECV_BATCH_MAX],
            slot,
            info: [RecvInfo::default(); RECV_BATCH_MAX],
            routed: Vec::with_capacity(RECV_BATCH_MAX),
            next_socket: 0,
            deadlines: BTreeSet::new(),
            deadline_of: Vec::new(),
            ready: Vec::new(),
            outgoing: Vec::new(),
            outbox: Outbox::default(),
        }
    }
}

impl Future for EndpointDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..MAX_ROUNDS {
            this.ep.waker.register(cx.waker());
            if this.finished() {
                tracing::debug!("endpoint closed: its task stops");
                return Poll::Ready(());
            }
            let now = this.ep.runtime.now();
            let mut busy = this.drive_recv(cx, now);
            this.take_due(now);
            busy |= this.drive_agents(cx, now);
            let deadline = this.deadlines.first().map(|&(t, _)| t);
            if this.timer.poll(&*this.ep.runtime, cx, deadline) {
                continue;
            }
            if !busy {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl EndpointDriver {
    /// No handle is left and every agent has been closed down.
    fn finished(&self) -> bool {
        let finished = self.ep.finished();
        if finished {
            self.ep.wake_listeners();
        }
        finished
    }

    /// Reads batches from each socket, routes them, and feeds each datagram to its agent.
    /// True if anything was read.
    fn drive_recv(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let n = self.ep.sockets.len();
        let mut any = false;
        for k in 0..n {
            let socket = Arc::clone(&self.ep.sockets[(self.next_socket + k) % n].0);
            let mut budget = DATAGRAMS_PER_SOCKET;
            while budget > 0 {
                // On the stack: no allocation per batch.
                let mut chunks = self.bufs.chunks_mut(self.slot);
                let mut slices: [IoSliceMut<'_>; RECV_BATCH_MAX] =
                    std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
                let got = match socket.poll_recv_batch(cx, &mut slices, &mut self.info) {
                    Poll::Ready(Ok(got)) => got,
                    Poll::Ready(Err(e)) => {
                        // E.g. ICMP port unreachable surfacing on Linux: not fatal.
                        tracing::trace!(local = %socket.local(), error = %e, "receive error");
                        any = true;
                        break;
                    }
                    Poll::Pending => break,
                };
                if got == 0 {
                    break;
                }
                any = true;
                self.deliver(now, socket.local(), got);
                budget = budget.saturating_sub(got);
            }
        }
        if n > 0 {
            self.next_socket = (self.next_socket + 1) % n;
        }
        any
    }

    /// Routes the `got` datagrams just read on `local` (under the router's lock once) and
    /// feeds each to its agent: data is queued for its component, STUN lists the agent
    /// for a turn.
    fn deliver(&mut self, now: Instant, local: std::net::SocketAddr, got: usize) {
        let slot = self.slot;
        self.routed.clear();
        {
            let mut router = relock(&self.ep.router);
            for (i, info) in self.info[..got].iter().enumerate() {
                let data = &self.bufs[i * slot..i * slot + info.len.min(slot)];
                if info.len >= slot {
                    tracing::debug!(from = %info.from, %local, "datagram over the endpoint's maximum size: dropped");
                    self.routed.push(None);
                    continue;
                }
                let t = Transmit {
                    transport: TransportType::Udp,
                    from: info.from,
                    to: local,
                    data,
                };
                self.routed.push(router.route(&t).ok());
            }
        }
        let mut current: Option<(MuxAgentId, Arc<Shared>)> = None;
        for i in 0..got {
            let Some(id) = self.routed[i] else {
                continue;
            };
            if current.as_ref().is_none_or(|(c, _)| *c != id) {
                current = self.agent(id).map(|agent| (id, agent));
            }
            let Some((_, agent)) = &current else {
                continue;
            };
            let info = self.info[i];
            let t = Transmit {
                transport: TransportType::Udp,
                from: info.from,
                to: local,
                data: &self.bufs[i * slot..i * slot + info.len],
            };
            let mut st = agent.lock();
            if st.closed {
                continue;
            }
            if st.ingest_copy(now, t) {
                drop(st);
                self.ep.wake_agent(id.index() as u32);
            }
        }
    }

    /// The agent with id `id`, if it is still the one in its slot.
    fn agent(&self, id: MuxAgentId) -> Option<Arc<Shared>> {
        self.ep.agent(id)
    }

    /// Lists the agents whose deadline has come.
    fn take_due(&mut self, now: Instant) {
        while let Some(&(t, index)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            self.deadline_of[index as usize] = None;
            relock(&self.ep.router).count_timeout();
            self.ep.wake_agent(index);
        }
    }

    /// Moves agent `index`'s deadline in the timer queue.
    fn set_deadline(&mut self, index: u32, deadline: Option<Instant>) {
        let i = index as usize;
        if self.deadline_of.len() <= i {
            self.deadline_of.resize(i + 1, None);
        }
        if self.deadline_of[i] == deadline {
            return;
        }
        if let Some(old) = self.deadline_of[i].take() {
            self.deadlines.remove(&(old, index));
        }
        if let Some(t) = deadline {
            self.deadlines.insert((t, index));
        }
        self.deadline_of[i] = deadline;
    }

    /// Runs the listed agents: flushes each (a due timer, its output, its events), learns
    /// from what it sends and sends it. A closed agent is closed down and forgotten. True
    /// if any ran.
    fn drive_agents(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut ready = std::mem::take(&mut self.ready);
        self.ep.take_ready(&mut ready);
        relock(&self.ep.router).expire(now);
        let mut pending: Vec<(Arc<crate::send::Socket>, Transmit<Vec<u8>>, MuxAgentId)> =
            Vec::new();
        for &index in &ready {
            let Some((id, agent)) = relock(&self.ep.agents)
                .get(index as usize)
                .and_then(Option::as_ref)
                .map(|(id, a)| (*id, Arc::clone(a)))
            else {
                continue;
            };
            let mut st = agent.lock();
            if st.closed {
                let sender = self.outbox.sender;
                st.finish_close(now, |socket, t| {
                    let _ = socket.poll_send_to(sender, cx, &t.data, t.to);
                });
                drop(st);
                self.forget(id);
                continue;
            }
            if let Some(link) = &st.endpoint {
                st.driver_waker = Some(link.waker.clone());
            }
            let requests = st.flush(now, &mut self.outgoing);
            let deadline = st.proto.poll_timeout();
            drop(st);
            self.set_deadline(index, deadline);
            for request in requests {
                self.ep
                    .runtime
                    .spawn(Box::pin(crate::tcp::run(Arc::clone(&agent), request)));
            }
            if !self.outgoing.is_empty() {
                let mut router = relock(&self.ep.router);
                for (socket, t) in self.outgoing.drain(..) {
                    router.learn(now, id, &t.borrowed());
                    pending.push((socket, t, id));
                }
            }
        }
        let ran = !ready.is_empty();
        self.ready = ready;
        let failed = self.outbox.send_all(cx, pending.into_iter());
        for (t, id, e) in failed {
            tracing::debug!(agent = %id, error = %e, "endpoint send failed");
            if let Some(agent) = self.agent(id) {
                let mut st = agent.lock();
                st.proto.handle_unreachable(now, t.from, t.to);
                drop(st);
                self.ep.wake_agent(id.index() as u32);
            }
        }
        ran
    }

    /// Forgets a closed agent: its routes, its timer, its slot.
    fn forget(&mut self, id: MuxAgentId) {
        relock(&self.ep.router).remove(id);
        self.set_deadline(id.index() as u32, None);
        let mut agents = relock(&self.ep.agents);
        if let Some(slot) = agents.get_mut(id.index())
            && slot.as_ref().is_some_and(|(current, _)| *current == id)
        {
            *slot = None;
        }
    }
}
