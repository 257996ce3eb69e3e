//! The driver: one task per agent that feeds received datagrams and timer expiries into the
//! sans-IO core and sends what it yields.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use librice_proto::Transmit;

use crate::ingest::{Outgoing, RECV_BUF, Received, TcpRequest, read_batch};
use crate::runtime::DeadlineTimer;
use crate::send::{SenderId, Socket};
use crate::shared::Shared;

/// Loop iterations per poll before yielding to the runtime.
const MAX_ROUNDS: usize = 16;

/// Datagrams kept for a socket that would block, sent when it becomes writable again;
/// beyond this they are dropped (and traced), as a full network path would.
const MAX_UNSENT: usize = 256;

pub(crate) struct Driver {
    shared: Arc<Shared>,
    timer: DeadlineTimer,
    next_socket: usize,
    /// What the sockets would not take yet.
    outbox: Outbox<()>,
    /// Buffers kept from round to round: the sockets to read, what was read, what to send.
    sockets: Vec<Arc<Socket>>,
    received: Vec<Received>,
    outgoing: Vec<Outgoing>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            timer: DeadlineTimer::default(),
            next_socket: 0,
            outbox: Outbox::default(),
            sockets: Vec::new(),
            received: Vec::new(),
            outgoing: Vec::new(),
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..MAX_ROUNDS {
            let Some(lease_expiry) = this.take_sockets(cx) else {
                return Poll::Ready(());
            };
            let mut busy = this.drive_recv(cx);
            let (deadline, requests) = this.drive_core();
            this.spawn_tcp(requests);
            busy |= this.drive_transmit(cx);
            let deadline = match (deadline, lease_expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if this.drive_timer(cx, deadline) {
                continue;
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
    /// Under the lock, briefly: stops if the agent is closed (`None`), else stores the
    /// waker and takes the sockets to read (those no reader holds); returns the earliest
    /// lease expiry.
    fn take_sockets(&mut self, cx: &mut Context<'_>) -> Option<Option<Instant>> {
        let shared = &self.shared;
        let mut st = shared.lock();
        if st.closed {
            st.finish_close(shared.runtime.now(), |socket, t| {
                let _ = socket.poll_send_to(self.outbox.sender, cx, &t.data, t.to);
            });
            return None;
        }
        st.driver_waker = Some(cx.waker().clone());
        Some(st.driver_sockets(shared.runtime.now(), &mut self.sockets))
    }

    /// Without the lock (so that senders are not held up): reads a batch from each socket
    /// taken, starting with a different one each time. True if anything happened.
    fn drive_recv(&mut self, cx: &mut Context<'_>) -> bool {
        let n = self.sockets.len();
        let error = with_recv_buf(|buf| {
            read_batch(cx, &self.sockets, self.next_socket, buf, &mut self.received)
        });
        if n > 0 {
            self.next_socket = (self.next_socket + 1) % n;
        }
        self.sockets.clear();
        error || !self.received.is_empty()
    }

    /// Under the lock: feeds what was read into the core and flushes its output. Returns
    /// the core's next deadline and the TCP connections it asked for.
    fn drive_core(&mut self) -> (Option<Instant>, Vec<TcpRequest>) {
        let shared = &self.shared;
        let mut st = shared.lock();
        let now = shared.runtime.now();
        for received in self.received.drain(..) {
            st.ingest_owned(now, received);
        }
        let requests = st.flush(now, &mut self.outgoing);
        st.mdns.keep_running();
        (st.proto.poll_timeout(), requests)
    }

    fn spawn_tcp(&self, requests: Vec<TcpRequest>) {
        for request in requests {
            self.shared
                .runtime
                .spawn(Box::pin(crate::tcp::run(Arc::clone(&self.shared), request)));
        }
    }

    /// Sends without the lock: first what waited for a socket, then the new. True if a
    /// refused send changed the core's state: go round again to act on it.
    fn drive_transmit(&mut self, cx: &mut Context<'_>) -> bool {
        let mut busy = false;
        let mut outgoing = std::mem::take(&mut self.outgoing);
        let failed = self
            .outbox
            .send_all(cx, outgoing.drain(..).map(|(socket, t)| (socket, t, ())));
        self.outgoing = outgoing;
        for (t, (), e) in failed {
            crate::netwatch::on_send_error(&self.shared, &e);
            // The lock is not held while sending; take it briefly.
            let mut st = self.shared.lock();
            let now = self.shared.runtime.now();
            st.proto.handle_unreachable(now, t.from, t.to);
            busy = true;
        }
        busy
    }

    /// Re-arms the timer only when the deadline moved. True if it has passed.
    fn drive_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> bool {
        self.timer.poll(&*self.shared.runtime, cx, deadline)
    }
}

thread_local! {
    /// The receive buffer of the drivers that run on this thread: a driver reads into it
    /// and copies each datagram out before it returns, so one buffer of the largest
    /// datagram's size serves every agent of the thread instead of one per agent.
    static RECV_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's receive buffer ([`RECV_BUF`] bytes); with a buffer of its
/// own should the thread's be in use (it never is: `f` does not poll another driver).
fn with_recv_buf<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    RECV_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < RECV_BUF {
                buf.resize(RECV_BUF, 0);
            }
            f(&mut buf)
        }
        Err(_) => f(&mut vec![0; RECV_BUF]),
    })
}

