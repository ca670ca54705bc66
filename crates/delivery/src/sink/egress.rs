//! The egress rule for HTTP sinks: Spindle connects to a sink on someone else's behalf (whoever
//! created the subscription), so it refuses addresses no event sink has a reason to be at and
//! that an attacker would aim for: link-local addresses (where cloud metadata services answer,
//! `169.254.169.254`), multicast, broadcast and unspecified addresses.
//!
//! The rule holds twice: a sink URL naming such an address literally is refused when the
//! subscription is created (`400` from the API), and a host name is checked on every address
//! it resolves to, at connect time ([`GuardedResolver`]), so a name that is re-pointed later
//! (DNS rebinding) is refused too.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Why `ip` is not a sink address, if it is not.
pub fn denied(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                Some("a link-local address (where cloud metadata services answer)")
            } else if v4.is_unspecified() {
                Some("the unspecified address")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("a multicast or broadcast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return denied(IpAddr::V4(v4));
            }
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address (where cloud metadata services answer)")
            } else if v6 == "fd00:ec2::254".parse::<std::net::Ipv6Addr>().unwrap_or(v6) {
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

/// Resolves sink host names like the system does, then drops the addresses [`denied`] names;
/// a name left with none fails with the reason.
#[derive(Debug, Default, Clone, Copy)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = host.clone();
            let addrs: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs())
                    .await??
                    .collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| denied(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = addrs
                    .first()
                    .and_then(|a| denied(a.ip()))
                    .unwrap_or("no address");
                return Err(format!(
                    "egress policy: `{host}` resolves only to {why}, which sinks may not use"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_no_sink_should_be_at_are_denied() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1",
            "fd00:ec2::254",
            "::",
            "ff02::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(denied(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "::1",
            "2001:db8::1",
        ] {
            assert!(denied(ok.parse().unwrap()).is_none(), "{ok}");
        }
    }
}
