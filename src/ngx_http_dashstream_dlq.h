/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_DLQ_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_DLQ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_dashstream_kafka.h"
#include "ngx_http_dashstream_zone.h"


/*
 * The dead-letter queue: a producer of the consumer thread that sends one
 * forensic JSON record (ngx_http_dashstream_dlqrec.h) per undecodable
 * message.  Used from the consumer thread only: librdkafka, atomics and
 * the thread log mailbox.
 *
 * A record sent with "hold" (fail_closed) is retried with a bounded
 * exponential backoff until it is delivered, then done() is called with
 * its source partition and offset.  Other records (best_effort) have
 * "retries" more attempts and are then given up; they never wait.
 */

typedef struct ngx_http_dashstream_dlq_s  ngx_http_dashstream_dlq_t;


typedef struct {
    const char                          *topic;         /* the source */
    const char                          *dlq_topic;
    const char                          *brokers;
    ngx_uint_t                           truncate;
    size_t                               max_payload;
    ngx_uint_t                           max_inflight;
    ngx_uint_t                           retries;
    ngx_msec_t                           backoff;
    ngx_msec_t                           backoff_max;
    ngx_http_dashstream_kafka_params_t   kp;
    ngx_http_dashstream_shctx_t         *sh;
    void                               (*done)(void *data, int32_t partition,
                                               int64_t offset);
    void                                *data;
} ngx_http_dashstream_dlq_conf_t;


ngx_http_dashstream_dlq_t *ngx_http_dashstream_dlq_create(
    const ngx_http_dashstream_dlq_conf_t *conf);

/* NGX_OK: on its way; NGX_DECLINED: not sent (counted and logged) */
ngx_int_t ngx_http_dashstream_dlq_send(ngx_http_dashstream_dlq_t *dlq,
    const rd_kafka_message_t *m, const char *error_type, const char *error,
    ngx_uint_t hold);

/* delivery reports and due retries; never blocks */
void ngx_http_dashstream_dlq_poll(ngx_http_dashstream_dlq_t *dlq);

/* flushes for at most timeout ms, then drops what is left */
void ngx_http_dashstream_dlq_destroy(ngx_http_dashstream_dlq_t *dlq,
    ngx_msec_t timeout);


#endif /* _NGX_HTTP_DASHSTREAM_DLQ_H_INCLUDED_ */
