#!/usr/bin/env bash
# Builds Spindle's coverage-guided fuzz targets (libFuzzer, fuzz/fuzz_targets/*.rs) and runs
# each one for a bounded time, reporting per target the number of executions and whether it
# crashed.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 30; 0 only builds
#   TARGET...           default: every fuzz/fuzz_targets/*.rs
#
# No `cargo install cargo-fuzz` needed: it builds with plain cargo on the stable toolchain the
# way cargo-fuzz does (SanitizerCoverage instrumentation, `--cfg fuzzing`, debug assertions and
# overflow checks, no address sanitizer: the code is safe Rust), in release mode, for the host
# target (so build scripts and proc macros stay uninstrumented), into fuzz/target.
#
# Each target runs on a scratch copy of its seeds (fuzz/corpus/<target>) in a temporary
# directory, so new corpus entries never land in the repository; the scratch directory is
# deleted afterwards unless FUZZ_KEEP_SCRATCH=1. Crash, timeout and OOM inputs are written to
# fuzz/artifacts/<target>/ (ignored by git) with the run's log next to them, and their paths
# printed. Nothing listens on the network.
#
# Environment: FUZZ_KEEP_SCRATCH=1 keeps the scratch directory (grown corpora, logs);
# FUZZ_INPUT_TIMEOUT (default 10) is libFuzzer's per-input timeout in seconds; FUZZ_ARGS adds
# libFuzzer flags (e.g. "-max_len=8192"); FUZZ_RUSTFLAGS adds rustc flags.
#
# Exit status: 0 when no target failed, 1 when one crashed, timed out or ran out of memory,
# 2 on a usage or build error. Run it under `nice` on a shared machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"

usage() {
    sed -n '6,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

seconds="${1:-30}"
[[ $# -gt 0 ]] && shift
[[ "$seconds" =~ ^[0-9]+$ ]] || usage

all_targets=()
for f in "$fuzz_dir"/fuzz_targets/*.rs; do
    all_targets+=("$(basename "$f" .rs)")
done
if [[ $# -gt 0 ]]; then
    targets=("$@")
    for t in "${targets[@]}"; do
        [[ -f "$fuzz_dir/fuzz_targets/$t.rs" ]] || {
            echo "fuzz.sh: no target '$t' (have: ${all_targets[*]})" >&2
            exit 2
        }
    done
else
    targets=("${all_targets[@]}")
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="$fuzz_dir/target"
unset CARGO_ENCODED_RUSTFLAGS RUSTC_WORKSPACE_WRAPPER
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks ${FUZZ_RUSTFLAGS:-}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

bins=()
for t in "${targets[@]}"; do
    bins+=(--bin "$t")
done
echo "==> building ${#targets[@]} fuzz target(s) into $CARGO_TARGET_DIR"
build_start=$SECONDS
if ! cargo build --release --manifest-path "$fuzz_dir/Cargo.toml" --target "$host" "${bins[@]}"; then
    echo "fuzz.sh: build failed" >&2
    exit 2
fi
echo "==> built in $((SECONDS - build_start)) s"
[[ "$seconds" -eq 0 ]] && exit 0

scratch="$(mktemp -d "${TMPDIR:-/tmp}/spindle-fuzz.XXXXXX")"
cleanup() {
    if [[ "${FUZZ_KEEP_SCRATCH:-0}" == 1 ]]; then
        echo "==> scratch directory kept: $scratch"
    else
        rm -rf "$scratch"
    fi
}
trap cleanup EXIT

read -r -a extra_args <<<"${FUZZ_ARGS:-}"
failed=0
summary=()
for t in "${targets[@]}"; do
    bin="$CARGO_TARGET_DIR/$host/release/$t"
    corpus="$scratch/corpus/$t"
    artifacts="$fuzz_dir/artifacts/$t"
    log="$scratch/logs/$t.log"
    mkdir -p "$corpus" "$artifacts" "$scratch/logs" "$scratch/tmp/$t"
    if [[ -d "$fuzz_dir/corpus/$t" ]]; then
        cp -R "$fuzz_dir/corpus/$t/." "$corpus/"
    fi
    echo "==> $t: ${seconds} s on $(find "$corpus" -type f | wc -l) seed(s)"
    set +e
    # libFuzzer stops itself after -max_total_time; `timeout` is the backstop if it hangs.
    TMPDIR="$scratch/tmp/$t" timeout --kill-after=10 "$((seconds + 60))" \
        "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout="${FUZZ_INPUT_TIMEOUT:-10}" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${extra_args[@]}" "$corpus" >"$log" 2>&1
    rc=$?
    set -e
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    execs="${execs:-?}"
    if [[ $rc -eq 0 ]]; then
        result="ok"
    else
        failed=1
        unit="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        case "$rc" in
            124 | 137) result="HUNG (killed after $((seconds + 60)) s)" ;;
            *) result="FAILED (exit $rc)" ;;
        esac
        saved_log="$artifacts/$(date +%Y%m%d-%H%M%S)-$t.log"
        cp "$log" "$saved_log"
        echo "---- $t: last lines of the log (full log: $saved_log)"
        tail -n 60 "$log"
        echo "----"
        if [[ -n "$unit" ]]; then
            result="$result; input: $unit"
            echo "reproduce: $bin $unit"
        fi
    fi
    line="$(printf '%-22s %14s execs  %s' "$t" "$execs" "$result")"
    echo "$line"
    summary+=("$line")
done

echo
echo "==> summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
