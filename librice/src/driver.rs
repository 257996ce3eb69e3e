//! The driver: one task per agent that feeds received datagrams and timer expiries into the
//! sans-IO core and sends what it yields.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use librice_proto::{Transmit, TransportType};

use crate::runtime::{AsyncTimer, AsyncUdpSocket};
use crate::shared::Shared;

/// Datagrams read from one socket per wake-up before moving on, so that a busy socket
/// cannot starve the others.
const RECV_BATCH: usize = 64;

/// Loop iterations per poll before yielding to the runtime.
const MAX_ROUNDS: usize = 16;

/// The largest datagram read.
const RECV_BUF: usize = 65_536;

/// Datagrams kept for a socket that would block, sent when it becomes writable again;
/// beyond this they are dropped (and traced), as a full network path would.
const MAX_UNSENT: usize = 256;

/// A datagram waiting for its socket to become writable.
type Unsent = (Arc<dyn AsyncUdpSocket>, Transmit<Vec<u8>>);

pub(crate) struct Driver {
    shared: Arc<Shared>,
    timer: Option<Pin<Box<dyn AsyncTimer>>>,
    armed: Option<Instant>,
    buf: Vec<u8>,
    next_socket: usize,
    /// What the sockets would not take yet, oldest first.
    unsent: VecDeque<Unsent>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            timer: None,
            armed: None,
            buf: vec![0; RECV_BUF],
            next_socket: 0,
            unsent: VecDeque::new(),
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let shared = Arc::clone(&this.shared);
        for _ in 0..MAX_ROUNDS {
            // 1. Under the lock, briefly: closed?, the waker, the sockets.
            let sockets = {
                let mut st = shared.lock();
                if st.closed {
                    // Release the TURN allocations (RFC 8656 §7.2): one try, no waiting.
                    let now = shared.runtime.now();
                    st.proto.close(now);
                    while let Some(t) = st.proto.poll_transmit(now) {
                        if let Some(socket) = st.sockets.get(&t.from) {
                            let _ = socket.poll_send_to(cx, &t.data, t.to);
                        }
                    }
                    st.sockets.clear();
                    st.socket_list.clear();
                    st.close_subscribers();
                    tracing::debug!("agent closed: driver stops");
                    return Poll::Ready(());
                }
                st.driver_waker = Some(cx.waker().clone());
                st.driver_sockets(shared.runtime.now())
            };
            let (sockets, lease_expiry) = sockets;

            // 2. Without the lock (so that senders are not held up): read a batch from each
            // socket, starting with a different one each time.
            let n = sockets.len();
            let mut received = Vec::new();
            let mut busy = false;
            for k in 0..n {
                let (local, socket) = &sockets[(this.next_socket + k) % n];
                for _ in 0..RECV_BATCH {
                    match socket.poll_recv_from(cx, &mut this.buf) {
                        Poll::Ready(Ok((len, from))) => {
                            received.push((*local, from, this.buf[..len].to_vec()));
                        }
                        Poll::Ready(Err(e)) => {
                            // E.g. ICMP port unreachable surfacing on Linux: not fatal.
                            tracing::trace!(%local, error = %e, "receive error");
                            busy = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            busy |= !received.is_empty();
            if n > 0 {
                this.next_socket = (this.next_socket + 1) % n;
            }

            // 3. Under the lock: feed the core, collect what to send, dispatch events.
            let mut outgoing = Vec::new();
            let deadline = {
                let mut st = shared.lock();
                let now = shared.runtime.now();
                for (local, from, data) in received {
                    let t = Transmit {
                        transport: TransportType::Udp,
                        from,
                        to: local,
                        data: data.as_slice(),
                    };
                    if let Some(rx) = st.proto.handle_incoming(now, t) {
                        let (stream, component) = (rx.stream, rx.component);
                        let payload = crate::shared::payload(&data, rx.data);
                        st.deliver(stream, component, payload.unwrap_or(data));
                    }
                }
                if st.proto.poll_timeout().is_some_and(|t| t <= now) {
                    st.proto.handle_timeout(now);
                }
                while let Some(t) = st.proto.poll_transmit(now) {
                    if t.transport == TransportType::Tcp {
                        match st.tcp.get(&(t.from, t.to)) {
                            Some(writer) => {
                                let _ = writer.unbounded_send(t.data);
                            }
                            None => tracing::debug!(to = %t.to, "no TCP connection: dropped"),
                        }
                        continue;
                    }
                    match st.sockets.get(&t.from) {
                        Some(socket) => outgoing.push((Arc::clone(socket), t)),
                        None => {
                            tracing::debug!(from = %t.from, "transmit from an unknown socket dropped")
                        }
                    }
                }
                st.dispatch_events();
                st.sync_consent();
                st.driver_read_done();
                for (id, local, remote, tls) in std::mem::take(&mut st.tcp_requests) {
                    shared.runtime.spawn(Box::pin(crate::tcp::run(
                        Arc::clone(&shared),
                        id,
                        local,
                        remote,
                        tls,
                    )));
                }
                match (st.proto.poll_timeout(), lease_expiry) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };

            // 4. Send without the lock: first what waited for a socket, then the new. A
            // refused send changed the core's state: go round again to act on it.
            let waiting = std::mem::take(&mut this.unsent);
            for (socket, t) in waiting.into_iter().chain(outgoing) {
                busy |= this.send(cx, socket, t);
            }

            // 5. Re-arm the timer only when the deadline moved (quinn's drive_timer).
            match deadline {
                Some(t) if t <= shared.runtime.now() => continue,
                Some(t) => {
                    if this.armed != Some(t) {
                        match this.timer.as_mut() {
                            Some(timer) => timer.as_mut().reset(t),
                            None => this.timer = Some(shared.runtime.new_timer(t)),
                        }
                        this.armed = Some(t);
                    }
                    if let Some(timer) = this.timer.as_mut()
                        && timer.as_mut().poll_elapsed(cx).is_ready()
                    {
                        this.armed = None;
                        continue;
                    }
                }
                None => {
                    this.armed = None;
                }
            }
            if !busy {
                return Poll::Pending;
            }
        }
        // Still busy: let other tasks run, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Driver {
    /// Sends one datagram, or keeps it until its socket is writable (the socket has the
    /// waker). A socket already holding datagrams back keeps the new one behind them, so
    /// each socket's datagrams leave in order. Returns true when the socket refused the
    /// datagram with an error, which the core has then been told of
    /// (`handle_unreachable`: a check in flight on that pair fails at once).
    fn send(
        &mut self,
        cx: &mut Context<'_>,
        socket: Arc<dyn AsyncUdpSocket>,
        t: Transmit<Vec<u8>>,
    ) -> bool {
        let behind = self.unsent.iter().any(|(s, _)| Arc::ptr_eq(s, &socket));
        if !behind {
            match socket.poll_send_to(cx, &t.data, t.to) {
                Poll::Ready(Ok(_)) => return false,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(from = %t.from, to = %t.to, error = %e, "send failed");
                    // The lock is not held while sending; take it briefly.
                    let mut st = self.shared.lock();
                    let now = self.shared.runtime.now();
                    st.proto.handle_unreachable(now, t.from, t.to);
                    return true;
                }
                Poll::Pending => {}
            }
        }
        if self.unsent.len() < MAX_UNSENT {
            self.unsent.push_back((socket, t));
        } else {
            tracing::debug!(from = %t.from, to = %t.to, "socket busy and queue full: datagram dropped");
        }
        false
    }
}
