#!/bin/bash
# Container healthcheck: healthy while nginx answers 200 on the status
# location of the metrics port.  Kafka trouble does not make the container
# unhealthy (a restart would not cure it); the status, the metrics and the
# alerts report it.  bash's /dev/tcp keeps curl out of the image.
#
#   dashstream-healthcheck [PORT|ADDRESS:PORT] [PATH]
#   (default $DASHSTREAM_METRICS_PORT, else 9145; /dashstream/status)
set -u

target=${1:-${DASHSTREAM_METRICS_PORT:-9145}}
path=${2:-/dashstream/status}

port=${target##*:}
host=127.0.0.1
if [ "$port" != "$target" ]; then
    host=${target%:*}
    host=${host#[}
    host=${host%]}
    case $host in 0.0.0.0) host=127.0.0.1 ;; ::) host=::1 ;; esac
fi

exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n%s\r\n\r\n' "$path" \
    'User-Agent: dashstream-healthcheck' >&3
if ! IFS= read -r -t 5 line <&3; then
    echo "no answer from $host:$port$path" >&2
    exit 1
fi
line=${line%$'\r'}
case $line in
    "HTTP/1."[01]" 200"*) exit 0 ;;
esac
echo "$host:$port$path answered: $line" >&2
exit 1
