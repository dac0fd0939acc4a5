"""Websocket clients for tests.

Client     real client (websocket-client): the DashFlow stream as
           Msg(partition, offset, data), control JSON, close codes.
Many       many concurrent real clients (websockets, asyncio) in a
           background thread, for fan-out tests.
RawWS      a plain socket: arbitrary handshakes and frames, reads the HTTP
           status line, frames and the close code, for protocol tests.

DashFlow stream (DESIGN.md §5): each Kafka record is a text frame
{"type":"cursor","partition":P,"offset":"O"} followed by a binary frame with
the value unchanged; other text frames are control JSON (replay_complete,
cursor_reset_complete, error, ...).  In raw protocol only binary frames come.
"""

import asyncio
import base64
import collections
import json
import os
import socket
import struct
import threading
import time

import websocket
import websockets

from . import net

Msg = collections.namedtuple("Msg", "partition offset data")
Frame = collections.namedtuple("Frame", "fin rsv opcode payload")

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


class ProtocolError(AssertionError):
    """The server broke the DashFlow framing (e.g. binary without cursor)."""


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__("websocket closed: %s %r" % (code, reason))
        self.code, self.reason = code, reason


def _close_payload(data):
    """(code, reason) of a close frame; 1005 (no status) when empty."""
    if len(data) >= 2:
        return struct.unpack("!H", data[:2])[0], \
            data[2:].decode(errors="replace")
    return 1005, ""


