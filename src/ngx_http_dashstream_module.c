/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sys/eventfd.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_kafka.h"


static ngx_int_t ngx_http_dashstream_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_dashstream_init_process(ngx_cycle_t *cycle);
static void ngx_http_dashstream_exit_process(ngx_cycle_t *cycle);
static void ngx_http_dashstream_close_wake_fds(void *data);

static void *ngx_http_dashstream_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_dashstream_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_dashstream_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_dashstream_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void ngx_http_dashstream_destroy_kafka_conf(void *data);

static char *ngx_http_dashstream_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_brokers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_topic(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_websocket(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_stream_metrics(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_dashstream_max_message_size(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_dashstream_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_dashstream_origin_valid(ngx_str_t *o);
static ngx_uint_t ngx_http_dashstream_origin_char(u_char c);
static char *ngx_http_dashstream_min_message(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_dashstream_check_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_dashstream_check_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_dashstream_lag_time(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_ws_time(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_dashstream_dlq_backoff(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_dashstream_set_handler(ngx_conf_t *cf,
    ngx_http_dashstream_loc_conf_t *dlcf, ngx_uint_t handler);


static ngx_conf_enum_t  ngx_http_dashstream_modes[] = {
    { ngx_string("group"), NGX_HTTP_DASHSTREAM_MODE_GROUP },
    { ngx_string("broadcast"), NGX_HTTP_DASHSTREAM_MODE_BROADCAST },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_dashstream_offset_resets[] = {
    { ngx_string("latest"), NGX_HTTP_DASHSTREAM_RESET_LATEST },
    { ngx_string("earliest"), NGX_HTTP_DASHSTREAM_RESET_EARLIEST },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_dashstream_dlq_modes[] = {
    { ngx_string("best_effort"), NGX_HTTP_DASHSTREAM_DLQ_BEST_EFFORT },
    { ngx_string("fail_closed"), NGX_HTTP_DASHSTREAM_DLQ_FAIL_CLOSED },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_dashstream_dlq_payloads[] = {
    { ngx_string("full"), NGX_HTTP_DASHSTREAM_DLQ_FULL },
    { ngx_string("truncated"), NGX_HTTP_DASHSTREAM_DLQ_TRUNCATED },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_dashstream_inflight_bounds = {
    ngx_conf_check_num_bounds, 1, 100000
};


static ngx_conf_num_bounds_t  ngx_http_dashstream_retries_bounds = {
    ngx_conf_check_num_bounds, 0, 100
};


static ngx_conf_enum_t  ngx_http_dashstream_slow_policies[] = {
    { ngx_string("drop"), NGX_HTTP_DASHSTREAM_SLOW_DROP },
    { ngx_string("close"), NGX_HTTP_DASHSTREAM_SLOW_CLOSE },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_dashstream_partitions_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_HTTP_DASHSTREAM_MAX_PARTITIONS
};


static ngx_conf_post_handler_pt  ngx_http_dashstream_min_message_p =
    ngx_http_dashstream_min_message;


/* a time or size directive's range, checked where it appears */

typedef struct {
    ngx_conf_post_handler_pt        post_handler;
    ngx_msec_t                      low;
    ngx_msec_t                      high;
} ngx_http_dashstream_msec_bounds_t;


typedef struct {
    ngx_conf_post_handler_pt        post_handler;
    size_t                          low;
    size_t                          high;
} ngx_http_dashstream_size_bounds_t;


/* librdkafka's session.timeout.ms is 1..3600000; brokers want >= 6s */
static ngx_http_dashstream_msec_bounds_t  ngx_http_dashstream_session_bounds = {
    ngx_http_dashstream_check_msec, 1000, 3600000
};


static ngx_http_dashstream_msec_bounds_t  ngx_http_dashstream_lag_bounds = {
    ngx_http_dashstream_check_msec, 10, 3600000
};


/* message.timeout.ms: 0 would be "forever", more would wrap */
static ngx_http_dashstream_msec_bounds_t  ngx_http_dashstream_dlq_time_bounds = {
    ngx_http_dashstream_check_msec, 1, NGX_HTTP_DASHSTREAM_KAFKA_MAX_MS
};


/* a ping timer of 0 would fire on every turn of the event loop */
static ngx_http_dashstream_msec_bounds_t  ngx_http_dashstream_ping_bounds = {
    ngx_http_dashstream_check_msec, 100, 86400000
};


static ngx_http_dashstream_size_bounds_t  ngx_http_dashstream_budget_bounds = {
    ngx_http_dashstream_check_size, 16 * 1024, NGX_MAX_SIZE_T_VALUE
};


static ngx_http_dashstream_size_bounds_t  ngx_http_dashstream_message_bounds = {
    ngx_http_dashstream_check_size, 1024, NGX_MAX_SIZE_T_VALUE
};


static ngx_conf_num_bounds_t  ngx_http_dashstream_series_bounds = {
    ngx_conf_check_num_bounds, 0, NGX_HTTP_DASHSTREAM_MAX_SERIES
};


static ngx_conf_num_bounds_t  ngx_http_dashstream_threads_bounds = {
    ngx_conf_check_num_bounds, 16, 16 * 1024 * 1024
};


static ngx_command_t  ngx_http_dashstream_commands[] = {

    { ngx_string("dashstream_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_dashstream_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dashstream_brokers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_brokers,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, brokers),
      NULL },

    { ngx_string("dashstream_topic"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_topic,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, topic),
      NULL },

    { ngx_string("dashstream_group_id"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_name,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, group_id),
      NULL },

    { ngx_string("dashstream_mode"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, mode),
      &ngx_http_dashstream_modes },

    { ngx_string("dashstream_offset_reset"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, offset_reset),
      &ngx_http_dashstream_offset_resets },

    { ngx_string("dashstream_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_max_message_size,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, max_message_size),
      &ngx_http_dashstream_message_bounds },

    { ngx_string("dashstream_session_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, session_timeout),
      &ngx_http_dashstream_session_bounds },

    { ngx_string("dashstream_lag_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_lag_time,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, lag_interval),
      &ngx_http_dashstream_lag_bounds },

    { ngx_string("dashstream_lag_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_lag_time,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, lag_timeout),
      &ngx_http_dashstream_lag_bounds },

    { ngx_string("dashstream_stream_metrics"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_dashstream_stream_metrics,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dashstream_stream_max_series"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, stream_max_series),
      &ngx_http_dashstream_series_bounds },

    { ngx_string("dashstream_sequence_threads"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, seq_threads),
      &ngx_http_dashstream_threads_bounds },

    { ngx_string("dashstream_security_protocol"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_security,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "security.protocol" },

    { ngx_string("dashstream_sasl_mechanism"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_security,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "sasl.mechanism" },

    { ngx_string("dashstream_sasl_username"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_sasl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "sasl.username" },

    { ngx_string("dashstream_sasl_password"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_sasl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "sasl.password" },

    { ngx_string("dashstream_sasl_password_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_password_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "sasl.password" },

    { ngx_string("dashstream_ssl_ca"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "ssl.ca.pem" },

    { ngx_string("dashstream_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "ssl.certificate.pem" },

    { ngx_string("dashstream_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "ssl.key.pem" },

    { ngx_string("dashstream_socket_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_timeout,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "socket.timeout.ms" },

    { ngx_string("dashstream_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_kafka_timeout,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "socket.connection.setup.timeout.ms" },

    { ngx_string("dashstream_kafka_property"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_dashstream_kafka_property,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dashstream_dlq_mode"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, dlq_mode),
      &ngx_http_dashstream_dlq_modes },

    { ngx_string("dashstream_dlq_topic"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_topic,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, dlq_topic),
      NULL },

    { ngx_string("dashstream_dlq_payload"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, dlq_payload),
      &ngx_http_dashstream_dlq_payloads },

    { ngx_string("dashstream_dlq_max_payload"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, dlq_max_payload),
      NULL },

    { ngx_string("dashstream_dlq_max_inflight"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, dlq_max_inflight),
      &ngx_http_dashstream_inflight_bounds },

    { ngx_string("dashstream_dlq_retries"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, dlq_retries),
      &ngx_http_dashstream_retries_bounds },

    { ngx_string("dashstream_dlq_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_dashstream_dlq_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dashstream_dlq_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_dashstream_main_conf_t, dlq_timeout),
      &ngx_http_dashstream_dlq_time_bounds },

    { ngx_string("dashstream_websocket"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_dashstream_websocket,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("dashstream_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_dashstream_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_DASHSTREAM_HANDLER_METRICS,
      NULL },

    { ngx_string("dashstream_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_dashstream_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_DASHSTREAM_HANDLER_STATUS,
      NULL },

    { ngx_string("dashstream_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_ws_time,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, ping_interval),
      &ngx_http_dashstream_ping_bounds },

    { ngx_string("dashstream_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_dashstream_ws_time,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, idle_timeout),
      &ngx_http_dashstream_ping_bounds },

    { ngx_string("dashstream_resume_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, resume_wait),
      NULL },

    { ngx_string("dashstream_client_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, max_client_message),
      &ngx_http_dashstream_min_message_p },

    { ngx_string("dashstream_send_budget"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, send_budget),
      &ngx_http_dashstream_budget_bounds },

    { ngx_string("dashstream_slow_subscriber"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, slow_policy),
      &ngx_http_dashstream_slow_policies },

    { ngx_string("dashstream_allowed_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_dashstream_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, origins),
      NULL },

    { ngx_string("dashstream_tenant_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, tenant_scope),
      NULL },

    { ngx_string("dashstream_resume_max_partitions"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_dashstream_loc_conf_t, resume_max_partitions),
      &ngx_http_dashstream_partitions_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_dashstream_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_dashstream_create_main_conf,  /* create main configuration */
    ngx_http_dashstream_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_dashstream_create_loc_conf,   /* create location configuration */
    ngx_http_dashstream_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_dashstream_module = {
    NGX_MODULE_V1,
    &ngx_http_dashstream_module_ctx,       /* module context */
    ngx_http_dashstream_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_dashstream_init_module,       /* init module */
    ngx_http_dashstream_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_dashstream_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_dashstream_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    ngx_core_conf_t                  *ccf;
    ngx_pool_cleanup_t               *cln;
    ngx_http_dashstream_main_conf_t  *dmcf;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_dashstream_module);
    if (dmcf == NULL || dmcf->used_file == NULL) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    /*
     * The eventfds are made here, in the master, so that every worker of
     * this cycle inherits all of them: the consumer thread in worker 0
     * wakes each worker through its own descriptor.
     */

    dmcf->nwake = ccf->master ? (ngx_uint_t) ccf->worker_processes : 1;

    dmcf->wake_fds = ngx_pcalloc(cycle->pool, dmcf->nwake * sizeof(int));
    if (dmcf->wake_fds == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < dmcf->nwake; i++) {
        dmcf->wake_fds[i] = -1;
    }

    cln->handler = ngx_http_dashstream_close_wake_fds;
    cln->data = dmcf;

    for (i = 0; i < dmcf->nwake; i++) {
        dmcf->wake_fds[i] = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);

        if (dmcf->wake_fds[i] == -1) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          "dashstream: eventfd() failed");
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_dashstream_close_wake_fds(void *data)
{
    ngx_http_dashstream_main_conf_t  *dmcf = data;

    ngx_uint_t  i;

    for (i = 0; i < dmcf->nwake; i++) {
        if (dmcf->wake_fds[i] != -1) {
            (void) close(dmcf->wake_fds[i]);
            dmcf->wake_fds[i] = -1;
        }
    }
}


static ngx_int_t
ngx_http_dashstream_init_process(ngx_cycle_t *cycle)
{
    ngx_http_dashstream_main_conf_t  *dmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_dashstream_module);
    if (dmcf == NULL || dmcf->used_file == NULL) {
        return NGX_OK;
    }

    if (ngx_http_dashstream_fanout_init(cycle, dmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    /*
     * A consumer that cannot start is logged and counted; the worker keeps
     * serving what the ring holds rather than taking nginx down with it.
     */

    (void) ngx_http_dashstream_consumer_start(cycle, dmcf);

    return NGX_OK;
}


static void
ngx_http_dashstream_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_dashstream_main_conf_t  *dmcf;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_dashstream_module);
    if (dmcf == NULL || dmcf->used_file == NULL) {
        return;
    }

    ngx_http_dashstream_fanout_terminate();
    ngx_http_dashstream_consumer_stop(cycle);
    ngx_http_dashstream_consumer_join(cycle);
    ngx_http_dashstream_fanout_exit(cycle);
}


static void *
ngx_http_dashstream_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_dashstream_main_conf_t  *dmcf;

    dmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_dashstream_main_conf_t));
    if (dmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dmcf->brokers = { 0, NULL };
     *     dmcf->topic = { 0, NULL };
     *     dmcf->group_id = { 0, NULL };
     *     dmcf->shm_zone = NULL;
     *     dmcf->kafka_conf = NULL;
     *     dmcf->used_file = NULL;
     *     dmcf->wake_fds = NULL;
     */

    dmcf->mode = NGX_CONF_UNSET_UINT;
    dmcf->offset_reset = NGX_CONF_UNSET_UINT;
    dmcf->max_message_size = NGX_CONF_UNSET_SIZE;
    dmcf->session_timeout = NGX_CONF_UNSET_MSEC;
    dmcf->lag_interval = NGX_CONF_UNSET_MSEC;
    dmcf->lag_timeout = NGX_CONF_UNSET_MSEC;
    dmcf->stream_max_series = NGX_CONF_UNSET_UINT;
    dmcf->seq_threads = NGX_CONF_UNSET_UINT;
    dmcf->dlq_mode = NGX_CONF_UNSET_UINT;
    dmcf->dlq_payload = NGX_CONF_UNSET_UINT;
    dmcf->dlq_max_payload = NGX_CONF_UNSET_SIZE;
    dmcf->dlq_max_inflight = NGX_CONF_UNSET_UINT;
    dmcf->dlq_retries = NGX_CONF_UNSET_UINT;
    dmcf->dlq_backoff = NGX_CONF_UNSET_MSEC;
    dmcf->dlq_backoff_max = NGX_CONF_UNSET_MSEC;
    dmcf->dlq_timeout = NGX_CONF_UNSET_MSEC;

    return dmcf;
}


static char *
ngx_http_dashstream_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    char               **allow;
    size_t               zone_size;
    ngx_pool_cleanup_t  *cln;

    if (dmcf->topic.data == NULL) {
        ngx_str_set(&dmcf->topic, NGX_HTTP_DASHSTREAM_DEFAULT_TOPIC);
    }

    if (dmcf->group_id.data == NULL) {
        ngx_str_set(&dmcf->group_id, NGX_HTTP_DASHSTREAM_DEFAULT_GROUP);
    }

    ngx_conf_init_uint_value(dmcf->mode, NGX_HTTP_DASHSTREAM_MODE_GROUP);
    ngx_conf_init_uint_value(dmcf->offset_reset,
                             NGX_HTTP_DASHSTREAM_RESET_LATEST);
    ngx_conf_init_size_value(dmcf->max_message_size, 1024 * 1024);
    ngx_conf_init_msec_value(dmcf->session_timeout, 6000);
    ngx_conf_init_msec_value(dmcf->lag_interval, 5000);
    ngx_conf_init_msec_value(dmcf->lag_timeout, 2000);
    ngx_conf_init_uint_value(dmcf->stream_max_series, 64);
    ngx_conf_init_uint_value(dmcf->seq_threads, 10000);
    ngx_conf_init_uint_value(dmcf->dlq_mode,
                             NGX_HTTP_DASHSTREAM_DLQ_BEST_EFFORT);
    ngx_conf_init_uint_value(dmcf->dlq_payload, NGX_HTTP_DASHSTREAM_DLQ_FULL);
    ngx_conf_init_size_value(dmcf->dlq_max_payload, 64 * 1024);
    ngx_conf_init_uint_value(dmcf->dlq_max_inflight, 1000);
    ngx_conf_init_uint_value(dmcf->dlq_retries, 2);
    ngx_conf_init_msec_value(dmcf->dlq_backoff, 200);
    ngx_conf_init_msec_value(dmcf->dlq_backoff_max, 10000);
    ngx_conf_init_msec_value(dmcf->dlq_timeout, 10000);

    if (dmcf->security_protocol.data == NULL) {
        ngx_str_set(&dmcf->security_protocol, "plaintext");
    }

    if (dmcf->dlq_topic.data == NULL) {
        dmcf->dlq_topic.len = dmcf->topic.len + sizeof("-dlq") - 1;

        if (dmcf->dlq_topic.len > 249) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "the dead-letter topic \"%V-dlq\" would be longer "
                          "than Kafka's 249 characters: set "
                          "\"dashstream_dlq_topic\" in %s:%ui", &dmcf->topic,
                          dmcf->topic_file, dmcf->topic_line);
            return NGX_CONF_ERROR;
        }

        dmcf->dlq_topic.data = ngx_pnalloc(cf->pool, dmcf->dlq_topic.len);
        if (dmcf->dlq_topic.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(dmcf->dlq_topic.data, "%V-dlq", &dmcf->topic);
    }

    if (dmcf->stream_allow) {
        allow = ngx_array_push(dmcf->stream_allow);
        if (allow == NULL) {
            return NGX_CONF_ERROR;
        }

        *allow = NULL;
    }

    if (dmcf->lag_timeout >= dmcf->lag_interval) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_lag_timeout\" (%M ms) must be shorter "
                      "than \"dashstream_lag_interval\" (%M ms) in %s:%ui",
                      dmcf->lag_timeout, dmcf->lag_interval, dmcf->lag_file,
                      dmcf->lag_line);
        return NGX_CONF_ERROR;
    }

    /* dead letters in the topic they came from would come back forever */

    if (dmcf->dlq_topic.len == dmcf->topic.len
        && ngx_strncmp(dmcf->dlq_topic.data, dmcf->topic.data,
                       dmcf->topic.len) == 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_dlq_topic\" \"%V\" is the topic the "
                      "module consumes: undecodable records would come back "
                      "from it forever in %s:%ui", &dmcf->dlq_topic,
                      dmcf->dlq_file, dmcf->dlq_line);
        return NGX_CONF_ERROR;
    }

    if (dmcf->used_file == NULL) {
        return NGX_CONF_OK;
    }

    if (dmcf->brokers.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_brokers\" must be set: a dashstream "
                      "location is configured in %s:%ui",
                      dmcf->used_file, dmcf->used_line);
        return NGX_CONF_ERROR;
    }

    if (dmcf->shm_zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_zone\" must be set: a dashstream "
                      "location is configured in %s:%ui",
                      dmcf->used_file, dmcf->used_line);
        return NGX_CONF_ERROR;
    }

    zone_size = dmcf->shm_zone->shm.size;

    if (dmcf->max_message_size > zone_size / 8) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_max_message_size\" %uz is too large "
                      "for dashstream_zone \"%V\" of %uz bytes: one message "
                      "may use at most 1/8 of the zone in %s:%ui",
                      dmcf->max_message_size, &dmcf->shm_zone->shm.name,
                      zone_size, dmcf->size_file ? dmcf->size_file
                                                 : dmcf->zone_file,
                      dmcf->size_file ? dmcf->size_line : dmcf->zone_line);
        return NGX_CONF_ERROR;
    }

    dmcf->kafka_conf = ngx_http_dashstream_kafka_conf(cf, dmcf);
    if (dmcf->kafka_conf == NULL) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_dashstream_destroy_kafka_conf;
    cln->data = dmcf->kafka_conf;

    return NGX_CONF_OK;
}


static void
ngx_http_dashstream_destroy_kafka_conf(void *data)
{
    rd_kafka_conf_destroy(data);
}


static void *
ngx_http_dashstream_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_dashstream_loc_conf_t  *dlcf;

    dlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_dashstream_loc_conf_t));
    if (dlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dlcf->handler = NGX_HTTP_DASHSTREAM_HANDLER_NONE;
     *     dlcf->protocol = NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW;
     */

    dlcf->ping_interval = NGX_CONF_UNSET_MSEC;
    dlcf->idle_timeout = NGX_CONF_UNSET_MSEC;
    dlcf->resume_wait = NGX_CONF_UNSET_MSEC;
    dlcf->max_client_message = NGX_CONF_UNSET_SIZE;
    dlcf->send_budget = NGX_CONF_UNSET_SIZE;
    dlcf->slow_policy = NGX_CONF_UNSET_UINT;
    dlcf->resume_max_partitions = NGX_CONF_UNSET_UINT;
    dlcf->origins = NGX_CONF_UNSET_PTR;
    dlcf->tenant_scope = NGX_CONF_UNSET_PTR;

    return dlcf;
}


static char *
ngx_http_dashstream_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_dashstream_loc_conf_t *prev = parent;
    ngx_http_dashstream_loc_conf_t *conf = child;

    ngx_conf_merge_msec_value(conf->ping_interval, prev->ping_interval,
                              20000);
    ngx_conf_merge_msec_value(conf->idle_timeout, prev->idle_timeout, 60000);
    ngx_conf_merge_msec_value(conf->resume_wait, prev->resume_wait, 500);
    ngx_conf_merge_size_value(conf->max_client_message,
                              prev->max_client_message, 16384);
    ngx_conf_merge_size_value(conf->send_budget, prev->send_budget,
                              4 * 1024 * 1024);
    ngx_conf_merge_uint_value(conf->slow_policy, prev->slow_policy,
                              NGX_HTTP_DASHSTREAM_SLOW_DROP);
    ngx_conf_merge_uint_value(conf->resume_max_partitions,
                              prev->resume_max_partitions, 256);
    ngx_conf_merge_ptr_value(conf->origins, prev->origins, NULL);
    ngx_conf_merge_ptr_value(conf->tenant_scope, prev->tenant_scope, NULL);

    if (conf->timing_file == NULL) {
        conf->timing_file = prev->timing_file;
        conf->timing_line = prev->timing_line;
    }

    /*
     * Idleness is judged on ping ticks: a pong needs one to answer.  Only
     * where a websocket is served are both values final: a level above may
     * set one of them for its locations to complete.
     */

    if (conf->handler == NGX_HTTP_DASHSTREAM_HANDLER_WEBSOCKET
        && conf->idle_timeout <= conf->ping_interval)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_idle_timeout\" (%M ms) must be longer "
                      "than \"dashstream_ping_interval\" (%M ms) in %s:%ui",
                      conf->idle_timeout, conf->ping_interval,
                      conf->timing_file, conf->timing_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_dashstream_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    ssize_t                          size;
    ngx_int_t                        n;
    ngx_str_t                       *value;
    ngx_http_dashstream_zone_ctx_t  *ctx;

    if (dmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (1024 * 1024)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: at least 1m is needed",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_dashstream_zone_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    /* one slot per 512 bytes of zone unless told otherwise */
    ctx->records = (ngx_uint_t) size / 512;

    if (cf->args->nelts == 4) {
        if (ngx_strncmp(value[3].data, "records=", 8) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[3]);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(value[3].data + 8, value[3].len - 8);

        if (n < 64 || n > 64 * 1024 * 1024) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid records count \"%V\": "
                               "must be 64 to 67108864", &value[3]);
            return NGX_CONF_ERROR;
        }

        ctx->records = (ngx_uint_t) n;
    }

    dmcf->shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                           &ngx_http_dashstream_module);
    if (dmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (dmcf->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    dmcf->shm_zone->init = ngx_http_dashstream_init_zone;
    dmcf->shm_zone->data = ctx;

    dmcf->zone_file = cf->conf_file->file.name.data;
    dmcf->zone_line = cf->conf_file->line;
    ctx->file = dmcf->zone_file;
    ctx->line = dmcf->zone_line;

    return NGX_CONF_OK;
}


static char *
ngx_http_dashstream_brokers(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    ngx_str_t   *value;
    u_char      *p, *last, *colon;
    ngx_int_t    port;

    value = cf->args->elts;

    /* "host:port[,host:port...]": a typo here would only show at runtime */

    p = value[1].data;
    last = p + value[1].len;

    while (p < last) {
        colon = NULL;

        while (p < last && *p != ',') {
            if (*p == ':') {
                colon = p;
            }

            p++;
        }

        port = colon ? ngx_atoi(colon + 1, p - colon - 1) : NGX_ERROR;

        if (port < 1 || port > 65535 || colon == value[1].data
            || (colon > value[1].data && colon[-1] == ',')
            || (p < last && p + 1 == last))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid brokers \"%V\": expected "
                               "host:port[,host:port...]", &value[1]);
            return NGX_CONF_ERROR;
        }

        p++;
    }

    dmcf->brokers_file = cf->conf_file->file.name.data;
    dmcf->brokers_line = cf->conf_file->line;

    return ngx_http_dashstream_name(cf, cmd, conf);
}


/* dashstream_topic, dashstream_dlq_topic: Kafka's rule for topic names */

static char *
ngx_http_dashstream_topic(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    char        *rv;
    u_char       ch;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 249) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": must be 1 to 249 "
                           "characters", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[1].len; i++) {
        ch = value[1].data[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_'
              || ch == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\": a Kafka topic name "
                               "has only ASCII letters, digits, '.', '_' "
                               "and '-'", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if ((value[1].len == 1 && value[1].data[0] == '.')
        || (value[1].len == 2 && ngx_strncmp(value[1].data, "..", 2) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": Kafka refuses the topic "
                           "names \".\" and \"..\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_dashstream_name(cf, cmd, conf);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (cmd->offset == offsetof(ngx_http_dashstream_main_conf_t, dlq_topic)) {
        dmcf->dlq_file = cf->conf_file->file.name.data;
        dmcf->dlq_line = cf->conf_file->line;

    } else {
        dmcf->topic_file = cf->conf_file->file.name.data;
        dmcf->topic_line = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


/*
 * A string set once, without control or non-ASCII characters; a space is
 * fine in a group id (Kafka takes any string there), not in a broker list.
 */

static char *
ngx_http_dashstream_name(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char       low;
    ngx_str_t   *field, *value;
    ngx_uint_t   i;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"\": must not be empty");
        return NGX_CONF_ERROR;
    }

    low = (cmd->offset == offsetof(ngx_http_dashstream_main_conf_t, group_id))
          ? ' ' : ' ' + 1;

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] < low || value[1].data[i] >= 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\": %s or non-ASCII "
                               "character", &value[1],
                               low == ' ' ? "control" : "control, space");
            return NGX_CONF_ERROR;
        }
    }

    *field = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_dashstream_websocket(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dashstream_loc_conf_t *dlcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "dashflow") == 0) {
            dlcf->protocol = NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW;

        } else if (ngx_strcmp(value[1].data, "raw") == 0) {
            dlcf->protocol = NGX_HTTP_DASHSTREAM_PROTO_RAW;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid protocol \"%V\": "
                               "must be \"dashflow\" or \"raw\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_dashstream_set_handler(cf, dlcf,
                                        NGX_HTTP_DASHSTREAM_HANDLER_WEBSOCKET)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_dashstream_max_message_size(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    char  *rv;

    rv = ngx_conf_set_size_slot(cf, cmd, conf);

    if (rv == NGX_CONF_OK) {
        dmcf->size_file = cf->conf_file->file.name.data;
        dmcf->size_line = cf->conf_file->line;
    }

    return rv;
}


static char *
ngx_http_dashstream_origins(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dashstream_loc_conf_t *dlcf = conf;

    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (dlcf->origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    dlcf->origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                     sizeof(ngx_str_t));
    if (dlcf->origins == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        /* an origin is scheme://host[:port], without a path */

        if (!(value[i].len == 1 && value[i].data[0] == '*')
            && ngx_http_dashstream_origin_valid(&value[i]) != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\": expected "
                               "scheme://host[:port] or *", &value[i]);
            return NGX_CONF_ERROR;
        }

        o = ngx_array_push(dlcf->origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * scheme://host[:port] as a browser sends it in Origin: host a name
 * (letters, digits, '-', '.', '_') or [IPv6], port 1..65535 without a
 * leading zero, no path; anything else could never match.
 */

static ngx_int_t
ngx_http_dashstream_origin_valid(ngx_str_t *o)
{
    u_char  *p, *last, *host;
    size_t   n;

    p = o->data;
    last = o->data + o->len;

    while (p < last && (ngx_http_dashstream_origin_char(*p) || *p == '+')) {
        p++;
    }

    if (p == o->data || last - p < 4 || ngx_strncmp(p, "://", 3) != 0) {
        return NGX_ERROR;
    }

    p += 3;
    host = p;

    if (p < last && *p == '[') {
        for (p++; p < last && *p != ']'; p++) {
            if (!((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a'
                                                && (*p | 0x20) <= 'f')
                  || *p == ':' || *p == '.'))
            {
                return NGX_ERROR;
            }
        }

        if (p == last || p - host < 3) {
            return NGX_ERROR;
        }

        p++;

    } else {
        while (p < last && (ngx_http_dashstream_origin_char(*p)
                            || *p == '_'))
        {
            p++;
        }

        if (p == host) {
            return NGX_ERROR;
        }
    }

    if (p == last) {
        return NGX_OK;
    }

    if (*p != ':') {
        return NGX_ERROR;
    }

    p++;
    n = last - p;

    if (n == 0 || n > 5 || *p == '0' || ngx_atoi(p, n) < 1
        || ngx_atoi(p, n) > 65535)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_dashstream_origin_char(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.';
}


static char *
ngx_http_dashstream_min_message(ngx_conf_t *cf, void *post, void *data)
{
    size_t  *sp = data;

    if (*sp < 125) {
        return "must be at least 125 bytes, the largest control frame";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_dashstream_check_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_dashstream_msec_bounds_t  *b = post;
    ngx_msec_t                         *mp = data;

    u_char  *msg;

    if (*mp >= b->low && *mp <= b->high) {
        return NGX_CONF_OK;
    }

    msg = ngx_pcalloc(cf->pool, 80);
    if (msg == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_snprintf(msg, 79, "value must be between %Mms and %Mms",
                        b->low, b->high);

    return (char *) msg;
}


static char *
ngx_http_dashstream_check_size(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_dashstream_size_bounds_t  *b = post;
    size_t                             *sp = data;

    u_char  *msg;

    if (*sp >= b->low && *sp <= b->high) {
        return NGX_CONF_OK;
    }

    msg = ngx_pcalloc(cf->pool, 80);
    if (msg == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_snprintf(msg, 79, "value must be at %s %uz bytes",
                        *sp < b->low ? "least" : "most",
                        *sp < b->low ? b->low : b->high);

    return (char *) msg;
}


/* the lag directives remember where they were, for the check of the pair */

static char *
ngx_http_dashstream_lag_time(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    char  *rv;

    rv = ngx_conf_set_msec_slot(cf, cmd, conf);

    if (rv == NGX_CONF_OK) {
        dmcf->lag_file = cf->conf_file->file.name.data;
        dmcf->lag_line = cf->conf_file->line;
    }

    return rv;
}


static char *
ngx_http_dashstream_ws_time(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_dashstream_loc_conf_t *dlcf = conf;

    char  *rv;

    rv = ngx_conf_set_msec_slot(cf, cmd, conf);

    if (rv == NGX_CONF_OK) {
        dlcf->timing_file = cf->conf_file->file.name.data;
        dlcf->timing_line = cf->conf_file->line;
    }

    return rv;
}


static char *
ngx_http_dashstream_stream_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    char       **name;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (dmcf->stream_allow == NULL) {
        dmcf->stream_allow = ngx_array_create(cf->pool, 8, sizeof(char *));
        if (dmcf->stream_allow == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0
            || value[i].len >= NGX_HTTP_DASHSTREAM_NAME_LEN)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid metric name \"%V\": 1 to %d "
                               "characters", &value[i],
                               NGX_HTTP_DASHSTREAM_NAME_LEN - 1);
            return NGX_CONF_ERROR;
        }

        name = ngx_array_push(dmcf->stream_allow);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        /* ngx_conf_t strings are NUL-terminated */
        *name = (char *) value[i].data;
    }

    return NGX_CONF_OK;
}


/* dashstream_dlq_backoff FIRST [MAX]: doubling from FIRST up to MAX */

static char *
ngx_http_dashstream_dlq_backoff(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    ngx_str_t   *value;
    ngx_msec_t   t[2];
    ngx_uint_t   i;

    if (dmcf->dlq_backoff != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;
    t[1] = 10000;

    for (i = 1; i < cf->args->nelts; i++) {
        t[i - 1] = ngx_parse_time(&value[i], 0);

        if (t[i - 1] == (ngx_msec_t) NGX_ERROR || t[i - 1] == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    /* FIRST alone: doubling up to 10s, or no doubling past a longer FIRST */

    if (cf->args->nelts == 2 && t[0] > t[1]) {
        t[1] = t[0];
    }

    if (t[0] > t[1]) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the first backoff (%M ms) is longer than the "
                           "longest (%M ms)", t[0], t[1]);
        return NGX_CONF_ERROR;
    }

    dmcf->dlq_backoff = t[0];
    dmcf->dlq_backoff_max = t[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_dashstream_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    if (ngx_http_dashstream_set_handler(cf, conf, cmd->offset) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_dashstream_set_handler(ngx_conf_t *cf,
    ngx_http_dashstream_loc_conf_t *dlcf, ngx_uint_t handler)
{
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_dashstream_main_conf_t  *dmcf;

    if (dlcf->handler != NGX_HTTP_DASHSTREAM_HANDLER_NONE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "only one of \"dashstream_websocket\", "
                           "\"dashstream_metrics\" and \"dashstream_status\" "
                           "may be used in a location");
        return NGX_ERROR;
    }

    dlcf->handler = handler;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    switch (handler) {

    case NGX_HTTP_DASHSTREAM_HANDLER_WEBSOCKET:
        clcf->handler = ngx_http_dashstream_websocket_handler;
        break;

    case NGX_HTTP_DASHSTREAM_HANDLER_METRICS:
        clcf->handler = ngx_http_dashstream_metrics_handler;
        break;

    default: /* NGX_HTTP_DASHSTREAM_HANDLER_STATUS */
        clcf->handler = ngx_http_dashstream_status_handler;
        break;
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_dashstream_module);

    if (dmcf->used_file == NULL) {
        dmcf->used_file = cf->conf_file->file.name.data;
        dmcf->used_line = cf->conf_file->line;
    }

    return NGX_OK;
}


/*
 * Sends a whole response held in one buffer: the metrics, status and
 * handshake-refusal bodies.  ctype_len is the part of the type without
 * parameters (nginx compares it for charset and gzip decisions).
 */

ngx_int_t
ngx_http_dashstream_send_buffer(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b, const char *ctype, size_t ctype_len)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) ctype;
    r->headers_out.content_type.len = ngx_strlen(ctype);
    r->headers_out.content_type_len = ctype_len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
