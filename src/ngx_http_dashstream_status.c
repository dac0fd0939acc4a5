/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_lagmath.h"
#include "ngx_http_dashstream_json.h"


/*
 * The status location: what this instance consumes and serves, as one
 * JSON document read from the shared zone (docs/status.md).  No secret of
 * the configuration is ever part of it.
 */


#define NGX_HTTP_DASHSTREAM_STATUS_PART  256


static u_char *ngx_http_dashstream_status_config(u_char *p,
    ngx_http_dashstream_main_conf_t *dmcf);
static u_char *ngx_http_dashstream_status_consumer(u_char *p,
    ngx_http_dashstream_shctx_t *sh, uint64_t now);
static u_char *ngx_http_dashstream_status_partitions(u_char *p,
    ngx_http_dashstream_shctx_t *sh, ngx_http_dashstream_main_conf_t *dmcf,
    uint64_t now);
static u_char *ngx_http_dashstream_status_ring(u_char *p,
    ngx_http_dashstream_shctx_t *sh);
static u_char *ngx_http_dashstream_status_workers(u_char *p,
    ngx_http_dashstream_shctx_t *sh);
static u_char *ngx_http_dashstream_status_str(u_char *p, const u_char *s,
    size_t len);
static u_char *ngx_http_dashstream_status_offset(u_char *p, int64_t v);
static u_char *ngx_http_dashstream_status_age(u_char *p, const char *key,
    uint64_t ms, uint64_t now);


ngx_int_t
ngx_http_dashstream_status_handler(ngx_http_request_t *r)
{
    u_char                           *p;
    size_t                            size;
    uint64_t                          now;
    ngx_int_t                         rc;
    ngx_buf_t                        *b;
    ngx_http_dashstream_shctx_t      *sh;
    ngx_http_dashstream_main_conf_t  *dmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_dashstream_module);
    sh = ngx_http_dashstream_shctx((ngx_cycle_t *) ngx_cycle);

    if (sh == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    size = 16384 + 6 * (dmcf->brokers.len + dmcf->topic.len
                        + dmcf->group_id.len + dmcf->dlq_topic.len)
           + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS * NGX_HTTP_DASHSTREAM_STATUS_PART
           + NGX_HTTP_DASHSTREAM_MAX_WORKERS * 64;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    now = ngx_http_dashstream_realtime_ms();

    p = ngx_sprintf(b->last, "{\"version\":\"%s\",\"nginx_version\":\"%s\","
                    "\"librdkafka_version\":\"%s\",\"time\":%uL.%03uL,",
                    NGX_HTTP_DASHSTREAM_VERSION, NGINX_VERSION,
                    rd_kafka_version_str(), now / 1000, now % 1000);

    p = ngx_http_dashstream_status_config(p, dmcf);
    p = ngx_http_dashstream_status_consumer(p, sh, now);
    p = ngx_http_dashstream_status_partitions(p, sh, dmcf, now);
    p = ngx_http_dashstream_status_ring(p, sh);
    p = ngx_http_dashstream_status_workers(p, sh);

    *p++ = '}';
    *p++ = LF;

    b->last = p;

    return ngx_http_dashstream_send_buffer(r, NGX_HTTP_OK, b,
                                           "application/json",
                                           sizeof("application/json") - 1);
}


static u_char *
ngx_http_dashstream_status_config(u_char *p,
    ngx_http_dashstream_main_conf_t *dmcf)
{
    ngx_str_t  *zone;

    zone = &dmcf->shm_zone->shm.name;

    p = ngx_cpymem(p, "\"config\":{\"brokers\":", 20);
    p = ngx_http_dashstream_status_str(p, dmcf->brokers.data,
                                       dmcf->brokers.len);
    p = ngx_cpymem(p, ",\"topic\":", 9);
    p = ngx_http_dashstream_status_str(p, dmcf->topic.data, dmcf->topic.len);
    p = ngx_cpymem(p, ",\"group_id\":", 12);
    p = ngx_http_dashstream_status_str(p, dmcf->group_id.data,
                                       dmcf->group_id.len);

    p = ngx_sprintf(p, ",\"mode\":\"%s\",\"offset_reset\":\"%s\","
                    "\"security_protocol\":\"%V\",\"sasl_mechanism\":",
                    dmcf->mode == NGX_HTTP_DASHSTREAM_MODE_GROUP
                    ? "group" : "broadcast",
                    dmcf->offset_reset == NGX_HTTP_DASHSTREAM_RESET_LATEST
                    ? "latest" : "earliest",
                    &dmcf->security_protocol);

    if (dmcf->sasl_mechanism.len) {
        p = ngx_http_dashstream_status_str(p, dmcf->sasl_mechanism.data,
                                           dmcf->sasl_mechanism.len);
    } else {
        p = ngx_cpymem(p, "null", 4);
    }

    p = ngx_sprintf(p, ",\"max_message_size\":%uz,\"zone\":{\"name\":",
                    dmcf->max_message_size);
    p = ngx_http_dashstream_status_str(p, zone->data, zone->len);
    p = ngx_sprintf(p, ",\"size\":%uz},\"dlq\":{\"mode\":\"%s\",\"topic\":",
                    dmcf->shm_zone->shm.size,
                    dmcf->dlq_mode == NGX_HTTP_DASHSTREAM_DLQ_FAIL_CLOSED
                    ? "fail_closed" : "best_effort");
    p = ngx_http_dashstream_status_str(p, dmcf->dlq_topic.data,
                                       dmcf->dlq_topic.len);

    return ngx_cpymem(p, "}},", 3);
}


