//! The one registry of an agent's sockets: its UDP sockets, each with the component it
//! belongs to and the buffer sizes the system granted; its ICE-TCP sockets (listeners and
//! simultaneous-open sockets, RFC 6544), each with its component; and its open TCP
//! connections (ICE-TCP, TURN and STUN servers over TCP or TLS) by their writer.
//!
//! Invariants, kept by its methods: at most one UDP socket per local address; the UDP
//! sockets are sorted by local address (look-ups by address are binary searches, and the
//! driver's round-robin list is this list); `generation` changes whenever the set of UDP
//! sockets does, so that a reader caching its component's sockets knows when to look
//! again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Waker;

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

/// A local ICE-TCP socket of a component (a candidate's base).
#[derive(Debug)]
pub(crate) struct TcpLocal {
    pub stream: StreamId,
    pub component: ComponentId,
    kind: TcpLocalKind,
}

impl TcpLocal {
    /// True for a listener (a passive candidate's base).
    pub fn is_listener(&self) -> bool {
        matches!(self.kind, TcpLocalKind::Listener(_))
    }
}

#[derive(Debug)]
enum TcpLocalKind {
    /// A listener, accepting in its own task (`crate::tcp::serve`), which keeps its waker
    /// here and stops once the entry is gone.
    Listener(Option<Waker>),
    /// A simultaneous-open socket: bound, never listening; held so that its port stays the
    /// candidate's.
    SimultaneousOpen(#[allow(dead_code, reason = "held for its port")] socket2::Socket),
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    udp: Vec<UdpEntry>,
    generation: u64,
    tcp_locals: BTreeMap<SocketAddr, TcpLocal>,
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

    /// Registers an ICE-TCP listener of `component` bound to `local`; its task then calls
    /// [`Self::listener_waiting`].
    pub fn add_listener(&mut self, local: SocketAddr, stream: StreamId, component: ComponentId) {
        self.insert_tcp_local(local, stream, component, TcpLocalKind::Listener(None));
    }

    /// Registers (and holds) the simultaneous-open socket of `component` bound to `local`.
    pub fn add_so_socket(
        &mut self,
        local: SocketAddr,
        stream: StreamId,
        component: ComponentId,
        socket: socket2::Socket,
    ) {
        let kind = TcpLocalKind::SimultaneousOpen(socket);
        self.insert_tcp_local(local, stream, component, kind);
    }

    fn insert_tcp_local(
        &mut self,
        local: SocketAddr,
        stream: StreamId,
        component: ComponentId,
        kind: TcpLocalKind,
    ) {
        let entry = TcpLocal {
            stream,
            component,
            kind,
        };
        self.tcp_locals.insert(local, entry);
    }

    /// For the listener's task: keeps its waker, to be woken when the listener is removed;
    /// false when it is not (or no longer) registered, and its task should stop.
    pub fn listener_waiting(&mut self, local: SocketAddr, waker: &Waker) -> bool {
        match self.tcp_locals.get_mut(&local) {
            Some(TcpLocal {
                kind: TcpLocalKind::Listener(w),
                ..
            }) => {
                if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *w = Some(waker.clone());
                }
                true
            }
            _ => false,
        }
    }

    /// The ICE-TCP sockets, by local address.
    pub fn tcp_locals(&self) -> impl Iterator<Item = (SocketAddr, &TcpLocal)> + '_ {
        self.tcp_locals.iter().map(|(a, e)| (*a, e))
    }

    /// Forgets the ICE-TCP socket bound to `local` (a listener's task is woken, and stops).
    pub fn remove_tcp_local(&mut self, local: SocketAddr) -> Option<TcpLocal> {
        let entry = self.tcp_locals.remove(&local)?;
        if let TcpLocalKind::Listener(Some(w)) = &entry.kind {
            w.wake_by_ref();
        }
        Some(entry)
    }

    /// Wakes the listeners' tasks (the agent is closing: they see it and stop).
    pub fn wake_listeners(&self) {
        for entry in self.tcp_locals.values() {
            if let TcpLocalKind::Listener(Some(w)) = &entry.kind {
                w.wake_by_ref();
            }
        }
    }

    /// Ends the TCP connections whose local address is on `ip` (its address went away):
    /// their writers are dropped, which ends their tasks.
    pub fn end_tcp_on(&mut self, ip: std::net::IpAddr) {
        self.tcp.retain(|(local, _), _| local.ip() != ip);
    }

    /// Forgets everything: the sockets close once their last user lets them go, the
    /// listeners' tasks stop, the TCP connections end.
    pub fn clear(&mut self) {
        if !self.udp.is_empty() {
            self.udp.clear();
            self.generation += 1;
        }
        for local in self.tcp_locals.keys().copied().collect::<Vec<_>>() {
            self.remove_tcp_local(local);
        }
        self.tcp.clear();
    }

    fn position(&self, local: SocketAddr) -> Result<usize, usize> {
        self.udp.binary_search_by(|e| e.socket.local().cmp(&local))
    }
}
