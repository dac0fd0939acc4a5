"""What the shared zone keeps across reloads and worker deaths: the topic its
ring and offsets belong to, the subscribers of live workers only, and every
counter when a resize makes the zone anew."""

import json
import os
import re
import signal
import time

from lib import dashstream as ds
from lib import net, prom
from lib import ws as wslib

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id g-zone-state;
dashstream_offset_reset earliest;
dashstream_zone dashstream {zone};
dashstream_stream_metrics quality_score;
dashstream_max_message_size 64k;
"""

SERVER = """
location /ws {
    dashstream_websocket;
    add_header X-Worker-Pid $pid always;
}
location /metrics { dashstream_metrics; }
location /status { dashstream_status; }
"""

TOTAL = "websocket_kafka_messages_total"


def http(kafka, topic, zone="16m"):
    return HTTP.format(brokers=kafka.bootstrap, topic=topic, zone=zone)


def start(nginx, kafka, topic, workers=1, zone="16m"):
    ng = nginx(module=True, workers=workers, http=http(kafka, topic, zone),
               server=SERVER)
    ng.start()
    return ng


def metrics(ng):
    return prom.scrape(ng.url("/metrics")).samples


def value(ng, name, **labels):
    return metrics(ng).get((name, frozenset(labels.items())))


def status(ng):
    return json.loads(ng.get("/status")[2])


def wait_consumed(ng, n, timeout=60):
    net.wait_for(lambda: value(ng, TOTAL, status="success") == n, timeout,
                 0.1, "%d messages consumed" % n)


def test_topic_change_on_reload_starts_the_ring_anew(nginx, kafka,
                                                     make_topic):
    old, new = make_topic(1), make_topic(1)
    ng = start(nginx, kafka, old, workers=2)
    first = kafka.produce(old, [ds.event(node_id="old%d" % i, sequence=i + 1)
                                for i in range(60)])
    wait_consumed(ng, 60)
    assert value(ng, "dashstream_kafka_duplicates_skipped_total") == 0

    follower = wslib.Client(ng.ws_url("/ws"))
    follower.send_resume({}, from_="earliest")
    assert [m.offset for m in follower.recv_messages(60)] == \
        [p.offset for p in first]

    mark = len(ng.error_log_text())
    ng.reload(http=http(kafka, new))
    assert follower.wait_close(10)[0] == 1001

    # subscribers that come after the change, before any record of the new
    # topic woke their worker, are not closed as the old topic's
    net.wait_for(lambda: "dashstream_topic changed" in
                 ng.error_log_text(mark), 30, 0.1, "the topic change")
    newcomers = [c for cs in clients_by_worker(ng, 8).values() for c in cs]

    # offsets 0..39 of the new topic lie below the old topic's 60
    second = kafka.produce(new, [ds.event(node_id="new%d" % i,
                                          sequence=i + 1)
                                 for i in range(40)])
    wait_consumed(ng, 100)
    for c in newcomers:
        assert [m.offset for m in c.recv_messages(40)] == \
            [p.offset for p in second]
        c.close()
    assert value(ng, "dashstream_kafka_duplicates_skipped_total") == 0

    log = ng.error_log_text(mark)
    assert re.search(r'\[notice\] .*dashstream_topic changed from "%s" to '
                     r'"%s": the ring\'s 60 records and the partition '
                     r'offsets of "%s" are dropped' % (old, new, old), log), \
        log[-2000:]

    # the ring holds the new topic's records only, each once
    c = wslib.Client(ng.ws_url("/ws"))
    c.send_resume({}, from_="earliest")
    done = c.recv_json("replay_complete")
    assert done["totalReplayed"] == 40
    got = c.recv_messages(40)
    assert [(m.partition, m.offset, m.data) for m in got] == \
        [(p.partition, p.offset, p.value) for p in second]
    assert c.drain(0.5)[0] == []
    c.close()

    part = status(ng)["partitions"][0]
    assert (part["position"], part["last_written"], part["messages"]) == \
        (40, 39, 40)

    # a reload back to the same topic keeps what the ring holds
    mark = len(ng.error_log_text())
    ng.reload(http=http(kafka, new))
    kafka.produce(new, [ds.event(node_id="more", sequence=41)])
    wait_consumed(ng, 101)
    assert "dashstream_topic changed" not in ng.error_log_text(mark)
    c = wslib.Client(ng.ws_url("/ws"))
    c.send_resume({}, from_="earliest")
    assert c.recv_json("replay_complete")["totalReplayed"] == 41
    c.close()


def clients_by_worker(ng, n):
    by_pid = {}
    for _ in range(n):
        c = wslib.Client(ng.ws_url("/ws"))
        c.send_resume({}, from_="latest")
        c.recv_json("replay_complete")
        by_pid.setdefault(int(dict(c.response_headers)["x-worker-pid"]),
                          []).append(c)
    return by_pid


def connected(ng):
    return value(ng, "websocket_connected_clients")


def test_a_killed_worker_stops_counting_its_subscribers(nginx, kafka, topic):
    ng = start(nginx, kafka, topic, workers=4)
    ng.allow_log(r"worker process \d+ exited on signal 9")
    net.wait_for(lambda: status(ng)["consumer"]["writer_pid"] != 0, 20, 0.1,
                 "a consumer")
    writer = status(ng)["consumer"]["writer_pid"]

    by_pid = clients_by_worker(ng, 24)
    others = {p: cs for p, cs in by_pid.items() if p != writer}
    assert others, "every connection went to worker 0"
    victim = max(others, key=lambda p: len(others[p]))
    net.wait_for(lambda: connected(ng) == 24, 10, 0.1, "24 subscribers")

    os.kill(victim, signal.SIGKILL)
    left = 24 - len(by_pid[victim])
    net.wait_for(lambda: victim not in ng.worker_pids()
                 and len(ng.worker_pids()) == 4, 10, 0.1, "a respawn")

    st = status(ng)
    assert connected(ng) == left
    assert st["subscribers"]["total"] == left
    listed = {w["pid"]: w["subscribers"] for w in st["subscribers"]["workers"]}
    assert victim not in listed
    assert set(listed) <= set(ng.worker_pids())
    assert sum(listed.values()) == left

    for pid, cs in by_pid.items():
        if pid != victim:
            for c in cs:
                c.close()
    net.wait_for(lambda: connected(ng) == 0, 10, 0.1, "no subscribers")
    assert status(ng)["subscribers"]["total"] == 0


def counters(samples, types):
    """Every sample of a counter or histogram family."""
    out = {}
    for (name, labels), v in samples.items():
        family = re.sub(r"_(bucket|count|sum|total)$", "", name)
        if types.get(name) == "counter" or types.get(family) == "histogram" \
                or types.get(family) == "counter":
            out[(name, labels)] = v
    return out


def test_zone_resize_carries_every_counter_over(nginx, kafka, topic):
    ng = start(nginx, kafka, topic, zone="1m")
    items = [ds.tool_execution("search", stage="COMPLETED", duration_us=5000,
                               result=b"x" * 3000, sequence=i + 1)
             for i in range(600)]
    items.append(ds.metrics({"quality_score": 0.75}, scope="quality",
                            sequence=601))
    kafka.produce(topic, items)
    wait_consumed(ng, 601)

    before = prom.scrape(ng.url("/metrics"))
    overwrites = before.samples[("dashstream_ring_overwrites_total",
                                 frozenset())]
    assert overwrites > 0
    tool = ("dashstream_stream_tool_executions_total",
            frozenset({("tool", "search"), ("stage", "completed")}))
    assert before.samples[tool] == 600

    mark = len(ng.error_log_text())
    ng.reload(http=http(kafka, topic, zone="2m"))

    after = prom.scrape(ng.url("/metrics"))
    old = counters(before.samples, before.types)
    new = counters(after.samples, after.types)
    assert set(old) <= set(new), sorted(set(old) - set(new))
    went_back = {k: (v, new[k]) for k, v in old.items() if new[k] < v}
    assert not went_back, went_back
    assert after.samples[tool] == 600
    assert after.samples[("dashstream_ring_overwrites_total", frozenset())] \
        == overwrites
    assert after.samples[("dashstream_stream_metric_value",
                          frozenset({("scope", "quality"),
                                     ("name", "quality_score")}))] == 0.75
    assert re.search(r'\[notice\] .*dashstream_zone "dashstream" resized '
                     r'from \d+ to \d+: the ring starts empty; counters, '
                     r'stream series, the topic and its partition offsets '
                     r'are carried over', ng.error_log_text(mark))

    # and nothing is consumed again into the new ring
    kafka.produce(topic, [ds.event(sequence=602)])
    wait_consumed(ng, 602)
    assert value(ng, "dashstream_ring_records") == 1
