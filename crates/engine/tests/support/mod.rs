//! Builds the guest components of `tests/guests` from source (once per test process, cached
//! by cargo across runs) through `scripts/guest-toolchain.sh`, and sets up engines for them.

#![allow(dead_code)]

use engine::{ComponentConfig, ComponentSource, Engine, EngineConfig, Event, Handler};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The environment `guest-toolchain.sh env` asks for (honours `SPINDLE_TOOLCHAIN`).
pub fn toolchain_env(force: Option<&str>) -> Vec<(String, String)> {
    let mut cmd = Command::new(repo().join("scripts/guest-toolchain.sh"));
    cmd.arg("env");
    if let Some(route) = force {
        cmd.env("SPINDLE_TOOLCHAIN", route);
    }
    let out = cmd.output().expect("run guest-toolchain.sh");
    assert!(
        out.status.success(),
        "guest-toolchain.sh env failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Builds `packages` of the guest workspace with the given toolchain environment and returns
/// the directory holding the `.wasm` files. One target directory per route.
pub fn build_guests(env: &[(String, String)], packages: &[&str]) -> PathBuf {
    let route = env
        .iter()
        .find(|(k, _)| k == "SPINDLE_GUEST_ROUTE")
        .map(|(_, v)| v.clone())
        .expect("route in env");
    let target_dir = repo().join(format!("target/guests-{route}"));
    let mut cmd = Command::new("cargo");
    cmd.current_dir(repo().join("tests/guests"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        // The engine's own build must not leak its settings into the guest build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for p in packages {
        cmd.args(["-p", p]);
    }
    let out = cmd.output().expect("run cargo for the guests");
    assert!(
        out.status.success(),
        "guest build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("wasm32-wasip2/release")
}

/// The guest `.wasm` named `name` (e.g. `guest_echo`), built once per process.
pub fn guest(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let force = std::env::var("SPINDLE_TOOLCHAIN").ok();
        let env = toolchain_env(force.as_deref());
        let dir = build_guests(
            &env,
            &["guest-echo", "guest-behaviours", "guest-http-hello"],
        );
        // Built on its own: with the others, cargo would unify its `wit-bindgen` features
        // with the SDK's and link std into this `no_std` guest.
        build_guests(&env, &["guest-echo-minimal"]);
        dir
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} missing", path.display());
    path
}

/// An engine with a compilation cache shared by all tests (compile once per machine).
pub fn engine() -> Engine {
    let cache = repo().join("target/engine-test-cache");
    Engine::new(EngineConfig::default().with_cache_dir(cache)).unwrap()
}

/// Limits generous enough for a loaded 2-core machine, for tests not about limits.
pub fn relaxed() -> ComponentConfig {
    ComponentConfig {
        limits: engine::Limits {
            deadline: std::time::Duration::from_secs(60),
            ..engine::Limits::default()
        },
        ..ComponentConfig::default()
    }
}

/// Loads the guest `name` with `config`.
pub fn load(engine: &Engine, name: &str, config: ComponentConfig) -> Handler {
    engine
        .load(name, ComponentSource::Path(guest(name)), config)
        .unwrap()
}

/// An event of type `ty` for the behaviours guest.
pub fn ev(ty: &str) -> Event {
    event("1", "/tests", ty)
}

/// An event with the three required attributes.
pub fn event(id: &str, source: &str, ty: &str) -> Event {
    Event::builder()
        .id(id)
        .source(source)
        .ty(ty)
        .build()
        .unwrap()
}
