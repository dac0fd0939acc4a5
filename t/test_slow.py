"""Subscribers that stop reading (issue 3): the send budget bounds what
nginx holds for them; `dashstream_slow_subscriber drop` drops what does not
fit, counts it and tells the subscriber how much with a gap notice before
its next record; `close` closes it with 1008; and a socket that takes
nothing for nginx's send_timeout is closed whatever the policy.  What a
client's own frames cause (pongs, DashFlow replies) is bounded too: one
pong waits at most, and a subscriber over its budget is not read until its
output drains.

The stalled client is a bare socket with a 4 KiB receive buffer that reads
nothing until the test says so."""

import contextlib
import json
import os
import signal
import socket
import threading
import time

import pytest

from lib import dashstream as ds
from lib import net, procs, prom, shared, ws

N = 3000        # x 2000 bytes: far more than socket buffers and budget hold
SIZE = 2000
CLOSE_WAIT = 2.0    # NGX_HTTP_DASHSTREAM_CLOSE_MS
SEND_TIMEOUT = 2.0  # of /flood
FLOOD = 10.0        # the flooding client gives up after this long

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id g-{topic};
dashstream_zone ds 32m;
dashstream_kafka_property linger.ms 5;
"""

SERVER = """
location = /drop {
    dashstream_websocket;
    dashstream_send_budget 16k;
}
location = /close {
    dashstream_websocket;
    dashstream_send_budget 16k;
    dashstream_slow_subscriber close;
}
location = /timeout {
    dashstream_websocket raw;
    dashstream_send_budget 16k;
    send_timeout 1s;
}
location = /flood {
    dashstream_websocket;
    dashstream_send_budget 16k;
    send_timeout %ds;
}
location = /steady {
    dashstream_websocket;
    dashstream_send_budget 64k;
    dashstream_ping_interval 1s;
    dashstream_idle_timeout 3s;
    send_timeout 3s;
}
location = /steadyclose {
    dashstream_websocket;
    dashstream_send_budget 16k;
    dashstream_slow_subscriber close;
    send_timeout 3s;
}
location = /metrics { dashstream_metrics; }
""" % SEND_TIMEOUT


def start(nginx, kafka, topic):
    return nginx(module=True, workers=1, server=SERVER,
                 http=HTTP.format(brokers=kafka.bootstrap,
                                  topic=topic)).start()


def stalled(ng, path):
    """A subscriber (RawWS) whose socket takes at most a few KiB."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((net.HOST, ng.port))
    rw = ws.RawWS.__new__(ws.RawWS)
    rw.sock, rw.timeout, rw.buf = sock, 10, b""
    assert rw.upgrade(path)[0] == 101
    return rw


def stalled_burst(nginx, kafka, make_topic, path):
    """(nginx, topic, RawWS): a stalled subscriber on path, counted, then
    N records consumed while it reads nothing."""
    topic = make_topic(1)
    ng = start(nginx, kafka, topic)
    rw = stalled(ng, path)
    try:
        net.wait_for(lambda: shared.connected(ng) == 1, 5, 0.05,
                     "the subscriber counted")
        produce_and_wait(ng, kafka, topic, N)
    except BaseException:
        rw.close()
        raise
    return ng, topic, rw


def metric(ng, name, **labels):
    s = prom.scrape(ng.url("/metrics"))
    return prom.value(s.samples, name, **labels) or 0


def produce_and_wait(ng, kafka, topic, n):
    kafka.produce(topic, [ds.message_of_size(SIZE) for _ in range(n)])
    net.wait_for(lambda: metric(ng, "websocket_kafka_messages_total",
                                status="success") >= n, 60, 0.1,
                 "%d records consumed" % n)


def read_until_quiet(rw, quiet=1.5):
    """(binary frames, gap notices) read until nothing comes for quiet s."""
    binaries, gaps = 0, []
    while True:
        try:
            f = rw.read_frame(timeout=quiet)
        except TimeoutError:
            return binaries, gaps
        assert f is not None, "closed after %d records" % binaries
        if f.opcode == ws.OP_BINARY:
            assert len(f.payload) == SIZE
            binaries += 1
        else:
            assert f.opcode == ws.OP_TEXT, f
            msg = json.loads(f.payload)
            assert msg["type"] in ("cursor", "gap"), msg
            if msg["type"] == "gap":
                assert msg["reason"] == "dropped"
                gaps.append(msg)


