#!/usr/bin/env bash
# Makes sure the C toolchain and libraries Spindle's build links against are installed (on a
# fresh Debian machine, from Debian's packages): a C/C++ compiler (librdkafka, libFuzzer for
# scripts/fuzz.sh) and OpenSSL's headers for librdkafka, whose TLS (Kafka's `SSL` security
# protocol) is OpenSSL's. Everything else in Spindle does TLS with rustls.
# Idempotent: does nothing when they are there.
set -euo pipefail

say() { printf '[build-deps] %s\n' "$*" >&2; }

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
# libFuzzer (scripts/fuzz.sh) is C++.
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if ! pkg-config --exists openssl 2>/dev/null; then missing+=(libssl-dev); fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  say "missing ${missing[*]}: install them (apt-get install ${missing[*]}) and run again"
  exit 1
fi
sudo_=; [ "$(id -u)" -ne 0 ] && sudo_=sudo
say "installing ${missing[*]} from Debian's packages"
$sudo_ apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