/// Datagrams on their way out of a driver: sent at once where the socket takes them,
/// else kept (up to [`MAX_UNSENT`]) until it is writable again, each socket's in order.
/// `T` tags each datagram with what the caller needs to know of a failed one (which
/// agent sent it, for an endpoint's driver).
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    /// The driver's own slot on sockets that would block.
    pub sender: SenderId,
    /// What the sockets would not take yet, oldest first.
    unsent: VecDeque<(Arc<Socket>, Transmit<Vec<u8>>, T)>,
}

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Self {
            sender: SenderId::new(),
            unsent: VecDeque::new(),
        }
    }
}

impl<T> Outbox<T> {
    /// Sends what waited for its socket, then `new`, in order; returns the datagrams a
    /// socket refused with an error, for the caller to tell the core
    /// (`handle_unreachable`: a check in flight on that pair fails at once).
    pub fn send_all(
        &mut self,
        cx: &mut Context<'_>,
        new: impl Iterator<Item = (Arc<Socket>, Transmit<Vec<u8>>, T)>,
    ) -> Vec<(Transmit<Vec<u8>>, T, std::io::Error)> {
        let mut failed = Vec::new();
        let waiting = std::mem::take(&mut self.unsent);
        for (socket, t, tag) in waiting.into_iter().chain(new) {
            if let Err(e) = self.send(cx, socket, t, tag) {
                failed.push(e);
            }
        }
        failed
    }

    /// Sends one datagram, or keeps it until its socket is writable (the socket has the
    /// waker). A socket already holding datagrams back keeps the new one behind them, so
    /// each socket's datagrams leave in order.
    #[allow(clippy::type_complexity)]
    fn send(
        &mut self,
        cx: &mut Context<'_>,
        socket: Arc<Socket>,
        t: Transmit<Vec<u8>>,
        tag: T,
    ) -> Result<(), (Transmit<Vec<u8>>, T, std::io::Error)> {
        let behind = self.unsent.iter().any(|(s, ..)| Arc::ptr_eq(s, &socket));
        if !behind {
            match socket.poll_send_to(self.sender, cx, &t.data, t.to) {
                Poll::Ready(Ok(_)) => return Ok(()),
                Poll::Ready(Err(e)) => {
                    tracing::debug!(from = %t.from, to = %t.to, error = %e, "send failed");
                    return Err((t, tag, e));
                }
                Poll::Pending => {}
            }
        }
        if self.unsent.len() < MAX_UNSENT {
            self.unsent.push_back((socket, t, tag));
        } else {
            tracing::debug!(from = %t.from, to = %t.to, "socket busy and queue full: datagram dropped");
        }
        Ok(())
    }
}
