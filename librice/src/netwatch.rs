//! Network change: an agent watches the machine's interface addresses and follows them.
//!
//! A task per agent waits for the runtime's change notifications
//! ([`Runtime::interface_changes`]: `if-watch` with the adapters of `librice-tokio` and
//! `librice-async-std`) or, at the latest, the policy's poll interval, then lists the
//! addresses ([`Runtime::interface_addresses`]) through the agent's address filter and
//! makes the agent's sockets match:
//! - an address that appeared gets the host sockets of the agent's transports (a UDP
//!   socket, an ICE-TCP listener and, when on, a simultaneous-open socket) per component of
//!   every stream that has started gathering, when [`NetworkChange::continual_gathering`]
//!   is on: its candidates come out of the stream's [`crate::GatherStream`], to be
//!   trickled to the peer;
//! - an address that went away loses its sockets (UDP sockets, ICE-TCP listeners and
//!   simultaneous-open sockets) and the TCP connections made from it: their candidates and
//!   pairs go, and a component whose selected pair used one moves to another pair
//!   (renomination, when controlling) or asks for an ICE restart
//!   ([`AgentEvent::RestartNeeded`]), which the agent does itself with
//!   [`OnPathLost::Restart`].
//!
//! New addresses are added before old ones are removed, so that a component whose address
//! changed has the new pairs to move to. A send that fails because its local address or
//! network is gone (`EADDRNOTAVAIL`, `ENETDOWN`) makes the watcher look at once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use librice_proto::TransportType;
use librice_proto::agent::{ComponentId, StreamId};

use crate::ifchanges::Subscription;
use crate::interfaces::{AddressFilter, InterfaceAddress, select_from};
use crate::runtime::Runtime;
use crate::shared::{AgentEvent, Shared, component_ids};
use crate::socket::{HostSockets, bind_sockets, listen_tcp, register_sockets};

/// How often an agent lists the interface addresses by default, whether or not the runtime
/// notifies changes: 5 s.
pub const DEFAULT_INTERFACE_POLL: Duration = Duration::from_secs(5);

/// What an agent does when the machine's interface addresses change (set with
/// [`crate::AgentBuilder::network_change`]).
///
/// The default watches the addresses (notifications from the runtime, and a listing every
/// [`DEFAULT_INTERFACE_POLL`]), removes the sockets of addresses that went away, does not
/// gather on new addresses, and tells the application with
/// [`AgentEvent::RestartNeeded`] when a component needs an ICE restart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkChange {
    /// Watch the interface addresses at all (default on). Off, the agent keeps the sockets
    /// it bound when gathering started, whatever happens to their addresses.
    pub watch: bool,
    /// Gather on addresses that appear after gathering started (default off). On, the
    /// agent also sends no end-of-gathering ([`crate::GatherStream`] does not end, and the
    /// application must not signal end-of-candidates, RFC 8838 §13), as browsers do with
    /// their `gatherPolicy` set to gather continually.
    pub continual_gathering: bool,
    /// What to do when a component lost its selected pair and cannot move to another one
    /// without an ICE restart (default [`OnPathLost::Notify`]).
    pub on_path_lost: OnPathLost,
    /// How often the addresses are listed, notifications or not (default
    /// [`DEFAULT_INTERFACE_POLL`]; at least 100 ms).
    pub poll_interval: Duration,
}

impl Default for NetworkChange {
    fn default() -> Self {
        Self {
            watch: true,
            continual_gathering: false,
            on_path_lost: OnPathLost::Notify,
            poll_interval: DEFAULT_INTERFACE_POLL,
        }
    }
}

impl NetworkChange {
    /// The default policy with continual gathering on or off.
    pub fn continual_gathering(mut self, on: bool) -> Self {
        self.continual_gathering = on;
        self
    }

    /// The default policy with watching on or off.
    pub fn watch(mut self, on: bool) -> Self {
        self.watch = on;
        self
    }

    /// Sets what to do when a component needs an ICE restart.
    pub fn on_path_lost(mut self, action: OnPathLost) -> Self {
        self.on_path_lost = action;
        self
    }

    /// Sets how often the addresses are listed (at least 100 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(100));
        self
    }
}

