//! The endpoint's ICE-TCP listeners (RFC 6544): one per address, shared by every agent
//! that asked for TCP candidates (their passive candidate is the listener's address).
//!
//! A connection belongs to no agent until its first RFC 4571 packet arrives: a check whose
//! USERNAME names an agent's local ufrag (RFC 8445 §7.2.2), routed by the endpoint's
//! [`MuxRouter`](librice_proto::mux::MuxRouter) as a datagram would be. From then on the
//! connection is that agent's, carried as an agent's own accepted connections are
//! (`crate::tcp`), the bytes already read included. A connection whose first packet is not
//! such a check, or that sends nothing within [`FIRST_PACKET_TIMEOUT`], is closed; at most
//! [`MAX_UNROUTED`] connections wait for their first packet at once (when full, the
//! oldest one makes room), so strangers cannot hold sockets or memory for long.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use librice_proto::stun::{FramingMode, StreamFramer};
use librice_proto::{Transmit, TransportType};

use super::EndpointShared;
use crate::runtime::{AsyncTcpListener, AsyncTcpStream};
use crate::send::relock;
use crate::tcp::{AcceptedEnd, Admission, FIRST_PACKET_TIMEOUT, Framing, carry, next_connection};

/// Connections waiting for their first packet, at most, per listener.
pub(crate) const MAX_UNROUTED: usize = 256;

/// The largest first packet read before routing: an RFC 4571 length and a check.
const FIRST_READ: usize = 2 + 1500;

/// Accepts connections on the endpoint's listener at `local` until the endpoint goes.
pub(crate) async fn serve(
    endpoint: Weak<EndpointShared>,
    index: usize,
    listener: Box<dyn AsyncTcpListener>,
    local: SocketAddr,
) {
    // A connection counts until it is routed (proven): then it is its agent's.
    let mut admission = Admission::new(MAX_UNROUTED, false);
    loop {
        let accepted = next_connection(&*listener, local, |waker| {
            let Some(ep) = endpoint.upgrade() else {
                return false;
            };
            ep.listener_waiting(index, waker);
            !ep.stopping()
        })
        .await;
        let Some((stream, remote)) = accepted else {
            tracing::debug!(%local, "endpoint listener stops");
            return;
        };
        let Some(ep) = endpoint.upgrade() else {
            return;
        };
        let Some(end) = admission.admit() else {
            continue;
        };
        let runtime = Arc::clone(&ep.runtime);
        runtime.spawn(Box::pin(route(
            Arc::downgrade(&ep),
            stream,
            local,
            remote,
            end,
        )));
    }
}

/// Reads a connection's first packet, routes it to its agent and hands the connection
/// over, or closes it (see the module docs).
async fn route(
    endpoint: Weak<EndpointShared>,
    mut stream: Box<dyn AsyncTcpStream>,
    local: SocketAddr,
    remote: SocketAddr,
    waiting: AcceptedEnd,
) {
    let AcceptedEnd {
        proven: routed,
        closed,
    } = waiting;
    let Some(runtime) = endpoint.upgrade().map(|ep| Arc::clone(&ep.runtime)) else {
        return;
    };
    let mut read = Vec::with_capacity(FIRST_READ);
    let mut framer = StreamFramer::new(FramingMode::Rfc4571);
    let first = async {
        let mut buf = [0u8; 512];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            if read.len() + n > FIRST_READ {
                return None;
            }
            read.extend_from_slice(&buf[..n]);
            framer.push(&buf[..n]);
            match framer.next_frame() {
                Some(Ok(frame)) => return Some(frame.bytes.to_vec()),
                Some(Err(_)) => return None,
                None => {}
            }
        }
    };
    let mut closed = closed.fuse();
    let first = futures::select! {
        first = crate::runtime::timeout(&*runtime, FIRST_PACKET_TIMEOUT, first).fuse() => first.flatten(),
        _ = closed => {
            tracing::debug!(%remote, "connection closed to make room");
            return;
        }
    };
    let Some(first) = first else {
        tracing::debug!(%remote, %local, "no check first on the connection: closed");
        return;
    };
    let Some(ep) = endpoint.upgrade() else {
        return;
    };
    let t = Transmit {
        transport: TransportType::Tcp,
        from: remote,
        to: local,
        data: &first[..],
    };
    let id = match relock(&ep.router).route(&t) {
        Ok(id) if librice_proto::stun::looks_like_stun(&first) => id,
        _ => {
            tracing::debug!(%remote, %local, "first packet for no agent: connection closed");
            return;
        }
    };
    let Some(agent) = ep.agent(id) else {
        return;
    };
    drop(ep);
    routed.store(true, Ordering::Relaxed);
    tracing::debug!(%remote, agent = %id, "ICE-TCP connection routed");
    let (_keep, never) = oneshot::channel();
    let proven = Arc::new(AtomicBool::new(false));
    carry(
        agent,
        None,
        Some(AcceptedEnd {
            proven,
            closed: never,
        }),
        local,
        remote,
        Replayed {
            prefix: read,
            at: 0,
            inner: stream,
        },
        Framing::Ice,
    )
    .await;
}

/// A stream whose first bytes were read already: they are read again, then the rest.
struct Replayed {
    prefix: Vec<u8>,
    at: usize,
    inner: Box<dyn AsyncTcpStream>,
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = buf.len().min(this.prefix.len() - this.at);
            buf[..n].copy_from_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
