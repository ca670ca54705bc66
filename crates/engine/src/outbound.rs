//! Outbound-network grants in Spin's format, owned here because the engine enforces them: the
//! manifest parses `allowed_outbound_hosts` into [`OutboundHost`] values, so whatever it
//! accepts is exactly what the engine can enforce.
//!
//! Format: `scheme://host[:port]` (a trailing `/` is tolerated; no path):
//! - scheme: a scheme name (`https`, `tcp`, …) or `*`;
//! - host: a host name, an IP address (`[::1]` for IPv6), `*`, or `*.example.com` (any
//!   subdomain, not the domain itself);
//! - port: a number, a range `8000..8100` (inclusive), `*`, or nothing for the scheme's
//!   well-known port (`https` 443, `http` 80, …; `tcp`/`udp` have none, so they need one).
//!
//! Raw sockets (`wasi:sockets`) are opened by `tcp://`, `udp://` and `*://` grants; they match
//! IP addresses, so a host name is resolved when the component loads (a name that does not
//! resolve then is logged and grants nothing), and a `*.domain` pattern cannot match a socket.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// One `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundHost {
    text: String,
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Name(String),
    Subdomains(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// No port written: the connecting scheme's well-known port.
    SchemeDefault,
    Range(u16, u16),
}

/// The well-known port of a scheme, used when a grant names none.
pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "mqtt" => 1883,
        "mqtts" => 8883,
        "nats" => 4222,
        "amqp" => 5672,
        "amqps" => 5671,
        "redis" => 6379,
        "rediss" => 6380,
        "postgres" | "postgresql" => 5432,
        "mysql" => 3306,
        _ => return None,
    })
}

impl FromStr for OutboundHost {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid outbound host \"{spec}\": {why} (expected e.g. \"https://api.example.com\", \"https://*.example.com:8443\", \"tcp://127.0.0.1:5432\" or \"*://localhost:*\")"
            )
        };
        let Some((scheme, rest)) = spec.split_once("://") else {
            return Err(bad("missing scheme"));
        };
        let scheme = if scheme == "*" {
            None
        } else if scheme.starts_with(|c: char| c.is_ascii_lowercase())
            && scheme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-')
        {
            Some(scheme.to_owned())
        } else {
            return Err(bad("invalid scheme"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(bad("a path is not allowed"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            match v6.split_once(']') {
                Some((addr, tail)) => match addr.parse::<Ipv6Addr>() {
                    Ok(ip) if tail.is_empty() || tail.starts_with(':') => {
                        (HostPattern::Ip(IpAddr::V6(ip)), tail.strip_prefix(':'))
                    }
                    _ => return Err(bad("invalid IPv6 address")),
                },
                None => return Err(bad("invalid IPv6 address")),
            }
        } else {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let host = host.to_ascii_lowercase();
            let pattern = if host == "*" {
                HostPattern::Any
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                HostPattern::Ip(ip)
            } else if let Some(domain) = host.strip_prefix("*.")
                && is_hostname(domain)
            {
                HostPattern::Subdomains(domain.to_owned())
            } else if is_hostname(&host) {
                HostPattern::Name(host)
            } else {
                return Err(bad("invalid host"));
            };
            (pattern, port)
        };
        let port = match port {
            None => {
                if let Some(s) = &scheme
                    && default_port(s).is_none()
                {
                    return Err(bad(&format!(
                        "`{s}` has no well-known port, so write one (`:5432`, a range `:8000..8100`, or `:*`)"
                    )));
                }
                PortPattern::SchemeDefault
            }
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) if a <= b => PortPattern::Range(a, b),
                    _ => return Err(bad("invalid port range")),
                },
                None => match p.parse::<u16>() {
                    Ok(n) => PortPattern::Range(n, n),
                    Err(_) => return Err(bad("invalid port")),
                },
            },
        };
        Ok(OutboundHost {
            text: spec.to_owned(),
            scheme,
            host,
            port,
        })
    }
}

impl fmt::Display for OutboundHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl OutboundHost {
    /// Whether a connection to `host:port` over `scheme` (`https`, `tcp`, …) is granted.
    /// `host` is a name or an IP address as the guest wrote it.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme_matches(scheme) && self.port_matches(scheme, port) && {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            match &self.host {
                HostPattern::Any => true,
                HostPattern::Name(name) => host.eq_ignore_ascii_case(name),
                HostPattern::Subdomains(domain) => {
                    host.len() > domain.len() + 1
                        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                }
                HostPattern::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            }
        }
    }

    /// Whether this grant opens raw sockets of `scheme` (`tcp` or `udp`).
    fn opens_sockets(&self, scheme: &str) -> bool {
        self.scheme_matches(scheme)
    }

    fn scheme_matches(&self, scheme: &str) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
    }

    fn port_matches(&self, scheme: &str, port: u16) -> bool {
        match self.port {
            PortPattern::Any => true,
            PortPattern::SchemeDefault => default_port(scheme) == Some(port),
            PortPattern::Range(a, b) => (a..=b).contains(&port),
        }
    }
}

