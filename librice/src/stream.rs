//! The [`Stream`] and [`Component`] handles.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use librice_proto::agent::{
    CheckFailures, ComponentId, ComponentState, ComponentStats, ConsentStats, FailureReason,
    PairStats, SelectedPair, StreamId, StreamStats, UsageError,
};
use librice_proto::candidate::{Candidate, IceCredentials, IceOption};

use crate::agent::Handle;
use crate::candidate::IceCandidate;
use crate::datagram::{Datagram, poll_owned};
use crate::error::Error;
use crate::ingest::Reader;
use crate::interfaces::select_from;
use crate::netwatch::add_missing_sockets;
use crate::send::{SendLink, SendPath, SendState, poll_send};
use crate::shared::{ComponentExtra, ComponentRef, Shared, component_ids};
use crate::socket::{HostSockets, SocketBuffers, bind_sockets, listen_tcp, register_sockets};

/// A data stream of an agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stream {
    handle: Arc<Handle>,
    id: StreamId,
}

impl Stream {
    pub(crate) fn new(handle: Arc<Handle>, id: StreamId) -> Self {
        Self { handle, id }
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Adds a component (ids 1, 2, ..., at most 256). Add them all before gathering: the
    /// sockets of a stream's components are bound when [`Self::gather_candidates`] is
    /// first called, so a component added later would have no candidates.
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] with [`UsageError::GatheringStarted`] once
    ///   [`Self::gather_candidates`] has been called on this stream, and with
    ///   [`UsageError::TooManyComponents`] beyond 256 components;
    /// - [`Error::Closed`] once the agent is closed.
    pub fn add_component(&self) -> Result<Component, Error> {
        let mut st = self.handle.shared.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        if st.streams[self.id.index()].gather.started {
            return Err(UsageError::GatheringStarted.into());
        }
        let id = st
            .proto
            .stream_mut(self.id)
            .ok_or(Error::Closed)?
            .add_component()?;
        let path = Arc::new(SendPath::default());
        st.streams[self.id.index()]
            .components
            .push(ComponentExtra::new(Arc::clone(&path)));
        Ok(Component {
            handle: Arc::clone(&self.handle),
            link: SendLink {
                stream: self.id,
                component: id,
                path,
            },
        })
    }

    /// The component with this id, if it exists.
    pub fn component(&self, id: ComponentId) -> Option<Component> {
        let st = self.handle.shared.lock();
        let extra = st
            .streams
            .get(self.id.index())?
            .components
            .get(id.index())?;
        Some(Component {
            handle: Arc::clone(&self.handle),
            link: SendLink {
                stream: self.id,
                component: id,
                path: Arc::clone(&extra.send),
            },
        })
    }

    /// Starts gathering: binds one UDP socket per selected local address per component,
    /// and returns the candidates as they are found; the stream ends when gathering is
    /// complete. An address whose socket cannot be bound is skipped (traced). A second call
    /// returns the candidates not yet taken, then ends with gathering; after an ICE restart
    /// (this side's or the peer's), those of the restart's round.
    pub fn gather_candidates(&self) -> Result<GatherStream, Error> {
        let start = {
            let mut st = self.handle.shared.lock();
            if st.closed {
                return Err(Error::Closed);
            }
            let g = &mut st.streams[self.id.index()].gather;
            !std::mem::replace(&mut g.started, true)
        };
        if start {
            let runtime = Arc::clone(&self.handle.shared.runtime);
            let components = self.handle.shared.lock().streams[self.id.index()]
                .components
                .len();
            let transports = self.handle.transports;
            let mut st = if self.handle.endpoint.is_some() {
                // The endpoint's sockets and listeners, bound already.
                let mut st = self.handle.shared.lock();
                st.register_endpoint_sockets(self.id, components, transports);
                st
            } else {
                let addresses = select_from(&self.handle.filter, runtime.interface_addresses()?);
                let wanted = || {
                    component_ids()
                        .take(components)
                        .flat_map(|c| addresses.iter().map(move |a| (c, a)))
                };
                let bound = if transports.udp() {
                    bind_sockets(&*runtime, self.handle.buffers, wanted())
                } else {
                    Vec::new()
                };
                if transports.tcp() {
                    listen_tcp(&self.handle.shared, self.id, wanted());
                }
                let mut st = self.handle.shared.lock();
                register_sockets(&mut st, self.id, bound);
                st
            };
            let now = runtime.now();
            st.proto
                .stream_mut(self.id)
                .ok_or(Error::Closed)?
                .gather_candidates(now)?;
            st.dispatch_events();
            st.wake_driver();
        }
        Ok(GatherStream {
            shared: Arc::downgrade(&self.handle.shared),
            id: self.id,
        })
    }

