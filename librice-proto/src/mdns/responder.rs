//! The names this side publishes: probing (RFC 6762 §8.1, §8.2), announcing (§8.3),
//! answering (§6), conflicts (§9) and goodbyes (§10.1).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::name::LocalName;
use super::wire::{self, Message, OutData, OutRecord, QueryType, WireRecord};
use super::{MDNS_PORT, MdnsError, MdnsEvent, Output};

/// The most names published at once; [`Mdns::publish`](super::Mdns::publish) refuses more.
pub const MAX_PUBLISHED: usize = 64;
/// The most addresses one published name may have.
pub const MAX_PUBLISHED_ADDRS: usize = 16;
/// The TTL of the host records this side publishes (RFC 6762 §10: 120 s for records
/// that carry a host name).
pub const HOST_TTL: u32 = 120;
/// The TTL in legacy unicast replies (RFC 6762 §6.7: at most ten seconds).
pub const LEGACY_TTL: u32 = 10;
/// Probes sent before a name is claimed (RFC 6762 §8.1).
pub const PROBES: u32 = 3;
/// The time between probes, and from the last probe to the first announcement (§8.1).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// The most random delay before the first probe (§8.1: 0-250 ms).
pub const MAX_PROBE_DELAY_MS: u32 = 250;
/// Announcements sent once a name is claimed (§8.3: at least two).
pub const ANNOUNCEMENTS: u32 = 2;
/// The time between announcements (§8.3: one second).
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// The wait after losing a simultaneous probe tie-break before probing again (§8.2).
pub const TIE_BREAK_BACKOFF: Duration = Duration::from_secs(1);
/// The least time between two multicasts of a name's records (§6), and the shorter one
/// when defending it against a probe.
const MULTICAST_SPACING: Duration = Duration::from_secs(1);
const DEFENCE_SPACING: Duration = Duration::from_millis(250);

/// Where a published name stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `sent` probes have gone out; at `next` the next one goes out, or, after the last,
    /// the name is claimed.
    Probing { sent: u32, next: Instant },
    /// Claimed and answering; `sent` announcements have gone out, the next at `next`.
    Announcing { sent: u32, next: Instant },
    /// Claimed, announced and answering.
    Published,
}

/// One published name.
///
/// Invariant: `addrs` is sorted, without duplicates, and holds 1 to
/// [`MAX_PUBLISHED_ADDRS`] addresses.
#[derive(Debug)]
struct Publication {
    name: LocalName,
    addrs: Vec<IpAddr>,
    stage: Stage,
    last_multicast: Option<Instant>,
}

impl Publication {
    fn claimed(&self) -> bool {
        !matches!(self.stage, Stage::Probing { .. })
    }

    fn has(&self, v6: bool) -> bool {
        self.addrs.iter().any(|a| a.is_ipv6() == v6)
    }

    /// The address records of one family (`None`: both), with `ttl`.
    fn records(&self, v6: Option<bool>, ttl: u32, cache_flush: bool) -> Vec<OutRecord<'_>> {
        self.addrs
            .iter()
            .filter(|a| v6.is_none_or(|v6| a.is_ipv6() == v6))
            .map(|&addr| OutRecord {
                name: self.name.text(),
                data: OutData::Addr(addr),
                ttl,
                cache_flush,
            })
            .collect()
    }

    /// The NSEC record asserting which address types exist (RFC 6762 §6.1).
    fn nsec(&self, ttl: u32, cache_flush: bool) -> OutRecord<'_> {
        OutRecord {
            name: self.name.text(),
            data: OutData::Nsec {
                a: self.has(false),
                aaaa: self.has(true),
            },
            ttl,
            cache_flush,
        }
    }

    /// RFC 6762 §8.2.1: compares our proposed records with the other prober's, both sorted,
    /// record by record; the lexicographically later set wins, a longer set beats its
    /// prefix. `Less` means the other host wins.
    fn tie_break(&self, theirs: &[&WireRecord]) -> Ordering {
        let mut ours: Vec<_> = self
            .records(None, HOST_TTL, true)
            .iter()
            .map(OutRecord::order_key)
            .collect();
        ours.sort();
        let mut theirs: Vec<_> = theirs.iter().map(|r| r.order_key()).collect();
        theirs.sort();
        ours.cmp(&theirs)
    }

    /// True when `record`, of our name, contradicts what we publish (§9): an A or AAAA
    /// record of class IN with an address that is not ours.
    fn conflicts_with(&self, record: &WireRecord) -> bool {
        record.addr.is_some_and(|addr| !self.addrs.contains(&addr))
    }
}

