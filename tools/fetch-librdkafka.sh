#!/usr/bin/env bash
# Fetches a newer librdkafka.so.1 for the SCRAM test only and prints the
# directory holding it.  Debian 12's librdkafka 2.0.2 cannot finish a SCRAM
# login with Kafka 4.x (librdkafka#4895, fixed in 2.6.1); the module itself
# still builds against Debian's headers, and the test loads it with this
# library through LD_LIBRARY_PATH (librdkafka keeps its ABI).
#
# The library is the one PyPI's confluent-kafka wheel ships (built by
# librdkafka's maintainers with SSL and SASL/SCRAM linked in), fetched with
# pip and never installed; cached in
# ${XDG_CACHE_HOME:-~/.cache}/ngx-dashstream/librdkafka-<version>.
set -euo pipefail

version=2.12.1          # confluent-kafka 2.12.1 bundles librdkafka 2.12.1
cache=${XDG_CACHE_HOME:-$HOME/.cache}/ngx-dashstream/librdkafka-$version
lib=$cache/lib/librdkafka.so.1

if [ -f "$lib" ]; then
    echo "$cache/lib"
    exit 0
fi

python3 -m pip --version > /dev/null 2>&1 || {
    echo "fetch-librdkafka: pip not found (tools/install-deps.sh test)" >&2
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

echo "fetch-librdkafka: fetching confluent-kafka $version with pip" >&2
python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.11 --platform "manylinux_2_28_$(uname -m)" \
    -d "$work" "confluent-kafka==$version" >&2

mkdir -p "$work/out/lib"
python3 - "$work" << 'END'
import glob, re, sys, zipfile
work = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(work + "/confluent_kafka-*.whl")[0])
names = [n for n in wheel.namelist()
         if re.match(r"confluent_kafka\.libs/librdkafka-[0-9a-f]+\.so\.1$", n)]
if len(names) != 1:
    sys.exit("fetch-librdkafka: no librdkafka in the wheel: %s" % names)
with open(work + "/out/lib/librdkafka.so.1", "wb") as f:
    f.write(wheel.read(names[0]))
END

strings "$work/out/lib/librdkafka.so.1" | grep "SASL_SCRAM" > /dev/null || {
    echo "fetch-librdkafka: the wheel's librdkafka has no SASL_SCRAM" >&2
    exit 1
}

rm -rf "$cache"
mv "$work/out" "$cache"
echo "$cache/lib"
