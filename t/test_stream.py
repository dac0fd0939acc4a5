"""The main job: Kafka -> shared ring -> websocket subscribers in every
worker, with resume, reload and worker-0 respawn (issue 3)."""

import collections
import os
import random
import signal
import threading
import time

import pytest

from lib import dashstream as ds
from lib import net, prom
from lib import ws as wslib

MAX = 65536

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id {group};
dashstream_offset_reset earliest;
dashstream_zone dashstream {zone};
dashstream_max_message_size {max};
{extra}
"""

SERVER = """
location /ws {
    dashstream_websocket;
    add_header X-Worker-Pid $pid always;
}
location /raw { dashstream_websocket raw; }
location /metrics { dashstream_metrics; }
location /status { dashstream_status; }
"""


def start(nginx, kafka, topic, workers=4, zone="64m", extra="", main=""):
    ng = nginx(module=True, workers=workers, main=main,
               http=HTTP.format(brokers=kafka.bootstrap, topic=topic,
                                group="g-" + topic, zone=zone, max=MAX,
                                extra=extra),
               server=SERVER)
    ng.start()
    return ng


def metrics(ng):
    return prom.scrape(ng.url("/metrics")).samples


def consumed(ng):
    return metrics(ng)[("websocket_kafka_messages_total",
                        frozenset({("status", "success")}))]


def wait_consumed(ng, n, timeout=60):
    net.wait_for(lambda: consumed(ng) >= n, timeout, 0.1,
                 "%d messages consumed" % n)
    assert consumed(ng) == n


def wait_assigned(ng, topic, partitions, timeout=30):
    key = ("websocket_kafka_assigned_partitions",
           frozenset({("topic", topic)}))
    net.wait_for(lambda: metrics(ng).get(key) == partitions, timeout, 0.1,
                 "%d partitions assigned" % partitions)


def live_client(ng, path="/ws"):
    c = wslib.Client(ng.ws_url(path))
    c.send_resume({}, from_="latest")
    assert c.recv_json("replay_complete")["mode"] == "latest"
    return c


def clients_on_two_workers(ng, attempts=40):
    """Two live clients served by different worker processes."""
    by_pid = {}
    extra = []
    for _ in range(attempts):
        c = live_client(ng)
        pid = dict(c.response_headers)["x-worker-pid"]
        if pid in by_pid:
            extra.append(c)
            continue
        by_pid[pid] = c
        if len(by_pid) == 2:
            break
    for c in extra:
        c.close()
    assert len(by_pid) == 2, "all %d connections went to one worker" \
        % attempts
    return list(by_pid.values())


def mixed_sizes(n, seed):
    """Sizes from 1 byte to MAX, mostly small, both ends included."""
    rnd = random.Random(seed)
    sizes = [1, MAX, 3, MAX - 1]
    while len(sizes) < n:
        r = rnd.random()
        if r < 0.70:
            size = rnd.randint(5, 300)
        elif r < 0.95:
            size = rnd.randint(300, 4096)
        else:
            size = rnd.randint(4096, MAX)
        # no valid DashStream value has 131 bytes (lib.dashstream says why)
        sizes.append(132 if size == 131 else size)
    rnd.shuffle(sizes)
    return sizes


def values_of_sizes(sizes, seed):
    """Real DashStream messages, in all three framings, of exact sizes."""
    rnd = random.Random(seed)
    out = []
    for i, size in enumerate(sizes):
        framing = "plain"
        # zstd only where the decompressed form stays within the limit,
        # which dashstream_max_message_size also applies to
        if 200 < size < MAX // 4 and i % 10 == 3:
            framing = "zstd"
        elif size > 200 and i % 10 == 7:
            framing = "legacy"
        try:
            v = ds.message_of_size(size, framing=framing,
                                   thread_id="thread-%d" % rnd.randint(0, 40),
                                   sequence=i + 1)
        except ValueError:
            v = ds.message_of_size(size, thread_id="thread-%d" % (i % 41),
                                   sequence=i + 1)
        assert len(v) == size
        out.append(v)
    return out


def by_partition(items):
    """{partition: [(offset, value)]} in arrival order."""
    out = collections.defaultdict(list)
    for m in items:
        out[m.partition].append((m.offset, m.value if hasattr(m, "value")
                                 else m.data))
    return out


def assert_same_stream(received, produced):
    """Every produced record exactly once, byte-identical, in per-partition
    offset order, with the cursor naming its real partition and offset."""
    got = by_partition(received)
    want = by_partition(produced)
    assert sorted(got) == sorted(want)
    for p in want:
        want_p = sorted(want[p])
        assert [o for o, _ in got[p]] == [o for o, _ in want_p], \
            "partition %d: offsets differ" % p
        assert got[p] == want_p, "partition %d: payload bytes differ" % p


def receive_in_background(client, n, timeout):
    """Reads n messages on a thread: [messages] or [exception]."""
    out = []

    def run():
        try:
            out.extend(client.recv_messages(n, timeout=timeout))
        except Exception as e:
            out.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


@pytest.mark.partitions(4)
def test_fanout_20000_messages_to_two_workers(nginx, kafka, topic):
    # a budget large enough that no message is dropped for being slow:
    # this test is about exact delivery (the slow path has its own tests)
    ng = start(nginx, kafka, topic, extra="dashstream_send_budget 256m;")
    wait_assigned(ng, topic, 4)
    a, b = clients_on_two_workers(ng)
    readers = [receive_in_background(c, 20000, 240) for c in (a, b)]

    values = values_of_sizes(mixed_sizes(20000, 1), 2)
    produced = []
    for i in range(0, len(values), 2000):
        produced += kafka.produce(topic, values[i:i + 2000])
    assert len(produced) == 20000

    for c, (t, got) in zip((a, b), readers):
        t.join(250)
        assert got and not isinstance(got[-1], Exception), got[-1:]
        assert_same_stream(got, produced)
        assert c.drain(0.5)[0] == []
        c.close()

    wait_consumed(ng, 20000)
    m = metrics(ng)
    assert m[("websocket_messages_sent_total", frozenset())] >= 40000


@pytest.mark.partitions(4)
def test_resume_replays_exactly_the_missed_messages(nginx, kafka, topic):
    ng = start(nginx, kafka, topic, workers=2)
    wait_assigned(ng, topic, 4)
    c = live_client(ng)
    first = kafka.produce(topic, [ds.token_chunk(text="a%d" % i,
                                                 thread_id="t%d" % (i % 7),
                                                 sequence=i + 1)
                                  for i in range(400)])
    seen = c.recv_messages(400)
    assert_same_stream(seen, first)
    cursors = {p: max(o for o, _ in v) for p, v in by_partition(seen).items()}
    c.close()

    missed = kafka.produce(topic, [ds.event(node_id="n%d" % i,
                                            thread_id="t%d" % (i % 5),
                                            sequence=i + 1)
                                   for i in range(1000)])
    wait_consumed(ng, 1400)

    c = wslib.Client(ng.ws_url("/ws"))
    c.send_resume(cursors)
    got = c.recv_messages(1000)
    done = c.recv_json("replay_complete")
    assert_same_stream(got, missed)
    assert done["totalReplayed"] == 1000
    assert done["complete"] is True
    assert done["missingPartitions"] == []
    assert done["mode"] == "cursor"
    last = {int(p): int(o) for p, o in done["lastOffsetsByPartition"].items()}
    assert last == {p: max(o for o, _ in v)
                    for p, v in by_partition(missed).items()}

    # live again right after the replay, without duplicates
    more = kafka.produce(topic, [ds.token_chunk(text="z%d" % i)
                                 for i in range(50)])
    assert_same_stream(c.recv_messages(50), more)
    assert c.drain(0.5) == ([], [])


@pytest.mark.partitions(2)
def test_resume_from_cursors_the_ring_no_longer_holds(nginx, kafka, topic):
    ng = start(nginx, kafka, topic, workers=2, zone="1m records=64")
    wait_assigned(ng, topic, 2)
    old = kafka.produce(topic, [ds.token_chunk(text="x%d" % i, sequence=i)
                                for i in range(20)], partition=0)
    kafka.produce(topic, [ds.token_chunk(text="y%d" % i, sequence=i)
                          for i in range(500)], partition=0)
    wait_consumed(ng, 520)
    tail = kafka.produce(topic, [ds.token_chunk(text="w%d" % i, sequence=i)
                                 for i in range(3)], partition=1)
    wait_consumed(ng, 523)

    c = wslib.Client(ng.ws_url("/ws"))
    c.send_resume({0: old[4].offset, 1: tail[0].offset})
    stale = c.recv_json("cursor_stale")
    assert stale["partition"] == 0
    assert stale["requested"] == str(old[4].offset)
    assert int(stale["oldest"]) > old[4].offset + 1
    done = c.recv_json("replay_complete")
    assert done["complete"] is False
    assert done["missingPartitions"] == [0]
    msgs = c.recv_messages(done["totalReplayed"])
    p1 = [m for m in msgs if m.partition == 1]
    assert [(m.offset, m.data) for m in p1] == \
        [(r.offset, r.value) for r in tail[1:]]
    p0 = [m.offset for m in msgs if m.partition == 0]
    assert p0 == sorted(p0) and p0[0] == int(stale["oldest"])
    assert p0[-1] == old[0].offset + 519


class Producer(threading.Thread):
    """Produces continuously until stopped; keeps every delivery."""

    def __init__(self, kafka, topic, rate=300):
        super().__init__(daemon=True)
        self.p = kafka.producer(topic)
        self.rate = rate
        self.stop_ev = threading.Event()
        self.produced = []
        self.error = None

    def run(self):
        i = 0
        try:
            while not self.stop_ev.is_set():
                self.p.send(ds.token_chunk(text="live-%d" % i,
                                           thread_id="t%d" % (i % 11),
                                           sequence=i + 1))
                i += 1
                if i % 50 == 0:
                    self.produced += self.p.flush()
                time.sleep(1.0 / self.rate)
            self.produced += self.p.flush()
        except Exception as e:      # surfaced by stop()
            self.error = e

    def stop(self):
        self.stop_ev.set()
        self.join(60)
        assert self.error is None, self.error
        return self.produced


def follow(ng, received, cursors, stop, closes, ready):
    """A client that resumes from its cursors whenever it is closed."""
    while not stop.is_set():
        try:
            c = wslib.Client(ng.ws_url("/ws"), timeout=5)
        except Exception:
            time.sleep(0.05)
            continue
        try:
            if cursors:
                c.send_resume(dict(cursors))
            else:
                c.send_resume({}, from_="latest")
                c.recv_json("replay_complete")
                ready.set()
            while not stop.is_set():
                try:
                    msgs = c.recv_messages(1, timeout=0.5)
                except TimeoutError:
                    continue
                for m in msgs:
                    received.append(m)
                    cursors[m.partition] = m.offset
        except wslib.Closed as e:
            closes.append(e.code)
        finally:
            c.abort()


def test_reload_while_producing_loses_and_repeats_nothing(nginx, kafka,
                                                          make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic, workers=2,
               main="worker_shutdown_timeout 10s;")
    wait_assigned(ng, topic, 3)
    received, cursors, closes = [], {}, []
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=follow,
                         args=(ng, received, cursors, stop, closes, ready),
                         daemon=True)
    t.start()
    assert ready.wait(10), "the following client never went live"
    prod = Producer(kafka, topic)
    prod.start()
    time.sleep(2)
    for _ in range(2):
        started = time.monotonic()
        ng.reload(timeout=15)
        assert time.monotonic() - started < 12, "old workers lingered"
        time.sleep(2)
    produced = prod.stop()
    net.wait_for(lambda: len(received) >= len(produced), 60, 0.1,
                 "%d messages followed" % len(produced))
    stop.set()
    t.join(15)
    assert 1001 in closes
    assert_same_stream(received, produced)
    wait_consumed(ng, len(produced))


def status(ng):
    import json
    return json.loads(ng.get("/status")[2])


def test_fast_shutdown_still_closes_with_1001(nginx, kafka, topic):
    """nginx -s stop (SIGTERM) exits without closing connections and
    without the idle call of a graceful quit: the module's exit hook sends
    each subscriber its 1001 first (best effort, non-blocking); clients
    used to see the connection end without a close frame (1006)."""
    ng = start(nginx, kafka, topic, workers=2)
    clients = [live_client(ng) for _ in range(4)]
    try:
        ng.stop(fast=True)
        codes = [c.wait_close(10) for c in clients]
    finally:
        for c in clients:
            c.abort()
    assert codes == [(1001, "server is shutting down; resume elsewhere")] * 4


def test_kill_worker0_resumes_consumption_without_duplicates(nginx, kafka,
                                                             make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic, workers=2)
    ng.allow_log(r"worker process \d+ exited on signal 9")
    wait_assigned(ng, topic, 3)
    first = kafka.produce(topic, [ds.event(node_id="a%d" % i, sequence=i)
                                  for i in range(300)])
    wait_consumed(ng, 300)

    writer = status(ng)["consumer"]["writer_pid"]
    assert writer in ng.worker_pids()
    os.kill(writer, signal.SIGKILL)
    killed = time.monotonic()

    second = kafka.produce(topic, [ds.event(node_id="b%d" % i, sequence=i)
                                   for i in range(300)])
    net.wait_for(lambda: consumed(ng) >= 600, 20, 0.1,
                 "consumption resumed after kill -9")
    assert time.monotonic() - killed < 10
    assert status(ng)["consumer"]["writer_pid"] not in (0, writer)

    # the ring holds each record once: a replay from the start shows it
    c = wslib.Client(ng.ws_url("/ws"))
    c.send_resume({}, from_="earliest")
    done = c.recv_json("replay_complete")
    assert done["totalReplayed"] == 600
    assert_same_stream(c.recv_messages(600), first + second)
    assert consumed(ng) == 600
