"""Monitoring assets against the live module (issue 6): every alert,
recording rule and dashboard query names only metrics, labels and label
values the module emits, checked on a scrape of a module that consumed real
traffic (good and bad messages, a websocket subscriber); then a real
Prometheus scrapes that module with the rules loaded, and what it computes
must match the module's own numbers.

The PromQL reading is lib/promql.py, the check lib/monitoring.py; the unit
tests at the top prove the check rejects what it must.
"""

import copy
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from lib import dashstream as ds
from lib import monitoring as mon
from lib import net, procs, prom
from lib import ws as wslib

HTTP = """
dashstream_brokers {brokers};
dashstream_topic {topic};
dashstream_group_id g-{topic};
dashstream_offset_reset earliest;
dashstream_zone dashstream 32m;
dashstream_lag_interval 1s;
dashstream_lag_timeout 500ms;
dashstream_stream_metrics quality_score;
"""

SERVER = """
location /ws { dashstream_websocket; }
location /metrics { dashstream_metrics; }
location /dashstream/status { dashstream_status; }
"""

# a small exposition in the module's format, for the unit tests
EXPOSITION = """\
# HELP websocket_kafka_consumer_lag Lag.
# TYPE websocket_kafka_consumer_lag gauge
websocket_kafka_consumer_lag{topic="t",partition="0"} 5
# HELP websocket_kafka_messages_total Messages.
# TYPE websocket_kafka_messages_total counter
websocket_kafka_messages_total{status="success"} 7
websocket_kafka_messages_total{status="error"} 1
# HELP websocket_e2e_latency_ms Latency.
# TYPE websocket_e2e_latency_ms histogram
websocket_e2e_latency_ms_bucket{le="1"} 0
websocket_e2e_latency_ms_bucket{le="+Inf"} 3
websocket_e2e_latency_ms_sum 9
websocket_e2e_latency_ms_count 3
# HELP dashstream_stream_tool_executions_total Tools.
# TYPE dashstream_stream_tool_executions_total counter
"""


def rules_doc(*rules):
    return {"groups": [{"name": "g", "rules": list(rules)}]}


def dashboard_doc(*exprs, variable=None):
    return {"panels": [{"id": i + 1, "title": "p", "targets": [
        {"refId": "A", "expr": e}]} for i, e in enumerate(exprs)],
        "templating": {"list": [{"name": "v", "type": "query",
                                 "query": {"query": variable}}]
                       if variable else []}}


GOOD = [
    "websocket_kafka_consumer_lag > 0",
    'max without (partition) (websocket_kafka_consumer_lag{topic!=""})',
    'rate(websocket_kafka_messages_total{status="error"}[5m])',
    "histogram_quantile(0.99, sum by (le, instance) "
    "(rate(websocket_e2e_latency_ms_bucket[5m])))",
    'up{job="dashstream"} == 0',
    'absent(up{job="dashstream"})',
    "websocket_e2e_latency_ms_count > 0 and on (job, instance) "
    "websocket_e2e_latency_ms_sum > 0",
]

BAD = [
    # a metric renamed in the module, or misspelt in a rule
    ("websocket_kafka_consumer_lag_messages > 1000",
     "metric websocket_kafka_consumer_lag_messages is not emitted"),
    ("rate(websocket_kafka_errors_by_type_total[5m]) > 0",
     "metric websocket_kafka_errors_by_type_total is not emitted"),
    # a histogram has no series under its bare family name
    ("websocket_e2e_latency_ms > 1000",
     "metric websocket_e2e_latency_ms is not emitted"),
    ('websocket_kafka_consumer_lag{partiton="0"}',
     "websocket_kafka_consumer_lag has no label partiton"),
    ('rate(websocket_kafka_messages_total{status="failed"}[5m])',
     "the module emits only ['error', 'success']"),
    ("sum by (tpoic) (websocket_kafka_consumer_lag)",
     "by (tpoic): no series in the expression has label tpoic"),
    ("max without (partition) (websocket_kafka_messages_total)",
     "without (partition): no series in the expression has label"),
    ("rat(websocket_kafka_messages_total[5m])", "unknown function rat"),
    # a family the module declares without samples: labels unverifiable
    ('dashstream_stream_tool_executions_total{tool="search"}',
     "has no label tool"),
    ("instance:websocket_kafka_messages:rate5m > 0",
     "metric instance:websocket_kafka_messages:rate5m is not emitted"),
    ("websocket_kafka_consumer_lag{topic=\"t\"", "unclosed '{'"),
]


