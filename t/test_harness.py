"""Self-tests of the harness: each helper does what tests rely on, and each
check it offers can fail."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import confluent_kafka
import pytest
import websocket
import websockets
import zstandard
from confluent_kafka import KafkaError, KafkaException, Producer

from lib import dashstream as ds
from lib import net, prom, procs, ws
from lib.nginx import Nginx

T_DIR = os.path.dirname(os.path.abspath(__file__))


def mixed_messages(n):
    makers = [
        lambda i: ds.event("NODE_START", node_id="n%d" % i,
                           attributes={"k": b"\x00\xff"}),
        lambda i: ds.token_chunk("tok %d" % i, chunk_index=i),
        lambda i: ds.tool_execution("search", "FAILED", error="boom"),
        lambda i: ds.metrics({"quality.score": 0.5 + i, "tokens": i}),
        lambda i: ds.error("E_X", "failed %d" % i, context={"a": "b"}),
        lambda i: ds.event_batch([ds.event("NODE_END"), ds.event("NODE_END")]),
    ]
    out = []
    for i in range(n):
        m = makers[i % len(makers)](i)
        h = ds.header(m)
        h.thread_id = "thread-%d" % (i % 5)
        h.sequence = i // 5
        out.append(m)
    return out


@pytest.mark.parametrize("framing", ds.FRAMINGS)
def test_produce_consume_exact(kafka, make_topic, framing):
    topic = make_topic(3)
    msgs = mixed_messages(60)
    sizes = [n for n in (1, 3, 300, 70000)
             if (framing, n) not in (("zstd", 1), ("zstd", 3),
                                     ("legacy", 1), ("legacy", 3))]
    sized = [ds.message_of_size(n, framing) for n in sizes]
    produced = kafka.produce(topic, msgs + sized, framing=framing)
    assert len(produced) == len(msgs) + len(sized)
    assert None not in produced

    # keyed by thread_id, so one thread stays in one partition, in order
    for m, p in zip(msgs, produced):
        assert p.key == ds.thread_id(m).encode()
        assert p.value == ds.encode(m, framing)
        assert ds.decode(p.value) == (framing, m)
    by_thread = {}
    for m, p in zip(msgs, produced):
        by_thread.setdefault(ds.thread_id(m), set()).add(p.partition)
    assert all(len(parts) == 1 for parts in by_thread.values())
    if framing == "zstd":
        for m, p in zip(msgs, produced):
            assert zstandard.frame_content_size(p.value[1:]) \
                == len(m.SerializeToString())
    for n, p in zip(sizes, produced[len(msgs):]):
        assert len(p.value) == n

    got = kafka.consume(topic, len(produced), timeout=30)
    want = sorted((p.partition, p.offset, p.key, p.value) for p in produced)
    assert sorted((c.partition, c.offset, c.key, c.value) for c in got) \
        == want
    for part in range(3):
        offs = [c.offset for c in got if c.partition == part]
        assert offs == list(range(len(offs)))


def test_message_of_size_edges():
    assert ds.message_of_size(1) == b"\x00"
    assert ds.message_of_size(0, "legacy") == b""
    for framing in ds.FRAMINGS:
        for n in (20, 127, 128, 129, 200, 16383, 16384, 16385, 100000):
            v = ds.message_of_size(n, framing)
            assert len(v) == n
            assert ds.decode(v)[0] == framing
    with pytest.raises(ValueError):
        ds.message_of_size(2)


def test_broker_runs_in_own_process_group(kafka):
    """The broker runs in its own process group, registered for cleanup."""
    if not kafka.broker:
        pytest.skip("external broker")
    pgid = kafka.broker.proc.pid
    assert os.getpgid(pgid) == pgid
    assert pgid in procs._live
    assert procs.group_pids(pgid)


PLAIN_SERVER = """
location / { return 200 "hello\\n"; }
location = /metrics { alias {{prefix}}/metrics.txt; default_type text/plain; }
"""


def test_nginx_start_reload_stop(nginx):
    ng = nginx(workers=4, server=PLAIN_SERVER)
    assert ng.check_config().returncode == 0
    ng.start()
    assert ng.get("/")[0] == 200 and ng.get("/")[2] == b"hello\n"
    first = ng.worker_pids()
    assert len(first) == 4
    assert os.getpgid(ng.master_pid) == ng.master_pid

    ng.reload(workers=2)
    second = ng.worker_pids()
    assert len(second) == 2 and not set(first) & set(second)
    assert ng.get("/")[0] == 200
    assert "reconfiguring" in ng.error_log_text()

    master = ng.master_pid
    assert ng.stop() == 0
    assert procs.group_pids(master) == []
    assert ng.log_problems() == []
    assert "[notice]" in ng.error_log_text()    # info level by default


def test_nginx_t_reports_file_and_line(nginx):
    ng = nginx(server="location / { return 200; }\nbogus_directive on;")
    r = ng.check_config()
    line = ng.line_of("bogus_directive")
    assert r.returncode == 1
    assert 'nginx: [emerg] unknown directive "bogus_directive" in %s:%d' \
        % (ng.conf_path, line) in r.stderr.splitlines()
    assert r.stderr.splitlines()[-1] == \
        "nginx: configuration file %s test failed" % ng.conf_path
    # the test saw the [emerg] through -t: teardown does not count it
    assert ng.log_problems() == []


@pytest.mark.parametrize("via_signal", [False, True])
def test_nginx_failed_reload_is_reported(nginx, via_signal):
    """A bad config on reload: `nginx -s reload` refuses it; a SIGHUP makes
    the master log [emerg] and keep its workers.  Either way the test gets
    the exact message and the old workers keep serving."""
    ng = nginx(workers=2, server=PLAIN_SERVER)
    ng.start()
    before = ng.worker_pids()
    errs = ng.reload(expect_failure=True, via_signal=via_signal,
                     http="no_such_thing 1;")
    assert errs == ['unknown directive "no_such_thing" in %s:%d'
                    % (ng.conf_path, ng.line_of("no_such_thing"))]
    assert ng.worker_pids() == before
    assert ng.get("/")[0] == 200


def _alert_by_killing_a_worker(ng):
    ng.start()
    victim = ng.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    net.wait_for(lambda: "exited on signal 9" in ng.error_log_text(), 10,
                 what="master's [alert]")
    net.wait_for(lambda: len(ng.worker_pids()) == 2 and
                 victim not in ng.worker_pids(), 10, what="respawn")
    return victim


def test_error_log_check_catches_alert(workdir):
    """nginx itself logs "[alert] ... worker process N exited on signal 9"
    when a worker is killed: the check must flag it, unless allowed."""
    ng = Nginx(os.path.join(workdir, "alert"), workers=2,
               server=PLAIN_SERVER)
    try:
        victim = _alert_by_killing_a_worker(ng)
    finally:
        ng.stop()
    bad = ng.log_problems()
    assert len(bad) == 1
    assert "[alert]" in bad[0] and \
        "worker process %d exited on signal 9" % victim in bad[0]
    with pytest.raises(AssertionError, match="exited on signal 9"):
        ng.check_log()
    ng.allow_log(r"worker process \d+ exited on signal 9")
    assert ng.log_problems() == []
    ng.check_log()


INNER_TEST = '''
import os, signal
from lib import net

def test_inner(nginx):
    ng = nginx(workers=2, server='location / { return 200; }')
    ng.start()
    os.kill(ng.worker_pids()[0], signal.SIGKILL)
    net.wait_for(lambda: "exited on signal 9" in ng.error_log_text(), 10)
{allow}
'''


@pytest.mark.parametrize("allow", [False, True])
def test_fixture_fails_test_on_alert(workdir, allow):
    """End to end through the plugin: an otherwise passing test whose
    nginx logged an [alert] is reported as FAILED (not passed, not an
    error), and passes when it declares the alert."""
    d = os.path.join(workdir, "inner-%s" % allow)
    os.makedirs(d)
    with open(os.path.join(d, "test_inner.py"), "w") as f:
        f.write(INNER_TEST.replace("{allow}", "    ng.allow_log('signal 9')"
                                   if allow else ""))
    env = dict(os.environ, PYTHONPATH=T_DIR)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "lib.plugin", "-p",
         "no:cacheprovider", "-q", "--rootdir", d, "-c", os.devnull,
         os.path.join(d, "test_inner.py")],
        cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=120)
    out = r.stdout.decode()
    last = out.strip().splitlines()[-1]
    if allow:
        assert r.returncode == 0 and re.match(r"1 passed in ", last), out
    else:
        assert r.returncode == 1 and re.match(r"1 failed in ", last), out
        assert "\nFAILED test_inner.py::test_inner" in out, out
        assert "nginx error log has [alert]/[emerg]/[crit] lines the test" \
            " did not allow" in out, out
        assert re.search(r"\[alert\] \d+#\d+: worker process \d+ exited on"
                         r" signal 9", out), out


def test_raw_ws_gets_non_101_from_plain_nginx(nginx):
    ng = nginx(server=PLAIN_SERVER)
    ng.start()
    with ws.RawWS(ng.port) as c:
        status, reason, headers = c.upgrade("/")
        assert (status, reason) == (200, "OK")
        assert c.read_body(headers) == b"hello\n"
    with ws.RawWS(ng.port) as c:
        c.send(b"GARBAGE\r\n\r\n")
        assert c.read_http_head()[0] == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        ws.Client(ng.ws_url("/"))
    assert e.value.status_code == 200


BROKEN_EXPOSITION = [
    # no HELP, counter without _total
    "# TYPE requests counter\nrequests 1\n",
    # not the text format at all
    "requests{code=200} 1\n",
    # a family split in two (promtool 2.42 alone lets this through)
    "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\n"
    "# HELP b B.\n# TYPE b gauge\nb 1\na_total{x=\"2\"} 1\n",
    # a second TYPE line
    "# HELP b B.\n# TYPE b gauge\nb 1\n# TYPE b gauge\n",
    # the same series twice (promtool alone lets this through)
    "# HELP b B.\n# TYPE b gauge\nb{x=\"1\"} 1\nb{x=\"1\"} 2\n",
    # a unit abbreviation in a name
    "# HELP lat_ms L.\n# TYPE lat_ms gauge\nlat_ms 1\n",
]
GOOD_EXPOSITION = """\
# HELP websocket_kafka_messages_total Kafka messages by status.
# TYPE websocket_kafka_messages_total counter
websocket_kafka_messages_total{status="success"} 12
websocket_kafka_messages_total{status="error"} 0
# HELP websocket_e2e_latency_seconds End-to-end latency.
# TYPE websocket_e2e_latency_seconds histogram
websocket_e2e_latency_seconds_bucket{le="0.01"} 3
websocket_e2e_latency_seconds_bucket{le="+Inf"} 4
websocket_e2e_latency_seconds_sum 0.042
websocket_e2e_latency_seconds_count 4
"""
LEGACY_MS = GOOD_EXPOSITION.replace("_seconds", "_ms")


@pytest.mark.parametrize("text", BROKEN_EXPOSITION)
def test_promtool_rejects_broken_text(text):
    with pytest.raises(prom.PromtoolError):
        prom.check(text)


def test_promtool_legacy_ms_name_is_the_only_allowed_lint():
    """DESIGN §6 keeps websocket_e2e_latency_ms for old dashboards, but
    promtool lints the "_ms": that exact line is allowed by default, and
    nothing else."""
    with pytest.raises(prom.PromtoolError, match="abbreviated units"):
        prom.check(LEGACY_MS, allow=())
    assert prom.KNOWN_LINT == (prom.LEGACY_MS_LINT,)
    prom.check(LEGACY_MS)
    with pytest.raises(prom.PromtoolError, match="lat_ms"):
        prom.check(LEGACY_MS + BROKEN_EXPOSITION[-1],
                   allow=(prom.LEGACY_MS_LINT,))


def test_prom_parse_and_scrape(nginx):
    prom.check(GOOD_EXPOSITION)
    s = prom.parse(GOOD_EXPOSITION)
    assert s == {
        ("websocket_kafka_messages_total",
         frozenset({("status", "success")})): 12.0,
        ("websocket_kafka_messages_total",
         frozenset({("status", "error")})): 0.0,
        ("websocket_e2e_latency_seconds_bucket",
         frozenset({("le", "0.01")})): 3.0,
        ("websocket_e2e_latency_seconds_bucket",
         frozenset({("le", "+Inf")})): 4.0,
        ("websocket_e2e_latency_seconds_sum", frozenset()): 0.042,
        ("websocket_e2e_latency_seconds_count", frozenset()): 4.0,
    }
    assert prom.value(s, "websocket_kafka_messages_total",
                      status="success") == 12.0

    ng = nginx(server=PLAIN_SERVER)
    with open(os.path.join(ng.prefix, "metrics.txt"), "w") as f:
        f.write(GOOD_EXPOSITION)
    ng.start()
    r = prom.scrape(ng.url("/metrics"))
    assert r.samples == s
    assert r.types == {"websocket_kafka_messages": "counter",
                       "websocket_e2e_latency_seconds": "histogram"}
    with open(os.path.join(ng.prefix, "metrics.txt"), "w") as f:
        f.write(BROKEN_EXPOSITION[0])
    with pytest.raises(prom.PromtoolError):
        prom.scrape(ng.url("/metrics"))


class FakeDashFlow:
    """A stand-in DashFlow server (websockets) to test the clients before
    the module exists: sends cursor+binary pairs, answers resume with
    replay_complete, closes with 1001 on request."""

    def __init__(self, records):
        self.records = records
        self.port = net.free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def handler(self, conn, path=None):
        for p, o, data in self.records:
            await conn.send(json.dumps({"type": "cursor", "partition": p,
                                        "offset": str(o)}))
            await conn.send(data)
        async for text in conn:
            req = json.loads(text)
            if req["type"] == "resume":
                await conn.send(json.dumps({"type": "replay_complete",
                                            "got": req}))
            elif req["type"] == "bye":
                await conn.close(1001, "going away")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            websockets.serve(self.handler, net.HOST, self.port))
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        async def shut():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_ws_clients_on_fake_dashflow():
    records = [(i % 2, i // 2, ds.message_of_size(10 + i)) for i in range(20)]
    with FakeDashFlow(records) as srv:
        url = "ws://127.0.0.1:%d/stream" % srv.port
        with ws.Client(url) as c:
            got = c.recv_messages(20, timeout=10)
            assert [tuple(m) for m in got] == records
            c.send_resume({0: 9, 1: 9}, from_="cursor")
            rc = c.recv_json("replay_complete", timeout=10)
            assert rc["got"]["lastOffsetsByPartition"] == {"0": "9",
                                                           "1": "9"}
            c.send_json({"type": "bye"})
            assert c.wait_close(10) == (1001, "going away")
        with ws.Many(url, 5) as many:
            per_client = many.collect(20, timeout=20)
        assert [[tuple(m) for m in msgs] for msgs in per_client] \
            == [records] * 5
        with ws.RawWS(srv.port) as r:
            status, _, headers = r.upgrade("/stream")
            assert status == 101 and headers["upgrade"] == "websocket"
            f = r.read_frame()
            assert f.opcode == ws.OP_TEXT and json.loads(f.payload)[
                "type"] == "cursor"
            r.send_close(4001, b"bye")
            assert r.read_close() == (4001, "bye")


def test_ws_client_detects_broken_pairing():
    bad = ws._Stream("dashflow")
    with pytest.raises(ws.ProtocolError):
        bad.binary(b"no cursor before me")
    bad.text('{"type":"cursor","partition":0,"offset":"1"}')
    with pytest.raises(ws.ProtocolError):
        bad.text('{"type":"cursor","partition":0,"offset":"2"}')
    with pytest.raises(ws.ProtocolError):
        ws._Stream("dashflow").text('{"type":"cursor","partition":0,'
                                    '"offset":1}')


def test_raw_frame_encoding():
    f = ws.RawWS.frame(ws.OP_TEXT, b"hi", mask_key=b"\x01\x02\x03\x04")
    assert f == b"\x81\x82\x01\x02\x03\x04" + bytes([ord("h") ^ 1,
                                                      ord("i") ^ 2])
    assert ws.RawWS.frame(ws.OP_BINARY, b"x" * 200, mask=False)[:4] \
        == b"\x82\x7e\x00\xc8"
    assert ws.RawWS.frame(ws.OP_BINARY, b"", mask=False, length=1 << 20,
                          fin=False, rsv=4) == \
        b"\x42\x7f" + (1 << 20).to_bytes(8, "big")


def _sasl(kafka):
    try:
        return kafka.via("SASL_PLAINTEXT")
    except KeyError:
        pytest.skip("external broker without our SASL listener")


def _auth_error(cluster, timeout=30):
    """The first error librdkafka reports for a client of cluster, or None
    once it got metadata without one."""
    errors = []
    p = Producer(cluster.conf(error_cb=errors.append))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p.poll(0.2)
        if errors:
            return errors[0]
        try:
            if p.list_topics(timeout=1).brokers:
                return None
        except KafkaException:
            pass
    raise TimeoutError("no SASL outcome in %ds" % timeout)


def test_kafka_sasl_plain_listener(kafka, make_topic):
    """The session broker's SASL listener with PLAIN: the right password
    produces and consumes, a wrong one is refused."""
    sasl = _sasl(kafka)
    assert sasl.bootstrap != kafka.bootstrap
    assert sasl.client_conf["sasl.mechanism"] == "PLAIN"
    topic = make_topic(1)
    produced = sasl.produce(topic, [ds.event(), ds.token_chunk()])
    got = sasl.consume(topic, 2)
    assert [(c.offset, c.value) for c in got] == \
        [(p.offset, p.value) for p in produced]
    err = _auth_error(sasl.via("SASL_PLAINTEXT", **{"sasl.password": "no"}))
    assert err is not None and err.code() == KafkaError._AUTHENTICATION, err


@pytest.mark.xfail(
    confluent_kafka.libversion()[1] < 0x020601ff, strict=True,
    reason="librdkafka < 2.6.1 repeats the SCRAM client nonce; Kafka 4.x"
    " rejects it (librdkafka#4895)")
@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_sasl_scram_listener(kafka, mech):
    """SCRAM logins of the SASL listener (the users are created when the
    broker is formatted)."""
    sasl = _sasl(kafka)
    assert _auth_error(sasl.via("SASL_PLAINTEXT", **{
        "sasl.mechanism": mech})) is None
