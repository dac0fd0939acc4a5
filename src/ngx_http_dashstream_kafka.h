/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_KAFKA_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_KAFKA_H_INCLUDED_


#include <stddef.h>
#include <librdkafka/rdkafka.h>


#define NGX_HTTP_DASHSTREAM_CLIENT_CONSUMER  0
#define NGX_HTTP_DASHSTREAM_CLIENT_PRODUCER  1
#define NGX_HTTP_DASHSTREAM_CLIENT_METADATA  2

/* librdkafka's largest time in ms (an int) */
#define NGX_HTTP_DASHSTREAM_KAFKA_MAX_MS     2147483647


/*
 * What a Kafka client needs beyond the validated template built at
 * configuration time.  Plain C: filled in by a worker, read by the threads.
 */

typedef struct {
    rd_kafka_conf_t   *tmpl;
    const char        *group_id;
    unsigned           commit:1;        /* group mode: join and commit */
    const char        *offset_reset;    /* "latest" or "earliest" */
    unsigned           session_timeout_ms;
    unsigned           message_timeout_ms;  /* producer */
    void              *opaque;
    void             (*log_cb)(const rd_kafka_t *rk, int level,
                               const char *fac, const char *buf);
    void             (*error_cb)(rd_kafka_t *rk, int err, const char *reason,
                                 void *opaque);
    void             (*rebalance_cb)(rd_kafka_t *rk,
                                     rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t *parts,
                                     void *opaque);
    void             (*dr_msg_cb)(rd_kafka_t *rk,
                                  const rd_kafka_message_t *m, void *opaque);
} ngx_http_dashstream_kafka_params_t;


/*
 * The one function that makes every Kafka client of the module, so that
 * brokers, security and timeouts cannot differ between them.  Thread-safe;
 * touches librdkafka only.
 */
rd_kafka_t *ngx_http_dashstream_kafka_client(int role,
    const ngx_http_dashstream_kafka_params_t *kp, char *err, size_t err_cap);

/* the error_type label of a librdkafka error: NGX_HTTP_DASHSTREAM_KERR_* */
unsigned ngx_http_dashstream_kafka_error_type(int err);
const char *ngx_http_dashstream_kafka_error_label(unsigned type);


#endif /* _NGX_HTTP_DASHSTREAM_KAFKA_H_INCLUDED_ */
