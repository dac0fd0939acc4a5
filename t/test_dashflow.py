"""The DashFlow control protocol (DESIGN.md section 5) over a real websocket
client, with a real Kafka producer and broker behind a real nginx:
error codes, cursor_reset, resume from latest, query filters, the raw
protocol, and delivery to subscribers in two workers.

Every record is a text frame {"type":"cursor","partition":P,"offset":"O"}
then a binary frame with the Kafka value; lib.ws.Client checks that
framing and turns it into Msg(partition, offset, data), which the tests
compare with what the producer was told (Produced).
"""

import json
import time

import pytest

from lib import dashstream as ds
from lib import prom, shared, ws
from lib.net import wait_for

CAP = 4     # dashstream_resume_max_partitions of the shared error server

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id g-{topic};
dashstream_offset_reset earliest;
dashstream_zone ds 8m;
{extra}
"""

SERVER = """
location = /ws {{
    dashstream_websocket;
    dashstream_resume_max_partitions {cap};
    add_header X-Worker-Pid $pid always;
    {loc}
}}
location = /raw {{ dashstream_websocket raw; }}
location = /metrics {{ dashstream_metrics; }}
"""


def config(kafka, topic, extra="", loc="", cap=CAP):
    return dict(http=HTTP.format(brokers=kafka.bootstrap, topic=topic,
                                 extra=extra),
                server=SERVER.format(cap=cap, loc=loc))


def start(nginx, kafka, topic, workers=1, **kw):
    return nginx(module=True, workers=workers,
                 **config(kafka, topic, **kw)).start()


def consumed(ng):
    s = prom.scrape(ng.url("/metrics"))
    return prom.value(s.samples, "websocket_kafka_messages_total",
                      status="success")


def wait_consumed(ng, n, timeout=30):
    """Until the module has put exactly n records in the ring."""
    wait_for(lambda: consumed(ng) >= n, timeout, 0.05,
             "%d records consumed" % n)
    assert consumed(ng) == n


def as_msgs(produced):
    return [ws.Msg(p.partition, p.offset, p.value) for p in produced]


def assert_same_stream(got, want):
    """Exactly the records of want, each once, byte-identical, and in
    offset order within each partition (partitions may interleave)."""
    assert sorted(got) == sorted(want)
    for part in {m.partition for m in want}:
        offs = [m.offset for m in got if m.partition == part]
        assert offs == sorted(offs), "partition %d out of order" % part


def last_offsets(produced):
    out = {}
    for p in produced:
        out[str(p.partition)] = str(max(p.offset, int(out.get(
            str(p.partition), -1))))
    return out


def error(code, message):
    return {"type": "error", "code": code, "message": message}


# -- error codes (one nginx for all of them) ------------------------------

@pytest.fixture(scope="module")
def server(workdir, kafka, request):
    topic, cleanup = shared.topic(kafka, "dashflow-errors")
    try:
        yield from shared.nginx(workdir, request, **config(kafka, topic))
    finally:
        cleanup()


@pytest.fixture
def errs(server):
    with shared.per_test(server) as mark:
        server.mark = mark
        yield server


def resume(**fields):
    return json.dumps(dict({"type": "resume"}, **fields))


def many(n):
    return {str(i): "0" for i in range(n)}


ERRORS = [
    ("empty", "", "INVALID_JSON",
     "invalid JSON at byte 0: unexpected end of input"),
    ("unterminated", "{", "INVALID_JSON",
     "invalid JSON at byte 1: unexpected end of input"),
    ("not-json", "resume please", "INVALID_JSON",
     "invalid JSON at byte 0: unexpected character"),
    ("trailing-data", '{"type":"cursor_reset"} x', "INVALID_JSON",
     "invalid JSON at byte 24: unexpected data after the value"),
    ("duplicate-type", '{"type":"resume","type":"cursor_reset"}',
     "INVALID_JSON", 'duplicate key "type"'),
    ("array", "[]", "MISSING_TYPE", "message is not a JSON object"),
    ("string", '"resume"', "MISSING_TYPE", "message is not a JSON object"),
    ("no-type", '{"from":"latest"}', "MISSING_TYPE", 'missing "type"'),
    ("type-null", '{"type":null}', "MISSING_TYPE",
     '"type" is not a string'),
    ("type-number", '{"type":1}', "MISSING_TYPE", '"type" is not a string'),
    ("unknown-type", '{"type":"subscribe"}', "UNKNOWN_MESSAGE_TYPE",
     "unknown message type"),
    ("type-case", '{"type":"Resume"}', "UNKNOWN_MESSAGE_TYPE",
     "unknown message type"),
    ("cursor-type", '{"type":"cursor","partition":0,"offset":"1"}',
     "UNKNOWN_MESSAGE_TYPE", "unknown message type"),
    ("from-middle", resume(**{"from": "middle"}), "INVALID_FROM",
     '"from" must be "latest", "cursor" or "earliest"'),
    ("from-number", resume(**{"from": 1}), "INVALID_FROM",
     '"from" must be "latest", "cursor" or "earliest"'),
    ("mode-random", resume(mode="random"), "INVALID_MODE",
     '"mode" must be "partition", "thread" or "auto"'),
    ("offsets-array", resume(lastOffsetsByPartition=[]), "INVALID_CURSOR",
     '"lastOffsetsByPartition" is not an object'),
    ("offset-negative", resume(lastOffsetsByPartition={"0": "-1"}),
     "INVALID_CURSOR",
     "offset for partition 0 is not a non-negative 64-bit integer"),
    ("offset-text", resume(lastOffsetsByPartition={"2": "abc"}),
     "INVALID_CURSOR",
     "offset for partition 2 is not a non-negative 64-bit integer"),
    ("offset-leading-zero", resume(lastOffsetsByPartition={"0": "01"}),
     "INVALID_CURSOR",
     "offset for partition 0 is not a non-negative 64-bit integer"),
    ("offset-fraction", resume(lastOffsetsByPartition={"0": 1.5}),
     "INVALID_CURSOR",
     "offset for partition 0 is not a non-negative 64-bit integer"),
    ("offset-too-big", resume(lastOffsetsByPartition={
        "0": "9223372036854775808"}), "INVALID_CURSOR",
     "offset for partition 0 is not a non-negative 64-bit integer"),
    ("partition-key", resume(lastOffsetsByPartition={"p0": "1"}),
     "INVALID_CURSOR",
     "partition entry 0: key is not a non-negative 32-bit integer"),
    ("partition-too-big", resume(lastOffsetsByPartition={
        "0": "1", "2147483648": "1"}), "INVALID_CURSOR",
     "partition entry 1: key is not a non-negative 32-bit integer"),
    ("partition-twice", '{"type":"resume","lastOffsetsByPartition":'
     '{"1":"5","1":"6"}}', "INVALID_CURSOR", "duplicate partition 1"),
    ("sequences-array", resume(lastSequencesByThread=[]), "INVALID_CURSOR",
     '"lastSequencesByThread" is not an object'),
    ("sequence-negative", resume(lastSequencesByThread={"t": -1}),
     "INVALID_CURSOR",
     "thread entry 0: sequence is not a non-negative 64-bit integer"),
    ("too-many-partitions", resume(lastOffsetsByPartition=many(CAP + 1)),
     "RESUME_TOO_MANY_PARTITIONS", "more than %d partitions" % CAP),
    ("too-many-threads", resume(lastSequencesByThread={
        "t%d" % i: i for i in range(CAP + 1)}),
     "RESUME_TOO_MANY_THREADS", "more than %d threads" % CAP),
]


@pytest.mark.parametrize("text,code,message", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_error_code(errs, text, code, message):
    with ws.Client(errs.ws_url("/ws?from=latest")) as c:
        c.ws.send(text)
        assert c.recv_json() == error(code, message)
        # the connection stays open and keeps working
        c.send_cursor_reset()
        assert c.recv_json() == {"type": "cursor_reset_complete",
                                 "latestOffsetsByPartition": {}}
        assert c.drain(0.2) == ([], [])
        assert c.close() == (1000, "")
    assert ("dashstream: bad client message: %s: %s" % (code, message)) \
        in errs.error_log_text(errs.mark.offset)


def test_caps_are_inclusive(errs):
    """Exactly dashstream_resume_max_partitions partitions (and threads)
    are accepted."""
    with ws.Client(errs.ws_url("/ws")) as c:
        c.send_json({"type": "resume", "from": "cursor",
                     "lastOffsetsByPartition": many(CAP)})
        done = c.recv_json("replay_complete")
        assert done["totalReplayed"] == 0
        c.send_json({"type": "resume", "mode": "thread",
                     "lastSequencesByThread": {"t%d" % i: i
                                               for i in range(CAP)}})
        assert c.recv_json("replay_complete")["mode"] == "thread"
        assert c.drain(0.2) == ([], [])


def test_errors_in_a_row_on_one_connection(errs):
    """Every error of the table on one connection, in order: each gets its
    own reply and the connection survives all of them."""
    with ws.Client(errs.ws_url("/ws?from=latest")) as c:
        for _, text, code, message in ERRORS:
            c.ws.send(text)
        got = [c.recv_json() for _ in ERRORS]
        assert got == [error(code, message) for _, _, code, message in ERRORS]
        c.send_cursor_reset()
        assert c.recv_json()["type"] == "cursor_reset_complete"


def test_binary_client_message_closes_1003(errs):
    with ws.Client(errs.ws_url("/ws")) as c:
        c.ws.send_binary(b'{"type":"cursor_reset"}')
        assert c.wait_close() == (1003, "binary messages are not accepted")


# -- cursor_reset, resume from latest -------------------------------------

def test_cursor_reset_reports_last_produced_offsets(nginx, kafka,
                                                    make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic)
    first = kafka.produce(topic, [ds.event(thread_id="a", sequence=i)
                                  for i in range(3)], partition=0)
    first += kafka.produce(topic, [ds.token_chunk(thread_id="b")],
                           partition=1)
    assert [(p.partition, p.offset) for p in first] == \
        [(0, 0), (0, 1), (0, 2), (1, 0)]
    wait_consumed(ng, 4)

    with ws.Client(ng.ws_url("/ws?from=latest")) as c:
        c.send_cursor_reset()
        # partition 2 has no record: it is not in the map
        assert c.recv_json() == {"type": "cursor_reset_complete",
                                 "latestOffsetsByPartition": {"0": "2",
                                                              "1": "0"}}
        assert last_offsets(first) == {"0": "2", "1": "0"}

        more = kafka.produce(topic, [ds.error(thread_id="c")], partition=2)
        more += kafka.produce(topic, [ds.event(thread_id="a")], partition=0)
        wait_consumed(ng, 6)
        # the live records since the connection, then the new offsets
        assert_same_stream(c.recv_messages(2), as_msgs(more))
        c.send_cursor_reset()
        assert c.recv_json() == {"type": "cursor_reset_complete",
                                 "latestOffsetsByPartition":
                                     last_offsets(first + more)}
        assert c.drain(0.2) == ([], [])


def test_resume_from_latest_gets_only_live_records(nginx, kafka,
                                                   make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic)
    old = kafka.produce(topic, [ds.event(thread_id="thread-%d" % i)
                                for i in range(9)])
    assert {p.partition for p in old} == {0, 1, 2}
    wait_consumed(ng, 9)

    with ws.Client(ng.ws_url("/ws")) as c:
        c.send_resume({}, from_="latest")
        assert c.recv_json() == {
            "type": "replay_complete", "totalReplayed": 0,
            "lastOffsetsByPartition": last_offsets(old), "capped": False,
            "mode": "latest", "complete": True, "missingPartitions": []}
        new = kafka.produce(topic, [ds.token_chunk("t%d" % i,
                                                   thread_id="thread-%d" % i)
                                    for i in range(6)])
        assert_same_stream(c.recv_messages(6), as_msgs(new))
        assert c.drain(0.3) == ([], [])


def test_no_resume_streams_from_the_connect_point(nginx, kafka, make_topic):
    """A DashFlow client that never resumes waits dashstream_resume_wait,
    then gets what arrived since it connected, and nothing older."""
    topic = make_topic(3)
    ng = start(nginx, kafka, topic, loc="dashstream_resume_wait 6s;")
    old = kafka.produce(topic, [ds.event(thread_id="o%d" % i)
                                for i in range(4)])
    wait_consumed(ng, 4)
    with ws.Client(ng.ws_url("/ws")) as c:
        connected = time.monotonic()
        new = kafka.produce(topic, [ds.event(thread_id="n%d" % i)
                                    for i in range(5)])
        wait_consumed(ng, 9)
        # a busy machine gets plenty of slack before the wait is over
        assert time.monotonic() - connected < 5.5, "too slow to tell"
        got = c.recv_messages(5, timeout=15)
        assert time.monotonic() - connected >= 6
        assert_same_stream(got, as_msgs(new))
        assert not set(got) & set(as_msgs(old))
        assert c.drain(0.2) == ([], [])


# -- query filters --------------------------------------------------------

KINDS = [ds.event, ds.token_chunk, ds.error, ds.metrics]


def mixed(n=24):
    """Messages with thread-0..2, tenant-a/b and four types, all mixed."""
    return [KINDS[i % 4](thread_id="thread-%d" % (i % 3),
                         tenant_id="tenant-a" if i % 5 < 3 else "tenant-b",
                         sequence=i)
            for i in range(n)]


FILTERS = [
    ("thread=thread-1", lambda m: ds.thread_id(m) == "thread-1"),
    ("tenant=tenant-b", lambda m: ds.header(m).tenant_id == "tenant-b"),
    ("type=token_chunk", lambda m: ds.kind(m) == "token_chunk"),
    ("type=event,error", lambda m: ds.kind(m) in ("event", "error")),
    ("type=3", lambda m: ds.kind(m) == "token_chunk"),
    ("type=METRICS", lambda m: ds.kind(m) == "metrics"),
    ("thread=thread-2&tenant=tenant-a&type=event,metrics",
     lambda m: ds.thread_id(m) == "thread-2"
     and ds.header(m).tenant_id == "tenant-a"
     and ds.kind(m) in ("event", "metrics")),
    ("thread=thread-9", lambda m: False),
    ("type=execution_trace", lambda m: False),
    ("", lambda m: True),
]


def test_query_filters_live(nginx, kafka, make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic)
    clients = [ws.Client(ng.ws_url("/ws?from=latest&" + q)) for q, _ in
               FILTERS]
    try:
        msgs = mixed()
        produced = kafka.produce(topic, msgs)
        want = [[ws.Msg(p.partition, p.offset, p.value)
                 for m, p in zip(msgs, produced) if keep(m)]
                for _, keep in FILTERS]
        assert len(want[-1]) == 24 and not want[-2] and not want[-3]
        assert all(want[:-3])
        # the unfiltered client first: once it has everything, every
        # other client of this (single) worker has been sent its share
        got = {"": clients[-1].recv_messages(24)}
        for (q, _), c, w in zip(FILTERS[:-1], clients, want):
            got[q] = c.recv_messages(len(w), timeout=10)
        for (q, _), c, w in zip(FILTERS, clients, want):
            assert_same_stream(got[q], w)
            assert c.drain(0.2) == ([], []), q
    finally:
        for c in clients:
            c.abort()


def test_query_filter_on_replay(nginx, kafka, make_topic):
    """?from=earliest replays the ring through the same filters; the replay
    summary counts and locates only what was sent."""
    topic = make_topic(3)
    ng = start(nginx, kafka, topic)
    msgs = mixed()
    produced = kafka.produce(topic, msgs)
    wait_consumed(ng, len(msgs))
    want = [ws.Msg(p.partition, p.offset, p.value)
            for m, p in zip(msgs, produced)
            if ds.thread_id(m) == "thread-0" and ds.kind(m) != "error"]
    with ws.Client(ng.ws_url("/ws?from=earliest&thread=thread-0"
                             "&type=event,token_chunk,metrics")) as c:
        got = c.recv_messages(len(want))
        assert_same_stream(got, want)
        done = c.recv_json()
        assert done == {
            "type": "replay_complete", "totalReplayed": len(want),
            "lastOffsetsByPartition": last_offsets(
                [p for p, m in zip(produced, msgs)
                 if ws.Msg(p.partition, p.offset, p.value) in want]),
            "capped": False, "mode": "earliest", "complete": True,
            "missingPartitions": []}
        assert c.drain(0.2) == ([], [])


@pytest.mark.parametrize("how", ["query", "resume", "no resume"])
def test_replay_larger_than_the_send_budget_completes(nginx, kafka,
                                                      make_topic, how):
    """A subscriber behind the writer is fed from the ring one send budget
    at a time; a socket that takes a whole budget at once raises no write
    event, and the replay must go on anyway (it stopped after one budget:
    8 of 1,200 records with a 16k budget), and then go live."""
    topic = make_topic(2)
    ng = start(nginx, kafka, topic, loc="dashstream_send_budget 16k;",
               extra="dashstream_kafka_property linger.ms 5;")
    msgs = [ds.message_of_size(2000) for _ in range(1200)]
    if how == "no resume":
        # streams from its connection point: it connects while the
        # producer runs and catches up from behind the writer
        with ws.Client(ng.ws_url("/ws")) as c:
            produced = kafka.produce(topic, msgs)
            got = c.recv_messages(len(msgs), timeout=60)
            assert_same_stream(got, as_msgs(produced))
        return
    produced = kafka.produce(topic, msgs)
    wait_consumed(ng, len(msgs))
    url = "/ws?from=earliest" if how == "query" else "/ws"
    with ws.Client(ng.ws_url(url)) as c:
        if how == "resume":
            c.send_resume({}, from_="earliest")
        got = c.recv_messages(len(msgs), timeout=60)
        assert_same_stream(got, as_msgs(produced))
        done = c.recv_json("replay_complete")
        assert (done["totalReplayed"], done["complete"]) == (len(msgs), True)
        # and it is live afterwards
        more = kafka.produce(topic, [ds.message_of_size(2000)
                                     for _ in range(5)])
        assert_same_stream(c.recv_messages(5), as_msgs(more))
        assert c.drain(0.2) == ([], [])


# -- the raw protocol -----------------------------------------------------

SIZES = [1, 3, 125, 126, 127, 1000, 65535, 65536, 65537, 200000]


def test_raw_gets_binary_frames_only(nginx, kafka, make_topic):
    topic = make_topic(1)
    ng = start(nginx, kafka, topic)
    with ws.RawWS(ng.port) as rw:
        assert rw.upgrade("/raw")[0] == 101
        # a DashFlow request on a raw stream is not answered
        rw.send_frame(ws.OP_TEXT, b'{"type":"cursor_reset"}')
        values = [ds.message_of_size(n) for n in SIZES]
        produced = kafka.produce(topic, values)
        assert [p.value for p in produced] == values
        frames = [rw.read_frame() for _ in values]
        assert [(f.fin, f.rsv, f.opcode) for f in frames] == \
            [(True, 0, ws.OP_BINARY)] * len(values)
        assert [f.payload for f in frames] == values
        # nothing else was queued before the answer to this ping
        rw.send_frame(ws.OP_PING, b"end")
        assert rw.read_frame() == ws.Frame(True, 0, ws.OP_PONG, b"end")


def test_raw_replay_from_earliest_has_no_text(nginx, kafka, make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic)
    produced = kafka.produce(topic, mixed(12))
    wait_consumed(ng, 12)
    with ws.Client(ng.ws_url("/raw?from=earliest"), protocol="raw") as c:
        got = c.recv_messages(12)
        assert sorted(m.data for m in got) == sorted(p.value
                                                     for p in produced)
        for part in range(3):
            assert [m.data for m in got if m.data in
                    {p.value for p in produced if p.partition == part}] == \
                [p.value for p in produced if p.partition == part]
        assert c.drain(0.3) == ([], [])     # no replay_complete, no cursor


# -- two workers ----------------------------------------------------------

def clients_on_two_workers(ng, tries=40):
    """Connect until two clients are served by different workers."""
    by_pid, spare = {}, []
    try:
        for _ in range(tries):
            c = ws.Client(ng.ws_url("/ws?from=latest"))
            pid = dict((k.lower(), v) for k, v in
                       c.response_headers.items())["x-worker-pid"]
            if pid in by_pid:
                spare.append(c)
            else:
                by_pid[pid] = c
            if len(by_pid) == 2:
                return list(by_pid.items())
        raise AssertionError("all %d connections went to one worker" % tries)
    finally:
        for c in spare:
            c.close()


def test_two_workers_both_get_everything(nginx, kafka, make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic, workers=2)
    pairs = clients_on_two_workers(ng)
    try:
        assert {int(pid) for pid, _ in pairs} == set(ng.worker_pids())
        wait_for(lambda: shared.connected(ng) == 2, 5, what="2 clients")
        msgs = mixed(30) + [ds.message_of_size(n) for n in (1, 70000)]
        produced = kafka.produce(topic, msgs)
        for pid, c in pairs:
            assert_same_stream(c.recv_messages(len(msgs)), as_msgs(produced))
        for pid, c in pairs:
            assert c.drain(0.2) == ([], []), pid
        s = prom.scrape(ng.url("/metrics"))
        assert prom.value(s.samples, "websocket_messages_sent_total") == \
            2 * len(msgs)
    finally:
        for _, c in pairs:
            c.close()


def test_query_filter_values_are_url_decoded(nginx, kafka, make_topic):
    """Thread and tenant ids with reserved characters arrive percent-encoded
    (encodeURIComponent in the browser); the filter compares the decoded
    value with the header's."""
    topic = make_topic(1)
    ng = start(nginx, kafka, topic)
    thread, tenant = "run/42 \u00fc&x=1", "acme corp"
    c_thread = ws.Client(ng.ws_url(
        "/ws?from=latest&thread=run%2F42%20%C3%BC%26x%3D1"))
    c_tenant = ws.Client(ng.ws_url("/ws?from=latest&tenant=acme%20corp"))
    c_all = ws.Client(ng.ws_url("/ws?from=latest"))
    # form encoding (URLSearchParams): "+" is a space, "%2B" a plus
    c_space = ws.Client(ng.ws_url("/ws?from=latest&thread=a+b"))
    c_plus = ws.Client(ng.ws_url("/ws?from=latest&thread=a%2Bb"))
    try:
        msgs = [ds.event(thread_id=thread, tenant_id="tenant-a"),
                ds.event(thread_id="run", tenant_id=tenant),
                ds.event(thread_id="other", tenant_id="other"),
                ds.event(thread_id="a b", tenant_id="t"),
                ds.event(thread_id="a+b", tenant_id="t")]
        produced = as_msgs(kafka.produce(topic, msgs))
        assert c_all.recv_messages(5) == produced
        assert c_thread.recv_messages(1, timeout=5) == [produced[0]]
        assert c_tenant.recv_messages(1, timeout=5) == [produced[1]]
        assert c_space.recv_messages(1, timeout=5) == [produced[3]]
        assert c_plus.recv_messages(1, timeout=5) == [produced[4]]
        for c in (c_thread, c_tenant, c_space, c_plus):
            assert c.drain(0.2) == ([], [])
    finally:
        for c in (c_thread, c_tenant, c_all, c_space, c_plus):
            c.abort()


