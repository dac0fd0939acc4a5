#!/usr/bin/env bash
# Builds ngx_http_dashstream_module.so against Debian's nginx-dev tree
# (DESIGN §8) and prints its path.  Incremental: nginx's configure runs again
# only when `config` or the nginx tree changed.
set -euo pipefail

ngx_src=${1:-/usr/share/nginx/src}
build=${2:-build}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build"
build=$(cd "$build" && pwd)
tree="$build/nginx"

[ -f "$ngx_src/conf_flags" ] || {
    echo "build-module: $ngx_src/conf_flags not found (install nginx-dev)" >&2
    exit 1
}

stamp=$(cat "$repo/config" "$ngx_src/conf_flags" | sha256sum | cut -c1-16)
if [ ! -f "$tree/objs/Makefile" ] || [ "$(cat "$tree/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$tree"
    cp -r "$ngx_src" "$tree"
    (
        cd "$tree"
        # shellcheck disable=SC1091
        source ./conf_flags
        ./configure "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$repo" \
            > "$build/configure.log" 2>&1 || {
            tail -n 20 "$build/configure.log" >&2
            exit 1
        }
    )
    echo "$stamp" > "$tree/.stamp"
fi

make -s -C "$tree" -f objs/Makefile modules > "$build/make.log" 2>&1 || {
    grep -E "error|warning" "$build/make.log" | head -n 40 >&2
    exit 1
}
echo "$tree/objs/ngx_http_dashstream_module.so"
