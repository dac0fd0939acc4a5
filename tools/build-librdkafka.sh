#!/usr/bin/env bash
# Builds a newer librdkafka.so.1 for the SCRAM test only and prints the
# directory holding it.  Debian 12's librdkafka 2.0.2 cannot finish a SCRAM
# login with Kafka 4.x (librdkafka#4895, fixed in 2.6.1); the module itself
# still builds against Debian's headers, and the test loads it with this
# library through LD_LIBRARY_PATH (librdkafka keeps its ABI).
#
# The C source is the one the crates.io crate rdkafka-sys vendors, fetched
# with cargo; the result is cached in
# ${XDG_CACHE_HOME:-~/.cache}/ngx-dashstream/librdkafka-<crate version>.
set -euo pipefail

crate=4.10.0            # rdkafka-sys 4.10.0+2.12.1: librdkafka 2.12.1
cache=${XDG_CACHE_HOME:-$HOME/.cache}/ngx-dashstream/librdkafka-$crate
lib=$cache/lib/librdkafka.so.1

if [ -f "$lib" ]; then
    echo "$cache/lib"
    exit 0
fi

command -v cargo > /dev/null || {
    echo "build-librdkafka: cargo not found" >&2
    exit 1
}

mkdir -p "$(dirname "$cache")"
exec 9> "$cache.lock"
flock 9
if [ -f "$lib" ]; then
    echo "$cache/lib"
    exit 0
fi

work=$(mktemp -d "$cache.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/fetch/src"
cat > "$work/fetch/Cargo.toml" << END
[package]
name = "fetch-librdkafka"
version = "0.0.0"
edition = "2021"

[dependencies]
rdkafka-sys = { version = "=$crate", default-features = false }
END
echo 'fn main() {}' > "$work/fetch/src/main.rs"

echo "build-librdkafka: fetching rdkafka-sys $crate with cargo" >&2
cargo fetch -q --manifest-path "$work/fetch/Cargo.toml" >&2

registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
src=$(ls -d "$registry"/*/rdkafka-sys-"$crate"+*/librdkafka | head -n 1)
[ -f "$src/configure" ] || {
    echo "build-librdkafka: no librdkafka source in rdkafka-sys $crate" >&2
    exit 1
}
cp -r "$src" "$work/librdkafka"

echo "build-librdkafka: building $(basename "$(dirname "$src")")" \
     "(a few minutes, once)" >&2
(
    cd "$work/librdkafka"
    ./configure --no-download --disable-gssapi --disable-curl \
        --disable-lz4-ext --enable-ssl --enable-zstd --enable-zlib \
        > "$work/configure.log" 2>&1
    make -j"$(nproc)" -C src librdkafka.so.1 > "$work/make.log" 2>&1
) || {
    tail -n 30 "$work/configure.log" "$work/make.log" >&2 || true
    exit 1
}

mkdir -p "$work/out/lib"
cp "$work/librdkafka/src/librdkafka.so.1" "$work/out/lib/"
rm -rf "$cache"
mv "$work/out" "$cache"
echo "$cache/lib"
