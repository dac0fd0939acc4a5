"""Client frames after a valid upgrade (RFC 6455 sections 5 and 7), sent as
raw bytes to a real nginx with the module, answered with the exact close
code and reason of src/ngx_http_dashstream_wsframe.c.

Close codes: 1002 for a broken frame, 1007 for text (or a close reason)
that is not UTF-8, 1009 for a message over dashstream_client_max_message,
1003 for a binary message (the stream is one-way), 1001 for an idle
subscriber.  A client's close is echoed with its code; a close without a
code is answered with 1000.

After a close it started, the server waits up to 2 s from when its close
frame is written (send_timeout bounds the writing) for the client's close
frame and then drops the TCP connection; after a protocol error
(1002/1007/1009) it cannot read frames any more and closes the TCP
connection as soon as its close frame is out.
"""

import socket
import struct
import time

import pytest

from lib import procs, shared
from lib.net import wait_for
from lib.ws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                    Frame, RawWS)

MAX = 1024          # dashstream_client_max_message of /ws
CLOSE_WAIT = 2.0    # NGX_HTTP_DASHSTREAM_CLOSE_MS
PING_MS, IDLE_MS = 200, 700

RESET = b'{"type":"cursor_reset"}'


@pytest.fixture(scope="module")
def server(workdir, kafka, request):
    topic, cleanup = shared.topic(kafka, "frames")
    try:
        yield from shared.nginx(workdir, request, http="""
            dashstream_brokers %s;
            dashstream_topic %s;
            dashstream_group_id g-%s;
            dashstream_zone ds 8m;
        """ % (kafka.bootstrap, topic, topic), server="""
            location = /ws {
                dashstream_websocket;
                dashstream_client_max_message %d;
            }
            location = /idle {
                dashstream_websocket;
                dashstream_ping_interval %dms;
                dashstream_idle_timeout %dms;
            }
            location = /metrics { dashstream_metrics; }
        """ % (MAX, PING_MS, IDLE_MS))
    finally:
        cleanup()


@pytest.fixture
def ng(server):
    with shared.per_test(server) as mark:
        server.mark = mark
        yield server


@pytest.fixture
def conn(ng):
    """An upgraded raw connection to /ws."""
    with RawWS(ng.port) as rw:
        status, _, _ = rw.upgrade("/ws")
        assert status == 101
        yield rw


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def log_has(ng, text):
    return text in ng.error_log_text(ng.mark.offset)


def control_reply(rw):
    """The next frame from the server that is not one of its pings."""
    while True:
        f = rw.read_frame()
        if f is None or f.opcode != OP_PING:
            return f


# -- protocol errors: exact close code and reason, then TCP ends -----------

F = RawWS.frame

