//! The egress policy: where Spindle may connect on someone else's behalf (subscription sinks
//! and outputs, the webhook handshake's callback, guests' outbound HTTP).
//!
//! Whoever creates a subscription, sends a handshake or writes a guest chooses the destination,
//! so by default Spindle refuses the addresses no such destination has a reason to be at and
//! an attacker would aim for: link-local addresses (where cloud metadata services answer,
//! `169.254.169.254`), known metadata addresses, multicast, broadcast and unspecified ones.
//! `[application.egress]` adjusts it:
//!
//! - `deny = [...]` closes more: CIDRs (`10.0.0.0/8`), addresses, host names or `*.domain`
//!   patterns, or `*` (everything, for an allow-list);
//! - `allow = [...]` opens what would be denied, by the same kinds of rule; an `allow` match
//!   wins over every `deny` and over the defaults.
//!
//! Rules are checked on the name a destination is written with and on every address it
//! resolves to, at connect time, so a name re-pointed later (DNS rebinding) is caught too.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// One `allow`/`deny` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressRule {
    /// `*`: everything.
    Any,
    /// A network, `10.0.0.0/8` (a bare address is a /32 or /128).
    Network {
        /// The network's address.
        addr: IpAddr,
        /// The prefix length.
        prefix: u8,
    },
    /// A host name, exactly (case-insensitive).
    Host(String),
    /// `*.domain`: any subdomain of `domain` (not the domain itself).
    Subdomains(String),
}

impl FromStr for EgressRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid egress rule \"{s}\": {why} (expected a CIDR like \"10.0.0.0/8\", an address, a host name, \"*.example.com\" or \"*\")"
            )
        };
        if s == "*" {
            return Ok(EgressRule::Any);
        }
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad("invalid prefix length"))?;
            return Ok(EgressRule::Network { addr, prefix });
        }
        let unbracketed = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(addr) = unbracketed.parse::<IpAddr>() {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            return Ok(EgressRule::Network { addr, prefix });
        }
        let host = s.to_ascii_lowercase();
        match host.strip_prefix("*.") {
            Some(domain) if is_hostname(domain) => Ok(EgressRule::Subdomains(domain.to_owned())),
            None if is_hostname(&host) => Ok(EgressRule::Host(host)),
            _ => Err(bad("not a host name")),
        }
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressRule::Any => f.write_str("*"),
            EgressRule::Network { addr, prefix } => write!(f, "{addr}/{prefix}"),
            EgressRule::Host(h) => f.write_str(h),
            EgressRule::Subdomains(d) => write!(f, "*.{d}"),
        }
    }
}

impl EgressRule {
    fn matches_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match self {
            EgressRule::Any => true,
            EgressRule::Host(h) => host.eq_ignore_ascii_case(h),
            EgressRule::Subdomains(d) => {
                host.len() > d.len() + 1
                    && host[host.len() - d.len()..].eq_ignore_ascii_case(d)
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.'
            }
            EgressRule::Network { .. } => host.parse().is_ok_and(|ip| self.matches_ip(ip)),
        }
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match self {
            EgressRule::Any => true,
            EgressRule::Network { addr, prefix } => in_network(canonical(ip), *addr, *prefix),
            EgressRule::Host(_) | EgressRule::Subdomains(_) => false,
        }
    }
}

/// The egress policy in force: the defaults adjusted by `allow` and `deny`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Rules that open a destination, whatever else says.
    pub allow: Vec<EgressRule>,
    /// Rules that close a destination beyond the defaults.
    pub deny: Vec<EgressRule>,
}

/// A refused destination and the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("egress policy: {target} is denied ({rule})")]
pub struct EgressDenied {
    /// The host or address refused.
    pub target: String,
    /// The rule: `deny` entry, or the default it falls under.
    pub rule: String,
}

