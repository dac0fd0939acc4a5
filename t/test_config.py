"""`nginx -t` with the module: every bad value fails with the exact message
and the file:line it comes from (STYLE.md: "nginx -t must point at
file:line for every bad value"); a minimal valid configuration passes.

No Kafka is needed: `nginx -t` never starts the consumer.
"""

import pytest

BROKERS = "dashstream_brokers 127.0.0.1:9092;"
ZONE = "dashstream_zone ds 8m;"
WS_LOC = """location = /ws {
    dashstream_websocket;
}"""


def check(nginx, http="", server=WS_LOC, main=""):
    ng = nginx(module=True, main=main, http=http, server=server)
    return ng, ng.check_config()


def emergs(r):
    return [line[len("nginx: [emerg] "):] for line in r.stderr.splitlines()
            if line.startswith("nginx: [emerg] ")]


def assert_fails(ng, r, message, needle):
    """nginx -t failed with exactly this [emerg], pointing at the line
    holding needle (after a blank: the prefix path holds the test name)."""
    assert r.returncode == 1, r.stderr
    assert emergs(r) == ["%s in %s:%d" % (message, ng.conf_path,
                                          ng.line_of(" " + needle))], r.stderr
    assert r.stderr.splitlines()[-1] == \
        "nginx: configuration file %s test failed" % ng.conf_path


def assert_passes(ng, r):
    assert r.returncode == 0, r.stderr
    assert emergs(r) == []
    assert r.stderr.splitlines()[-1] == \
        "nginx: configuration file %s test is successful" % ng.conf_path


# -- valid -----------------------------------------------------------------

def test_minimal_config_passes(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE)
    assert_passes(ng, r)


def test_every_directive_with_a_valid_value_passes(nginx, module):
    ng, r = check(nginx, http="""
        dashstream_brokers kafka-1:9092,kafka-2:9093,[::1]:9094;
        dashstream_topic dashstream-quality;
        dashstream_group_id ngx-dashstream-test;
        dashstream_mode broadcast;
        dashstream_offset_reset earliest;
        dashstream_zone ds 16m records=4096;
        dashstream_max_message_size 2m;
        dashstream_session_timeout 10s;
        dashstream_ping_interval 5s;
        dashstream_idle_timeout 30s;
        dashstream_resume_wait 250ms;
        dashstream_client_max_message 125;
        dashstream_send_budget 1m;
        dashstream_slow_subscriber close;
        dashstream_resume_max_partitions 1024;
    """, server="""
        dashstream_ping_interval 1s;
        location = /ws { dashstream_websocket dashflow; }
        location = /raw {
            dashstream_websocket raw;
            dashstream_resume_max_partitions 1;
            dashstream_slow_subscriber drop;
        }
        location = /metrics { dashstream_metrics; }
        location = /status { dashstream_status; }
    """)
    assert_passes(ng, r)


def test_max_message_size_of_exactly_an_eighth_passes(nginx, module):
    ng, r = check(nginx, http=BROKERS + """
        dashstream_zone ds 8m;
        dashstream_max_message_size 1m;
    """)
    assert_passes(ng, r)


def test_no_dashstream_location_needs_no_brokers(nginx, module):
    ng, r = check(nginx, server='location / { return 204; }')
    assert_passes(ng, r)


# -- enums -----------------------------------------------------------------

@pytest.mark.parametrize("directive,value", [
    ("dashstream_mode", "fanout"),
    ("dashstream_offset_reset", "beginning"),
    ("dashstream_offset_reset", "none"),
])
def test_invalid_enum_value(nginx, module, directive, value):
    ng, r = check(nginx, http="%s\n%s\n%s %s;" % (BROKERS, ZONE, directive,
                                                  value))
    assert_fails(ng, r, 'invalid value "%s"' % value, directive)


