#!/usr/bin/env bash
# Validates the admin API against its own OpenAPI document with schemathesis
# (https://schemathesis.readthedocs.io): generated requests for every operation, checking that
# the server never fails (5xx) and that every response matches the documented schema.
#
# Usage: crates/api/tests/schemathesis.sh [SERVE_BINARY]
#   SERVE_BINARY: the `serve` example (default: target/debug/examples/serve, built if missing).
# Env: ST_MAX_EXAMPLES (default 10) bounds the generated cases per operation.
#      ST_INSTALL=1 installs schemathesis with pip when it is missing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
openapi="$root/crates/api/openapi/subscriptions.yaml"
serve="${1:-$root/target/debug/examples/serve}"
max_examples="${ST_MAX_EXAMPLES:-10}"

# schemathesis 4 has no `python -m schemathesis`; its CLI module is `schemathesis.cli`.
st() { python3 -m schemathesis.cli "$@"; }
if ! st --version >/dev/null 2>&1; then
    if [[ "${ST_INSTALL:-0}" == 1 ]]; then
        python3 -m pip install -q schemathesis >&2
    else
        echo "schemathesis is not installed (python3 -m pip install schemathesis)" >&2
        exit 77
    fi
fi
echo "using $(st --version)" >&2

if [[ ! -x "$serve" ]]; then
    (cd "$root" && cargo build -q -p spindle-api --example serve)
fi

state="$(mktemp -d)"
log="$state/serve.log"
"$serve" "$state/db" 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$state"' EXIT

url=""
for _ in $(seq 1 100); do
    url="$(sed -n 's/^listening on //p' "$log")"
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "the API did not start" >&2; cat "$log" >&2; exit 1; }

cd "$state"
rc=0
st run "$openapi" \
    --url "$url" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$max_examples" \
    --phases examples,coverage,fuzzing,stateful \
    --seed 1 \
    --workers 1 \
    --request-timeout 10 \
    --no-color 2>&1 || rc=$?
exit "$rc"
