//! The I/O side of the process's mDNS service: its multicast sockets and the task that
//! drives the sans-IO [`Mdns`](librice_proto::mdns::Mdns) on one runtime.
//!
//! Sockets, all bound with `SO_REUSEADDR` (and `SO_REUSEPORT` on Unix) so that they share
//! port 5353 with the system's responder (avahi, mDNSResponder) and with other processes:
//! - one group socket per address family, on the unspecified address, port 5353, joined to
//!   224.0.0.251 (or ff02::fb) on each interface an agent gathers on: it receives the
//!   multicast queries and answers;
//! - one interface socket per interface address, on that address, port 5353, with the
//!   multicast interface set to it: every multicast goes out once per interface through
//!   these (RFC 6762 §5: queries from port 5353), and unicast answers to our queries
//!   (the QU bit, §5.4) come back to them.
//!
//! All of them send with a TTL (hop limit) of 255 (RFC 6762 §11) and loop multicast back
//! to this host, so that agents of one machine resolve each other.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use librice_proto::mdns::{MAX_MESSAGE, MDNS_PORT, MDNS_V4, MDNS_V6, MdnsTransmit};
use socket2::{Domain, Protocol, Socket, Type};

use super::{Service, deliver};
use crate::runtime::{AsyncUdpSocket, BoxFuture, DeadlineTimer, Runtime};

/// Loop iterations per poll before yielding to the runtime.
const MAX_ROUNDS: usize = 16;

/// Datagrams read from one socket per round.
const MAX_READS: usize = 64;

/// The multicast TTL and hop limit (RFC 6762 §11: 255, so that a receiver can tell a
/// link-local sender).
const MDNS_TTL: u32 = 255;

/// A socket of the service.
#[derive(Debug)]
struct EngineSocket {
    socket: Arc<dyn AsyncUdpSocket>,
    /// A second handle on the same socket, for joins after it was wrapped.
    raw: UdpSocket,
}

/// The sockets and the task of the service, on the runtime it runs on.
#[derive(Debug, Default)]
pub(crate) struct Engine {
    /// Bumped on each start; a task of an older epoch ends.
    epoch: u64,
    runtime: Option<Arc<dyn Runtime>>,
    group_v4: Option<EngineSocket>,
    group_v6: Option<EngineSocket>,
    /// By interface address.
    interfaces: Vec<(IpAddr, EngineSocket)>,
    /// The interface addresses agents gather on: joined, and joined again on a restart.
    wanted: BTreeSet<IpAddr>,
    waker: Option<Waker>,
}

impl Engine {
    /// True while a task of this engine runs.
    pub fn running(&self) -> bool {
        self.runtime.is_some()
    }

    /// Prepares the task on `runtime` (sockets bound afresh for the interfaces wanted so
    /// far), unless one runs: the caller spawns it once it has released the service's
    /// lock (a runtime that is shutting down drops a spawned task at once, and the task's
    /// `Drop` takes that lock). Fails if no group socket at all can be bound.
    pub fn start(
        &mut self,
        service: &Arc<Service>,
        runtime: &Arc<dyn Runtime>,
    ) -> io::Result<Option<BoxFuture<()>>> {
        if self.running() {
            return Ok(None);
        }
        self.epoch += 1;
        self.runtime = Some(Arc::clone(runtime));
        let wanted = std::mem::take(&mut self.wanted);
        let mut last_error = None;
        for ip in wanted {
            if let Err(e) = self.join(ip) {
                last_error = Some(e);
            }
        }
        if self.group_v4.is_none() && self.group_v6.is_none() && last_error.is_some() {
            self.stop();
            return Err(last_error.unwrap_or_else(|| io::Error::other("no mDNS socket")));
        }
        service.set_running(true);
        Ok(Some(Box::pin(EngineTask {
            service: Arc::downgrade(service),
            epoch: self.epoch,
            runtime: Arc::clone(runtime),
            timer: DeadlineTimer::default(),
            buf: vec![0; MAX_MESSAGE],
            received: Vec::new(),
        })))
    }