def test_drop_counts_and_tells_exactly_what_was_dropped(nginx, kafka,
                                                       make_topic):
    ng, topic, rw = stalled_burst(nginx, kafka, make_topic,
                                  "/drop?from=latest")
    try:
        # reading again: what nginx and the kernel held arrives; then the
        # next record comes after a gap notice counting exactly what was
        # dropped
        binaries, gaps = read_until_quiet(rw)
        assert gaps == []
        dropped = metric(ng, "websocket_dropped_messages_total",
                         reason="slow_subscriber")
        assert dropped > 0
        kafka.produce(topic, [ds.message_of_size(SIZE)])
        more, gaps = read_until_quiet(rw)
        binaries += more
        assert len(gaps) == 1
        assert gaps[0]["count"] == dropped
        assert binaries == N + 1 - dropped
        assert metric(ng, "websocket_dropped_messages_total",
                      reason="slow_subscriber") == dropped
        assert metric(ng, "websocket_dropped_messages_total",
                      reason="overtaken") == 0
        assert shared.connected(ng) == 1
    finally:
        rw.close()


def test_close_policy_closes_with_1008(nginx, kafka, make_topic):
    ng, _, rw = stalled_burst(nginx, kafka, make_topic, "/close?from=latest")
    try:
        assert metric(ng, "dashstream_websocket_slow_closes_total") == 1
        assert metric(ng, "websocket_dropped_messages_total",
                      reason="slow_subscriber") == 0
        # the close frame waits behind what the socket holds: the
        # close-wait starts once it is written, so a client that reads
        # late still gets it after what the kernel buffers held
        time.sleep(CLOSE_WAIT + 1)
        code, reason = rw.read_close(timeout=20)
        assert (code, reason) == (1008, "send budget exceeded")
        net.wait_for(lambda: shared.connected(ng) == 0, 10, 0.1,
                     "the slow subscriber closed")
    finally:
        rw.close()


def test_a_socket_that_takes_nothing_is_closed_after_send_timeout(
        nginx, kafka, make_topic):
    ng, _, rw = stalled_burst(nginx, kafka, make_topic, "/timeout")
    try:
        net.wait_for(lambda: shared.connected(ng) == 0, 10, 0.1,
                     "the stalled subscriber closed by send_timeout")
        assert "dashstream: subscriber timed out" in ng.error_log_text()
    finally:
        rw.close()


def flood(rw, frames, worker):
    """Sends frames over and over, never reading, until the connection ends
    or FLOOD s pass (or the worker grows by 256 MiB: the test has failed);
    returns (seconds flooded, peak RSS growth in KiB, whether it ended)."""
    before = procs.rss_kib(worker)
    peak, off, start = 0, 0, time.monotonic()
    rw.sock.settimeout(0.2)
    while time.monotonic() - start < FLOOD and peak < 256 * 1024:
        try:
            off = (off + rw.sock.send(frames[off:])) % len(frames)
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - start, peak, True
        peak = max(peak, procs.rss_kib(worker) - before)
    return time.monotonic() - start, peak, False


