//! WASI p2 for a handler instance: nothing but clocks and randomness unless granted.
//!
//! Deny-by-default keeps a third-party handler from reading host files, secrets in the
//! environment or the internal network; each capability is opened explicitly in the manifest.

use crate::config::{DirGrant, Grants};
use crate::outbound::SocketGrants;
use crate::stdio::{GuestOutput, Stream};
use std::sync::Arc;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// [`Grants`] checked and resolved once at load, so each event builds its context quickly.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedGrants {
    dirs: Vec<DirGrant>,
    env: Vec<(String, String)>,
    outbound: Arc<SocketGrants>,
    /// Every grant, for outgoing HTTP (matched by scheme and host name, not resolved).
    pub(crate) outbound_hosts: Arc<[crate::OutboundHost]>,
}

impl ResolvedGrants {
    /// Checks that granted directories exist and resolves the socket grants' host names.
    pub(crate) fn resolve(grants: &Grants) -> Result<Self, String> {
        for d in &grants.dirs {
            if !d.host.is_dir() {
                return Err(format!(
                    "granted directory {} does not exist",
                    d.host.display()
                ));
            }
        }
        Ok(Self {
            dirs: grants.dirs.clone(),
            env: grants.env.clone(),
            outbound: Arc::new(SocketGrants::resolve(&grants.outbound_hosts)),
            outbound_hosts: grants.outbound_hosts.clone().into(),
        })
    }

    /// What every context of `component` gets and cannot fail to set up: its stdio, its
    /// environment and its network permissions.
    fn base(&self, component: &Arc<str>) -> WasiCtxBuilder {
        let mut b = WasiCtxBuilder::new();
        b.stdout(GuestOutput::new(component.clone(), Stream::Stdout))
            .stderr(GuestOutput::new(component.clone(), Stream::Stderr))
            .envs(&self.env);
        let net = !self.outbound.is_empty();
        b.allow_tcp(net).allow_udp(net).allow_ip_name_lookup(net);
        if net {
            let allowed = self.outbound.clone();
            b.socket_addr_check(move |addr, usage| {
                let ok = match usage {
                    SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                        addr.ip().is_unspecified() && addr.port() == 0
                    }
                    SocketAddrUse::TcpConnect => allowed.allows("tcp", addr),
                    SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                        allowed.allows("udp", addr)
                    }
                    // A handler lives for one event: it is never a server.
                    SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
                };
                Box::pin(std::future::ready(ok))
            });
        }
        b
    }

    /// A fresh WASI context for one instance of `component`: fails only when a granted
    /// directory can no longer be opened.
    pub(crate) fn build(&self, component: &Arc<str>) -> wasmtime::Result<WasiCtx> {
        let mut b = self.base(component);
        for d in &self.dirs {
            b.preopened_dir(&d.host, &d.guest, FsPerms::ReadOnly)?;
        }
        Ok(b.build())
    }
}

/// One instance's WASI context, built at the guest's first WASI call.
///
/// Many handlers never touch WASI while handling an event (an echo, a filter, a transform);
/// building and dropping a context (stdio streams, random generators, the environment) was a
/// twentieth of such an event's CPU. A context that can fail to build (granted directories,
/// opened on the host per instance) is built up front instead, so that failure still fails
/// the event before the guest runs.
pub(crate) struct LazyWasi {
    ctx: Option<WasiCtx>,
    grants: Arc<ResolvedGrants>,
    component: Arc<str>,
}

impl LazyWasi {
    /// The context of a new instance of `component`.
    pub(crate) fn new(
        grants: &Arc<ResolvedGrants>,
        component: &Arc<str>,
    ) -> wasmtime::Result<Self> {
        let ctx = if grants.dirs.is_empty() {
            None
        } else {
            Some(grants.build(component)?)
        };
        Ok(LazyWasi {
            ctx,
            grants: grants.clone(),
            component: component.clone(),
        })
    }

    /// Drops the context (its streams flush what they buffered), to be rebuilt on next use.
    pub(crate) fn clear(&mut self) {
        self.ctx = None;
    }

    /// The context, built now if this is the first call.
    pub(crate) fn get(&mut self) -> &mut WasiCtx {
        let LazyWasi {
            ctx,
            grants,
            component,
        } = self;
        ctx.get_or_insert_with(|| grants.base(component).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_missing_directories_and_resolves_socket_grants() {
        let g = Grants {
            dirs: vec![DirGrant {
                host: "/definitely/not/here".into(),
                guest: "/d".into(),
            }],
            ..Grants::default()
        };
        assert!(ResolvedGrants::resolve(&g).is_err());
        let g = Grants {
            outbound_hosts: vec!["tcp://127.0.0.1:80".parse().unwrap()],
            ..Grants::default()
        };
        assert!(!ResolvedGrants::resolve(&g).unwrap().outbound.is_empty());
    }
}