class _Stream:
    """Turns DashFlow/raw frames into data messages and control JSON."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.cursor = None
        self.msgs = collections.deque()
        self.ctl = collections.deque()

    def text(self, s):
        obj = json.loads(s)
        if self.protocol == "dashflow" and isinstance(obj, dict) \
                and obj.get("type") == "cursor":
            if self.cursor is not None:
                raise ProtocolError("two cursor frames in a row: %s" % s)
            if not isinstance(obj.get("offset"), str):
                raise ProtocolError("cursor offset not a string: %s" % s)
            self.cursor = (int(obj["partition"]), int(obj["offset"]))
        else:
            if self.cursor is not None:
                raise ProtocolError("text frame after a cursor: %s" % s)
            self.ctl.append(obj)

    def binary(self, data):
        if self.protocol == "raw":
            self.msgs.append(Msg(None, None, bytes(data)))
            return
        if self.cursor is None:
            raise ProtocolError("binary frame without a cursor frame")
        self.msgs.append(Msg(self.cursor[0], self.cursor[1], bytes(data)))
        self.cursor = None


class Client:
    """A real websocket client on the DashFlow (or raw) stream.

    Data messages and control JSON are buffered separately, so a test can
    wait for a control message while records keep arriving, and then take
    the records in order.
    """

    def __init__(self, url, protocol="dashflow", timeout=10, origin=None,
                 headers=None, subprotocols=None):
        self.url = url
        self.timeout = timeout
        self.stream = _Stream(protocol)
        self.close_code = None
        self.close_reason = None
        kw = {"timeout": timeout}
        if origin is not None:
            kw["origin"] = origin
        if headers:
            kw["header"] = ["%s: %s" % kv for kv in headers.items()]
        if subprotocols:
            kw["subprotocols"] = list(subprotocols)
        self.ws = websocket.create_connection(url, **kw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()

    @property
    def status(self):
        return self.ws.getstatus()

    @property
    def response_headers(self):
        return self.ws.getheaders()

    def _pull(self, timeout):
        """Read one frame into the buffers; False on timeout."""
        if self.close_code is not None:
            raise Closed(self.close_code, self.close_reason)
        self.ws.settimeout(max(timeout, 0.001))
        try:
            op, frame = self.ws.recv_data_frame(control_frame=False)
        except websocket.WebSocketTimeoutException:
            return False
        except websocket.WebSocketConnectionClosedException:
            self.close_code, self.close_reason = 1006, ""
            raise Closed(1006, "")
        if op == OP_CLOSE:
            self.close_code, self.close_reason = _close_payload(frame.data)
            raise Closed(self.close_code, self.close_reason)
        if op == OP_TEXT:
            self.stream.text(frame.data.decode())
        elif op == OP_BINARY:
            self.stream.binary(frame.data)
        return True

    def recv_messages(self, n, timeout=30):
        """The next n data messages ([Msg]); raises TimeoutError (saying how
        many came) or Closed."""
        deadline = time.monotonic() + timeout
        while len(self.stream.msgs) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: got %d of %d messages in %.1fs"
                                   % (self.url, len(self.stream.msgs), n,
                                      timeout))
            self._pull(min(left, 1.0))
        return [self.stream.msgs.popleft() for _ in range(n)]

    def recv_json(self, type=None, timeout=10):
        """The next control JSON (of that "type" if given); records arriving
        meanwhile stay buffered for recv_messages()."""
        deadline = time.monotonic() + timeout
        while True:
            for i, obj in enumerate(self.stream.ctl):
                if type is None or obj.get("type") == type:
                    del self.stream.ctl[i]
                    return obj
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: no %s control message in %.1fs"
                                   % (self.url, type or "", timeout))
            self._pull(min(left, 1.0))

    def drain(self, seconds):
        """Read for `seconds`; returns (messages, controls) that arrived,
        e.g. to assert that nothing more comes."""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self._pull(deadline - time.monotonic())
        except Closed:
            pass
        msgs, ctl = list(self.stream.msgs), list(self.stream.ctl)
        self.stream.msgs.clear()
        self.stream.ctl.clear()
        return msgs, ctl

    def send_json(self, obj):
        self.ws.send(json.dumps(obj))

    def send_resume(self, offsets, from_="cursor", mode="partition"):
        """Resume after {partition: last offset seen} (ints or strings)."""
        self.send_json({"type": "resume",
                        "lastOffsetsByPartition": {str(p): str(o) for p, o
                                                   in offsets.items()},
                        "from": from_, "mode": mode})

    def send_cursor_reset(self):
        self.send_json({"type": "cursor_reset"})

    def wait_close(self, timeout=10):
        """Read until the server's close frame: (code, reason); 1006 when
        the connection ended without one."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%s: no close in %.1fs"
                                       % (self.url, timeout))
                self._pull(min(left, 1.0))
        except Closed as c:
            return c.code, c.reason

    def close(self, code=1000, reason="", timeout=5):
        """Close handshake from our side; returns the server's close code."""
        if self.close_code is None:
            try:
                self.ws.send_close(code, reason.encode())
                return self.wait_close(timeout)
            except (websocket.WebSocketException, OSError):
                pass
            finally:
                self.abort()
        return self.close_code

    def abort(self):
        try:
            self.ws.shutdown()
        except Exception:
            pass


