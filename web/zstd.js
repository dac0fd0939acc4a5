/*
 * A small Zstandard decompressor (RFC 8878), written for the live page so
 * that it can read 0x01-framed DashStream values without a build step or a
 * download.  Frames without a dictionary; the checksum is not verified.
 *
 *     DashZstd.decompress(Uint8Array, maxSize) -> Uint8Array  (throws)
 */
(function (root) {
  'use strict';

  function fail(msg) {
    throw new Error('zstd: ' + msg);
  }

  /* literal length and match length codes: [baseline, extra bits] */
  var LL_BASE = [], LL_BITS = [], ML_BASE = [], ML_BITS = [];
  (function () {
    var i;
    var llx = [[16, 1], [18, 1], [20, 1], [22, 1], [24, 2], [28, 2], [32, 3],
      [40, 3], [48, 4], [64, 6], [128, 7], [256, 8], [512, 9], [1024, 10],
      [2048, 11], [4096, 12], [8192, 13], [16384, 14], [32768, 15],
      [65536, 16]];
    var mlx = [[35, 1], [37, 1], [39, 1], [41, 1], [43, 2], [47, 2], [51, 3],
      [59, 3], [67, 4], [83, 4], [99, 5], [131, 7], [259, 8], [515, 9],
      [1027, 10], [2051, 11], [4099, 12], [8195, 13], [16387, 14],
      [32771, 15], [65539, 16]];
    for (i = 0; i < 16; i++) { LL_BASE.push(i); LL_BITS.push(0); }
    llx.forEach(function (x) { LL_BASE.push(x[0]); LL_BITS.push(x[1]); });
    for (i = 0; i < 32; i++) { ML_BASE.push(i + 3); ML_BITS.push(0); }
    mlx.forEach(function (x) { ML_BASE.push(x[0]); ML_BITS.push(x[1]); });
  })();

  /* predefined distributions (RFC 8878 section 3.1.1.3.2.2) */
  var LL_DEFAULT = [4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1];
  var ML_DEFAULT = [1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, -1, -1, -1, -1, -1, -1, -1];
  var OF_DEFAULT = [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, -1, -1, -1, -1, -1];

  function highbit(x) {
    return 31 - Math.clz32(x);
  }

  /*
   * Backward bit stream: the last byte holds a 1 marker above the last
   * bit written; reading goes from there towards the first byte.  Bits
   * below the start read as zeros; overflowed() tells.
   */
  function BackBits(buf, start, end) {
    if (end <= start || buf[end - 1] === 0) {
      fail('bad bit stream end');
    }
    this.buf = buf;
    this.start = start;
    this.pos = (end - start - 1) * 8 + highbit(buf[end - 1]);
  }

  BackBits.prototype.peekAt = function (pos, n) {
    /* n <= 24 bits starting at bit pos (pos >= 0) */
    var b = this.buf, i = this.start + (pos >> 3), s = pos & 7, w;
    w = b[i] | ((b[i + 1] | 0) << 8) | ((b[i + 2] | 0) << 16)
      | ((b[i + 3] | 0) << 24);
    return (w >>> s) & ((1 << n) - 1);
  };

  BackBits.prototype.peek = function (n) {
    var p = this.pos - n;
    if (n === 0) {
      return 0;
    }
    if (p >= 0) {
      return this.peekAt(p, n);
    }
    if (n + p <= 0) {
      return 0;
    }
    return this.peekAt(0, n + p) << -p;
  };

  BackBits.prototype.read = function (n) {
    var v;
    if (n > 24) {
      v = this.read(n - 24) * 16777216;
      return v + this.read(24);
    }
    v = this.peek(n);
    this.pos -= n;
    return v;
  };

  BackBits.prototype.overflowed = function () {
    return this.pos < 0;
  };

  /* FSE table description: normalized counts; returns bytes consumed */
  function readCounts(buf, pos, end, maxLog, maxSymbol, out) {
    var bitpos = 0, log, remaining, threshold, nbBits, sym = 0, max, v,
      count, rep;

    function bits(n) {
      var i = pos + (bitpos >> 3), s = bitpos & 7, w;
      w = (buf[i] | 0) | ((buf[i + 1] | 0) << 8) | ((buf[i + 2] | 0) << 16)
        | ((buf[i + 3] | 0) << 24);
      return (w >>> s) & ((1 << n) - 1);
    }

    log = bits(4) + 5;
    bitpos = 4;
    if (log > maxLog) {
      fail('accuracy log ' + log + ' too large');
    }
    remaining = (1 << log) + 1;
    threshold = 1 << log;
    nbBits = log + 1;

    while (remaining > 1) {
      if (sym > maxSymbol) {
        fail('too many symbols in FSE table');
      }
      max = 2 * threshold - 1 - remaining;
      v = bits(nbBits);
      if ((v & (threshold - 1)) < max) {
        count = v & (threshold - 1);
        bitpos += nbBits - 1;
      } else {
        count = v & (2 * threshold - 1);
        if (count >= threshold) {
          count -= max;
        }
        bitpos += nbBits;
      }
      count--;
      remaining -= count < 0 ? -count : count;
      out[sym++] = count;
      if (count === 0) {
        do {
          rep = bits(2);
          bitpos += 2;
          for (v = 0; v < rep; v++) {
            if (sym > maxSymbol) {
              fail('zero run past the last symbol');
            }
            out[sym++] = 0;
          }
        } while (rep === 3);
      }
      while (remaining < threshold) {
        nbBits--;
        threshold >>= 1;
      }
      if (pos + (bitpos >> 3) > end) {
        fail('FSE table description truncated');
      }
    }
    if (remaining !== 1) {
      fail('FSE counts do not add up');
    }
    out.length = sym;
    return { log: log, bytes: (bitpos + 7) >> 3 };
  }

  /* decoding table: per state {sym, nb, base} in three arrays */
  function buildFse(counts, log) {
    var size = 1 << log, high = size - 1, step, mask = size - 1, pos = 0,
      sym = new Uint8Array(size), nb = new Uint8Array(size),
      base = new Uint16Array(size), next = [], s, i, u, st;
    for (s = 0; s < counts.length; s++) {
      if (counts[s] === -1) {
        sym[high--] = s;
        next[s] = 1;
      } else {
        next[s] = counts[s];
      }
    }
    step = (size >> 1) + (size >> 3) + 3;
    for (s = 0; s < counts.length; s++) {
      for (i = 0; i < counts[s]; i++) {
        sym[pos] = s;
        do {
          pos = (pos + step) & mask;
        } while (pos > high);
      }
    }
    if (pos !== 0) {
      fail('bad FSE distribution');
    }
    for (u = 0; u < size; u++) {
      st = next[sym[u]]++;
      nb[u] = log - highbit(st);
      base[u] = (st << nb[u]) - size;
    }
    return { log: log, sym: sym, nb: nb, base: base };
  }

  function rleFse(symbol) {
    return { log: 0, sym: new Uint8Array([symbol]), nb: new Uint8Array(1),
             base: new Uint16Array(1) };
  }

  var PREDEF = {};

  function predefined(kind) {
    if (!PREDEF[kind]) {
      PREDEF.ll = buildFse(LL_DEFAULT, 6);
      PREDEF.ml = buildFse(ML_DEFAULT, 6);
      PREDEF.of = buildFse(OF_DEFAULT, 5);
    }
    return PREDEF[kind];
  }

  /* Huffman tree description -> {log, sym, nb}; sets st.hufBytes */
  function readHuffman(buf, pos, end) {
    var hb = buf[pos], weights = [], n, i, t, bs, s1, s2, total = 0, log,
      left, rank = [], start = [], size, sym, nbits, w, len, j, counts;
    if (hb < 128) {
      if (pos + 1 + hb > end) {
        fail('Huffman weights truncated');
      }
      counts = [];
      i = readCounts(buf, pos + 1, pos + 1 + hb, 6, 255, counts);
      t = buildFse(counts, i.log);
      bs = new BackBits(buf, pos + 1 + i.bytes, pos + 1 + hb);
      s1 = bs.read(t.log);
      s2 = bs.read(t.log);
      for (;;) {
        if (weights.length > 255) {
          fail('too many Huffman weights');
        }
        weights.push(t.sym[s1]);
        s1 = t.base[s1] + bs.read(t.nb[s1]);
        if (bs.overflowed()) {
          weights.push(t.sym[s2]);
          break;
        }
        weights.push(t.sym[s2]);
        s2 = t.base[s2] + bs.read(t.nb[s2]);
        if (bs.overflowed()) {
          weights.push(t.sym[s1]);
          break;
        }
      }
      n = hb + 1;
    } else {
      len = hb - 127;
      n = 1 + ((len + 1) >> 1);
      if (pos + n > end) {
        fail('Huffman weights truncated');
      }
      for (i = 0; i < len; i++) {
        j = buf[pos + 1 + (i >> 1)];
        weights.push(i & 1 ? j & 15 : j >> 4);
      }
    }
    for (i = 0; i < weights.length; i++) {
      if (weights[i] > 11) {
        fail('Huffman weight too large');
      }
      total += weights[i] ? 1 << (weights[i] - 1) : 0;
    }
    if (total === 0) {
      fail('empty Huffman tree');
    }
    log = highbit(total) + 1;
    left = (1 << log) - total;
    if (left & (left - 1)) {
      fail('Huffman weights do not complete a tree');
    }
    weights.push(highbit(left) + 1);
    if (log > 11) {
      fail('Huffman code too long');
    }
    for (w = 0; w <= log; w++) {
      rank[w] = 0;
    }
    for (i = 0; i < weights.length; i++) {
      rank[weights[i]]++;
    }
    size = 0;
    for (w = 1; w <= log; w++) {
      start[w] = size;
      size += rank[w] << (w - 1);
    }
    sym = new Uint8Array(1 << log);
    nbits = new Uint8Array(1 << log);
    for (i = 0; i < weights.length; i++) {
      w = weights[i];
      if (!w) {
        continue;
      }
      len = 1 << (w - 1);
      for (j = start[w]; j < start[w] + len; j++) {
        sym[j] = i;
        nbits[j] = log + 1 - w;
      }
      start[w] += len;
    }
    return { log: log, sym: sym, nb: nbits, bytes: n };
  }

  function huffStream(h, buf, start, end, out, op, n) {
    var bs = new BackBits(buf, start, end), i, v;
    for (i = 0; i < n; i++) {
      v = bs.peek(h.log);
      out[op + i] = h.sym[v];
      bs.pos -= h.nb[v];
    }
    if (bs.pos !== 0) {
      fail('Huffman stream not consumed exactly');
    }
  }

  /* literals section -> {lit: Uint8Array, next: position after it} */
  function readLiterals(buf, pos, end, st) {
    var b0 = buf[pos], type = b0 & 3, fmt = (b0 >> 2) & 3, regen, csize, hl,
      lit, streams, h, p, seg, s1, s2, s3, q;
    if (type < 2) {
      if ((fmt & 1) === 0) {
        regen = b0 >> 3;
        hl = 1;
      } else if (fmt === 1) {
        regen = (b0 >> 4) + (buf[pos + 1] << 4);
        hl = 2;
      } else {
        regen = (b0 >> 4) + (buf[pos + 1] << 4) + (buf[pos + 2] << 12);
        hl = 3;
      }
      p = pos + hl;
      if (type === 0) {
        if (p + regen > end) {
          fail('raw literals truncated');
        }
        return { lit: buf.subarray(p, p + regen), next: p + regen };
      }
      if (p >= end) {
        fail('RLE literals truncated');
      }
      lit = new Uint8Array(regen);
      lit.fill(buf[p]);
      return { lit: lit, next: p + 1 };
    }
    if (fmt < 2) {
      regen = (b0 >> 4) | ((buf[pos + 1] & 63) << 4);
      csize = (buf[pos + 1] >> 6) | (buf[pos + 2] << 2);
      hl = 3;
    } else if (fmt === 2) {
      regen = (b0 >> 4) | (buf[pos + 1] << 4) | ((buf[pos + 2] & 3) << 12);
      csize = (buf[pos + 2] >> 2) | (buf[pos + 3] << 6);
      hl = 4;
    } else {
      regen = (b0 >> 4) | (buf[pos + 1] << 4) | ((buf[pos + 2] & 63) << 12);
      csize = (buf[pos + 2] >> 6) | (buf[pos + 3] << 2) | (buf[pos + 4] << 10);
      hl = 5;
    }
    streams = fmt === 0 ? 1 : 4;
    p = pos + hl;
    q = p + csize;
    if (q > end) {
      fail('compressed literals truncated');
    }
    if (type === 2) {
      h = readHuffman(buf, p, q);
      st.huf = h;
      p += h.bytes;
    } else {
      h = st.huf;
      if (!h) {
        fail('treeless literals without a previous Huffman table');
      }
    }
    lit = new Uint8Array(regen);
    if (streams === 1) {
      huffStream(h, buf, p, q, lit, 0, regen);
    } else {
      s1 = buf[p] | (buf[p + 1] << 8);
      s2 = buf[p + 2] | (buf[p + 3] << 8);
      s3 = buf[p + 4] | (buf[p + 5] << 8);
      p += 6;
      seg = (regen + 3) >> 2;
      if (p + s1 + s2 + s3 > q || 3 * seg > regen) {
        fail('bad literal streams');
      }
      huffStream(h, buf, p, p + s1, lit, 0, seg);
      huffStream(h, buf, p + s1, p + s1 + s2, lit, seg, seg);
      huffStream(h, buf, p + s1 + s2, p + s1 + s2 + s3, lit, 2 * seg, seg);
      huffStream(h, buf, p + s1 + s2 + s3, q, lit, 3 * seg, regen - 3 * seg);
    }
    return { lit: lit, next: q };
  }

  function seqTable(buf, p, end, mode, kind, maxLog, maxSym, st) {
    var counts, t;
    if (mode === 0) {
      st[kind] = predefined(kind);
      return p;
    }
    if (mode === 1) {
      if (p >= end || buf[p] > maxSym) {
        fail('bad RLE sequence table');
      }
      st[kind] = rleFse(buf[p]);
      return p + 1;
    }
    if (mode === 2) {
      counts = [];
      t = readCounts(buf, p, end, maxLog, maxSym, counts);
      st[kind] = buildFse(counts, t.log);
      return p + t.bytes;
    }
    if (!st[kind]) {
      fail('repeat mode without a previous table');
    }
    return p;
  }

  function Output(size) {
    this.buf = new Uint8Array(size > 0 ? size : 1024);
    this.len = 0;
  }

  Output.prototype.reserve = function (n, max) {
    var need = this.len + n, nb;
    if (need > max) {
      fail('output larger than ' + max + ' bytes');
    }
    if (need > this.buf.length) {
      nb = new Uint8Array(Math.min(max, Math.max(need, this.buf.length * 2)));
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
  };

  function compressedBlock(buf, pos, end, st, out, max) {
    var r = readLiterals(buf, pos, end, st), lit = r.lit, lp = 0, p = r.next,
      b0, nseq, modes, bs, sll, sof, sml, i, ofc, mlc, llc, ofv, ml, ll, off,
      rep = st.rep, o, j, ob, llT, ofT, mlT;
    if (p >= end) {
      fail('sequences section missing');
    }
    b0 = buf[p++];
    if (b0 === 0) {
      nseq = 0;
    } else if (b0 < 128) {
      nseq = b0;
    } else if (b0 < 255) {
      nseq = ((b0 - 128) << 8) + buf[p++];
    } else {
      nseq = buf[p] + (buf[p + 1] << 8) + 0x7f00;
      p += 2;
    }
    if (nseq > 0) {
      modes = buf[p++];
      if (modes & 3) {
        fail('reserved bits set in sequence modes');
      }
      p = seqTable(buf, p, end, modes >> 6, 'll', 9, 35, st);
      p = seqTable(buf, p, end, (modes >> 4) & 3, 'of', 8, 31, st);
      p = seqTable(buf, p, end, (modes >> 2) & 3, 'ml', 9, 52, st);
      llT = st.ll;
      ofT = st.of;
      mlT = st.ml;
      bs = new BackBits(buf, p, end);
      sll = bs.read(llT.log);
      sof = bs.read(ofT.log);
      sml = bs.read(mlT.log);
      for (i = 0; i < nseq; i++) {
        ofc = ofT.sym[sof];
        mlc = mlT.sym[sml];
        llc = llT.sym[sll];
        if (ofc > 31 || mlc > 52 || llc > 35) {
          fail('bad sequence code');
        }
        ofv = (2 ** ofc) + bs.read(ofc);
        ml = ML_BASE[mlc] + bs.read(ML_BITS[mlc]);
        ll = LL_BASE[llc] + bs.read(LL_BITS[llc]);
        if (ofv > 3) {
          off = ofv - 3;
          rep[2] = rep[1];
          rep[1] = rep[0];
          rep[0] = off;
        } else {
          j = ofv - 1 + (ll === 0 ? 1 : 0);
          if (j === 0) {
            off = rep[0];
          } else {
            off = j === 3 ? rep[0] - 1 : rep[j];
            if (j !== 1) {
              rep[2] = rep[1];
            }
            rep[1] = rep[0];
            rep[0] = off;
          }
        }
        if (i !== nseq - 1) {
          sll = llT.base[sll] + bs.read(llT.nb[sll]);
          sml = mlT.base[sml] + bs.read(mlT.nb[sml]);
          sof = ofT.base[sof] + bs.read(ofT.nb[sof]);
        }
        if (lp + ll > lit.length) {
          fail('literal length past the literals');
        }
        out.reserve(ll + ml, max);
        ob = out.buf;
        ob.set(lit.subarray(lp, lp + ll), out.len);
        out.len += ll;
        lp += ll;
        if (off < 1 || off > out.len) {
          fail('match offset ' + off + ' outside the output');
        }
        for (o = out.len - off, j = 0; j < ml; j++) {
          ob[out.len++] = ob[o + j];
        }
      }
      if (bs.pos !== 0) {
        fail('sequence bit stream not consumed exactly');
      }
    }
    out.reserve(lit.length - lp, max);
    out.buf.set(lit.subarray(lp), out.len);
    out.len += lit.length - lp;
  }

  function frame(buf, pos, out, max) {
    var fhd = buf[pos++], fcsFlag = fhd >> 6, single = (fhd >> 5) & 1,
      checksum = (fhd >> 2) & 1, dictFlag = fhd & 3, fcsLen, fcs = -1, i,
      st, h, last, type, size, end;
    if (fhd & 8) {
      fail('reserved frame header bit set');
    }
    if (!single) {
      pos++;            /* window descriptor: the whole output is kept */
    }
    if (dictFlag) {
      fail('dictionaries are not supported');
    }
    fcsLen = [single ? 1 : 0, 2, 4, 8][fcsFlag];
    if (fcsLen) {
      fcs = 0;
      for (i = fcsLen - 1; i >= 0; i--) {
        fcs = fcs * 256 + buf[pos + i];
      }
      if (fcsLen === 2) {
        fcs += 256;
      }
      pos += fcsLen;
      if (fcs > max) {
        fail('declared content size ' + fcs + ' over ' + max);
      }
      out.reserve(fcs, max);
    }
    st = { rep: [1, 4, 8], huf: null, ll: null, of: null, ml: null };
    do {
      if (pos + 3 > buf.length) {
        fail('block header truncated');
      }
      h = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16);
      pos += 3;
      last = h & 1;
      type = (h >> 1) & 3;
      size = h >>> 3;
      end = pos + (type === 1 ? 1 : size);
      if (end > buf.length) {
        fail('block truncated');
      }
      if (type === 0) {
        out.reserve(size, max);
        out.buf.set(buf.subarray(pos, end), out.len);
        out.len += size;
      } else if (type === 1) {
        out.reserve(size, max);
        out.buf.fill(buf[pos], out.len, out.len + size);
        out.len += size;
      } else if (type === 2) {
        compressedBlock(buf, pos, end, st, out, max);
      } else {
        fail('reserved block type');
      }
      pos = end;
    } while (!last);
    if (checksum) {
      pos += 4;
    }
    if (fcs >= 0 && out.len !== fcs) {
      fail('content size ' + out.len + ' differs from the declared ' + fcs);
    }
    return pos;
  }

  function decompress(src, maxSize) {
    var max = maxSize || 16 * 1024 * 1024, out = new Output(0), pos = 0,
      magic;
    if (!(src instanceof Uint8Array)) {
      src = new Uint8Array(src);
    }
    while (pos < src.length) {
      if (pos + 4 > src.length) {
        fail('frame truncated');
      }
      magic = (src[pos] | (src[pos + 1] << 8) | (src[pos + 2] << 16)
               | (src[pos + 3] << 24)) >>> 0;
      pos += 4;
      if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
        pos += 4 + (src[pos] | (src[pos + 1] << 8) | (src[pos + 2] << 16)
                    | (src[pos + 3] << 24)) >>> 0;
        continue;
      }
      if (magic !== 0xfd2fb528) {
        fail('not a zstd frame');
      }
      pos = frame(src, pos, out, max);
    }
    if (pos > src.length) {
      fail('input truncated');
    }
    return out.buf.subarray(0, out.len);
  }

  root.DashZstd = { decompress: decompress };
})(typeof window !== 'undefined' ? window : globalThis);
