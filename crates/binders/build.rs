//! Builds the components of `binders/` (the stock HTTP binder and the host stubs) for
//! wasm32-wasip2 and leaves them in `OUT_DIR` for `include_bytes!`.
//!
//! The guest toolchain comes from `scripts/guest-toolchain.sh` (rustup's target, else
//! Debian's `rustc-web`). Where neither is available the crate still builds, without the
//! components (a warning says so, and `binders::stock` answers `None` with the reason), so a
//! host-only build never fails for want of a Wasm target. `SPINDLE_BINDERS_DIR` points at
//! components built elsewhere instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The components `binders/` builds, by file name.
const COMPONENTS: [&str; 2] = ["spindle_binder_http.wasm", "spindle_host_stubs.wasm"];

fn main() {
    println!("cargo::rerun-if-env-changed=SPINDLE_BINDERS_DIR");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest_dir.join("../..");
    for watched in [
        "binders/http",
        "binders/stubs",
        "binders/Cargo.toml",
        "wit",
        "crates/cloudevent/src",
    ] {
        println!("cargo::rerun-if-changed={}", repo.join(watched).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let built = match std::env::var_os("SPINDLE_BINDERS_DIR") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => build(&repo),
    };
    let missing = match built.and_then(|dir| copy(&dir, &out)) {
        Ok(()) => String::new(),
        Err(why) => {
            println!("cargo::warning=the stock binder components are not built in: {why}");
            // Empty stand-ins keep `include_bytes!` happy; `missing.txt` says why.
            for name in COMPONENTS {
                std::fs::write(out.join(name), b"").unwrap();
            }
            why
        }
    };
    std::fs::write(out.join("missing.txt"), missing).unwrap();
}

/// Runs the guest build; the directory holding the components.
fn build(repo: &Path) -> Result<PathBuf, String> {
    let toolchain = Command::new(repo.join("scripts/guest-toolchain.sh"))
        .arg("env")
        .output()
        .map_err(|e| format!("cannot run scripts/guest-toolchain.sh: {e}"))?;
    if !toolchain.status.success() {
        return Err(format!(
            "no wasm32-wasip2 toolchain (scripts/guest-toolchain.sh env: {})",
            String::from_utf8_lossy(&toolchain.stderr).trim()
        ));
    }
    let env: Vec<(String, String)> = String::from_utf8_lossy(&toolchain.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let route = env
        .iter()
        .find(|(k, _)| k == "SPINDLE_GUEST_ROUTE")
        .map_or("rustup", |(_, v)| v.as_str());
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
        .join(format!("binders-{route}"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo.join("binders"))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    // The host build's settings must not leak into the guest build (clippy's wrapper, the
    // host's flags and compiler).
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run cargo for binders/: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building binders/ failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(target_dir.join("wasm32-wasip2/release"))
}

fn copy(dir: &Path, out: &Path) -> Result<(), String> {
    for name in COMPONENTS {
        std::fs::copy(dir.join(name), out.join(name))
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
    }
    Ok(())
}
