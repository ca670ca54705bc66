//! Both guest toolchain routes build a component the engine runs.
//!
//! The default route (rustup when available) is exercised by every other test; this file
//! forces each route explicitly. The Debian route downloads ~250 MB of packages once (into
//! `.toolchain/`) and builds std for the target, so it is opt-in:
//! `cargo test -p spindle-engine --test toolchain -- --include-ignored`
//! (or run the whole suite with `SPINDLE_TOOLCHAIN=debian`).

mod support;

use engine::{CollectingPublisher, ComponentSource};
use std::sync::Arc;

async fn build_and_run(route: &str) {
    let env = support::toolchain_env(Some(route));
    assert!(
        env.iter()
            .any(|(k, v)| k == "SPINDLE_GUEST_ROUTE" && v == route),
        "{env:?}"
    );
    let dir = support::build_guests(&env, &["guest-echo"]);
    let engine = support::engine();
    let echo = engine
        .load(
            "echo",
            ComponentSource::Path(dir.join("guest_echo.wasm")),
            support::relaxed(),
        )
        .unwrap();
    let event = support::event("1", "/toolchain", route);
    let out = echo
        .handle(event.clone(), Arc::new(CollectingPublisher::default()))
        .await
        .unwrap();
    assert_eq!(out, vec![event]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rustup_route_builds_a_guest() {
    build_and_run("rustup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "downloads Debian's rustc-web (~250 MB) and builds std: minutes; run with --include-ignored"]
async fn debian_route_builds_a_guest() {
    build_and_run("debian").await;
}