@pytest.mark.parametrize("frame", [
    ws.RawWS.frame(ws.OP_PING, b"p" * 125, mask_key=b"\0\1\2\3"),
    ws.RawWS.frame(ws.OP_TEXT, b'{"type":"cursor_reset"}',
                   mask_key=b"\0\1\2\3"),
], ids=["ping", "cursor_reset"])
def test_a_client_that_floods_and_never_reads_is_bounded(nginx, kafka,
                                                        make_topic, frame):
    """Pongs and replies used to be queued outside the send budget, and
    each client frame re-armed send_timeout: a client pinging and never
    reading took a worker to 3 GB and stayed.  Now the worker holds one
    pong at most, stops reading a subscriber over its budget, and
    send_timeout runs from when output blocks."""
    ng = start(nginx, kafka, make_topic(1))
    worker, = ng.worker_pids()
    rw = stalled(ng, "/flood?from=latest")
    try:
        net.wait_for(lambda: shared.connected(ng) == 1, 5, 0.05,
                     "the subscriber counted")
        took, grown, ended = flood(rw, frame * 200, worker)
    finally:
        rw.close()
    print("flooded %.1f s, worker RSS grew by up to %d KiB, ended: %s"
          % (took, grown, ended))
    assert grown < 4096, grown
    assert ended, "still connected after %.1f s" % took
    # the kernel's buffers fill within a second, then send_timeout runs
    assert took < SEND_TIMEOUT + 4, took
    net.wait_for(lambda: shared.connected(ng) == 0, 5, 0.1,
                 "the flooding subscriber closed")
    assert "dashstream: subscriber timed out" in ng.error_log_text()


def read_steadily(rw, rate, seconds):
    """Reads at about rate bytes/s for up to seconds, answering each ping
    at once; returns (bytes, pings, (code, reason) of a close frame or
    None).  A reset or an EOF without a close frame raises."""
    got, pings, start = 0, 0, time.monotonic()
    while time.monotonic() - start < seconds:
        f = rw.read_frame(timeout=seconds)
        assert f is not None, "EOF without a close frame after %d bytes" % got
        got += len(f.payload) + 4
        if f.opcode == ws.OP_PING:
            pings += 1
            rw.send_frame(ws.OP_PONG, f.payload, mask_key=b"\0\1\2\3")
        elif f.opcode == ws.OP_CLOSE:
            return got, pings, ws._close_payload(f.payload)
        ahead = got / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    return got, pings, None


class BusyTopic:
    """Produces ~200 KB/s to topic until the block ends: several times what
    the slow clients below read."""

    def __init__(self, kafka, topic):
        self.kafka, self.topic = kafka, topic
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            self.kafka.produce(self.topic, [ds.message_of_size(1000)
                                            for _ in range(20)])
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@contextlib.contextmanager
def busy_reader(nginx, kafka, make_topic, path):
    """(nginx, RawWS): a client with a small receive buffer on path, from
    latest, while BusyTopic produces"""
    topic = make_topic(1)
    ng = start(nginx, kafka, topic)
    rw = stalled(ng, path + "?from=latest")
    try:
        with BusyTopic(kafka, topic):
            yield ng, rw
    finally:
        rw.close()


def test_a_slow_but_steady_reader_is_not_idle(nginx, kafka, make_topic):
    """A client reading 25 KB/s of a busy stream.  Its TCP buffers used to
    grow to megabytes: our ping waited behind them, so it was closed as
    idle; nginx saw no write event, so send_timeout closed it while it
    read; and its close frame came after a close-wait that had started
    while the frame was still behind that output (a reset)."""
    with busy_reader(nginx, kafka, make_topic, "/steady") as (ng, rw):
        got, pings, close = read_steadily(rw, 25000, 15)
        print("read %d bytes, %d pings in 15 s" % (got, pings))
        assert close is None, close
        assert pings >= 3
        log = ng.error_log_text()
        assert "subscriber idle" not in log
        assert "timed out" not in log
        # the reload's 1001 comes after what the socket holds
        os.kill(ng.master_pid, signal.SIGHUP)
        got, _, close = read_steadily(rw, 25000, 30)
        print("then %d bytes up to the close frame" % got)
        assert close == (1001, "server is shutting down; resume elsewhere")


def test_a_slow_but_steady_reader_gets_its_1008(nginx, kafka, make_topic):
    """dashstream_slow_subscriber close: the 1008 used to wait behind
    megabytes of kernel buffer until send_timeout closed the socket."""
    with busy_reader(nginx, kafka, make_topic, "/steadyclose") as (ng, rw):
        got, _, close = read_steadily(rw, 25000, 20)
        print("read %d bytes up to %s" % (got, close))
        assert close == (1008, "send budget exceeded")
        assert "timed out" not in ng.error_log_text()
