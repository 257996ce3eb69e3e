//! The process's mDNS service (RFC 6762, draft-ietf-mmusic-mdns-ice-candidates): it
//! resolves the peer's `.local` candidates and publishes the names of hidden host
//! candidates ([`crate::AgentBuilder::hide_host_addresses`]) for every agent of the
//! process.
//!
//! # One service per process
//! RFC 6762 §15 wants one responder per host; a process is as close as a library gets. So
//! there is one [`Mdns`] state machine per process, shared by all agents, whatever runtime
//! each runs on: one set of published names (so two agents of one process never probe
//! against each other), one resolution per name however many agents ask for it, and one
//! set of sockets on port 5353.
//!
//! Its sockets and task (`engine`) run on the runtime of the agent that first needs mDNS
//! (one that hides its addresses, or is given a `.local` candidate). Runtimes come and go
//! (a test makes one per test; a program may shut one down while another keeps agents),
//! so the task is not tied to its first runtime: when it ends (its runtime shut down), the
//! drivers of the agents still registered are woken, and the next one to run starts it
//! again on its own runtime, with fresh sockets and the same state (names published,
//! resolutions in flight). The service lives while an agent is registered with it; the
//! last agent to leave closes its sockets.
//!
//! A service per runtime was the alternative: simpler lifetimes, but two responders of
//! one process would probe against each other for nothing, and answer the same queries
//! twice; and the adapters make a new runtime value per call
//! (`librice_tokio::runtime()`), so "the same runtime" is not even known.
//!
//! # Answers
//! Queries and probes ask for multicast answers (`MdnsConfig::unicast_responses` off):
//! other processes may share port 5353 (avahi, a browser, another program using librice),
//! and a unicast answer reaches only one of the sockets bound to it (RFC 6762 §15.1). The
//! price: a name announced less than a second before a query is answered only with its
//! next announcement (§6), so a resolution may take a second. A name that another agent
//! of this process publishes is resolved at once from its record, without asking the link
//! (the host's own records, as a system responder answers its local clients).
//!
//! # Routing
//! Agents register on their first mDNS request, holding the service alive; the service
//! holds them weakly. The core asks (`IoRequest::MdnsResolve`, `MdnsPublish`,
//! `MdnsUnpublish`) when its events are dispatched; answers go to every agent that asked
//! for the name (`router`), through the core's `handle_mdns_*` calls, after which the
//! agent's driver is woken. An answer the agent no longer waits for is ignored (the core's
//! `UsageError::UnknownMdnsName`). A closing agent's `MdnsUnpublish` requests (the core
//! makes them on close) are handled, and their goodbyes sent, before the agent leaves; an
//! agent dropped without closing has its names withdrawn when it leaves.
//!
//! # Failures
//! When port 5353 cannot be bound (no multicast, a system that refuses to share it), the
//! agent's names fail through the core's failure calls (`handle_mdns_resolve_failed`,
//! `handle_mdns_publish_failed`) with a warning traced once per agent: remote `.local`
//! candidates are dropped, local names stay announced but unpublished. Nothing panics.
//!
//! Lock order: an agent's lock, then the service's, never the other way. The task takes
//! the service's lock to drive the `Mdns`, releases it, and only then locks agents to give
//! them answers.

mod engine;
mod router;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use librice_proto::agent::{AgentError, IoRequest, UsageError};
use librice_proto::mdns::{Mdns, MdnsConfig, MdnsError, MdnsEvent};

use self::engine::Engine;
use self::router::{AgentKey, Router};
use crate::runtime::{BoxFuture, Runtime};
use crate::shared::Shared;

/// The service of this process, while an agent holds it.
static SERVICE: Mutex<Weak<Service>> = Mutex::new(Weak::new());

/// The process's mDNS service.
#[derive(Debug)]
pub(crate) struct Service {
    state: Mutex<ServiceState>,
    /// True while its task runs: drivers look without taking the lock.
    running: AtomicBool,
}

#[derive(Debug)]
struct ServiceState {
    mdns: Mdns,
    router: Router,
    agents: HashMap<AgentKey, Weak<Shared>>,
    next_key: AgentKey,
    engine: Engine,
}

