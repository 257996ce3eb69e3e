//! TCP connections: those the agent asks for (STUN and TURN servers over TCP, TURN over
//! TLS, and ICE-TCP checks), and those its ICE-TCP listeners accept. One task per
//! connection connects (and does the TLS handshake), then reads frames into the agent and
//! writes what the agent sends: STUN and ChannelData messages to servers (RFC 8656 §12.5),
//! RFC 4571 packets (a 16-bit length before each) over ICE-TCP (RFC 6544). An ICE-TCP
//! connection that ends is reported to the agent
//! ([`handle_tcp_closed`](librice_proto::agent::Agent::handle_tcp_closed)).
//!
//! A listener carries at most [`MAX_ACCEPTED`] connections at once. An accepted connection
//! must bring a STUN message as its first packet within [`FIRST_PACKET_TIMEOUT`], and one
//! whose stream cannot be framed is closed; when the listener is full, a new connection
//! closes the oldest one that has not brought its STUN message yet. So connections from
//! anyone but the peer cannot hold the listener, or memory, for long, nor keep the peer
//! out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::{FutureExt, StreamExt};
use librice_proto::stun::{FramingMode, StreamFramer};
use librice_proto::{Transmit, TransportType};

use crate::runtime::{AsyncTcpListener, AsyncTcpStream};
use crate::shared::Shared;

/// The largest read.
const READ_BUF: usize = 16 * 1024;

/// How many accepted connections one listener carries at once; beyond, new ones are closed.
pub(crate) const MAX_ACCEPTED: usize = 32;

/// How long an accepted connection may take to bring its first packet (a STUN check).
pub(crate) const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// To a STUN or TURN server: STUN and ChannelData messages, as they are.
    Server,
    /// ICE-TCP: a 16-bit length before each packet (RFC 4571).
    Ice,
}

/// A TCP connection the agent asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpRequest {
    pub id: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub tls: bool,
    pub framing: Framing,
}

/// Connects for the agent's request, then carries the connection until either end closes
/// it or the agent does.
pub(crate) async fn run(shared: Arc<Shared>, request: TcpRequest) {
    let TcpRequest {
        id,
        local,
        remote,
        tls,
        framing,
    } = request;
    if tls && cfg!(not(feature = "tls")) {
        // Only a server given in a whole `AgentConfig` gets here: the builder refuses the
        // others (`Error::TlsUnavailable`).
        tracing::warn!(%remote, "TURN server over TLS skipped: librice was built without its `tls` feature");
        failed(&shared, id);
        return;
    }
    let runtime = Arc::clone(&shared.runtime);
    let connected = runtime.tcp_connect(local, remote).await;
    let (stream, local) = match connected.and_then(|s| {
        let addr = s.local_addr()?;
        Ok((s, addr))
    }) {
        Ok(ok) => ok,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "TCP connection failed");
            failed(&shared, id);
            return;
        }
    };
    #[cfg(feature = "tls")]
    if tls {
        over_tls(shared, id, local, remote, stream).await;
        return;
    }
    carry(shared, Some(id), None, local, remote, stream, framing).await;
}

/// RFC 8656 §3.1: TLS over TCP to the server, named by its IP address.
#[cfg(feature = "tls")]
async fn over_tls(
    shared: Arc<Shared>,
    id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    stream: Box<dyn crate::runtime::AsyncTcpStream>,
) {
    use futures_rustls::TlsConnector;
    use futures_rustls::rustls::pki_types::ServerName;

    let config = match crate::tls::client_config(shared.tls_insecure) {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(%remote, error = %e, "no TLS configuration for the TURN server");
            failed(&shared, id);
            return;
        }
    };
    let name = ServerName::IpAddress(remote.ip().into());
    match TlsConnector::from(config).connect(name, stream).await {
        Ok(tls_stream) => {
            carry(
                shared,
                Some(id),
                None,
                local,
                remote,
                tls_stream,
                Framing::Server,
            )
            .await
        }
        Err(e) => {
            tracing::info!(%remote, error = %e, "TLS handshake with the TURN server failed");
            failed(&shared, id);
        }
    }
}