class Many:
    """n concurrent clients (websockets/asyncio) in a background thread.

        with ws.Many(url, 100) as many:     # all connected on return
            ...produce...
            per_client = many.collect(count, timeout=60)   # [[Msg]]
    """

    def __init__(self, url, n, protocol="dashflow", timeout=30):
        self.url, self.n, self.protocol = url, n, protocol
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.streams = [_Stream(protocol) for _ in range(n)]
        self.close_codes = [None] * n
        self.errors = []
        self.conns = []
        self.tasks = []

    def _run(self, coro, timeout):
        return asyncio.run_coroutine_threadsafe(coro, self.loop) \
            .result(timeout)

    async def _connect(self):
        self.conns = await asyncio.gather(*[
            websockets.connect(self.url, max_size=None, open_timeout=10,
                               ping_interval=None)
            for _ in range(self.n)])
        self.tasks = [asyncio.ensure_future(self._reader(i, c))
                      for i, c in enumerate(self.conns)]

    async def _reader(self, i, conn):
        s = self.streams[i]
        try:
            async for data in conn:
                if isinstance(data, str):
                    s.text(data)
                else:
                    s.binary(data)
        except websockets.ConnectionClosed:
            pass
        except Exception as e:      # ProtocolError and friends
            self.errors.append((i, e))
        self.close_codes[i] = conn.close_code

    def __enter__(self):
        self.thread.start()
        self._run(self._connect(), self.timeout)
        return self

    def collect(self, count, timeout=60):
        """Wait until every client has count messages; returns them per
        client (and removes them from the buffers)."""
        def enough():
            if self.errors:
                raise self.errors[0][1]
            return all(len(s.msgs) >= count for s in self.streams)
        try:
            net.wait_for(enough, timeout, 0.05,
                         "%d clients x %d messages" % (self.n, count))
        except TimeoutError as e:
            raise TimeoutError("%s; got %s" % (e, sorted(
                len(s.msgs) for s in self.streams)))
        return [[s.msgs.popleft() for _ in range(count)]
                for s in self.streams]

    async def _close(self):
        await asyncio.gather(*[c.close() for c in self.conns],
                             return_exceptions=True)
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def __exit__(self, *exc):
        try:
            self._run(self._close(), 15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class RawWS:
    """A bare TCP connection speaking whatever bytes a test gives it."""

    def __init__(self, port, host=net.HOST, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, deadline):
        """Read more bytes; False on EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from server")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from server")
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise EOFError("connection closed after %d of %d bytes"
                               % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_http_head(self, timeout=None):
        """(status, reason, {lowercased header: value}) of the response."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise EOFError("connection closed before response head: %r"
                               % self.buf[:200])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(parts[1]), parts[2] if len(parts) > 2 else "", headers

    def read_body(self, headers, timeout=None):
        n = int(headers.get("content-length", "0"))
        return self.read_exact(n, timeout) if n else b""

    def upgrade(self, path="/", headers=None, omit=(), method="GET",
                version="HTTP/1.1", key=None):
        """Send a websocket handshake, tweaked by headers (add/override) and
        omit (header names to leave out); returns read_http_head()."""
        h = collections.OrderedDict([
            ("Host", "127.0.0.1"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key or base64.b64encode(
                os.urandom(16)).decode()),
            ("Sec-WebSocket-Version", "13"),
        ])
        for k, v in (headers or {}).items():
            for old in list(h):
                if old.lower() == k.lower():
                    del h[old]
            h[k] = v
        omit = {o.lower() for o in omit}
        req = "%s %s %s\r\n" % (method, path, version) + "".join(
            "%s: %s\r\n" % kv for kv in h.items() if kv[0].lower() not in omit)
        self.send(req + "\r\n")
        return self.read_http_head()

    @staticmethod
    def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None,
              length=None):
        """Bytes of one frame; length overrides the encoded payload length
        (to lie about it), rsv sets the RSV1-3 bits (0-7)."""
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            key = mask_key if mask_key is not None else os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            head += key
        return head + payload

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(self.frame(opcode, payload, **kw))

    def send_close(self, code=1000, reason=b""):
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason)

    def read_frame(self, timeout=None):
        """The next server frame (Frame), or None on EOF."""
        try:
            b0, b1 = self.read_exact(2, timeout)
        except EOFError:
            return None
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, timeout))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, timeout))[0]
        if b1 & 0x80:
            raise ProtocolError("server sent a masked frame")
        payload = self.read_exact(n, timeout) if n else b""
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)

    def read_close(self, timeout=None):
        """Skip frames until a close frame: (code, reason); (None, None) when
        the connection ended without one."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no close frame")
            try:
                f = self.read_frame(left)
            except EOFError:
                return None, None
            if f is None:
                return None, None
            if f.opcode == OP_CLOSE:
                return _close_payload(f.payload)

    def at_eof(self, timeout=2):
        """True if the server closes the TCP connection within timeout
        (after any bytes still in flight)."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except TimeoutError:
            return False
