"""The websocket opening handshake (RFC 6455 section 4) against a real nginx
with the module and a real Kafka broker behind it.

Every rule of ngx_http_dashstream_ws_check() is exercised with raw bytes on
a socket and checked exactly: status line, the headers that matter, and the
one-line text/plain reason.  Rejections are logged at info level
("dashstream: websocket handshake rejected with N: reason"); the shared
counter behind them (handshake_rejected) is not exported by the metrics
location, so the log line and websocket_connected_clients are what a test
can observe.
"""

import base64
import hashlib
import os

import pytest

from lib import prom, shared, ws
from lib.net import wait_for

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

R_GET = "a websocket handshake must be a GET request"
R_UPGRADE = ("this location speaks only websocket "
             "(HTTP/1.1 with \"Upgrade: websocket\")")
R_CONNECTION = "the \"Connection\" header lacks the \"upgrade\" token"
R_VERSION = ("unsupported or missing Sec-WebSocket-Version: "
             "this server speaks version 13")
R_KEY = "missing, repeated or invalid Sec-WebSocket-Key"
R_BODY = "a websocket handshake must not have a body"


@pytest.fixture(scope="module")
def server(workdir, kafka, request):
    topic, cleanup = shared.topic(kafka, "handshake")
    try:
        yield from shared.nginx(workdir, request, http="""
            dashstream_brokers %s;
            dashstream_topic %s;
            dashstream_group_id g-%s;
            dashstream_zone ds 8m;
        """ % (kafka.bootstrap, topic, topic), server="""
            location = /ws { dashstream_websocket; }
            location = /metrics { dashstream_metrics; }
            location = /plain { return 200 "plain\\n"; }
        """)
    finally:
        cleanup()


@pytest.fixture
def ng(server):
    with shared.per_test(server) as mark:
        server.mark = mark
        yield server


def accept_of(key):
    return base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
        .digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def request(method="GET", path="/ws", version="HTTP/1.1", headers=None,
            body=b""):
    """Bytes of a request; headers is a list of (name, value), in order,
    repeats allowed."""
    head = "%s %s %s\r\n" % (method, path, version) + "".join(
        "%s: %s\r\n" % kv for kv in headers or []) + "\r\n"
    return head.encode() + body


def ws_headers(key=None, **override):
    """The headers of a valid handshake as a list; override by name (None
    drops the header)."""
    h = [("Host", "127.0.0.1"), ("Upgrade", "websocket"),
         ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key or new_key()),
         ("Sec-WebSocket-Version", "13")]
    out = []
    for name, value in h:
        k = name.lower().replace("-", "_")
        if k in override:
            value = override.pop(k)
        if value is not None:
            out.append((name, value))
    assert not override, override
    return out


def connected(ng):
    return shared.connected(ng)


def rejected_lines(ng):
    return [line.split("rejected with ", 1)[1].split(", client: ")[0]
            for line in ng.error_log_text(ng.mark.offset).splitlines()
            if "dashstream: websocket handshake rejected with " in line]


def exchange(ng, data):
    """Send data on a fresh connection: (status, reason, headers, body)."""
    with ws.RawWS(ng.port) as rw:
        rw.send(data)
        status, reason, headers = rw.read_http_head()
        return status, reason, headers, rw.read_body(headers)


# -- the valid handshake ---------------------------------------------------

def test_rfc_sample_key_gets_rfc_accept(ng):
    assert accept_of(RFC_KEY) == RFC_ACCEPT     # our helper agrees with RFC
    with ws.RawWS(ng.port) as rw:
        status, reason, headers = rw.upgrade("/ws", key=RFC_KEY)
        assert (status, reason) == (101, "Switching Protocols")
        assert headers["upgrade"] == "websocket"
        assert headers["connection"] == "upgrade"
        assert headers["sec-websocket-accept"] == RFC_ACCEPT
        # a 101 has no body: neither a length nor chunked framing
        assert "content-length" not in headers
        assert "transfer-encoding" not in headers
        assert "content-type" not in headers
        assert "sec-websocket-protocol" not in headers
        assert "sec-websocket-extensions" not in headers
        assert rw.buf == b""
        # and the connection now speaks websocket
        rw.send_frame(ws.OP_PING, b"hello")
        assert rw.read_frame() == ws.Frame(True, 0, ws.OP_PONG, b"hello")
        assert wait_for(lambda: connected(ng) == 1, 5, what="1 client")
    assert wait_for(lambda: connected(ng) == 0, 5, what="0 clients")
    assert rejected_lines(ng) == []


@pytest.mark.parametrize("override", [
    {"upgrade": "WebSocket"},
    {"upgrade": "h2c, websocket"},
    {"connection": "keep-alive, Upgrade"},
    {"connection": "UPGRADE"},
], ids=lambda o: "%s=%s" % next(iter(o.items())))
def test_token_lists_and_case_are_accepted(ng, override):
    key = new_key()
    status, reason, headers, body = exchange(
        ng, request(headers=ws_headers(key, **override)))
    assert (status, reason) == (101, "Switching Protocols")
    assert headers["sec-websocket-accept"] == accept_of(key)
    assert body == b""


