#!/usr/bin/env bash
# `make demo`: the main job in one command.  Starts a Kafka endpoint (the
# librdkafka mock cluster, or BROKERS=host:port), the DashStream traffic
# generator and nginx with the module, prints the URLs, and on Ctrl-C (or
# SIGTERM/SIGHUP) stops all of it.  The Makefile builds what this runs.
#
# Environment (all optional):
#   BROKERS      a real cluster instead of the mock: host:port[,host:port]
#   PORT         nginx port (8080); LISTEN address (127.0.0.1)
#   TOPIC        topic (dashstream-quality); PARTITIONS of the mock (4)
#   RATE         generator messages per second (20); GENERATOR=0: none
#   DEMO_MODE    dashstream_mode: group (default) or broadcast
#   OFFSET_RESET dashstream_offset_reset (earliest on the mock, else latest)
#   BUILD        build directory (build); MODULE: the module .so
#   NGINX        the nginx binary (/usr/sbin/nginx)
#   DEMO_PREFIX  nginx prefix (BUILD/demo)
#   DEMO_READY_FILE  written with the URLs once everything is up (tests)
#
# Each child runs in its own session (so Ctrl-C in the terminal reaches
# only this script) with PDEATHSIG=TERM (so it ends even if this script is
# killed with SIGKILL); the script stops each group and waits, bounded.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$repo/build}
mkdir -p "$build"
build=$(cd "$build" && pwd)
prefix=${DEMO_PREFIX:-$build/demo}
lock="$prefix/run.pid"
port=${PORT:-8080}
listen=${LISTEN:-127.0.0.1}
topic=${TOPIC:-dashstream-quality}
partitions=${PARTITIONS:-4}
rate=${RATE:-20}
mode=${DEMO_MODE:-group}
module=${MODULE:-$build/nginx/objs/ngx_http_dashstream_module.so}
mock=${MOCK_CLUSTER:-$build/demo-bin/mock_cluster}
gen_dir=${DASHSTREAM_GEN:-$build/gen}
brokers=${BROKERS:-}
nginx=${NGINX:-/usr/sbin/nginx}
# nginx reads NGINX itself (listening sockets handed over by a binary
# upgrade) and says [emerg] about a path there
unset NGINX
python=/usr/bin/python3

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

case "$mode" in group|broadcast) ;; *) die "DEMO_MODE must be group or broadcast" ;; esac
[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] \
    || die "PORT must be a TCP port number"
[[ "$topic" =~ ^[A-Za-z0-9._-]+$ ]] || die "invalid TOPIC \"$topic\""
brokers_re='^[][A-Za-z0-9._:,-]+$'
[ -z "$brokers" ] || [[ "$brokers" =~ $brokers_re ]] \
    || die "BROKERS must be host:port[,host:port...]"
[ -f "$module" ] || die "module not built: $module (run make)"
[ -f "$gen_dir/dashstream_pb2.py" ] || die "no $gen_dir/dashstream_pb2.py (run make demo)"
[ -n "$brokers" ] || [ -x "$mock" ] || die "mock cluster not built: $mock (run make demo)"

# --- children and their end -------------------------------------------------

pgids=()        # one process group (= session) per child, in start order
names=()
html_tmp=""

start() {       # start NAME LOG CMD...: a child in its own session
    local name=$1 log=$2
    shift 2
    setsid setpriv --pdeathsig TERM -- "$@" > "$log" 2>&1 < /dev/null &
    pgids+=("$!")
    names+=("$name")
}

# a child is its group's leader once setsid ran; until then, its pid
group_alive() { kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null; }

stop_group() {  # stop_group PGID SIGNAL SECONDS
    local pgid=$1 sig=$2 i
    kill "-$sig" -- "-$pgid" 2>/dev/null || kill "-$sig" "$pgid" 2>/dev/null \
        || return 0
    for ((i = 0; i < $3 * 10; i++)); do
        group_alive "$pgid" || return 0
        sleep 0.1
    done
    say "group $pgid did not stop after SIG$sig in ${3}s: SIGKILL"
    kill -KILL -- "-$pgid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        group_alive "$pgid" || return 0
        sleep 0.1
    done
}

