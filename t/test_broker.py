"""The broker the integration tests use is a real Apache Kafka 4.x.

We speak the wire protocol ourselves (lib/kafka_wire.py) instead of
trusting a client library's view, and test_checks_reject_librdkafka_mock
runs the same checks against librdkafka's mock cluster to show that each
one can fail: a check that a mock passes proves nothing.
"""

from confluent_kafka import Producer

from lib import kafka_wire

# MetadataVersion feature levels (org.apache.kafka.server.common.
# MetadataVersion): 3.3-IV3 = 7 is the oldest KRaft level, 4.0-IV0 = 22.
METADATA_VERSION_4_0 = 22

API_PRODUCE, API_FETCH, API_DESCRIBE_QUORUM = 0, 1, 55
ZK_ONLY_APIS = {4: "LeaderAndIsr", 5: "StopReplica", 6: "UpdateMetadata",
                7: "ControlledShutdown"}


def kafka4_checks(av):
    """{check: passed} for an ApiVersions answer; see test docstring."""
    keys = av.api_keys
    level = av.finalized.get("metadata.version", (None, -1))[1]
    return {
        "apiversions_v3": av.version == 3 and av.error_code == 0,
        "kraft_metadata_version_4x": level >= METADATA_VERSION_4_0,
        "fetch_v0_v3_removed": API_FETCH in keys and keys[API_FETCH][0] >= 4,
        "describe_quorum": API_DESCRIBE_QUORUM in keys,
        "no_zookeeper_apis": not set(ZK_ONLY_APIS) & set(keys),
    }


def _host_port(bootstrap):
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    return host, int(port)


def test_broker_is_real_kafka_4(kafka, make_topic):
    """ApiVersions v3 and an old Produce, sent over a plain socket.

    Why each assertion tells a real Kafka 4.x broker from the librdkafka
    mock cluster (and from Kafka 3.x):
    - apiversions_v3: the broker answers ApiVersions v3 (flexible, KIP-511)
      with error 0.  librdkafka's mock answers v3 with UNSUPPORTED_VERSION
      and a v0 body.
    - kraft_metadata_version_4x: the answer carries the finalized feature
      "metadata.version" at level >= 22 (4.0-IV0).  Only a KRaft cluster
      finalizes metadata.version (ZooKeeper brokers never do), only 4.0 or
      newer reaches level 22, and the mock sends no features at all.
    - fetch_v0_v3_removed: Fetch's minimum version is >= 4: KIP-896 removed
      Fetch v0-v3 in Kafka 4.0.  3.x brokers and the mock accept Fetch v0.
    - describe_quorum: DescribeQuorum (key 55) exists only where there is a
      Raft quorum; the mock has none and does not list it.
    - no_zookeeper_apis: LeaderAndIsr, StopReplica, UpdateMetadata and
      ControlledShutdown (keys 4-7) went away with ZooKeeper in 4.0; a 3.x
      ZooKeeper broker lists them.  (The mock lacks them too: this one
      separates 4.x from 3.x only.)
    - Produce v2 is refused: ApiVersions still advertises Produce v0
      (KAFKA-18659: 4.0 keeps advertising v0-v2 because librdkafka's
      compression negotiation breaks otherwise), so "Produce min >= 3"
      cannot be read from ApiVersions.  KIP-896 removed v0-v2 everywhere
      else, so a real Produce v2 request makes a 4.x broker close the
      connection without an answer (and log "unsupported version 2"),
      whereas the mock and 3.x brokers answer it.
    """
    host, port = _host_port(kafka.bootstrap)
    av = kafka_wire.probe(host, port)
    checks = kafka4_checks(av)
    assert checks == {k: True for k in checks}, (checks, av)
    assert API_PRODUCE in av.api_keys

    topic = make_topic(1)
    before = len(kafka.broker.log_text()) if kafka.broker else 0
    assert kafka_wire.produce_old(host, port, topic, version=2) \
        == ("closed", None)
    if kafka.broker:
        log = kafka.broker.log_text()[before:]
        assert "(Produce) and unsupported version 2" in log, log[-2000:]


def test_cluster_is_our_single_broker(kafka):
    """Metadata lists exactly one broker, at the loopback address and port
    we bootstrap from (so the tests cannot be talking to some other
    cluster), and the cluster id is the one we formatted the log dir with.
    """
    md = kafka.metadata()
    host, port = _host_port(kafka.bootstrap)
    brokers = {b.id: (b.host, b.port) for b in md.brokers.values()}
    assert list(brokers.values()) == [(host, port)], brokers
    if kafka.broker:
        assert host == "127.0.0.1"
        assert brokers == {kafka.broker.node_id: ("127.0.0.1", port)}
        assert md.cluster_id == kafka.broker.cluster_id
        assert md.controller_id == kafka.broker.node_id


def test_checks_reject_librdkafka_mock():
    """The control: the librdkafka mock cluster fails every check above
    that separates 4.x from a mock, and it answers Produce v2 (so our Produce
    v2 request is well-formed and the broker's silence is a refusal)."""
    p = Producer({"bootstrap.servers": "127.0.0.1:1", "log_level": 0,
                  "test.mock.num.brokers": 1})
    try:
        p.produce("mock-topic", b"v")      # the mock creates the topic
        assert p.flush(10) == 0
        b = next(iter(p.list_topics(timeout=10).brokers.values()))
        av = kafka_wire.probe(b.host, b.port)
        checks = kafka4_checks(av)
        assert checks == {"apiversions_v3": False,
                          "kraft_metadata_version_4x": False,
                          "fetch_v0_v3_removed": False,
                          "describe_quorum": False,
                          "no_zookeeper_apis": True}, (checks, av)
        state, _ = kafka_wire.produce_old(b.host, b.port, "mock-topic",
                                          version=2)
        assert state == "answered"
    finally:
        p.flush(5)
