//! Who a client is, for every per-client limit (connections, handshakes, requests): its
//! address, IPv6 by its /64 (one host usually holds a whole /64, so counting addresses
//! would let it multiply its share).

use std::net::{IpAddr, Ipv6Addr};

/// The per-client key of a peer: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}