/// What an agent does when a component lost its selected pair with its address and cannot
/// move to another pair by itself ([`AgentEvent::RestartNeeded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnPathLost {
    /// Only tell the application (the event); it restarts the stream
    /// ([`crate::Stream::restart`]) when it can signal the new credentials.
    #[default]
    Notify,
    /// Restart the stream at once ([`AgentEvent::Restarted`] follows, as for
    /// [`crate::Stream::restart`]): signal its new credentials and candidates.
    Restart,
}

/// The watching task of one agent: see the module docs. Ends when the agent closes.
pub(crate) async fn run(
    shared: Weak<Shared>,
    runtime: Arc<dyn Runtime>,
    filter: AddressFilter,
    host: HostSockets,
    policy: NetworkChange,
) {
    // The runtime's notifications, shared with its other agents (`crate::ifchanges`).
    let mut changes = if policy.watch {
        Subscription::new(&runtime)
    } else {
        None
    };
    loop {
        if !wait(&shared, &*runtime, &mut changes, policy.poll_interval).await {
            return;
        }
        let addresses = match runtime.interface_addresses() {
            Ok(all) => select_from(&filter, all),
            Err(e) => {
                tracing::debug!(error = %e, "cannot list the interface addresses");
                continue;
            }
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if policy.watch {
            follow(&shared, &addresses, host, policy.continual_gathering);
        }
        restart_lost(&shared, &addresses, host);
    }
}

/// Waits for a change notification (and takes those that came with it), a restart to do,
/// or the poll interval; false once the agent is closed.
async fn wait(
    shared: &Weak<Shared>,
    runtime: &dyn Runtime,
    changes: &mut Option<Subscription>,
    interval: Duration,
) -> bool {
    let mut timer = runtime.new_timer(runtime.now() + interval);
    futures::future::poll_fn(|cx| {
        let Some(strong) = shared.upgrade() else {
            return Poll::Ready(false);
        };
        {
            let mut st = strong.lock();
            if st.closed {
                return Poll::Ready(false);
            }
            if !st.restarts_wanted.is_empty() || std::mem::take(&mut st.relist) {
                return Poll::Ready(true);
            }
            st.watcher_waker = Some(cx.waker().clone());
        }
        let mut changed = false;
        if let Some(subscription) = changes.as_mut() {
            match subscription.poll_changed(cx) {
                Poll::Ready(Some(())) => changed = true,
                Poll::Ready(None) => {
                    tracing::debug!("interface notifications ended: polling only");
                    *changes = None;
                }
                Poll::Pending => {}
            }
        }
        if changed || timer.as_mut().poll_elapsed(cx).is_ready() {
            return Poll::Ready(true);
        }
        Poll::Pending
    })
    .await
}

/// Makes the agent's sockets match `addresses` (see the module docs).
fn follow(
    shared: &Arc<Shared>,
    addresses: &[InterfaceAddress],
    host: HostSockets,
    continual: bool,
) {
    if continual {
        let started: Vec<StreamId> = {
            let st = shared.lock();
            (0..st.streams.len())
                .filter(|&i| st.streams[i].gather.started)
                .map(StreamId::from_index)
                .collect()
        };
        for sid in started {
            add_missing_sockets(shared, sid, addresses, host);
        }
    }
    let now = shared.runtime.now();
    let mut st = shared.lock();
    if st.closed {
        return;
    }
    let present = |local: SocketAddr| addresses.iter().any(|a| a.ip == local.ip());
    let gone_udp: Vec<_> = st
        .registry
        .udp_entries()
        .iter()
        .filter(|e| !present(e.socket.local()))
        .map(|e| (e.stream, e.component, TransportType::Udp, e.socket.local()))
        .collect();
    let gone_tcp: Vec<_> = st
        .registry
        .tcp_locals()
        .filter(|(local, _)| !present(*local))
        .map(|(local, e)| (e.stream, e.component, TransportType::Tcp, local))
        .collect();
    let mut gone_ips = BTreeSet::new();
    for (sid, component, transport, local) in gone_udp.into_iter().chain(gone_tcp) {
        tracing::info!(stream = %sid, %component, %transport, %local, "address gone: its socket is closed");
        match transport {
            TransportType::Udp => drop(st.registry.remove_udp(local)),
            TransportType::Tcp => drop(st.registry.remove_tcp_local(local)),
        }
        gone_ips.insert(local.ip());
        if let Some(mut s) = st.proto.stream_mut(sid)
            && let Err(e) = s.remove_local_socket(now, component, transport, local)
        {
            tracing::debug!(%local, error = %e, "socket unknown to the agent");
        }
    }
    // The TCP connections made from a gone address cannot carry anything any more.
    for ip in gone_ips {
        st.registry.end_tcp_on(ip);
    }
    st.dispatch_events();
    st.wake_driver();
}

/// Restarts the streams whose components asked for it under [`OnPathLost::Restart`], after
/// giving them sockets on the addresses they lack (the restart gathers on them).
fn restart_lost(shared: &Arc<Shared>, addresses: &[InterfaceAddress], host: HostSockets) {
    let wanted = std::mem::take(&mut shared.lock().restarts_wanted);
    for sid in wanted {
        add_missing_sockets(shared, sid, addresses, host);
        let now = shared.runtime.now();
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        tracing::info!(stream = %sid, "restarting ICE: the selected pair was lost");
        if let Some(mut s) = st.proto.stream_mut(sid) {
            s.restart(now);
        }
        st.dispatch_events();
        st.wake_driver();
    }
}

/// Binds and registers the host sockets of each component of stream `sid` (a UDP socket,
/// an ICE-TCP listener, as `host` says) on each of `addresses` where it has none yet
/// (binding without the lock), once the stream has started gathering. The core gathers on
/// them at once.
pub(crate) fn add_missing_sockets(
    shared: &Arc<Shared>,
    sid: StreamId,
    addresses: &[InterfaceAddress],
    host: HostSockets,
) {
    let (udp, tcp): (Vec<(ComponentId, &InterfaceAddress)>, Vec<_>) = {
        let st = shared.lock();
        let Some(s) = st.streams.get(sid.index()).filter(|s| s.gather.started) else {
            return;
        };
        let all = || {
            component_ids()
                .take(s.components.len())
                .flat_map(|c| addresses.iter().map(move |a| (c, a)))
        };
        let udp = all()
            .filter(|_| host.transports.udp())
            .filter(|(c, a)| {
                !st.registry
                    .component_udp(sid, *c)
                    .any(|e| e.socket.local().ip() == a.ip)
            })
            .collect();
        let tcp = all()
            .filter(|_| host.transports.tcp())
            .filter(|(c, a)| {
                !st.registry.tcp_locals().any(|(local, e)| {
                    e.stream == sid && e.component == *c && e.is_listener() && local.ip() == a.ip
                })
            })
            .collect();
        (udp, tcp)
    };
    for (component, a) in udp.iter().chain(&tcp) {
        tracing::info!(stream = %sid, %component, ip = %a.ip, "gathering on a new address");
    }
    if udp.is_empty() && tcp.is_empty() {
        return;
    }
    if !tcp.is_empty() {
        listen_tcp(shared, sid, tcp);
    }
    let bound = bind_sockets(&*shared.runtime, host.buffers, udp);
    let mut st = shared.lock();
    if st.closed {
        return;
    }
    register_sockets(&mut st, sid, bound);
    st.dispatch_events();
    st.wake_driver();
}

/// A send failed with `error`: if it says the local address or its network is gone
/// (`EADDRNOTAVAIL`, `ENETDOWN`), the watcher lists the addresses at once rather than at
/// its next notification or poll.
pub(crate) fn on_send_error(shared: &Shared, error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::AddrNotAvailable | ErrorKind::NetworkDown
    ) {
        let mut st = shared.lock();
        st.relist = true;
        if let Some(w) = st.watcher_waker.take() {
            w.wake();
        }
    }
}

/// The stream of an event that says a component needs an ICE restart.
pub(crate) fn restart_needed(event: &AgentEvent) -> Option<StreamId> {
    match event {
        AgentEvent::RestartNeeded { stream, .. } => Some(*stream),
        _ => None,
    }
}
