/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_module.h"


/*
 * The metrics location: Prometheus text exposition 0.0.4, read from the
 * shared zone, so every worker answers with the same values.
 */


#define NGX_HTTP_DASHSTREAM_METRICS_MAX  (64 * 1024                           \
                                          + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS \
                                            * 256)


static u_char *ngx_http_dashstream_metric(u_char *p, const char *name,
    const char *type, const char *help);


ngx_int_t
ngx_http_dashstream_metrics_handler(ngx_http_request_t *r)
{
    u_char                            *p;
    ngx_int_t                          rc;
    ngx_buf_t                         *b;
    ngx_uint_t                         i;
    ngx_chain_t                        out;
    ngx_http_dashstream_shctx_t       *sh;
    ngx_http_dashstream_counters_t    *k;
    ngx_http_dashstream_main_conf_t   *dmcf;
    ngx_http_dashstream_ring_stats_t   st;

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

    b = ngx_create_temp_buf(r->pool, NGX_HTTP_DASHSTREAM_METRICS_MAX);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    k = &sh->counters;
    p = b->last;

    p = ngx_http_dashstream_metric(p, "websocket_kafka_messages_total",
                                   "counter",
                                   "Kafka messages consumed, by outcome.");
    p = ngx_sprintf(p, "websocket_kafka_messages_total{status=\"success\"} "
                    "%uA\n", k->messages_ok);
    p = ngx_sprintf(p, "websocket_kafka_messages_total{status=\"error\"} "
                    "%uA\n", k->messages_error);

    p = ngx_http_dashstream_metric(p, "dashstream_duplicates_skipped_total",
                                   "counter",
                                   "Kafka messages read again after a "
                                   "restart or rebalance and not written "
                                   "to the ring twice.");
    p = ngx_sprintf(p, "dashstream_duplicates_skipped_total %uA\n",
                    k->duplicates_skipped);

    p = ngx_http_dashstream_metric(p, "websocket_infrastructure_errors_total",
                                   "counter",
                                   "Kafka client and transport errors.");
    p = ngx_sprintf(p, "websocket_infrastructure_errors_total %uA\n",
                    k->kafka_errors);

    p = ngx_http_dashstream_metric(p, "websocket_connected_clients", "gauge",
                                   "Websocket subscribers connected to "
                                   "this nginx instance.");
    p = ngx_sprintf(p, "websocket_connected_clients %uA\n", k->subscribers);

    p = ngx_http_dashstream_metric(p, "websocket_messages_sent_total",
                                   "counter",
                                   "Messages written in full to "
                                   "websocket subscribers.");
    p = ngx_sprintf(p, "websocket_messages_sent_total %uA\n", k->frames_sent);

    p = ngx_http_dashstream_metric(p, "websocket_sent_bytes_total", "counter",
                                   "Bytes written to websocket "
                                   "subscribers.");
    p = ngx_sprintf(p, "websocket_sent_bytes_total %uA\n", k->bytes_sent);

    p = ngx_http_dashstream_metric(p, "websocket_dropped_messages_total",
                                   "counter",
                                   "Messages a subscriber did not get, by "
                                   "reason.");
    p = ngx_sprintf(p, "websocket_dropped_messages_total"
                    "{reason=\"slow_subscriber\"} %uA\n", k->dropped_slow);
    p = ngx_sprintf(p, "websocket_dropped_messages_total"
                    "{reason=\"overtaken\"} %uA\n", k->dropped_overtaken);

    p = ngx_http_dashstream_metric(p, "dashstream_kafka_rebalances_total",
                                   "counter", "Consumer group rebalances.");
    p = ngx_sprintf(p, "dashstream_kafka_rebalances_total %uA\n",
                    k->rebalances);

    p = ngx_http_dashstream_metric(p, "dashstream_kafka_assigned_partitions",
                                   "gauge",
                                   "Partitions assigned to this instance's "
                                   "consumer.");

    for (i = 0, rc = 0; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        rc += sh->part[i].assigned ? 1 : 0;
    }

    p = ngx_sprintf(p, "dashstream_kafka_assigned_partitions{topic=\"%V\"} "
                    "%i\n", &dmcf->topic, rc);

    ngx_http_dashstream_ring_stats(sh->ring, &st);

    p = ngx_http_dashstream_metric(p, "dashstream_ring_records", "gauge",
                                   "Records held in the shared ring.");
    p = ngx_sprintf(p, "dashstream_ring_records %uL\n", st.records);

    p = ngx_http_dashstream_metric(p, "dashstream_ring_overwrites_total",
                                   "counter",
                                   "Records evicted from the ring to make "
                                   "room for new ones.");
    p = ngx_sprintf(p, "dashstream_ring_overwrites_total %uL\n",
                    st.overwrites);

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static u_char *
ngx_http_dashstream_metric(u_char *p, const char *name, const char *type,
    const char *help)
{
    return ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n",
                       name, help, name, type);
}
