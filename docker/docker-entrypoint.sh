#!/bin/sh
# Entrypoint of the ngx_dashstream image, with the official nginx image's
# conventions: when the command is nginx, /docker-entrypoint.d/*.envsh are
# sourced and *.sh run (in name order), then every
# /etc/nginx/templates/*.template is rendered into /etc/nginx/conf.d/ by
# envsubst with only the DASHSTREAM_* variables (NGINX_ENVSUBST_FILTER), so
# nginx's own $variables survive.  A failing `nginx -t` prints the rendered
# line it names: the comment at its end names the variable behind it.
#
# NGINX_ENVSUBST_TEMPLATE_DIR, _TEMPLATE_SUFFIX, _OUTPUT_DIR and _FILTER
# work as in the official image; DASHSTREAM_ENTRYPOINT_DIR and
# DASHSTREAM_RUN_DIR move /docker-entrypoint.d and /tmp/nginx (tests).
set -eu

log() {
    [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$0: $*"
}

render() {
    tdir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
    suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
    out=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
    filter=${NGINX_ENVSUBST_FILTER:-^DASHSTREAM_}
    [ -d "$tdir" ] || return 0
    if [ ! -w "$out" ]; then
        echo "$0: $out is not writable by uid $(id -u)" >&2
        exit 1
    fi
    vars=$(awk -v f="$filter" \
        'BEGIN { for (k in ENVIRON) if (k ~ f) printf "${%s} ", k }')
    for t in $(find "$tdir" -follow -type f -name "*$suffix" | sort); do
        rel=${t#"$tdir"/}
        o=$out/${rel%"$suffix"}
        mkdir -p "$(dirname "$o")"
        log "rendering $t to $o"
        envsubst "$vars" < "$t" > "$o"
        left=$(grep -o '\${DASHSTREAM_[A-Za-z0-9_]*}' "$o" | sort -u \
               | tr '\n' ' ')
        if [ -n "$left" ]; then
            echo "$0: $t uses variables that are not set: $left" >&2
            exit 1
        fi
    done
}

check() {
    if out=$("$@" -t -q 2>&1); then
        return 0
    fi
    printf '%s\n' "$out" >&2
    at=$(printf '%s\n' "$out" \
         | sed -n 's/.* in \(\/[^ ]*\):\([0-9][0-9]*\)$/\1 \2/p' | head -n 1)
    if [ -n "$at" ]; then
        set -- $at
        echo "$0: $1:$2 is: $(sed -n "$2p" "$1")" >&2
    fi
    exit 1
}

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
    dir=${DASHSTREAM_ENTRYPOINT_DIR:-/docker-entrypoint.d}
    for f in $(find "$dir" -follow -mindepth 1 -maxdepth 1 -type f \
               2>/dev/null | sort); do
        if [ ! -x "$f" ]; then
            log "ignoring $f: not executable"
            continue
        fi
        case $f in
            *.envsh) log "sourcing $f"; . "$f" ;;
            *.sh)    log "running $f"; "$f" ;;
        esac
    done
    render
    mkdir -p "${DASHSTREAM_RUN_DIR:-/tmp/nginx}"
    check "$@"
fi

exec "$@"
