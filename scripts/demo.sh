#!/usr/bin/env bash
# The main job on the embedded default: builds `spindle` and the example order app
# (examples/orders: Wasm components chained through an output binding, a handler calling an HTTP
# service and keeping a counter in the embedded key-value store, plus an audit component fed by
# a subscription), starts it with `spindle up` (one process, no broker: the embedded
# store in examples/orders/.spindle), subscribes with `spindle sub create`, sends it events
# with `spindle send`, and stops it. Set KEEP_RUNNING=1 to leave the app serving on
# http://127.0.0.1:3000 (admin API on 127.0.0.1:3001) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
say() { printf '\n==> %s\n' "$*" >&2; }

say "Building spindle (cargo build --release -p spindle-cli)"
bash scripts/build-deps.sh
cargo build --release --locked -q -p spindle-cli
spindle="$root/target/release/spindle"

say "Making sure wasm32-wasip2 guests can be built, then building the example's components"
cd examples/orders
"$spindle" build

say "Starting the app: spindle up (logs in examples/orders/.spindle/up.log)"
mkdir -p .spindle
"$spindle" up --listen 127.0.0.1:3000 >.spindle/up.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  grep -q "Serving" .spindle/up.log 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat .spindle/up.log; exit 1; }
  sleep 0.1
done
cat .spindle/up.log

say "Subscribing the audit component to every order event (a CESQL filter, delivered in process)"
sub_id=$("$spindle" sub create --sink component:audit --sql "type LIKE 'com.example.order.%'" \
  | sed -n 's/^ *"id": *"\([^"]*\)".*/\1/p' | head -n 1)
"$spindle" sub list

say "The rates service the orders handler calls out to (a plain wasi:http component): GET /rates/USD"
curl -s http://127.0.0.1:3000/rates/USD
echo

say "spindle send --event order.json  (binary mode; the reply is the accepted order, with the rate it fetched and its count from the key-value store)"
"$spindle" send http://127.0.0.1:3000/orders --event order.json

say "The same order in structured mode"
"$spindle" send http://127.0.0.1:3000/orders --event order.json --mode structured

say "An order without items: the handler rejects it for good (422)"
"$spindle" send http://127.0.0.1:3000/orders --type com.example.order.created \
  --data '{"id":"1002","items":[]}' || true

say "Not a CloudEvent at all (415 with the reason)"
curl -s -X POST http://127.0.0.1:3000/orders -d 'hello' || true
echo

sleep 1
say "What the app logged (shipping got the shipment request through the output; audit got the order events through the subscription)"
cat .spindle/up.log

say "Dead letters (none expected), then removing the demo's subscription"
"$spindle" dlq list
[ -n "$sub_id" ] && "$spindle" sub delete "$sub_id"

if [ "${KEEP_RUNNING:-0}" = 1 ]; then
  say "Serving on http://127.0.0.1:3000 until Ctrl-C"
  wait $pid
fi
