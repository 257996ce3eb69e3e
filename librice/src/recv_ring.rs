//! The receive ring of a component's reader: datagrams read from a socket in one batch
//! ([`AsyncUdpSocket::poll_recv_batch`], `recvmmsg` where the OS has it), fed to the core
//! under one lock, and handed out one by one into the caller's buffer without taking the
//! lock again. Its storage is allocated once, on first use: in steady state nothing is
//! allocated per datagram.
//!
//! [`AsyncUdpSocket::poll_recv_batch`]: crate::runtime::AsyncUdpSocket::poll_recv_batch

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::ops::Range;
use std::task::{Context, Poll};

use crate::datagram::RecvMeta;
use crate::runtime::{RECV_BATCH_MAX, RecvInfo};
use crate::send::Socket;

/// The ring's storage: a batch of datagrams of one slot each, a full batch
/// ([`RECV_BATCH_MAX`]) for callers' buffers of up to [`MIN_SLOT`] bytes (66 KiB). A
/// larger caller's buffer gets fewer, larger slots.
const RING_BYTES: usize = RECV_BATCH_MAX * (MIN_SLOT + RELAY_FRAMING);

/// The shortest slot: what the agent reads on the component's sockets besides data (STUN
/// checks and consent checks, TURN answers) must arrive whole, whatever buffer the caller
/// receives its data in.
const MIN_SLOT: usize = 2048;

/// Room for the framing of data relayed through TURN beyond its payload: a Data
/// indication's header, XOR-PEER-ADDRESS (IPv6) and DATA attribute with padding
/// (RFC 8656 §11.4), more than a ChannelData header (§12.4).
const RELAY_FRAMING: usize = 64;

/// Datagrams read in one batch, then the component's data among them waiting to be handed
/// out.
///
/// Invariants: `ready` holds ranges inside `storage` of the batch last read, oldest first;
/// a new batch is read only once `ready` is empty, so that no range is overwritten before
/// it is handed out. Each datagram of a batch was read into a slot of `slot` bytes: at
/// least [`MIN_SLOT`] (so STUN for the agent arrives whole) and the caller's buffer plus
/// the TURN framing; data is cut to the caller's buffer when it is copied out, so a
/// datagram too long for that buffer is truncated just as a direct read into it would be.
#[derive(Debug)]
pub(crate) struct RecvRing {
    storage: Vec<u8>,
    /// The slot length of the batch last read.
    slot: usize,
    /// The batch last read: each datagram's length and sender, in `info[..read]`.
    info: [RecvInfo; RECV_BATCH_MAX],
    read: usize,
    /// The component's data of that batch, not handed out yet.
    ready: VecDeque<(Range<usize>, RecvMeta)>,
}

impl RecvRing {
    pub fn new() -> Self {
        Self {
            storage: vec![0; RING_BYTES],
            slot: 0,
            info: [RecvInfo::default(); RECV_BATCH_MAX],
            read: 0,
            ready: VecDeque::with_capacity(RECV_BATCH_MAX),
        }
    }

    /// Reads a batch from `socket` for a caller's buffer of `want` bytes, into slots of
    /// `want` plus the TURN framing, at least [`MIN_SLOT`] (as many as the ring holds, at
    /// least one: a slot longer than the ring is cut to it, which still holds the largest
    /// UDP datagram); the
    /// datagrams are then [`Self::datagram`] `0..n` for the `n` returned. Only when
    /// nothing is ready (what was ready is dropped otherwise, which the reader never lets
    /// happen).
    pub fn fill(
        &mut self,
        cx: &mut Context<'_>,
        socket: &Socket,
        want: usize,
    ) -> Poll<io::Result<usize>> {
        let slot = want.saturating_add(RELAY_FRAMING).max(MIN_SLOT);
        debug_assert!(self.ready.is_empty(), "a batch read over undelivered data");
        self.ready.clear();
        self.read = 0;
        let slots = (RING_BYTES / slot).clamp(1, RECV_BATCH_MAX);
        let mut chunks = self.storage.chunks_mut(slot);
        let mut bufs: [IoSliceMut<'_>; RECV_BATCH_MAX] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        let n = std::task::ready!(socket.poll_recv_batch(
            cx,
            &mut bufs[..slots],
            &mut self.info[..slots]
        ))?;
        self.slot = slot;
        self.read = n.min(slots);
        Poll::Ready(Ok(self.read))
    }

    /// The `i`-th datagram of the batch last read, and its sender.
    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddr) {
        let info = self.info[i];
        let start = i * self.slot;
        let end = start + info.len.min(self.slot);
        (&self.storage[start..end], info.from)
    }

    /// Keeps the component's data of datagram `i`: the bytes at `range` inside it.
    pub fn keep(&mut self, i: usize, range: Range<usize>, meta: RecvMeta) {
        let start = i * self.slot;
        self.ready
            .push_back((start + range.start..start + range.end, meta));
    }

    /// Hands out the oldest ready datagram: copied into `buf` (truncated to it), with its
    /// metadata.
    pub fn pop_into(&mut self, buf: &mut [u8]) -> Option<RecvMeta> {
        let (range, mut meta) = self.ready.pop_front()?;
        let data = &self.storage[range];
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        meta.len = len;
        Some(meta)
    }

    /// Hands out the oldest ready datagram in a buffer of its own.
    pub fn pop_owned(&mut self) -> Option<(Vec<u8>, RecvMeta)> {
        let (range, meta) = self.ready.pop_front()?;
        Some((self.storage[range].to_vec(), meta))
    }
}
