"""Undecodable payloads of every error type, the error type the module gives
each (a mirror of src/ngx_http_dashstream_decode.c's top-level rules), and
readers for the dead-letter records it writes."""

import base64
import hashlib
import json
import random
import struct
import warnings

from . import dashstream as ds

ERROR_TYPES = ("truncated", "invalid_protobuf", "decompress_failed",
               "too_large", "unknown_framing")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def zstd_bomb(declared=1 << 30, block=128 * 1024):
    """A valid zstd frame of RLE blocks: declared zero bytes (1 GiB) from a
    few KiB, built by hand (RFC 8878): single-segment frame header with a
    4-byte content size, then declared/block RLE blocks of one byte."""
    assert declared % block == 0
    out = bytearray(ZSTD_MAGIC)
    out.append(0xa0)                    # FCS 4 bytes, single segment
    out += struct.pack("<I", declared)
    n = declared // block
    for i in range(n):
        hdr = (block << 3) | (1 << 1) | (1 if i == n - 1 else 0)
        out += struct.pack("<I", hdr)[:3] + b"\x00"
    return b"\x01" + bytes(out)


def _varint(p, off):
    """(value, next offset), or ("truncated"|"invalid_protobuf", None)."""
    v = 0
    for n in range(10):
        if off + n == len(p):
            return "truncated", None
        v |= (p[off + n] & 0x7f) << (7 * n)
        if not p[off + n] & 0x80:
            return v, off + n + 1
    return "invalid_protobuf", None


def walk(p):
    """The module's top-level protobuf walk: None if it passes."""
    off = 0
    while off < len(p):
        tag, off = _varint(p, off)
        if off is None:
            return tag
        field, wire = tag >> 3, tag & 7
        if field == 0 or field > 0x1fffffff:
            return "invalid_protobuf"
        if wire in (0, 2):
            need, off = _varint(p, off)
            if off is None:
                return need
            if wire == 0:
                need = 0
        elif wire == 1:
            need = 8
        elif wire == 5:
            need = 4
        else:
            return "invalid_protobuf"
        if need > len(p) - off:
            return "truncated"
        off += need
    return None


def parses(data):
    m = ds.pb.DashStreamMessage()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.ParseFromString(bytes(data))
        return True
    except Exception:
        return False


def random_invalid(rnd, n):
    """n random payloads (framing 0x00, or legacy) that the module's walk
    rejects and Python's protobuf rejects too: (value, error_type)."""
    out = []
    while len(out) < n:
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 200)))
        value = (b"\x00" + body) if rnd.random() < 0.5 else body
        if value[0] in range(0x01, 0x08):
            continue
        p = value[1:] if value[0] == 0 else value
        kind = walk(p)
        if kind is None or parses(p):
            continue
        out.append((value, kind))
    return out


def bad_inputs(max_size, seed=5, random_count=6):
    """[(value, error_type, what)] covering every error type."""
    good = ds.encode(ds.event(thread_id="bad-1", node_id="n" * 40))
    rnd = random.Random(seed)
    items = [
        (good[:-7], "truncated", "cut inside field 1"),
        (b"\x00\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
         "invalid_protobuf", "overlong length varint"),
        (b"\x00\x0f\x01", "invalid_protobuf", "wire type 7"),
        (b"", "truncated", "empty value"),
        (zstd_bomb(), "too_large", "zstd bomb declaring 1 GiB"),
        (b"\x01" + ZSTD_MAGIC + b"\x00\x00", "decompress_failed",
         "zstd frame without a content size"),
        (b"\x01\x00\x01\x02\x03", "decompress_failed", "not a zstd frame"),
        (ds.message_of_size(max_size + 1), "too_large",
         "one byte over dashstream_max_message_size"),
        (b"\x02" + b"x" * 30, "unknown_framing", "framing byte 0x02"),
        (b"\x07", "unknown_framing", "framing byte 0x07"),
    ]
    for value, kind in random_invalid(rnd, random_count):
        items.append((value, kind, "random bytes"))
    return items


def record(value):
    """The JSON of a dead-letter record (bytes)."""
    return json.loads(value.decode("utf-8"))


def check_record(rec, topic, partition, offset, value, error_type, key=None,
                 max_payload=None):
    """Assert one dead-letter record says exactly this."""
    included = value if max_payload is None else value[:max_payload]
    assert rec["schema"] == "dashstream.dlq.v1"
    assert rec["topic"] == topic
    assert rec["partition"] == partition
    assert rec["offset"] == offset
    assert isinstance(rec["timestamp_ms"], int) and rec["timestamp_ms"] > 0
    assert rec["error_type"] == error_type, (rec["error"], value[:40])
    assert rec["error"] != ""
    assert rec["payload_size"] == len(value)
    assert rec["payload_truncated"] is (len(included) < len(value))
    assert rec["payload_sha256"] == hashlib.sha256(value).hexdigest()
    assert base64.b64decode(rec["payload_base64"], validate=True) == included
    if key is None:
        assert rec["key"] is None and rec["key_base64"] is None
    else:
        assert base64.b64decode(rec["key_base64"]) == key
    assert rec["module"] == "ngx_dashstream"
    assert rec["module_version"] == "0.1.0"
