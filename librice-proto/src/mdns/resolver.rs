//! The one-shot resolutions in flight (RFC 6762 §5.1, §5.2, §5.4).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::name::LocalName;
use super::wire::{self, Message, QueryType};
use super::{MdnsEvent, Output};

/// The most resolutions in flight at once; [`Mdns::resolve`](super::Mdns::resolve) refuses
/// more.
pub const MAX_RESOLUTIONS: usize = 64;
/// The most addresses one `Resolved` event carries (further ones in the same message are
/// dropped).
pub const MAX_RESOLVED_ADDRS: usize = 16;
/// Queries sent per resolution: the first at once, then one every [`QUERY_INTERVAL`]
/// while the timeout has not passed.
pub const MAX_QUERIES: u32 = 3;
/// The time between two queries for a name (RFC 6762 §5.2: at least one second between
/// the first two).
pub const QUERY_INTERVAL: Duration = Duration::from_secs(1);

/// One name being resolved.
///
/// Invariant: `queries` is between 1 and [`MAX_QUERIES`]; `next` is when the next query
/// goes out (while `queries < MAX_QUERIES`) or the resolution fails, whichever is first,
/// and is never after the failure (`started` + the timeout).
#[derive(Debug)]
struct Resolution {
    name: LocalName,
    started: Instant,
    queries: u32,
    next: Instant,
}

impl Resolution {
    /// When the resolution next needs time, `queries` having gone out, the last at `now`:
    /// one [`QUERY_INTERVAL`] later (so a late `handle_timeout` does not send two queries
    /// back to back), or the failure, whichever is first.
    fn deadline(started: Instant, queries: u32, now: Instant, timeout: Duration) -> Instant {
        let fail = started + timeout;
        if queries < MAX_QUERIES {
            fail.min(now + QUERY_INTERVAL)
        } else {
            fail
        }
    }
}

/// The resolutions in flight, keyed by the name's comparison key.
///
/// Invariant: at most [`MAX_RESOLUTIONS`] entries; an entry leaves on its answer
/// (`Resolved`) or its timeout (`ResolveFailed`), so no name stays without an end.
#[derive(Debug, Default)]
pub(super) struct Resolutions {
    pending: BTreeMap<String, Resolution>,
}

impl Resolutions {
    /// Starts resolving `name` and queues its first query (with the unicast-response bit,
    /// RFC 6762 §5.4, unless configured off); a name already in flight is left as it is.
    pub(super) fn start(
        &mut self,
        now: Instant,
        name: LocalName,
        timeout: Duration,
        out: &mut Output,
    ) -> Result<(), super::MdnsError> {
        if self.pending.contains_key(name.key()) {
            return Ok(());
        }
        if self.pending.len() >= MAX_RESOLUTIONS {
            return Err(super::MdnsError::TooManyResolutions);
        }
        // RFC 6762 §5.4: the first query asks for a unicast response (unless configured
        // off, §15.1).
        out.multicast(query(&name, out.unicast_responses));
        let next = Resolution::deadline(now, 1, now, timeout);
        let key = name.key().to_owned();
        self.pending.insert(
            key,
            Resolution {
                name,
                started: now,
                queries: 1,
                next,
            },
        );
        Ok(())
    }

    /// Stops resolving the name with `key`; true if it was in flight.
    pub(super) fn cancel(&mut self, key: &str) -> bool {
        self.pending.remove(key).is_some()
    }

    /// The number of resolutions in flight.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// When a query or a failure is next due.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|r| r.next).min()
    }

    /// Sends the queries and fails the resolutions that are due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant, timeout: Duration, out: &mut Output) {
        let mut failed = Vec::new();
        for (key, r) in self.pending.iter_mut().filter(|(_, r)| r.next <= now) {
            if now >= r.started + timeout {
                failed.push(key.clone());
                continue;
            }
            // RFC 6762 §5.4: only the first query asks for a unicast response.
            out.multicast(query(&r.name, false));
            r.queries += 1;
            r.next = Resolution::deadline(r.started, r.queries, now, timeout);
        }
        for key in failed {
            if let Some(r) = self.pending.remove(&key) {
                tracing::debug!(name = r.name.text(), "mDNS resolution timed out");
                out.event(MdnsEvent::ResolveFailed {
                    name: r.name.text().to_owned(),
                });
            }
        }
    }

    /// Takes the answers of a response: A and AAAA records (class IN, TTL above zero) of
    /// exactly a name in flight, in the answer or additional section, resolve it. Records
    /// of other names, other types (CNAME is not followed) and goodbyes (TTL 0, §10.1) are
    /// ignored; nothing is cached.
    pub(super) fn on_response(&mut self, msg: &Message, max_ttl: Duration, out: &mut Output) {
        if self.pending.is_empty() {
            return;
        }
        let mut found: BTreeMap<&str, (Vec<IpAddr>, u32)> = BTreeMap::new();
        for record in msg.answers.iter().chain(&msg.additional) {
            let (Some(key), Some(addr)) = (record.key.as_deref(), record.addr) else {
                continue;
            };
            if record.ttl == 0 || !self.pending.contains_key(key) {
                continue;
            }
            let (addrs, ttl) = found.entry(key).or_insert_with(|| (Vec::new(), u32::MAX));
            if !addrs.contains(&addr) && addrs.len() < MAX_RESOLVED_ADDRS {
                addrs.push(addr);
            }
            *ttl = (*ttl).min(record.ttl);
        }
        for (key, (addrs, ttl)) in found {
            if let Some(r) = self.pending.remove(key) {
                let ttl = Duration::from_secs(u64::from(ttl)).min(max_ttl);
                tracing::debug!(name = r.name.text(), ?addrs, "mDNS name resolved");
                out.event(MdnsEvent::Resolved {
                    name: r.name.text().to_owned(),
                    addrs,
                    ttl,
                });
            }
        }
    }
}

/// A one-shot query for the A and AAAA records of `name` (RFC 6762 §5.1).
fn query(name: &LocalName, unicast: bool) -> Vec<u8> {
    wire::query(
        &[
            (name.text(), QueryType::A, unicast),
            (name.text(), QueryType::Aaaa, unicast),
        ],
        &[],
    )
}
