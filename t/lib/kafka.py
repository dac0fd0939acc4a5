"""A real Apache Kafka 4.x broker for the integration tests, and clients.

KafkaBroker runs one KRaft node (process.roles=broker,controller) from the
Maven Central jars named in t/kafka/pom.xml.  The jars are fetched once into
${XDG_CACHE_HOME:-~/.cache}/ngx-dashstream/kafka-<version>/libs and reused.

Cluster is what tests talk to: a bootstrap address plus the client settings
it needs.  It is either a broker we started or, when DASHSTREAM_TEST_BROKERS
is set, whatever broker that names (then nothing is started).

Listeners are composable: a broker always has PLAINTEXT (inter-broker) and
CONTROLLER; Listener objects add more (SASL_PLAINTEXT, SSL, ...) with their
own per-listener properties, and scram= adds SCRAM credentials at format time.
"""

import collections
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time

from confluent_kafka import Consumer, KafkaException, Producer, \
    TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

from . import dashstream, net, procs

KAFKA_VERSION = "4.1.1"
T_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POM = os.path.join(T_DIR, "kafka", "pom.xml")
BROKER_JAR = "kafka_2.13-%s.jar" % KAFKA_VERSION
# the plugin named in full: resolving the "dependency:" prefix needs
# repository metadata that a fresh ~/.m2 may not get (fresh-machine run)
DEPENDENCY_PLUGIN = "3.8.1"


# ---------------------------------------------------------------- jars

def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or \
        os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ngx-dashstream", "kafka-%s" % KAFKA_VERSION)


def ensure_libs(timeout=900):
    """Directory holding the broker's jars; fetches them with Maven once.

    DASHSTREAM_KAFKA_LIBS overrides the location (no fetch).  The cache is
    keyed by the pom's hash and filled atomically under a lock, so a changed
    pom refetches and concurrent runs do not race.
    """
    override = os.environ.get("DASHSTREAM_KAFKA_LIBS")
    if override:
        if not os.path.isfile(os.path.join(override, BROKER_JAR)):
            raise RuntimeError("DASHSTREAM_KAFKA_LIBS=%s has no %s"
                               % (override, BROKER_JAR))
        return override
    with open(POM, "rb") as f:
        pom = f.read()
    digest = hashlib.sha256(pom).hexdigest()
    cache = cache_dir()
    libs = os.path.join(cache, "libs")
    stamp = os.path.join(libs, ".pom-sha256")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(stamp) as f:
                if f.read().strip() == digest:
                    return libs
        except OSError:
            pass
        work = tempfile.mkdtemp(prefix="fetch-", dir=cache)
        try:
            # run Maven on a copy so nothing (target/) lands in the repo
            with open(os.path.join(work, "pom.xml"), "wb") as f:
                f.write(pom)
            out = os.path.join(work, "libs")
            cmd = ["mvn", "-q", "-B", "-f", os.path.join(work, "pom.xml"),
                   "org.apache.maven.plugins:maven-dependency-plugin:"
                   + DEPENDENCY_PLUGIN + ":copy-dependencies",
                   "-DincludeScope=runtime",
                   "-DoutputDirectory=" + out]
            try:
                r = subprocess.run(cmd, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=timeout)
            except FileNotFoundError:
                raise RuntimeError("mvn not found: run tools/install-deps.sh"
                                   " test (or set DASHSTREAM_TEST_BROKERS)")
            if r.returncode != 0 or \
                    not os.path.isfile(os.path.join(out, BROKER_JAR)):
                raise RuntimeError(
                    "fetching Kafka %s with Maven failed (exit %s): %s\n%s"
                    % (KAFKA_VERSION, r.returncode, " ".join(cmd),
                       r.stdout.decode(errors="replace")[-4000:]))
            with open(os.path.join(out, ".pom-sha256"), "w") as f:
                f.write(digest + "\n")
            shutil.rmtree(libs, ignore_errors=True)
            os.rename(out, libs)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return libs


# ---------------------------------------------------------------- broker

class Listener:
    """One broker listener: name, security protocol, port, extra properties.

    props are written as-is into server.properties; per-listener settings
    use Kafka's prefix, e.g.
      {"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": ...}.
    client is the librdkafka configuration a client needs on this listener
    (security.protocol, sasl.*, ssl.*), merged into Cluster.client_conf.
    """

    def __init__(self, name, protocol=None, port=None, props=None,
                 client=None):
        self.name = name.upper()
        self.protocol = (protocol or name).upper()
        self.port = port or net.free_port()
        self.props = dict(props or {})
        self.client = dict(client or {})

    @property
    def address(self):
        return "%s:%d" % (net.HOST, self.port)


SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule" \
    " required;"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule" \
    ' required user_%s="%s";'
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def sasl_listener(user, password, mechanisms=SASL_MECHANISMS):
    """A SASL_PLAINTEXT listener taking user/password with each mechanism.
    SCRAM users must also exist: KafkaBroker(scram=scram_credentials(...)).
    The client settings use the first mechanism.

    librdkafka before 2.6.1 (Debian 12 ships 2.0.2) cannot log in to Kafka
    4.x with SCRAM: it repeats the client nonce in its final message, which
    4.x rejects (librdkafka#4895).  PLAIN works with any version.
    """
    props = {"listener.name.sasl_plaintext.sasl.enabled.mechanisms":
             ",".join(mechanisms)}
    for m in mechanisms:
        props["listener.name.sasl_plaintext.%s.sasl.jaas.config"
              % m.lower()] = PLAIN_LOGIN % (user, password) \
            if m == "PLAIN" else SCRAM_LOGIN
    return Listener("SASL_PLAINTEXT", props=props, client={
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanisms[0], "sasl.username": user,
        "sasl.password": password})


def scram_credentials(user, password, mechanisms=("SCRAM-SHA-256",
                                                  "SCRAM-SHA-512")):
    return [(m, user, password) for m in mechanisms]


LOG4J2 = """\
status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class KafkaBroker:
    """A single-node KRaft broker on loopback, in a private directory."""

    def __init__(self, workdir=None, listeners=(), props=None, scram=(),
                 heap="512m", node_id=1):
        self.workdir = workdir or tempfile.mkdtemp(prefix="dashstream-kafka-")
        self.plain = Listener("PLAINTEXT")
        self.controller = Listener("CONTROLLER", "PLAINTEXT")
        self.listeners = [self.plain] + list(listeners)
        self.props = dict(props or {})
        self.scram = list(scram)    # ("SCRAM-SHA-256", user, password)
        self.heap = heap
        self.node_id = node_id
        self.proc = None
        self.cluster_id = None
        self.startup_seconds = None
        self.log_path = os.path.join(self.workdir, "broker.log")

    @property
    def bootstrap(self):
        return self.plain.address

    def listener(self, name):
        for lst in self.listeners:
            if lst.name == name.upper():
                return lst
        raise KeyError(name)

    def cluster(self):
        """Cluster on the PLAINTEXT listener, with the other listeners
        reachable through Cluster.via(name)."""
        return Cluster(self.bootstrap, broker=self, listeners={
            lst.name: (lst.address, lst.client) for lst in self.listeners})

    def server_properties(self):
        every = self.listeners + [self.controller]
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": "%d@%s" % (self.node_id,
                                                   self.controller.address),
            "controller.listener.names": self.controller.name,
            "inter.broker.listener.name": self.plain.name,
            "listeners": ",".join("%s://%s" % (lst.name, lst.address)
                                  for lst in every),
            "advertised.listeners": ",".join(
                "%s://%s" % (lst.name, lst.address)
                for lst in self.listeners),
            "listener.security.protocol.map": ",".join(
                "%s:%s" % (lst.name, lst.protocol) for lst in every),
            "log.dirs": os.path.join(self.workdir, "data"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.cleaner.dedupe.buffer.size": str(8 << 20),
            # registration and unfencing ride on heartbeats (default 2 s)
            "broker.heartbeat.interval.ms": "500",
        }
        for lst in self.listeners:
            props.update(lst.props)
        props.update(self.props)
        return "".join("%s=%s\n" % kv for kv in props.items())

    def _java(self, libs, *args, tool=False):
        # C1 only: the broker needs ~40% less CPU to start (5.5 s instead
        # of 9.5 s here) and test loads are far below what C1 code serves
        vm = ["-XX:TieredStopAtLevel=1"]
        vm += ["-Xmx256m", "-XX:+UseSerialGC"] if tool else \
            ["-Xmx%s" % self.heap, "-Xms128m", "-XX:+UseG1GC",
             "-XX:MaxGCPauseMillis=20"]
        return ["java"] + vm + [
            "-Djava.awt.headless=true",
            "-Dlog4j2.configurationFile=" +
            os.path.join(self.workdir, "log4j2.properties"),
            "-Dkafka.logs.dir=" + os.path.join(self.workdir, "logs"),
            "-cp", os.path.join(libs, "*")] + list(args)

    def _tool(self, libs, *args):
        r = subprocess.run(self._java(libs, "kafka.tools.StorageTool", *args,
                                      tool=True),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        out = r.stdout.decode(errors="replace")
        if r.returncode != 0:
            raise RuntimeError("StorageTool %s failed (exit %d):\n%s"
                               % (args[0], r.returncode, out))
        return out

    def start(self, timeout=90):
        t0 = time.monotonic()
        libs = ensure_libs()
        with open(os.path.join(self.workdir, "log4j2.properties"), "w") as f:
            f.write(LOG4J2)
        conf = os.path.join(self.workdir, "server.properties")
        with open(conf, "w") as f:
            f.write(self.server_properties())
        self.cluster_id = self._tool(libs, "random-uuid").split()[-1]
        fmt = ["format", "-t", self.cluster_id, "-c", conf]
        for mech, user, password in self.scram:
            fmt += ["--add-scram", "%s=[name=\"%s\",password=\"%s\"]"
                    % (mech, user, password)]
        self._tool(libs, *fmt)
        with open(self.log_path, "ab") as log:
            self.proc = procs.spawn(self._java(libs, "kafka.Kafka", conf),
                                    stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.workdir, tag="kafka")
        try:
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def _wait_ready(self, deadline):
        admin = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("Kafka broker exited with %s:\n%s"
                                   % (self.proc.returncode,
                                      self.log_tail()))
            if net.port_open(self.plain.port):
                if admin is None:
                    admin = AdminClient({"bootstrap.servers": self.bootstrap,
                                         "log_level": 0})
                try:
                    md = admin.list_topics(timeout=1)
                    if self.node_id in md.brokers:
                        return
                except KafkaException:
                    pass
            if time.monotonic() >= deadline:
                raise TimeoutError("Kafka broker did not answer metadata"
                                   " on %s:\n%s"
                                   % (self.bootstrap, self.log_tail()))
            time.sleep(0.1)

    def stop(self, timeout=15):
        """SIGTERM (controlled shutdown), then SIGKILL; returns exit code."""
        if self.proc is None:
            return None
        rc = procs.stop(self.proc, signal.SIGTERM, timeout)
        self.proc = None
        return rc

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------- clients

Produced = collections.namedtuple(
    "Produced", "partition offset key value timestamp")
Consumed = collections.namedtuple(
    "Consumed", "partition offset key value timestamp")


class Cluster:
    """What tests talk to: bootstrap address + client settings."""

    def __init__(self, bootstrap, client_conf=None, broker=None,
                 listeners=None):
        self.bootstrap = bootstrap
        self.client_conf = dict(client_conf or {})
        self.broker = broker        # KafkaBroker, or None if external
        self.listeners = dict(listeners or {})

    def via(self, listener, **client_conf):
        """The same cluster through another listener (e.g.
        "SASL_PLAINTEXT"), client_conf overriding its client settings (a
        wrong password, say).  KeyError if the broker has no such listener.
        """
        address, conf = self.listeners[listener.upper()]
        return Cluster(address, dict(conf, **client_conf), self.broker,
                       self.listeners)

    def conf(self, **extra):
        c = {"bootstrap.servers": self.bootstrap, "log_level": 3}
        c.update(self.client_conf)
        c.update(extra)
        return c

    def admin(self):
        return AdminClient(self.conf())

    def committed(self, group, topic, partition=0):
        """group's committed offset of the partition (< 0: none)"""
        c = Consumer(self.conf(**{"group.id": group}))
        try:
            return c.committed([TopicPartition(topic, partition)],
                               timeout=10)[0].offset
        finally:
            c.close()

    def metadata(self, topic=None, timeout=10):
        return self.admin().list_topics(topic=topic, timeout=timeout)

    def create_topic(self, name, partitions=1, config=None, timeout=30):
        """Create name and wait until every partition has a leader."""
        admin = self.admin()
        fut = admin.create_topics(
            [NewTopic(name, partitions, 1, config=dict(config or {}))],
            operation_timeout=timeout, request_timeout=timeout)
        fut[name].result(timeout=timeout)

        def ready():
            t = admin.list_topics(topic=name, timeout=5).topics.get(name)
            return (t is not None and t.error is None
                    and len(t.partitions) == partitions
                    and all(p.leader >= 0 for p in t.partitions.values()))
        net.wait_for(ready, timeout, 0.05, "topic %s in metadata" % name)
        return name

    def delete_topic(self, name, timeout=30):
        """Delete name and wait until metadata no longer lists it."""
        admin = self.admin()
        fut = admin.delete_topics([name], operation_timeout=timeout,
                                  request_timeout=timeout)
        fut[name].result(timeout=timeout)
        net.wait_for(lambda: name not in admin.list_topics(timeout=5).topics,
                     timeout, 0.05, "topic %s gone" % name)

    def producer(self, topic, framing="plain", **conf):
        return DashProducer(self, topic, framing, **conf)

    def produce(self, topic, items, framing="plain", partition=None,
                key=None, timeout=60, **conf):
        """Send items (see DashProducer.send); returns [Produced] in order."""
        p = self.producer(topic, framing, **conf)
        for item in items:
            p.send(item, partition=partition, key=key)
        return p.flush(timeout)

    def consume(self, topic, count, timeout=30, partitions=None):
        """Read count records from the beginning of topic (no group).

        Returns [Consumed] in arrival order (per-partition offset order).
        """
        c = Consumer(self.conf(**{"group.id": "t-reader",
                                  "enable.auto.commit": False,
                                  "enable.partition.eof": False}))
        try:
            if partitions is None:
                md = c.list_topics(topic, timeout=10)
                partitions = sorted(md.topics[topic].partitions)
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                      for p in partitions])
            out = []
            deadline = time.monotonic() + timeout
            while len(out) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("consumed %d of %d from %s"
                                       % (len(out), count, topic))
                for m in c.consume(count - len(out), min(left, 1.0)):
                    if m.error():
                        raise KafkaException(m.error())
                    out.append(Consumed(m.partition(), m.offset(), m.key(),
                                        m.value(), m.timestamp()[1]))
            return out
        finally:
            c.close()