/// The published names, keyed by the name's comparison key.
///
/// Invariant: at most [`MAX_PUBLISHED`] entries. A name leaves on `unpublish` (with a
/// goodbye if it was announced) or on a conflict (with a `Conflict` event).
#[derive(Debug, Default)]
pub(super) struct Publications {
    names: BTreeMap<String, Publication>,
}

impl Publications {
    /// Starts probing for `name` with `addrs`, the first probe `delay` from now.
    pub(super) fn publish(
        &mut self,
        now: Instant,
        name: LocalName,
        addrs: &[IpAddr],
        delay: Duration,
    ) -> Result<(), MdnsError> {
        if self.names.contains_key(name.key()) {
            return Err(MdnsError::AlreadyPublished {
                name: name.text().to_owned(),
            });
        }
        if self.names.len() >= MAX_PUBLISHED {
            return Err(MdnsError::TooManyNames);
        }
        let mut addrs = addrs.to_vec();
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() || addrs.len() > MAX_PUBLISHED_ADDRS {
            return Err(MdnsError::Addresses { count: addrs.len() });
        }
        let key = name.key().to_owned();
        self.names.insert(
            key,
            Publication {
                name,
                addrs,
                stage: Stage::Probing {
                    sent: 0,
                    next: now + delay,
                },
                last_multicast: None,
            },
        );
        Ok(())
    }

    /// Stops publishing the name with `key`, sending a goodbye (TTL 0, RFC 6762 §10.1) if it
    /// was announced. False if it was not published.
    pub(super) fn unpublish(&mut self, key: &str, out: &mut Output) -> bool {
        let Some(p) = self.names.remove(key) else {
            return false;
        };
        if p.claimed() {
            out.multicast(wire::response(0, &[], &p.records(None, 0, false), &[]));
        }
        true
    }

