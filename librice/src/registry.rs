//! The one registry of an agent's sockets: its UDP sockets, each with the component it
//! belongs to and the buffer sizes the system granted, and its open TCP connections (TURN
//! and STUN servers over TCP or TLS) by their writer.
//!
//! Invariants, kept by its methods: at most one UDP socket per local address; the UDP
//! sockets are sorted by local address (look-ups by address are binary searches, and the
//! driver's round-robin list is this list); `generation` changes whenever the set of UDP
//! sockets does, so that a reader caching its component's sockets knows when to look
//! again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use librice_proto::agent::{ComponentId, StreamId};

use crate::send::Socket;
use crate::socket::SocketBuffers;

/// A registered UDP socket.
#[derive(Debug)]
pub(crate) struct UdpEntry {
    pub socket: Arc<Socket>,
    pub stream: StreamId,
    pub component: ComponentId,
    /// The buffer sizes the system granted it.
    pub buffers: SocketBuffers,
}

pub(crate) use crate::tcp::TcpWriter;

#[derive(Debug, Default)]
pub(crate) struct Registry {
    udp: Vec<UdpEntry>,
    generation: u64,
    tcp: BTreeMap<(SocketAddr, SocketAddr), TcpWriter>,
}

impl Registry {
    /// Registers a UDP socket of `component`; false (and nothing changes) if one is
    /// already registered on its address.
    pub fn add_udp(
        &mut self,
        socket: Arc<Socket>,
        stream: StreamId,
        component: ComponentId,
        buffers: SocketBuffers,
    ) -> bool {
        let Err(at) = self.position(socket.local()) else {
            return false;
        };
        self.udp.insert(
            at,
            UdpEntry {
                socket,
                stream,
                component,
                buffers,
            },
        );
        self.generation += 1;
        true
    }

    /// Forgets the UDP socket bound to `local` (its address went away); it closes once
    /// its last user lets it go. Returns its entry.
    pub fn remove_udp(&mut self, local: SocketAddr) -> Option<UdpEntry> {
        let at = self.position(local).ok()?;
        self.generation += 1;
        Some(self.udp.remove(at))
    }

    /// The UDP socket bound to `local`.
    pub fn udp(&self, local: SocketAddr) -> Option<&Arc<Socket>> {
        let at = self.position(local).ok()?;
        Some(&self.udp[at].socket)
    }

    /// Every UDP socket, by local address: the driver's round-robin list.
    pub fn udp_entries(&self) -> &[UdpEntry] {
        &self.udp
    }

    /// The UDP sockets of one component.
    pub fn component_udp(
        &self,
        stream: StreamId,
        component: ComponentId,
    ) -> impl Iterator<Item = &UdpEntry> + '_ {
        self.udp
            .iter()
            .filter(move |e| e.stream == stream && e.component == component)
    }

    /// Changes whenever a UDP socket is added or removed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Registers the writer of a TCP connection from `local` to `remote` (replacing, and so
    /// ending, an older one between the same addresses).
    pub fn add_tcp(&mut self, local: SocketAddr, remote: SocketAddr, writer: TcpWriter) {
        self.tcp.insert((local, remote), writer);
    }

    /// Forgets a TCP connection: dropping its writer ends its task.
    pub fn remove_tcp(&mut self, local: SocketAddr, remote: SocketAddr) {
        self.tcp.remove(&(local, remote));
    }

    /// The writer of the TCP connection from `local` to `remote`.
    pub fn tcp(&self, local: SocketAddr, remote: SocketAddr) -> Option<&TcpWriter> {
        self.tcp.get(&(local, remote))
    }

    /// Forgets everything: the sockets close once their last user lets them go, the TCP
    /// connections end.
    pub fn clear(&mut self) {
        if !self.udp.is_empty() {
            self.udp.clear();
            self.generation += 1;
        }
        self.tcp.clear();
    }

    fn position(&self, local: SocketAddr) -> Result<usize, usize> {
        self.udp.binary_search_by(|e| e.socket.local().cmp(&local))
    }
}