impl EgressPolicy {
    /// Checks a destination by the name (or literal address) it is written with, before any
    /// lookup: for a name, the `allow`/`deny` rules about names (a `*` or network rule waits
    /// for the addresses, see [`EgressPolicy::check_addr`]); for a literal address, every rule
    /// and the defaults.
    pub fn check_host(&self, host: &str) -> Result<(), EgressDenied> {
        if self.allow.iter().any(|r| r.matches_host(host)) {
            return Ok(());
        }
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        let about_names = |r: &&EgressRule| {
            literal || matches!(r, EgressRule::Host(_) | EgressRule::Subdomains(_))
        };
        if let Some(rule) = self
            .deny
            .iter()
            .filter(about_names)
            .find(|r| r.matches_host(host))
        {
            return Err(EgressDenied {
                target: host.to_owned(),
                rule: format!("[application.egress] deny \"{rule}\""),
            });
        }
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && let Some(why) = default_denied(ip)
        {
            return Err(EgressDenied {
                target: host.to_owned(),
                rule: why.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks one address `host` resolved to (connect time): allowed when `allow` matches the
    /// name or the address; otherwise refused by a `deny` rule matching either, or by the
    /// defaults.
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), EgressDenied> {
        if self
            .allow
            .iter()
            .any(|r| r.matches_host(host) || r.matches_ip(ip))
        {
            return Ok(());
        }
        let target = if host.trim_start_matches('[').trim_end_matches(']') == ip.to_string() {
            host.to_owned()
        } else {
            format!("{host} ({ip})")
        };
        if let Some(rule) = self
            .deny
            .iter()
            .find(|r| r.matches_host(host) || r.matches_ip(ip))
        {
            return Err(EgressDenied {
                target,
                rule: format!("[application.egress] deny \"{rule}\""),
            });
        }
        match default_denied(ip) {
            Some(why) => Err(EgressDenied {
                target,
                rule: why.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// Why the defaults refuse `ip`, if they do.
pub fn default_denied(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                Some("a link-local address, where cloud metadata services answer")
            } else if v4.octets() == [100, 100, 100, 200] {
                Some("a cloud metadata address")
            } else if v4.is_unspecified() {
                Some("the unspecified address")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("a multicast or broadcast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address, where cloud metadata services answer")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("a cloud metadata address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, canonical(network)) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// A DNS name: dot-separated labels of letters, digits, inner hyphens and underscores.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> EgressPolicy {
        EgressPolicy {
            allow: allow.iter().map(|r| r.parse().unwrap()).collect(),
            deny: deny.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn defaults_refuse_what_no_destination_should_be() {
        let p = EgressPolicy::default();
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1",
            "fd00:ec2::254",
            "::",
            "ff02::1",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(p.check_addr("h", ip).is_err(), "{bad}");
            assert!(p.check_host(bad).is_err(), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "::1",
            "2001:db8::1",
        ] {
            assert!(p.check_addr("h", ok.parse().unwrap()).is_ok(), "{ok}");
        }
        assert!(p.check_host("metadata.example").is_ok());
    }

    #[test]
    fn deny_closes_more_and_allow_wins() {
        let p = policy(
            &["169.254.10.0/24", "hooks.internal"],
            &["10.0.0.0/8", "*.corp.example"],
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(p.check_addr("x", ip("10.1.2.3")).is_err());
        assert!(p.check_addr("x", ip("::ffff:10.1.2.3")).is_err());
        assert!(p.check_addr("a.corp.example", ip("8.8.8.8")).is_err());
        assert!(p.check_host("a.corp.example").is_err());
        assert!(p.check_host("corp.example").is_ok());
        assert!(p.check_addr("hooks.internal", ip("10.0.0.7")).is_ok());
        assert!(p.check_addr("x", ip("169.254.10.9")).is_ok());
        assert!(p.check_addr("x", ip("169.254.11.9")).is_err());
        let e = p.check_addr("x", ip("10.1.2.3")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "egress policy: x (10.1.2.3) is denied ([application.egress] deny \"10.0.0.0/8\")"
        );

        let allow_list = policy(&["api.partner.example", "127.0.0.0/8"], &["*"]);
        // A name passes the name check; its addresses decide.
        assert!(allow_list.check_host("localhost").is_ok());
        assert!(allow_list.check_host("8.8.8.8").is_err());
        assert!(allow_list.check_host("127.0.0.2").is_ok());
        assert!(
            allow_list
                .check_addr("api.partner.example", ip("8.8.8.8"))
                .is_ok()
        );
        assert!(allow_list.check_addr("localhost", ip("127.0.0.1")).is_ok());
        assert!(
            allow_list
                .check_addr("other.example", ip("8.8.4.4"))
                .is_err()
        );
    }

    #[test]
    fn rules_parse_and_print() {
        for (text, printed) in [
            ("*", "*"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.168.1.5", "192.168.1.5/32"),
            ("::1", "::1/128"),
            ("[fd00::1]", "fd00::1/128"),
            ("API.example.com", "api.example.com"),
            ("*.example.com", "*.example.com"),
        ] {
            assert_eq!(text.parse::<EgressRule>().unwrap().to_string(), printed);
        }
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "exa mple.com",
            "*.",
            "",
            "http://x",
        ] {
            assert!(bad.parse::<EgressRule>().is_err(), "{bad}");
        }
    }
}
