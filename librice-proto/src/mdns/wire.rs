//! The glue to the DNS message codec (`simple-dns`): what the state machines need from a
//! received message, read into plain owned values after size checks, and the few messages
//! they send, written with name compression.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::{A, AAAA, NSEC, NsecTypeBitMap, RData};
use simple_dns::{
    CLASS, Name, OPCODE, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord,
    SimpleDnsError, TYPE,
};

use super::name::wire_key;

/// The largest message read or written (RFC 6762 §17: 9000 bytes, IP and UDP headers
/// included; this counts the DNS message only, so it is a little generous).
pub const MAX_MESSAGE: usize = 9000;
/// The DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// The smallest question: the root name (1 byte), QTYPE and QCLASS.
const MIN_QUESTION: usize = 5;
/// The smallest resource record: the root name, TYPE, CLASS, TTL, RDLENGTH.
const MIN_RECORD: usize = 11;

/// Why a received message was dropped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DropReason {
    /// Larger than [`MAX_MESSAGE`].
    TooLong(usize),
    /// Shorter than a DNS header.
    TooShort(usize),
    /// The header counts more entries than the message could hold. Checked before the codec
    /// runs, since it reserves room for as many entries as the header claims.
    CountsExceedLength,
    /// The codec refused the bytes.
    Malformed(SimpleDnsError),
    /// RFC 6762 §18.3: an OPCODE other than 0 is silently ignored.
    Opcode,
    /// RFC 6762 §18.11: a non-zero RCODE is silently ignored.
    Rcode,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(len) => write!(f, "{len} bytes, more than {MAX_MESSAGE}"),
            Self::TooShort(len) => write!(f, "{len} bytes, shorter than a DNS header"),
            Self::CountsExceedLength => f.write_str("header counts exceed the message length"),
            Self::Malformed(e) => write!(f, "malformed: {e}"),
            Self::Opcode => f.write_str("OPCODE is not a standard query"),
            Self::Rcode => f.write_str("non-zero RCODE"),
        }
    }
}

/// The type a question asks for, as far as host names go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QueryType {
    /// A (IPv4 address).
    A,
    /// AAAA (IPv6 address).
    Aaaa,
    /// ANY (255), the type of probes (RFC 6762 §8.1).
    Any,
    /// Anything else.
    Other,
}

/// A question read from the wire.
#[derive(Debug, Clone)]
pub(super) struct WireQuestion {
    /// The comparison key of the name (`None`: it cannot be one of ours).
    pub key: Option<String>,
    /// The name as the querier spelled it (for legacy replies, RFC 6762 §6.7).
    pub text: String,
    /// What it asks for.
    pub qtype: QueryType,
    /// Class IN or ANY.
    pub class_in: bool,
    /// The unicast-response bit (RFC 6762 §5.4).
    pub unicast: bool,
}

/// A resource record read from the wire.
#[derive(Debug, Clone)]
pub(super) struct WireRecord {
    /// The comparison key of the name (`None`: it cannot be one of ours).
    pub key: Option<String>,
    /// The record type.
    pub rtype: u16,
    /// The class, without the cache-flush bit.
    pub class: u16,
    /// The TTL in seconds.
    pub ttl: u32,
    /// The address of an A or AAAA record of class IN.
    pub addr: Option<IpAddr>,
}

impl WireRecord {
    /// The record's place in RFC 6762 §8.2.1 order: class, type, then rdata bytes. Only the
    /// rdata of A and AAAA records is known here; others compare by class and type.
    pub(super) fn order_key(&self) -> (u16, u16, Vec<u8>) {
        (self.class, self.rtype, addr_bytes(self.addr))
    }
}

/// What the state machines use of a received message.
#[derive(Debug, Clone)]
pub(super) struct Message {
    /// The query identifier (echoed in legacy replies, RFC 6762 §6.7).
    pub id: u16,
    /// QR: a response rather than a query.
    pub response: bool,
    /// The question section.
    pub questions: Vec<WireQuestion>,
    /// The answer section (known answers in a query, RFC 6762 §7.1).
    pub answers: Vec<WireRecord>,
    /// The authority section (proposed records in a probe, RFC 6762 §8.2).
    pub authority: Vec<WireRecord>,
    /// The additional section.
    pub additional: Vec<WireRecord>,
}

