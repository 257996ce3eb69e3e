//! Which agents wait for which mDNS name: the routing table of the process's mDNS
//! service, kept apart from its sockets so that it can be tested alone.
//!
//! Invariants, kept by its methods: a name (compared case-insensitively, RFC 6762 §16) is
//! in `resolving` exactly while the service's `Mdns` resolves it, with the agents that
//! asked for it, each once; a name is in `published` while the `Mdns` publishes it, with
//! the one agent that owns it. So the table is never larger than the `Mdns`'s own bounds
//! (`MAX_RESOLUTIONS`, `MAX_PUBLISHED`) times the number of agents.

use std::collections::HashMap;
use std::net::IpAddr;

use librice_proto::mdns::MdnsEvent;

/// An agent registered with the service.
pub(crate) type AgentKey = u64;

/// The routing table.
#[derive(Debug, Default)]
pub(crate) struct Router {
    resolving: HashMap<String, Vec<AgentKey>>,
    /// Each published name's owner and address.
    published: HashMap<String, (AgentKey, IpAddr)>,
}

/// What the service must do for an agent that went away.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Forgotten {
    /// Names nobody else waits for: stop resolving them.
    pub cancel: Vec<String>,
    /// Names the agent still published: withdraw them.
    pub unpublish: Vec<String>,
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Router {
    /// `agent` asks for `name`. True if the name is new, and the `Mdns` must start
    /// resolving it; false if the agent joins a resolution under way.
    pub fn resolve(&mut self, agent: AgentKey, name: &str) -> bool {
        let askers = self.resolving.entry(key(name)).or_default();
        let first = askers.is_empty();
        if !askers.contains(&agent) {
            askers.push(agent);
        }
        first
    }

    /// The `Mdns` refused to resolve `name` (a name it does not take, too many in flight):
    /// the agents waiting for it, who must be told it failed.
    pub fn resolve_refused(&mut self, name: &str) -> Vec<AgentKey> {
        self.resolving.remove(&key(name)).unwrap_or_default()
    }

    /// `agent` publishes `name` for `address`. False if another agent of this process
    /// already publishes it (a conflict on this host, which the caller reports to
    /// `agent`).
    pub fn publish(&mut self, agent: AgentKey, name: &str, address: IpAddr) -> bool {
        match self.published.get(&key(name)) {
            Some((owner, _)) => *owner == agent,
            None => {
                self.published.insert(key(name), (agent, address));
                true
            }
        }
    }

    /// The address of `name` if an agent of this process publishes it: this host's own
    /// record, which its resolver answers from without asking the link.
    pub fn local_address(&self, name: &str) -> Option<IpAddr> {
        self.published.get(&key(name)).map(|(_, ip)| *ip)
    }

    /// The `Mdns` refused to publish `name`: forget it.
    pub fn publish_refused(&mut self, agent: AgentKey, name: &str) {
        self.unpublish(agent, name);
    }

    /// `agent` withdraws `name`. True if it was the agent's: the `Mdns` must withdraw it.
    pub fn unpublish(&mut self, agent: AgentKey, name: &str) -> bool {
        if self
            .published
            .get(&key(name))
            .is_some_and(|(owner, _)| *owner == agent)
        {
            self.published.remove(&key(name));
            return true;
        }
        false
    }

    /// The agents an event of the `Mdns` is for. A resolution's end goes to every agent
    /// that asked (and ends the resolution); a claim to the owner; a conflict to the
    /// owner, and the name is no longer published.
    pub fn route(&mut self, event: &MdnsEvent) -> Vec<AgentKey> {
        match event {
            MdnsEvent::Resolved { name, .. } | MdnsEvent::ResolveFailed { name } => {
                self.resolving.remove(&key(name)).unwrap_or_default()
            }
            MdnsEvent::Published { name } => self
                .published
                .get(&key(name))
                .map(|(owner, _)| *owner)
                .into_iter()
                .collect(),
            MdnsEvent::Conflict { name } => self
                .published
                .remove(&key(name))
                .map(|(owner, _)| owner)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Forgets `agent` (closed or dropped): the resolutions only it waited for, to cancel,
    /// and the names it still published, to withdraw.
    pub fn forget(&mut self, agent: AgentKey) -> Forgotten {
        let mut out = Forgotten::default();
        self.resolving.retain(|name, askers| {
            askers.retain(|a| *a != agent);
            if askers.is_empty() {
                out.cancel.push(name.clone());
                return false;
            }
            true
        });
        self.published.retain(|name, (owner, _)| {
            if *owner == agent {
                out.unpublish.push(name.clone());
                return false;
            }
            true
        });
        out.cancel.sort();
        out.unpublish.sort();
        out
    }

    /// True if nothing is waited for or published.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.resolving.is_empty() && self.published.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    const NAME: &str = "1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local";
    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    fn resolved(name: &str) -> MdnsEvent {
        MdnsEvent::Resolved {
            name: name.to_owned(),
            addrs: vec![IP],
            ttl: Duration::from_secs(120),
        }
    }

    #[test]
    fn several_agents_asking_for_one_name_all_get_the_answer_once() {
        let mut router = Router::default();
        assert!(
            router.resolve(1, NAME),
            "the first asker starts the resolution"
        );
        assert!(
            !router.resolve(2, &NAME.to_uppercase()),
            "the same name in another case"
        );
        assert!(!router.resolve(1, NAME), "asking twice changes nothing");
        assert_eq!(router.route(&resolved(NAME)), vec![1, 2]);
        // The resolution is over: a late duplicate answer goes to nobody, and a new ask
        // starts a new resolution.
        assert_eq!(router.route(&resolved(NAME)), Vec::<AgentKey>::new());
        assert!(router.resolve(2, NAME));
        let failed = MdnsEvent::ResolveFailed {
            name: NAME.to_owned(),
        };
        assert_eq!(router.route(&failed), vec![2]);
        assert!(router.is_empty());
    }

    #[test]
    fn an_agent_dropped_while_its_resolve_is_pending_is_not_answered() {
        let mut router = Router::default();
        let other = "aaaaaaaa-4b5a-4978-8695-a4b3c2d1e0f0.local";
        router.resolve(1, NAME);
        router.resolve(2, NAME);
        router.resolve(1, other);
        // Agent 1 goes: the name agent 2 still waits for is kept, the other is cancelled.
        assert_eq!(
            router.forget(1),
            Forgotten {
                cancel: vec![other.to_owned()],
                unpublish: Vec::new(),
            }
        );
        assert_eq!(router.route(&resolved(NAME)), vec![2]);
        assert_eq!(router.route(&resolved(other)), Vec::<AgentKey>::new());
        // Agent 2 goes with nothing pending.
        assert_eq!(router.forget(2), Forgotten::default());
        assert!(router.is_empty());
    }

    #[test]
    fn a_conflict_goes_to_the_owner_and_ends_the_publication() {
        let mut router = Router::default();
        assert!(router.publish(1, NAME, IP));
        assert_eq!(router.local_address(&NAME.to_uppercase()), Some(IP));
        assert!(
            !router.publish(2, NAME, IP),
            "another agent of the process holds it"
        );
        assert!(
            router.publish(1, NAME, IP),
            "the owner asking again is no conflict"
        );
        let published = MdnsEvent::Published {
            name: NAME.to_owned(),
        };
        assert_eq!(router.route(&published), vec![1]);
        let conflict = MdnsEvent::Conflict {
            name: NAME.to_owned(),
        };
        assert_eq!(router.route(&conflict), vec![1]);
        assert_eq!(router.local_address(NAME), None);
        // The name is free: nothing to withdraw when the owner goes, another may take it.
        assert!(!router.unpublish(1, NAME));
        assert_eq!(router.forget(1), Forgotten::default());
        assert!(router.publish(2, NAME, IP));
        assert_eq!(router.route(&published), vec![2]);
    }

    #[test]
    fn a_closing_agent_withdraws_only_its_own_names() {
        let mut router = Router::default();
        let theirs = "bbbbbbbb-4b5a-4978-8695-a4b3c2d1e0f0.local";
        router.publish(1, NAME, IP);
        router.publish(2, theirs, IP);
        assert!(!router.unpublish(1, theirs), "not agent 1's to withdraw");
        assert_eq!(
            router.forget(1),
            Forgotten {
                cancel: Vec::new(),
                unpublish: vec![NAME.to_owned()],
            }
        );
        assert!(router.unpublish(2, theirs));
        assert!(router.is_empty());
    }

    #[test]
    fn a_refused_resolution_answers_everyone_waiting() {
        let mut router = Router::default();
        router.resolve(1, NAME);
        router.resolve(3, NAME);
        assert_eq!(router.resolve_refused(NAME), vec![1, 3]);
        assert!(router.is_empty());
        router.publish(4, NAME, IP);
        router.publish_refused(5, NAME);
        assert!(
            !router.is_empty(),
            "only the owner's refusal removes the name"
        );
        router.publish_refused(4, NAME);
        assert!(router.is_empty());
    }
}
