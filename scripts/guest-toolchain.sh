#!/usr/bin/env bash
# Makes `cargo build --release --target wasm32-wasip2` work for Spindle guest components.
#
# Two routes, tried in this order:
#   rustup  - `rustup target add wasm32-wasip2` (what users everywhere run).
#   debian  - Debian 12's rustc-web 1.96 + its std sources, unpacked privately (nothing
#             system-wide changes) into $SPINDLE_TOOLCHAIN_DIR (default <repo>/.toolchain),
#             with std built for the target via -Zbuild-std. Needs only Debian's archive.
#
# Usage:
#   scripts/guest-toolchain.sh [ensure]  set up the route; quiet when already done
#   scripts/guest-toolchain.sh env       ensure, then print KEY=VALUE lines (no quotes, one per
#                                        line) to add to the environment of a plain
#                                        `cargo build --release --target wasm32-wasip2`
#   scripts/guest-toolchain.sh route     ensure, then print the route in use: rustup | debian
#
# Environment:
#   SPINDLE_TOOLCHAIN=auto|rustup|debian  force a route (default auto: rustup, else debian)
#   SPINDLE_TOOLCHAIN_DIR=DIR             where the debian route unpacks (default <repo>/.toolchain)
#
# The env lines always include SPINDLE_GUEST_ROUTE (rustup|debian) so callers can keep one
# target directory per route (switching compilers would otherwise rebuild everything).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLCHAIN_DIR="${SPINDLE_TOOLCHAIN_DIR:-$ROOT/.toolchain}"
DEB_DIR="$TOOLCHAIN_DIR/debian"
SYSROOT="$DEB_DIR/root"
TARGET=wasm32-wasip2
DEB_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc)
MIN_DEB_RUSTC="1.96"

log() { echo "guest-toolchain: $*" >&2; }

rustup_ready() {
    command -v rustup >/dev/null 2>&1 &&
        rustup target list --installed 2>/dev/null | grep -qx "$TARGET"
}

ensure_rustup() {
    rustup_ready && return 0
    command -v rustup >/dev/null 2>&1 || return 1
    log "adding the $TARGET target with rustup"
    rustup target add "$TARGET" >/dev/null 2>&1 || return 1
    rustup_ready
}

debian_ready() { [[ -f "$DEB_DIR/.ready" ]]; }

ensure_debian() {
    debian_ready && return 0
    command -v apt-get >/dev/null || { log "apt-get not found: the debian route needs Debian"; return 1; }
    log "fetching Debian's rustc-web toolchain into $DEB_DIR (once, ~10 s)"
    rm -rf "$DEB_DIR"
    mkdir -p "$DEB_DIR/debs/partial" "$SYSROOT"
    local fetch=(apt-get install -y -qq --download-only --no-install-recommends
        -o "Dir::Cache::archives=$DEB_DIR/debs" "${DEB_PACKAGES[@]}")
    # Package lists can be absent or stale on a new machine: refresh once and retry.
    if ! "${fetch[@]}" >"$DEB_DIR/apt.log" 2>&1; then
        apt-get update -qq >>"$DEB_DIR/apt.log" 2>&1 || true
        "${fetch[@]}" >>"$DEB_DIR/apt.log" 2>&1 ||
            { log "apt-get failed, see $DEB_DIR/apt.log"; return 1; }
    fi
    # --download-only skips what is installed system-wide; the private root needs the
    # toolchain's own packages whatever the host has, so fetch any that were skipped.
    local pkg
    for pkg in "${DEB_PACKAGES[@]}" libstd-rust-web-dev libstd-rust-web-1.96; do
        if ! ls "$DEB_DIR/debs/${pkg}_"*.deb >/dev/null 2>&1; then
            (cd "$DEB_DIR/debs" && apt-get download -qq "$pkg" >>"$DEB_DIR/apt.log" 2>&1) || true
        fi
    done
    local deb
    for deb in "$DEB_DIR"/debs/*.deb; do
        dpkg -x "$deb" "$SYSROOT"
    done
    local rustc
    rustc="$(deb_rustc)" || { log "no rustc found in the unpacked packages"; return 1; }
    local version
    version="$(deb_env "$rustc" --version | awk '{print $2}')"
    if [[ "$(printf '%s\n%s\n' "$MIN_DEB_RUSTC" "$version" | sort -V | head -1)" != "$MIN_DEB_RUSTC" ]]; then
        log "Debian's rustc-web is $version, need >= $MIN_DEB_RUSTC"
        return 1
    fi
    rm -rf "$DEB_DIR/debs"
    touch "$DEB_DIR/.ready"
}

# The unpacked Debian rustc (rustc-web installs it under its own name or as rustc).
deb_rustc() {
    local c
    for c in "$SYSROOT/usr/bin/rustc-web" "$SYSROOT/usr/bin/rustc" "$SYSROOT"/usr/lib/rust-web/bin/rustc; do
        [[ -x "$c" ]] && { echo "$c"; return 0; }
    done
    return 1
}

deb_libpath() { echo "$SYSROOT/usr/lib/x86_64-linux-gnu:$SYSROOT/usr/lib/llvm-22/lib"; }

deb_env() { LD_LIBRARY_PATH="$(deb_libpath)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

# Directories holding wasm-component-ld / rust-lld / wasm-ld from the unpacked packages.
deb_tool_path() {
    local dirs=() d
    # Not $SYSROOT/usr/bin: Debian's cargo there would shadow the user's.
    for d in "$SYSROOT"/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin "$SYSROOT"/usr/lib/llvm-22/bin; do
        [[ -d "$d" ]] && dirs+=("$d")
    done
    local IFS=:
    echo "${dirs[*]}"
}

choose_route() {
    case "${SPINDLE_TOOLCHAIN:-auto}" in
        rustup) ensure_rustup && echo rustup || { log "the rustup route failed"; return 1; } ;;
        debian) ensure_debian && echo debian ;;
        auto)
            if ensure_rustup; then
                echo rustup
            else
                log "rustup route unavailable, falling back to Debian's rustc-web"
                ensure_debian && echo debian
            fi
            ;;
        *) log "SPINDLE_TOOLCHAIN must be auto, rustup or debian"; return 1 ;;
    esac
}

print_env() {
    local route="$1"
    echo "SPINDLE_GUEST_ROUTE=$route"
    if [[ "$route" == debian ]]; then
        local rustc
        rustc="$(deb_rustc)"
        echo "RUSTC=$rustc"
        echo "RUSTC_BOOTSTRAP=1"
        echo "CARGO_UNSTABLE_BUILD_STD=std,panic_abort"
        echo "RUSTFLAGS=-L $SYSROOT/usr/lib/wasm32-wasi"
        echo "LD_LIBRARY_PATH=$(deb_libpath)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "PATH=$(deb_tool_path):$PATH"
    fi
}

cmd="${1:-ensure}"
case "$cmd" in
    ensure) choose_route >/dev/null ;;
    route) choose_route ;;
    env) route="$(choose_route)" && print_env "$route" ;;
    *) log "unknown command '$cmd' (ensure | env | route)"; exit 2 ;;
esac