def test_monitoring_drift_check_accepts_what_exists():
    cat = mon.Catalog.from_exposition(EXPOSITION)
    alerts = [{"alert": "A%d" % i, "expr": e} for i, e in enumerate(GOOD)]
    assert mon.check_assets(rules_doc(*alerts), dashboard_doc(*GOOD),
                            cat) == []


@pytest.mark.parametrize("expr,why", BAD, ids=[b[1][:40] for b in BAD])
def test_monitoring_drift_check_rejects(expr, why):
    """An alert, a recording rule or a dashboard query naming what the
    module does not emit is rejected, with the reason."""
    cat = mon.Catalog.from_exposition(EXPOSITION)
    for rules, dash in ((rules_doc({"alert": "X", "expr": expr}), None),
                        (rules_doc({"record": "x:y:z", "expr": expr}), None),
                        (rules_doc(), dashboard_doc(
                            expr.replace("[5m]", "[$__rate_interval]")))):
        problems = mon.check_assets(rules, dash, cat)
        assert len(problems) == 1, problems
        assert why in problems[0], problems


def test_monitoring_drift_check_recording_rules():
    """Recording-rule outputs are known metrics, with the labels their
    expressions keep: `without (partition)` removes partition."""
    cat = mon.Catalog.from_exposition(EXPOSITION)
    rec = {"record": "instance_topic:lag:max",
           "expr": "max without (partition) (websocket_kafka_consumer_lag)"}
    ok = {"alert": "A", "expr": 'instance_topic:lag:max{topic="x"} > 1'}
    bad = {"alert": "B", "expr": 'instance_topic:lag:max{partition="0"} > 1'}
    assert mon.check_assets(rules_doc(rec, ok), None, cat) == []
    (p,) = mon.check_assets(rules_doc(rec, bad), None, cat)
    assert "instance_topic:lag:max has no label partition" in p
    # the dashboard's template variables are checked too
    dash = dashboard_doc(variable="label_values(websocket_kafka_consumer_lag"
                                  "{job=\"$job\"}, partiton)")
    (p,) = mon.check_assets(rules_doc(), dash, cat)
    assert "label_values(..., partiton)" in p


def test_monitoring_drift_check_the_real_assets_can_fail():
    """The committed rules and dashboard, checked against an exposition
    that lacks one metric they use, are rejected where they use it."""
    cat = mon.Catalog.from_exposition(EXPOSITION)
    problems = mon.check_assets(mon.load_rules(), mon.load_dashboard(), cat)
    text = "\n".join(problems)
    assert "recording rule instance:dashstream_ring_fill:ratio: metric " \
        "dashstream_ring_used_bytes is not emitted" in text
    assert "alert DashStreamBrokerDisconnected: metric " \
        "websocket_kafka_broker_connected is not emitted" in text
    assert "dashboard panel 67 'Versions' target A: metric " \
        "dashstream_build_info is not emitted" in text


# ---- the live module


def start(nginx, kafka, topic):
    ng = nginx(module=True, workers=2,
               http=HTTP.format(brokers=kafka.bootstrap, topic=topic),
               server=SERVER)
    ng.start()
    return ng


def samples(ng):
    return prom.scrape(ng.url("/metrics")).samples


def traffic():
    """(good messages, bad values): every message type the stream metrics
    count, a Metrics value on the allow-list, two thread sequences."""
    good = [ds.event("GRAPH_START", thread_id="t-1", sequence=1),
            ds.event("NODE_START", thread_id="t-1", sequence=2),
            ds.token_chunk("hi", thread_id="t-1", sequence=3),
            ds.tool_execution("search", stage="STARTED", thread_id="t-1",
                              sequence=4),
            ds.tool_execution("search", stage="COMPLETED",
                              duration_us=250000, thread_id="t-1",
                              sequence=5),
            ds.metrics({"quality_score": 0.875}, scope="eval",
                       thread_id="t-1", sequence=6),
            ds.error(severity="WARNING", thread_id="t-1", sequence=7),
            ds.event_batch([ds.event("NODE_END"), ds.event("GRAPH_END")],
                           thread_id="t-1", sequence=8)]
    good += [ds.event("NODE_PROGRESS", thread_id="t-2", sequence=i)
             for i in range(1, 13)]
    bad = [b"\x00\xff\xff\xff\xff", b"\x07not a dashstream frame"]
    return good, bad


