"""Dead-letter queue on the real broker (issue 5): every undecodable
message yields exactly one forensic record and one counter increment,
valid ones still reach subscribers in order, memory stays bounded, and
fail_closed holds its partition until the record is delivered."""

import collections
import os
import time

from confluent_kafka import Consumer, TopicPartition

from lib import dashstream as ds
from lib import dlq as dlqlib
from lib import net, procs, prom
from lib import ws as wslib

MAX = 65536

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id {group};
dashstream_offset_reset earliest;
dashstream_zone dashstream 32m;
dashstream_max_message_size {max};
dashstream_lag_interval 500ms;
dashstream_lag_timeout 400ms;
{extra}
"""

SERVER = """
location /ws { dashstream_websocket; }
location /metrics { dashstream_metrics; }
location /status { dashstream_status; }
"""


def start(nginx, bootstrap, topic, extra="", workers=1):
    ng = nginx(module=True, workers=workers,
               http=HTTP.format(brokers=bootstrap, topic=topic,
                                group="g-" + topic, max=MAX, extra=extra),
               server=SERVER)
    ng.start()
    return ng


def samples(ng):
    return prom.scrape(ng.url("/metrics")).samples


def val(s, name, **labels):
    return s[(name, frozenset(labels.items()))]


def status(ng):
    import json
    code, _, body = ng.get("/status")
    assert code == 200
    return json.loads(body)


def live_client(ng):
    c = wslib.Client(ng.ws_url("/ws"))
    c.send_resume({}, from_="latest")
    assert c.recv_json("replay_complete")["mode"] == "latest"
    return c


def wait_assigned(ng, topic, n=1, timeout=30):
    key = ("websocket_kafka_assigned_partitions",
           frozenset({("topic", topic)}))
    net.wait_for(lambda: samples(ng).get(key) == n, timeout, 0.1,
                 "%d partition(s) assigned" % n)


def dlq_end(kafka, dlq_topic):
    c = Consumer(kafka.conf(**{"group.id": "t-watermarks"}))
    try:
        return c.get_watermark_offsets(TopicPartition(dlq_topic, 0),
                                       timeout=10)[1]
    finally:
        c.close()


def test_every_bad_message_is_dead_lettered_once(nginx, module, kafka,
                                                 make_topic):
    topic = make_topic()
    dlq_topic = make_topic(name=topic + "-dlq")
    ng = start(nginx, kafka.bootstrap, topic)
    wait_assigned(ng, topic)
    client = live_client(ng)

    bad = dlqlib.bad_inputs(MAX)
    p = kafka.producer(topic)
    kinds, valid = [], []
    for i in range(60):
        msg = ds.event(thread_id="t-%d" % (i % 3), sequence=i)
        valid.append(p.send(msg))
        kinds.append(None)
        if i < len(bad):
            p.send(bad[i][0], key=b"key-%d" % i)
            kinds.append(bad[i])
    produced = p.flush()

    good = [r for r, k in zip(produced, kinds) if k is None]
    wrong = [(r, k) for r, k in zip(produced, kinds) if k is not None]
    assert len(good) == 60 and len(wrong) == len(bad)

    # every valid one reaches the subscriber, in order, unchanged
    got = client.recv_messages(len(good), timeout=30)
    assert [(m.partition, m.offset) for m in got] == \
        [(0, r.offset) for r in good]
    assert [m.data for m in got] == [r.value for r in good]

    # one record per bad message, each saying exactly what it was
    records = kafka.consume(dlq_topic, len(wrong), timeout=30)
    by_offset = {}
    for r in records:
        rec = dlqlib.record(r.value)
        assert rec["offset"] not in by_offset
        by_offset[rec["offset"]] = (r, rec)
    assert sorted(by_offset) == [r.offset for r, _ in wrong]
    for src, (value, kind, what) in wrong:
        r, rec = by_offset[src.offset]
        assert r.key == src.key, what
        dlqlib.check_record(rec, topic, 0, src.offset, value, kind,
                            key=src.key)
    assert dlq_end(kafka, dlq_topic) == len(wrong)

    # delivery reports come a moment after the records are readable
    net.wait_for(lambda: val(samples(ng), "websocket_dlq_backlog") == 0,
                 10, 0.1, "DLQ backlog 0")
    s = samples(ng)
    expected = collections.Counter(k for _, k, _ in bad)
    for kind in dlqlib.ERROR_TYPES:
        assert val(s, "websocket_decode_errors_total",
                     error_type=kind) == expected[kind], kind
    assert val(s, "websocket_kafka_messages_total",
                 status="error") == len(wrong)
    assert val(s, "websocket_kafka_messages_total",
                 status="success") == len(good)
    assert val(s, "websocket_dlq_sends_total") == len(wrong)
    for reason in ("queue_full", "timed_out", "broker", "too_large",
                   "retries_exhausted", "other"):
        assert val(s, "websocket_dlq_send_failures_total",
                     reason=reason) == 0
    assert val(s, "websocket_dlq_backlog") == 0
    assert val(s, "websocket_dlq_fail_closed_stall_seconds") == 0

    # the group's offset moved past every message, bad ones included
    net.wait_for(lambda: kafka.committed("g-" + topic, topic)
                 == produced[-1].offset + 1, 15, 0.2, "offsets committed")
    client.close()


def test_memory_stays_bounded_under_bad_input(nginx, module, kafka,
                                              make_topic):
    topic = make_topic()
    dlq_topic = make_topic(name=topic + "-dlq")
    ng = start(nginx, kafka.bootstrap, topic)
    wait_assigned(ng, topic)
    worker = ng.worker_pids()[0]

    bomb = dlqlib.zstd_bomb()
    big = ds.message_of_size(MAX + 1000)
    rnd_bad = [v for v, _ in dlqlib.random_invalid(
        __import__("random").Random(9), 20)]

    def batch(n):
        p = kafka.producer(topic)
        for i in range(n):
            p.send((bomb, big, rnd_bad[i % 20])[i % 3], key=b"k%d" % i)
        p.flush()

    def errors():
        s = samples(ng)
        return sum(val(s, "websocket_decode_errors_total", error_type=t)
                   for t in dlqlib.ERROR_TYPES)

    def settle(n):
        net.wait_for(lambda: errors() == n, 60, 0.2, "%d errors" % n)
        net.wait_for(lambda: val(samples(ng), "websocket_dlq_sends_total")
                     == n, 30, 0.2, "%d records sent" % n)

    # a first round: librdkafka's fetch and send buffers and the
    # allocator's arenas reach their working size; then three more
    start_rss = procs.rss_kib(worker)
    batch(300)
    settle(300)
    rss = [procs.rss_kib(worker)]
    for r in (2, 3, 4):
        batch(300)
        settle(300 * r)
        rss.append(procs.rss_kib(worker))

    print("worker RSS: %d KiB at start, after each round of 300 bad"
          " messages (100 of them zstd bombs declaring 1 GiB): %s KiB"
          % (start_rss, rss))
    # one decompressed bomb alone would be 1 GiB; rounds do not add up
    assert max(rss) - start_rss < 64 * 1024, (start_rss, rss)
    assert max(rss[1:]) - rss[0] < 16 * 1024, rss
    assert dlq_end(kafka, dlq_topic) == 1200


def test_truncated_payload_mode(nginx, module, kafka, make_topic):
    topic = make_topic()
    dlq_topic = make_topic(name="dead-" + topic)
    ng = start(nginx, kafka.bootstrap, topic, extra="""
        dashstream_dlq_topic dead-%s;
        dashstream_dlq_payload truncated;
        dashstream_dlq_max_payload 1k;
    """ % topic)
    wait_assigned(ng, topic)
    big = b"\x02" + os.urandom(5000)
    small = b"\x03abc"
    produced = kafka.produce(topic, [big, small])
    recs = [dlqlib.record(r.value)
            for r in kafka.consume(dlq_topic, 2, timeout=30)]
    dlqlib.check_record(recs[0], topic, 0, produced[0].offset, big,
                        "unknown_framing", max_payload=1024)
    assert recs[0]["payload_truncated"] is True
    dlqlib.check_record(recs[1], topic, 0, produced[1].offset, small,
                        "unknown_framing", max_payload=1024)
    assert recs[1]["payload_truncated"] is False
    assert status(ng)["config"]["dlq"]["topic"] == "dead-" + topic


def lag_and_age(s, topic):
    labels = frozenset({("topic", topic), ("partition", "0")})
    return (s.get(("websocket_kafka_consumer_lag", labels)),
            s.get(("websocket_kafka_lag_offset_age_seconds", labels)))


def start_fail_closed(nginx, kafka, topic):
    """fail_closed with short DLQ attempts; the DLQ topic is the test's to
    create (auto-create is off), so a bad message holds its partition"""
    ng = start(nginx, kafka.bootstrap, topic, extra="""
        dashstream_dlq_mode fail_closed;
        dashstream_dlq_timeout 1s;
        dashstream_dlq_backoff 100ms 500ms;
    """)
    ng.allow_log(r"dead-letter record of .* failed")
    wait_assigned(ng, topic)
    return ng


def test_fail_closed_holds_the_partition_until_dead_lettered(
        nginx, module, kafka, make_topic):
    topic = make_topic()
    dlq_topic = topic + "-dlq"          # not created yet: auto-create is off
    ng = start_fail_closed(nginx, kafka, topic)
    client = live_client(ng)

    bad = b"\x00\x0f\x01"
    before = [ds.token_chunk(text="b%d" % i, chunk_index=i) for i in range(5)]
    after = [ds.token_chunk(text="a%d" % i, chunk_index=i) for i in range(20)]
    produced = kafka.produce(topic, before + [bad] + after)
    held = produced[5]
    assert held.offset == 5

    got = client.recv_messages(5, timeout=30)
    assert [m.offset for m in got] == [0, 1, 2, 3, 4]

    # held: nothing after the bad message is consumed or stored
    def paused():
        parts = status(ng)["partitions"]
        return parts[0]["paused"] is True
    net.wait_for(paused, 10, 0.1, "partition 0 paused")
    net.wait_for(lambda: lag_and_age(samples(ng), topic)[0] == 20, 10, 0.2,
                 "lag 20")
    s1 = samples(ng)
    time.sleep(1.5)
    s2 = samples(ng)
    stall1 = val(s1, "websocket_dlq_fail_closed_stall_seconds")
    stall2 = val(s2, "websocket_dlq_fail_closed_stall_seconds")
    assert stall1 > 0 and stall2 >= stall1 + 1.4, (stall1, stall2)
    lag1, age1 = lag_and_age(s1, topic)
    lag2, age2 = lag_and_age(s2, topic)
    print("fail_closed hold: stall %.3fs -> %.3fs, lag %s -> %s, offset age"
          " %.3fs -> %.3fs" % (stall1, stall2, lag1, lag2, age1, age2))
    assert lag1 == lag2 == 20
    assert age2 >= age1 + 1.4 and age1 > 0, (age1, age2)
    assert val(s2, "websocket_dlq_backlog") == 1
    assert val(s2, "websocket_decode_errors_total",
                 error_type="invalid_protobuf") == 1
    assert val(s2, "websocket_dlq_send_failures_total",
                 reason="timed_out") \
        + val(s2, "websocket_dlq_send_failures_total",
                reason="broker") >= 1
    assert val(s2, "websocket_dlq_sends_total") == 0
    assert kafka.committed("g-" + topic, topic) == held.offset
    msgs, _ = client.drain(0.3)
    assert msgs == []

    # the dead-letter topic comes: the record lands, consumption resumes
    kafka.create_topic(dlq_topic)
    try:
        recs = kafka.consume(dlq_topic, 1, timeout=30)
        dlqlib.check_record(dlqlib.record(recs[0].value), topic, 0,
                            held.offset, bad, "invalid_protobuf")
        got = client.recv_messages(20, timeout=30)
        assert [m.offset for m in got] == list(range(6, 26))
        assert [m.data for m in got] == [r.value for r in produced[6:]]
        net.wait_for(lambda: kafka.committed("g-" + topic, topic) == 26,
                     15, 0.2, "offset 26 committed")
        s = samples(ng)
        assert val(s, "websocket_dlq_fail_closed_stall_seconds") == 0
        assert val(s, "dashstream_dlq_fail_closed_stalled_seconds_total") \
            >= 2
        assert val(s, "websocket_dlq_sends_total") == 1
        assert val(s, "websocket_dlq_backlog") == 0
        assert val(s, "websocket_decode_errors_total",
                     error_type="invalid_protobuf") == 1
        assert status(ng)["partitions"][0]["paused"] is False
        assert dlq_end(kafka, dlq_topic) == 1
    finally:
        client.close()
        kafka.delete_topic(dlq_topic)


def test_resume_cursor_ahead_of_the_ring(nginx, module, kafka, make_topic):
    """A client that saw offsets this server has not consumed yet (on
    another replica, or here before a restart) resumes with a cursor ahead
    of the ring: once the consumer catches up it gets only what comes after
    its cursor, not the records it already has.  A fail_closed hold makes
    this server's ring stay behind Kafka for as long as the test needs."""
    topic = make_topic()
    dlq_topic = topic + "-dlq"          # not created yet: auto-create is off
    ng = start_fail_closed(nginx, kafka, topic)
    bad = b"\x00\x0f\x01"
    good = [ds.token_chunk(text="m%d" % i, chunk_index=i) for i in range(10)]
    produced = kafka.produce(topic, good[:5] + [bad] + good[5:])
    net.wait_for(lambda: status(ng)["partitions"][0]["high_watermark"] == 11,
                 10, 0.1, "high watermark 11 polled")
    assert status(ng)["partitions"][0]["last_written"] == 4

    # offsets 0-4 good, 5 bad (held: DLQ topic missing), 6-10 good
    ahead = wslib.Client(ng.ws_url("/ws"))      # saw offsets up to 8
    ahead.send_resume({0: 8})
    done = ahead.recv_json("replay_complete")
    assert done["totalReplayed"] == 0, done
    bogus = wslib.Client(ng.ws_url("/ws"))      # beyond Kafka's end
    bogus.send_resume({0: 50})
    bogus.recv_json("replay_complete")
    reset = wslib.Client(ng.ws_url("/ws"))      # ahead, then cursor_reset
    reset.send_resume({0: 8})
    reset.recv_json("replay_complete")
    reset.send_cursor_reset()
    assert reset.recv_json("cursor_reset_complete")[
        "latestOffsetsByPartition"] == {"0": "4"}

    kafka.create_topic(dlq_topic)
    try:
        got = ahead.recv_messages(2, timeout=30)
        assert [m.offset for m in got] == [9, 10]
        assert [m.data for m in got] == [r.value for r in produced[9:]]
        more, _ = ahead.drain(0.5)
        assert more == []
        # a cursor past the high watermark filters nothing
        got = bogus.recv_messages(5, timeout=30)
        assert [m.offset for m in got] == [6, 7, 8, 9, 10]
        # after a cursor_reset the client's cursor is the latest offset
        got = reset.recv_messages(5, timeout=30)
        assert [m.offset for m in got] == [6, 7, 8, 9, 10]
        # the partition is live again past the cursor
        later = kafka.produce(topic, [ds.token_chunk(text="n", chunk_index=0)])
        got = ahead.recv_messages(1, timeout=30)
        assert [m.offset for m in got] == [later[0].offset] == [11]
    finally:
        for c in (ahead, bogus, reset):
            c.close()
        kafka.delete_topic(dlq_topic)