/// Reads a message: size checks first, then the codec, then RFC 6762 §18.3 and §18.11.
pub(super) fn parse(data: &[u8]) -> Result<Message, DropReason> {
    if data.len() > MAX_MESSAGE {
        return Err(DropReason::TooLong(data.len()));
    }
    if data.len() < HEADER_LEN {
        return Err(DropReason::TooShort(data.len()));
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([data[at], data[at + 1]]));
    let needed = count(4) * MIN_QUESTION + (count(6) + count(8) + count(10)) * MIN_RECORD;
    if needed > data.len() - HEADER_LEN {
        return Err(DropReason::CountsExceedLength);
    }
    let packet = Packet::parse(data).map_err(DropReason::Malformed)?;
    if packet.opcode() != OPCODE::StandardQuery {
        return Err(DropReason::Opcode);
    }
    if packet.rcode() != RCODE::NoError {
        return Err(DropReason::Rcode);
    }
    let records = |section: &[ResourceRecord<'_>]| section.iter().map(read_record).collect();
    Ok(Message {
        id: packet.id(),
        response: packet.has_flags(PacketFlag::RESPONSE),
        questions: packet.questions.iter().map(read_question).collect(),
        answers: records(&packet.answers),
        authority: records(&packet.name_servers),
        additional: records(&packet.additional_records),
    })
}

fn read_question(q: &Question<'_>) -> WireQuestion {
    let key = wire_key(q.qname.as_bytes());
    let text = if key.is_some() {
        q.qname.to_string()
    } else {
        String::new()
    };
    WireQuestion {
        key,
        text,
        qtype: match q.qtype {
            QTYPE::TYPE(TYPE::A) => QueryType::A,
            QTYPE::TYPE(TYPE::AAAA) => QueryType::Aaaa,
            QTYPE::ANY => QueryType::Any,
            _ => QueryType::Other,
        },
        class_in: matches!(q.qclass, QCLASS::CLASS(CLASS::IN) | QCLASS::ANY),
        unicast: q.unicast_response,
    }
}

fn read_record(rr: &ResourceRecord<'_>) -> WireRecord {
    let class = rr.class as u16;
    let addr = match (&rr.rdata, rr.class) {
        (RData::A(a), CLASS::IN) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
        (RData::AAAA(a), CLASS::IN) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
        _ => None,
    };
    WireRecord {
        key: wire_key(rr.name.as_bytes()),
        rtype: u16::from(rr.rdata.type_code()),
        class,
        ttl: rr.ttl,
        addr,
    }
}

fn addr_bytes(addr: Option<IpAddr>) -> Vec<u8> {
    match addr {
        Some(IpAddr::V4(a)) => a.octets().to_vec(),
        Some(IpAddr::V6(a)) => a.octets().to_vec(),
        None => Vec::new(),
    }
}

/// The data of a record this side writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutData {
    /// An A or AAAA record.
    Addr(IpAddr),
    /// An NSEC record asserting which of A and AAAA exist (RFC 6762 §6.1).
    Nsec {
        /// The name has A records.
        a: bool,
        /// The name has AAAA records.
        aaaa: bool,
    },
}

/// A record this side writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct OutRecord<'n> {
    /// The owner name: a validated name (see `LocalName`).
    pub name: &'n str,
    /// The data.
    pub data: OutData,
    /// The TTL in seconds.
    pub ttl: u32,
    /// The cache-flush bit (RFC 6762 §10.2).
    pub cache_flush: bool,
}

impl OutRecord<'_> {
    /// True when both records have the same name and data.
    pub(super) fn same_as(&self, other: &OutRecord<'_>) -> bool {
        self.name == other.name && self.data == other.data
    }

    /// The record's place in RFC 6762 §8.2.1 order (class IN).
    pub(super) fn order_key(&self) -> (u16, u16, Vec<u8>) {
        match self.data {
            OutData::Addr(addr) => (
                CLASS::IN as u16,
                u16::from(addr_type(addr)),
                addr_bytes(Some(addr)),
            ),
            OutData::Nsec { .. } => (CLASS::IN as u16, u16::from(TYPE::NSEC), Vec::new()),
        }
    }
}

fn addr_type(addr: IpAddr) -> TYPE {
    match addr {
        IpAddr::V4(_) => TYPE::A,
        IpAddr::V6(_) => TYPE::AAAA,
    }
}

