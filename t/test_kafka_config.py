"""`nginx -t` for the Kafka client settings (issue 5): every bad value
fails with librdkafka's own words or the module's, naming the directive's
file:line; a full secure configuration passes.  No broker is needed."""

import os

import pytest

from lib import tls

BROKERS = "dashstream_brokers 127.0.0.1:9092;"
ZONE = "dashstream_zone ds 8m;"
WS_LOC = """location = /ws {
    dashstream_websocket;
}"""
SECRET = "s3cret-Pa55"


def check(nginx, http):
    ng = nginx(module=True, http=BROKERS + "\n" + ZONE + "\n" + http,
               server=WS_LOC)
    return ng, ng.check_config()


def emergs(r):
    return [line[len("nginx: [emerg] "):] for line in r.stderr.splitlines()
            if line.startswith("nginx: [emerg] ")]


def assert_fails(ng, r, message, needle):
    """nginx -t failed with exactly this [emerg] at the line of needle."""
    assert r.returncode == 1, r.stderr
    assert emergs(r) == ["%s in %s:%d" % (message, ng.conf_path,
                                          line(ng, needle))], r.stderr
    assert r.stderr.splitlines()[-1] == \
        "nginx: configuration file %s test failed" % ng.conf_path


def line(ng, needle):
    """the config line of a directive (after a blank: the prefix path in
    other lines holds the test's name)"""
    return ng.line_of(" " + needle)


def assert_passes(ng, r):
    assert r.returncode == 0, r.stderr
    assert emergs(r) == []


@pytest.fixture(scope="module")
def certs(workdir):
    return tls.make_ca(os.path.join(workdir, "tls-config"))