def test_content_length_zero_is_not_a_body(ng):
    key = new_key()
    status, _, headers, _ = exchange(ng, request(
        headers=ws_headers(key) + [("Content-Length", "0")]))
    assert status == 101
    assert headers["sec-websocket-accept"] == accept_of(key)


def test_first_frame_in_the_handshake_packet(ng):
    """A client may send its first frame right behind the request."""
    key = new_key()
    with ws.RawWS(ng.port) as rw:
        rw.send(request(headers=ws_headers(key))
                + ws.RawWS.frame(ws.OP_PING, b"early"))
        status, _, headers = rw.read_http_head()
        assert status == 101
        assert rw.read_frame() == ws.Frame(True, 0, ws.OP_PONG, b"early")


def test_real_client_handshake(ng):
    with ws.Client(ng.ws_url("/ws")) as c:
        assert c.status == 101
        assert wait_for(lambda: connected(ng) == 1, 5, what="1 client")


# -- rejections ------------------------------------------------------------

# RFC 9110 15.5.6: a 405 lists the allowed methods
ALLOW_HDR = {"allow": "GET"}
VERSION_HDR = {"sec-websocket-version": "13"}
UPGRADE_HDRS = {"upgrade": "websocket", "sec-websocket-version": "13"}

REJECTIONS = [
    # id, request bytes, status, reason phrase, extra headers, body line
    ("POST", request("POST", headers=ws_headers()),
     405, "Not Allowed", ALLOW_HDR, R_GET),
    ("POST-with-body", request("POST", headers=ws_headers()
                               + [("Content-Length", "5")], body=b"hello"),
     405, "Not Allowed", ALLOW_HDR, R_GET),
    ("PUT", request("PUT", headers=ws_headers()),
     405, "Not Allowed", ALLOW_HDR, R_GET),
    ("HTTP/1.0", request(version="HTTP/1.0", headers=ws_headers()),
     426, "Upgrade Required", UPGRADE_HDRS, R_UPGRADE),
    ("no-Upgrade", request(headers=ws_headers(upgrade=None)),
     426, "Upgrade Required", UPGRADE_HDRS, R_UPGRADE),
    ("Upgrade-h2c", request(headers=ws_headers(upgrade="h2c")),
     426, "Upgrade Required", UPGRADE_HDRS, R_UPGRADE),
    ("Upgrade-websocketx", request(headers=ws_headers(upgrade="websocketx")),
     426, "Upgrade Required", UPGRADE_HDRS, R_UPGRADE),
    ("no-Connection", request(headers=ws_headers(connection=None)),
     400, "Bad Request", VERSION_HDR, R_CONNECTION),
    ("Connection-keep-alive",
     request(headers=ws_headers(connection="keep-alive")),
     400, "Bad Request", VERSION_HDR, R_CONNECTION),
    ("Connection-upgrades", request(headers=ws_headers(connection="upgrades")),
     400, "Bad Request", VERSION_HDR, R_CONNECTION),
    ("no-Version", request(headers=ws_headers(sec_websocket_version=None)),
     426, "Upgrade Required", UPGRADE_HDRS, R_VERSION),
    ("Version-8", request(headers=ws_headers(sec_websocket_version="8")),
     426, "Upgrade Required", UPGRADE_HDRS, R_VERSION),
    ("Version-130", request(headers=ws_headers(sec_websocket_version="130")),
     426, "Upgrade Required", UPGRADE_HDRS, R_VERSION),
    ("Version-13-twice", request(headers=ws_headers()
                                 + [("Sec-WebSocket-Version", "13")]),
     426, "Upgrade Required", UPGRADE_HDRS, R_VERSION),
    ("no-Key", request(headers=ws_headers(sec_websocket_key=None)),
     400, "Bad Request", VERSION_HDR, R_KEY),
    ("Key-short", request(headers=ws_headers(sec_websocket_key="abc")),
     400, "Bad Request", VERSION_HDR, R_KEY),
    ("Key-bad-char", request(headers=ws_headers(
        sec_websocket_key="dGhlIHNhbXBsZSBub25j!Q==")),
     400, "Bad Request", VERSION_HDR, R_KEY),
    # the last digit carries 2 bits; "R" sets the 4 padding bits
    ("Key-padding-bits", request(headers=ws_headers(
        sec_websocket_key="dGhlIHNhbXBsZSBub25jZR==")),
     400, "Bad Request", VERSION_HDR, R_KEY),
    ("Key-20-bytes", request(headers=ws_headers(
        sec_websocket_key=base64.b64encode(b"x" * 20).decode())),
     400, "Bad Request", VERSION_HDR, R_KEY),
    ("Key-twice", request(headers=ws_headers(RFC_KEY)
                          + [("Sec-WebSocket-Key", RFC_KEY)]),
     400, "Bad Request", VERSION_HDR, R_KEY),
    ("Content-Length-body", request(headers=ws_headers()
                                    + [("Content-Length", "5")],
                                    body=b"hello"),
     400, "Bad Request", VERSION_HDR, R_BODY),
    ("chunked-body", request(headers=ws_headers()
                             + [("Transfer-Encoding", "chunked")],
                             body=b"5\r\nhello\r\n0\r\n\r\n"),
     400, "Bad Request", VERSION_HDR, R_BODY),
    # the order of the checks: the method first, then version/Upgrade
    ("POST-HTTP/1.0-no-key", request("POST", version="HTTP/1.0",
                                     headers=ws_headers(
                                         sec_websocket_key=None)),
     405, "Not Allowed", ALLOW_HDR, R_GET),
    ("no-Upgrade-no-Connection", request(headers=ws_headers(
        upgrade=None, connection=None)),
     426, "Upgrade Required", UPGRADE_HDRS, R_UPGRADE),
    ("bad-Connection-bad-Version", request(headers=ws_headers(
        connection="close", sec_websocket_version="7")),
     400, "Bad Request", VERSION_HDR, R_CONNECTION),
]