ERRORS = [
    # id, bytes, code, reason
    ("unmasked-text", F(OP_TEXT, RESET, mask=False),
     1002, "unmasked client frame"),
    ("unmasked-ping", F(OP_PING, b"x", mask=False),
     1002, "unmasked client frame"),
    ("unmasked-close", F(OP_CLOSE, close_payload(1000), mask=False),
     1002, "unmasked client frame"),
    ("rsv1", F(OP_TEXT, RESET, rsv=4), 1002, "reserved bits set"),
    ("rsv2", F(OP_TEXT, RESET, rsv=2), 1002, "reserved bits set"),
    ("rsv3", F(OP_TEXT, RESET, rsv=1), 1002, "reserved bits set"),
    ("rsv-on-ping", F(OP_PING, b"", rsv=7), 1002, "reserved bits set"),
    ("opcode-3", F(0x3, b"x"), 1002, "unknown opcode"),
    ("opcode-7", F(0x7, b"x"), 1002, "unknown opcode"),
    ("opcode-B", F(0xB, b"x"), 1002, "unknown opcode"),
    ("opcode-F", F(0xF, b""), 1002, "unknown opcode"),
    ("fragmented-ping", F(OP_PING, b"x", fin=False),
     1002, "fragmented control frame"),
    ("fragmented-pong", F(OP_PONG, b"x", fin=False),
     1002, "fragmented control frame"),
    ("fragmented-close", F(OP_CLOSE, close_payload(1000), fin=False),
     1002, "fragmented control frame"),
    ("ping-126", F(OP_PING, b"p" * 126), 1002, "control frame too long"),
    ("pong-200", F(OP_PONG, b"p" * 200), 1002, "control frame too long"),
    ("close-126", F(OP_CLOSE, close_payload(1000, b"r" * 124)),
     1002, "control frame too long"),
    ("continuation-first", F(OP_CONT, b"x"),
     1002, "continuation without a message"),
    ("continuation-after-whole", F(OP_TEXT, RESET) + F(OP_CONT, b"x"),
     1002, "continuation without a message"),
    ("text-inside-text", F(OP_TEXT, b"{", fin=False) + F(OP_TEXT, b"}"),
     1002, "new message inside a fragmented one"),
    ("binary-inside-text", F(OP_TEXT, b"{", fin=False) + F(OP_BINARY, b"}"),
     1002, "new message inside a fragmented one"),
    ("length-top-bit", F(OP_TEXT, b"", length=1 << 63),
     1002, "frame length has its top bit set"),
    ("utf8-ff", F(OP_TEXT, b"\xff"), 1007, "text message is not UTF-8"),
    ("utf8-overlong", F(OP_TEXT, b"\xc0\xaf"),
     1007, "text message is not UTF-8"),
    ("utf8-surrogate", F(OP_TEXT, b'"\xed\xa0\x80"'),
     1007, "text message is not UTF-8"),
    ("utf8-above-10ffff", F(OP_TEXT, b"\xf4\x90\x80\x80"),
     1007, "text message is not UTF-8"),
    ("utf8-truncated", F(OP_TEXT, b"ok\xe2\x82"),
     1007, "text message is not UTF-8"),
    ("utf8-bad-across-fragments", F(OP_TEXT, b"\xe2", fin=False)
     + F(OP_CONT, b"\x28\xa1"), 1007, "text message is not UTF-8"),
    ("too-big", F(OP_TEXT, b" " * (MAX + 1)), 1009, "message too big"),
    ("too-big-fragmented", F(OP_TEXT, b" " * 1000, fin=False)
     + F(OP_CONT, b" " * (MAX - 1000 + 1)), 1009, "message too big"),
    # the header alone is enough: the server does not wait for the payload
    ("too-big-header-16", F(OP_TEXT, b"", length=MAX + 1),
     1009, "message too big"),
    ("too-big-header-64", F(OP_BINARY, b"", length=1 << 40),
     1009, "message too big"),
    ("close-1-byte", F(OP_CLOSE, b"\x03"),
     1002, "close frame with a 1-byte payload"),
    ("close-code-0", F(OP_CLOSE, close_payload(0)),
     1002, "invalid close code"),
    ("close-code-999", F(OP_CLOSE, close_payload(999)),
     1002, "invalid close code"),
    ("close-code-1004", F(OP_CLOSE, close_payload(1004)),
     1002, "invalid close code"),
    ("close-code-1005", F(OP_CLOSE, close_payload(1005)),
     1002, "invalid close code"),
    ("close-code-1006", F(OP_CLOSE, close_payload(1006)),
     1002, "invalid close code"),
    ("close-code-1015", F(OP_CLOSE, close_payload(1015)),
     1002, "invalid close code"),
    ("close-code-2999", F(OP_CLOSE, close_payload(2999)),
     1002, "invalid close code"),
    ("close-code-5000", F(OP_CLOSE, close_payload(5000)),
     1002, "invalid close code"),
    ("close-reason-not-utf8", F(OP_CLOSE, close_payload(1000, b"\xff")),
     1007, "close reason is not UTF-8"),
]