cleanup() {
    local status=$? i
    trap '' INT TERM HUP
    echo
    say "stopping"
    # nginx first (subscribers get 1001), then the producer, then Kafka
    for ((i = ${#pgids[@]} - 1; i >= 0; i--)); do
        case "${names[$i]}" in
            nginx) stop_group "${pgids[$i]}" QUIT 10 ;;
            *)     stop_group "${pgids[$i]}" TERM 10 ;;
        esac
        wait "${pgids[$i]}" 2>/dev/null || true
    done
    [ -n "$html_tmp" ] && rm -rf "$html_tmp"
    [ "$(cat "$lock" 2>/dev/null)" = $$ ] && rm -f "$lock"
    [ -n "${DEMO_READY_FILE:-}" ] && rm -f "$DEMO_READY_FILE"
    say "stopped; logs in $prefix/logs"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- one demo per prefix ----------------------------------------------------

mkdir -p "$prefix/logs" "$prefix/tmp"
if [ -f "$lock" ]; then
    old=$(cat "$lock" 2>/dev/null || true)
    if [ -n "$old" ] && [ "$old" != $$ ] && kill -0 "$old" 2>/dev/null \
        && grep -q "run.sh" "/proc/$old/cmdline" 2>/dev/null; then
        die "a demo is already running from $prefix (pid $old); stop it with Ctrl-C there or: kill $old"
    fi
fi
echo $$ > "$lock"

if (exec 3<>"/dev/tcp/$listen/$port") 2>/dev/null; then
    die "$listen:$port is in use; choose another port: make demo PORT=8081"
fi

# --- Kafka ------------------------------------------------------------------

if [ -z "$brokers" ]; then
    rm -f "$prefix/mock_cluster.out"
    start mock "$prefix/logs/mock_cluster.log" \
        sh -c 'exec "$0" -t "$1" -p "$2" > "$3"' \
        "$mock" "$topic" "$partitions" "$prefix/mock_cluster.out"
    # the bootstrap line appears at once; stderr goes to the log
    for ((i = 0; i < 100; i++)); do
        brokers=$(head -n 1 "$prefix/mock_cluster.out" 2>/dev/null || true)
        [ -n "$brokers" ] && break
        group_alive "${pgids[0]}" || break
        sleep 0.1
    done
    [ -n "$brokers" ] || die "the mock cluster did not start: $(tail -n 5 "$prefix/logs/mock_cluster.log")"
    offset_reset=${OFFSET_RESET:-earliest}
    say "Kafka: librdkafka mock cluster on $brokers (topic $topic, $partitions partitions, DLQ $topic-dlq)"
else
    offset_reset=${OFFSET_RESET:-latest}
    say "Kafka: $brokers (topic $topic must exist)"
fi

# --- generator --------------------------------------------------------------

if [ "${GENERATOR:-1}" != 0 ]; then
    start generator "$prefix/logs/generator.log" \
        "$python" "$repo/tools/demo/generator.py" --brokers "$brokers" \
        --topic "$topic" --rate "$rate" --gen "$gen_dir"
fi

# --- nginx ------------------------------------------------------------------

rm -rf "$prefix/html"
cp -r "$repo/web" "$prefix/html"
web="$prefix/html"
# workers run as nobody when we are root: the page must be readable to them
if [ "$(id -u)" -eq 0 ] && ! setpriv --reuid=nobody --regid=nogroup \
        --clear-groups test -r "$web/index.html" 2>/dev/null; then
    html_tmp=$(mktemp -d /tmp/dashstream-demo-html.XXXXXX)
    chmod 755 "$html_tmp"
    cp -r "$repo/web/." "$html_tmp/"
    web=$html_tmp
fi

group="ngx-dashstream-demo"
sed -e "s|@MODULE@|$module|g" -e "s|@PREFIX@|$prefix|g" \
    -e "s|@BROKERS@|$brokers|g" -e "s|@TOPIC@|$topic|g" \
    -e "s|@GROUP@|$group|g" -e "s|@MODE@|$mode|g" \
    -e "s|@OFFSET_RESET@|$offset_reset|g" -e "s|@LISTEN@|$listen|g" \
    -e "s|@PORT@|$port|g" -e "s|@WEB@|$web|g" \
    "$repo/tools/demo/nginx.conf.in" > "$prefix/nginx.conf"

"$nginx" -t -q -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
    || die "nginx -t failed for $prefix/nginx.conf"

start nginx "$prefix/logs/nginx.stderr" \
    "$nginx" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log"

base="http://$listen:$port"
for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$base/dashstream/status" 2>/dev/null && break
    group_alive "${pgids[-1]}" || die "nginx exited: $(tail -n 5 "$prefix/logs/error.log")"
    sleep 0.1
done
curl -fsS -o /dev/null --max-time 2 "$base/dashstream/status" \
    || die "nginx does not answer on $base: $(tail -n 5 "$prefix/logs/error.log")"

urls="live page   $base/
websocket   ws://$listen:$port/ws   (DashFlow protocol)
metrics     $base/metrics
status      $base/dashstream/status"

cat <<EOF

  ngx_dashstream demo is up ($mode mode, nginx with 2 workers, config $prefix/nginx.conf)

$(sed 's/^/  /' <<< "$urls")

  logs: $prefix/logs/   Ctrl-C stops everything.

EOF
if [ -n "${DEMO_READY_FILE:-}" ]; then
    printf 'page=%s/\nwebsocket=ws://%s:%s/ws\nmetrics=%s/metrics\nstatus=%s/dashstream/status\nbrokers=%s\nprefix=%s\n' \
        "$base" "$listen" "$port" "$base" "$base" "$brokers" "$prefix" \
        > "$DEMO_READY_FILE.tmp"
    mv "$DEMO_READY_FILE.tmp" "$DEMO_READY_FILE"
fi

# --- run until a signal or until a child dies ---------------------------------

while :; do
    wait -n || true
    for ((i = 0; i < ${#pgids[@]}; i++)); do
        if ! kill -0 "${pgids[$i]}" 2>/dev/null; then
            say "${names[$i]} exited unexpectedly; see $prefix/logs/"
            exit 1
        fi
    done
done