    /// Joins the mDNS group on the interface of `ip` and binds its interface socket, once
    /// per address. Fails if the group socket of its family cannot be bound (the name
    /// cannot be served at all); a failed join or interface socket is traced.
    pub fn join(&mut self, ip: IpAddr) -> io::Result<()> {
        let Some(runtime) = self.runtime.clone() else {
            return Err(io::Error::other("the mDNS service is not running"));
        };
        if self.wanted.contains(&ip) {
            return Ok(());
        }
        let group = match ip {
            IpAddr::V4(_) => &mut self.group_v4,
            IpAddr::V6(_) => &mut self.group_v6,
        };
        if group.is_none() {
            *group = Some(bind_group(&*runtime, ip.is_ipv6())?);
        }
        self.wanted.insert(ip);
        let index = interface_index(&*runtime, ip);
        let joined = match (ip, &*group) {
            (IpAddr::V4(v4), Some(g)) => {
                let IpAddr::V4(group) = MDNS_V4.ip() else {
                    unreachable!("MDNS_V4 is an IPv4 address")
                };
                g.raw.join_multicast_v4(&group, &v4)
            }
            (IpAddr::V6(_), Some(g)) => {
                let IpAddr::V6(group) = MDNS_V6.ip() else {
                    unreachable!("MDNS_V6 is an IPv6 address")
                };
                g.raw.join_multicast_v6(&group, index.unwrap_or(0))
            }
            (_, None) => Ok(()),
        };
        match joined {
            Ok(()) => tracing::debug!(%ip, "mDNS group joined"),
            // Already a member through another address of the same interface.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
            Err(e) => {
                tracing::warn!(%ip, error = %e, "cannot join the mDNS group on this interface")
            }
        }
        match bind_interface(&*runtime, ip, index) {
            Ok(socket) => self.interfaces.push((ip, socket)),
            Err(e) => {
                tracing::warn!(%ip, error = %e, "cannot bind an mDNS socket on this interface")
            }
        }
        Ok(())
    }

    /// Closes the sockets and forgets the runtime; the interfaces wanted are kept for the
    /// next start.
    pub fn stop(&mut self) {
        self.wanted
            .extend(self.interfaces.drain(..).map(|(ip, _)| ip));
        self.group_v4 = None;
        self.group_v6 = None;
        self.runtime = None;
        self.waker = None;
    }

    /// Wakes the task (new work in the `Mdns`).
    pub fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// The sockets to send `t` on: a multicast once per interface of its family; a
    /// unicast (an answer to a query that asked for one) on the group socket of its
    /// family, bound to the unspecified address so that the system picks the source
    /// address towards the querier, else on an interface socket of its family.
    fn targets(&self, t: &MdnsTransmit) -> Vec<Arc<dyn AsyncUdpSocket>> {
        let v6 = t.to.is_ipv6();
        let mut of_family = self
            .interfaces
            .iter()
            .filter(|(ip, _)| ip.is_ipv6() == v6)
            .map(|(_, s)| Arc::clone(&s.socket));
        if t.is_multicast() {
            return of_family.collect();
        }
        let group = if v6 { &self.group_v6 } else { &self.group_v4 };
        group
            .as_ref()
            .map(|g| Arc::clone(&g.socket))
            .or_else(|| of_family.next())
            .into_iter()
            .collect()
    }

    fn sockets(&self) -> Vec<Arc<dyn AsyncUdpSocket>> {
        self.group_v4
            .iter()
            .chain(&self.group_v6)
            .chain(self.interfaces.iter().map(|(_, s)| s))
            .map(|s| Arc::clone(&s.socket))
            .collect()
    }

    /// Sends what the `Mdns` queued, without waiting: for a closing agent's goodbyes,
    /// which must leave before the service may go away. A socket that would block drops
    /// the datagram (mDNS tolerates loss).
    pub fn send_now(&self, transmits: Vec<MdnsTransmit>) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        for t in transmits {
            for socket in self.targets(&t) {
                if let Poll::Ready(Err(e)) = socket.poll_send_to(&mut cx, &t.data, t.to) {
                    tracing::debug!(to = %t.to, error = %e, "mDNS send failed");
                }
            }
        }
    }
}

fn interface_index(runtime: &dyn Runtime, ip: IpAddr) -> Option<u32> {
    match runtime.interface_addresses() {
        Ok(all) => all.iter().find(|a| a.ip == ip).and_then(|a| a.index),
        Err(e) => {
            tracing::debug!(error = %e, "cannot list the interface addresses");
            None
        }
    }
}

fn new_socket(v6: bool) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    // Share port 5353 with the system's responder and other processes.
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    if v6 {
        socket.set_only_v6(true)?;
        socket.set_multicast_hops_v6(MDNS_TTL)?;
        socket.set_unicast_hops_v6(MDNS_TTL)?;
        socket.set_multicast_loop_v6(true)?;
    } else {
        socket.set_multicast_ttl_v4(MDNS_TTL)?;
        socket.set_ttl_v4(MDNS_TTL)?;
        socket.set_multicast_loop_v4(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn wrap(runtime: &dyn Runtime, socket: Socket) -> io::Result<EngineSocket> {
    let std: UdpSocket = socket.into();
    let raw = std.try_clone()?;
    Ok(EngineSocket {
        socket: runtime.wrap_udp_socket(std)?,
        raw,
    })
}

fn bind_group(runtime: &dyn Runtime, v6: bool) -> io::Result<EngineSocket> {
    let socket = new_socket(v6)?;
    let at = if v6 {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, MDNS_PORT))
    } else {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, MDNS_PORT))
    };
    socket.bind(&at.into())?;
    wrap(runtime, socket)
}