    /// Restarts ICE on this stream (RFC 8445 §9, RFC 8839 §4.4): new local credentials
    /// ([`Self::local_credentials`]), gathering again from the same sockets and from new
    /// ones on addresses that appeared since (TURN allocations still in place are reused), and new checks once the peer's new
    /// credentials ([`Self::set_remote_credentials`]) and candidates arrive: signal them as
    /// at the start. Returns the new round's candidates, ending when it is gathered.
    ///
    /// Each component keeps sending and receiving on its selected pair until the restart
    /// selects a new one ([`AgentEvent::SelectedPairChanged`](crate::AgentEvent)); no
    /// datagram is refused meanwhile. A peer's restart (new credentials given to
    /// [`Self::set_remote_credentials`]) restarts this side too, with
    /// [`AgentEvent::Restarted`](crate::AgentEvent) on [`crate::Agent::events`]: then take
    /// the new candidates with [`Self::gather_candidates`].
    ///
    /// ```no_run
    /// # async fn run(stream: librice::Stream) -> Result<(), librice::Error> {
    /// use futures::StreamExt;
    /// let mut candidates = stream.restart()?;
    /// let credentials = stream.local_credentials(); // signal these, then each candidate
    /// while let Some(candidate) = candidates.next().await { /* signal it */ }
    /// # let _ = credentials; Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the agent is closed.
    pub fn restart(&self) -> Result<GatherStream, Error> {
        if self.handle.shared.lock().closed {
            return Err(Error::Closed);
        }
        // The new round gathers on the addresses the machine has now, including those
        // that appeared since gathering started (an endpoint's are fixed).
        match self.handle.shared.runtime.interface_addresses() {
            _ if self.handle.endpoint.is_some() => {}
            Ok(all) => add_missing_sockets(
                &self.handle.shared,
                self.id,
                &select_from(&self.handle.filter, all),
                HostSockets {
                    transports: self.handle.transports,
                    buffers: self.handle.buffers,
                },
            ),
            Err(e) => tracing::debug!(error = %e, "cannot list the interface addresses"),
        }
        let mut st = self.handle.shared.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        let now = self.handle.shared.runtime.now();
        st.proto
            .stream_mut(self.id)
            .ok_or(Error::Closed)?
            .restart(now);
        st.dispatch_events();
        st.wake_driver();
        Ok(GatherStream {
            shared: Arc::downgrade(&self.handle.shared),
            id: self.id,
        })
    }

    /// True while a restart is under way and some component still sends on the pair
    /// selected before it.
    pub fn restarting(&self) -> bool {
        let mut st = self.handle.shared.lock();
        st.proto.stream_mut(self.id).is_some_and(|s| s.restarting())
    }

    /// The local credentials to signal to the peer.
    pub fn local_credentials(&self) -> IceCredentials {
        let mut st = self.handle.shared.lock();
        st.proto
            .stream_mut(self.id)
            .map(|s| s.local_credentials().clone())
            .expect("the stream exists while a handle does")
    }