impl Service {
    /// The process's service, made if there is none.
    fn get() -> Arc<Service> {
        let mut global = SERVICE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(service) = global.upgrade() {
            return service;
        }
        let mut seed = [0u8; 8];
        if let Err(e) = getrandom::fill(&mut seed) {
            tracing::debug!(error = %e, "no random seed for mDNS probe delays: a fixed one");
        }
        let service = Arc::new(Service {
            state: Mutex::new(ServiceState {
                // RFC 6762 §15.1: other processes (avahi, browsers, other librice users)
                // may share port 5353, and a unicast response reaches only one of them.
                mdns: Mdns::new(
                    MdnsConfig::default()
                        .rng_seed(u64::from_le_bytes(seed))
                        .unicast_responses(false),
                ),
                router: Router::default(),
                agents: HashMap::new(),
                next_key: 0,
                engine: Engine::default(),
            }),
            running: AtomicBool::new(false),
        });
        *global = Arc::downgrade(&service);
        service
    }

    fn lock(&self) -> MutexGuard<'_, ServiceState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        st.engine.wake();
        st.engine.stop();
    }
}

impl ServiceState {
    /// The `Mdns`'s events, each with the agents it is for.
    fn route_events(&mut self) -> Vec<(Weak<Shared>, MdnsEvent)> {
        let mut out = Vec::new();
        while let Some(event) = self.mdns.poll_event() {
            for key in self.router.route(&event) {
                if let Some(agent) = self.agents.get(&key) {
                    out.push((Weak::clone(agent), event.clone()));
                }
            }
        }
        out
    }
}

/// What the service makes of a request it took.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The answer comes later, through the service's task (or none is expected).
    Pending,
    /// A name published by an agent of this process resolves at once to its address.
    Resolved(IpAddr),
}

/// Why the service could not take a request: the agent fails the name.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// Port 5353 could not be bound.
    Io(std::io::Error),
    /// The `Mdns` refused (too many names, a name it does not take).
    Refused(MdnsError),
    /// Another agent of this process publishes the name.
    Taken,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot bind the mDNS sockets: {e}"),
            Self::Refused(e) => write!(f, "{e}"),
            Self::Taken => f.write_str("another agent of this process publishes the name"),
        }
    }
}

/// An agent's link to the service, in its state.
#[derive(Debug)]
pub(crate) struct MdnsClient {
    runtime: Arc<dyn Runtime>,
    me: Weak<Shared>,
    link: Option<(Arc<Service>, AgentKey)>,
    warned: bool,
}

impl MdnsClient {
    pub fn new(runtime: Arc<dyn Runtime>, me: Weak<Shared>) -> Self {
        Self {
            runtime,
            me,
            link: None,
            warned: false,
        }
    }

    /// Hands one of the core's mDNS requests to the service (registering first), joining
    /// the group on `local_ips` (the agent's addresses). Other requests are ignored. A
    /// name another agent of this process publishes resolves at once from its record
    /// (the host's own, RFC 6762 §15), without asking the link.
    pub fn request(
        &mut self,
        request: &IoRequest,
        local_ips: &[IpAddr],
    ) -> Result<Answer, Unavailable> {
        if let IoRequest::MdnsUnpublish { .. } = request
            && self.link.is_none()
        {
            return Ok(Answer::Pending);
        }
        let (service, key) = self.join();
        let mut task = None;
        let result = self.request_locked(&service, key, request, local_ips, &mut task);
        if let Some(task) = task {
            self.runtime.spawn(task);
        }
        result
    }

    /// [`Self::request`] under the service's lock; a task to start goes to `task`.
    fn request_locked(
        &self,
        service: &Arc<Service>,
        key: AgentKey,
        request: &IoRequest,
        local_ips: &[IpAddr],
        task: &mut Option<BoxFuture<()>>,
    ) -> Result<Answer, Unavailable> {
        let now = self.runtime.now();
        let mut st = service.lock();
        if !service.running.load(Ordering::Acquire) {
            *task = st
                .engine
                .start(service, &self.runtime)
                .map_err(Unavailable::Io)?;
        }
        let joins: Vec<IpAddr> = match request {
            IoRequest::MdnsPublish { address, .. } => vec![*address],
            _ => local_ips.to_vec(),
        };
        let mut joined = false;
        let mut error = None;
        for ip in joins {
            match st.engine.join(ip) {
                Ok(()) => joined = true,
                Err(e) => error = Some(e),
            }
        }
        if let (false, Some(e)) = (joined, error) {
            return Err(Unavailable::Io(e));
        }
        let result = match request {
            IoRequest::MdnsResolve { name } => {
                let name = name.as_str();
                if let Some(ip) = st.router.local_address(name) {
                    // Another agent of this process holds the name: our own record.
                    Ok(Answer::Resolved(ip))
                } else if st.router.resolve(key, name)
                    && let Err(e) = st.mdns.resolve(now, name)
                {
                    st.router.resolve_refused(name);
                    Err(Unavailable::Refused(e))
                } else {
                    Ok(Answer::Pending)
                }
            }
            IoRequest::MdnsPublish { name, address } => {
                let name = name.as_str();
                if !st.router.publish(key, name, *address) {
                    Err(Unavailable::Taken)
                } else {
                    match st.mdns.publish(now, name, &[*address]) {
                        Ok(()) | Err(MdnsError::AlreadyPublished { .. }) => Ok(Answer::Pending),
                        Err(e) => {
                            st.router.publish_refused(key, name);
                            Err(Unavailable::Refused(e))
                        }
                    }
                }
            }
            IoRequest::MdnsUnpublish { name } => {
                if st.router.unpublish(key, name.as_str()) {
                    let _ = st.mdns.unpublish(now, name.as_str());
                }
                Ok(Answer::Pending)
            }
            _ => Ok(Answer::Pending),
        };
        st.engine.wake();
        result
    }

