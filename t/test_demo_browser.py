"""`make demo` end to end in a real browser (issue 7).

tools/demo/run.sh starts the librdkafka mock cluster, the traffic generator
and nginx, as `make demo` does, on free ports.  Debian's headless Chromium
loads the live page; live messages arrive; the stream is cut twice (an
nginx reload, whose old workers close subscribers with 1001, and the page
closing its own socket) and the page resumes from its cursors.  Then the
(partition, offset) pairs the page applied are compared with the topic
read back from the mock cluster: every decodable message in the range,
none twice, in order.  Finally the script gets SIGINT, as from Ctrl-C, and
nothing it started may be left.
"""

import os
import subprocess

import pytest

from lib import browser, net
from lib.demo import REPO, Demo, bad_log_lines, read_topic

TOPIC = "dashstream-quality"


@pytest.fixture(scope="session")
def mock_cluster(workdir):
    """tools/demo/mock_cluster.c, built as the Makefile builds it."""
    out = os.path.join(workdir, "mock_cluster")
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-W", "-Wall",
                    "-Wpointer-arith", "-Wno-unused-parameter", "-Werror",
                    "-o", out,
                    os.path.join(REPO, "tools", "demo", "mock_cluster.c"),
                    "-lrdkafka", "-lpthread"], check=True, timeout=120)
    return out


def page_state(page):
    return page.evaluate("window.dashDemo.state()")


def wait_page(page, pred, timeout, what):
    last = {}

    def check():
        last["s"] = s = page_state(page)
        return pred(s)
    try:
        net.wait_for(check, timeout, 0.2, what)
    except TimeoutError as e:
        raise AssertionError("%s; page state: %s" % (e, last.get("s")))
    return last["s"]


@pytest.mark.timeout(120)
def test_live_page_resumes_without_gaps(module, mock_cluster, workdir):
    if not browser.available():
        pytest.skip("chromium is not installed (tools/install-deps.sh test)")
    demo = Demo(workdir, module, mock_cluster)
    b = browser.Browser(workdir)
    try:
        demo.start()
        b.start()
        page = b.page()
        page.navigate(demo.urls["page"] + "?record=1")

        # live messages arrive, decoded, with status and metrics polled
        s = wait_page(page, lambda s: s["replayCompletes"] >= 1
                      and s["received"] >= 40 and s["statusLoaded"]
                      and s["metricsLoaded"], 20, "live messages")
        assert s["state"] == "open" and s["connects"] == 1
        assert s["lastReplay"]["mode"] == "latest"
        assert s["activeThreads"] >= 1
        assert {"event", "token_chunk", "tool_execution"} <= set(s["kinds"])

        # cut 1: nginx reload; the old workers close subscribers with 1001
        before = s["received"]
        subprocess.run(demo.nginx_cmd("-s", "reload"), check=True,
                       timeout=30)
        s = wait_page(page, lambda s: s["replayCompletes"] >= 2
                      and s["received"] >= before + 40, 30,
                      "the stream to resume after the reload")
        assert s["connects"] == 2
        assert s["lastClose"].startswith("1001"), s["lastClose"]
        assert s["lastReplay"]["mode"] == "cursor"
        assert s["lastReplay"]["complete"] is True, s["lastReplay"]

        # cut 2: the page drops its own socket and stays away 2 s, so the
        # server has messages to replay from its ring
        before = s["received"]
        page.evaluate("window.dashDemo.drop(2000)")
        s = wait_page(page, lambda s: s["replayCompletes"] >= 3
                      and s["received"] >= before + 40, 20,
                      "the stream to resume after the page dropped it")
        assert s["connects"] == 3
        assert s["lastClose"].startswith("1000"), s["lastClose"]
        assert s["lastReplay"]["mode"] == "cursor"
        assert s["lastReplay"]["complete"] is True, s["lastReplay"]
        assert s["lastReplay"]["totalReplayed"] >= 20, s["lastReplay"]

        # the page's own counters, also as the DOM shows them
        assert (s["gaps"], s["duplicates"], s["stale"], s["serverGaps"],
                s["undecodable"], s["protocolErrors"]) == (0, 0, 0, 0, 0, 0)
        # the page renders four times a second
        dom = net.wait_for(lambda: (lambda d: int(d["replayComplete"]) >= 3
                                    and d)(page.evaluate(
                                        "Object.assign({}, "
                                        "document.body.dataset)")),
                           3, 0.1, "the page to render")
        assert dom["gaps"] == "0" and dom["duplicates"] == "0"
        assert int(dom["received"]) >= s["received"]
        assert page.evaluate("document.getElementById('gaps').textContent"
                             " + '/' + document.getElementById("
                             "'duplicates').textContent") == "0/0"
        assert page.exceptions() == []

        # exact: every decodable message in the range the page covered,
        # once, in Kafka order; the malformed ones only were left out
        offsets = page.evaluate("window.dashDemo.offsets()")
        ranges = {int(p): (v[0], v[-1]) for p, v in offsets.items()}
        assert len(ranges) >= 2, offsets.keys()
        topic = read_topic({"bootstrap.servers": demo.brokers}, TOPIC,
                           ranges)
        print("page state: %s" % s)
        print("offsets per partition: %s" % {p: (len(v), v[0], v[-1])
                                             for p, v in offsets.items()})
        print("malformed in range: %d" % sum(
            bad for v in topic.values() for _, bad, _ in v))
        for p, got in offsets.items():
            want = [o for o, bad, _ in topic[int(p)] if not bad]
            assert got == want, "partition %s: page %d, topic %d" % (
                p, len(got), len(want))

        assert bad_log_lines(demo.error_log()) == []
    finally:
        b.stop()
        rc, left = demo.interrupt()
    # Ctrl-C: run.sh stops everything and exits 130
    assert left == [], left
    assert rc == 130, demo.output()
    assert "demo: stopped" in demo.output()