    /// Sets the peer's credentials. Credentials other than the ones set before mean the
    /// peer restarted ICE (RFC 8839 §4.4.1.1.1): this stream restarts too (see
    /// [`Self::restart`]; [`AgentEvent::Restarted`](crate::AgentEvent) with
    /// `RestartOrigin::Remote`), and its new credentials and candidates
    /// ([`Self::local_credentials`], [`Self::gather_candidates`]) go back to the peer. The
    /// first credentials after a local restart are the peer's answer, not a restart.
    pub fn set_remote_credentials(&self, credentials: IceCredentials) {
        let mut st = self.handle.shared.lock();
        if let Some(mut s) = st.proto.stream_mut(self.id) {
            s.set_remote_credentials(credentials);
        }
        st.dispatch_events();
        st.wake_driver();
    }

    /// Gives the peer's `a=ice-options` tags (e.g. from
    /// [`IceSdp::options`](librice_proto::candidate::IceSdp::options)): with
    /// [`IceOption::Renomination`] among them and [`crate::AgentBuilder::renomination`] on,
    /// the stream uses renomination.
    pub fn set_remote_ice_options(&self, options: &[IceOption]) {
        let mut st = self.handle.shared.lock();
        if let Some(mut s) = st.proto.stream_mut(self.id) {
            s.set_remote_ice_options(options);
        }
        st.wake_driver();
    }

    /// Says whether the peer is an ICE-lite agent: its description carries `a=ice-lite`
    /// ([`IceSdp::is_lite`](librice_proto::candidate::IceSdp::is_lite)). A full agent
    /// facing a lite peer takes the controlling role (RFC 8445 §6.1.1; the role is the
    /// agent's, for all its streams, and [`crate::AgentEvent::RoleChange`] says so) and
    /// nominates. Call it before the peer's credentials. See
    /// [`StreamMut::set_remote_lite`](librice_proto::agent::StreamMut::set_remote_lite).
    pub fn set_remote_lite(&self, lite: bool) {
        let mut st = self.handle.shared.lock();
        if let Some(mut s) = st.proto.stream_mut(self.id) {
            s.set_remote_lite(lite);
        }
        st.dispatch_events();
        st.wake_driver();
    }

    /// True if the peer was said to be an ICE-lite agent ([`Self::set_remote_lite`]).
    pub fn remote_lite(&self) -> bool {
        let mut st = self.handle.shared.lock();
        st.proto
            .stream_mut(self.id)
            .is_some_and(|s| s.remote_lite())
    }

    /// True when the stream uses renomination: offered here and announced by the peer.
    pub fn renomination(&self) -> bool {
        let mut st = self.handle.shared.lock();
        st.proto
            .stream_mut(self.id)
            .is_some_and(|s| s.renomination())
    }

    /// Adds a remote candidate (trickled or not): a [`Candidate`], a `.local`
    /// [`NamedCandidate`](crate::NamedCandidate) (an [`IceCandidate`] of either kind converts
    /// too).
    ///
    /// A named candidate is resolved through the process's mDNS service (RFC 6762, one
    /// query however many candidates or agents carry the name), then paired as the host
    /// candidate it is; one not resolved within
    /// [`AgentConfig::mdns_timeout`](librice_proto::agent::AgentConfig::mdns_timeout) (10 s)
    /// is dropped (traced) while the other candidates connect. See the crate docs' mDNS
    /// section.
    ///
    /// ```no_run
    /// # fn add(stream: &librice::Stream, line: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// // "candidate:1 1 UDP 2122260223 1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local 54400 typ host"
    /// stream.add_remote_candidate(librice::IceCandidate::parse(line)?)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Usage`] with [`UsageError::CandidateComponent`] for a candidate of a
    ///   component the stream lacks;
    /// - [`Error::Agent`] with
    ///   [`AgentError::AfterEndOfCandidates`](librice_proto::agent::AgentError::AfterEndOfCandidates)
    ///   after [`Self::end_of_remote_candidates`];
    /// - [`Error::Closed`] once the agent is closed.
    pub fn add_remote_candidate(&self, candidate: impl Into<IceCandidate>) -> Result<(), Error> {
        let now = self.handle.shared.runtime.now();
        let mut st = self.handle.shared.lock();
        let mut stream = st.proto.stream_mut(self.id).ok_or(Error::Closed)?;
        match candidate.into() {
            IceCandidate::Address(c) => stream.add_remote_candidate(c)?,
            IceCandidate::Named(c) => stream.add_remote_named_candidate(now, c)?,
        }
        // A named one asks for its name (an mDNS request).
        st.dispatch_events();
        st.wake_driver();
        Ok(())
    }

