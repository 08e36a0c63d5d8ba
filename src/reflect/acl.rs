//! The access list (`--allow CIDR`): which sources lreflect answers.
#![forbid(unsafe_code)]

use ipnet::{IpNet, Ipv4Net};
use std::net::IpAddr;

/// Sources allowed to get answers; an empty list allows everyone.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    nets: Vec<IpNet>,
}

impl Acl {
    pub fn new(nets: Vec<IpNet>) -> Acl {
        Acl { nets }
    }

    /// Whether `src` may be answered. IPv4-mapped sources (an IPv4 client on a dual-stack
    /// socket) are matched as the IPv4 addresses they are.
    pub fn allows(&self, src: IpAddr) -> bool {
        if self.nets.is_empty() {
            return true;
        }
        let src = src.to_canonical();
        self.nets.iter().any(|n| n.contains(&src))
    }
}

/// An `--allow` value: a CIDR block or a single address. An IPv4-mapped IPv6 block
/// (`::ffff:10.0.0.0/104`) becomes the IPv4 block it means, since sources are matched in
/// their canonical form.
pub fn parse_allow(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => {
                return Err(format!(
                "'{s}' is not a CIDR block or an address (e.g. 10.0.0.0/8, fd00::/16, 192.0.2.1)"
            ))
            }
        },
    };
    Ok(match net {
        IpNet::V6(n) if n.prefix_len() >= 96 => match n.network().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(
                Ipv4Net::new(v4, n.prefix_len() - 96).expect("prefix_len - 96 is at most 32"),
            ),
            None => net,
        },
        _ => net,
    }
    .trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(nets: &[&str]) -> Acl {
        Acl::new(nets.iter().map(|n| parse_allow(n).unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_list_allows_everyone() {
        assert!(acl(&[]).allows(ip("192.0.2.1")));
        assert!(acl(&[]).allows(ip("2001:db8::1")));
    }

    #[test]
    fn mapped_sources_match_ipv4_blocks_only() {
        let a = acl(&["10.0.0.0/24", "fd00::/64"]);
        assert!(a.allows(ip("10.0.0.7")));
        assert!(a.allows(ip("::ffff:10.0.0.7")), "mapped source, IPv4 block");
        assert!(!a.allows(ip("::ffff:10.0.1.7")));
        assert!(a.allows(ip("fd00::5")));
        assert!(!a.allows(ip("fd01::5")));
        let v6_only = acl(&["::/0"]);
        assert!(
            !v6_only.allows(ip("::ffff:10.0.0.7")),
            "an IPv4 client is not matched by an IPv6 block"
        );
        assert!(v6_only.allows(ip("2001:db8::1")));
    }

    #[test]
    fn mapped_blocks_and_bare_addresses_are_normalised() {
        assert_eq!(
            parse_allow("::ffff:10.0.0.0/104").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_allow("192.0.2.1").unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert_eq!(parse_allow("fd00::1").unwrap().to_string(), "fd00::1/128");
        assert_eq!(
            parse_allow("10.1.2.3/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
        let a = acl(&["::ffff:10.0.0.0/104"]);
        assert!(a.allows(ip("10.9.9.9")) && a.allows(ip("::ffff:10.9.9.9")));
        for bad in ["", "10.0.0.0/33", "host", "10.0.0.0/8/8", "fd00::/129"] {
            assert!(parse_allow(bad).is_err(), "{bad:?}");
        }
    }
}
