"""pytest plugin: fixtures of the integration harness (t/conftest.py loads
it; `pytest -p lib.plugin` loads it elsewhere).

Fixtures
  kafka       session  Cluster: the real broker (started once) or the one
                       $DASHSTREAM_TEST_BROKERS names; the started broker
                       also has a SASL_PLAINTEXT listener (PLAIN and
                       SCRAM-SHA-256/512, user SASL_USER):
                       kafka.via("SASL_PLAINTEXT"), and an SSL listener
                       that requires a client certificate of a test CA:
                       kafka.via("SSL"), files in kafka.tls
  make_topic  function make_topic(partitions=1, config=None) -> unique name;
                       the topics are deleted at teardown
  topic       function a fresh topic; partitions from @pytest.mark.partitions
  nginx       function factory nginx(**Nginx kwargs) -> Nginx (not started);
                       after the test every instance is stopped and the test
                       FAILS if its error.log has [alert]/[emerg]/[crit]
  module      function path of the built module .so (skips if not built and
                       $DASHSTREAM_MODULE is unset)
  workdir     session  a private temporary directory (mode 0755)
"""

import os
import re
import shutil
import signal
import tempfile
import uuid

import pytest

from . import kafka as kafka_lib
from . import nginx as nginx_lib
from . import procs
from . import tls

_state = {}
SASL_USER = ("dashstream", "dashstream-secret")


def listener(kafka, name):
    """kafka through its listener name ("SSL", "SASL_PLAINTEXT"); the test
    is skipped when the broker has none (an external cluster)."""
    try:
        return kafka.via(name)
    except KeyError:
        pytest.skip("the broker has no %s listener" % name)


def pytest_configure(config):
    config.addinivalue_line("markers", "partitions(n): partition count of"
                            " the `topic` fixture")
    killed = procs.reap_stale()
    if killed:
        print("harness: killed process groups left by an earlier run: %s"
              % killed)
    _remove_stale_workdirs()

    def on_signal(signum, frame):
        procs.kill_all()
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def pytest_sessionfinish(session, exitstatus):
    procs.kill_all()


def pytest_terminal_summary(terminalreporter):
    b = _state.get("broker")
    if b is not None and b.startup_seconds is not None:
        terminalreporter.write_line(
            "harness: Kafka %s broker on %s started in %.1fs"
            % (kafka_lib.KAFKA_VERSION, b.bootstrap, b.startup_seconds))
    elif _state.get("external"):
        terminalreporter.write_line("harness: external Kafka broker %s"
                                    % _state["external"])


def _remove_stale_workdirs():
    """Work directories of runs that were killed (their pid is gone)."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        m = re.match(r"^dashstream-t-(\d+)-", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="dashstream-t-%d-" % os.getpid())
    os.chmod(d, 0o755)
    yield d
    if not os.environ.get("DASHSTREAM_KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


def _client_conf_from_env():
    """DASHSTREAM_TEST_KAFKA_CONF="k=v;k=v" for an external broker."""
    conf = {}
    for item in os.environ.get("DASHSTREAM_TEST_KAFKA_CONF", "").split(";"):
        if "=" in item:
            k, v = item.split("=", 1)
            conf[k.strip()] = v.strip()
    return conf


@pytest.fixture(scope="session")
def kafka(workdir):
    external = os.environ.get("DASHSTREAM_TEST_BROKERS")
    if external:
        _state["external"] = external
        yield kafka_lib.Cluster(external, _client_conf_from_env())
        return
    # SASL and SSL listeners cost little at startup, so the session broker
    # always has them for the security tests (kafka.via("SASL_PLAINTEXT"),
    # kafka.via("SSL"); the test CA's files are in kafka.tls)
    paths = tls.make_ca(os.path.join(workdir, "tls"))
    broker = kafka_lib.KafkaBroker(
        os.path.join(workdir, "kafka"),
        listeners=[kafka_lib.sasl_listener(*SASL_USER),
                   tls.ssl_listener(paths)],
        scram=kafka_lib.scram_credentials(*SASL_USER))
    os.makedirs(broker.workdir, exist_ok=True)
    _state["broker"] = broker
    try:
        broker.start()
        cluster = broker.cluster()
        cluster.tls = paths
        yield cluster
    finally:
        broker.stop()


def _topic_name(node):
    base = re.sub(r"[^A-Za-z0-9._-]", "_", node.name)[:80]
    return "t.%s.%s" % (base, uuid.uuid4().hex[:8])


@pytest.fixture
def make_topic(kafka, request):
    made = []

    def make(partitions=1, config=None, name=None):
        name = name or _topic_name(request.node)
        kafka.create_topic(name, partitions, config)
        made.append(name)
        return name
    yield make
    for name in made:
        try:
            kafka.delete_topic(name, timeout=15)
        except Exception as e:      # the broker may be gone on purpose
            print("harness: could not delete topic %s: %s" % (name, e))


@pytest.fixture
def topic(make_topic, request):
    m = request.node.get_closest_marker("partitions")
    return make_topic(m.args[0] if m else 1)


@pytest.fixture
def module():
    path = nginx_lib.module_path()
    if not os.path.isfile(path):
        if os.environ.get("DASHSTREAM_MODULE"):
            pytest.fail("DASHSTREAM_MODULE=%s does not exist" % path)
        pytest.skip("module not built (%s); run make module" % path)
    return path


class NginxFactory:
    def __init__(self, workdir, node):
        self.workdir = workdir
        self.node = node
        self.instances = []

    def __call__(self, **kw):
        name = "%s-%d" % (re.sub(r"[^A-Za-z0-9_.-]", "_", self.node.name)
                          [:60], len(self.instances))
        prefix = tempfile.mkdtemp(prefix=name + "-", dir=self.workdir)
        ng = nginx_lib.Nginx(prefix, **kw)
        self.instances.append(ng)
        return ng

    def finish(self):
        """Stop every instance; the error-log problems of all of them."""
        problems = []
        for ng in self.instances:
            try:
                ng.stop()
            finally:
                bad = ng.log_problems()
                if bad:
                    problems.append("%s/error.log:\n  %s"
                                    % (ng.prefix, "\n  ".join(bad)))
        return problems


@pytest.fixture
def nginx(workdir, request):
    f = NginxFactory(workdir, request.node)
    request.node._dashstream_nginx = f
    yield f
    f.finish()      # no-op when the call hook below already did it


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Stop the test's nginx instances while still in the call phase, so an
    [alert]/[emerg]/[crit] in error.log fails the test itself."""
    outcome = yield
    f = getattr(item, "_dashstream_nginx", None)
    if f is None:
        return
    problems = f.finish()
    if outcome.excinfo is not None:
        for ng in f.instances:
            tail = "\n".join(ng.error_log_text().splitlines()[-60:])
            item.add_report_section("call", "%s/error.log (last 60 lines)"
                                    % ng.prefix, tail)
    if not problems:
        return
    text = "\n".join(problems)
    if outcome.excinfo is None:
        pytest.fail("nginx error log has [alert]/[emerg]/[crit] lines the"
                    " test did not allow:\n" + text, pytrace=False)
    item.add_report_section("call", "nginx error.log", text)
