#!/usr/bin/env bash
# The fault campaign (issue: fault tolerance): under steady load from clients of its own, it
# kill -9s `spindle up` at random moments and restarts it, restarts each broker (private NATS,
# Mosquitto and Tansu instances it runs itself; the local RabbitMQ through rabbitmqctl
# stop_app/start_app), takes the HTTP sink down for 60 s, fills the state directory's
# filesystem (a tmpfs: needs root) and frees it, and sends messages that are not CloudEvents on
# every trigger. It prints accepted, delivered, dead-lettered (with reasons), duplicates, lost
# (must be 0) and the longest delivery stall, and exits non-zero if anything accepted was lost.
#
#   bash scripts/faults.sh            # the full campaign, release build (a few minutes)
#   bash scripts/faults.sh --short    # what CI runs (scripts/test.sh, on the debug build)
#   bash scripts/faults.sh --help     # every setting
#
# Needs the brokers of scripts/services.sh (their binaries, and RabbitMQ on 127.0.0.1:5672).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/build-deps.sh
profile=${FAULTS_PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release --locked -q -p spindle-cli -p spindle-bench
else
  cargo build --locked -q -p spindle-cli -p spindle-bench
fi
exec "target/$profile/spindle-bench" faults --spindle "target/$profile/spindle" "$@"
