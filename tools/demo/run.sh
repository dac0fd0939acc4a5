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
# A real cluster's security, for nginx (the dashstream_* directives of
# docs/kafka.md) and the generator's producer alike; only with BROKERS:
#   KAFKA_SECURITY_PROTOCOL  plaintext (default), ssl, sasl_plaintext, sasl_ssl
#   KAFKA_SASL_MECHANISM     PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl_*)
#   KAFKA_SASL_USERNAME      the SASL user (sasl_*)
#   KAFKA_SASL_PASSWORD_FILE a file holding only the password (sasl_*); the
#                            password is taken from nowhere else, and never
#                            printed or put in the config or a command line
#   KAFKA_SSL_CA             CA certificates, PEM (ssl, sasl_ssl)
#   KAFKA_SSL_CERTIFICATE, KAFKA_SSL_KEY  client certificate and key, PEM
# With BROKERS the script first connects with these settings and looks the
# topic up (generator.py --check): unreachable brokers, a refused login or a
# missing topic stop it with the reason before anything is started.  It does
# not create topics on a real cluster; without TOPIC-dlq dead letters fail.
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

# --- a real cluster's security ------------------------------------------------

sec_protocol=${KAFKA_SECURITY_PROTOCOL:-}
sasl_mechanism=${KAFKA_SASL_MECHANISM:-}
sasl_username=${KAFKA_SASL_USERNAME:-}
sasl_password_file=${KAFKA_SASL_PASSWORD_FILE:-}
ssl_ca=${KAFKA_SSL_CA:-}
ssl_cert=${KAFKA_SSL_CERTIFICATE:-}
ssl_key=${KAFKA_SSL_KEY:-}
sec_args=()                          # the same for generator.py
kafka_conf=""                        # dashstream_* lines for nginx.conf
sec_desc=plaintext                   # for the start-up line: no secret

[ -z "${KAFKA_SASL_PASSWORD:-}" ] || die "KAFKA_SASL_PASSWORD is not read:" \
    "put the password alone in a file and set KAFKA_SASL_PASSWORD_FILE"
sec_any=$sec_protocol$sasl_mechanism$sasl_username$sasl_password_file
sec_any+=$ssl_ca$ssl_cert$ssl_key
if [ -z "$brokers" ]; then
    [ -z "$sec_any" ] \
        || die "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* are" \
            "for a real cluster: set BROKERS too (the mock cluster is plaintext)"
fi

sec_value_re='^[^"\\[:cntrl:]]+$'
sec_value() {   # sec_value VAR VALUE: VALUE goes into nginx.conf in quotes
    [[ "$2" =~ $sec_value_re ]] \
        || die "$1 must not contain quotes, backslashes or control characters"
}

sec_file() {    # sec_file VAR PATH: prints the absolute path of a readable file
    sec_value "$1" "$2"
    [ -f "$2" ] && [ -r "$2" ] || die "$1: no readable file $2"
    [ -s "$2" ] || die "$1: $2 is empty"
    realpath -- "$2"
}

sec_add() {     # sec_add DIRECTIVE VALUE GENERATOR-OPTION
    kafka_conf+="    $1 \"$2\";"$'\n'
    sec_args+=("$3" "$2")
}

sec_protocol=${sec_protocol,,}
case "$sec_protocol" in
    ""|plaintext|ssl|sasl_plaintext|sasl_ssl) ;;
    *) die "KAFKA_SECURITY_PROTOCOL must be plaintext, ssl, sasl_plaintext or sasl_ssl" ;;