@pytest.mark.parametrize("data,code,reason", [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_protocol_error(ng, conn, data, code, reason):
    conn.send(data)
    start = time.monotonic()
    assert conn.read_close() == (code, reason)
    # failed: the server closes the TCP connection without waiting for a
    # close frame it could not read anyway
    assert conn.at_eof(CLOSE_WAIT - 0.5), "TCP still open"
    assert time.monotonic() - start < CLOSE_WAIT - 0.5
    assert log_has(ng, "dashstream: websocket protocol error: " + reason)


def test_protocol_error_ignores_the_clients_close(ng, conn):
    """A client that does answer the 1002 with its close frame: the server
    logs the error once and closes; it does not count the close frame as
    another protocol error or wait for it."""
    conn.send_frame(OP_TEXT, RESET, mask=False)
    assert conn.read_close() == (1002, "unmasked client frame")
    conn.send_close(1002)
    assert conn.at_eof(CLOSE_WAIT - 0.5)
    log = ng.error_log_text(ng.mark.offset)
    assert log.count("websocket protocol error") == 1, log
    assert "no close frame from the subscriber" not in log


def test_garbage_after_the_upgrade(ng, conn):
    """An HTTP request where frames belong: bytes parsed as frames, the
    first one ("G" = 0x47: RSV bits set) fails."""
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.read_close() == (1002, "reserved bits set")
    assert conn.at_eof(CLOSE_WAIT - 0.5)


def test_binary_message_is_refused_with_1003(ng, conn):
    """Not a protocol error: the server closes with 1003 and completes the
    close handshake when the client answers."""
    conn.send_frame(OP_BINARY, b"\x00\x01\x02")
    assert conn.read_close() == (1003, "binary messages are not accepted")
    # frames after the server's close are read and ignored ...
    conn.send_frame(OP_TEXT, RESET)
    conn.send_frame(OP_PING, b"late")
    # ... until the client's close, which ends the connection
    conn.send_close(1000)
    assert conn.read_frame(timeout=CLOSE_WAIT - 0.5) is None
    assert conn.at_eof(CLOSE_WAIT - 0.5)
    assert not log_has(ng, "websocket protocol error")


def test_server_close_waits_for_the_client_then_drops(ng, conn):
    """A client that never answers the server's close: the TCP connection
    stays for the close-wait (2 s), then ends."""
    conn.send_frame(OP_BINARY, b"x")
    assert conn.read_close() == (1003, "binary messages are not accepted")
    start = time.monotonic()
    assert not conn.at_eof(CLOSE_WAIT - 1.0)
    assert conn.at_eof(CLOSE_WAIT + 3.0)
    assert CLOSE_WAIT - 1.0 <= time.monotonic() - start < CLOSE_WAIT + 3.0
    assert log_has(ng, "dashstream: no close frame from the subscriber "
                   "within 2000 ms")


# -- ping / pong -----------------------------------------------------------

@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(125)),
                                     "żółw".encode()],
                         ids=["empty", "hello", "125-bytes", "utf8"])
def test_ping_gets_pong_with_same_payload(conn, payload):
    conn.send_frame(OP_PING, payload)
    assert control_reply(conn) == Frame(True, 0, OP_PONG, payload)


def test_pings_in_one_packet_answered_in_order(conn):
    conn.send(b"".join(F(OP_PING, b"p%d" % i, mask_key=bytes([i, 0, 255, i]))
                       for i in range(5)))
    assert [control_reply(conn) for _ in range(5)] == \
        [Frame(True, 0, OP_PONG, b"p%d" % i) for i in range(5)]


