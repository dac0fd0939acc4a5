"""Consumer lag that stays true through rebalances and partition growth, and
metrics that are the same whichever worker answers (issue 4)."""

import json
import time

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions

from lib import dashstream as ds
from lib import net, prom

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id {group};
dashstream_mode {mode};
dashstream_offset_reset earliest;
dashstream_zone dashstream 16m;
dashstream_lag_interval 1s;
dashstream_lag_timeout 500ms;
dashstream_session_timeout 6s;
{extra}
"""

SERVER = """
location /metrics {
    dashstream_metrics;
    add_header X-Worker-Pid $pid always;
}
location /status { dashstream_status; }
location /ws { dashstream_websocket; }
"""


def start(nginx, kafka, topic, group=None, mode="group", workers=2,
          extra=""):
    ng = nginx(module=True, workers=workers, server=SERVER,
               http=HTTP.format(brokers=kafka.bootstrap, topic=topic,
                                group=group or "g-" + topic, mode=mode,
                                extra=extra))
    ng.start()
    return ng


def scrape(ng):
    return prom.scrape(ng.url("/metrics"))


def lag_partitions(samples, topic):
    """{partition: lag} of the lag series present in one scrape."""
    out = {}
    for (name, labels), v in samples.items():
        if name == "websocket_kafka_consumer_lag":
            d = dict(labels)
            assert d["topic"] == topic
            out[int(d["partition"])] = v
    return out


def assigned(samples, topic):
    return samples.get(("websocket_kafka_assigned_partitions",
                        frozenset({("topic", topic)})))


def status(ng):
    return json.loads(ng.get("/status")[2])


def wait_split(a, b, topic, n, timeout=60):
    """Both instances own a non-empty share, together all n partitions,
    disjoint, and each one's lag series are exactly its own share."""
    def split():
        sa, sb = scrape(a).samples, scrape(b).samples
        la, lb = lag_partitions(sa, topic), lag_partitions(sb, topic)
        if not la or not lb or set(la) & set(lb) \
                or set(la) | set(lb) != set(range(n)):
            return None
        if assigned(sa, topic) != len(la) or assigned(sb, topic) != len(lb):
            return None
        return la, lb
    return net.wait_for(split, timeout, 0.2, "the partitions split")


def wait_all(ng, topic, n, timeout=60):
    def all_back():
        s = scrape(ng).samples
        la = lag_partitions(s, topic)
        return la if set(la) == set(range(n)) and \
            assigned(s, topic) == n else None
    return net.wait_for(all_back, timeout, 0.2, "all partitions back")


def rebalance_round(nginx, kafka, make_topic, extra):
    topic = make_topic(4)
    group = "g-rebalance-" + topic
    a = start(nginx, kafka, topic, group=group, extra=extra)
    wait_all(a, topic, 4)
    kafka.produce(topic, [ds.event(node_id="n%d" % i, sequence=i)
                          for i in range(40)])

    b = start(nginx, kafka, topic, group=group, extra=extra)
    joined = time.monotonic()
    la, lb = wait_split(a, b, topic, 4)
    # the status page agrees with the metrics
    sa = status(a)
    assert sorted(p["partition"] for p in sa["partitions"]
                  if p["assigned"]) == sorted(la)

    b.stop()
    left = time.monotonic()
    wait_all(a, topic, 4)
    return joined, left


def test_lag_follows_an_eager_rebalance(nginx, kafka, make_topic):
    rebalance_round(nginx, kafka, make_topic, extra="")


def test_lag_follows_a_cooperative_rebalance(nginx, kafka, make_topic):
    rebalance_round(nginx, kafka, make_topic, extra=(
        "dashstream_kafka_property partition.assignment.strategy "
        "cooperative-sticky;"))


def test_lag_counts_what_is_produced_and_then_consumed(nginx, kafka,
                                                       make_topic):
    topic = make_topic(2)
    ng = start(nginx, kafka, topic)
    wait_all(ng, topic, 2)
    kafka.produce(topic, [ds.token_chunk(text="x%d" % i)
                          for i in range(300)])

    def per_partition(s, name):
        return {int(dict(l)["partition"]): v for (n, l), v in s.items()
                if n == name}

    def caught_up():
        s = scrape(ng).samples
        lags = lag_partitions(s, topic)
        ends = per_partition(s, "dashstream_kafka_high_watermark")
        ok = s[("websocket_kafka_messages_total",
                frozenset({("status", "success")}))] == 300
        # an end offset polled before the messages were produced would
        # make any position look caught up: wait for one that has them
        return ok and sum(ends.values()) == 300 and lags \
            and all(v == 0 for v in lags.values()) and s
    s = net.wait_for(caught_up, 30, 0.2, "the consumer caught up")
    # position and end offset agree with what was produced
    assert per_partition(s, "dashstream_kafka_high_watermark") == \
        per_partition(s, "dashstream_kafka_position")
    ages = [v for (n, l), v in s.items()
            if n == "websocket_kafka_lag_offset_age_seconds"]
    assert ages == [0, 0]


def test_broadcast_follows_partition_growth(nginx, kafka, make_topic):
    topic = make_topic(2)
    ng = start(nginx, kafka, topic, mode="broadcast")
    wait_all(ng, topic, 2)
    admin = AdminClient(kafka.conf())
    for f in admin.create_partitions([NewPartitions(topic, 3)]).values():
        f.result(30)
    wait_all(ng, topic, 3)
    produced = kafka.produce(topic, [ds.event(node_id="new")], partition=2)
    net.wait_for(lambda: status(ng)["partitions"][2]["messages"] == 1, 20,
                 0.2, "a message of the new partition consumed")
    assert produced[0].partition == 2