class DashProducer:
    """Producer whose every send is confirmed with its (partition, offset).

    Keys default to the DashStream header's thread_id; partitioning is
    murmur2 like Java producers, so a key lands where Java would put it.
    """

    def __init__(self, cluster, topic, framing="plain", **conf):
        c = {"enable.idempotence": True, "linger.ms": 5,
             "partitioner": "murmur2_random",
             "message.max.bytes": 16 << 20}
        c.update(conf)
        self.topic = topic
        self.framing = framing
        self.p = Producer(cluster.conf(**c))
        self.results = []
        self.errors = []
        self.pending = 0

    def send(self, item, partition=None, key=None, framing=None,
             timestamp_ms=None):
        """Queue one record; item is a DashStreamMessage (framed here with
        framing) or bytes (sent unchanged).  Returns its index in flush()'s
        list."""
        if isinstance(item, (bytes, bytearray)):
            value = bytes(item)
        else:
            value = dashstream.encode(item, framing or self.framing)
            if key is None:
                key = dashstream.thread_id(item) or None
        if isinstance(key, str):
            key = key.encode()
        i = len(self.results)
        self.results.append(None)

        def done(err, msg, i=i, key=key, value=value):
            self.pending -= 1
            if err is not None:
                self.errors.append((i, err))
            else:
                self.results[i] = Produced(msg.partition(), msg.offset(), key,
                                           value, msg.timestamp()[1])
        kw = {"key": key, "value": value, "on_delivery": done}
        if partition is not None:
            kw["partition"] = partition
        if timestamp_ms is not None:
            kw["timestamp"] = timestamp_ms
        deadline = time.monotonic() + 30
        while True:
            try:
                self.p.produce(self.topic, **kw)
                break
            except BufferError:
                if time.monotonic() >= deadline:
                    raise
                self.p.poll(0.1)
        self.pending += 1
        self.p.poll(0)
        return i

    def flush(self, timeout=60):
        """Wait for every queued record; returns all [Produced] so far and
        starts a new list.  Raises on any delivery error or timeout."""
        deadline = time.monotonic() + timeout
        while self.pending > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%d records not delivered to %s"
                                   % (self.pending, self.topic))
            self.p.flush(min(left, 1.0))
        if self.errors:
            raise KafkaException(self.errors[0][1])
        out, self.results = self.results, []
        return out
