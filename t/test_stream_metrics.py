"""What the stream says, as metrics: exact counts by message, event, tool and
severity, allow-listed Metrics values with a series cap, per-thread
sequence checks, and the status page's view of subscribers (issue 4)."""

import json
import os

from lib import dashstream as ds
from lib import net, prom
from lib import ws as wslib

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id g-{topic};
dashstream_offset_reset earliest;
dashstream_zone dashstream 16m;
dashstream_stream_metrics quality_score tokens passed;
dashstream_stream_max_series 3;
"""

SERVER = """
location /metrics { dashstream_metrics; }
location /status { dashstream_status; }
location /ws { dashstream_websocket; }
"""


def start(nginx, kafka, topic, workers=2):
    ng = nginx(module=True, workers=workers, server=SERVER,
               http=HTTP.format(brokers=kafka.bootstrap, topic=topic))
    ng.start()
    return ng


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def series(samples, name):
    return {frozenset(l): v for (n, l), v in samples.items() if n == name}


def test_stream_metrics_count_exactly(nginx, kafka, make_topic):
    topic = make_topic(1)
    ng = start(nginx, kafka, topic)

    t = dict(thread_id="t-a")
    msgs = [
        ds.event("GRAPH_START", sequence=1, **t),
        ds.event("NODE_START", sequence=2, **t),
        ds.event("NODE_END", sequence=3, **t),
        ds.event(83, sequence=4, **t),                 # NODE_WARNING
        ds.event(42, sequence=5, **t),                 # not a known type
        ds.event_batch([ds.event("NODE_PROGRESS"), ds.event("NODE_PROGRESS")],
                       sequence=6, **t),
        ds.token_chunk("a", sequence=7, **t),
        ds.token_chunk("b", sequence=8, **t),
        ds.tool_execution("search", "STARTED", duration_us=0, sequence=9,
                          **t),
        ds.tool_execution("search", "COMPLETED", duration_us=2500000,
                          sequence=10, **t),
        ds.tool_execution('we"ird\ntool', "FAILED", duration_us=40000,
                          sequence=11, **t),
        ds.metrics({"quality_score": 0.875, "tokens": 1234, "passed": True,
                    "latency_ms": 12, "label": "x"}, scope="eval",
                   sequence=12, **t),
        ds.metrics({"quality_score": 0.5}, scope="other", sequence=13, **t),
        # a fourth allow-listed series is over the cap of 3
        ds.metrics({"tokens": 7}, scope="other", sequence=14, **t),
        ds.error(severity="WARNING", sequence=15, **t),
        ds.error(severity="CRITICAL", sequence=16, **t),
        # sequence checks on another thread: gap (missing 2), duplicate,
        # reorder
        ds.token_chunk("s", thread_id="t-b", sequence=1),
        ds.token_chunk("s", thread_id="t-b", sequence=4),
        ds.token_chunk("s", thread_id="t-b", sequence=4),
        ds.token_chunk("s", thread_id="t-b", sequence=3),
    ]
    kafka.produce(topic, msgs, partition=0)
    key = ("websocket_kafka_messages_total",
           frozenset({("status", "success")}))
    net.wait_for(lambda: prom.scrape(ng.url("/metrics")).samples.get(key)
                 == len(msgs), 30, 0.2, "every message consumed")
    s = prom.scrape(ng.url("/metrics")).samples

    types = {dict(k)["type"]: v for k, v in
             series(s, "dashstream_stream_messages_total").items()}
    assert types == {"unspecified": 0, "event": 5, "state_diff": 0,
                     "token_chunk": 6, "tool_execution": 3,
                     "checkpoint": 0, "metrics": 3, "error": 2,
                     "event_batch": 1, "execution_trace": 0}

    events = {dict(k)["event_type"]: v for k, v in
              series(s, "dashstream_stream_events_total").items() if v}
    assert events == {"graph_start": 1, "node_start": 1, "node_end": 1,
                      "node_warning": 1, "unknown": 1, "node_progress": 2}

    assert value(s, "dashstream_stream_token_chunks_total") == 6

    tools = {(dict(k)["tool"], dict(k)["stage"]): v for k, v in
             series(s, "dashstream_stream_tool_executions_total").items()
             if v}
    assert tools == {("search", "started"): 1, ("search", "completed"): 1,
                     ('we"ird\ntool', "failed"): 1}
    assert 'tool="we\\"ird\\ntool"' in prom.scrape(ng.url("/metrics")).text

    assert value(s, "dashstream_stream_tool_duration_seconds_count") == 2
    assert value(s, "dashstream_stream_tool_duration_seconds_sum") == 2.54
    assert value(s, "dashstream_stream_tool_duration_seconds_bucket",
                 le="0.05") == 1
    assert value(s, "dashstream_stream_tool_duration_seconds_bucket",
                 le="1") == 1
    # a bucket holds what is <= its bound: 2.5 s is in le="2.5"
    assert value(s, "dashstream_stream_tool_duration_seconds_bucket",
                 le="2.5") == 2

    metric_values = {(dict(k)["scope"], dict(k)["name"]): v for k, v in
                     series(s, "dashstream_stream_metric_value").items()}
    assert metric_values == {("eval", "quality_score"): 0.875,
                             ("eval", "tokens"): 1234,
                             ("eval", "passed"): 1}
    assert value(s, "dashstream_stream_series_dropped_total") == 2

    severities = {dict(k)["severity"]: v for k, v in
                  series(s, "dashstream_stream_errors_total").items() if v}
    assert severities == {"warning": 1, "critical": 1}

    assert value(s, "dashstream_sequence_gaps_total") == 1
    assert value(s, "dashstream_sequence_missing_total") == 2
    assert value(s, "dashstream_sequence_duplicates_total") == 1
    assert value(s, "dashstream_sequence_reorders_total") == 1
    assert value(s, "dashstream_sequence_threads") == 2


def test_status_counts_subscribers_per_worker(nginx, kafka, make_topic):
    topic = make_topic(1)
    ng = start(nginx, kafka, topic, workers=2)
    clients = [wslib.Client(ng.ws_url("/ws?from=latest")) for _ in range(6)]
    try:
        def counted():
            st = json.loads(ng.get("/status")[2])
            workers = st["subscribers"]["workers"]
            return st if st["subscribers"]["total"] == 6 and \
                sum(w["subscribers"] for w in workers) == 6 else None
        st = net.wait_for(counted, 10, 0.1, "six subscribers counted")
        assert sorted(w["pid"] for w in st["subscribers"]["workers"]) == \
            sorted(ng.worker_pids())
        assert st["config"]["topic"] == topic
        assert st["consumer"]["running"] is True
    finally:
        for c in clients:
            c.close()
    net.wait_for(lambda: json.loads(ng.get("/status")[2])
                 ["subscribers"]["total"] == 0, 10, 0.1,
                 "subscribers counted out")


def shape(v, at=""):
    """{path: kind} of a JSON value: "a.b[].c" for dict keys, the first
    element of a list; kinds string, bool, number, null, {} or []."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            out.update(shape(x, at + "." + k))
        return out or {at: "{}"}
    if isinstance(v, list):
        return shape(v[0], at + "[]") if v else {at: "[]"}
    kind = "null" if v is None else "string" if isinstance(v, str) else \
        "bool" if isinstance(v, bool) else "number"
    return {at: kind}