@pytest.mark.parametrize("data,status,phrase,extra,line",
                         [r[1:] for r in REJECTIONS],
                         ids=[r[0] for r in REJECTIONS])
def test_rejection(ng, data, status, phrase, extra, line):
    got_status, got_phrase, headers, body = exchange(ng, data)
    assert (got_status, got_phrase) == (status, phrase)
    assert headers["content-type"] == "text/plain"
    assert headers["content-length"] == str(len(line) + 1)
    assert body == (line + "\n").encode()
    for name in ("upgrade", "sec-websocket-version", "allow"):
        assert headers.get(name) == extra.get(name), name
    assert "sec-websocket-accept" not in headers
    assert rejected_lines(ng) == ["%d: %s" % (status, line)]
    assert connected(ng) == 0


def test_head_gets_headers_only(ng):
    """HEAD is not GET: 405 with the reason's length but no body bytes; the
    next response on the connection starts right after the head."""
    with ws.RawWS(ng.port) as rw:
        rw.send(request("HEAD", headers=ws_headers())
                + request("GET", "/plain", headers=[("Host", "x")]))
        status, phrase, headers = rw.read_http_head()
        assert (status, phrase) == (405, "Not Allowed")
        assert headers["content-length"] == str(len(R_GET) + 1)
        assert headers["content-type"] == "text/plain"
        assert headers["allow"] == "GET"
        assert "upgrade" not in headers
        status, _, headers = rw.read_http_head()
        assert status == 200
        assert rw.read_body(headers) == b"plain\n"
    assert rejected_lines(ng) == ["405: " + R_GET]


def test_http10_rejection_closes_the_connection(ng):
    with ws.RawWS(ng.port) as rw:
        rw.send(request(version="HTTP/1.0", headers=ws_headers()))
        status, _, headers = rw.read_http_head()
        assert status == 426
        assert headers["connection"] == "close"
        assert rw.read_body(headers) == (R_UPGRADE + "\n").encode()
        assert rw.at_eof(5)


def test_plain_http_client_gets_426(ng):
    """A browser or curl hitting the location without upgrading."""
    status, headers, body = ng.get("/ws")
    assert status == 426
    assert headers["upgrade"] == "websocket"
    assert headers["sec-websocket-version"] == "13"
    assert body == (R_UPGRADE + "\n").encode()


def test_rejection_keeps_http11_connection_usable(ng):
    """A 400 from the handshake check is an ordinary HTTP response: the
    keep-alive connection goes on, and a valid upgrade on it succeeds."""
    key = new_key()
    with ws.RawWS(ng.port) as rw:
        rw.send(request(headers=ws_headers(sec_websocket_key="abc")))
        status, _, headers = rw.read_http_head()
        assert status == 400
        assert headers["connection"] == "keep-alive"
        assert rw.read_body(headers) == (R_KEY + "\n").encode()
        rw.send(request(headers=ws_headers(key)))
        status, _, headers = rw.read_http_head()
        assert status == 101
        assert headers["sec-websocket-accept"] == accept_of(key)
        assert wait_for(lambda: connected(ng) == 1, 5, what="1 client")


def test_rejections_are_counted_in_the_log_not_as_clients(ng):
    bad = [r for r in REJECTIONS if r[0] in ("POST", "no-Upgrade",
                                             "no-Connection", "Key-twice")]
    for _, data, status, _, _, _ in bad:
        assert exchange(ng, data)[0] == status
    assert rejected_lines(ng) == ["%d: %s" % (r[2], r[5]) for r in bad]
    assert connected(ng) == 0
    s = prom.scrape(ng.url("/metrics"))
    # nothing was streamed to anybody
    assert prom.value(s.samples, "websocket_messages_sent_total") == 0