def test_invalid_slow_subscriber_policy(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket;
            dashstream_slow_subscriber block;
        }""")
    assert_fails(ng, r, 'invalid value "block"', "dashstream_slow_subscriber")


# -- brokers ---------------------------------------------------------------

@pytest.mark.parametrize("brokers", [
    "localhost", "host:0", "host:99999", ":9092", "a:1,,b:2", "a:1,:2",
    ",a:1", "host:", "host:90x", "host:-1"])
def test_invalid_brokers(nginx, module, brokers):
    ng, r = check(nginx, http='dashstream_brokers "%s";\n%s'
                  % (brokers, ZONE))
    assert_fails(ng, r, 'invalid brokers "%s": expected '
                 'host:port[,host:port...]' % brokers, "dashstream_brokers")


def test_brokers_with_trailing_comma(nginx, module):
    ng, r = check(nginx, http='dashstream_brokers "a:1,";\n' + ZONE)
    assert_fails(ng, r, 'invalid brokers "a:1,": expected '
                 'host:port[,host:port...]', "dashstream_brokers")


def test_duplicate_brokers(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE
                  + "\ndashstream_brokers 10.0.0.1:9092;")
    assert_fails(ng, r, '"dashstream_brokers" directive is duplicate',
                 "10.0.0.1:9092")


CHARS = "a Kafka topic name has only ASCII letters, digits, '.', '_' and '-'"


@pytest.mark.parametrize("value,why", [
    ('""', "must be 1 to 249 characters"),
    ('"%s"' % ("t" * 250), "must be 1 to 249 characters"),
    ('"two words"', CHARS),
    ('"t\\u00f3pico"'.replace("\\u00f3", "\u00f3"), CHARS),
    ("a/b", CHARS),
    ("a*b", CHARS),
    ("a:b", CHARS),
    ("'a\"b'", CHARS),
    (".", 'Kafka refuses the topic names "." and ".."'),
    ("..", 'Kafka refuses the topic names "." and ".."'),
])
def test_invalid_topic(nginx, module, value, why):
    ng, r = check(nginx, http="%s\n%s\ndashstream_topic %s;"
                  % (BROKERS, ZONE, value))
    name = value[1:-1] if value[0] in "'\"" else value
    assert_fails(ng, r, 'invalid value "%s": %s' % (name, why),
                 "dashstream_topic")


@pytest.mark.parametrize("name", ["dashstream-quality", "a.b_C-9", "...",
                                  "t" * 245])
def test_valid_topic(nginx, module, name):
    ng, r = check(nginx, http="%s\n%s\ndashstream_topic %s;"
                  % (BROKERS, ZONE, name))
    assert r.returncode == 0, r.stderr


def test_long_topic_needs_its_own_dlq_topic(nginx, module):
    name = "t" * 249
    ng, r = check(nginx, http="%s\n%s\ndashstream_topic %s;"
                  % (BROKERS, ZONE, name))
    assert_fails(ng, r, 'the dead-letter topic "%s-dlq" would be longer than '
                 'Kafka\'s 249 characters: set "dashstream_dlq_topic"' % name,
                 "dashstream_topic")
    ng, r = check(nginx, http="%s\n%s\ndashstream_topic %s;\n"
                  "dashstream_dlq_topic dead-letters;" % (BROKERS, ZONE, name))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("line", [
    "dashstream_group_id team:dashstream/eu;",
    "dashstream_group_id 'dash team #1';",
    "dashstream_brokers %s;" % ",".join(
        "kafka-broker-%02d.streaming.internal.example.com:9093" % i
        for i in range(8)),
])
def test_group_and_brokers_are_not_topic_names(nginx, module, line):
    """the group id takes any printable ASCII, a broker list is longer
    than a topic name may be"""
    http = ZONE + "\n" + line
    if not line.startswith("dashstream_brokers"):
        http = BROKERS + "\n" + http
    ng, r = check(nginx, http=http)
    assert r.returncode == 0, r.stderr


# -- websocket location ----------------------------------------------------

def test_websocket_bad_protocol(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket json;
        }""")
    assert_fails(ng, r, 'invalid protocol "json": must be "dashflow" or '
                 '"raw"', "dashstream_websocket json")


