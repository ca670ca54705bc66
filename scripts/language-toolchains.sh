#!/usr/bin/env bash
# Installs what `spindle build` needs for handlers in other languages, idempotently, from the
# package registries (never a downloaded binary):
#   python  componentize-py (PyPI, pinned), which bundles CPython into the component
#   js      Node.js and npm (Debian's packages); each project installs componentize-js from
#           the npm registry itself (its package.json), on its first `spindle build`
#   c       clang-22, lld-22, wasi-libc and the wasm32 compiler runtime (Debian's packages),
#           wit-bindgen-cli and wasm-component-ld (crates.io, built by cargo install)
# Rust guests need scripts/guest-toolchain.sh instead.
#
# Usage: scripts/language-toolchains.sh [python] [js] [c]   (no argument: all of them)
set -euo pipefail

COMPONENTIZE_PY_VERSION="0.25.1"
WIT_BINDGEN_VERSION="0.63.0"
WASM_COMPONENT_LD_VERSION="0.5.31"
C_PACKAGES=(clang-22 lld-22 wasi-libc libclang-rt-22-dev-wasm32)

log() { echo "language-toolchains: $*" >&2; }

python_ready() {
    command -v componentize-py >/dev/null 2>&1 &&
        componentize-py --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"
}

ensure_python() {
    python_ready && return 0
    log "installing componentize-py==$COMPONENTIZE_PY_VERSION from PyPI"
    python3 -m pip install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
    python_ready || { log "componentize-py is installed but not on PATH"; return 1; }
}

apt_install() {
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y -qq "$@" >/dev/null 2>&1 || {
        $sudo apt-get update -qq >/dev/null 2>&1
        $sudo apt-get install -y -qq "$@" >/dev/null
    }
}

ensure_c() {
    if ! command -v clang-22 >/dev/null 2>&1 || [ ! -d /usr/lib/wasm32-wasi ] ||
        ! ls /usr/lib/llvm-22/lib/clang/22/lib/wasi/*.a >/dev/null 2>&1; then
        log "installing ${C_PACKAGES[*]} from Debian's packages"
        apt_install "${C_PACKAGES[@]}"
    fi
    if ! wit-bindgen --version 2>/dev/null | grep -q "$WIT_BINDGEN_VERSION"; then
        log "building wit-bindgen-cli $WIT_BINDGEN_VERSION from crates.io (a few minutes, once)"
        cargo install --quiet --locked wit-bindgen-cli --version "$WIT_BINDGEN_VERSION"
    fi
    if ! wasm-component-ld --version 2>/dev/null | grep -q "$WASM_COMPONENT_LD_VERSION"; then
        log "building wasm-component-ld $WASM_COMPONENT_LD_VERSION from crates.io (once)"
        cargo install --quiet --locked wasm-component-ld --version "$WASM_COMPONENT_LD_VERSION"
    fi
}

ensure_js() {
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        return 0
    fi
    log "installing Node.js and npm from Debian's packages"
    apt_install nodejs npm
}

languages=("$@")
[ ${#languages[@]} -gt 0 ] || languages=(python js c)
for language in "${languages[@]}"; do
    case "$language" in
        python) ensure_python ;;
        js) ensure_js ;;
        c) ensure_c ;;
        *) log "unknown language '$language' (python | js | c)"; exit 2 ;;
    esac
done