def test_status_matches_its_documented_shape(nginx, kafka, make_topic):
    """docs/status.md shows a status document; the module's has exactly
    those fields (a field added, renamed or dropped on one side fails)."""
    doc = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "docs", "status.md")
    with open(doc) as f:
        text = f.read()
    example = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    topic = make_topic(1)
    ng = start(nginx, kafka, topic, workers=2)
    kafka.produce(topic, [ds.event(thread_id="t")])
    with wslib.Client(ng.ws_url("/ws?from=latest")):
        st = net.wait_for(lambda: (lambda s: s if s["partitions"] and
                                   s["subscribers"]["total"] == 1 and
                                   s["lag_poll"]["polls"] else None)(
                              json.loads(ng.get("/status")[2])),
                          20, 0.2, "a partition, a poll and a subscriber")
    got, want = shape(st), shape(example)
    assert (sorted(set(got) - set(want)), sorted(set(want) - set(got))) == \
        ([], []), "(in the module only, in docs/status.md only)"
    # a field may be null until it is known
    assert {k: (got[k], want[k]) for k in got
            if got[k] != want[k] and "null" not in (got[k], want[k])} == {}


def test_sequence_counters_go_on_across_a_reload(nginx, kafka, make_topic):
    """Each consumer has its own sequence table: the zone's counters used to
    be overwritten with the new table's totals, and went backwards."""
    topic = make_topic(1)
    ng = start(nginx, kafka, topic)

    def seq_counts():
        s = prom.scrape(ng.url("/metrics")).samples
        return [value(s, "dashstream_sequence_" + n + "_total")
                for n in ("gaps", "missing", "duplicates", "reorders")]

    def burst(thread):
        # a gap (missing 2), a duplicate, a reorder
        return [ds.token_chunk("s", thread_id=thread, sequence=n)
                for n in (1, 4, 4, 3)]

    kafka.produce(topic, burst("t-1") + burst("t-2"), partition=0)
    net.wait_for(lambda: seq_counts() == [2, 4, 2, 2], 30, 0.2,
                 "two threads counted")
    ng.reload()
    kafka.produce(topic, burst("t-3"), partition=0)
    net.wait_for(lambda: seq_counts() == [3, 6, 3, 3], 30, 0.2,
                 "a third thread counted after the reload")
