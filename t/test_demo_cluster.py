"""`make demo BROKERS=host:port` on a real cluster (issue 7).

tools/demo/run.sh runs against the harness's Apache Kafka broker, on a
topic the test created with a few partitions, as an operator creates it:
the generator's messages reach a websocket subscriber (DashFlow protocol)
byte for byte as the topic holds them, and show in /metrics; then SIGINT,
as from Ctrl-C, must leave nothing running.  The same through the SASL
(PLAIN) and the TLS listener with the KAFKA_* settings, which go to nginx
and to the generator's producer alike.  A missing topic, a wrong password
and bad settings stop the demo at once with the reason.
"""

import json
import os
import re
import urllib.request

import pytest

from lib import net, prom
from lib import dashstream as ds
from lib import ws as wslib
from lib.demo import Demo, bad_log_lines, read_topic, \
    session_members
from lib.plugin import SASL_USER, listener

# generator.py's thread ids: tenant-graph-run-number
THREAD_ID = re.compile(r"^(acme|globex|initech|umbrella)-"
                       r"(support|research|code)-[0-9a-f]{4}-\d{4}$")
STOPPED = re.compile(r"generator: stopped after (\d+) messages \(\d+ "
                     r"malformed\), 0 delivery failures, 0 not delivered")


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def sample(s, name, **labels):
    return s.samples.get((name, frozenset(labels.items())))


def stream_arrives(demo, kafka, topic, partitions, count=60):
    """count live messages over the websocket, each exactly the record the
    topic holds at its (partition, offset), none left out; the metrics of
    the demo's nginx agree.  Returns the last scrape."""
    client = wslib.Client(demo.urls["websocket"])
    try:
        client.send_resume({}, from_="latest")
        client.recv_json("replay_complete")
        msgs = client.recv_messages(count, timeout=30)
    finally:
        client.close()
    for m in msgs:
        assert THREAD_ID.match(ds.thread_id(ds.decode(m.data)[1])), m

    by_part = {}
    for m in msgs:
        by_part.setdefault(m.partition, []).append((m.offset, m.data))
    assert set(by_part) <= set(range(partitions)), by_part.keys()
    ranges = {p: (v[0][0], v[-1][0]) for p, v in by_part.items()}
    held = read_topic(kafka.conf(), topic, ranges)
    for p, got in by_part.items():
        want = [(o, v) for o, bad, v in held[p] if not bad]
        assert got == want, "partition %d: websocket %d, topic %d" % (
            p, len(got), len(want))

    def scraped():
        s = prom.scrape(demo.urls["metrics"])
        lag = {lb for (name, lb) in s.samples
               if name == "websocket_kafka_consumer_lag"}
        return len(lag) == partitions and s
    s = net.wait_for(scraped, 15, 0.2, "lag of every partition in /metrics")
    assert sample(s, "websocket_kafka_assigned_partitions",
                  topic=topic) == partitions
    assert {dict(lb)["partition"] for (name, lb) in s.samples
            if name == "websocket_kafka_consumer_lag"} \
        == {str(p) for p in range(partitions)}
    assert sample(s, "websocket_kafka_messages_total",
                  status="success") >= count
    assert sample(s, "websocket_kafka_client_errors_by_type_total",
                  error_type="authentication") == 0
    assert sample(s, "websocket_kafka_broker_connected") == 1
    return s


def stopped(demo):
    """Ctrl-C: run.sh exits 130, nothing it started is left, the
    generator delivered all it sent.  Returns run.sh's output."""
    rc, left = demo.interrupt()
    out = demo.output()
    assert left == [], left
    assert rc == 130, out
    assert "demo: stopped" in out
    assert not net.port_open(demo.port)
    assert not os.path.exists(demo.ready)
    m = STOPPED.search(demo.log("generator.log"))
    assert m and int(m.group(1)) > 0, demo.log("generator.log")
    return out


@pytest.mark.timeout(120)
def test_demo_on_a_real_cluster(module, kafka, make_topic, workdir):
    topic = make_topic(3)
    make_topic(name=topic + "-dlq")
    demo = Demo(workdir, module, BROKERS=kafka.bootstrap, TOPIC=topic)
    try:
        demo.start()
        assert demo.brokers == kafka.bootstrap
        assert "demo: Kafka: %s, plaintext (topic %s, 3 partitions)" % (
            kafka.bootstrap, topic) in demo.output()
        assert "no topic %s-dlq" % topic not in demo.output()
        stream_arrives(demo, kafka, topic, 3)
        st = get_json(demo.urls["status"])
        assert st["config"]["security_protocol"] == "plaintext"
        assert st["consumer"]["topic_missing"] is False
        assert bad_log_lines(demo.error_log()) == []
    finally:
        out = stopped(demo)
    assert "mock cluster" not in out