    /// The number of published names (probing ones included).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    /// When a probe or an announcement is next due.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.names
            .values()
            .filter_map(|p| match p.stage {
                Stage::Probing { next, .. } | Stage::Announcing { next, .. } => Some(next),
                Stage::Published => None,
            })
            .min()
    }

    /// Sends the probes and announcements due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant, out: &mut Output) {
        for p in self.names.values_mut() {
            match p.stage {
                Stage::Probing { sent, next } if next <= now => {
                    if sent < PROBES {
                        // RFC 6762 §8.1: a query of type ANY for the name, asking for a
                        // unicast answer (unless configured off, §15.1), with the proposed records in the authority
                        // section (§8.2).
                        let authority = p.records(None, HOST_TTL, false);
                        let questions = [(p.name.text(), QueryType::Any, out.unicast_responses)];
                        out.multicast(wire::query(&questions, &authority));
                        p.stage = Stage::Probing {
                            sent: sent + 1,
                            next: now + PROBE_INTERVAL,
                        };
                    } else {
                        // §8.3: no conflict 250 ms after the last probe: announce, with the
                        // cache-flush bit on unique records (§10.2).
                        announce(p, now, out);
                        p.stage = Stage::Announcing {
                            sent: 1,
                            next: now + ANNOUNCE_INTERVAL,
                        };
                        tracing::debug!(name = p.name.text(), "mDNS name claimed");
                        out.event(MdnsEvent::Published {
                            name: p.name.text().to_owned(),
                        });
                    }
                }
                Stage::Announcing { sent, next } if next <= now => {
                    announce(p, now, out);
                    p.stage = if sent + 1 < ANNOUNCEMENTS {
                        Stage::Announcing {
                            sent: sent + 1,
                            next: now + ANNOUNCE_INTERVAL,
                        }
                    } else {
                        Stage::Published
                    };
                }
                _ => {}
            }
        }
    }

    /// Takes a query: simultaneous probes for names being probed (§8.2), answers for
    /// claimed names (§6).
    pub(super) fn on_query(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &Message,
        out: &mut Output,
    ) {
        if self.names.is_empty() {
            return;
        }
        self.tie_breaks(now, msg);
        self.answer(now, from, msg, out);
    }

    /// RFC 6762 §8.2: a probe for a name we are probing, from a host proposing other
    /// records. If ours are lexicographically earlier, we lose: wait a second and probe
    /// again (by then the winner defends the name and the new probes meet its answer).
    fn tie_breaks(&mut self, now: Instant, msg: &Message) {
        if msg.authority.is_empty() {
            return;
        }
        for q in &msg.questions {
            let Some(p) = q.key.as_deref().and_then(|k| self.names.get_mut(k)) else {
                continue;
            };
            if p.claimed() {
                continue;
            }
            let theirs: Vec<&WireRecord> = msg
                .authority
                .iter()
                .filter(|r| r.key.as_deref() == Some(p.name.key()))
                .collect();
            if theirs.is_empty() {
                continue;
            }
            if p.tie_break(&theirs) == Ordering::Less {
                tracing::debug!(
                    name = p.name.text(),
                    "mDNS simultaneous probe lost, deferring"
                );
                p.stage = Stage::Probing {
                    sent: 0,
                    next: now + TIE_BREAK_BACKOFF,
                };
            }
        }
    }

    /// RFC 6762 §6: the records asked for, in one response per query: unicast to the
    /// querier for a legacy query (source port not 5353, §6.7) or when every question it
    /// asks of us has the unicast-response bit (§5.4), multicast otherwise.
    fn answer(&mut self, now: Instant, from: SocketAddr, msg: &Message, out: &mut Output) {
        let legacy = from.port() != MDNS_PORT;
        let probe = !msg.authority.is_empty();
        // (name key, question type, unicast bit) of each question about a claimed name.
        let mut asked: Vec<(&str, QueryType, bool, &str)> = Vec::new();
        for q in &msg.questions {
            let Some(key) = q.key.as_deref() else {
                continue;
            };
            if !q.class_in || q.qtype == QueryType::Other {
                continue;
            }
            if self.names.get(key).is_some_and(Publication::claimed) {
                asked.push((key, q.qtype, q.unicast, q.text.as_str()));
            }
        }
        if asked.is_empty() {
            return;
        }
        let unicast = legacy || asked.iter().all(|&(_, _, qu, _)| qu);
        let (ttl, cache_flush) = if legacy {
            // §6.7 and §10.2: short TTLs, and no cache-flush bit, for legacy queriers.
            (LEGACY_TTL, false)
        } else {
            (HOST_TTL, true)
        };
        let spacing = if probe {
            DEFENCE_SPACING
        } else {
            MULTICAST_SPACING
        };
        let mut answers = Vec::new();
        let mut additional = Vec::new();
        let mut questions = Vec::new();
        let mut multicast_names = Vec::new();
        for &(key, qtype, _, text) in &asked {
            let Some(p) = self.names.get(key) else {
                continue;
            };
            if !unicast && p.last_multicast.is_some_and(|t| now < t + spacing) {
                tracing::trace!(
                    name = p.name.text(),
                    "mDNS answer held back: multicast too recently"
                );
                continue;
            }
            let (wanted, other) = match qtype {
                QueryType::A => (Some(false), Some(true)),
                QueryType::Aaaa => (Some(true), Some(false)),
                _ => (None, None),
            };
            let mut records = p.records(wanted, ttl, cache_flush);
            // §7.1: no answer the querier already knows with at least half our TTL.
            records.retain(|r| !known(msg, key, r, ttl));
            if records.is_empty() && wanted.is_some_and(|v6| !p.has(v6)) {
                // §6.1: the name is ours but has no record of that type: say so.
                records.push(p.nsec(ttl, cache_flush));
            }
            if records.is_empty() {
                continue;
            }
            answers.extend(records);
            // §6.2: the other address type in the additional section, or its absence.
            if let Some(v6) = other {
                if p.has(v6) {
                    additional.extend(p.records(Some(v6), ttl, cache_flush));
                } else {
                    additional.push(p.nsec(ttl, cache_flush));
                }
            }
            if legacy {
                questions.push((text, qtype));
            }
            multicast_names.push(key);
        }
        if answers.is_empty() {
            return;
        }
        // A record already in the answer section is not repeated as additional data.
        let mut extra: Vec<OutRecord<'_>> = Vec::with_capacity(additional.len());
        for record in additional {
            if !answers.iter().chain(&extra).any(|r| r.same_as(&record)) {
                extra.push(record);
            }
        }
        let additional = extra;
        if legacy {
            out.unicast(
                from,
                wire::response(msg.id, &questions, &answers, &additional),
            );
        } else if unicast {
            out.unicast(from, wire::response(0, &[], &answers, &additional));
        } else {
            let data = wire::response(0, &[], &answers, &additional);
            out.multicast_to_family(from.is_ipv6(), data);
            for key in multicast_names {
                if let Some(p) = self.names.get_mut(key) {
                    p.last_multicast = Some(now);
                }
            }
        }
    }

    /// Takes a response: a record of a name being probed is a conflict (§8.1: of any type,
    /// even with our own data, once the first probe is out), and so is an address record of
    /// a claimed name with an address that is not ours (§9). Either drops the name with a
    /// `Conflict` event. Goodbyes (TTL 0) are not conflicts.
    pub(super) fn on_response(&mut self, msg: &Message, out: &mut Output) {
        if self.names.is_empty() {
            return;
        }
        let mut lost = Vec::new();
        for record in msg.answers.iter().chain(&msg.additional) {
            let Some(key) = record.key.as_deref() else {
                continue;
            };
            let Some(p) = self.names.get(key) else {
                continue;
            };
            if record.ttl == 0 || lost.contains(&key) {
                continue;
            }
            // §8.1: a response before the first probe is stale and silently ignored.
            if matches!(p.stage, Stage::Probing { sent: 0, .. }) {
                continue;
            }
            // §8.1: while probing with type ANY, any record of the name, of any type, is a
            // conflict; once claimed, only a contradicting one (§9).
            if !p.claimed() || p.conflicts_with(record) {
                lost.push(key);
            }
        }
        for key in lost {
            if let Some(p) = self.names.remove(key) {
                tracing::debug!(name = p.name.text(), "mDNS name conflict");
                out.event(MdnsEvent::Conflict {
                    name: p.name.text().to_owned(),
                });
            }
        }
    }
}

/// Sends the unsolicited response that announces `p` (§8.3).
fn announce(p: &mut Publication, now: Instant, out: &mut Output) {
    out.multicast(wire::response(
        0,
        &[],
        &p.records(None, HOST_TTL, true),
        &[],
    ));
    p.last_multicast = Some(now);
}

/// True if `msg` lists `record` of `key` as a known answer with at least half of `ttl`
/// left (§7.1).
fn known(msg: &Message, key: &str, record: &OutRecord<'_>, ttl: u32) -> bool {
    let OutData::Addr(addr) = record.data else {
        return false;
    };
    msg.answers
        .iter()
        .any(|k| k.key.as_deref() == Some(key) && k.addr == Some(addr) && k.ttl >= ttl / 2)
}
