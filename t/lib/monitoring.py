"""The monitoring assets (monitoring/alert_rules.yml, the Grafana
dashboard) and the check that they name only what the module emits.

    cat = Catalog.from_exposition(scrape_text)
    problems = check_assets(load_rules(), load_dashboard(), cat)

A problem is a string naming the asset, the expression and what is wrong:
a metric the module does not emit, a label it does not put on that metric,
a label value it never uses (for `=`/`!=` matchers on the module's own
labels), a grouping label no referenced series has, an unknown function.
Prometheus's own series (`up`) and the target labels it adds (job,
instance, and any others the scrape config sets) are known; so are the
outputs of the recording rules, with the labels their expressions keep.
"""

import json
import os
import re

import yaml

from . import promql

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "monitoring", "alert_rules.yml")
RULE_TESTS = os.path.join(ROOT, "monitoring", "tests")
PROMETHEUS_YML = os.path.join(ROOT, "monitoring", "prometheus.yml")
KUBERNETES = os.path.join(ROOT, "monitoring", "kubernetes")
GENERATOR = os.path.join(ROOT, "tools", "monitoring", "generate.py")
DASHBOARD = os.path.join(ROOT, "grafana", "dashboards",
                         "streaming_metrics_dashboard.json")
PROVISIONING = os.path.join(ROOT, "grafana", "provisioning")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")

TARGET_LABELS = frozenset({"job", "instance"})
# series Prometheus makes for every target; only target labels on them
PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds",
                            "scrape_samples_scraped",
                            "scrape_samples_post_metric_relabeling",
                            "scrape_series_added"})
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"),
            "summary": ("_sum", "_count")}
# what the dashboard's template variables stand for when its queries are
# read as PromQL
DASHBOARD_VARIABLES = {"job": "dashstream", "instance": ".*",
                       "topic": ".*", "datasource": "prometheus"}

_TYPE = re.compile(r"^# TYPE (\S+) (\S+)\s*$")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+")
_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class Catalog:
    """Series names the module emits -> {label name: {values}}."""

    def __init__(self, series=None, types=None):
        self.series = series or {}
        self.types = types or {}

    @classmethod
    def from_exposition(cls, text):
        series, types = {}, {}
        for line in text.splitlines():
            m = _TYPE.match(line)
            if m:
                fam, typ = m.group(1), m.group(2)
                types[fam] = typ
                names = [fam + s for s in SUFFIXES.get(typ, ("",))]
                for name in names:
                    series.setdefault(name, {})
                continue
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            if not m:
                raise ValueError("unreadable exposition line %r" % line)
            labels = series.setdefault(m.group(1), {})
            for lab, val in _PAIR.findall(m.group(2) or ""):
                labels.setdefault(lab, set()).add(
                    re.sub(r"\\(.)", lambda x: {"n": "\n"}.get(
                        x.group(1), x.group(1)), val))
        return cls(series, types)

    def __contains__(self, name):
        return name in self.series

    def labels(self, name):
        return set(self.series.get(name, {}))

    def values(self, name, label):
        return self.series.get(name, {}).get(label, set())


def load_rules(path=RULES):
    with open(path) as f:
        return yaml.safe_load(f)


def load_dashboard(path=DASHBOARD):
    with open(path) as f:
        return json.load(f)


def rules_of(doc):
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            yield g.get("name"), r


def alerts_of(doc):
    return [r for _, r in rules_of(doc) if "alert" in r]


def recordings_of(doc):
    return [r for _, r in rules_of(doc) if "record" in r]


def panels_of(dash):
    """Every panel, those nested in collapsed rows included."""
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def dashboard_queries(dash):
    """[(where, PromQL)] of every panel target and label_values() template
    variable, with Grafana's macros and variables substituted; variables
    without a PromQL selector yield nothing."""
    out = []
    for p in panels_of(dash):
        for t in p.get("targets", []) or []:
            if t.get("expr"):
                out.append(("panel %s %r target %s" % (p.get("id"),
                                                       p.get("title"),
                                                       t.get("refId")),
                            promql.grafana_expr(t["expr"],
                                                DASHBOARD_VARIABLES)))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        lv = promql.grafana_variable_query(q or "")
        if lv is None:
            out.append(("variable %s" % v.get("name"),
                        promql.grafana_expr(q, DASHBOARD_VARIABLES)))
        elif lv[0]:
            out.append(("variable %s" % v.get("name"),
                        promql.grafana_expr(lv[0], DASHBOARD_VARIABLES)))
    return out


