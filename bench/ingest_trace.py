#!/usr/bin/env python3
"""Where an ingest's time goes: the module's per-partition position every
50 ms while it takes N pre-produced messages (bench/findings.md, finding 3d).

    python3 bench/ingest_trace.py [N] [RUNS]

Starts its own Kafka broker and nginx (bench/run.py's Server), as `make
bench` does; EXTRA adds http-level directives, e.g.
EXTRA='dashstream_kafka_property debug fetch;' DEBUG=1 (error_log debug, the
log of each run kept as ingest-trace-RUN.log in the current directory).
Prints per run the seconds from the first message to the last, the longest
stretch without progress, and the trace.
"""

import os
import re
import shutil
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "t"))
os.environ.setdefault("BENCH_OUT", "-")

import run as bench                                    # noqa: E402
from lib import kafka                                  # noqa: E402

POSITION = re.compile(rb'dashstream_kafka_position\{[^}]*partition="(\d+)"'
                      rb'[^}]*\} (\d+)')
TOTAL = re.compile(rb'websocket_kafka_messages_total\{status="success"\} '
                   rb'(\d+)')


def trace_one(workdir, cluster, topic, n, run, extra):
    srv = bench.Server(workdir, cluster.bootstrap, topic, reset="earliest",
                       zone="256m", extra=extra)
    rows = []
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            body = srv.get("/metrics")[1]
            t = time.monotonic() - t0
            m = TOTAL.search(body)
            done = int(m.group(1)) if m else 0
            rows.append((t, done, {int(p): int(v)
                                   for p, v in POSITION.findall(body)}))
            if done >= n:
                break
            time.sleep(0.05)
        if os.environ.get("DEBUG"):
            shutil.copy(srv.ng.error_log, "ingest-trace-%d.log" % run)
    finally:
        srv.stop()
    rows = [r for r in rows if r[1] > 0]
    flat = longest = 0.0
    for prev, cur in zip(rows, rows[1:]):
        flat = flat + cur[0] - prev[0] if cur[1] == prev[1] else 0.0
        longest = max(longest, flat)
    print("run %d: %.2f s first to last, longest stretch without progress "
          "%.2f s" % (run, rows[-1][0] - rows[0][0], longest))
    for t, done, parts in rows:
        print("  %6.2f %8d %s" % (t, done, " ".join(
            "%d:%d" % kv for kv in sorted(parts.items()))))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    extra = os.environ.get("EXTRA", "")
    if os.environ.get("DEBUG"):
        bench.NGINX_CONF = bench.NGINX_CONF.replace("error.log notice;",
                                                    "error.log debug;")
    workdir = tempfile.mkdtemp(prefix="dashstream-trace-")
    os.chmod(workdir, 0o755)
    broker = kafka.KafkaBroker(workdir=os.path.join(workdir, "kafka"),
                               heap="1g")
    os.makedirs(broker.workdir, exist_ok=True)
    try:
        broker.start()
        cluster = broker.cluster()
        topic = cluster.create_topic("trace.%s" % uuid.uuid4().hex[:6], 4)
        bench.run_tool([os.path.join(bench.BIN, "producer"), "-b",
                        cluster.bootstrap, "-t", topic, "-S", 4, "-r", 0,
                        "-s", 200, "-n", n, "-d", 0])
        for run in range(runs):
            trace_one(workdir, cluster, topic, n, run, extra)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