def test_websocket_too_many_arguments(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket raw dashflow;
        }""")
    assert_fails(ng, r, 'invalid number of arguments in '
                 '"dashstream_websocket" directive', "dashstream_websocket")


@pytest.mark.parametrize("first,second", [
    ("dashstream_websocket", "dashstream_metrics"),
    ("dashstream_metrics", "dashstream_status"),
    ("dashstream_status", "dashstream_websocket raw"),
    ("dashstream_websocket", "dashstream_websocket"),
])
def test_two_handlers_in_one_location(nginx, module, first, second):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /x {
            %s;
            %s;  # second
        }""" % (first, second))
    assert_fails(ng, r, 'only one of "dashstream_websocket", '
                 '"dashstream_metrics" and "dashstream_status" may be used '
                 'in a location', "# second")


def test_websocket_outside_a_location(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE,
                  server="dashstream_websocket;")
    assert_fails(ng, r, '"dashstream_websocket" directive is not allowed '
                 'here', "dashstream_websocket")


def test_brokers_inside_a_server(nginx, module):
    ng, r = check(nginx, http=ZONE, server=BROKERS + "\n" + WS_LOC)
    assert_fails(ng, r, '"dashstream_brokers" directive is not allowed here',
                 "dashstream_brokers")


# -- the zone --------------------------------------------------------------

def test_duplicate_zone(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE
                  + "\ndashstream_zone other 8m;")
    assert_fails(ng, r, '"dashstream_zone" directive is duplicate',
                 "dashstream_zone other")


@pytest.mark.parametrize("size", ["512k", "1048575", "0"])
def test_zone_too_small(nginx, module, size):
    ng, r = check(nginx, http="%s\ndashstream_zone ds %s;" % (BROKERS, size))
    assert_fails(ng, r, 'zone "ds" is too small: at least 1m is needed',
                 "dashstream_zone")


@pytest.mark.parametrize("size", ["big", "8q", "-1m"])
def test_zone_size_not_a_size(nginx, module, size):
    ng, r = check(nginx, http="%s\ndashstream_zone ds %s;" % (BROKERS, size))
    assert_fails(ng, r, 'invalid zone size "%s"' % size, "dashstream_zone")


@pytest.mark.parametrize("param", ["records=63", "records=0", "records=x",
                                   "records=", "records=67108865",
                                   "records=-64"])
def test_bad_records_count(nginx, module, param):
    ng, r = check(nginx, http="%s\ndashstream_zone ds 8m %s;"
                  % (BROKERS, param))
    assert_fails(ng, r, 'invalid records count "%s": must be 64 to 67108864'
                 % param, "dashstream_zone")


@pytest.mark.parametrize("param", ["slots=100", "record=100", "100"])
def test_unknown_zone_parameter(nginx, module, param):
    ng, r = check(nginx, http="%s\ndashstream_zone ds 8m %s;"
                  % (BROKERS, param))
    assert_fails(ng, r, 'invalid parameter "%s"' % param, "dashstream_zone")