fn failed(shared: &Shared, id: u64) {
    let mut st = shared.lock();
    let now = shared.runtime.now();
    let _ = st.proto.handle_tcp_connect_failed(now, id);
    st.wake_driver();
}

/// The most bytes waiting for one TCP connection's writer. Beyond it packets are dropped,
/// as a congested UDP path drops them, so that a peer or server that stops reading cannot
/// make the agent's memory grow.
pub(crate) const MAX_QUEUED_BYTES: usize = 256 * 1024;

/// The sending end of an open TCP connection: its task writes what is queued here, in
/// order. The queue is bounded by [`MAX_QUEUED_BYTES`] (its owner, with [`TcpQueue`],
/// of that bound).
#[derive(Debug, Clone)]
pub(crate) struct TcpWriter {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

/// The connection task's end of a [`TcpWriter`].
struct TcpQueue {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

/// Why [`TcpWriter::send`] did not queue a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueRefused {
    /// The connection has ended.
    Closed,
    /// [`MAX_QUEUED_BYTES`] are already waiting: the packet is dropped.
    Full,
}

impl TcpWriter {
    fn new() -> (Self, TcpQueue) {
        let (tx, rx) = mpsc::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let queue = TcpQueue {
            rx,
            queued: Arc::clone(&queued),
        };
        (Self { tx, queued }, queue)
    }

    /// Queues `data` for writing, unless the connection ended or its queue is full.
    pub(crate) fn send(&self, data: Vec<u8>) -> Result<(), QueueRefused> {
        let len = data.len();
        if self.queued.load(Ordering::Relaxed).saturating_add(len) > MAX_QUEUED_BYTES {
            return Err(QueueRefused::Full);
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        self.tx.unbounded_send(data).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            QueueRefused::Closed
        })
    }
}

impl TcpQueue {
    /// The next packet to write; `None` once every writer is gone.
    async fn next(&mut self) -> Option<Vec<u8>> {
        let data = self.rx.next().await?;
        self.queued.fetch_sub(data.len(), Ordering::Relaxed);
        Some(data)
    }
}

/// What a listener keeps of a connection it accepted: whether it brought its STUN message
/// yet, and how to close it.
#[derive(Debug)]
struct Accepted {
    proven: Arc<AtomicBool>,
    close: oneshot::Sender<()>,
}

/// The connections a listener holds, bounded: the owner of the rule that strangers cannot
/// hold a listener. A connection counts until it ends, or, when proven connections are
/// not counted (the endpoint's listeners, which hand them over to an agent), until it is
/// proven. When full, the oldest connection not proven yet is closed to make room; when
/// every one is proven, the new one is refused.
#[derive(Debug)]
pub(crate) struct Admission {
    live: VecDeque<Accepted>,
    cap: usize,
    count_proven: bool,
}

impl Admission {
    /// At most `cap` connections; `count_proven`: whether proven ones still count.
    pub(crate) fn new(cap: usize, count_proven: bool) -> Self {
        Self {
            live: VecDeque::new(),
            cap: cap.max(1),
            count_proven,
        }
    }

    /// Admits a new connection (its end, to hand to the task that carries it), or refuses
    /// it (`None`).
    pub(crate) fn admit(&mut self) -> Option<AcceptedEnd> {
        let count_proven = self.count_proven;
        self.live.retain(|a| {
            !a.close.is_canceled() && (count_proven || !a.proven.load(Ordering::Relaxed))
        });
        if self.live.len() >= self.cap {
            let oldest = self
                .live
                .iter()
                .position(|a| !a.proven.load(Ordering::Relaxed))?;
            if let Some(a) = self.live.remove(oldest) {
                let _ = a.close.send(());
            }
        }
        let proven = Arc::new(AtomicBool::new(false));
        let (close, closed) = oneshot::channel();
        self.live.push_back(Accepted {
            proven: Arc::clone(&proven),
            close,
        });
        Some(AcceptedEnd { proven, closed })
    }
}

