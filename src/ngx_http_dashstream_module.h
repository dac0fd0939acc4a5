/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_MODULE_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <librdkafka/rdkafka.h>

#include "ngx_http_dashstream_ring.h"
#include "ngx_http_dashstream_zone.h"
#include "ngx_http_dashstream_thread.h"


#define NGX_HTTP_DASHSTREAM_VERSION         "0.1.0"
#define NGX_HTTP_DASHSTREAM_DEFAULT_TOPIC   "dashstream-quality"
#define NGX_HTTP_DASHSTREAM_DEFAULT_GROUP   "ngx-dashstream"

#define NGX_HTTP_DASHSTREAM_MODE_GROUP      0
#define NGX_HTTP_DASHSTREAM_MODE_BROADCAST  1

#define NGX_HTTP_DASHSTREAM_RESET_LATEST    0
#define NGX_HTTP_DASHSTREAM_RESET_EARLIEST  1

#define NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW  0
#define NGX_HTTP_DASHSTREAM_PROTO_RAW       1

#define NGX_HTTP_DASHSTREAM_DLQ_BEST_EFFORT  0
#define NGX_HTTP_DASHSTREAM_DLQ_FAIL_CLOSED  1

#define NGX_HTTP_DASHSTREAM_DLQ_FULL         0
#define NGX_HTTP_DASHSTREAM_DLQ_TRUNCATED    1

#define NGX_HTTP_DASHSTREAM_SLOW_DROP       0
#define NGX_HTTP_DASHSTREAM_SLOW_CLOSE      1


typedef struct ngx_http_dashstream_consumer_s  ngx_http_dashstream_consumer_t;
typedef struct ngx_http_dashstream_sub_s       ngx_http_dashstream_sub_t;


/* one librdkafka property a directive set, and where */
typedef struct {
    const char                     *name;
    char                           *value;
    const char                     *directive;
    u_char                         *file;
    ngx_uint_t                      line;
} ngx_http_dashstream_kprop_t;


typedef struct {
    ngx_str_t                       brokers;
    ngx_str_t                       topic;
    ngx_str_t                       group_id;
    ngx_uint_t                      mode;
    ngx_uint_t                      offset_reset;
    size_t                          max_message_size;
    ngx_msec_t                      session_timeout;
    ngx_msec_t                      lag_interval;
    ngx_msec_t                      lag_timeout;
    ngx_array_t                    *stream_allow;   /* char *, NULL ends */
    ngx_uint_t                      stream_max_series;
    ngx_uint_t                      seq_threads;

    ngx_str_t                       security_protocol;
    ngx_str_t                       sasl_mechanism;
    ngx_str_t                       dlq_topic;
    ngx_uint_t                      dlq_mode;
    ngx_uint_t                      dlq_payload;
    size_t                          dlq_max_payload;
    ngx_uint_t                      dlq_max_inflight;
    ngx_uint_t                      dlq_retries;
    ngx_msec_t                      dlq_backoff;
    ngx_msec_t                      dlq_backoff_max;
    ngx_msec_t                      dlq_timeout;

    /* every Kafka setting of a directive, in configuration order */
    ngx_array_t                    *kafka_props;
    u_char                         *brokers_file;
    ngx_uint_t                      brokers_line;

    ngx_shm_zone_t                 *shm_zone;
    rd_kafka_conf_t                *kafka_conf;    /* validated at -t time */

    /* where directives appeared, for errors found after the http block */
    u_char                         *used_file;
    ngx_uint_t                      used_line;
    u_char                         *zone_file;
    ngx_uint_t                      zone_line;
    u_char                         *size_file;
    ngx_uint_t                      size_line;
    u_char                         *lag_file;
    ngx_uint_t                      lag_line;
    u_char                         *dlq_file;
    ngx_uint_t                      dlq_line;
    u_char                         *topic_file;
    ngx_uint_t                      topic_line;

    /* one eventfd per worker, made in the master, inherited by workers */
    int                            *wake_fds;
    ngx_uint_t                      nwake;
} ngx_http_dashstream_main_conf_t;


typedef struct {
    ngx_uint_t                      handler;
    ngx_uint_t                      protocol;
    ngx_msec_t                      ping_interval;
    ngx_msec_t                      idle_timeout;
    ngx_msec_t                      resume_wait;
    size_t                          max_client_message;
    size_t                          send_budget;
    ngx_uint_t                      slow_policy;
    ngx_uint_t                      resume_max_partitions;
    ngx_array_t                    *origins;        /* of ngx_str_t */
    ngx_http_complex_value_t       *tenant_scope;

    /* where the ping/idle pair was last set, for the check in merge */
    u_char                         *timing_file;
    ngx_uint_t                      timing_line;
} ngx_http_dashstream_loc_conf_t;


#define NGX_HTTP_DASHSTREAM_HANDLER_NONE       0
#define NGX_HTTP_DASHSTREAM_HANDLER_WEBSOCKET  1
#define NGX_HTTP_DASHSTREAM_HANDLER_METRICS    2
#define NGX_HTTP_DASHSTREAM_HANDLER_STATUS     3


extern ngx_module_t  ngx_http_dashstream_module;


/* zone */
ngx_http_dashstream_shctx_t *ngx_http_dashstream_shctx(ngx_cycle_t *cycle);

/* consumer thread, in worker 0 */
ngx_int_t ngx_http_dashstream_consumer_start(ngx_cycle_t *cycle,
    ngx_http_dashstream_main_conf_t *dmcf);
void ngx_http_dashstream_consumer_stop(ngx_cycle_t *cycle);
void ngx_http_dashstream_consumer_join(ngx_cycle_t *cycle);

/* kafka client builder and its directives */
rd_kafka_conf_t *ngx_http_dashstream_kafka_conf(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf);
char *ngx_http_dashstream_kafka_property(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_dashstream_kafka_security(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_dashstream_kafka_sasl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_dashstream_kafka_password_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_dashstream_kafka_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_dashstream_kafka_timeout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* per-worker fan-out */
ngx_int_t ngx_http_dashstream_fanout_init(ngx_cycle_t *cycle,
    ngx_http_dashstream_main_conf_t *dmcf);
void ngx_http_dashstream_fanout_exit(ngx_cycle_t *cycle);
void ngx_http_dashstream_fanout_terminate(void);
uint64_t ngx_http_dashstream_fanout_head(void);
void ngx_http_dashstream_fanout_add(ngx_http_dashstream_sub_t *sub);
void ngx_http_dashstream_fanout_remove(ngx_http_dashstream_sub_t *sub);

/* location handlers */
ngx_int_t ngx_http_dashstream_send_buffer(ngx_http_request_t *r,
    ngx_uint_t status, ngx_buf_t *b, const char *ctype, size_t ctype_len);
ngx_int_t ngx_http_dashstream_websocket_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_dashstream_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_dashstream_status_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_DASHSTREAM_MODULE_H_INCLUDED_ */
