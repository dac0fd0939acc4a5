#!/bin/bash
# One-shot topic creation for docker/compose.yml (the broker does not
# auto-create topics): the DashStream topic and its dead-letter topic, with
# explicit partitions and retention.  Runs in the apache/kafka image; waits,
# bounded, for the broker; safe to run again (--if-not-exists).
#
#   BOOTSTRAP             broker (kafka:9092)
#   TOPIC                 dashstream-quality; PARTITIONS 4;
#                         RETENTION_MS 1 day
#   DLQ_TOPIC             $TOPIC-dlq; DLQ_PARTITIONS 1;
#                         DLQ_RETENTION_MS 14 days
#   REPLICATION_FACTOR    1 (a single broker)
#   KAFKA_TOPICS          kafka-topics.sh to run (/opt/kafka/bin/kafka-topics.sh)
set -euo pipefail

bootstrap=${BOOTSTRAP:-kafka:9092}
topic=${TOPIC:-dashstream-quality}
dlq=${DLQ_TOPIC:-$topic-dlq}
rf=${REPLICATION_FACTOR:-1}
kt=${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}

for i in $(seq 1 60); do
    "$kt" --bootstrap-server "$bootstrap" --list > /dev/null 2>&1 && break
    if [ "$i" -eq 60 ]; then
        echo "kafka-init: no broker at $bootstrap after 60 attempts" >&2
        exit 1
    fi
    sleep 2
done

create() {      # create NAME PARTITIONS CONFIG...
    local name=$1 partitions=$2 args=()
    shift 2
    for c in "$@"; do
        args+=(--config "$c")
    done
    "$kt" --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" \
        --replication-factor "$rf" "${args[@]}"
    echo "kafka-init: topic $name ($partitions partitions, ${*})"
}

create "$topic" "${PARTITIONS:-4}" \
    "retention.ms=${RETENTION_MS:-86400000}" cleanup.policy=delete
# dead-letter records carry the payload in base64 (up to
# dashstream_dlq_max_payload) inside JSON: room for them, kept longer
create "$dlq" "${DLQ_PARTITIONS:-1}" \
    "retention.ms=${DLQ_RETENTION_MS:-1209600000}" cleanup.policy=delete \
    max.message.bytes=4194304

"$kt" --bootstrap-server "$bootstrap" --describe --topic "$topic"
"$kt" --bootstrap-server "$bootstrap" --describe --topic "$dlq"