def test_reader_buffer_is_given_back_between_messages(ng, conn):
    """The reader's buffer (dashstream_client_max_message + 125 bytes) is
    taken for each burst of client frames and given back when the burst is
    read.  With a 1k limit it is smaller than the request pool's
    large-allocation threshold: ngx_pfree() kept it in the pool and each
    round trip added 1.1 KiB to the worker (9 MiB for 8,000)."""
    worker, = ng.worker_pids()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ping = F(OP_PING, b"leak", mask_key=b"\x01\x02\x03\x04")

    def round_trips(n):
        for _ in range(n):
            conn.send(ping)
            assert control_reply(conn) == Frame(True, 0, OP_PONG, b"leak")

    round_trips(500)
    before = procs.rss_kib(worker)
    round_trips(8000)
    grown = procs.rss_kib(worker) - before
    print("worker RSS grew %d KiB over 8,000 round trips" % grown)
    assert grown < 1024, grown


def test_frame_split_across_packets(conn):
    """The mask key cycles over the whole frame, not over each read."""
    data = F(OP_PING, b"abcdefghij", mask_key=b"\x01\x02\x03\x04")
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        conn.send(data[i:i + 1])
        time.sleep(0.005)       # separate TCP segments, not a wait
    assert control_reply(conn) == Frame(True, 0, OP_PONG, b"abcdefghij")


def test_unsolicited_pong_is_ignored(conn):
    conn.send_frame(OP_PONG, b"nobody asked")
    conn.send_frame(OP_PING, b"still there?")
    assert control_reply(conn) == Frame(True, 0, OP_PONG, b"still there?")


def test_ping_between_fragments(conn):
    """Control frames may come between the fragments of a message; the
    message is reassembled (and here answered as DashFlow)."""
    conn.send_frame(OP_TEXT, b'{"type":', fin=False)
    conn.send_frame(OP_PING, b"mid")
    conn.send_frame(OP_CONT, b'"cursor_', fin=False)
    conn.send_frame(OP_CONT, b'reset"}')
    assert control_reply(conn) == Frame(True, 0, OP_PONG, b"mid")
    f = control_reply(conn)
    assert (f.fin, f.opcode) == (True, OP_TEXT)
    assert f.payload == b'{"type":"cursor_reset_complete",' \
                       b'"latestOffsetsByPartition":{}}'


def test_utf8_split_across_fragments_is_valid(conn):
    """A character cut between two fragments is fine: UTF-8 is checked on
    the whole message (a JSON string, so the DashFlow reply is an error
    about the type, not about the text)."""
    conn.send_frame(OP_TEXT, b'"\xc5', fin=False)
    conn.send_frame(OP_CONT, b'\xbc"')
    f = control_reply(conn)
    assert f.opcode == OP_TEXT
    assert f.payload == b'{"type":"error","code":"MISSING_TYPE",' \
                       b'"message":"message is not a JSON object"}'


def test_message_of_exactly_the_limit(conn):
    msg = RESET + b" " * (MAX - len(RESET))
    assert len(msg) == MAX
    conn.send(F(OP_TEXT, msg[:500], fin=False) + F(OP_CONT, msg[500:]))
    f = control_reply(conn)
    assert f.payload.startswith(b'{"type":"cursor_reset_complete"')
    conn.send_frame(OP_TEXT, msg + b" ")
    assert conn.read_close() == (1009, "message too big")


# -- the close handshake ---------------------------------------------------

@pytest.mark.parametrize("code,reason", [
    (1000, b""), (1000, b"bye"), (1001, b"going"), (1003, b""), (1011, b""),
    (1014, b""), (3000, b"registered"), (4999, "prywatny".encode())],
    ids=lambda v: str(v) if isinstance(v, int) else None)
def test_client_close_is_echoed(ng, conn, code, reason):
    conn.send_close(code, reason)
    f = conn.read_frame()
    assert f == Frame(True, 0, OP_CLOSE, close_payload(code))
    # the server closes the TCP connection right after its close frame
    assert conn.read_frame(timeout=1.0) is None
    assert conn.at_eof(1.0)
    assert not log_has(ng, "websocket protocol error")