@pytest.mark.timeout(60)
def test_demo_refuses_a_missing_topic(module, kafka, workdir):
    topic = "t.demo-missing.%s" % os.urandom(4).hex()
    demo = Demo(workdir, module, BROKERS=kafka.bootstrap, TOPIC=topic)
    rc, seconds = demo.run(timeout=30)
    out = demo.output()
    assert rc == 1, out
    assert seconds < 20, out
    assert "demo: topic %s does not exist on %s; the demo does not create" \
        " topics on a real cluster: create it first, e.g. kafka-topics.sh" \
        " --bootstrap-server %s --create --topic %s --partitions 4" % (
            topic, kafka.bootstrap, kafka.bootstrap, topic) in out
    # nothing was started, nothing was created
    assert not os.path.exists(os.path.join(demo.prefix, "nginx.conf")), out
    assert not os.path.exists(os.path.join(demo.prefix, "logs",
                                           "generator.log"))
    assert topic not in kafka.metadata().topics


def password_file(demo, secret):
    path = os.path.join(demo.prefix, "kafka-password")
    with open(path, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return path


def sasl_demo(workdir, module, broker, topic, secret):
    demo = Demo(workdir, module, BROKERS=broker.bootstrap, TOPIC=topic,
                rate=100, KAFKA_SECURITY_PROTOCOL="sasl_plaintext",
                KAFKA_SASL_MECHANISM="PLAIN",
                KAFKA_SASL_USERNAME=SASL_USER[0])
    demo.env["KAFKA_SASL_PASSWORD_FILE"] = password_file(demo, secret)
    return demo


@pytest.mark.timeout(120)
def test_demo_through_sasl_plain(module, kafka, make_topic, workdir):
    broker = listener(kafka, "SASL_PLAINTEXT")
    secret = SASL_USER[1]
    topic = make_topic(2)
    dlq = make_topic(name=topic + "-dlq")
    demo = sasl_demo(workdir, module, broker, topic, secret)
    try:
        demo.start()
        # BROKERS names the SASL listener only: the producer and all of
        # nginx's clients log in there, or nothing flows
        assert "demo: Kafka: %s, sasl_plaintext, SASL PLAIN as %s (topic" \
            " %s, 2 partitions)" % (broker.bootstrap, SASL_USER[0],
                                     topic) in demo.output()
        with open(os.path.join(demo.prefix, "nginx.conf")) as f:
            conf = f.read()
        for line in ('dashstream_security_protocol "sasl_plaintext";',
                     'dashstream_sasl_mechanism "PLAIN";',
                     'dashstream_sasl_username "%s";' % SASL_USER[0],
                     'dashstream_sasl_password_file "%s";'
                     % demo.env["KAFKA_SASL_PASSWORD_FILE"]):
            assert line in conf, conf
        s = stream_arrives(demo, kafka, topic, 2)
        # the dead-letter producer logs in too (about one malformed value
        # in 150 messages, 100 a second)
        net.wait_for(lambda: sample(prom.scrape(demo.urls["metrics"]),
                                    "websocket_dlq_sends_total") >= 1,
                     20, 0.2, "a dead letter delivered")
        assert kafka.consume(dlq, 1, timeout=10)
        st = get_json(demo.urls["status"])
        assert st["config"]["security_protocol"] == "sasl_plaintext"
        assert st["config"]["sasl_mechanism"] == "PLAIN"
        assert "security=sasl_plaintext sasl=PLAIN" in demo.error_log()
        assert bad_log_lines(demo.error_log()) == []
        # the secret: in no command line, log, config, status or metrics
        for pid, cmd in demo_processes(demo):
            assert secret not in cmd, (pid, cmd)
        assert secret not in conf
        assert secret not in json.dumps(st)
        assert secret not in s.text
    finally:
        out = stopped(demo)
    for name in os.listdir(os.path.join(demo.prefix, "logs")):
        assert secret not in demo.log(name), name
    assert secret not in out


def demo_processes(demo):
    found = session_members(set(demo.children))
    assert len(found) >= 4, found       # generator, nginx master, 2 workers
    return found


@pytest.mark.timeout(60)
def test_demo_wrong_password_says_so(module, kafka, make_topic, workdir):
    broker = listener(kafka, "SASL_PLAINTEXT")
    wrong = "not-the-Passw0rd-17"
    topic = make_topic()
    demo = sasl_demo(workdir, module, broker, topic, wrong)
    rc, seconds = demo.run(timeout=30)
    out = demo.output()
    assert rc == 1, out
    assert seconds < 15, out        # refused at once, not after a timeout
    assert re.search(r"demo: Kafka at %s refused the connection "
                     r"\(_AUTHENTICATION\): .*SASL authentication error: "
                     r"Authentication failed: Invalid username or password"
                     % re.escape(broker.bootstrap), out), out
    assert wrong not in out
    assert not os.path.exists(os.path.join(demo.prefix, "nginx.conf")), out


@pytest.mark.timeout(120)
def test_demo_through_tls_with_client_certificate(module, kafka, make_topic,
                                                  workdir):
    broker = listener(kafka, "SSL")
    files = kafka.tls
    topic = make_topic(2)
    demo = Demo(workdir, module, BROKERS=broker.bootstrap, TOPIC=topic,
                KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA=files["ca"],
                KAFKA_SSL_CERTIFICATE=files["cert"],
                KAFKA_SSL_KEY=files["key"])
    try:
        demo.start()
        out = demo.output()
        assert "demo: Kafka: %s, ssl, client certificate (topic %s, 2" \
            " partitions)" % (broker.bootstrap, topic) in out
        # an operator is told why dead letters will fail
        assert "demo: no topic %s-dlq: the malformed messages cannot be" \
            " dead-lettered" % topic in out
        stream_arrives(demo, kafka, topic, 2)
        st = get_json(demo.urls["status"])
        assert st["config"]["security_protocol"] == "ssl"
        assert bad_log_lines(demo.error_log()) == []
    finally:
        stopped(demo)


BAD_SETTINGS = [
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "BROKERS": ""},
     "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* are for a real"
     " cluster: set BROKERS too (the mock cluster is plaintext)"),
    ({"KAFKA_SECURITY_PROTOCOL": "tls"},
     "KAFKA_SECURITY_PROTOCOL must be plaintext, ssl, sasl_plaintext or"
     " sasl_ssl"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_ssl"},
     "KAFKA_SECURITY_PROTOCOL=sasl_ssl needs KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
      "KAFKA_SASL_MECHANISM": "GSSAPI"},
     "KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
      "KAFKA_SASL_MECHANISM": "plain"},
     "KAFKA_SECURITY_PROTOCOL=sasl_plaintext needs KAFKA_SASL_USERNAME"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
      "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": 'a"b'},
     "KAFKA_SASL_USERNAME must not contain quotes, backslashes or control"
     " characters"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
      "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u"},
     "KAFKA_SECURITY_PROTOCOL=sasl_plaintext needs KAFKA_SASL_PASSWORD_FILE"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
      "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u",
      "KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"},
     "KAFKA_SASL_PASSWORD_FILE: no readable file /nonexistent/password"),
    ({"KAFKA_SASL_PASSWORD": "inline-Secret-9"},
     "KAFKA_SASL_PASSWORD is not read: put the password alone in a file and"
     " set KAFKA_SASL_PASSWORD_FILE"),
    ({"KAFKA_SASL_USERNAME": "u"},
     "KAFKA_SASL_* need KAFKA_SECURITY_PROTOCOL=sasl_plaintext or sasl_ssl"),
    ({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SSL_CA": "/x"},
     "KAFKA_SECURITY_PROTOCOL=sasl_plaintext needs KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "plaintext", "KAFKA_SSL_CA": "/x"},
     "KAFKA_SSL_* need KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl"),
    ({"KAFKA_SECURITY_PROTOCOL": "ssl", "KAFKA_SSL_KEY": "/x"},
     "KAFKA_SSL_CERTIFICATE and KAFKA_SSL_KEY go together"),
]


@pytest.mark.parametrize("env,message", BAD_SETTINGS)
def test_demo_refuses_bad_security_settings(module, workdir, env, message):
    """No broker is needed: run.sh refuses these before it connects."""
    demo = Demo(workdir, module, **dict({"BROKERS": "127.0.0.1:9"}, **env))
    rc, seconds = demo.run(timeout=20)
    out = demo.output()
    assert rc == 1, out
    assert out == "demo: %s\n" % message
    assert "inline-Secret-9" not in out