/// The listener's next connection, or `None` once `keep` (called with the task's waker
/// at each poll, to register it with the listener's owner) says to stop. Failed accepts
/// are traced and skipped.
pub(crate) async fn next_connection(
    listener: &dyn AsyncTcpListener,
    local: SocketAddr,
    mut keep: impl FnMut(&std::task::Waker) -> bool,
) -> Option<(Box<dyn AsyncTcpStream>, SocketAddr)> {
    loop {
        let accepted = futures::future::poll_fn(|cx| {
            if !keep(cx.waker()) {
                return Poll::Ready(None);
            }
            listener.poll_accept(cx).map(Some)
        })
        .await?;
        match accepted {
            Ok(ok) => return Some(ok),
            Err(e) => tracing::debug!(%local, error = %e, "accept failed"),
        }
    }
}

/// The connection's side of [`Accepted`].
#[derive(Debug)]
pub(crate) struct AcceptedEnd {
    pub proven: Arc<AtomicBool>,
    pub closed: oneshot::Receiver<()>,
}

/// Carries an open connection (plain or TLS) until either end closes it: `id` is the
/// agent's request it answers; `accepted` is set for a connection an ICE-TCP listener
/// accepted.
pub(crate) async fn carry<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    id: Option<u64>,
    accepted: Option<AcceptedEnd>,
    local: SocketAddr,
    remote: SocketAddr,
    stream: S,
    framing: Framing,
) {
    let runtime = Arc::clone(&shared.runtime);
    let (tx, mut queue) = TcpWriter::new();
    {
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        st.registry.add_tcp(local, remote, tx);
        if let Some(id) = id {
            let now = runtime.now();
            let _ = st.proto.handle_tcp_connected(now, id, local);
        }
        st.wake_driver();
    }
    let (mut reader, mut writer) = stream.split();
    let writing = async {
        while let Some(data) = queue.next().await {
            let written = match framing {
                Framing::Server => writer.write_all(&data).await,
                Framing::Ice => match u16::try_from(data.len()) {
                    Ok(len) => {
                        let mut framed = Vec::with_capacity(2 + data.len());
                        framed.extend_from_slice(&len.to_be_bytes());
                        framed.extend_from_slice(&data);
                        writer.write_all(&framed).await
                    }
                    Err(_) => {
                        tracing::debug!(%remote, len = data.len(), "packet too long for RFC 4571: dropped");
                        Ok(())
                    }
                },
            };
            if let Err(e) = written {
                tracing::debug!(%remote, error = %e, "TCP write failed");
                break;
            }
        }
        let _ = writer.close().await;
    }
    .fuse();
    let (proven, closed) = match accepted {
        Some(a) => (Some(a.proven), Some(a.closed)),
        None => (None, None),
    };
    let reading = read_frames(&shared, &mut reader, local, remote, framing, proven).fuse();
    // Closed by the listener to make room (see the module docs).
    let evicted = async {
        match closed {
            Some(closed) => {
                let _ = closed.await;
            }
            None => futures::future::pending::<()>().await,
        }
    }
    .fuse();
    futures::pin_mut!(writing, reading, evicted);
    futures::select! {
        _ = writing => {},
        _ = reading => {},
        _ = evicted => tracing::debug!(%remote, "accepted connection closed to make room"),
    }
    let mut st = shared.lock();
    st.registry.remove_tcp(local, remote);
    if framing == Framing::Ice && !st.closed {
        let now = runtime.now();
        st.proto.handle_tcp_closed(now, local, remote);
        st.dispatch_events();
        st.wake_driver();
    }
}

