//! Client addresses: the socket peer, or — only behind a configured trusted proxy — X-Forwarded-For.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client's IP. `X-Forwarded-For` is read right to left, skipping trusted proxies, so a client cannot
/// forge its address by sending the header itself.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !is_trusted(client, trusted) {
                    return client;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, seen on dual-stack sockets) as plain IPv4, so CIDR rules match.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// True when `allowed` is empty or contains `ip`.
pub fn is_allowed(ip: IpAddr, allowed: &[IpNet]) -> bool {
    allowed.is_empty() || is_trusted(canonical(ip), allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        let ip = client_ip("203.0.113.9".parse().unwrap(), Some("1.2.3.4"), &nets(&["10.0.0.0/8"]));
        assert_eq!(ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn trusted_proxy_chain_yields_first_untrusted_from_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = client_ip("10.0.0.2".parse().unwrap(), Some("6.6.6.6, 198.51.100.7, 10.0.0.5"), &trusted);
        assert_eq!(ip.to_string(), "198.51.100.7", "the spoofed left-most entry is not believed");
    }

    #[test]
    fn mapped_v6_matches_v4_rules() {
        assert!(is_allowed("::ffff:192.0.2.4".parse().unwrap(), &nets(&["192.0.2.0/24"])));
        assert!(!is_allowed("198.51.100.1".parse().unwrap(), &nets(&["192.0.2.0/24"])));
        assert!(is_allowed("198.51.100.1".parse().unwrap(), &[]));
    }
}