def test_records_bounds_are_inclusive(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\ndashstream_zone ds 8m records=64;")
    assert_passes(ng, r)


MAX_TOO_LARGE = ('"dashstream_max_message_size" 2097152 is too large for '
                 'dashstream_zone "ds" of 8388608 bytes: one message may use '
                 'at most 1/8 of the zone')


def test_max_message_size_over_an_eighth_of_the_zone(nginx, module):
    ng, r = check(nginx, http=BROKERS + """
        dashstream_zone ds 8m;
        dashstream_max_message_size 2m;
    """)
    assert r.returncode == 1
    assert [e.split(" in /")[0] for e in emergs(r)] == [MAX_TOO_LARGE]


def test_default_max_message_size_needs_an_8m_zone(nginx, module):
    """The default dashstream_max_message_size (1m) with the smallest zone
    the directive accepts (1m) fails."""
    ng, r = check(nginx, http=BROKERS + "\ndashstream_zone ds 1m;")
    assert r.returncode == 1
    assert [e.split(" in /")[0] for e in emergs(r)] == [
        '"dashstream_max_message_size" 1048576 is too large for '
        'dashstream_zone "ds" of 1048576 bytes: one message may use at most '
        '1/8 of the zone']


def test_max_message_size_error_points_at_the_directive(nginx, module):
    ng, r = check(nginx, http=BROKERS + """
        dashstream_zone ds 8m;
        dashstream_max_message_size 2m;
    """)
    assert_fails(ng, r, MAX_TOO_LARGE, "dashstream_max_message_size")


# -- what a dashstream location needs -------------------------------------

@pytest.mark.parametrize("missing", ["dashstream_brokers", "dashstream_zone"])
def test_missing_required_directive_names_the_location(nginx, module,
                                                       missing):
    """Nothing to point at: the message names the file:line of the first
    dashstream handler directive (inside its location) instead."""
    http = {"dashstream_brokers": ZONE, "dashstream_zone": BROKERS}[missing]
    ng, r = check(nginx, http=http, server="""
        location = /plain {
            return 204;
        }
        location = /metrics {
            dashstream_metrics;
        }
        location = /ws {
            dashstream_websocket;
        }""")
    assert r.returncode == 1
    assert emergs(r) == ['"%s" must be set: a dashstream location is '
                         'configured in %s:%d'
                         % (missing, ng.conf_path,
                            ng.line_of("dashstream_metrics;"))]


def test_missing_brokers_and_zone_reports_brokers(nginx, module):
    ng, r = check(nginx)
    assert emergs(r) == ['"dashstream_brokers" must be set: a dashstream '
                         'location is configured in %s:%d'
                         % (ng.conf_path, ng.line_of("dashstream_websocket"))]


# -- per-location values -----------------------------------------------

@pytest.mark.parametrize("directive,value,message", [
    ("dashstream_resume_max_partitions", "0",
     "value must be between 1 and 1024"),
    ("dashstream_resume_max_partitions", "1025",
     "value must be between 1 and 1024"),
    ("dashstream_resume_max_partitions", "many",
     '"dashstream_resume_max_partitions" directive invalid number'),
    ("dashstream_ping_interval", "often",
     '"dashstream_ping_interval" directive invalid value'),
    ("dashstream_idle_timeout", "-1s",
     '"dashstream_idle_timeout" directive invalid value'),
    ("dashstream_send_budget", "lots",
     '"dashstream_send_budget" directive invalid value'),
])
def test_invalid_location_value(nginx, module, directive, value, message):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket;
            %s %s;
        }""" % (directive, value))
    assert_fails(ng, r, message, directive)


def test_client_max_message_below_125(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket;
            dashstream_client_max_message 100;
        }""")
    assert_fails(ng, r, '"dashstream_client_max_message" directive must be '
                 'at least 125 bytes, the largest control frame',
                 "dashstream_client_max_message")


# -- ranges and pairs (found by a review that fed nginx -t bad values) ----