/// Reads the connection's frames into the agent until it ends. An accepted connection
/// (`proven` set) must bring a STUN message first, within [`FIRST_PACKET_TIMEOUT`]; then
/// `proven` becomes true.
async fn read_frames<R: AsyncRead + Unpin>(
    shared: &Shared,
    reader: &mut R,
    local: SocketAddr,
    remote: SocketAddr,
    framing: Framing,
    proven: Option<Arc<AtomicBool>>,
) {
    let runtime = Arc::clone(&shared.runtime);
    let mode = match framing {
        Framing::Server => FramingMode::StunAndChannelData,
        Framing::Ice => FramingMode::Rfc4571,
    };
    let mut framer = StreamFramer::new(mode);
    let mut buf = vec![0u8; READ_BUF];
    let mut first = proven.is_some();
    loop {
        let read = reader.read(&mut buf);
        let n = if first {
            match crate::runtime::timeout(&*runtime, FIRST_PACKET_TIMEOUT, read).await {
                Some(r) => r,
                None => {
                    tracing::debug!(%remote, "accepted connection silent: closed");
                    return;
                }
            }
        } else {
            read.await
        };
        let n = match n {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        let now = runtime.now();
        while let Some(frame) = framer.next_frame() {
            let Ok(frame) = frame else {
                tracing::debug!(%remote, "TCP stream out of sync: closed");
                return;
            };
            if first {
                if !librice_proto::stun::looks_like_stun(frame.bytes) {
                    tracing::debug!(%remote, "accepted connection did not start with STUN: closed");
                    return;
                }
                first = false;
                if let Some(p) = &proven {
                    p.store(true, Ordering::Relaxed);
                }
            }
            let t = Transmit {
                transport: TransportType::Tcp,
                from: remote,
                to: local,
                data: frame.bytes,
            };
            st.ingest_copy(now, t);
        }
        // The driver flushes what the core has to send and tell.
        st.wake_driver();
    }
}

/// Accepts connections on an ICE-TCP listener of the agent (a passive candidate at
/// `local`) and carries each, until the agent closes.
pub(crate) async fn serve(
    shared: Weak<Shared>,
    listener: Box<dyn AsyncTcpListener>,
    local: SocketAddr,
) {
    let mut admission = Admission::new(MAX_ACCEPTED, true);
    loop {
        let accepted = next_connection(&*listener, local, |waker| {
            let Some(strong) = shared.upgrade() else {
                return false;
            };
            let mut st = strong.lock();
            !st.closed && st.registry.listener_waiting(local, waker)
        })
        .await;
        let Some((stream, remote)) = accepted else {
            return;
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some(end) = admission.admit() else {
            tracing::debug!(%local, %remote, "listener full of live connections: refused");
            continue;
        };
        let runtime = Arc::clone(&shared.runtime);
        runtime.spawn(Box::pin(carry(
            shared,
            None,
            Some(end),
            local,
            remote,
            stream,
            Framing::Ice,
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_is_not_written_holds_a_bounded_queue() {
        let (writer, mut queue) = TcpWriter::new();
        let packet = vec![0u8; 1000];
        let fits = MAX_QUEUED_BYTES / packet.len();
        for _ in 0..fits {
            assert_eq!(writer.send(packet.clone()), Ok(()));
        }
        // The peer stopped reading: the next packets are dropped, not kept.
        for _ in 0..1000 {
            assert_eq!(writer.send(packet.clone()), Err(QueueRefused::Full));
        }
        // Writing one frees its room.
        let written = queue.next().now_or_never().flatten();
        assert_eq!(written.map(|d| d.len()), Some(packet.len()));
        assert_eq!(writer.send(packet.clone()), Ok(()));
        assert_eq!(writer.send(packet.clone()), Err(QueueRefused::Full));
        // The connection ended: refused as closed, and the count stays true.
        drop(queue);
        assert_eq!(writer.send(vec![1]), Err(QueueRefused::Closed));
    }
}