def test_scrapes_agree_across_workers(nginx, kafka, make_topic):
    topic = make_topic(3)
    ng = start(nginx, kafka, topic, workers=4)
    wait_all(ng, topic, 3)
    n = 500
    kafka.produce(topic, [ds.event(node_id="w%d" % i, sequence=i + 1,
                                   thread_id="t%d" % (i % 9))
                          for i in range(n)])
    key = ("websocket_kafka_messages_total",
           frozenset({("status", "success")}))
    net.wait_for(lambda: scrape(ng).samples[key] == n, 30, 0.2,
                 "%d messages consumed" % n)

    by_worker = {}
    previous = None
    for _ in range(20):
        r = scrape(ng)
        pid = r.headers["x-worker-pid"]
        # everything but wall-clock dependent gauges must be identical
        stable = {k: v for k, v in r.samples.items()
                  if "age_seconds" not in k[0]
                  and "lag_poll" not in k[0]
                  and "stall" not in k[0]}
        by_worker.setdefault(pid, stable)
        assert stable == by_worker[pid] or previous is None or \
            all(stable[k] >= previous.get(k, 0) for k in stable
                if k[0].endswith("_total"))
        assert stable[key] == n
        if previous is not None:
            for k, v in stable.items():
                if k[0].endswith(("_total", "_count", "_bucket")):
                    assert v >= previous.get(k, 0), k
        previous = stable
    assert len(by_worker) >= 2, "all 20 scrapes were answered by one worker"
    values = list(by_worker.values())
    for other in values[1:]:
        assert {k: v for k, v in other.items() if k[0].endswith("_total")} \
            == {k: v for k, v in values[0].items()
                if k[0].endswith("_total")}


def test_transaction_markers_do_not_leave_a_lag_of_one(nginx, kafka,
                                                       make_topic):
    """A committed transaction ends with a marker the consumer is never
    given; the module must still read a caught-up partition as lag 0."""
    from confluent_kafka import Producer

    topic = make_topic(1)
    ng = start(nginx, kafka, topic,
               extra="dashstream_kafka_property isolation.level "
                     "read_committed;")
    wait_all(ng, topic, 1)

    p = Producer(kafka.conf(**{"transactional.id": "tx-" + topic}))
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, ds.encode(ds.event(node_id="tx%d" % i,
                                            sequence=i + 1)))
    p.commit_transaction(30)

    def settled():
        s = scrape(ng).samples
        end = s.get(("dashstream_kafka_high_watermark",
                     frozenset({("topic", topic), ("partition", "0")})))
        ok = s[("websocket_kafka_messages_total",
                frozenset({("status", "success")}))] == 5
        # 5 records and the commit marker: the end offset is 6
        return ok and end == 6 and s
    s = net.wait_for(settled, 30, 0.2, "5 records and the marker polled")
    net.wait_for(lambda: lag_partitions(scrape(ng).samples, topic) == {0: 0},
                 10, 0.2, "lag 0 past the marker")
    pos = scrape(ng).samples[("dashstream_kafka_position",
                              frozenset({("topic", topic),
                                         ("partition", "0")}))]
    assert pos == 6


@pytest.mark.parametrize("mode", ["group", "broadcast"])
def test_partitions_beyond_the_limit_are_told_not_hidden(nginx, kafka,
                                                         make_topic, mode):
    """A topic with more partitions than the zone serves (1,024): the
    status says how many are not served, the log says it once, and in group
    mode each message of such a partition is an error (counted, in the
    status), logged once per 10 s instead of once per message."""
    topic = make_topic(1030)
    ng = start(nginx, kafka, topic, mode=mode, workers=1)
    net.wait_for(lambda: status(ng)["consumer"]["topic_partitions"] == 1030,
                 60, 0.2, "metadata polled")
    st = status(ng)["consumer"]
    assert st["partitions_not_served"] == 6
    net.wait_for(lambda: status(ng)["consumer"]["assigned_partitions"]
                 == 1024, 60, 0.2, "1024 partitions assigned")
    produced = kafka.produce(topic, [ds.event(sequence=i) for i in range(5)],
                             partition=1029)
    kafka.produce(topic, [ds.event(sequence=9)], partition=3)
    net.wait_for(lambda: status(ng)["partitions"] and any(
        p["partition"] == 3 and p["last_written"] == 0
        for p in status(ng)["partitions"]), 30, 0.2, "partition 3 consumed")
    st = status(ng)["consumer"]
    if mode == "group":
        net.wait_for(lambda: status(ng)["consumer"]["messages"]["error"]
                     == 5, 30, 0.2, "5 errors")
        assert "partition 1029 is beyond the 1024 partitions" \
            in status(ng)["consumer"]["last_error"]
    else:
        time.sleep(1)
        assert st["messages"]["error"] == 0     # not read at all
    assert status(ng)["consumer"]["messages"]["success"] == 1
    log = ng.error_log_text()
    told = [line for line in log.splitlines()
            if 'topic "%s" has 1030 partitions' % topic in line]
    assert len(told) == 1, told
    skipped = [line for line in log.splitlines()
               if "is beyond the 1024 partitions" in line]
    assert len(skipped) == (1 if mode == "group" else 0), skipped
    assert len(produced) == 5