# -- what a handshake may ask for -----------------------------------------

@pytest.mark.parametrize("query,reason", [
    ("type=nonsense", 'the "type" argument lists an unknown message type'),
    ("type=event,bogus", 'the "type" argument lists an unknown message '
     'type'),
    ("type=", "a query argument is empty"),
    ("from=", "a query argument is empty"),
    ("type=10", 'the "type" argument lists an unknown message type'),
    ("from=bogus", 'the "from" argument must be "latest" or "earliest"'),
    ("from=earliest&from=latest", "a query argument is given twice"),
    ("thread=a&x=1&THREAD=b", "a query argument is given twice"),
    ("thread=a%zzb", "a query argument has a bad percent-encoding"),
    ("tenant=acme%2", "a query argument has a bad percent-encoding"),
    ("thread=%00", "a query argument holds a control character"),
    ("tenant=a%0Ab", "a query argument holds a control character"),
    ("thread=", "a query argument is empty"),
    ("thread&from=latest", "a query argument is empty"),
    ("tenant=", "a query argument is empty"),
])
def test_bad_query_arguments_are_refused(nginx, kafka, make_topic, query,
                                         reason):
    ng = start(nginx, kafka, make_topic(1))
    with ws.RawWS(ng.port) as rw:
        status, _, headers = rw.upgrade("/ws?" + query)
        assert status == 400
        assert rw.read_body(headers) == reason.encode() + b"\n"


