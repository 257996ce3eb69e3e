//! NAT models in RFC 4787 terms: mapping and filtering behaviour.
//!
//! A [`Nat`] owns one public IP address. Outbound packets get a public port from a
//! mapping that is endpoint-independent ([`NatType::FullCone`],
//! [`NatType::AddressRestricted`], [`NatType::PortRestricted`]) or
//! address-and-port-dependent ([`NatType::Symmetric`]). Inbound packets to a mapped port are
//! filtered by what the internal endpoint has sent through that mapping. Mappings never
//! expire unless a test makes the NAT forget them all ([`Nat::forget_mappings`]). Ports are allocated sequentially from [`FIRST_PORT`] and never reused.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use librice_proto::TransportType;

/// The first public port a NAT hands out.
pub const FIRST_PORT: u16 = 40000;

/// The behaviour of a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NatType {
    /// Endpoint-independent mapping, no filtering: anyone may send to a mapped port.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    AddressRestricted,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestricted,
    /// Address-and-port-dependent mapping and filtering.
    Symmetric,
}

impl NatType {
    /// All four types, for tests that run over each.
    pub const ALL: [NatType; 4] = [
        NatType::FullCone,
        NatType::AddressRestricted,
        NatType::PortRestricted,
        NatType::Symmetric,
    ];

    /// Whether one public port serves an internal endpoint whatever the destination.
    pub fn endpoint_independent_mapping(self) -> bool {
        !matches!(self, NatType::Symmetric)
    }
}

/// Why a NAT refused an inbound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundDrop {
    /// No mapping for the destination port (and transport).
    NoMapping,
    /// A mapping exists but its filter rejects the source.
    Filtered,
}

/// A key for `TransportType`, which is not `Ord`.
fn transport_key(transport: TransportType) -> u8 {
    match transport {
        TransportType::Udp => 0,
        TransportType::Tcp => 1,
    }
}

/// One public port's state.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The internal endpoint the port maps to.
    pub internal: SocketAddr,
    /// The remote endpoints the internal endpoint has sent to through this port.
    pub sent_to: BTreeSet<SocketAddr>,
}

/// A NAT's state: its mappings and their filters.
#[derive(Debug, Clone)]
pub struct Nat {
    nat_type: NatType,
    public_ip: IpAddr,
    next_port: u16,
    /// (transport, internal endpoint, destination for symmetric mappings) -> public port.
    mappings: BTreeMap<(u8, SocketAddr, Option<SocketAddr>), u16>,
    /// (transport, public port) -> binding.
    bindings: BTreeMap<(u8, u16), Binding>,
}

impl Nat {
    /// A NAT with no mappings yet.
    pub fn new(nat_type: NatType, public_ip: IpAddr) -> Self {
        Self {
            nat_type,
            public_ip,
            next_port: FIRST_PORT,
            mappings: BTreeMap::new(),
            bindings: BTreeMap::new(),
        }
    }

    /// The NAT's behaviour.
    pub fn nat_type(&self) -> NatType {
        self.nat_type
    }

    /// The NAT's public address (in the public realm).
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
    }

    /// How many public ports are mapped.
    pub fn mapping_count(&self) -> usize {
        self.bindings.len()
    }

    /// Translates an outbound packet from `internal` to `remote`: returns the public source
    /// address, creating the mapping if needed and recording `remote` for filtering.
    pub fn outbound(
        &mut self,
        transport: TransportType,
        internal: SocketAddr,
        remote: SocketAddr,
    ) -> SocketAddr {
        let t = transport_key(transport);
        let dest = (!self.nat_type.endpoint_independent_mapping()).then_some(remote);
        let port = match self.mappings.get(&(t, internal, dest)) {
            Some(&port) => port,
            None => {
                let port = self.next_port;
                self.next_port = self
                    .next_port
                    .checked_add(1)
                    .expect("simulated NAT ran out of ports");
                self.mappings.insert((t, internal, dest), port);
                self.bindings.insert(
                    (t, port),
                    Binding {
                        internal,
                        sent_to: BTreeSet::new(),
                    },
                );
                port
            }
        };
        self.bindings
            .get_mut(&(t, port))
            .expect("binding exists for every mapping")
            .sent_to
            .insert(remote);
        SocketAddr::new(self.public_ip, port)
    }

    /// The internal endpoint `public` maps to, without filtering.
    pub fn lookup(&self, transport: TransportType, public: SocketAddr) -> Option<SocketAddr> {
        if public.ip() != self.public_ip {
            return None;
        }
        self.bindings
            .get(&(transport_key(transport), public.port()))
            .map(|b| b.internal)
    }

    /// Filters an inbound packet from `remote` to `public`: the internal endpoint to deliver
    /// it to, or why it is dropped.
    pub fn inbound(
        &self,
        transport: TransportType,
        remote: SocketAddr,
        public: SocketAddr,
    ) -> Result<SocketAddr, InboundDrop> {
        if public.ip() != self.public_ip {
            return Err(InboundDrop::NoMapping);
        }
        let binding = self
            .bindings
            .get(&(transport_key(transport), public.port()))
            .ok_or(InboundDrop::NoMapping)?;
        let allowed = match self.nat_type {
            NatType::FullCone => true,
            NatType::AddressRestricted => binding.sent_to.iter().any(|a| a.ip() == remote.ip()),
            NatType::PortRestricted | NatType::Symmetric => binding.sent_to.contains(&remote),
        };
        if allowed {
            Ok(binding.internal)
        } else {
            Err(InboundDrop::Filtered)
        }
    }

    /// Forgets every mapping, as a NAT that rebooted or timed its bindings out: the next
    /// outbound packet of each internal endpoint gets a new public port (ports are never
    /// reused), and packets to the old ones are dropped.
    pub fn forget_mappings(&mut self) {
        self.mappings.clear();
        self.bindings.clear();
    }

    /// Every mapped public port with its binding, in port order (for inspection).
    pub fn bindings(&self) -> impl Iterator<Item = (TransportType, u16, &Binding)> {
        self.bindings.iter().map(|(&(t, port), b)| {
            let transport = if t == 0 {
                TransportType::Udp
            } else {
                TransportType::Tcp
            };
            (transport, port, b)
        })
    }
}
