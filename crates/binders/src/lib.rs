//! Spindle's stock protocol binders and host stubs, as component bytes built in.
//!
//! A *binder* is a component that exports a transport's signature (e.g.
//! `wasi:http/incoming-handler`) and imports the CloudEvents `handle` function; linked to a
//! handler component it does the protocol work inside Wasm (see `wit/binder.wit`). Spindle
//! ships one, `http`, built from `binders/http` with the same pure codecs as the host; a
//! binder of one's own is any component of the `binder-http` world.
//!
//! The *host stubs* stand in for Spindle's host imports in `spindle compose`'s output, so it
//! runs on any `wasi:http` host.
//!
//! The components are built for wasm32-wasip2 when this crate builds (see `build.rs`). A
//! build without the guest toolchain has none; [`stock`] and [`host_stubs`] then say why.

use manifest::StockBinder;

const HTTP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/spindle_binder_http.wasm"));
const HOST_STUBS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/spindle_host_stubs.wasm"));
/// Why the components were not built; empty when they were.
const MISSING: &str = include_str!(concat!(env!("OUT_DIR"), "/missing.txt"));

/// Why a stock component is not available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// This build of Spindle was made without the guest toolchain.
    #[error(
        "this build of Spindle has no built-in binder components ({0}); run \
         scripts/guest-toolchain.sh and rebuild, or give the binder as a path"
    )]
    NotBuilt(String),
}

/// The component of a stock binder (`binder = "<name>"` in `spindle.toml`).
pub fn stock(binder: StockBinder) -> Result<&'static [u8], Unavailable> {
    match binder {
        StockBinder::Http => built(HTTP),
    }
}

/// The host stubs component (`spindle:cloudevents/host-stubs` world).
pub fn host_stubs() -> Result<&'static [u8], Unavailable> {
    built(HOST_STUBS)
}

fn built(component: &'static [u8]) -> Result<&'static [u8], Unavailable> {
    if MISSING.is_empty() {
        Ok(component)
    } else {
        let why = MISSING.lines().next().unwrap_or_default();
        Err(Unavailable::NotBuilt(why.to_owned()))
    }
}