fn bind_interface(
    runtime: &dyn Runtime,
    ip: IpAddr,
    index: Option<u32>,
) -> io::Result<EngineSocket> {
    let socket = new_socket(ip.is_ipv6())?;
    let at = match ip {
        IpAddr::V4(v4) => {
            socket.set_multicast_if_v4(&v4)?;
            SocketAddr::from((v4, MDNS_PORT))
        }
        IpAddr::V6(v6) => {
            let index = index.unwrap_or(0);
            socket.set_multicast_if_v6(index)?;
            let scope = if crate::interfaces::is_link_local(ip) {
                index
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(v6, MDNS_PORT, 0, scope))
        }
    };
    socket.bind(&at.into())?;
    wrap(runtime, socket)
}

/// The task: reads the sockets into the `Mdns`, runs its timers, sends what it queues and
/// gives its events to the agents (`super::deliver`).
struct EngineTask {
    service: Weak<Service>,
    epoch: u64,
    runtime: Arc<dyn Runtime>,
    timer: DeadlineTimer,
    buf: Vec<u8>,
    received: Vec<(SocketAddr, Vec<u8>)>,
}

impl Future for EngineTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..MAX_ROUNDS {
            let Some(service) = this.service.upgrade() else {
                return Poll::Ready(());
            };
            let Some(round) = this.drive_mdns(&service, cx) else {
                return Poll::Ready(());
            };
            for (t, sockets) in &round.transmits {
                for socket in sockets {
                    match socket.poll_send_to(cx, &t.data, t.to) {
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => {
                            tracing::debug!(to = %t.to, error = %e, "mDNS send failed")
                        }
                        Poll::Pending => tracing::debug!(to = %t.to, "mDNS socket busy: dropped"),
                    }
                }
            }
            for (agent, event) in &round.deliveries {
                deliver(agent, event);
            }
            this.drive_recv(cx, &round.sockets);
            if !this.received.is_empty() {
                let now = this.runtime.now();
                let mut st = service.lock();
                for (from, data) in this.received.drain(..) {
                    st.mdns.handle_incoming(now, from, &data);
                }
                continue;
            }
            drop(service);
            if !this.drive_timer(cx, round.deadline) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What one round of the task does outside the service's lock.
struct Round {
    transmits: Vec<(MdnsTransmit, Vec<Arc<dyn AsyncUdpSocket>>)>,
    deliveries: Vec<(Weak<crate::shared::Shared>, librice_proto::mdns::MdnsEvent)>,
    sockets: Vec<Arc<dyn AsyncUdpSocket>>,
    deadline: Option<Instant>,
}

impl EngineTask {
    /// Under the service's lock: the `Mdns`'s due timer, its output, and its events routed
    /// to the agents. `None` once a newer task has taken over.
    fn drive_mdns(&mut self, service: &Arc<Service>, cx: &mut Context<'_>) -> Option<Round> {
        let now = self.runtime.now();
        let mut st = service.lock();
        if st.engine.epoch != self.epoch || !st.engine.running() {
            return None;
        }
        st.engine.waker = Some(cx.waker().clone());
        if st.mdns.poll_timeout().is_some_and(|t| t <= now) {
            st.mdns.handle_timeout(now);
        }
        let mut transmits = Vec::new();
        while let Some(t) = st.mdns.poll_transmit(now) {
            let sockets = st.engine.targets(&t);
            transmits.push((t, sockets));
        }
        let deliveries = st.route_events();
        Some(Round {
            transmits,
            deliveries,
            sockets: st.engine.sockets(),
            deadline: st.mdns.poll_timeout(),
        })
    }

    fn drive_recv(&mut self, cx: &mut Context<'_>, sockets: &[Arc<dyn AsyncUdpSocket>]) {
        for socket in sockets {
            for _ in 0..MAX_READS {
                match socket.poll_recv_from(cx, &mut self.buf) {
                    Poll::Ready(Ok((len, from))) => {
                        self.received.push((from, self.buf[..len].to_vec()))
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(error = %e, "mDNS receive failed");
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
    }

    /// Re-arms the timer only when the deadline moved. True if it has passed.
    fn drive_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> bool {
        self.timer.poll(&*self.runtime, cx, deadline)
    }
}

impl Drop for EngineTask {
    /// The task ended (its runtime shut down, or the service went away): the sockets
    /// close, and the drivers of the agents still registered are woken, so that the next
    /// one to run starts the service again on its own runtime.
    fn drop(&mut self) {
        let Some(service) = self.service.upgrade() else {
            return;
        };
        let agents = {
            let mut st = service.lock();
            if st.engine.epoch != self.epoch || !st.engine.running() {
                return;
            }
            st.engine.stop();
            service.set_running(false);
            st.agents.values().cloned().collect::<Vec<_>>()
        };
        tracing::debug!("mDNS task ended");
        for agent in agents {
            let Some(shared) = agent.upgrade() else {
                continue;
            };
            // Without waiting: this may run inside a spawn made under an agent's lock
            // (a runtime shutting down drops the task at once). An agent whose lock is
            // busy is active, and the handle or driver holding it wakes its driver.
            let state = match shared.state.try_lock() {
                Ok(state) => Some(state),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(mut state) = state {
                state.wake_driver();
            }
        }
    }
}