esac
if [[ "$sec_protocol" == sasl_* ]]; then
    sasl_mechanism=${sasl_mechanism^^}
    case "$sasl_mechanism" in
        PLAIN|SCRAM-SHA-256|SCRAM-SHA-512) ;;
        "") die "KAFKA_SECURITY_PROTOCOL=$sec_protocol needs KAFKA_SASL_MECHANISM" ;;
        *) die "KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" ;;
    esac
    [ -n "$sasl_username" ] \
        || die "KAFKA_SECURITY_PROTOCOL=$sec_protocol needs KAFKA_SASL_USERNAME"
    sec_value KAFKA_SASL_USERNAME "$sasl_username"
    [ -n "$sasl_password_file" ] \
        || die "KAFKA_SECURITY_PROTOCOL=$sec_protocol needs KAFKA_SASL_PASSWORD_FILE"
    sasl_password_file=$(sec_file KAFKA_SASL_PASSWORD_FILE \
        "$sasl_password_file") || exit 1
elif [ -n "$sasl_mechanism$sasl_username$sasl_password_file" ]; then
    die "KAFKA_SASL_* need KAFKA_SECURITY_PROTOCOL=sasl_plaintext or sasl_ssl"
fi
if [[ "$sec_protocol" == *ssl ]]; then
    if [ -n "$ssl_ca" ]; then
        ssl_ca=$(sec_file KAFKA_SSL_CA "$ssl_ca") || exit 1
    fi
    if [ -n "$ssl_cert" ] || [ -n "$ssl_key" ]; then
        [ -n "$ssl_cert" ] && [ -n "$ssl_key" ] \
            || die "KAFKA_SSL_CERTIFICATE and KAFKA_SSL_KEY go together"
        ssl_cert=$(sec_file KAFKA_SSL_CERTIFICATE "$ssl_cert") || exit 1
        ssl_key=$(sec_file KAFKA_SSL_KEY "$ssl_key") || exit 1
    fi
elif [ -n "$ssl_ca$ssl_cert$ssl_key" ]; then
    die "KAFKA_SSL_* need KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl"
fi

if [ -n "$sec_protocol" ]; then
    sec_add dashstream_security_protocol "$sec_protocol" --security-protocol
    sec_desc=$sec_protocol
fi
if [ -n "$sasl_mechanism" ]; then
    sec_add dashstream_sasl_mechanism "$sasl_mechanism" --sasl-mechanism
    sec_add dashstream_sasl_username "$sasl_username" --sasl-username
    sec_add dashstream_sasl_password_file "$sasl_password_file" \
        --sasl-password-file
    sec_desc+=", SASL $sasl_mechanism as $sasl_username"
fi
[ -z "$ssl_ca" ] || sec_add dashstream_ssl_ca "$ssl_ca" --ssl-ca
if [ -n "$ssl_cert" ]; then
    sec_add dashstream_ssl_certificate "$ssl_cert" --ssl-certificate
    sec_add dashstream_ssl_certificate_key "$ssl_key" --ssl-key
    sec_desc+=", client certificate"
fi

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
    # the same settings as nginx and the producer; bounded (15 s)
    found=$("$python" "$repo/tools/demo/generator.py" --check \
        --brokers "$brokers" "${sec_args[@]}" --topic "$topic" 2>&1) \
        || die "$found"
    partitions=$(sed -n 's/^partitions=//p' <<< "$found")
    say "Kafka: $brokers, $sec_desc (topic $topic, $partitions partitions)"
    grep -qx 'dlq=yes' <<< "$found" \
        || say "no topic $topic-dlq: the malformed messages cannot be" \
            "dead-lettered (websocket_dlq_send_failures_total counts them)"
fi

# --- generator --------------------------------------------------------------

if [ "${GENERATOR:-1}" != 0 ]; then
    start generator "$prefix/logs/generator.log" \
        "$python" "$repo/tools/demo/generator.py" --brokers "$brokers" \
        "${sec_args[@]}" --topic "$topic" --rate "$rate" --gen "$gen_dir"
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
    "$repo/tools/demo/nginx.conf.in" \
    | KAFKA_CONF=$kafka_conf awk '$1 == "@KAFKA_SECURITY@" {
        printf "%s", ENVIRON["KAFKA_CONF"]; next } { print }' \
    > "$prefix/nginx.conf"

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