def test_fail_closed_record_pending_across_reload(nginx, module, kafka,
                                                  make_topic):
    """A record still pending when its consumer stops was not stored past:
    the next worker 0 reads the message again and sends it again, without
    counting it again (the zone remembers it was held)."""
    topic = make_topic()
    dlq_topic = topic + "-dlq"
    ng = start_fail_closed(nginx, kafka, topic)
    bad = b"\x05held"
    produced = kafka.produce(topic, [ds.event(sequence=0), bad] +
                             [ds.event(sequence=i) for i in (1, 2, 3)])
    net.wait_for(lambda: status(ng)["partitions"][0]["paused"] is True, 10,
                 0.1, "partition 0 paused")

    ng.reload()
    wait_assigned(ng, topic)
    net.wait_for(lambda: status(ng)["partitions"][0]["paused"] is True, 20,
                 0.1, "held again by the new worker 0")
    client = live_client(ng)

    kafka.create_topic(dlq_topic)
    try:
        got = client.recv_messages(3, timeout=30)
        assert [m.offset for m in got] == [2, 3, 4]
        [rec] = kafka.consume(dlq_topic, 1, timeout=10)
        dlqlib.check_record(dlqlib.record(rec.value), topic, 0, 1, bad,
                            "unknown_framing")
        net.wait_for(lambda: val(samples(ng), "websocket_dlq_sends_total")
                     == 1, 10, 0.1, "one record sent")
        time.sleep(0.5)
        assert dlq_end(kafka, dlq_topic) == 1
        s = samples(ng)
        assert val(s, "websocket_decode_errors_total",
                   error_type="unknown_framing") == 1
        assert val(s, "websocket_kafka_messages_total", status="error") == 1
        assert val(s, "websocket_kafka_messages_total",
                   status="success") == 4
        assert produced[1].offset == 1
    finally:
        client.close()
        kafka.delete_topic(dlq_topic)
