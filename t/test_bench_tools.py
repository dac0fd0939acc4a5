"""The benchmark tools (bench/, issue 8) build and work: `make bench-tools`
builds them, the publisher feeds a real broker, and the load client
receives, through nginx, messages it verifies byte by byte, in DashFlow
and raw mode.  The benchmark itself (`make bench`) is not part of the test
run; this only proves its instruments."""

import json
import os
import subprocess
import time

import pytest

from lib import dashstream as ds
from lib import net, prom

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 300
RATE = 200

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id g-{topic};
dashstream_zone bench 16m;
"""

SERVER = """
location /ws { dashstream_websocket; }
location /raw { dashstream_websocket raw; }
location /metrics { dashstream_metrics; }
"""


@pytest.fixture(scope="module")
def bench_bin(workdir):
    """bench/ built by the Makefile's own rules, into the session's
    directory."""
    out = os.path.join(workdir, "bench-build")
    r = subprocess.run(["make", "--no-print-directory", "-s", "-C", REPO,
                        "bench-tools", "BUILD=" + out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    return os.path.join(out, "bench")


def kafka_args(kafka):
    """-X for every client setting of the cluster but the bootstrap."""
    args = []
    for k, v in kafka.client_conf.items():
        args += ["-X", "%s=%s" % (k, v)]
    return args


def last_json(text):
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    assert lines, text
    return json.loads(lines[-1])


def assigned(ng, topic):
    s = prom.scrape(ng.url("/metrics")).samples
    return s.get(("websocket_kafka_assigned_partitions",
                  frozenset({("topic", topic)}))) == 1


def run_client(bench_bin, url, n, mode):
    argv = [os.path.join(bench_bin, "loadclient"), "-u", url, "-n", str(n),
            "-m", mode, "-e", str(SIZE), "-w", "1", "-d", "3"]
    if mode == "dashflow":
        argv.append("-R")
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return last_json(r.stdout.decode())


def test_publisher_and_load_client_verify_messages(bench_bin, kafka, topic,
                                                    nginx):
    ng = nginx(module=True, workers=2,
               http=HTTP.format(brokers=kafka.bootstrap, topic=topic),
               server=SERVER)
    ng.start()
    net.wait_for(lambda: assigned(ng, topic), 30, 0.1, "partition assigned")

    producer = subprocess.Popen(
        [os.path.join(bench_bin, "producer"), "-b", kafka.bootstrap,
         "-t", topic, "-r", str(RATE), "-s", str(SIZE), "-d", "12"]
        + kafka_args(kafka),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        flow = run_client(bench_bin, ng.ws_url("/ws"), 20, "dashflow")
        raw = run_client(bench_bin, ng.ws_url("/raw"), 10, "raw")
        out, err = producer.communicate(timeout=60)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()

    sent = last_json(out.decode())
    assert producer.returncode == 0, err.decode(errors="replace")
    assert sent["sent"] == sent["acked"] > 0 and sent["failed"] == 0

    for res, n in ((flow, 20), (raw, 10)):
        assert res["open"] == n and res["failed"] == 0
        # about 3 s x 200 msg/s to each subscriber, every one verified
        assert res["msgs"] > n * RATE, res
        assert res["bytes"] == res["msgs"] * SIZE
        assert all(v == 0 for v in res["errors"].values()), res
        assert all(v == 0 for v in res["payload_errors"].values()), res
        assert res["lost"] == 0 and res["gap_notices"] == 0
        assert 0 < res["p50_ms"] <= res["p99_ms"] <= res["max_ms"]
    assert flow["cursors"] == flow["msgs"]
    assert raw["cursors"] == 0

    # the ingest baseline reads back exactly what was published
    r = subprocess.run([os.path.join(bench_bin, "plain_consumer"), "-b",
                        kafka.bootstrap, "-t", topic, "-n",
                        str(sent["acked"]), "-T", "60"] + kafka_args(kafka),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    plain = last_json(r.stdout.decode())
    assert plain["count"] == sent["acked"]
    assert plain["bytes"] == sent["acked"] * SIZE


def test_load_client_counts_what_it_cannot_verify(bench_bin, kafka, topic,
                                                  nginx):
    """Valid DashStream values that are not bench messages are counted as
    errors, never as messages."""
    ng = nginx(module=True,
               http=HTTP.format(brokers=kafka.bootstrap, topic=topic),
               server=SERVER)
    ng.start()
    net.wait_for(lambda: assigned(ng, topic), 30, 0.1, "partition assigned")

    p = kafka.producer(topic)
    client = subprocess.Popen(
        [os.path.join(bench_bin, "loadclient"), "-u", ng.ws_url("/raw"),
         "-n", "2", "-m", "raw", "-w", "1", "-d", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        net.wait_for(lambda: prom.value(
            prom.scrape(ng.url("/metrics")).samples,
            "websocket_connected_clients") == 2, 10, 0.05, "2 subscribers")
        time.sleep(1.2)     # into the measured window
        for i in range(5):
            p.send(ds.event(thread_id="not-a-bench-stream", sequence=i))
        p.flush()
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    res = last_json(out.decode())
    assert res["msgs"] == 0
    assert res["errors"]["payload"] == 10
    assert res["payload_errors"]["thread"] == 10
