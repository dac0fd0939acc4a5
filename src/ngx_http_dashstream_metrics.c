/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_expo.h"
#include "ngx_http_dashstream_lagmath.h"
#include "ngx_http_dashstream_stream.h"
#include "ngx_http_dashstream_decode.h"
#include "ngx_http_dashstream_kafka.h"


/*
 * The metrics location: Prometheus text exposition 0.0.4, read from the
 * shared zone, so every worker answers with the same values.  Every family
 * is written whole, once, with its HELP and TYPE; docs/metrics.md lists
 * them with their meaning.
 */


typedef struct {
    ngx_http_dashstream_expo_t        e;
    ngx_http_dashstream_shctx_t      *sh;
    ngx_http_dashstream_main_conf_t  *dmcf;
    ngx_http_dashstream_label_t       topic;
    uint64_t                          now_ms;
} ngx_http_dashstream_metrics_t;


static void ngx_http_dashstream_metrics_render(
    ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_consumer(
    ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_lag(ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_dlq(ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_subscribers(
    ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_ring(ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_stream(
    ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_tools(
    ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_series(
    ngx_http_dashstream_metrics_t *m);
static void ngx_http_dashstream_metrics_counter(
    ngx_http_dashstream_metrics_t *m, const char *name, const char *help,
    ngx_atomic_uint_t value);
static void ngx_http_dashstream_metrics_gauge(ngx_http_dashstream_metrics_t *m,
    const char *name, const char *help, double value);
static void ngx_http_dashstream_metrics_labeled(
    ngx_http_dashstream_metrics_t *m, const char *name, const char *help,
    const char *label, const char **values, ngx_atomic_t *counters,
    ngx_uint_t n);
static void ngx_http_dashstream_metrics_hist(ngx_http_dashstream_metrics_t *m,
    const char *name, const char *help, ngx_http_dashstream_hist_t *h,
    const double *bounds, ngx_http_dashstream_label_t *labels, size_t n);
static void ngx_http_dashstream_label_str(ngx_http_dashstream_label_t *l,
    const char *name, const char *value);


ngx_int_t
ngx_http_dashstream_metrics_handler(ngx_http_request_t *r)
{
    size_t                          size;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_http_dashstream_metrics_t   m;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&m, sizeof(m));

    m.dmcf = ngx_http_get_module_main_conf(r, ngx_http_dashstream_module);
    m.sh = ngx_http_dashstream_shctx((ngx_cycle_t *) ngx_cycle);

    if (m.sh == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    m.topic.name = "topic";
    m.topic.value = m.dmcf->topic.data;
    m.topic.len = m.dmcf->topic.len;
    m.now_ms = ngx_http_dashstream_realtime_ms();

    /* enough for every partition, tool and series; doubled if not */

    size = 96 * 1024 + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS * 64
           + m.sh->ntools * 1024 + m.sh->nseries * 512;

    for ( ;; ) {
        b = ngx_create_temp_buf(r->pool, size);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        m.e.pos = b->pos;
        m.e.end = b->end;
        m.e.full = 0;

        ngx_http_dashstream_metrics_render(&m);

        if (!m.e.full) {
            break;
        }

        size *= 2;
    }

    b->last = m.e.pos;

    return ngx_http_dashstream_send_buffer(r, NGX_HTTP_OK, b,
                                   "text/plain; version=0.0.4; charset=utf-8",
                                   sizeof("text/plain") - 1);
}


static void
ngx_http_dashstream_metrics_render(ngx_http_dashstream_metrics_t *m)
{
    ngx_http_dashstream_label_t  build[3];

    ngx_http_dashstream_label_str(&build[0], "version",
                                  NGX_HTTP_DASHSTREAM_VERSION);
    ngx_http_dashstream_label_str(&build[1], "nginx_version", NGINX_VERSION);
    ngx_http_dashstream_label_str(&build[2], "librdkafka_version",
                                  rd_kafka_version_str());

    ngx_http_dashstream_expo_family(&m->e, "dashstream_build_info", "gauge",
                                    "Versions of the module and the "
                                    "libraries it runs with; always 1.");
    ngx_http_dashstream_expo_sample(&m->e, "dashstream_build_info", build, 3,
                                    1);

    ngx_http_dashstream_metrics_consumer(m);
    ngx_http_dashstream_metrics_lag(m);
    ngx_http_dashstream_metrics_dlq(m);
    ngx_http_dashstream_metrics_subscribers(m);
    ngx_http_dashstream_metrics_ring(m);
    ngx_http_dashstream_metrics_stream(m);
}


static void
ngx_http_dashstream_metrics_consumer(ngx_http_dashstream_metrics_t *m)
{
    ngx_uint_t                       i;
    ngx_atomic_t                     status[2];
    const char                      *labels[NGX_HTTP_DASHSTREAM_KERR_N];
    ngx_http_dashstream_counters_t  *k;

    static const char  *statuses[] = { "success", "error" };

    k = &m->sh->counters;

    status[0] = k->messages_ok;
    status[1] = k->messages_error;

    ngx_http_dashstream_metrics_labeled(m, "websocket_kafka_messages_total",
        "Kafka messages consumed, by outcome: success (in the ring) or "
        "error (undecodable or oversized, dead-lettered).",
        "status", statuses, status, 2);

    for (i = 1; i < NGX_HTTP_DASHSTREAM_DECODE_ERRORS; i++) {
        labels[i - 1] = ngx_http_dashstream_decode_error_name((int) i);
    }

    ngx_http_dashstream_metrics_labeled(m, "websocket_decode_errors_total",
        "Kafka messages that could not be decoded, by error type.",
        "error_type", labels, &k->decode_errors[1],
        NGX_HTTP_DASHSTREAM_DECODE_ERRORS - 1);

    for (i = 0; i < NGX_HTTP_DASHSTREAM_KERR_N; i++) {
        labels[i] = ngx_http_dashstream_kafka_error_label((unsigned) i);
    }

    ngx_http_dashstream_metrics_labeled(m,
        "websocket_kafka_client_errors_by_type_total",
        "Errors reported by the module's Kafka clients, by type.",
        "error_type", labels, k->client_errors, NGX_HTTP_DASHSTREAM_KERR_N);

    status[0] = 0;

    for (i = 0; i < NGX_HTTP_DASHSTREAM_KERR_N; i++) {
        status[0] += k->client_errors[i];
    }

    ngx_http_dashstream_metrics_counter(m,
        "websocket_infrastructure_errors_total",
        "Kafka client and transport errors, all types together.", status[0]);

    ngx_http_dashstream_metrics_counter(m,
        "dashstream_kafka_duplicates_skipped_total",
        "Messages read again after a restart, reload or rebalance and not "
        "written to the ring a second time.", k->duplicates_skipped);

    ngx_http_dashstream_metrics_counter(m, "dashstream_kafka_consumed_bytes_total",
        "Bytes of Kafka message values consumed.", k->bytes_consumed);

    ngx_http_dashstream_metrics_counter(m, "websocket_kafka_rebalances_total",
        "Consumer group rebalances seen by this instance.", k->rebalances);

    ngx_http_dashstream_metrics_counter(m, "dashstream_consumer_starts_total",
        "Times a consumer thread took the ring over and started.",
        k->consumer_starts);

    ngx_http_dashstream_metrics_gauge(m, "dashstream_consumer_running",
        "1 while a consumer thread holds the ring and consumes.",
        k->consumer_running ? 1 : 0);

    ngx_http_dashstream_metrics_gauge(m, "websocket_kafka_broker_connected",
        "1 while the brokers answer this instance's Kafka clients.",
        k->broker_up ? 1 : 0);
}


static void
ngx_http_dashstream_metrics_lag(ngx_http_dashstream_metrics_t *m)
{
    u_char                          num[16];
    ngx_uint_t                      i, pass, assigned;
    ngx_http_dashstream_part_t     *part;
    ngx_http_dashstream_label_t     l[2];
    ngx_http_dashstream_lag_in_t    in;
    ngx_http_dashstream_lag_out_t   out;

    static const char  *names[] = {
        "websocket_kafka_consumer_lag",
        "websocket_kafka_lag_offset_age_seconds",
        "dashstream_kafka_position",
        "dashstream_kafka_high_watermark"
    };

    static const char  *helps[] = {
        "Messages between the consumer's position and the end of the "
        "partition (the last stable offset under read_committed); "
        "assigned partitions only.",
        "Age of the newest message processed while the consumer is behind "
        "(0 when it is not); grows while the consumer is stalled.",
        "The next offset the consumer will process, per assigned partition.",
        "The end offset of each assigned partition, as last polled."
    };

    assigned = 0;
    l[0] = m->topic;
    l[1].name = "partition";
    l[1].value = num;

    for (pass = 0; pass < 4; pass++) {
        ngx_http_dashstream_expo_family(&m->e, names[pass], "gauge",
                                        helps[pass]);

        for (i = 0; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
            part = &m->sh->part[i];

            if (!part->assigned) {
                continue;
            }

            assigned += (pass == 0);

            in.position = part->position;
            in.position_live = part->position_live;
            in.last_ts_ms = part->last_ts_ms;
            in.high_watermark = part->high_watermark;
            in.committed = part->committed;
            in.assigned_ms = part->assigned_ms;
            in.trust_position = (m->dmcf->mode
                                 == NGX_HTTP_DASHSTREAM_MODE_BROADCAST);
            in.reset_latest = (m->dmcf->offset_reset
                               == NGX_HTTP_DASHSTREAM_RESET_LATEST);

            ngx_http_dashstream_lag_of(&in, m->now_ms, &out);

            l[1].len = ngx_sprintf(num, "%ui", i) - num;

            switch (pass) {
            case 0:
                if (out.lag >= 0) {
                    ngx_http_dashstream_expo_sample(&m->e, names[0], l, 2,
                                                    (double) out.lag);
                }
                break;
            case 1:
                if (out.lag >= 0) {
                    ngx_http_dashstream_expo_sample(&m->e, names[1], l, 2,
                                                    out.age);
                }
                break;
            case 2:
                if (out.position >= 0) {
                    ngx_http_dashstream_expo_sample(&m->e, names[2], l, 2,
                                                    (double) out.position);
                }
                break;
            default:
                if (out.high_watermark >= 0) {
                    ngx_http_dashstream_expo_sample(&m->e, names[3], l, 2,
                                                (double) out.high_watermark);
                }
                break;
            }
        }
    }

    ngx_http_dashstream_expo_family(&m->e, "websocket_kafka_assigned_partitions",
        "gauge", "Partitions assigned to this instance's consumer.");
    ngx_http_dashstream_expo_sample(&m->e, "websocket_kafka_assigned_partitions",
                                    &m->topic, 1, (double) assigned);

    ngx_http_dashstream_metrics_counter(m, "websocket_kafka_lag_poll_failures_total",
        "Lag polls (metadata, end and committed offsets) that failed or "
        "ran out of their time budget.",
        m->sh->counters.lag_poll_failures);

    ngx_http_dashstream_metrics_hist(m, "websocket_kafka_lag_poll_duration_seconds",
        "How long each lag poll took.",
        &m->sh->counters.lag_poll_duration,
        ngx_http_dashstream_lag_poll_buckets, NULL, 0);
}


static void
ngx_http_dashstream_metrics_dlq(ngx_http_dashstream_metrics_t *m)
{
    uint64_t                         stall;
    ngx_http_dashstream_counters_t  *k;

    static const char  *reasons[] = {
        "queue_full", "timed_out", "broker", "too_large", "retries_exhausted",
        "other"
    };

    k = &m->sh->counters;

    ngx_http_dashstream_metrics_counter(m, "websocket_dlq_sends_total",
        "Records written to the dead-letter topic.", k->dlq_sends);

    ngx_http_dashstream_metrics_labeled(m, "websocket_dlq_send_failures_total",
        "Dead-letter sends that failed, by reason.", "reason", reasons,
        k->dlq_failures, NGX_HTTP_DASHSTREAM_DLQ_N);

    ngx_http_dashstream_metrics_gauge(m, "websocket_dlq_backlog",
        "Dead-letter records waiting to be delivered.",
        (double) k->dlq_backlog);

    stall = k->dlq_stall_since_ms && m->now_ms > k->dlq_stall_since_ms
            ? m->now_ms - k->dlq_stall_since_ms : 0;

    ngx_http_dashstream_metrics_gauge(m, "websocket_dlq_fail_closed_stall_seconds",
        "How long consumption has been held by a dead-letter send that "
        "has not succeeded (fail_closed mode); 0 when it is not.",
        stall / 1000.0);

    ngx_http_dashstream_metrics_counter(m,
        "dashstream_dlq_fail_closed_stalled_seconds_total",
        "Seconds consumption spent held by dead-letter sends, all stalls "
        "together, in whole seconds.",
        (k->dlq_stall_total_ms + stall) / 1000);

    ngx_http_dashstream_metrics_counter(m, "dashstream_sequence_gaps_total",
        "Per-thread sequence gaps seen in the stream.", k->seq_gaps);
    ngx_http_dashstream_metrics_counter(m, "dashstream_sequence_missing_total",
        "Messages missing inside those gaps.", k->seq_missing);
    ngx_http_dashstream_metrics_counter(m, "dashstream_sequence_duplicates_total",
        "Messages whose sequence repeated the last one of their thread.",
        k->seq_duplicates);
    ngx_http_dashstream_metrics_counter(m, "dashstream_sequence_reorders_total",
        "Messages whose sequence was below the last one of their thread.",
        k->seq_reorders);
    ngx_http_dashstream_metrics_counter(m, "dashstream_sequence_evictions_total",
        "Threads dropped from the bounded sequence table.", k->seq_evictions);
    ngx_http_dashstream_metrics_gauge(m, "dashstream_sequence_threads",
        "Threads tracked in the sequence table.", (double) k->seq_threads);
}


static void
ngx_http_dashstream_metrics_subscribers(ngx_http_dashstream_metrics_t *m)
{
    ngx_atomic_t                     dropped[2];
    ngx_http_dashstream_counters_t  *k;

    static const char  *reasons[] = { "slow_subscriber", "overtaken" };

    k = &m->sh->counters;

    dropped[0] = k->dropped_slow;
    dropped[1] = k->dropped_overtaken;

    ngx_http_dashstream_metrics_gauge(m, "websocket_connected_clients",
        "Websocket subscribers connected to this nginx instance.",
        (double) ngx_http_dashstream_subscribers(m->sh));

    ngx_http_dashstream_metrics_counter(m, "dashstream_websocket_connections_total",
        "Websocket subscribers accepted.", k->subscribers_total);

    ngx_http_dashstream_metrics_counter(m,
        "dashstream_websocket_handshakes_rejected_total",
        "Websocket handshakes answered with an error status.",
        k->handshake_rejected);

    ngx_http_dashstream_metrics_counter(m,
        "dashstream_websocket_protocol_errors_total",
        "Subscribers that broke RFC 6455 or sent a bad DashFlow message.",
        k->protocol_errors);

    ngx_http_dashstream_metrics_counter(m, "websocket_messages_sent_total",
        "Messages written in full to websocket subscribers.",
        k->frames_sent);

    ngx_http_dashstream_metrics_counter(m, "dashstream_websocket_sent_bytes_total",
        "Bytes written to websocket subscribers.", k->bytes_sent);

    ngx_http_dashstream_metrics_labeled(m, "websocket_dropped_messages_total",
        "Messages a subscriber did not get: over its send budget, or "
        "overwritten in the ring before it read them.",
        "reason", reasons, dropped, 2);

    ngx_http_dashstream_metrics_counter(m,
        "dashstream_websocket_slow_closes_total",
        "Subscribers closed for exceeding their send budget.",
        k->closed_slow);

    ngx_http_dashstream_metrics_counter(m, "dashstream_resumes_total",
        "Resume requests served.", k->resumes);

    ngx_http_dashstream_metrics_counter(m, "dashstream_replayed_messages_total",
        "Messages replayed from the ring to resuming subscribers.",
        k->replayed);

    ngx_http_dashstream_metrics_hist(m, "websocket_e2e_latency_ms",
        "From the producer's timestamp to the message being queued to "
        "subscribers, in milliseconds (one observation per message and "
        "worker).", &k->e2e_latency, ngx_http_dashstream_e2e_buckets,
        NULL, 0);
}


static void
ngx_http_dashstream_metrics_ring(ngx_http_dashstream_metrics_t *m)
{
    ngx_http_dashstream_ring_stats_t  st;

    ngx_http_dashstream_ring_stats(m->sh->ring, &st);

    ngx_http_dashstream_metrics_gauge(m, "dashstream_ring_capacity_bytes",
        "Bytes of the shared ring that records can use.",
        (double) st.data_size);
    ngx_http_dashstream_metrics_gauge(m, "dashstream_ring_used_bytes",
        "Bytes of the ring the held records span.", (double) st.bytes_used);
    ngx_http_dashstream_metrics_gauge(m, "dashstream_ring_records",
        "Records held in the ring.", (double) st.records);
    ngx_http_dashstream_metrics_gauge(m, "dashstream_ring_slots",
        "Records the ring can index.", (double) st.nslots);
    ngx_http_dashstream_metrics_counter(m, "dashstream_ring_overwrites_total",
        "Records evicted from the ring to make room for new ones.",
        ngx_http_dashstream_ring_overwrites(m->sh));
}


static void
ngx_http_dashstream_metrics_stream(ngx_http_dashstream_metrics_t *m)
{
    ngx_uint_t                       i;
    const char                      *names[NGX_HTTP_DASHSTREAM_EVENT_TYPES];
    ngx_http_dashstream_counters_t  *k;

    k = &m->sh->counters;

    for (i = 0; i < NGX_HTTP_DASHSTREAM_MSG_TYPES; i++) {
        names[i] = ngx_http_dashstream_msg_type_name(i);
    }

    ngx_http_dashstream_metrics_labeled(m, "dashstream_stream_messages_total",
        "Decoded DashStream messages, by message type.", "type", names,
        k->msg_types, NGX_HTTP_DASHSTREAM_MSG_TYPES);

    for (i = 0; i < NGX_HTTP_DASHSTREAM_EVENT_TYPES; i++) {
        names[i] = ngx_http_dashstream_event_name(i);
    }

    ngx_http_dashstream_metrics_labeled(m, "dashstream_stream_events_total",
        "Events in the stream (batched ones included), by event type.",
        "event_type", names, k->event_types,
        NGX_HTTP_DASHSTREAM_EVENT_TYPES);

    ngx_http_dashstream_metrics_counter(m, "dashstream_stream_token_chunks_total",
        "Token chunks in the stream.", k->token_chunks);

    for (i = 0; i < NGX_HTTP_DASHSTREAM_SEVERITIES; i++) {
        names[i] = ngx_http_dashstream_severity_name(i);
    }

    ngx_http_dashstream_metrics_labeled(m, "dashstream_stream_errors_total",
        "Error messages in the stream, by severity.", "severity", names,
        k->errors, NGX_HTTP_DASHSTREAM_SEVERITIES);

    ngx_http_dashstream_metrics_tools(m);

    ngx_http_dashstream_metrics_hist(m, "dashstream_stream_tool_duration_seconds",
        "Durations reported by completed and failed tool executions.",
        &k->tool_duration, ngx_http_dashstream_tool_buckets, NULL, 0);

    ngx_http_dashstream_metrics_series(m);

    ngx_http_dashstream_metrics_counter(m, "dashstream_stream_series_dropped_total",
        "Metrics values not exported because the series cap was reached.",
        k->series_dropped);
}


static void
ngx_http_dashstream_metrics_tools(ngx_http_dashstream_metrics_t *m)
{
    ngx_uint_t                    i, s, n;
    ngx_http_dashstream_tool_t   *tool;
    ngx_http_dashstream_label_t   l[2];

    n = __atomic_load_n(&m->sh->ntools, __ATOMIC_ACQUIRE);

    ngx_http_dashstream_expo_family(&m->e,
        "dashstream_stream_tool_executions_total", "counter",
        "Tool executions in the stream, by tool (capped; the rest is "
        "\"other\") and stage.");

    for (i = 0; i < n && i < NGX_HTTP_DASHSTREAM_MAX_TOOLS; i++) {
        tool = &m->sh->tools[i];

        ngx_http_dashstream_label_str(&l[0], "tool", (char *) tool->name);

        for (s = 0; s < NGX_HTTP_DASHSTREAM_TOOL_STAGES; s++) {
            ngx_http_dashstream_label_str(&l[1], "stage",
                                      ngx_http_dashstream_tool_stage_name(s));
            ngx_http_dashstream_expo_counter(&m->e,
                "dashstream_stream_tool_executions_total", l, 2,
                tool->stage[s]);
        }
    }
}


static void
ngx_http_dashstream_metrics_series(ngx_http_dashstream_metrics_t *m)
{
    double                         v;
    ngx_uint_t                     i, n;
    ngx_atomic_uint_t              bits;
    ngx_http_dashstream_label_t    l[2];
    ngx_http_dashstream_series_t  *s;

    n = __atomic_load_n(&m->sh->nseries, __ATOMIC_ACQUIRE);

    ngx_http_dashstream_expo_family(&m->e, "dashstream_stream_metric_value",
        "gauge",
        "The last value of each allow-listed numeric entry of Metrics "
        "messages, by scope and name (capped).");

    for (i = 0; i < n && i < NGX_HTTP_DASHSTREAM_MAX_SERIES; i++) {
        s = &m->sh->series[i];

        ngx_http_dashstream_label_str(&l[0], "scope", (char *) s->scope);
        ngx_http_dashstream_label_str(&l[1], "name", (char *) s->name);

        bits = s->value;
        ngx_memcpy(&v, &bits, sizeof(double));

        ngx_http_dashstream_expo_sample(&m->e, "dashstream_stream_metric_value",
                                        l, 2, v);
    }
}


static void
ngx_http_dashstream_metrics_counter(ngx_http_dashstream_metrics_t *m,
    const char *name, const char *help, ngx_atomic_uint_t value)
{
    ngx_http_dashstream_expo_family(&m->e, name, "counter", help);
    ngx_http_dashstream_expo_counter(&m->e, name, NULL, 0, value);
}


static void
ngx_http_dashstream_metrics_gauge(ngx_http_dashstream_metrics_t *m,
    const char *name, const char *help, double value)
{
    ngx_http_dashstream_expo_family(&m->e, name, "gauge", help);
    ngx_http_dashstream_expo_sample(&m->e, name, NULL, 0, value);
}


static void
ngx_http_dashstream_metrics_labeled(ngx_http_dashstream_metrics_t *m,
    const char *name, const char *help, const char *label,
    const char **values, ngx_atomic_t *counters, ngx_uint_t n)
{
    ngx_uint_t                   i;
    ngx_http_dashstream_label_t  l;

    ngx_http_dashstream_expo_family(&m->e, name, "counter", help);

    for (i = 0; i < n; i++) {
        ngx_http_dashstream_label_str(&l, label, values[i]);
        ngx_http_dashstream_expo_counter(&m->e, name, &l, 1, counters[i]);
    }
}


static void
ngx_http_dashstream_metrics_hist(ngx_http_dashstream_metrics_t *m,
    const char *name, const char *help, ngx_http_dashstream_hist_t *h,
    const double *bounds, ngx_http_dashstream_label_t *labels, size_t n)
{
    ngx_uint_t  i;
    uint64_t    buckets[NGX_HTTP_DASHSTREAM_HIST_MAX], count;

    /* count first: buckets read later can only be larger, never smaller */

    count = h->count;

    for (i = 0; bounds[i] != 0; i++) {
        buckets[i] = h->bucket[i];
    }

    ngx_http_dashstream_expo_family(&m->e, name, "histogram", help);
    ngx_http_dashstream_expo_histogram(&m->e, name, labels, n, bounds,
                                       buckets, count, h->sum / 1e6);
}


static void
ngx_http_dashstream_label_str(ngx_http_dashstream_label_t *l,
    const char *name, const char *value)
{
    l->name = name;
    l->value = (const unsigned char *) value;
    l->len = ngx_strlen(value);
}