/// A validated name in the codec's form.
fn dns_name(name: &str) -> Name<'_> {
    // Callers give names checked by `LocalName::parse`: labels of 1 to 63 bytes, no
    // escapes, at most 253 bytes, which is what `Name::new` accepts.
    Name::new(name).expect("a validated .local name")
}

fn write_record<'n>(record: &OutRecord<'n>, bitmap: &'n mut [u8; 4]) -> ResourceRecord<'n> {
    let rdata = match record.data {
        OutData::Addr(IpAddr::V4(a)) => RData::A(A::from(a)),
        OutData::Addr(IpAddr::V6(a)) => RData::AAAA(AAAA::from(a)),
        OutData::Nsec { a, aaaa } => {
            // RFC 4034 §4.1.2 type bitmap, window 0: A is type 1, AAAA type 28 (RFC 6762
            // §6.1: the next domain name is the record's own name).
            *bitmap = [if a { 0x40 } else { 0 }, 0, 0, if aaaa { 0x08 } else { 0 }];
            RData::NSEC(NSEC {
                next_name: dns_name(record.name),
                type_bit_maps: vec![NsecTypeBitMap {
                    window_block: 0,
                    bitmap: std::borrow::Cow::Borrowed(&bitmap[..]),
                }],
            })
        }
    };
    ResourceRecord::new(dns_name(record.name), CLASS::IN, record.ttl, rdata)
        .with_cache_flush(record.cache_flush)
}

fn finish(packet: &Packet<'_>) -> Vec<u8> {
    // Writing into a Vec cannot fail, and the packets written here are small: at most a
    // few dozen records of names checked to be at most 253 bytes.
    packet
        .build_bytes_vec_compressed()
        .expect("writing to a Vec succeeds")
}

/// A multicast query (identifier 0, RFC 6762 §18.1) with `questions` and, for probes,
/// the proposed records in the authority section (§8.2).
pub(super) fn query(questions: &[(&str, QueryType, bool)], authority: &[OutRecord<'_>]) -> Vec<u8> {
    let mut packet = Packet::new_query(0);
    for &(name, qtype, unicast) in questions {
        let qtype = match qtype {
            QueryType::A => QTYPE::TYPE(TYPE::A),
            QueryType::Aaaa => QTYPE::TYPE(TYPE::AAAA),
            QueryType::Any | QueryType::Other => QTYPE::ANY,
        };
        packet.questions.push(Question::new(
            dns_name(name),
            qtype,
            QCLASS::CLASS(CLASS::IN),
            unicast,
        ));
    }
    let mut bitmaps = vec![[0u8; 4]; authority.len()];
    for (record, bitmap) in authority.iter().zip(bitmaps.iter_mut()) {
        packet.name_servers.push(write_record(record, bitmap));
    }
    finish(&packet)
}

/// A response (QR and AA set, RFC 6762 §18.2 and §18.4) with `id` and `questions` (both
/// only for legacy unicast replies, §6.7; zero and none otherwise, §18.1 and §6).
pub(super) fn response(
    id: u16,
    questions: &[(&str, QueryType)],
    answers: &[OutRecord<'_>],
    additional: &[OutRecord<'_>],
) -> Vec<u8> {
    let mut packet = Packet::new_reply(id);
    packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    for &(name, qtype) in questions {
        let qtype = match qtype {
            QueryType::A => QTYPE::TYPE(TYPE::A),
            QueryType::Aaaa => QTYPE::TYPE(TYPE::AAAA),
            QueryType::Any | QueryType::Other => QTYPE::ANY,
        };
        // A legacy querier's name may hold any characters: written without the escapes
        // the text form would need, as the querier's labels were.
        packet.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype,
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
    }
    let mut bitmaps = vec![[0u8; 4]; answers.len() + additional.len()];
    let (answer_maps, additional_maps) = bitmaps.split_at_mut(answers.len());
    for (record, bitmap) in answers.iter().zip(answer_maps.iter_mut()) {
        packet.answers.push(write_record(record, bitmap));
    }
    for (record, bitmap) in additional.iter().zip(additional_maps.iter_mut()) {
        packet.additional_records.push(write_record(record, bitmap));
    }
    finish(&packet)
}
