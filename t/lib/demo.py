"""tools/demo/run.sh (`make demo`) driven by tests.

Demo        run.sh on a free port in a private prefix, with the mock cluster
            or BROKERS=...; .start() waits for DEMO_READY_FILE, .run() for
            the end of a run that must fail, .interrupt() is Ctrl-C and
            returns what was left running
read_topic  the records of offset ranges of a topic, read back from Kafka
"""

import os
import signal
import subprocess
import time

from confluent_kafka import Consumer, TopicPartition

from . import dashstream as ds
from . import net, procs
from .nginx import BAD_LEVELS, LOG_LINE, NGINX

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RUN = os.path.join(REPO, "tools", "demo", "run.sh")
MALFORMED = "dashstream-demo-malformed"     # generator.py's header
# run.sh's settings: a test sets them, never the caller's environment
RUN_ENV = ("BROKERS", "TOPIC", "PARTITIONS", "GENERATOR", "OFFSET_RESET",
           "DEMO_MODE", "LISTEN", "BUILD", "MOCK_CLUSTER")


def session_members(sids):
    """(pid, cmdline) of live processes in any of these sessions."""
    return [(pid, cmd) for pid, _, _, sid, cmd in procs.live_processes()
            if sid in sids]


def bad_log_lines(text):
    return [line for line in text.splitlines()
            if (m := LOG_LINE.match(line)) and m.group(1) in BAD_LEVELS]


class Demo:
    """run.sh with its pieces on free ports, in a private prefix.  env adds
    run.sh's variables (BROKERS, TOPIC, KAFKA_*); mock is the mock cluster
    binary when BROKERS is not given."""

    def __init__(self, workdir, module, mock=None, rate=40, **env):
        self.prefix = os.path.join(workdir, "demo-%d" % time.monotonic_ns())
        os.makedirs(self.prefix)
        os.chmod(self.prefix, 0o755)
        self.port = net.free_port()
        self.ready = os.path.join(self.prefix, "ready")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in RUN_ENV and not k.startswith("KAFKA_")}
        self.env.update(MODULE=module,
                        DASHSTREAM_GEN=os.path.dirname(ds.pb.__file__),
                        DEMO_PREFIX=self.prefix, PORT=str(self.port),
                        RATE=str(rate), DEMO_READY_FILE=self.ready,
                        BROKERS="", NGINX=NGINX)
        if mock:
            self.env["MOCK_CLUSTER"] = mock
        self.env.update(env)
        self.out_path = os.path.join(self.prefix, "run.out")
        self.proc = None
        self.children = []

    def _spawn(self):
        with open(self.out_path, "wb") as out:
            self.proc = procs.spawn([RUN], stdout=out, stderr=out,
                                    env=self.env, tag="demo")

    def start(self, timeout=30):
        self._spawn()

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("run.sh exited with %s:\n%s"
                                     % (self.proc.returncode, self.output()))
            return os.path.exists(self.ready)
        net.wait_for(up, timeout, 0.1, "the demo to come up")
        with open(self.ready) as f:
            self.urls = dict(line.rstrip("\n").split("=", 1)
                             for line in f if "=" in line)
        # run.sh's children each lead a session of their own
        self.children = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], stdout=subprocess.PIPE,
            check=False).stdout.split()]
        return self

    def run(self, timeout=30):
        """A run that is to end by itself: (exit code, seconds); the
        process group is killed if it does not end within timeout."""
        t0 = time.monotonic()
        self._spawn()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        seconds = time.monotonic() - t0
        procs.stop(self.proc, signal.SIGKILL, 5)
        self.proc = None
        return rc, seconds

    @property
    def brokers(self):
        return self.urls["brokers"]

    def output(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def nginx_cmd(self, *extra):
        conf = os.path.join(self.prefix, "nginx.conf")
        return [NGINX, "-p", self.prefix + "/", "-c", conf,
                "-e", os.path.join(self.prefix, "logs", "error.log")] \
            + list(extra)

    def log(self, name="error.log"):
        with open(os.path.join(self.prefix, "logs", name),
                  errors="replace") as f:
            return f.read()

    def error_log(self):
        return self.log("error.log")

    def interrupt(self, timeout=30):
        """SIGINT to run.sh, as Ctrl-C does: (exit code, leftovers)."""
        if self.proc is None:
            return None, []
        sids = set(self.children)
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        left = session_members(sids)
        procs.stop(self.proc, signal.SIGKILL, 5)
        for sid in sids:            # never leave anything behind
            try:
                os.killpg(sid, signal.SIGKILL)
            except OSError:
                pass
        self.proc = None
        return rc, left


def read_topic(conf, topic, ranges, timeout=20):
    """{partition: [(offset, malformed, value)]} for each (first, last)
    offset range of ranges {partition: (first, last)}; conf is the client
    configuration (bootstrap.servers and security)."""
    c = Consumer(dict(conf, **{"group.id": "demo-check",
                               "enable.auto.commit": False}))
    try:
        c.assign([TopicPartition(topic, p, lo) for p, (lo, hi)
                  in ranges.items()])
        got = {p: [] for p in ranges}
        deadline = time.monotonic() + timeout
        while any(not got[p] or got[p][-1][0] < hi
                  for p, (lo, hi) in ranges.items()):
            assert time.monotonic() < deadline, "topic not read back"
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            if m.offset() <= ranges[m.partition()][1]:
                malformed = any(k == MALFORMED for k, _ in m.headers() or ())
                got[m.partition()].append((m.offset(), malformed, m.value()))
        return got
    finally:
        c.close()