/// Socket grants resolved to what a socket check sees: IP addresses.
#[derive(Debug, Clone, Default)]
pub(crate) struct SocketGrants {
    /// (scheme, IP or any, the grant), for `tcp`/`udp`/`*` grants.
    rules: Vec<(Option<IpAddr>, OutboundHost)>,
}

impl SocketGrants {
    /// Resolves the socket-opening grants among `hosts`; names are looked up now (once, at
    /// load), and a name that does not resolve is logged and grants nothing.
    pub(crate) fn resolve(hosts: &[OutboundHost]) -> Self {
        let mut rules = Vec::new();
        for grant in hosts {
            if !grant.opens_sockets("tcp") && !grant.opens_sockets("udp") {
                continue;
            }
            match &grant.host {
                HostPattern::Any => rules.push((None, grant.clone())),
                HostPattern::Ip(ip) => rules.push((Some(*ip), grant.clone())),
                HostPattern::Subdomains(_) => tracing::warn!(
                    grant = %grant,
                    "a `*.domain` grant cannot match a raw socket (sockets connect to addresses); it only applies to outbound HTTP"
                ),
                HostPattern::Name(name) => match (name.as_str(), 0).to_socket_addrs() {
                    Ok(addrs) => {
                        for addr in addrs {
                            rules.push((Some(addr.ip()), grant.clone()));
                        }
                    }
                    Err(error) => tracing::warn!(
                        grant = %grant, %error,
                        "outbound host does not resolve now; it grants no socket until the component is loaded again"
                    ),
                },
            }
        }
        SocketGrants { rules }
    }

    /// True when no grant opens a socket: the guest gets no sockets and no name lookup.
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the guest may connect (or send) to `addr` over `scheme` (`tcp` or `udp`).
    pub(crate) fn allows(&self, scheme: &str, addr: SocketAddr) -> bool {
        self.rules.iter().any(|(ip, grant)| {
            ip.is_none_or(|ip| ip == addr.ip())
                && grant.scheme_matches(scheme)
                && grant.port_matches(scheme, addr.port())
        })
    }
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(s: &str) -> OutboundHost {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn spin_formats_parse() {
        for ok in [
            "https://api.example.com",
            "https://api.example.com/",
            "https://*.example.com:8443",
            "http://localhost:3000",
            "*://localhost:*",
            "tcp://127.0.0.1:5432",
            "udp://[::1]:53",
            "redis://cache.internal",
            "https://example.com:8000..8100",
            "*://*:*",
        ] {
            grant(ok);
        }
        for bad in [
            "api.example.com",
            "https://api.example.com/path",
            "https://exa mple.com",
            "tcp://db.internal",
            "HTTPS://x.com",
            "https://x.com:99999",
            "https://x.com:9..1",
            "https://[zz]:1",
            "https://:80",
            "https://example.com:http",
        ] {
            assert!(bad.parse::<OutboundHost>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_match_by_scheme_host_and_port() {
        let g = grant("https://api.example.com");
        assert!(g.allows("https", "api.example.com", 443));
        assert!(g.allows("https", "API.example.com", 443));
        assert!(!g.allows("https", "api.example.com", 8443));
        assert!(!g.allows("http", "api.example.com", 80));
        assert!(!g.allows("https", "evil.com", 443));

        let g = grant("https://*.example.com:8000..8100");
        assert!(g.allows("https", "a.example.com", 8050));
        assert!(!g.allows("https", "example.com", 8050));
        assert!(!g.allows("https", "a.example.com", 8101));
        assert!(!g.allows("https", "aexample.com", 8050));

        let g = grant("*://localhost:*");
        assert!(g.allows("http", "localhost", 1));
        assert!(g.allows("tcp", "localhost", 65535));
    }

    #[test]
    fn sockets_match_resolved_addresses() {
        let grants = SocketGrants::resolve(&[
            grant("tcp://127.0.0.1:5432"),
            grant("https://api.example.com"),
            grant("udp://localhost:53"),
        ]);
        assert!(grants.allows("tcp", "127.0.0.1:5432".parse().unwrap()));
        assert!(!grants.allows("tcp", "127.0.0.1:5433".parse().unwrap()));
        assert!(!grants.allows("udp", "127.0.0.1:5432".parse().unwrap()));
        assert!(grants.allows("udp", "127.0.0.1:53".parse().unwrap()));
        assert!(SocketGrants::resolve(&[grant("https://api.example.com")]).is_empty());
    }
}
