//! Local interface enumeration (with `if-addrs`) and the filter that picks the addresses an
//! agent gathers on.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

/// One address of a local network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The interface's name, e.g. `eth0`.
    pub interface: String,
    /// The interface index (the scope of link-local IPv6 addresses), when known.
    pub index: Option<u32>,
    /// The address.
    pub ip: IpAddr,
}

impl InterfaceAddress {
    /// True for 127.0.0.0/8 and ::1.
    pub fn is_loopback(&self) -> bool {
        self.ip.is_loopback()
    }

    /// True for 169.254.0.0/16 and fe80::/10.
    pub fn is_link_local(&self) -> bool {
        is_link_local(self.ip)
    }

    /// The address with port `port`, scoped to its interface when it is link-local IPv6.
    pub fn socket_addr(&self, port: u16) -> SocketAddr {
        match self.ip {
            IpAddr::V6(v6) if self.is_link_local() => {
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, self.index.unwrap_or(0)))
            }
            ip => SocketAddr::new(ip, port),
        }
    }
}

/// True for 169.254.0.0/16 and fe80::/10.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Which address families to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamilies {
    /// IPv4 and IPv6.
    #[default]
    Both,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// A caller's predicate on addresses.
pub type AddressPredicate = Arc<dyn Fn(&InterfaceAddress) -> bool + Send + Sync>;

/// Which local addresses an agent gathers on. By default: every address of every
/// interface that is up, except loopback and link-local ones.
#[derive(Clone, Default)]
pub struct AddressFilter {
    /// Also use loopback addresses.
    pub loopback: bool,
    /// Also use link-local addresses.
    pub link_local: bool,
    /// The families to use.
    pub families: AddressFamilies,
    /// When not empty, use exactly these addresses (loopback and link-local included), if
    /// the machine has them.
    pub only: Vec<IpAddr>,
    /// A further predicate every address must pass.
    pub predicate: Option<AddressPredicate>,
}

impl fmt::Debug for AddressFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressFilter")
            .field("loopback", &self.loopback)
            .field("link_local", &self.link_local)
            .field("families", &self.families)
            .field("only", &self.only)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl AddressFilter {
    /// True if `addr` passes the filter.
    pub fn accepts(&self, addr: &InterfaceAddress) -> bool {
        let family_ok = match self.families {
            AddressFamilies::Both => true,
            AddressFamilies::V4 => addr.ip.is_ipv4(),
            AddressFamilies::V6 => addr.ip.is_ipv6(),
        };
        if !family_ok {
            return false;
        }
        let kind_ok = if self.only.is_empty() {
            (self.loopback || !addr.is_loopback()) && (self.link_local || !addr.is_link_local())
        } else {
            self.only.contains(&addr.ip)
        };
        kind_ok && self.predicate.as_ref().is_none_or(|p| p(addr))
    }
}

/// Every address of every interface that is up (or whose state is unknown), in the order
/// the system lists them.
pub fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    let mut out = Vec::new();
    for iface in if_addrs::get_if_addrs()? {
        if matches!(
            iface.oper_status,
            if_addrs::IfOperStatus::Down
                | if_addrs::IfOperStatus::NotPresent
                | if_addrs::IfOperStatus::LowerLayerDown
        ) {
            continue;
        }
        let ip = iface.ip();
        if ip.is_unspecified() || ip.is_multicast() {
            continue;
        }
        let entry = InterfaceAddress {
            interface: iface.name.clone(),
            index: iface.index,
            ip,
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// The machine's addresses that pass `filter` (see [`select_from`]).
pub fn select_addresses(filter: &AddressFilter) -> io::Result<Vec<InterfaceAddress>> {
    Ok(select_from(filter, interface_addresses()?))
}

/// The addresses of `all` that pass `filter`. Addresses in `filter.only` that no interface
/// has are added as they are (binding them will tell whether they exist), so that e.g.
/// `127.0.0.1` works on systems that list no loopback interface.
pub fn select_from(filter: &AddressFilter, all: Vec<InterfaceAddress>) -> Vec<InterfaceAddress> {
    let mut out: Vec<InterfaceAddress> = all.into_iter().filter(|a| filter.accepts(a)).collect();
    if !filter.only.is_empty() {
        let mut ordered = Vec::new();
        for ip in &filter.only {
            match out.iter().position(|a| a.ip == *ip) {
                Some(i) => ordered.push(out.remove(i)),
                None => ordered.push(InterfaceAddress {
                    interface: String::from("?"),
                    index: None,
                    ip: *ip,
                }),
            }
        }
        out = ordered;
    }
    out
}
