#!/usr/bin/env bash
# Installs what `spindle build` needs for handlers in other languages, idempotently, from the
# package registries (never a downloaded binary):
#   python  componentize-py (PyPI, pinned), which bundles CPython into the component
#   js      Node.js and npm (Debian's packages); each project installs componentize-js from
#           the npm registry itself (its package.json), on its first `spindle build`
# Rust guests need scripts/guest-toolchain.sh instead.
#
# Usage: scripts/language-toolchains.sh [python] [js]   (no argument: all of them)
set -euo pipefail

COMPONENTIZE_PY_VERSION="0.25.1"

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

ensure_js() {
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        return 0
    fi
    log "installing Node.js and npm from Debian's packages"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y -qq nodejs npm >/dev/null 2>&1 || {
        $sudo apt-get update -qq >/dev/null 2>&1
        $sudo apt-get install -y -qq nodejs npm >/dev/null
    }
}

languages=("$@")
[ ${#languages[@]} -gt 0 ] || languages=(python js)
for language in "${languages[@]}"; do
    case "$language" in
        python) ensure_python ;;
        js) ensure_js ;;
        *) log "unknown language '$language' (python | js)"; exit 2 ;;
    esac
done
