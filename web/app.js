/*
 * The live page: a DashFlow websocket subscriber that resumes from the
 * last Kafka cursor it applied after any drop, plus the status and metrics
 * locations polled for lag, DLQ and errors.
 *
 * Query arguments (all optional):
 *   ws=/ws                    websocket path or URL
 *   status=/dashstream/status status location
 *   metrics=/metrics          metrics location
 *   from=latest|earliest      where the first connection starts
 *   record=1                  keep every (partition, offset) applied, for
 *                             tests: window.dashDemo.offsets()
 *
 * Tests read the counters from data-* attributes of <body> and from
 * window.dashDemo.state().
 */
(function () {
  'use strict';

  var q = new URLSearchParams(location.search);

  /* ws=: a ws(s) URL or a path on this host */
  function wsUrl(v) {
    if (v && /^wss?:\/\//.test(v)) {
      return v;
    }
    return (location.protocol === 'https:' ? 'wss://' : 'ws://')
      + location.host + (v && v.charAt(0) === '/' ? v : '/ws');
  }

  /* a path or an http(s) URL only: these end up in links */
  function url(v, def) {
    return v && /^(https?:\/\/|\/)/.test(v) ? v : def;
  }

  var CONF = {
    ws: wsUrl(q.get('ws')),
    status: url(q.get('status'), '/dashstream/status'),
    metrics: url(q.get('metrics'), '/metrics'),
    from: q.get('from') === 'earliest' ? 'earliest' : 'latest',
    record: q.get('record') === '1',
    pollMs: 2000
  };

  var S = {
    state: 'connecting',
    received: 0,
    duplicates: 0,
    gaps: 0,
    skippedOffsets: 0,
    undecodable: 0,
    protocolErrors: 0,
    connects: 0,
    replayCompletes: 0,
    replayedTotal: 0,
    lastReplay: null,
    lastClose: null,
    stale: 0,
    serverGaps: 0,
    serverErrors: [],
    streamErrors: 0,
    applied: {},        /* partition -> last offset applied */
    baseline: {},       /* partition -> cursor from a "latest" resume */
    perPartition: {},   /* partition -> messages applied */
    recorded: {},       /* partition -> [offsets] with record=1 */
    kinds: {},
    threads: {},
    tokens: {},
    tokenOrder: [],
    tools: {},
    toolOrder: [],
    errors: [],
    quality: [],        /* last Metrics messages with a quality_score */
    qualityLow: 0,
    buckets: [],        /* messages per second, last 60 s */
    status: null,
    statusError: '',
    metrics: {}
  };

  var ws = null, pending = null, retryMs = 250, retryTimer = null,
    holdUntil = 0;

  /* ------------------------------------------------------------ socket */

  function cursors() {
    var out = {}, p;
    for (p in S.baseline) {
      out[p] = String(S.baseline[p]);
    }
    for (p in S.applied) {
      out[p] = String(S.applied[p]);
    }
    return out;
  }

  function hasCursors() {
    return Object.keys(S.applied).length > 0
      || Object.keys(S.baseline).length > 0;
  }

  function connect() {
    retryTimer = null;
    pending = null;
    setState('connecting');
    try {
      ws = new WebSocket(CONF.ws);
    } catch (e) {
      S.lastClose = 'cannot connect: ' + e.message;
      scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';

    ws.onopen = function () {
      var msg;
      S.connects++;
      setState('open');
      if (hasCursors()) {
        msg = { type: 'resume', lastOffsetsByPartition: cursors(),
                from: 'cursor', mode: 'partition' };
      } else {
        msg = { type: 'resume', lastOffsetsByPartition: {},
                from: CONF.from };
      }
      ws.send(JSON.stringify(msg));
    };

    ws.onmessage = function (ev) {
      if (typeof ev.data === 'string') {
        control(ev.data);
      } else {
        binary(new Uint8Array(ev.data));
      }
    };

    ws.onclose = function (ev) {
      S.lastClose = ev.code + (ev.reason ? ' ' + ev.reason : '') + ' at '
        + new Date().toLocaleTimeString();
      ws = null;
      setState('closed');
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (retryTimer) {
      return;
    }
    retryTimer = setTimeout(connect, Math.max(retryMs,
                                              holdUntil - Date.now()));
    retryMs = Math.min(retryMs * 2, 5000);
  }

  function setState(st) {
    S.state = st;
  }

  function control(text) {
    var m, p;
    try {
      m = JSON.parse(text);
    } catch (e) {
      S.protocolErrors++;
      return;
    }
    switch (m.type) {
    case 'cursor':
      if (pending) {
        S.protocolErrors++;
      }
      pending = { partition: Number(m.partition), offset: Number(m.offset) };
      break;
    case 'replay_complete':
      S.replayCompletes++;
      S.replayedTotal += m.totalReplayed || 0;
      S.lastReplay = m;
      retryMs = 250;
      if (m.mode === 'latest' && m.lastOffsetsByPartition) {
        for (p in m.lastOffsetsByPartition) {
          if (!(p in S.applied)) {
            S.baseline[p] = Number(m.lastOffsetsByPartition[p]);
          }
        }
      }
      break;
    case 'cursor_stale':
      S.stale++;
      break;
    case 'gap':
      S.serverGaps += Number(m.count) || 1;
      break;
    case 'error':
      S.serverErrors.unshift((m.code || '') + ': ' + (m.message || ''));
      S.serverErrors.length = Math.min(S.serverErrors.length, 5);
      break;
    default:
      break;
    }
  }

  function binary(data) {
    var c = pending, last;
    pending = null;
    if (!c) {
      S.protocolErrors++;
      return;
    }
    last = S.applied[c.partition];
    if (last !== undefined && c.offset <= last) {
      S.duplicates++;
      return;
    }
    if (last !== undefined && c.offset > last + 1) {
      /* dead-lettered or filtered offsets are never sent */
      S.skippedOffsets += c.offset - last - 1;
    }
    S.applied[c.partition] = c.offset;
    delete S.baseline[c.partition];
    S.perPartition[c.partition] = (S.perPartition[c.partition] || 0) + 1;
    if (CONF.record) {
      (S.recorded[c.partition] = S.recorded[c.partition] || [])
        .push(c.offset);
    }
    S.received++;
    tick();
    try {
      message(window.DashWire.decodeValue(data));
    } catch (e) {
      S.undecodable++;
    }
  }

  /* ---------------------------------------------------------- messages */

  function tick() {
    var now = Math.floor(Date.now() / 1000), b = S.buckets;
    if (!b.length || b[b.length - 1].t !== now) {
      b.push({ t: now, n: 0 });
      while (b.length && b[0].t < now - 60) {
        b.shift();
      }
    }
    b[b.length - 1].n++;
  }

  function thread(m) {
    var h = m.header, t;
    if (!h || !h.threadId) {
      return;
    }
    t = S.threads[h.threadId];
    if (!t) {
      t = S.threads[h.threadId] = { id: h.threadId, tenant: h.tenantId,
        seq: h.sequence, count: 0, kind: '', node: '', seen: 0,
        ended: 0 };
    } else if (h.sequence <= t.seq) {
      S.duplicates++;
    } else {
      if (h.sequence > t.seq + 1) {
        S.gaps += h.sequence - t.seq - 1;
      }
      t.seq = h.sequence;
    }
    t.count++;
    t.seen = Date.now();
    t.kind = m.kind === 'event' ? m.eventType : m.kind;
    if (m.nodeId) {
      t.node = m.nodeId;
    }
    if (m.kind === 'event' && m.eventType === 'GRAPH_END') {
      t.ended = t.seen;
    }
  }

  function remember(map, order, key, limit) {
    var i;
    if (!(key in map)) {
      order.push(key);
      while (order.length > limit) {
        delete map[order.shift()];
      }
    } else {
      i = order.indexOf(key);
      order.splice(i, 1);
      order.push(key);
    }
  }

  function message(m) {
    var h = m.header || {}, t, k;
    S.kinds[m.kind || 'empty'] = (S.kinds[m.kind || 'empty'] || 0) + 1;
    thread(m);
    if (m.kind === 'token_chunk' && m.requestId) {
      k = m.requestId;
      remember(S.tokens, S.tokenOrder, k, 6);
      t = S.tokens[k] = S.tokens[k]
        || { thread: h.threadId, text: '', chunks: 0, final: false };
      t.text += m.text || '';
      t.chunks++;
      t.final = t.final || !!m.isFinal;
    } else if (m.kind === 'tool_execution' && m.callId) {
      k = m.callId;
      remember(S.tools, S.toolOrder, k, 12);
      t = S.tools[k] = S.tools[k] || { tool: m.toolName, thread: h.threadId };
      t.stage = m.stage || 'REQUESTED';
      if (m.durationUs) {
        t.durationUs = m.durationUs;
      }
    } else if (m.kind === 'metrics' && m.metrics
               && m.metrics.quality_score) {
      t = m.metrics;
      S.quality.unshift({ thread: h.threadId,
                          score: Number(t.quality_score.value),
                          latency: t.latency_ms ? t.latency_ms.value : null,
                          tokens: t.tokens ? t.tokens.value : null });
      S.quality.length = Math.min(S.quality.length, 50);
      if (S.quality[0].score < 0.7) {
        S.qualityLow++;
      }
    } else if (m.kind === 'error') {
      S.streamErrors++;
      S.errors.unshift('[' + (m.severity || '') + '] ' + (m.errorCode || '')
                       + ': ' + (m.message || '') + ' (' + h.threadId + ')');
      S.errors.length = Math.min(S.errors.length, 20);
    }
  }

  /* ----------------------------------------------------------- polling */

  function pollStatus() {
    fetch(CONF.status, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) {
        throw new Error('HTTP ' + r.status);
      }
      return r.json();
    }).then(function (j) {
      S.status = j;
      S.statusError = '';
    }).catch(function (e) {
      S.statusError = 'status: ' + e.message;
    }).then(function () {
      setTimeout(pollStatus, CONF.pollMs);
    });
  }

  /* Prometheus text: {name: [{labels, value}]} for the families shown */
  function parseMetrics(text) {
    var out = {}, re = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
    text.split('\n').forEach(function (line) {
      var m = re.exec(line), labels = {};
      if (!m || line.charAt(0) === '#') {
        return;
      }
      (m[3] || '').replace(/(\w+)="((?:[^"\\]|\\.)*)"/g, function (_, k, v) {
        labels[k] = v;
      });
      (out[m[1]] = out[m[1]] || []).push({ labels: labels,
                                          value: Number(m[4]) });
    });
    return out;
  }

  function pollMetrics() {
    fetch(CONF.metrics, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) {
        throw new Error('HTTP ' + r.status);
      }
      return r.text();
    }).then(function (t) {
      S.metrics = parseMetrics(t);
    }).catch(function () {
      S.metrics = {};
    }).then(function () {
      setTimeout(pollMetrics, CONF.pollMs);
    });
  }

  function metricSum(name, filter) {
    var list = S.metrics[name], sum = 0;
    if (!list) {
      return null;
    }
    list.forEach(function (s) {
      var k;
      for (k in filter || {}) {
        if (s.labels[k] !== filter[k]) {
          return;
        }
      }
      sum += s.value;
    });
    return sum;
  }

  /* --------------------------------------------------------- rendering */

  function $(id) {
    return document.getElementById(id);
  }

  function text(id, v) {
    var e = $(id), s = (v === null || v === undefined) ? '—' : String(v);
    if (e.textContent !== s) {
      e.textContent = s;
    }
  }

  function el(tag, txt, cls) {
    var e = document.createElement(tag);
    if (txt !== undefined && txt !== null) {
      e.textContent = String(txt);
    }
    if (cls) {
      e.className = cls;
    }
    return e;
  }

  function row(cells, cls) {
    var tr = el('tr');
    cells.forEach(function (c, i) {
      tr.appendChild(el('td', c === null || c === undefined ? '—' : c,
                        cls && cls[i]));
    });
    return tr;
  }

  function fill(tbody, rows) {
    tbody.replaceChildren.apply(tbody, rows);
  }

  function rate() {
    var now = Math.floor(Date.now() / 1000), n = 0;
    S.buckets.forEach(function (b) {
      if (b.t >= now - 5 && b.t < now) {
        n += b.n;
      }
    });
    return Math.round(n / 5 * 10) / 10;
  }

  function activeThreads() {
    var now = Date.now();
    return Object.keys(S.threads).map(function (k) {
      return S.threads[k];
    }).filter(function (t) {
      return !t.ended && now - t.seen < 30000;
    });
  }

  function spark() {
    var c = $('spark'), ctx, w, h, now = Math.floor(Date.now() / 1000),
      max = 1, i, n, by = {};
    if (c.clientWidth && c.width !== c.clientWidth) {
      c.width = c.clientWidth;
    }
    ctx = c.getContext('2d');
    w = c.width;
    h = c.height;
    S.buckets.forEach(function (b) {
      by[b.t] = b.n;
      max = Math.max(max, b.n);
    });
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = '#5aa9e6';
    for (i = 0; i < 60; i++) {
      n = by[now - 59 + i] || 0;
      ctx.fillRect(i * w / 60, h - n / max * (h - 4), w / 60 - 2,
                   n / max * (h - 4));
    }
  }

  function fmtUs(us) {
    return us >= 1e6 ? (us / 1e6).toFixed(2) + ' s'
      : (us / 1000).toFixed(1) + ' ms';
  }

  function renderPartitions() {
    var st = S.status || {}, byP = {}, rows = [], parts = {}, lag = {};
    (st.partitions || []).forEach(function (p) {
      byP[p.partition] = p;
      parts[p.partition] = 1;
    });
    (S.metrics.websocket_kafka_consumer_lag || []).forEach(function (s) {
      lag[s.labels.partition] = s.value;
      parts[s.labels.partition] = 1;
    });
    Object.keys(S.applied).concat(Object.keys(S.baseline))
      .forEach(function (p) { parts[p] = 1; });
    Object.keys(parts).map(Number).sort(function (a, b) { return a - b; })
      .forEach(function (p) {
        var s = byP[p] || {}, l = s.lag !== undefined ? s.lag : lag[p], tr;
        tr = row([p, S.applied[p], S.perPartition[p] || 0,
                  s.assigned === undefined ? null : (s.assigned ? 'yes' : 'no'),
                  s.position, s.high_watermark, l,
                  s.offset_age_seconds === undefined || s.offset_age_seconds
                    === null ? null : s.offset_age_seconds.toFixed(1) + ' s'],
                 [null, null, null, null, null, null,
                  l > 1000 ? 'lag-high' : null]);
        tr.dataset.partition = p;
        tr.dataset.offset = S.applied[p] === undefined ? '' : S.applied[p];
        rows.push(tr);
      });
    fill($('partitions').tBodies[0], rows);

    if (S.statusError) {
      text('status-line', S.statusError);
    } else if (S.status) {
      text('status-line', statusLine(st));
    }
  }

  function statusLine(st) {
    var parts = [], c = st.consumer || {}, ring = st.ring || {},
      subs = st.subscribers;
    if (st.version) {
      parts.push('module ' + st.version);
    }
    if (st.config && st.config.mode) {
      parts.push('mode ' + st.config.mode);
    }
    if (c.broker_connected !== undefined) {
      parts.push(c.broker_connected ? 'broker connected'
                 : 'broker NOT connected');
    }
    if (c.last_error) {
      parts.push('last error: ' + c.last_error);
    }
    if (ring.fill !== undefined) {
      parts.push('ring ' + (ring.fill * 100).toFixed(1) + '% full');
    }
    if (typeof subs === 'object' && subs && subs.total !== undefined) {
      parts.push(subs.total + ' subscribers');
    } else if (typeof subs === 'number') {
      parts.push(subs + ' subscribers');
    }
    if (st.writer_pid !== undefined || c.writer_pid !== undefined) {
      parts.push('writer pid ' + (c.writer_pid || st.writer_pid));
    }
    return parts.join(' · ');
  }

  function renderErrors() {
    var st = S.status || {}, c = st.consumer || {}, dlq;
    text('stream-errors', S.streamErrors);
    text('kafka-errors', c.messages && c.messages.error !== undefined
      ? c.messages.error
      : metricSum('websocket_kafka_messages_total', { status: 'error' }));
    text('decode-errors', metricSum('websocket_decode_errors_total'));
    text('dlq-sends', metricSum('websocket_dlq_sends_total'));
    text('dlq-failures', metricSum('websocket_dlq_send_failures_total'));
    dlq = st.config && st.config.dlq;
    text('dlq-topic', dlq ? dlq.topic + ' (' + dlq.mode + ')' : null);
    fill($('recent-errors'), S.serverErrors.map(function (e) {
      return el('li', 'server: ' + e, 'bad');
    }).concat(S.errors.slice(0, 8).map(function (e) {
      return el('li', e);
    })));
  }

  function renderThreads() {
    var now = Date.now(), list = activeThreads();
    list.sort(function (a, b) { return b.seen - a.seen; });
    text('active-threads', list.length);
    fill($('threads').tBodies[0], list.slice(0, 12).map(function (t) {
      return row([t.id, t.tenant, t.kind, t.node, t.seq, t.count,
                  ((now - t.seen) / 1000).toFixed(1) + ' s ago']);
    }));
  }

  function renderTokens() {
    fill($('tokens'), S.tokenOrder.slice().reverse().map(function (k) {
      var t = S.tokens[k], d = el('div', null, 'stream' + (t.final
                                                           ? ' final' : ''));
      d.appendChild(el('div', t.thread + ' · ' + k + ' · ' + t.chunks
                       + ' chunks', 'meta'));
      d.appendChild(el('div', t.text, 'text'));
      return d;
    }));
  }

  function renderTools() {
    fill($('tools').tBodies[0], S.toolOrder.slice().reverse().map(function (k) {
      var t = S.tools[k];
      return row([t.tool, t.stage,
                  t.durationUs ? fmtUs(t.durationUs) : null, t.thread],
                 [null, 'stage-' + t.stage]);
    }));
  }

  function renderQuality() {
    var sum = 0;
    S.quality.forEach(function (q) { sum += q.score; });
    text('quality-mean', S.quality.length
         ? (sum / S.quality.length).toFixed(3) : null);
    text('quality-low', S.qualityLow);
    fill($('quality').tBodies[0], S.quality.slice(0, 8).map(function (q) {
      return row([q.thread, q.score.toFixed(3),
                  q.latency === null ? null : q.latency + ' ms', q.tokens],
                 [null, q.score < 0.7 ? 'bad' : null]);
    }));
  }

  function renderKinds() {
    fill($('kinds'), Object.keys(S.kinds).sort().map(function (k) {
      var s = el('span', k + ' ');
      s.appendChild(el('b', S.kinds[k]));
      return s;
    }));
  }

  function render() {
    var b = document.body, conn = $('conn'), r = S.lastReplay;
    text('received', S.received);
    text('rate', rate());
    text('gaps', S.gaps);
    text('duplicates', S.duplicates);
    text('connects', S.connects);
    text('replay-complete', S.replayCompletes);
    text('last-replay', r ? r.mode + ', ' + (r.totalReplayed || 0)
         + ' replayed' + (r.complete === false ? ', INCOMPLETE' : '') : null);
    text('last-close', S.lastClose);
    text('stale', S.stale);
    text('server-gaps', S.serverGaps);
    text('undecodable', S.undecodable);
    conn.className = 'pill ' + S.state;
    conn.textContent = S.state;
    b.dataset.state = S.state;
    b.dataset.received = S.received;
    b.dataset.gaps = S.gaps;
    b.dataset.duplicates = S.duplicates;
    b.dataset.replayComplete = S.replayCompletes;
    b.dataset.connects = S.connects;
    renderKinds();
    renderPartitions();
    renderErrors();
    renderThreads();
    renderTokens();
    renderTools();
    renderQuality();
    spark();
  }

  /* --------------------------------------------------------- test hook */

  window.dashDemo = {
    conf: CONF,
    state: function () {
      return {
        state: S.state, received: S.received, gaps: S.gaps,
        duplicates: S.duplicates, skippedOffsets: S.skippedOffsets,
        undecodable: S.undecodable, protocolErrors: S.protocolErrors,
        connects: S.connects, replayCompletes: S.replayCompletes,
        replayedTotal: S.replayedTotal, lastReplay: S.lastReplay,
        lastClose: S.lastClose, stale: S.stale, serverGaps: S.serverGaps,
        serverErrors: S.serverErrors.slice(), applied: S.applied,
        perPartition: S.perPartition, kinds: S.kinds,
        threads: Object.keys(S.threads).length,
        activeThreads: activeThreads().length,
        streamErrors: S.streamErrors, statusLoaded: !!S.status,
        qualityScores: S.quality.length,
        metricsLoaded: Object.keys(S.metrics).length > 0
      };
    },
    offsets: function () {
      return S.recorded;
    },
    /* close the socket; reconnect no sooner than ms later */
    drop: function (ms) {
      holdUntil = Date.now() + (Number(ms) || 0);
      if (ws) {
        ws.close(1000, 'dropped by the page');
      }
    }
  };

  $('drop').addEventListener('click', function () {
    window.dashDemo.drop(0);
  });
  $('ws-url').textContent = CONF.ws;
  $('status-link').href = CONF.status;
  $('metrics-link').href = CONF.metrics;

  connect();
  pollStatus();
  pollMetrics();
  setInterval(render, 250);
  render();
})();