static u_char *
ngx_http_dashstream_status_consumer(u_char *p, ngx_http_dashstream_shctx_t *sh,
    uint64_t now)
{
    u_char                           text[NGX_HTTP_DASHSTREAM_ERROR_LEN];
    size_t                           len;
    uint64_t                         ms;
    ngx_uint_t                       i, assigned;
    ngx_http_dashstream_counters_t  *k;

    k = &sh->counters;

    for (i = 0, assigned = 0; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        assigned += sh->part[i].assigned ? 1 : 0;
    }

    p = ngx_sprintf(p, "\"consumer\":{\"running\":%s,\"writer_pid\":%uA,"
                    "\"broker_connected\":%s,\"topic_missing\":%s,"
                    "\"starts\":%uA,\"rebalances\":%uA,"
                    "\"assigned_partitions\":%ui,",
                    k->consumer_running ? "true" : "false", sh->writer_pid,
                    k->broker_up ? "true" : "false",
                    sh->topic_missing ? "true" : "false",
                    k->consumer_starts, k->rebalances, assigned);

    p = sh->partitions
        ? ngx_sprintf(p, "\"topic_partitions\":%uA,", sh->partitions)
        : ngx_cpymem(p, "\"topic_partitions\":null,",
                     sizeof("\"topic_partitions\":null,") - 1);

    p = ngx_sprintf(p, "\"partitions_not_served\":%uA,"
                    "\"messages\":{\"success\":%uA,\"error\":%uA},"
                    "\"last_error\":",
                    sh->partitions > NGX_HTTP_DASHSTREAM_MAX_PARTITIONS
                    ? sh->partitions - NGX_HTTP_DASHSTREAM_MAX_PARTITIONS : 0,
                    k->messages_ok, k->messages_error);

    len = ngx_http_dashstream_note_get(&sh->consumer_error, text,
                                       sizeof(text), &ms);
    p = ngx_http_dashstream_status_str(p, text, len);
    p = ngx_http_dashstream_status_age(p, ",\"last_error_age_seconds\":",
                                       len ? ms : 0, now);

    p = ngx_sprintf(p, "},\"lag_poll\":{\"polls\":%uA,\"failures\":%uA",
                    k->lag_polls, k->lag_poll_failures);
    p = ngx_http_dashstream_status_age(p, ",\"last_success_age_seconds\":",
                                       k->lag_poll_ok_ms, now);

    p = ngx_cpymem(p, ",\"last_error\":", 14);
    len = ngx_http_dashstream_note_get(&sh->lag_error, text, sizeof(text),
                                       &ms);
    p = ngx_http_dashstream_status_str(p, text, len);
    p = ngx_http_dashstream_status_age(p, ",\"last_error_age_seconds\":",
                                       len ? ms : 0, now);

    return ngx_cpymem(p, "},", 2);
}