@pytest.mark.parametrize("directive,value,message", [
    ("dashstream_send_budget", "0", "value must be at least 16384 bytes"),
    ("dashstream_send_budget", "16383", "value must be at least 16384 bytes"),
    ("dashstream_ping_interval", "0", "value must be between 100ms and "
     "86400000ms"),
    ("dashstream_idle_timeout", "0", "value must be between 100ms and "
     "86400000ms"),
])
def test_location_value_out_of_range(nginx, module, directive, value,
                                     message):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket;
            %s %s;
        }""" % (directive, value))
    assert_fails(ng, r, '"%s" directive %s' % (directive, message),
                 directive)


@pytest.mark.parametrize("line,message", [
    ("dashstream_session_timeout 0;", "value must be between 1000ms and "
     "3600000ms"),
    ("dashstream_session_timeout 2h;", "value must be between 1000ms and "
     "3600000ms"),
    ("dashstream_max_message_size 0;", "value must be at least 1024 bytes"),
    ("dashstream_max_message_size 1;", "value must be at least 1024 bytes"),
    ("dashstream_lag_interval 0;", "value must be between 10ms and "
     "3600000ms"),
])
def test_http_value_out_of_range(nginx, module, line, message):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE + "\n" + line)
    directive = line.split()[0]
    assert_fails(ng, r, '"%s" directive %s' % (directive, message),
                 directive)


def test_idle_timeout_must_outlast_the_ping_interval(nginx, module):
    """Idleness is judged when a ping is due: an idle timeout not longer
    than the ping period closes every subscriber before it can answer."""
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket;
            dashstream_ping_interval 5s;
            dashstream_idle_timeout 5s;
        }""")
    assert_fails(ng, r, '"dashstream_idle_timeout" (5000 ms) must be longer '
                 'than "dashstream_ping_interval" (5000 ms)',
                 "dashstream_idle_timeout")
    # the default idle timeout (60s) against an inherited ping interval
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        dashstream_ping_interval 90s;
        location = /ws { dashstream_websocket; }""")
    assert_fails(ng, r, '"dashstream_idle_timeout" (60000 ms) must be longer '
                 'than "dashstream_ping_interval" (90000 ms)',
                 "dashstream_ping_interval")


@pytest.mark.parametrize("outer,inner", [
    ("dashstream_idle_timeout 10s;", "dashstream_ping_interval 5s;"),
    ("dashstream_ping_interval 90s;", "dashstream_idle_timeout 120s;"),
])
@pytest.mark.parametrize("level", ["http", "server"])
def test_ping_and_idle_set_at_different_levels_pass(nginx, module, outer,
                                                    inner, level):
    """Only the location that serves the websocket has both values final:
    an outer level may set one that its location completes."""
    http = BROKERS + "\n" + ZONE + ("\n" + outer if level == "http" else "")
    server = ("    " + outer if level == "server" else "") + """
        location = /ws {
            dashstream_websocket;
            %s
        }""" % inner
    ng, r = check(nginx, http=http, server=server)
    assert_passes(ng, r)


def test_lag_timeout_against_interval_points_at_the_directive(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE + """
        dashstream_lag_interval 1s;
        dashstream_lag_timeout 5s;""")
    assert_fails(ng, r, '"dashstream_lag_timeout" (5000 ms) must be shorter '
                 'than "dashstream_lag_interval" (1000 ms)',
                 "dashstream_lag_timeout")
    # the default timeout (2s) against a short interval
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE + """
        dashstream_lag_interval 1s;""")
    assert_fails(ng, r, '"dashstream_lag_timeout" (2000 ms) must be shorter '
                 'than "dashstream_lag_interval" (1000 ms)',
                 "dashstream_lag_interval")


@pytest.mark.parametrize("topic", ["", "dashstream_topic events;"])
def test_dead_letter_topic_cannot_be_the_consumed_topic(nginx, module, topic):
    """Dead letters written to the consumed topic would be read back,
    fail again and be dead-lettered again, forever."""
    name = "events" if topic else "dashstream-quality"
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE + "\n" + topic +
                  "\ndashstream_dlq_topic %s;" % name)
    assert_fails(ng, r, '"dashstream_dlq_topic" "%s" is the topic the module '
                 'consumes: undecodable records would come back from it '
                 'forever' % name, "dashstream_dlq_topic")


def test_zone_too_small_for_its_records_points_at_the_zone(nginx, module):
    ng, r = check(nginx, http=BROKERS + """
        dashstream_zone ds 8m records=67108864;
        dashstream_max_message_size 1m;""")
    assert r.returncode == 1
    assert emergs(r) == ['dashstream_zone "ds" of 8388608 bytes is too small '
                         'for 67108864 records in %s:%d'
                         % (ng.conf_path, ng.line_of(" dashstream_zone"))]


@pytest.mark.parametrize("origin", [
    "http://a:99999", "http://a:0", "http://a:", "http://:80", "://a",
    "http//a", "http://a/", "http://a:80/x", "http://[::1", "1http:/x",
    "https://[zz]", "http://a:00080", "'http://a b'", "http://u@a",
])
def test_bad_origin_is_refused(nginx, module, origin):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket;
            dashstream_allowed_origins %s;
        }""" % origin)
    assert_fails(ng, r, 'invalid origin "%s": expected scheme://host[:port] '
                 'or *' % origin.strip("'"), "dashstream_allowed_origins")


def test_good_origins_pass(nginx, module):
    ng, r = check(nginx, http=BROKERS + "\n" + ZONE, server="""
        location = /ws {
            dashstream_websocket;
            dashstream_allowed_origins https://a.example http://a:65535
                chrome-extension://abc http://[::1]:8080 http://[::1];
        }""")
    assert_passes(ng, r)
