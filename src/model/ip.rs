//! IP allowlists: exact addresses and CIDR blocks, v4 and v6.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::FieldError;

/// Entries of one allowlist: verify checks each, so the list is capped (docs/api.md, "Bounded work
/// per request").
pub const MAX_IP_RULES: usize = 100;

/// A non-empty list of networks; an exact address is kept as a /32 or /128.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct IpAllowlist(Vec<IpNet>);

impl IpAllowlist {
    /// `None` for an empty list: `[]` means no restriction, like `null`, never "allow nobody".
    pub fn parse(entries: &[String], field: &str) -> Result<Option<Self>, FieldError> {
        if entries.len() > MAX_IP_RULES {
            return Err(FieldError::too_many(field, MAX_IP_RULES));
        }
        let rules = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                parse_rule(entry).ok_or_else(|| {
                    FieldError::invalid(
                        format!("{field}[{i}]"),
                        format!("'{entry}' is not an IP address or CIDR block"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!rules.is_empty()).then_some(Self(rules)))
    }

    /// Every network of this list lies inside one of `bound`'s: it admits no address `bound`
    /// refuses.
    pub fn within(&self, bound: &IpAllowlist) -> bool {
        self.0.iter().all(|net| bound.0.iter().any(|outer| outer.contains(net)))
    }

    /// An IPv4-mapped IPv6 caller (`::ffff:a.b.c.d`) is matched as the IPv4 address it carries.
    pub fn allows(&self, caller: IpAddr) -> bool {
        let caller = match caller {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(caller, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.0.iter().any(|net| net.contains(&caller))
    }
}

/// Host bits in a block (`10.1.2.3/8`) are dropped: the rule is the network it names. The
/// entry is read as it is: white space around it is not an address (openapi.yaml, `IpRule`).
fn parse_rule(entry: &str) -> Option<IpNet> {
    if let Ok(addr) = entry.parse::<IpAddr>() {
        return Some(IpNet::from(addr));
    }
    entry.parse::<IpNet>().ok().map(|net| net.trunc())
}

impl TryFrom<Vec<String>> for IpAllowlist {
    type Error = FieldError;
    fn try_from(entries: Vec<String>) -> Result<Self, FieldError> {
        Self::parse(&entries, "whitelistedIPs")?
            .ok_or_else(|| FieldError::invalid("whitelistedIPs", "a stored allowlist is never empty"))
    }
}

impl From<IpAllowlist> for Vec<String> {
    fn from(list: IpAllowlist) -> Self {
        list.0
            .iter()
            .map(|net| if net.prefix_len() == net.max_prefix_len() { net.addr().to_string() } else { net.to_string() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(entries: &[&str]) -> IpAllowlist {
        let owned: Vec<String> = entries.iter().map(ToString::to_string).collect();
        IpAllowlist::parse(&owned, "whitelistedIPs").unwrap().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_addresses_match_only_themselves() {
        let l = list(&["203.0.113.7", "2001:db8::1"]);
        assert!(l.allows(ip("203.0.113.7")));
        assert!(!l.allows(ip("203.0.113.8")));
        assert!(l.allows(ip("2001:db8::1")));
        assert!(!l.allows(ip("2001:db8::2")));
    }

    #[test]
    fn cidr_edges_are_inclusive_and_exact() {
        let l = list(&["10.0.0.0/8", "2001:db8:abcd::/48"]);
        assert!(l.allows(ip("10.0.0.0")));
        assert!(l.allows(ip("10.255.255.255")));
        assert!(!l.allows(ip("11.0.0.0")));
        assert!(!l.allows(ip("9.255.255.255")));
        assert!(l.allows(ip("2001:db8:abcd:ffff:ffff:ffff:ffff:ffff")));
        assert!(!l.allows(ip("2001:db8:abce::")));
    }

    #[test]
    fn zero_prefix_blocks_allow_their_whole_family_only() {
        let l = list(&["0.0.0.0/0"]);
        assert!(l.allows(ip("198.51.100.1")));
        assert!(!l.allows(ip("2001:db8::1")));
        let l6 = list(&["::/0"]);
        assert!(l6.allows(ip("2001:db8::1")));
        assert!(!l6.allows(ip("198.51.100.1")));
    }

    #[test]
    fn ipv4_mapped_callers_match_ipv4_rules() {
        let l = list(&["192.0.2.0/24"]);
        assert!(l.allows(ip("::ffff:192.0.2.55")));
        assert!(!l.allows(ip("::ffff:192.0.3.1")));
    }

    #[test]
    fn host_bits_are_dropped_and_shown_normalised() {
        let l = list(&["10.1.2.3/8", "192.0.2.1"]);
        assert_eq!(Vec::<String>::from(l), vec!["10.0.0.0/8", "192.0.2.1"]);
    }

    #[test]
    fn a_bad_entry_is_named_by_its_index() {
        let entries = vec!["10.0.0.1".to_string(), "10.0.0.0/33".to_string()];
        let err = IpAllowlist::parse(&entries, "whitelistedIPs").unwrap_err();
        assert_eq!(err.field, "whitelistedIPs[1]");
        for bad in ["1.2.3", "::g", "1.2.3.4/", "300.1.1.1", "2001:db8::/129", "", " 10.0.0.1", "10.0.0.0/8 "] {
            assert!(IpAllowlist::parse(&[bad.to_string()], "w").is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_means_no_restriction_and_size_is_capped() {
        assert_eq!(IpAllowlist::parse(&[], "w").unwrap(), None);
        let many: Vec<String> = (0..101).map(|i| format!("10.0.0.{}", i % 250)).collect();
        assert!(IpAllowlist::parse(&many, "w").is_err());
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panic(s in ".{0,50}") {
            let _ = IpAllowlist::parse(&[s], "w");
        }

        #[test]
        fn a_v4_block_contains_exactly_its_range(a in any::<u32>(), prefix in 0u8..=32, probe in any::<u32>()) {
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(a), prefix).unwrap().trunc();
            let l = list(&[&net.to_string()]);
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            let inside = (probe & mask) == (a & mask);
            prop_assert_eq!(l.allows(IpAddr::V4(probe.into())), inside);
        }
    }
}
