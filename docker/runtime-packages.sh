#!/bin/sh
# runtime-packages.sh MODULE.so: the Debian packages providing the shared
# libraries the module links directly (libc6 left out), one a line.  Run
# where the module was built; docker/Dockerfile.upstream installs its
# output in the runtime stage, t/test_docker.py compares it with the list
# in docker/Dockerfile.
set -eu

so=$1
pkgs=""
for lib in $(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
    path=$(ldd "$so" | awk -v l="$lib" '$1 == l && $2 == "=>" { print $3 }')
    pkg=""
    for p in "$(readlink -f "$path")" "$path"; do
        [ -n "$p" ] || continue
        pkg=$(dpkg-query -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) || true
        [ -z "$pkg" ] || break
    done
    if [ -z "$pkg" ]; then
        echo "runtime-packages: no package provides $lib ($path)" >&2
        exit 1
    fi
    [ "$pkg" = libc6 ] || pkgs="$pkgs $pkg"
done
[ -n "$pkgs" ] || { echo "runtime-packages: $so links no library" >&2; exit 1; }
printf '%s\n' $pkgs | sort -u