static u_char *
ngx_http_dashstream_status_partitions(u_char *p,
    ngx_http_dashstream_shctx_t *sh, ngx_http_dashstream_main_conf_t *dmcf,
    uint64_t now)
{
    ngx_uint_t                      i, first;
    ngx_http_dashstream_part_t     *part;
    ngx_http_dashstream_lag_in_t    in;
    ngx_http_dashstream_lag_out_t   out;

    p = ngx_cpymem(p, "\"partitions\":[", 14);

    for (i = 0, first = 1; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        part = &sh->part[i];

        if (!part->assigned && part->position == 0 && part->messages == 0) {
            continue;
        }

        in.position = part->position;
        in.position_live = part->position_live;
        in.last_ts_ms = part->last_ts_ms;
        in.high_watermark = part->assigned ? part->high_watermark : 0;
        in.committed = part->committed;
        in.assigned_ms = part->assigned_ms;
        in.trust_position = (dmcf->mode == NGX_HTTP_DASHSTREAM_MODE_BROADCAST);
        in.reset_latest = (dmcf->offset_reset
                           == NGX_HTTP_DASHSTREAM_RESET_LATEST);

        ngx_http_dashstream_lag_of(&in, now, &out);

        if (!part->assigned) {
            out.position = part->position ? (int64_t) part->position : -1;
        }

        p = ngx_sprintf(p, "%s{\"partition\":%ui,\"assigned\":%s,"
                        "\"position\":", first ? "" : ",", i,
                        part->assigned ? "true" : "false");
        p = ngx_http_dashstream_status_offset(p, out.position);
        p = ngx_cpymem(p, ",\"high_watermark\":", 18);
        p = ngx_http_dashstream_status_offset(p, out.high_watermark);
        p = ngx_cpymem(p, ",\"lag\":", 7);
        p = ngx_http_dashstream_status_offset(p, part->assigned ? out.lag : -1);
        p = ngx_sprintf(p, ",\"offset_age_seconds\":%.3f,\"paused\":%s,"
                        "\"last_written\":", out.age,
                        part->paused ? "true" : "false");
        p = ngx_http_dashstream_status_offset(p,
                                              (int64_t) part->last_written - 1);
        p = ngx_sprintf(p, ",\"messages\":%uA}", part->messages);

        first = 0;
    }

    return ngx_cpymem(p, "],", 2);
}


static u_char *
ngx_http_dashstream_status_ring(u_char *p, ngx_http_dashstream_shctx_t *sh)
{
    ngx_uint_t                        fill;
    ngx_http_dashstream_ring_stats_t  st;

    ngx_http_dashstream_ring_stats(sh->ring, &st);

    fill = st.data_size ? (ngx_uint_t) (st.bytes_used * 10000 / st.data_size)
                        : 0;

    return ngx_sprintf(p, "\"ring\":{\"capacity_bytes\":%uL,"
                       "\"used_bytes\":%uL,\"fill\":%ui.%04ui,"
                       "\"records\":%uL,\"slots\":%uD,\"head\":%uL,"
                       "\"tail\":%uL,\"overwrites\":%uL},",
                       st.data_size, st.bytes_used, fill / 10000,
                       fill % 10000, st.records, st.nslots, st.head, st.tail,
                       ngx_http_dashstream_ring_overwrites(sh));
}


static u_char *
ngx_http_dashstream_status_workers(u_char *p, ngx_http_dashstream_shctx_t *sh)
{
    ngx_uint_t  i, first;

    p = ngx_sprintf(p, "\"subscribers\":{\"total\":%uA,\"workers\":[",
                    ngx_http_dashstream_subscribers(sh));

    for (i = 0, first = 1; i < NGX_HTTP_DASHSTREAM_MAX_WORKERS; i++) {
        if (!ngx_http_dashstream_worker_alive(sh, i)) {
            continue;
        }

        p = ngx_sprintf(p, "%s{\"pid\":%uA,\"subscribers\":%uA}",
                        first ? "" : ",", sh->workers[i].pid,
                        sh->workers[i].subscribers);
        first = 0;
    }

    return ngx_cpymem(p, "]}", 2);
}


/* room: 6 bytes of output per input byte, and the quotes */

/* key, then seconds since the realtime ms, or null for 0 (never) */

static u_char *
ngx_http_dashstream_status_age(u_char *p, const char *key, uint64_t ms,
    uint64_t now)
{
    p = ngx_cpymem(p, key, ngx_strlen(key));

    if (ms == 0) {
        return ngx_cpymem(p, "null", 4);
    }

    ms = now > ms ? now - ms : 0;

    return ngx_sprintf(p, "%uL.%03uL", ms / 1000, ms % 1000);
}


static u_char *
ngx_http_dashstream_status_str(u_char *p, const u_char *s, size_t len)
{
    *p++ = '"';
    p = ngx_http_dashstream_json_escape(p, s, len);
    *p++ = '"';

    return p;
}


static u_char *
ngx_http_dashstream_status_offset(u_char *p, int64_t v)
{
    if (v < 0) {
        return ngx_cpymem(p, "null", 4);
    }

    return ngx_sprintf(p, "%L", v);
}