ORIGIN_SERVER = """
location /ws {
    dashstream_websocket;
    dashstream_allowed_origins https://dash.example.com http://localhost:3000;
}
location /any {
    dashstream_websocket;
    dashstream_allowed_origins *;
}
location /scoped {
    dashstream_websocket;
    dashstream_tenant_scope $http_x_tenant;
}
location /metrics { dashstream_metrics; }
"""


def start_policy(nginx, kafka, topic):
    ng = nginx(module=True, workers=1, server=ORIGIN_SERVER,
               http=HTTP_POLICY.format(brokers=kafka.bootstrap, topic=topic))
    ng.start()
    return ng


HTTP_POLICY = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id g-{topic};
dashstream_offset_reset earliest;
dashstream_zone ds 8m;
"""


@pytest.mark.parametrize("path,origin,status", [
    ("/ws", "https://dash.example.com", 101),
    ("/ws", "HTTPS://DASH.EXAMPLE.COM", 101),
    ("/ws", "http://localhost:3000", 101),
    ("/ws", "https://evil.example.com", 403),
    ("/ws", "https://dash.example.com.evil.com", 403),
    ("/ws", None, 101),
    ("/any", "https://anything.example", 101),
])
def test_origin_allow_list(nginx, kafka, make_topic, path, origin, status):
    ng = start_policy(nginx, kafka, make_topic(1))
    headers = {"Origin": origin} if origin else {}
    with ws.RawWS(ng.port) as rw:
        got, _, h = rw.upgrade(path, headers=headers)
        assert got == status
        if status == 403:
            assert rw.read_body(h) == \
                b"this origin is not allowed to subscribe\n"


@pytest.mark.parametrize("first,second", [
    ("https://dash.example.com", "https://evil.example.com"),
    ("https://evil.example.com", "https://dash.example.com"),
    ("https://dash.example.com", "https://dash.example.com"),
])
def test_two_origin_headers_are_refused(nginx, kafka, make_topic, first,
                                        second):
    """only the first used to be checked: allowed, then anything -> 101"""
    ng = start_policy(nginx, kafka, make_topic(1))
    with ws.RawWS(ng.port) as rw:
        got, _, h = rw.upgrade("/ws", headers={
            "Origin": "%s\r\nOrigin: %s" % (first, second)})
        assert got == 400
        assert rw.read_body(h) == b"more than one Origin header\n"


def test_tenant_scope_is_enforced(nginx, kafka, make_topic):
    topic = make_topic(1)
    ng = start_policy(nginx, kafka, topic)
    with ws.RawWS(ng.port) as rw:
        got, _, h = rw.upgrade("/scoped")
        assert got == 403
        assert rw.read_body(h) == \
            b"no tenant scope was established for this request\n"
    with ws.RawWS(ng.port) as rw:
        got, _, h = rw.upgrade("/scoped?tenant=tenant-b",
                               headers={"X-Tenant": "tenant-a"})
        assert got == 403
        assert rw.read_body(h) == \
            b"the requested tenant is outside this request's scope\n"

    with ws.Client(ng.ws_url("/scoped?from=latest"),
                   headers={"X-Tenant": "tenant-a"}) as c:
        msgs = [ds.event(node_id="n%d" % i, tenant_id=t, sequence=i)
                for i, t in enumerate(["tenant-a", "tenant-b"] * 10)]
        produced = kafka.produce(topic, msgs)
        want = [ws.Msg(p.partition, p.offset, p.value)
                for m, p in zip(msgs, produced)
                if ds.header(m).tenant_id == "tenant-a"]
        assert_same_stream(c.recv_messages(10), want)
        assert c.drain(0.3) == ([], [])