def dashboard_variable_labels(dash):
    """[(where, PromQL selector or None, label)] of label_values()
    variables."""
    out = []
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        lv = promql.grafana_variable_query(q or "") \
            if v.get("type") == "query" else None
        if lv:
            sel = promql.grafana_expr(lv[0], DASHBOARD_VARIABLES) \
                if lv[0] else None
            out.append(("variable %s" % v.get("name"), sel, lv[1]))
    return out


class Checker:
    def __init__(self, catalog, target_labels=TARGET_LABELS):
        self.catalog = catalog
        self.target = set(target_labels)
        self.recorded = {}          # recording rule output -> labels

    def labels_of(self, name):
        """Label names a series may have, or None if it is unknown."""
        if name in PROMETHEUS_OWN:
            return set(self.target)
        if name in self.catalog:
            return self.catalog.labels(name) | self.target
        if name in self.recorded:
            return set(self.recorded[name])
        return None

    def check(self, where, expr):
        try:
            refs = promql.references(expr)
        except promql.PromQLError as e:
            return ["%s: %s" % (where, e)]
        problems, available = [], set(self.target)
        for sel in refs.selectors:
            labels = self.labels_of(sel.name)
            if labels is None:
                problems.append("%s: metric %s is not emitted by the module"
                                " (nor recorded by a rule): %s"
                                % (where, sel.name, _short(expr)))
                continue
            available |= labels
            for m in sel.matchers:
                if m.label not in labels:
                    problems.append("%s: %s has no label %s: %s"
                                    % (where, sel.name, m.label,
                                       _short(expr)))
                    continue
                problems += self._value(where, sel.name, m, expr)
        # an unknown metric's labels are unknown: say only that it is
        for kw, lab in refs.grouping if not problems else ():
            if lab not in available:
                problems.append("%s: %s (%s): no series in the expression"
                                " has label %s: %s"
                                % (where, kw, lab, lab, _short(expr)))
        return problems

    def _value(self, where, name, m, expr):
        if m.op not in ("=", "!=") or "$" in m.value or m.value == "" \
                or name not in self.catalog \
                or m.label not in self.catalog.labels(name):
            return []
        values = self.catalog.values(name, m.label)
        if m.value in values:
            return []
        return ["%s: %s{%s=%r}: the module emits only %s: %s"
                % (where, name, m.label, m.value, sorted(values),
                   _short(expr))]

    def record(self, rule):
        """Labels a recording rule's output keeps (an over-estimate: what
        its inputs have, narrowed by `by`, minus `without` and the le of
        histogram_quantile), plus the rule's own labels."""
        refs = promql.references(rule["expr"])
        labels = set(self.target)
        for sel in refs.selectors:
            labels |= self.labels_of(sel.name) or set()
        by = {lab for kw, lab in refs.grouping if kw == "by"}
        if by:
            labels = by
        labels -= {lab for kw, lab in refs.grouping if kw == "without"}
        if "histogram_quantile" in refs.functions:
            labels.discard("le")
        labels |= set(rule.get("labels") or {})
        self.recorded[rule["record"]] = labels


def check_assets(rules_doc, dashboard, catalog, target_labels=TARGET_LABELS):
    """Problems (strings) of every rule and dashboard query; [] if all
    refer to what the catalog has."""
    ck = Checker(catalog, target_labels)
    problems = []
    for rule in recordings_of(rules_doc):
        found = ck.check("recording rule %s" % rule["record"], rule["expr"])
        if not found:
            ck.record(rule)
        problems += found
    for rule in alerts_of(rules_doc):
        problems += ck.check("alert %s" % rule["alert"], rule["expr"])
    if dashboard is not None:
        for where, expr in dashboard_queries(dashboard):
            problems += ck.check("dashboard " + where, expr)
        for where, sel, label in dashboard_variable_labels(dashboard):
            if sel is None:
                continue
            names = promql.references(sel).metrics
            if not any(label in (ck.labels_of(n) or ()) for n in names):
                problems.append("dashboard %s: label_values(..., %s): no"
                                " series of %s has it"
                                % (where, label, sorted(names)))
    return problems


def _short(expr):
    return " ".join(expr.split())[:160]


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def runbook_sections(path=RUNBOOK):
    """{anchor: section text} of the runbook's level-2 headings."""
    with open(path) as f:
        text = f.read()
    out = {}
    parts = re.split(r"(?m)^## (.+)$", text)
    for i in range(1, len(parts), 2):
        out[github_anchor(parts[i])] = parts[i + 1]
    return out