    /// The peer has no more candidates.
    pub fn end_of_remote_candidates(&self) {
        let mut st = self.handle.shared.lock();
        if let Some(mut s) = st.proto.stream_mut(self.id) {
            s.end_of_remote_candidates();
        }
        st.dispatch_events();
        st.wake_driver();
    }

    /// A snapshot of the stream's statistics: every candidate pair (checks and answers,
    /// round-trip times, application data each way), every component and candidate. The
    /// data sent on the components' fast path (which does not go through the agent) is
    /// counted on the pair it went out on. Cheap enough to take every second.
    ///
    /// ```no_run
    /// # fn show(stream: &librice::Stream, component: &librice::Component) {
    /// let stats = stream.stats();
    /// if let Some(pair) = stats.selected_pair(component.id()) {
    ///     println!(
    ///         "sent {} datagrams ({} bytes), received {} ({} bytes), rtt {:?}",
    ///         pair.packets_sent,
    ///         pair.bytes_sent,
    ///         pair.packets_received,
    ///         pair.bytes_received,
    ///         pair.current_round_trip_time,
    ///     );
    /// }
    /// # }
    /// ```
    pub fn stats(&self) -> StreamStats {
        stream_stats(&self.handle, self.id)
    }

    /// The local candidates found so far.
    pub fn local_candidates(&self) -> Vec<Candidate> {
        let mut st = self.handle.shared.lock();
        st.proto
            .stream_mut(self.id)
            .map(|s| s.local_candidates())
            .unwrap_or_default()
    }
}

/// The candidates of a stream as gathering finds them ([`Stream::gather_candidates`]):
/// [`IceCandidate::Address`] ones, and [`IceCandidate::Named`] host candidates when the
/// agent hides its host addresses ([`crate::AgentBuilder::hide_host_addresses`]; a name
/// replaced after an mDNS conflict announces its candidates again under the new name).
/// Signal each one's `Display` (the SDP `candidate:` value).
///
/// It does not keep the agent alive: once every [`crate::Agent`], [`Stream`] and
/// [`Component`] handle is dropped, the agent closes and this stream ends.
#[derive(Debug)]
pub struct GatherStream {
    /// Not a handle: see [`ComponentRef`].
    shared: Weak<Shared>,
    id: StreamId,
}

