"""Prometheus text exposition for tests: parse and `promtool check metrics`.

Every metrics response a test fetches must go through check(); scrape()
does both, so use it rather than fetching /metrics by hand.

promtool 2.42 (Debian 12) lints names and HELP but does not notice a family
split in two or a second TYPE line, so check() also enforces what DESIGN §6
asks of the format: one HELP and one TYPE per family, before its samples,
each family contiguous, no duplicate series.
"""

import collections
import http.client
import re
import subprocess
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families

from . import net

PROMTOOL = "promtool"

Scrape = collections.namedtuple("Scrape",
                                "text samples types content_type headers")


class PromtoolError(AssertionError):
    pass


# promtool's complaint about a name DESIGN §6 keeps for existing
# dashboards; pass it in allow= only where that name is the point
LEGACY_MS_LINT = "websocket_e2e_latency_ms metric names should not contain" \
    " abbreviated units"

# The one lint complaint the module's output is allowed: DESIGN.md section 6
# keeps the reference system's name websocket_e2e_latency_ms so that existing
# dashboards keep working, and promtool's linter dislikes the "_ms" unit.
# docs/metrics.md says so.  Everything else must be clean.
KNOWN_LINT = (LEGACY_MS_LINT,)

SUFFIXES = {"counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"),
            "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
            "info": ("_info",)}
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s")


def structure_problems(text):
    """What promtool lets through: HELP/TYPE count and order, families
    not contiguous, the same series twice.  Returns messages."""
    problems, seen, done = [], {}, set()
    types_, current = {}, None

    def family(name):
        for fam, typ in types_.items():
            if name == fam or (name.startswith(fam) and
                               name[len(fam):] in SUFFIXES.get(typ, ())):
                return fam
        return name
    series = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = re.match(r"^# (HELP|TYPE) (\S+)(?: (.*))?$", line)
        if m:
            kind, fam = m.group(1), m.group(2)
            if kind == "TYPE":
                types_[fam] = (m.group(3) or "").strip()
            key = (kind, fam)
            if key in seen:
                problems.append("line %d: second %s for %s (first on line"
                                " %d)" % (n, kind, fam, seen[key]))
            seen[key] = n
        elif line.startswith("#"):
            continue
        else:
            m = SAMPLE.match(line)
            if not m:
                continue        # promtool reports unparsable lines
            fam = family(m.group(1))
            if (m.group(1), m.group(2)) in series:
                problems.append("line %d: duplicate series %s%s"
                                % (n, m.group(1), m.group(2) or ""))
            series.add((m.group(1), m.group(2)))
        if fam != current:
            if fam in done:
                problems.append("line %d: family %s is not contiguous"
                                % (n, fam))
            if current is not None:
                done.add(current)
            current = fam
    return problems


def check(text, allow=KNOWN_LINT, timeout=30):
    """Run `promtool check metrics` on text and the structure checks above;
    raise PromtoolError on any complaint (non-zero exit or any output, lint
    warnings included) except lines listed verbatim in allow."""
    if isinstance(text, bytes):
        text = text.decode()
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = [line for line in r.stdout.decode(errors="replace").splitlines()
           if line.strip() and line.strip() not in allow]
    # exit 3 is "lint problems", all of them printed: fine if all allowed
    if out or r.returncode not in (0, 3):
        raise PromtoolError("promtool check metrics (exit %d):\n%s"
                            % (r.returncode, "\n".join(out)))
    problems = structure_problems(text)
    if problems:
        raise PromtoolError("exposition format:\n%s" % "\n".join(problems))


def parse(text):
    """{(sample name, frozenset(label items)): value} of every sample."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            if key in out:
                raise AssertionError("duplicate sample %s%s"
                                     % (s.name, dict(s.labels)))
            out[key] = s.value
    return out


def types(text):
    """{family name: type} ("counter", "gauge", "histogram", ...)."""
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def value(samples, name, **labels):
    """The value of the sample name{labels} exactly, or None."""
    return samples.get((name, frozenset(labels.items())))


def select(samples, name, **labels):
    """{frozenset(labels): value} of samples named name whose labels
    include the given ones."""
    want = set(labels.items())
    return {lab: v for (n, lab), v in samples.items()
            if n == name and want <= lab}


def scrape(url, timeout=10, allow=KNOWN_LINT):
    """GET url, check() the body, parse it: Scrape(text, samples, types,
    content_type, headers), header names in lower case.  Raises on a
    non-200 status."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname or net.HOST, u.port or 80,
                                   timeout=timeout)
    try:
        c.request("GET", (u.path or "/") + ("?" + u.query if u.query else ""))
        r = c.getresponse()
        body = r.read()
        ctype = r.getheader("Content-Type", "")
        headers = {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()
    if r.status != 200:
        raise AssertionError("GET %s: %d %r" % (url, r.status, body[:500]))
    text = body.decode()
    check(text, allow)
    return Scrape(text, parse(text), types(text), ctype, headers)
