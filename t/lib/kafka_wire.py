"""Just enough of the Kafka wire protocol to ask a broker what it is.

ApiVersions (v3, or v0 after UNSUPPORTED_VERSION) and an old Produce v2.

Request  = int32 size, header v2 {int16 api_key=18, int16 api_version=3,
           int32 correlation_id, nullable string client_id, tagged fields},
           body {compact string client_software_name, compact string
           client_software_version, tagged fields}
Response = int32 size, header v0 {int32 correlation_id} (ApiVersions keeps
           header v0 so old clients can read it), body {int16 error_code,
           compact array api_keys {int16 key, int16 min, int16 max, tagged},
           int32 throttle_time_ms, tagged fields: 0 SupportedFeatures,
           1 FinalizedFeaturesEpoch, 2 FinalizedFeatures, 3 ZkMigrationReady}
"""

import collections
import socket
import struct
import zlib

API_VERSIONS = 18

ApiVersions = collections.namedtuple(
    "ApiVersions", "version error_code api_keys throttle_ms supported"
    " finalized finalized_epoch zk_migration_ready")


def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated response at %d (+%d of %d)"
                             % (self.pos, n, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int16(self):
        return struct.unpack("!h", self.take(2))[0]

    def int32(self):
        return struct.unpack("!i", self.take(4))[0]

    def int64(self):
        return struct.unpack("!q", self.take(8))[0]

    def uvarint(self):
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def compact_array(self, item):
        n = self.uvarint()
        return None if n == 0 else [item(self) for _ in range(n - 1)]

    def tagged(self):
        """{tag: raw bytes} of a tagged-fields section."""
        return {self.uvarint(): self.take(self.uvarint())
                for _ in range(self.uvarint())}


def api_versions_request(version=3, correlation_id=1,
                         client_id="dashstream-test"):
    """ApiVersions v3 (flexible, header v2) or v0 (header v1, empty body)."""
    cid = client_id.encode()
    head = struct.pack("!hhih", API_VERSIONS, version, correlation_id,
                       len(cid)) + cid
    if version >= 3:
        body = head + uvarint(0) + compact_string("dashstream-test") \
            + compact_string("1") + uvarint(0)
    else:
        body = head
    return struct.pack("!i", len(body)) + body


def parse_api_versions(data, version=3, correlation_id=1):
    r = Reader(data)
    cid = r.int32()
    if cid != correlation_id:
        raise ValueError("correlation id %d, expected %d"
                         % (cid, correlation_id))
    error_code = r.int16()
    if version < 3:
        keys = {}
        for _ in range(r.int32()):
            k, lo, hi = r.int16(), r.int16(), r.int16()
            keys[k] = (lo, hi)
        return ApiVersions(version, error_code, keys, None, {}, {}, None,
                           None)
    if error_code != 0:
        # KIP-511: a broker that cannot answer v3 says so in an older
        # layout; the caller retries with v0
        return ApiVersions(version, error_code, {}, None, {}, {}, None, None)

    def key(rr):
        k, lo, hi = rr.int16(), rr.int16(), rr.int16()
        rr.tagged()
        return k, (lo, hi)
    keys = dict(r.compact_array(key) or [])
    throttle = r.int32()
    tags = r.tagged()
    if r.pos != len(data):
        raise ValueError("%d bytes left after the response"
                         % (len(data) - r.pos))

    def features(raw, swap):
        if raw is None:
            return {}
        fr = Reader(raw)

        def feat(rr):
            name, a, b = rr.compact_string(), rr.int16(), rr.int16()
            rr.tagged()
            return name, (b, a) if swap else (a, b)
        return dict(fr.compact_array(feat) or [])
    epoch = Reader(tags[1]).int64() if 1 in tags else None
    zk = bool(tags[3][0]) if 3 in tags else None
    # SupportedFeatures items are {min, max}; FinalizedFeatures items are
    # {max_version_level, min_version_level}: both returned as (min, max)
    return ApiVersions(version, error_code, keys, throttle,
                       features(tags.get(0), False),
                       features(tags.get(2), True), epoch, zk)


def _exchange(host, port, request, timeout):
    """Send request, return the response without its size prefix."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(
                "!i", data[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("connection closed after %d bytes"
                               % len(data))
            data += chunk
    return data[4:4 + struct.unpack("!i", data[:4])[0]]


def api_versions(host, port, version=3, timeout=10):
    """Ask host:port ApiVersions (v3 or v0) over a plain socket."""
    return parse_api_versions(
        _exchange(host, port, api_versions_request(version), timeout),
        version)


def probe(host, port, timeout=10):
    """ApiVersions v3; v0 if the broker answers v3 with UNSUPPORTED_VERSION
    (35), as a client would (KIP-511)."""
    r = api_versions(host, port, 3, timeout)
    if r.error_code == 35:
        r = api_versions(host, port, 0, timeout)
    return r


def _message_v1(value, timestamp_ms=0):
    """One magic-1 message (the pre-0.11 format Produce v2 carries)."""
    body = struct.pack("!bbq", 1, 0, timestamp_ms) + struct.pack("!i", -1) \
        + struct.pack("!i", len(value)) + value
    msg = struct.pack("!I", zlib.crc32(body)) + body
    return struct.pack("!qi", 0, len(msg)) + msg


def produce_request(topic, partition, value, version=2, correlation_id=2,
                    client_id="dashstream-test"):
    """A non-flexible Produce request (v2 by default: magic-1 message)."""
    cid = client_id.encode()
    t = topic.encode()
    records = _message_v1(value)
    body = struct.pack("!hhih", 0, version, correlation_id, len(cid)) + cid \
        + struct.pack("!hii", 1, 5000, 1) + struct.pack("!h", len(t)) + t \
        + struct.pack("!ii", 1, partition) \
        + struct.pack("!i", len(records)) + records
    return struct.pack("!i", len(body)) + body


def produce_old(host, port, topic, partition=0, value=b"x", version=2,
                timeout=10):
    """Send an old-version Produce: ("closed", None) if the broker drops the
    connection without answering, ("answered", partition error code) if it
    answers."""
    try:
        data = _exchange(host, port,
                         produce_request(topic, partition, value, version),
                         timeout)
    except (EOFError, ConnectionResetError):
        return "closed", None
    r = Reader(data)
    r.int32()                       # correlation id
    r.int32()                       # one topic
    r.take(r.int16())               # its name
    r.int32()                       # one partition
    r.int32()                       # its index
    return "answered", r.int16()
