#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for one purpose:
#   build   compile the module (nginx-dev tree, librdkafka, protobuf-c, zstd)
#   test    build + everything the tests use (JDK + Maven for the real Kafka
#           broker, Python clients, promtool and Prometheus, Chromium)
#   demo    build + what `make demo` runs
#   bench   test + nchan, wrk, perf
#   fuzz    build + clang with the libFuzzer and sanitizer runtimes
# Safe to run twice: it asks apt only for packages that are missing.
set -euo pipefail

build_pkgs=(gcc make libc6-dev pkg-config nginx nginx-dev librdkafka-dev
    libprotobuf-c-dev protobuf-c-compiler libzstd-dev libssl-dev
    libpcre2-dev zlib1g-dev ca-certificates curl procps)
test_pkgs=("${build_pkgs[@]}" protobuf-compiler default-jdk-headless maven
    python3 python3-pip python3-pytest python3-pytest-timeout
    python3-confluent-kafka
    python3-websocket python3-websockets python3-protobuf python3-zstandard
    python3-prometheus-client python3-yaml prometheus kcat openssl iproute2
    chromium docker-compose gettext-base clang libclang-rt-dev)
# the mock cluster tool builds with librdkafka-dev (build group);
# protoc makes dashstream_pb2.py for the generator
demo_pkgs=("${build_pkgs[@]}" python3 python3-protobuf python3-zstandard
    python3-confluent-kafka protobuf-compiler util-linux)
bench_pkgs=("${test_pkgs[@]}" libnginx-mod-nchan wrk linux-perf)
# libclang-rt-dev holds libFuzzer; apt would only recommend it
fuzz_pkgs=("${build_pkgs[@]}" clang libclang-rt-dev)

case "${1:-build}" in
    build) want=("${build_pkgs[@]}") ;;
    test)  want=("${test_pkgs[@]}") ;;
    demo)  want=("${demo_pkgs[@]}") ;;
    bench) want=("${bench_pkgs[@]}") ;;
    fuzz)  want=("${fuzz_pkgs[@]}") ;;
    *) echo "usage: $0 build|test|demo|bench|fuzz" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
        echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    }
    sudo=sudo
fi

stamp=/var/lib/apt/periodic/ngx-dashstream-update
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
    $sudo apt-get update -qq
    $sudo mkdir -p "$(dirname "$stamp")" && $sudo touch "$stamp"
fi

# the nginx package would start a system nginx on port 80; the tests run
# their own, so keep package scripts from starting services
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created_policy=1
fi
trap '[ $created_policy -eq 1 ] && $sudo rm -f "$policy"' EXIT

$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