def where_what(problem):
    """[where, what] of a "metric ... is not emitted" problem."""
    where, rest = problem.split(": metric ", 1)
    return [where, rest.split(": ", 1)[0]]


def field(doc, path):
    """Values at a dotted status path; "a[]" walks every element of a."""
    values = [doc]
    for part in path.split("."):
        nxt = []
        for v in values:
            if part.endswith("[]"):
                items = v[part[:-2]]
                assert isinstance(items, list) and items, path
                nxt += items
            else:
                assert isinstance(v, dict) and part in v, path
                nxt.append(v[part])
        values = nxt
    return values


def runbook_status_fields():
    out = set()
    with open(mon.RUNBOOK) as f:
        for line in f:
            if line.startswith("- Status: "):
                out |= set(re.findall(r"`([a-z_.\[\]]+)`", line))
    return out


class Prometheus:
    """Debian's /usr/bin/prometheus on a loopback port, stopped at exit."""

    def __init__(self, workdir, config):
        self.port = net.free_port()
        self.dir = workdir
        self.conf_path = os.path.join(workdir, "prometheus.yml")
        with open(self.conf_path, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        self.log_path = os.path.join(workdir, "prometheus.log")
        self.proc = None

    def start(self, timeout=30):
        log = open(self.log_path, "wb")
        try:
            self.proc = procs.spawn(
                ["prometheus", "--config.file=" + self.conf_path,
                 "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, tag="prometheus")
        finally:
            log.close()

        def ready():
            assert self.proc.poll() is None, self.log()
            try:
                with urllib.request.urlopen(
                        "http://%s:%d/-/ready" % (net.HOST, self.port),
                        timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        net.wait_for(ready, timeout, 0.1, "prometheus ready")

    def stop(self):
        if self.proc is not None:
            procs.stop(self.proc, signal.SIGTERM, timeout=15)
            self.proc = None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-3000:]

    def api(self, path, **params):
        url = "http://%s:%d/api/v1/%s" % (net.HOST, self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.loads(r.read().decode())
        except urllib.error.HTTPError as e:    # 400 for a bad query
            raise AssertionError("%s: %d %s" % (url, e.code, e.read()[:500]))
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr):
        """{frozenset(labels): value} of an instant vector."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return {frozenset(s["metric"].items()): float(s["value"][1])
                for s in data["result"]}


def prometheus_config(target, environment):
    """monitoring/prometheus.yml with the test's target, intervals of 1 s,
    no Alertmanager and the rule file by absolute path."""
    with open(mon.PROMETHEUS_YML) as f:
        conf = yaml.safe_load(f)
    conf["global"].update(scrape_interval="1s", scrape_timeout="1s",
                          evaluation_interval="1s")
    conf.pop("alerting")
    assert conf["rule_files"] == ["alert_rules.yml"]
    conf["rule_files"] = [mon.RULES]
    (job,) = conf["scrape_configs"]
    (sc,) = job["static_configs"]
    sc["targets"] = [target]
    sc["labels"] = {"environment": environment}
    return conf


def test_monitoring_assets_match_live_module(nginx, kafka, make_topic, module,
                                             tmp_path):
    topic = make_topic(2)
    make_topic(name=topic + "-dlq")     # bad messages are dead-lettered
    ng = start(nginx, kafka, topic)
    assigned = ("websocket_kafka_assigned_partitions",
                frozenset({("topic", topic)}))
    net.wait_for(lambda: samples(ng).get(assigned) == 2, 30, 0.1,
                 "2 partitions assigned")

    sub = wslib.Client(ng.ws_url("/ws"))
    sub.send_resume({}, from_="latest")
    assert sub.recv_json("replay_complete")["mode"] == "latest"

    good, bad = traffic()
    kafka.produce(topic, good + bad)
    ok = ("websocket_kafka_messages_total", frozenset({("status", "success")}))
    err = ("websocket_kafka_messages_total", frozenset({("status", "error")}))
    net.wait_for(lambda: (samples(ng).get(ok), samples(ng).get(err))
                 == (len(good), len(bad)), 30, 0.1, "all messages consumed")
    assert len(sub.recv_messages(len(good), timeout=30)) == len(good)

    # lag polled after the last message: lag series for both partitions
    polls = ("websocket_kafka_lag_poll_duration_seconds_count", frozenset())
    seen = samples(ng)[polls]
    net.wait_for(lambda: samples(ng)[polls] >= seen + 2, 15, 0.1,
                 "two lag polls")
    scrape = prom.scrape(ng.url("/metrics"))
    lag = prom.select(scrape.samples, "websocket_kafka_consumer_lag",
                      topic=topic)
    assert len(lag) == 2, lag

    # 1. names, labels and values of every rule and dashboard query
    cat = mon.Catalog.from_exposition(scrape.text)
    rules, dash = mon.load_rules(), mon.load_dashboard()
    assert mon.check_assets(rules, dash, cat) == []
    n_queries = len(mon.dashboard_queries(dash))
    assert n_queries >= 60

    # ... and a rename on either side is caught on this live scrape
    renamed = copy.deepcopy(rules)
    rec = renamed["groups"][0]["rules"][0]
    rec["expr"] = rec["expr"].replace("websocket_kafka_consumer_lag",
                                      "websocket_kafka_consumer_lag_total")
    problems = mon.check_assets(renamed, dash, cat)
    assert problems[0] == (
        "recording rule instance_topic:websocket_kafka_consumer_lag:max: "
        "metric websocket_kafka_consumer_lag_total is not emitted by the "
        "module (nor recorded by a rule): max without (partition) "
        "(websocket_kafka_consumer_lag_total)")
    # and so what uses that rule's output is rejected as well
    users = sorted(p.split(":")[0] for p in problems[1:])
    assert users == [
        "alert DashStreamConsumerLagCritical",
        "alert DashStreamConsumerLagHigh",
        "dashboard panel 31 'Max lag per topic' target A",
        "dashboard panel 33 'Lag vs drops vs latency' target A",
        "dashboard panel 6 'Max consumer lag' target A"], problems
    gone = mon.Catalog.from_exposition(
        scrape.text.replace("websocket_kafka_lag_offset_age_seconds",
                            "websocket_kafka_lag_offset_age_secs"))
    problems = mon.check_assets(rules, dash, gone)
    age = "websocket_kafka_lag_offset_age_seconds"
    assert [where_what(p) for p in problems] == [
        ["recording rule instance_topic:%s:max" % age,
         "%s is not emitted by the module (nor recorded by a rule)" % age],
        ["alert DashStreamPartitionStale",
         "%s is not emitted by the module (nor recorded by a rule)" % age],
        ["dashboard panel 34 'Offset age per partition' target A",
         "%s is not emitted by the module (nor recorded by a rule)" % age],
        ["dashboard panel 34 'Offset age per partition' target B",
         "instance_topic:%s:max is not emitted by the module (nor recorded"
         " by a rule)" % age]], problems

    # 2. the status fields the runbook sends operators to exist
    status, _, body = ng.get("/dashstream/status")
    assert status == 200
    doc = json.loads(body)
    fields = runbook_status_fields()
    assert len(fields) >= 20
    for path in sorted(fields):
        field(doc, path)

    # 3. a real Prometheus with the rules, scraping this module
    pr = Prometheus(str(tmp_path), prometheus_config(
        "%s:%d" % (net.HOST, ng.port), "drift-test"))
    r = subprocess.run(["promtool", "check", "config", pr.conf_path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    assert r.returncode == 0, r.stdout
    try:
        pr.start()
        check_prometheus(pr, ng, kafka, topic, sub, rules, dash, len(good),
                         len(bad))
    finally:
        pr.stop()
    sub.close()


def check_prometheus(pr, ng, kafka, topic, sub, rules, dash, n_good, n_bad):
    target = {("job", "dashstream"), ("instance", "%s:%d" % (net.HOST,
                                                            ng.port)),
              ("environment", "drift-test")}

    def labelled(name, **labels):
        return frozenset(target | {("__name__", name)} | set(labels.items()))

    net.wait_for(lambda: pr.query('up{job="dashstream"}')
                 == {labelled("up"): 1.0}, 20, 0.2, "the module scraped")

    # every rule loaded and evaluated without error
    names = {r.get("alert") or r.get("record")
             for _, r in mon.rules_of(rules)}

    def evaluated():
        got = {}
        for g in pr.api("rules")["groups"]:
            for r in g["rules"]:
                got[r["name"]] = (r["health"], r.get("lastError", ""))
        return got if set(got) == names and all(
            h == ("ok", "") for h in got.values()) else None
    health = net.wait_for(evaluated, 20, 0.2, "every rule evaluated ok")
    assert len(health) == len(names)

    # traffic while Prometheus watches, so that rates are rates
    more = [ds.event("NODE_END", thread_id="t-3", sequence=i)
            for i in range(1, 11)]
    kafka.produce(topic, more)
    n_good += len(more)
    ok = ("websocket_kafka_messages_total", frozenset({("status", "success")}))
    net.wait_for(lambda: samples(ng).get(ok) == n_good, 30, 0.1,
                 "the second batch consumed")
    assert len(sub.recv_messages(len(more), timeout=30)) == len(more)
    polls = ("websocket_kafka_lag_poll_duration_seconds_count", frozenset())
    seen = samples(ng)[polls]
    net.wait_for(lambda: samples(ng)[polls] >= seen + 2, 15, 0.1,
                 "two lag polls")

    # what Prometheus has is what the module says, exactly
    def same(expr, of_module):
        """Prometheus's instant vector for expr == of_module(fresh module
        samples), once Prometheus has scraped and evaluated since."""
        last = {}

        def match():
            last["want"] = of_module(samples(ng))
            last["got"] = pr.query(expr)
            return last["got"] == last["want"]
        try:
            net.wait_for(match, 10, 0.2, expr)
        except TimeoutError:
            assert last["got"] == last["want"], expr
        return last["got"]

    got = same("websocket_kafka_messages_total", lambda m: {
        labelled("websocket_kafka_messages_total", status=st): v
        for (n, lab), v in m.items()
        if n == "websocket_kafka_messages_total"
        for st in [dict(lab)["status"]]})
    assert sorted(got.values()) == [float(n_bad), float(n_good)]

    got = same("instance:dashstream_ring_fill:ratio", lambda m: {
        labelled("instance:dashstream_ring_fill:ratio"):
        m[("dashstream_ring_used_bytes", frozenset())]
        / m[("dashstream_ring_capacity_bytes", frozenset())]})
    assert 0 < list(got.values())[0] < 1

    name = "instance_topic:websocket_kafka_consumer_lag:max"
    same(name, lambda m: {labelled(name, topic=topic): max(prom.select(
        m, "websocket_kafka_consumer_lag", topic=topic).values())})

    same("websocket_kafka_assigned_partitions", lambda m: {
        labelled("websocket_kafka_assigned_partitions", topic=topic):
        m[("websocket_kafka_assigned_partitions",
           frozenset({("topic", topic)}))]})
    same("dashstream_ring_records", lambda m: {
        labelled("dashstream_ring_records"):
        m[("dashstream_ring_records", frozenset())]})
    assert pr.query("dashstream_ring_records") == {
        labelled("dashstream_ring_records"): float(n_good)}

    # every recording rule has an output (rates need two scrapes); every
    # dashboard query is valid PromQL for Prometheus and returns series
    def missing():
        return [r["record"] for r in mon.recordings_of(rules)
                if not pr.query(r["record"])]
    try:
        net.wait_for(lambda: not missing(), 15, 0.5, "recording outputs")
    except TimeoutError:
        assert missing() == []

    def empty():
        return [where for where, expr in mon.dashboard_queries(dash)
                if not pr.query(expr)]
    try:
        net.wait_for(lambda: not empty(), 15, 0.5, "dashboard data")
    except TimeoutError:
        assert empty() == []

    # a healthy module that consumes what is produced raises no alert,
    # not even a pending one
    def alerts():
        return [(a["labels"]["alertname"], a["state"])
                for a in pr.api("alerts")["alerts"]]
    try:
        net.wait_for(lambda: alerts() == [], 10, 0.5, "no alerts")
    except TimeoutError:
        assert alerts() == []