def write(ng, name, text):
    path = os.path.join(ng.prefix, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


# -- dashstream_kafka_property ---------------------------------------------

@pytest.mark.parametrize("name,value,message", [
    ("no.such.property", "1",
     'No such configuration property: "no.such.property"'),
    ("isolation.level", "nonsense",
     'Invalid value "nonsense" for configuration property '
     '"isolation.level"'),
    ("fetch.wait.max.ms", "abc",
     'Invalid value for configuration property "fetch.wait.max.ms"'),
    ("fetch.wait.max.ms", "999999999",
     'Configuration property "fetch.wait.max.ms" value 999999999 is outside'
     ' allowed range 0..300000'),
])
def test_property_refused_by_librdkafka(nginx, module, name, value, message):
    ng, r = check(nginx, "dashstream_kafka_property %s %s;" % (name, value))
    assert_fails(ng, r, '"dashstream_kafka_property": ' + message,
                 "dashstream_kafka_property " + name)


@pytest.mark.parametrize("name,why", [
    ("group.id", 'set it with "dashstream_group_id"'),
    ("bootstrap.servers", 'set it with "dashstream_brokers"'),
    ("enable.auto.offset.store", "the module stores each offset itself, "
     "once the message is in the ring or dead-lettered"),
    ("sasl.password", 'set it with "dashstream_sasl_password" or '
     '"dashstream_sasl_password_file"'),
    ("Auto.Offset.Reset", 'set it with "dashstream_offset_reset"'),
])
def test_managed_property_is_refused(nginx, module, name, why):
    ng, r = check(nginx, "dashstream_kafka_property %s x;" % name)
    assert_fails(ng, r, 'Kafka property "%s" is managed by the module: %s'
                 % (name, why), "dashstream_kafka_property")


def test_same_property_twice(nginx, module):
    ng, r = check(nginx, """
        dashstream_kafka_property fetch.wait.max.ms 100;
        dashstream_kafka_property fetch.wait.max.ms 200;""")
    assert_fails(ng, r, '"dashstream_kafka_property" sets Kafka property'
                 ' "fetch.wait.max.ms", which "dashstream_kafka_property"'
                 ' already sets (%s:%d)'
                 % (ng.conf_path, line(ng, "fetch.wait.max.ms 100")),
                 "dashstream_kafka_property fetch.wait.max.ms 200")


# -- security ----------------------------------------------------------------

@pytest.mark.parametrize("directive,value,allowed", [
    ("dashstream_security_protocol", "tls",
     "plaintext, ssl, sasl_plaintext or sasl_ssl"),
    ("dashstream_security_protocol", "SASL_SSL",
     "plaintext, ssl, sasl_plaintext or sasl_ssl"),
    ("dashstream_sasl_mechanism", "GSSAPI",
     "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    ("dashstream_sasl_mechanism", "scram-sha-512",
     "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
])
def test_invalid_security_value(nginx, module, directive, value, allowed):
    ng, r = check(nginx, "%s %s;" % (directive, value))
    assert_fails(ng, r, 'invalid value "%s": must be %s' % (value, allowed),
                 directive)


def test_missing_password_file(nginx, module):
    ng, r = check(nginx, """
        dashstream_security_protocol sasl_plaintext;
        dashstream_sasl_mechanism PLAIN;
        dashstream_sasl_username dashstream;
        dashstream_sasl_password_file secrets/nope;""")
    assert_fails(ng, r, 'open() "%s/secrets/nope" failed (2: No such file or'
                 ' directory)' % ng.prefix, "dashstream_sasl_password_file")


def test_empty_password_file(nginx, module):
    ng = nginx(module=True)
    path = write(ng, "empty", "\n")
    ng, r = check(nginx, "dashstream_sasl_password_file %s;" % path)
    assert_fails(ng, r, 'no password in "%s"' % path,
                 "dashstream_sasl_password_file")


def test_both_password_forms(nginx, module):
    ng = nginx(module=True)
    path = write(ng, "pw", SECRET + "\n")
    ng, r = check(nginx, """
        dashstream_security_protocol sasl_plaintext;
        dashstream_sasl_mechanism PLAIN;
        dashstream_sasl_username dashstream;
        dashstream_sasl_password %s;
        dashstream_sasl_password_file %s;""" % (SECRET, path))
    assert_fails(ng, r, '"dashstream_sasl_password_file" sets Kafka'
                 ' property "sasl.password", which "dashstream_sasl_password"'
                 ' already sets (%s:%d)'
                 % (ng.conf_path, line(ng, "dashstream_sasl_password ")),
                 "dashstream_sasl_password_file")
    assert SECRET not in r.stderr


def test_sasl_settings_need_a_sasl_protocol(nginx, module):
    ng, r = check(nginx, """
        dashstream_security_protocol ssl;
        dashstream_sasl_username dashstream;""")
    assert_fails(ng, r, '"dashstream_sasl_username" needs'
                 ' "dashstream_security_protocol" sasl_plaintext or'
                 ' sasl_ssl', "dashstream_sasl_username")


def test_sasl_protocol_needs_a_mechanism(nginx, module):
    ng, r = check(nginx, """
        dashstream_security_protocol sasl_plaintext;
        dashstream_sasl_username dashstream;
        dashstream_sasl_password %s;""" % SECRET)
    assert_fails(ng, r, '"dashstream_security_protocol sasl_plaintext"'
                 ' needs "dashstream_sasl_mechanism"',
                 "dashstream_security_protocol")
    assert SECRET not in r.stderr


def test_sasl_protocol_needs_a_password(nginx, module):
    ng, r = check(nginx, """
        dashstream_security_protocol sasl_ssl;
        dashstream_sasl_mechanism SCRAM-SHA-256;
        dashstream_sasl_username dashstream;""")
    assert_fails(ng, r, '"dashstream_security_protocol sasl_ssl" needs'
                 ' "dashstream_sasl_password" or'
                 ' "dashstream_sasl_password_file"',
                 "dashstream_security_protocol")


def test_ssl_files_must_exist(nginx, module):
    ng, r = check(nginx, """
        dashstream_security_protocol ssl;
        dashstream_ssl_ca /nonexistent/ca.pem;""")
    assert_fails(ng, r, 'open() "/nonexistent/ca.pem" failed (2: No such'
                 ' file or directory)', "dashstream_ssl_ca")


def test_ssl_settings_need_an_ssl_protocol(nginx, module, certs):
    ng, r = check(nginx, """
        dashstream_security_protocol sasl_plaintext;
        dashstream_sasl_mechanism PLAIN;
        dashstream_sasl_username dashstream;
        dashstream_sasl_password x;
        dashstream_ssl_ca %s;""" % certs["ca"])
    assert_fails(ng, r, '"dashstream_ssl_ca" needs'
                 ' "dashstream_security_protocol" ssl or sasl_ssl',
                 "dashstream_ssl_ca")


def test_certificate_needs_its_key(nginx, module, certs):
    ng, r = check(nginx, """
        dashstream_security_protocol ssl;
        dashstream_ssl_certificate %s;""" % certs["cert"])
    assert_fails(ng, r, '"dashstream_ssl_certificate" needs'
                 ' "dashstream_ssl_certificate_key"',
                 "dashstream_ssl_certificate")


def test_key_of_another_certificate(nginx, module, certs):
    """Only rd_kafka_new() loads the files: the module tries it at -t."""
    ng, r = check(nginx, """
        dashstream_security_protocol ssl;
        dashstream_ssl_ca %s;
        dashstream_ssl_certificate %s;
        dashstream_ssl_certificate_key %s;""" % (
        certs["ca"], certs["cert"], certs["broker_key"]))
    assert r.returncode == 1, r.stderr
    [e] = emergs(r)
    assert e.startswith("librdkafka refuses the Kafka client settings: ")
    assert "ssl.key.pem" in e or "private key" in e, e
    assert e.endswith(" in %s:%d" % (ng.conf_path, line(
        ng, "dashstream_ssl_certificate_key"))), e


@pytest.mark.parametrize("directive,value", [
    ("dashstream_socket_timeout", "5ms"),
    ("dashstream_connect_timeout", "1ms"),
])
def test_timeout_out_of_range(nginx, module, directive, value):
    ng, r = check(nginx, "%s %s;" % (directive, value))
    prop, low, high = {
        "dashstream_socket_timeout": ("socket.timeout.ms", 10, 300000),
        "dashstream_connect_timeout": (
            "socket.connection.setup.timeout.ms", 1000, 2147483647)}[
        directive]
    assert_fails(ng, r, '"%s": Configuration property "%s" value %d is '
                 'outside allowed range %d..%d'
                 % (directive, prop, int(value[:-2]), low, high), directive)


@pytest.mark.parametrize("directive", ["dashstream_socket_timeout",
                                       "dashstream_connect_timeout"])
def test_timeout_beyond_librdkafka_int(nginx, module, directive):
    # 30 days in ms does not fit librdkafka's int: it must not wrap
    ng, r = check(nginx, "%s 30d;" % directive)
    assert_fails(ng, r, '"%s": value must be at most 2147483647ms'
                 % directive, directive)


# -- dead-letter queue -------------------------------------------------------

@pytest.mark.parametrize("line,message", [
    ("dashstream_dlq_mode at_least_once;", 'invalid value "at_least_once"'),
    ("dashstream_dlq_payload half;", 'invalid value "half"'),
    ("dashstream_dlq_max_inflight 0;", "value must be between 1 and 100000"),
    ("dashstream_dlq_retries 101;", "value must be between 0 and 100"),
    ("dashstream_dlq_backoff 5s 1s;",
     "the first backoff (5000 ms) is longer than the longest (1000 ms)"),
    ("dashstream_dlq_backoff 0;", 'invalid value "0"'),
    ("dashstream_dlq_timeout 0;",
     '"dashstream_dlq_timeout" directive value must be between 1ms and '
     '2147483647ms'),
    ("dashstream_dlq_timeout 30d;",
     '"dashstream_dlq_timeout" directive value must be between 1ms and '
     '2147483647ms'),
    ("dashstream_dlq_topic \"a b\";",
     'invalid value "a b": a Kafka topic name has only ASCII letters, '
     "digits, '.', '_' and '-'"),
])
def test_invalid_dlq_value(nginx, module, line, message):
    ng, r = check(nginx, line)
    assert_fails(ng, r, message, line.split()[0])


# -- valid ---------------------------------------------------------------

def test_full_secure_config_passes(nginx, module, certs):
    ng = nginx(module=True)
    path = write(ng, "pw", SECRET + "\r\n")
    ng, r = check(nginx, """
        dashstream_security_protocol sasl_ssl;
        dashstream_sasl_mechanism SCRAM-SHA-512;
        dashstream_sasl_username dashstream;
        dashstream_sasl_password_file %s;
        dashstream_ssl_ca %s;
        dashstream_ssl_certificate %s;
        dashstream_ssl_certificate_key %s;
        dashstream_socket_timeout 30s;
        dashstream_connect_timeout 10s;
        dashstream_kafka_property isolation.level read_committed;
        dashstream_kafka_property fetch.wait.max.ms 100;
        dashstream_kafka_property debug security,broker;
        dashstream_dlq_mode fail_closed;
        dashstream_dlq_topic quality-dead-letters;
        dashstream_dlq_payload truncated;
        dashstream_dlq_max_payload 16k;
        dashstream_dlq_max_inflight 500;
        dashstream_dlq_retries 5;
        dashstream_dlq_backoff 100ms 30s;
        dashstream_dlq_timeout 5s;""" % (path, certs["ca"], certs["cert"],
                                         certs["key"]))
    assert_passes(ng, r)
    assert SECRET not in r.stderr + r.stdout


def test_dlq_backoff_alone_longer_than_the_default_longest(nginx, module):
    # one value above the 10s default longest: no doubling, not an error
    ng, r = check(nginx, "dashstream_dlq_backoff 20s;")
    assert_passes(ng, r)