    /// The time on the agent's runtime.
    pub fn now(&self) -> std::time::Instant {
        self.runtime.now()
    }

    /// Traces a failed request: a warning the first time, then at debug level.
    pub fn warn(&mut self, request: &IoRequest, why: &Unavailable) {
        if std::mem::replace(&mut self.warned, true) {
            tracing::debug!(?request, %why, "mDNS request failed");
        } else {
            tracing::warn!(?request, %why, "mDNS unavailable: the agent's mDNS names fail");
        }
    }

    /// Restarts the service's task on this agent's runtime if it ended (see the module
    /// docs). Cheap when it runs: one atomic load.
    pub fn keep_running(&self) {
        let Some((service, _)) = &self.link else {
            return;
        };
        if service.running.load(Ordering::Acquire) {
            return;
        }
        let started = service.lock().engine.start(service, &self.runtime);
        match started {
            Ok(Some(task)) => self.runtime.spawn(task),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "cannot restart the mDNS service"),
        }
    }

    /// Leaves the service: what only this agent waited for is cancelled, its names still
    /// published are withdrawn and the goodbyes sent at once (the service may go away
    /// with this agent).
    pub fn leave(&mut self) {
        let Some((service, key)) = self.link.take() else {
            return;
        };
        let now = self.runtime.now();
        let mut st = service.lock();
        st.agents.remove(&key);
        let forgotten = st.router.forget(key);
        for name in &forgotten.cancel {
            let _ = st.mdns.cancel_resolve(name);
        }
        for name in &forgotten.unpublish {
            let _ = st.mdns.unpublish(now, name);
        }
        let mut transmits = Vec::new();
        while let Some(t) = st.mdns.poll_transmit(now) {
            transmits.push(t);
        }
        st.engine.send_now(transmits);
        st.engine.wake();
    }

    fn join(&mut self) -> (Arc<Service>, AgentKey) {
        if let Some((service, key)) = &self.link {
            return (Arc::clone(service), *key);
        }
        let service = Service::get();
        let key = {
            let mut st = service.lock();
            let key = st.next_key;
            st.next_key += 1;
            st.agents.insert(key, Weak::clone(&self.me));
            key
        };
        self.link = Some((Arc::clone(&service), key));
        (service, key)
    }
}

impl Drop for MdnsClient {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Gives an answer of the service to one agent, then lets it act on it.
fn deliver(agent: &Weak<Shared>, event: &MdnsEvent) {
    let Some(shared) = agent.upgrade() else {
        return;
    };
    let mut st = shared.lock();
    if st.closed {
        return;
    }
    let now = shared.runtime.now();
    let answer = match event {
        MdnsEvent::Resolved { name, addrs, .. } => st.proto.handle_mdns_resolved(now, name, addrs),
        MdnsEvent::ResolveFailed { name } => st.proto.handle_mdns_resolve_failed(now, name),
        MdnsEvent::Published { name } => st.proto.handle_mdns_published(now, name),
        MdnsEvent::Conflict { name } => st.proto.handle_mdns_publish_failed(now, name),
        _ => Ok(()),
    };
    match answer {
        Ok(()) => {}
        Err(AgentError::Usage(UsageError::UnknownMdnsName(name))) => {
            tracing::trace!(%name, "mDNS answer the agent no longer waits for");
        }
        Err(e) => tracing::debug!(error = %e, "mDNS answer refused"),
    }
    st.dispatch_events();
    st.wake_driver();
}