impl futures::Stream for GatherStream {
    type Item = IceCandidate;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IceCandidate>> {
        let Some(shared) = self.shared.upgrade() else {
            return Poll::Ready(None);
        };
        let mut st = shared.lock();
        let g = &mut st.streams[self.id.index()].gather;
        if let Some(c) = g.queue.pop_front() {
            return Poll::Ready(Some(c));
        }
        if g.complete {
            return Poll::Ready(None);
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A component of a stream: once connected, it sends and receives datagrams. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Component {
    handle: Arc<Handle>,
    link: SendLink,
}

impl Component {
    /// The component's id.
    pub fn id(&self) -> ComponentId {
        self.link.component
    }

    /// The stream's id.
    pub fn stream_id(&self) -> StreamId {
        self.link.stream
    }

    /// The state.
    pub fn state(&self) -> ComponentState {
        let (stream, id) = (self.link.stream, self.link.component);
        self.handle
            .shared
            .lock()
            .proto
            .component_state(stream, id)
            .unwrap_or(ComponentState::Failed)
    }

    /// The selected pair, once connected.
    pub fn selected_pair(&self) -> Option<SelectedPair> {
        let (stream, id) = (self.link.stream, self.link.component);
        self.handle.shared.lock().proto.selected_pair(stream, id)
    }

    /// Why the component failed, once it has ([`ComponentState::Failed`]).
    pub fn failure_reason(&self) -> Option<FailureReason> {
        let (stream, id) = (self.link.stream, self.link.component);
        self.handle.shared.lock().proto.failure_reason(stream, id)
    }

    /// The component's consent freshness counters (RFC 7675): consent checks sent on its
    /// selected pair and the answers that refreshed consent.
    pub fn consent_stats(&self) -> ConsentStats {
        let (stream, id) = (self.link.stream, self.link.component);
        self.handle
            .shared
            .lock()
            .proto
            .consent_stats(stream, id)
            .unwrap_or_default()
    }

    /// How many datagrams of application data the component dropped because they came
    /// from a remote address no connectivity check has verified.
    pub fn dropped_unverified(&self) -> u64 {
        let (stream, id) = (self.link.stream, self.link.component);
        self.handle
            .shared
            .lock()
            .proto
            .dropped_unverified(stream, id)
            .unwrap_or_default()
    }

    /// A snapshot of the component's statistics: its state, consent counters and the sums
    /// of the application data counters over its pairs (the fast path's sends included).
    /// Its `selected_pair` is the id of one of the pairs of [`Stream::stats`]; for the
    /// selected pair itself see [`Self::selected_pair_stats`], or take [`Stream::stats`]
    /// once for both.
    pub fn stats(&self) -> ComponentStats {
        let (stream, id) = (self.link.stream, self.link.component);
        stream_stats(&self.handle, stream)
            .components
            .into_iter()
            .find(|c| c.component == id)
            .expect("the component exists while a handle does")
    }

    /// A snapshot of the statistics of the selected pair, once there is one: checks and
    /// answers, consent checks, round-trip times, application data each way (the fast
    /// path's sends included).
    pub fn selected_pair_stats(&self) -> Option<PairStats> {
        let (stream, id) = (self.link.stream, self.link.component);
        let stats = stream_stats(&self.handle, stream);
        stats.selected_pair(id).cloned()
    }

    /// Resolves to the selected pair once the component connects (a `Disconnected`
    /// component has one and counts as connected), or to [`Error::Failed`] with the
    /// component's [`FailureReason`] when it fails ([`Error::Closed`] if the agent closes).
    pub fn connected(&self) -> Connected {
        Connected {
            component: self.downgrade(),
        }
    }

    /// Sends one datagram on the selected pair. Fails with
    /// [`librice_proto::agent::AgentError::NotConnected`] before a pair is selected, with
    /// [`Error::Failed`] once the component has failed (consent lost, for example) and with
    /// [`Error::Closed`] once the agent is closed.
    ///
    /// The fast path takes only the component's own small lock, not the agent's. Sends do
    /// not postpone consent checks (RFC 7675 requires them whatever the data does), nor,
    /// with consent freshness off, the keepalives (one Binding indication per 15 s by
    /// default, which is harmless). Each call waits for a full socket with a waker of its
    /// own, so sends from several tasks at once never lose a wake-up.
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        let mut state = SendState::new();
        futures::future::poll_fn(|cx| {
            poll_send(&self.handle.shared, &self.link, &mut state, cx, data)
        })
        .await
    }

    /// The datagrams received on this component, in order. The component queues up to
    /// 4,096 datagrams for its reader and drops the oldest beyond that. Use one reader per
    /// component (a [`Recv`] or a [`Datagram`]) at a time; what a dropped one read but did
    /// not hand out goes to the next. Ends when the agent closes.
    pub fn recv(&self) -> Recv {
        Recv {
            reader: Reader::new(self.downgrade()),
            buf: Vec::new(),
        }
    }

    /// The component's datagram handle: receive into your own buffers, send on the
    /// selected pair, from several tasks (see [`Datagram`]). The transport for DTLS, QUIC
    /// or SRTP stacks.
    pub fn datagram(&self) -> Datagram {
        Datagram::new(
            Arc::clone(&self.handle),
            self.link.clone(),
            Reader::new(self.downgrade()),
        )
    }

    /// The component's UDP sockets (one per local address, once gathering started) with
    /// the receive and send buffer sizes the operating system granted them: see
    /// [`crate::AgentBuilder::recv_buffer_size`] for what was asked and why it can be
    /// less.
    pub fn socket_buffers(&self) -> Vec<SocketBuffers> {
        let st = self.handle.shared.lock();
        st.registry
            .component_udp(self.link.stream, self.link.component)
            .map(|e| e.buffers)
            .collect()
    }

    /// The component as its readers and waiters see it.
    fn downgrade(&self) -> ComponentRef {
        ComponentRef {
            shared: Arc::downgrade(&self.handle.shared),
            stream: self.link.stream,
            id: self.link.component,
        }
    }
}

/// The core's snapshot of `stream`, after counting what the fast path sent.
fn stream_stats(handle: &Handle, stream: StreamId) -> StreamStats {
    let mut st = handle.shared.lock();
    st.fold_sent();
    st.proto
        .stats(stream)
        .expect("the stream exists while a handle does")
}

/// The future of [`Component::connected`].
///
/// It does not keep the agent alive: once every [`crate::Agent`], [`Stream`] and
/// [`Component`] handle is dropped, the agent closes and this resolves to
/// [`Error::Closed`].
#[derive(Debug)]
pub struct Connected {
    component: ComponentRef,
}

impl Future for Connected {
    type Output = Result<SelectedPair, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let c = &self.component;
        let Some(shared) = c.shared.upgrade() else {
            return Poll::Ready(Err(Error::Closed));
        };
        let mut st = shared.lock();
        if st.closed {
            return Poll::Ready(Err(Error::Closed));
        }
        match st.proto.component_state(c.stream, c.id) {
            Some(ComponentState::Connected | ComponentState::Disconnected) => {
                if let Some(pair) = st.proto.selected_pair(c.stream, c.id) {
                    return Poll::Ready(Ok(pair));
                }
            }
            Some(ComponentState::Failed) => {
                // Every failure carries its reason; a core that gave none can only have
                // failed its checks.
                let reason = st
                    .proto
                    .failure_reason(c.stream, c.id)
                    .unwrap_or(FailureReason::ChecksFailed(CheckFailures::default()));
                return Poll::Ready(Err(Error::Failed(reason)));
            }
            None => return Poll::Ready(Err(Error::Closed)),
            Some(_) => {}
        }
        let Some(extra) = st.component_extra(c.stream, c.id) else {
            return Poll::Ready(Err(Error::Closed));
        };
        let wakers = &mut extra.state_wakers;
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The stream of received datagrams ([`Component::recv`]), each in a buffer of its own.
/// For receiving into your own buffers, with the addresses, see [`Component::datagram`].
///
/// It takes what the driver queued; otherwise it reads the component's sockets in its own
/// task (STUN goes to the agent as usual), so that data does not wait for a hop through
/// the driver task. While it polls, it holds a short lease on the sockets and the driver
/// leaves them alone; when it stops polling, the driver takes them back within 50 ms.
///
/// It does not keep the agent alive: once every [`crate::Agent`], [`Stream`] and
/// [`Component`] handle is dropped, the agent closes, its sockets close and this stream
/// ends.
#[derive(Debug)]
pub struct Recv {
    reader: Reader,
    /// The receive buffer for reading the sockets in this task, made on first use.
    buf: Vec<u8>,
}

impl futures::Stream for Recv {
    type Item = Vec<u8>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        let this = self.get_mut();
        poll_owned(&mut this.reader, &mut this.buf, cx).map(|d| d.map(|(data, _)| data))
    }
}
