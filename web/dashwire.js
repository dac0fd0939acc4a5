/*
 * DashStream values in the browser: the three framings (0x00 + protobuf,
 * 0x01 + zstd frame, legacy bare protobuf) and a hand-written protobuf wire
 * reader for the fields the live page shows (proto/dashstream.proto).
 * Unknown fields are skipped, as every DashStream reader must.
 *
 *     DashWire.decodeValue(Uint8Array) -> {framing, kind, header, ...}
 *                                          (throws on a malformed value)
 */
(function (root) {
  'use strict';

  var KINDS = [null, 'event', 'state_diff', 'token_chunk', 'tool_execution',
    'checkpoint', 'metrics', 'error', 'event_batch', 'execution_trace'];

  var EVENT_TYPES = {
    0: 'GRAPH_START', 1: 'GRAPH_END', 2: 'NODE_START', 3: 'NODE_END',
    4: 'NODE_ERROR', 5: 'EDGE_TRAVERSAL', 6: 'CONDITIONAL_BRANCH',
    7: 'PARALLEL_START', 8: 'PARALLEL_END', 9: 'CHECKPOINT_SAVE',
    10: 'CHECKPOINT_LOAD', 80: 'NODE_PROGRESS', 81: 'NODE_THINKING',
    82: 'NODE_SUBSTEP', 83: 'NODE_WARNING'
  };
  var TOOL_STAGES = ['REQUESTED', 'STARTED', 'COMPLETED', 'FAILED'];
  var SEVERITIES = ['UNSPECIFIED', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
  var FINISH = ['UNSPECIFIED', 'STOP', 'LENGTH', 'TOOL_CALLS',
    'CONTENT_FILTER', 'ERROR'];

  var utf8 = new TextDecoder('utf-8');

  function WireError(msg) {
    var e = new Error('protobuf: ' + msg);
    e.name = 'WireError';
    return e;
  }

  function Reader(buf, pos, end) {
    this.buf = buf;
    this.pos = pos || 0;
    this.end = end === undefined ? buf.length : end;
  }

  /* varints above 2^53 lose precision: no field shown here gets there */
  Reader.prototype.varint = function () {
    var v = 0, mul = 1, b, n = 0;
    do {
      if (this.pos >= this.end || n === 10) {
        throw WireError('truncated varint');
      }
      b = this.buf[this.pos++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      n++;
    } while (b & 0x80);
    return v;
  };

  Reader.prototype.int64 = function () {
    var v = this.varint();
    return v >= 9223372036854775808 ? v - 18446744073709551616 : v;
  };

  Reader.prototype.bytes = function () {
    var len = this.varint(), start = this.pos;
    if (len > this.end - this.pos) {
      throw WireError('length ' + len + ' past the end');
    }
    this.pos += len;
    return this.buf.subarray(start, start + len);
  };

  Reader.prototype.string = function () {
    return utf8.decode(this.bytes());
  };

  Reader.prototype.double = function () {
    var v;
    if (this.end - this.pos < 8) {
      throw WireError('truncated double');
    }
    v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8)
      .getFloat64(0, true);
    this.pos += 8;
    return v;
  };

  Reader.prototype.skip = function (wt) {
    if (wt === 0) {
      this.varint();
    } else if (wt === 1 || wt === 5) {
      if (this.end - this.pos < (wt === 1 ? 8 : 4)) {
        throw WireError('truncated fixed field');
      }
      this.pos += wt === 1 ? 8 : 4;
    } else if (wt === 2) {
      this.bytes();
    } else {
      throw WireError('unsupported wire type ' + wt);
    }
  };

  /* calls fn(field, wireType, reader) for each field; fn returns true if
   * it consumed the value */
  function fields(buf, fn, pos, end) {
    var r = new Reader(buf, pos, end), tag, f, wt;
    while (r.pos < r.end) {
      tag = r.varint();
      f = Math.floor(tag / 8);
      wt = tag & 7;
      if (f === 0) {
        throw WireError('field number 0');
      }
      if (!fn(f, wt, r)) {
        r.skip(wt);
      }
    }
  }

  function sub(r, fn) {
    var b = r.bytes();
    fields(b, fn);
  }

  function header(r) {
    var h = { messageId: null, timestampUs: 0, tenantId: '', threadId: '',
              sequence: 0, type: 0 };
    sub(r, function (f, wt, r) {
      if (f === 1 && wt === 2) { h.messageId = r.bytes(); return true; }
      if (f === 2 && wt === 0) { h.timestampUs = r.int64(); return true; }
      if (f === 3 && wt === 2) { h.tenantId = r.string(); return true; }
      if (f === 4 && wt === 2) { h.threadId = r.string(); return true; }
      if (f === 5 && wt === 0) { h.sequence = r.varint(); return true; }
      if (f === 6 && wt === 0) { h.type = r.varint(); return true; }
      return false;
    });
    return h;
  }

  function metricValue(r) {
    var mv = { value: null, unit: '' };
    sub(r, function (f, wt, r) {
      if (f === 1 && wt === 0) { mv.value = r.int64(); return true; }
      if (f === 2 && wt === 1) { mv.value = r.double(); return true; }
      if (f === 3 && wt === 2) { mv.value = r.string(); return true; }
      if (f === 4 && wt === 0) { mv.value = r.varint() !== 0; return true; }
      if (f === 5 && wt === 2) { mv.unit = r.string(); return true; }
      return false;
    });
    return mv;
  }

  /* the fields of each inner message the page shows, by field number */
  var INNER = {
    event: function (m, f, wt, r) {
      if (f === 2 && wt === 0) {
        m.eventType = EVENT_TYPES[r.varint()] || 'UNKNOWN';
      } else if (f === 3 && wt === 2) {
        m.nodeId = r.string();
      } else {
        return false;
      }
      return true;
    },
    token_chunk: function (m, f, wt, r) {
      if (f === 2 && wt === 2) { m.requestId = r.string(); return true; }
      if (f === 3 && wt === 2) { m.text = r.string(); return true; }
      if (f === 6 && wt === 0) { m.chunkIndex = r.varint(); return true; }
      if (f === 7 && wt === 0) { m.isFinal = r.varint() !== 0; return true; }
      if (f === 8 && wt === 0) {
        m.finishReason = FINISH[r.varint()] || 'UNKNOWN';
        return true;
      }
      return false;
    },
    tool_execution: function (m, f, wt, r) {
      if (f === 2 && wt === 2) { m.callId = r.string(); return true; }
      if (f === 3 && wt === 2) { m.toolName = r.string(); return true; }
      if (f === 4 && wt === 0) {
        m.stage = TOOL_STAGES[r.varint()] || 'UNKNOWN';
        return true;
      }
      if (f === 7 && wt === 2) { m.error = r.string(); return true; }
      if (f === 8 && wt === 0) { m.durationUs = r.int64(); return true; }
      return false;
    },
    state_diff: function (m, f, wt, r) {
      var op;
      if (f === 3 && wt === 2) {
        op = {};
        sub(r, function (f, wt, r) {
          if (f === 1 && wt === 2) { op.path = r.string(); return true; }
          if (f === 3 && wt === 2) { op.op = r.string(); return true; }
          return false;
        });
        (m.operations = m.operations || []).push(op);
        return true;
      }
      return false;
    },
    metrics: function (m, f, wt, r) {
      var key = '', val = null;
      if (f === 2 && wt === 2) { m.scope = r.string(); return true; }
      if (f === 3 && wt === 2) {
        sub(r, function (f, wt, r) {
          if (f === 1 && wt === 2) { key = r.string(); return true; }
          if (f === 2 && wt === 2) { val = metricValue(r); return true; }
          return false;
        });
        (m.metrics = m.metrics || {})[key] = val || { value: null, unit: '' };
        return true;
      }
      return false;
    },
    error: function (m, f, wt, r) {
      if (f === 2 && wt === 2) { m.errorCode = r.string(); return true; }
      if (f === 3 && wt === 2) { m.message = r.string(); return true; }
      if (f === 6 && wt === 0) {
        m.severity = SEVERITIES[r.varint()] || 'UNKNOWN';
        return true;
      }
      return false;
    }
  };

  function decodeMessage(buf) {
    var m = { kind: null, header: null };
    fields(buf, function (f, wt, r) {
      var kind = KINDS[f], fn;
      if (!kind || wt !== 2) {
        return false;
      }
      /* a oneof: the last one on the wire wins */
      m = { kind: kind, header: null };
      fn = INNER[kind];
      sub(r, function (f, wt, r) {
        if (f === 1 && wt === 2) {
          m.header = header(r);
          return true;
        }
        return fn ? fn(m, f, wt, r) : false;
      });
      return true;
    });
    return m;
  }

  function decodeValue(value) {
    var buf = value instanceof Uint8Array ? value : new Uint8Array(value),
      framing, body, m;
    if (buf.length > 0 && buf[0] === 0) {
      framing = 'plain';
      body = buf.subarray(1);
    } else if (buf.length > 0 && buf[0] === 1) {
      framing = 'zstd';
      body = root.DashZstd.decompress(buf.subarray(1), 16 * 1024 * 1024);
    } else if (buf.length === 0 || buf[0] >= 8) {
      framing = 'legacy';
      body = buf;
    } else {
      throw WireError('reserved framing byte ' + buf[0]);
    }
    m = decodeMessage(body);
    m.framing = framing;
    m.size = buf.length;
    return m;
  }

  root.DashWire = { decodeValue: decodeValue, decodeMessage: decodeMessage };
})(typeof window !== 'undefined' ? window : globalThis);