def test_close_without_code_is_answered_with_1000(conn):
    """An empty close frame means "no status" (1005, never on the wire); the
    server answers with a close frame carrying 1000 and no reason."""
    conn.send_frame(OP_CLOSE, b"")
    assert conn.read_frame() == Frame(True, 0, OP_CLOSE, b"\x03\xe8")
    assert conn.at_eof(1.0)


def test_close_in_the_middle_of_a_fragmented_message(conn):
    conn.send_frame(OP_TEXT, b'{"type":', fin=False)
    conn.send_close(1000)
    assert conn.read_frame() == Frame(True, 0, OP_CLOSE, close_payload(1000))
    assert conn.at_eof(1.0)


def test_frames_after_the_clients_close_are_not_read(conn):
    conn.send(F(OP_CLOSE, close_payload(1000)) + F(OP_PING, b"after")
              + F(OP_TEXT, RESET))
    assert conn.read_frame() == Frame(True, 0, OP_CLOSE, close_payload(1000))
    assert conn.read_frame(timeout=1.0) is None
    assert conn.at_eof(1.0)


def test_tcp_end_without_close_frame_removes_the_subscriber(ng):
    with RawWS(ng.port) as rw:
        assert rw.upgrade("/ws")[0] == 101
        rw.send_frame(OP_PING, b"x")
        assert control_reply(rw).opcode == OP_PONG
        assert shared.connected(ng) == 1
    wait_for(lambda: shared.connected(ng) == 0, 5, what="subscriber gone")
    assert log_has(ng, "dashstream: subscriber closed the connection "
                   "without a close frame")


# -- keepalive: pings and the idle timeout ---------------------------------

def test_idle_subscriber_gets_pings_then_1001(ng):
    with RawWS(ng.port) as rw:
        assert rw.upgrade("/idle")[0] == 101
        start = time.monotonic()
        frames = []
        while True:
            f = rw.read_frame(timeout=IDLE_MS / 1000 + 3)
            assert f is not None, "EOF before the close frame"
            frames.append((round(time.monotonic() - start, 2), f))
            if f.opcode == OP_CLOSE:
                break
        took = frames[-1][0]
        pings = [f for _, f in frames[:-1]]
        assert frames[-1][1] == Frame(True, 0, OP_CLOSE,
                                      close_payload(1001, b"idle timeout"))
        # a ping every 200 ms until 700 ms without a frame from the client
        assert pings and all(p == Frame(True, 0, OP_PING, b"")
                             for p in pings), frames
        # the check runs with each ping: the close comes with the first one
        # due at or after 700 ms (800 ms), after the pings at 200, 400, 600
        assert IDLE_MS / 1000 <= took < (IDLE_MS + PING_MS) / 1000 + 0.5
        assert len(pings) == IDLE_MS // PING_MS, frames
        rw.send_close(1001)
        assert rw.read_frame(timeout=1.0) is None
        assert rw.at_eof(1.0)
    assert log_has(ng, "dashstream: subscriber idle for ")


def test_pong_keeps_a_subscriber_alive(ng):
    """A client answering every ping stays well past the idle timeout;
    when it stops answering it is closed with 1001."""
    with RawWS(ng.port) as rw:
        assert rw.upgrade("/idle")[0] == 101
        deadline = time.monotonic() + 3 * IDLE_MS / 1000
        pings = 0
        while time.monotonic() < deadline:
            f = rw.read_frame(timeout=1.0)
            assert f == Frame(True, 0, OP_PING, b""), f
            pings += 1
            rw.send_frame(OP_PONG, b"")
        assert pings >= 2 * IDLE_MS // PING_MS
        stopped = time.monotonic()
        while True:
            f = rw.read_frame(timeout=IDLE_MS / 1000 + 2)
            assert f is not None
            if f.opcode == OP_CLOSE:
                break
        assert f.payload == close_payload(1001, b"idle timeout")
        assert time.monotonic() - stopped >= IDLE_MS / 1000 - PING_MS / 1000
