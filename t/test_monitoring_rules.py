"""Monitoring assets without a running module (issue 6): the rules pass
promtool's checks and unit tests, every alert is tested both ways, the
generated Kubernetes files are exactly what the generator makes, the
example Prometheus config is valid, the dashboard and provisioning files
are well formed, and every alert has its runbook section.

t/test_monitoring_drift.py checks the same assets against a live module.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from lib import monitoring as mon
from lib import promql

PROMTOOL = "promtool"
SEVERITIES = {"warning", "critical"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
DS_REF = {"type": "prometheus", "uid": "${datasource}"}


def run(argv, timeout=60, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout,
                          universal_newlines=True, **kw)


@pytest.fixture(scope="module")
def rules():
    return mon.load_rules()


@pytest.fixture(scope="module")
def dashboard():
    return mon.load_dashboard()


def rule_test_files():
    files = sorted(glob.glob(os.path.join(mon.RULE_TESTS, "*.yml")))
    assert files, "no promtool unit tests in %s" % mon.RULE_TESTS
    return files


# ---- promtool


def test_monitoring_promtool_check_rules(rules):
    n = sum(1 for _ in mon.rules_of(rules))
    r = run([PROMTOOL, "check", "rules", mon.RULES])
    assert r.returncode == 0, r.stdout
    assert [line for line in r.stdout.splitlines() if line.strip()] == [
        "Checking %s" % mon.RULES,
        "  SUCCESS: %d rules found" % n], r.stdout


def test_monitoring_promtool_unit_tests():
    files = rule_test_files()
    r = run([PROMTOOL, "test", "rules"] + files, timeout=120)
    assert r.returncode == 0, r.stdout
    assert "FAILED" not in r.stdout, r.stdout
    assert r.stdout.count("  SUCCESS") == len(files), r.stdout


def alert_cases():
    """({alert: firing cases}, {alert: quiet cases}) of the unit tests."""
    fires, quiet = {}, {}
    for path in rule_test_files():
        with open(path) as f:
            doc = yaml.safe_load(f)
        assert doc["rule_files"] == ["../alert_rules.yml"], path
        for case in doc["tests"]:
            for t in case.get("alert_rule_test", []):
                bucket = fires if t.get("exp_alerts") else quiet
                bucket.setdefault(t["alertname"], []).append(
                    (os.path.basename(path), case.get("name")))
    return fires, quiet


def test_monitoring_every_alert_tested_both_ways(rules):
    """Each alert has a case where it fires and one where it stays quiet,
    and the tests name no alert that does not exist."""
    defined = {r["alert"] for r in mon.alerts_of(rules)}
    fires, quiet = alert_cases()
    assert set(fires) == defined
    assert set(quiet) == defined


def test_monitoring_rebalance_and_stall_cases(rules):
    """The two cases the audit is about are among the unit tests: a
    revoked partition that must not page, a stalled consumer that must."""
    fires, quiet = alert_cases()
    revoked = ("lag_test.yml", "partition revoked by a rebalance")
    stalled = ("lag_test.yml", "stalled consumer, lag rising")
    for name in ("DashStreamConsumerLagHigh", "DashStreamConsumerLagCritical",
                 "DashStreamConsumerStalled", "DashStreamPartitionStale",
                 "DashStreamLagSeriesMissing"):
        assert revoked in quiet[name], name
    for name in ("DashStreamConsumerStalled", "DashStreamConsumerLagHigh",
                 "DashStreamConsumerLagCritical", "DashStreamPartitionStale"):
        assert stalled in fires[name], name
    crit = {r["alert"]: r["labels"]["severity"] for r in mon.alerts_of(rules)}
    assert crit["DashStreamConsumerStalled"] == "critical"


def test_monitoring_alert_fields(rules):
    anchors = mon.runbook_sections()
    names = []
    for r in mon.alerts_of(rules):
        name = r["alert"]
        names.append(name)
        assert re.match(r"^DashStream[A-Z][A-Za-z0-9]+$", name), name
        assert DURATION.match(str(r.get("for", ""))), name
        assert r["labels"]["severity"] in SEVERITIES, name
        assert r["labels"]["service"] == "dashstream", name
        ann = r["annotations"]
        assert set(ann) == {"summary", "description", "runbook_url"}, name
        assert "{{" in ann["summary"] + ann["description"], \
            "%s: annotations without templated values" % name
        anchor = mon.github_anchor(name)
        assert ann["runbook_url"] == "docs/runbook.md#" + anchor, name
        assert anchor in anchors, "%s: no runbook section" % name
        promql.references(r["expr"])
    assert len(names) == len(set(names))
    # every runbook section is an alert's
    assert set(anchors) == {mon.github_anchor(n) for n in names}


def test_monitoring_recording_rule_names(rules):
    """level:metric:operation, each output used by an alert or the
    dashboard (no dead recording rules)."""
    recs = [r["record"] for r in mon.recordings_of(rules)]
    assert len(recs) == len(set(recs))
    used = set()
    for expr in ([r["expr"] for r in mon.alerts_of(rules)]
                 + [r["expr"] for r in mon.recordings_of(rules)]
                 + [e for _, e in mon.dashboard_queries(
                     mon.load_dashboard())]):
        used |= promql.references(expr).metrics
    for rec in recs:
        assert re.match(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$", rec), rec
        assert rec in used, "%s is used nowhere" % rec


# ---- generated Kubernetes files


def test_monitoring_generated_files_are_current(tmp_path):
    """Regenerate into a temporary directory: the committed files must be
    byte for byte the same, and nothing else may be in their directory."""
    r = run([sys.executable, mon.GENERATOR, "--out", str(tmp_path)])
    assert r.returncode == 0, r.stdout
    made = sorted(os.listdir(str(tmp_path)))
    assert made == ["configmap.yaml", "prometheusrule.yaml"]
    assert sorted(os.listdir(mon.KUBERNETES)) == made
    for name in made:
        with open(os.path.join(str(tmp_path), name), "rb") as f:
            want = f.read()
        with open(os.path.join(mon.KUBERNETES, name), "rb") as f:
            have = f.read()
        assert have == want, ("monitoring/kubernetes/%s differs from what "
                              "tools/monitoring/generate.py makes: run "
                              "`make monitoring`" % name)
    r = run([sys.executable, mon.GENERATOR, "--check"])
    assert (r.returncode, r.stdout) == (0, "")


def test_monitoring_generator_catches_drift(tmp_path):
    """A hand edit of a generated file, or a source edit without
    regenerating, fails the check."""
    gen = tmp_path / "k8s"
    shutil.copytree(mon.KUBERNETES, str(gen))
    path = gen / "prometheusrule.yaml"
    path.write_text(path.read_text().replace("for: 10m", "for: 15m", 1))
    r = run([sys.executable, mon.GENERATOR, "--check", "--out", str(gen)])
    assert r.returncode == 1, r.stdout
    assert "-          for: 15m\n+          for: 10m\n" in r.stdout, r.stdout
    assert "prometheusrule.yaml (committed)" in r.stdout

    src = tmp_path / "alert_rules.yml"
    with open(mon.RULES) as f:
        src.write_text(f.read().replace("> 1000\n", "> 2000\n", 1))
    r = run([sys.executable, mon.GENERATOR, "--check", "--source", str(src)])
    assert r.returncode == 1
    assert "> 2000" in r.stdout and "configmap.yaml" in r.stdout

    bad = tmp_path / "bad.yml"
    bad.write_text("groups: []  \n")
    r = run([sys.executable, mon.GENERATOR, "--check", "--source", str(bad)])
    assert r.returncode == 2 and "trailing blank" in r.stdout


def test_monitoring_generated_content(rules):
    with open(os.path.join(mon.KUBERNETES, "prometheusrule.yaml")) as f:
        pr = yaml.safe_load(f)
    assert pr["apiVersion"] == "monitoring.coreos.com/v1"
    assert pr["kind"] == "PrometheusRule"
    assert pr["metadata"]["name"] == "ngx-dashstream"
    assert pr["spec"]["groups"] == rules["groups"]
    with open(os.path.join(mon.KUBERNETES, "configmap.yaml")) as f:
        cm = yaml.safe_load(f)
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    with open(mon.RULES) as f:
        assert cm["data"] == {"alert_rules.yml": f.read()}


# ---- Prometheus config


def test_monitoring_prometheus_config():
    r = run([PROMTOOL, "check", "config", mon.PROMETHEUS_YML])
    assert r.returncode == 0, r.stdout
    assert "SUCCESS: 1 rule files found" in r.stdout, r.stdout
    with open(mon.PROMETHEUS_YML) as f:
        conf = yaml.safe_load(f)
    assert conf["rule_files"] == ["alert_rules.yml"]
    jobs = [j for j in conf["scrape_configs"] if j["job_name"] == "dashstream"]
    assert len(jobs) == 1 and jobs[0]["metrics_path"] == "/metrics"


# ---- Grafana


def test_monitoring_dashboard_structure(dashboard):
    d = dashboard
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    assert d["uid"] == "ngx-dashstream-streaming" and d["title"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["datasource"]
    assert (ds["type"], ds["query"]) == ("datasource", "prometheus")
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == DS_REF, v["name"]

    panels = list(mon.panels_of(d))
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells = set()
    for p in panels:
        assert p.get("title"), "panel %s has no title" % p["id"]
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["id"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, "panel %s overlaps" % p["id"]
                cells.add((x, y))
        if p["type"] == "row":
            assert not p.get("targets")
            continue
        assert p["datasource"] == DS_REF, p["id"]
        assert p.get("description"), p["id"]
        targets = p["targets"]
        assert targets, "panel %s has no query" % p["id"]
        assert len({t["refId"] for t in targets}) == len(targets)
        for t in targets:
            assert t["datasource"] == DS_REF, (p["id"], t["refId"])
            assert t["expr"].strip(), (p["id"], t["refId"])
            promql.references(promql.grafana_expr(
                t["expr"], mon.DASHBOARD_VARIABLES))


def test_monitoring_dashboard_panels(dashboard):
    """The panels issue 6 asks for, by their (stable) ids."""
    titles = {p["id"]: p["title"] for p in mon.panels_of(dashboard)}
    want = {2: "Consumer running", 3: "Brokers connected",
            8: "Consumer, broker and target state",
            11: "Kafka messages consumed by status",
            21: "Decode errors by type", 23: "Kafka client errors by type",
            24: "Dead-letter sends and failures",
            25: "Dead-letter backlog and fail-closed stall",
            31: "Max lag per topic", 32: "Lag per partition",
            33: "Lag vs drops vs latency", 34: "Offset age per partition",
            36: "Lag poll health", 41: "Connected subscribers",
            42: "End-to-end latency", 43: "Dropped messages by reason",
            51: "Ring fill"}
    for pid, title in want.items():
        assert titles.get(pid) == title, pid
    exprs = {p["id"]: " ".join(t["expr"] for t in p.get("targets", []))
             for p in mon.panels_of(dashboard)}
    assert "websocket_dropped_messages_total" in exprs[33]
    assert "websocket_e2e_latency_ms" in exprs[33]
    assert "consumer_lag" in exprs[33]


def test_monitoring_runbook_panel_references(dashboard):
    """Every "**Title** (panel N)" in the runbook names a panel that
    exists with that title."""
    with open(mon.RUNBOOK) as f:
        text = f.read()
    titles = {p["id"]: p["title"] for p in mon.panels_of(dashboard)}
    refs = re.findall(r"\*\*([^*]+)\*\* \(panel (\d+)\)", text)
    assert len(refs) >= 20
    for title, pid in refs:
        assert titles.get(int(pid)) == title, (title, pid)
    sections = mon.runbook_sections()
    for anchor, body in sections.items():
        for part in ("**Means.**", "**First look.**", "**Likely causes.**",
                     "**Actions.**"):
            assert part in body, (anchor, part)
        assert "(panel " in body, anchor
        assert "- Status: `" in body or "Prometheus" in body, anchor


def test_monitoring_provisioning():
    with open(os.path.join(mon.PROVISIONING, "dashboards",
                           "dashstream.yaml")) as f:
        prov = yaml.safe_load(f)
    assert prov["apiVersion"] == 1
    (p,) = prov["providers"]
    assert p["type"] == "file" and p["options"]["path"].startswith("/")
    with open(os.path.join(mon.PROVISIONING, "datasources",
                           "prometheus.yaml")) as f:
        ds = yaml.safe_load(f)
    (d,) = ds["datasources"]
    assert d["type"] == "prometheus" and d["url"].startswith("http")
    # the file Grafana loads is plain JSON
    with open(mon.DASHBOARD) as f:
        json.load(f)
