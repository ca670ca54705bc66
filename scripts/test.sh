#!/usr/bin/env bash
# Runs every check and test of the project, the way CI does (`.ci/run` calls this script).
# On a fresh Debian 12 machine with rustup it first installs and starts what the tests need:
# the brokers (scripts/services.sh) and the wasm32-wasip2 guest toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*" >&2; }

# A one-shot build gains nothing from incremental compilation but its disk space and time.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

say "Checking formatting (cargo fmt --check)"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --all -- --check

say "Making sure the C libraries the build links are installed (OpenSSL for librdkafka)"
bash scripts/build-deps.sh

say "Starting the brokers the tests talk to (NATS, Mosquitto, RabbitMQ, Kafka) if they are down"
bash scripts/services.sh

if [ -x scripts/guest-toolchain.sh ]; then
  say "Making sure wasm32-wasip2 guests can be built"
  bash scripts/guest-toolchain.sh
fi

say "Making sure Python and JavaScript handlers can be built (componentize-py, Node.js)"
bash scripts/language-toolchains.sh

say "Linting (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "Running the tests"
export CI="${CI:-false}"
cargo test --workspace --locked

# The fault campaign, short (kill -9, broker restarts, a sink outage, a full disk, poison on
# every trigger, under load): fails if anything accepted was lost. FAULTS=0 skips it.
if [ "${FAULTS:-1}" != 0 ]; then
  say "Fault campaign, short (scripts/faults.sh --short)"
  FAULTS_PROFILE=debug bash scripts/faults.sh --short
fi

# Coverage-guided fuzzing of every untrusted-input surface (fuzz/fuzz_targets), briefly: a
# crash fails the run and leaves its input in fuzz/artifacts/. FUZZ_SECONDS=0 skips it.
fuzz_seconds="${FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" != 0 ]; then
  say "Fuzzing each target for ${fuzz_seconds} s (scripts/fuzz.sh)"
  bash scripts/fuzz.sh "$fuzz_seconds"
fi
