//! Connect-time enforcement of the egress policy ([`http_server::egress`]) for HTTP clients:
//! a resolver that checks every address a host name resolves to, so a name re-pointed after
//! the subscription was created (DNS rebinding) is refused too.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use http_server::EgressPolicy;

/// Resolves host names like the system does, then drops the addresses the policy refuses; a
/// name left with none fails with the reason.
#[derive(Debug, Default, Clone)]
pub struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Arc<EgressPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let lookup = host.clone();
            let addrs: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs())
                    .await??
                    .collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| match policy.check_addr(&host, a.ip()) {
                    Ok(()) => true,
                    Err(denied) => {
                        refusal.get_or_insert(denied);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(match refusal {
                    Some(denied) => denied.to_string(),
                    None => format!("`{host}` resolves to no address"),
                }
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
