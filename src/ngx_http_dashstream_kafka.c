/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_kafka.h"


static ngx_int_t ngx_http_dashstream_kafka_set(ngx_conf_t *cf,
    rd_kafka_conf_t *kc, const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_dashstream_kafka_consumer(int role,
    const ngx_http_dashstream_kafka_params_t *kp, rd_kafka_conf_t *kc,
    char *err, size_t err_cap);
static int ngx_http_dashstream_kafka_setc(rd_kafka_conf_t *kc,
    const char *name, const char *value, char *err, size_t err_cap);


/*
 * The template every client is made from.  Built once per configuration
 * load, in the master, so that a bad value fails "nginx -t" with
 * librdkafka's own words.
 */

rd_kafka_conf_t *
ngx_http_dashstream_kafka_conf(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf)
{
    ngx_str_t         client_id;
    rd_kafka_conf_t  *kc;

    kc = rd_kafka_conf_new();
    if (kc == NULL) {
        return NULL;
    }

    ngx_str_set(&client_id, "ngx-dashstream");

    if (ngx_http_dashstream_kafka_set(cf, kc, "bootstrap.servers",
                                      &dmcf->brokers) != NGX_OK
        || ngx_http_dashstream_kafka_set(cf, kc, "client.id", &client_id)
           != NGX_OK)
    {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }

    return kc;
}


static ngx_int_t
ngx_http_dashstream_kafka_set(ngx_conf_t *cf, rd_kafka_conf_t *kc,
    const char *name, ngx_str_t *value)
{
    u_char  *v;
    char     err[512];

    v = ngx_pnalloc(cf->pool, value->len + 1);
    if (v == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(v, value->data, value->len + 1);

    if (rd_kafka_conf_set(kc, name, (char *) v, err, sizeof(err))
        != RD_KAFKA_CONF_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Kafka property \"%s\": %s", name, err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


rd_kafka_t *
ngx_http_dashstream_kafka_client(int role,
    const ngx_http_dashstream_kafka_params_t *kp, char *err, size_t err_cap)
{
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *kc;

    kc = rd_kafka_conf_dup(kp->tmpl);
    if (kc == NULL) {
        snprintf(err, err_cap, "rd_kafka_conf_dup() failed");
        return NULL;
    }

    rd_kafka_conf_set_opaque(kc, kp->opaque);

    if (kp->log_cb) {
        rd_kafka_conf_set_log_cb(kc, kp->log_cb);
    }

    if (kp->error_cb) {
        rd_kafka_conf_set_error_cb(kc, kp->error_cb);
    }

    if (role != NGX_HTTP_DASHSTREAM_CLIENT_PRODUCER
        && ngx_http_dashstream_kafka_consumer(role, kp, kc, err, err_cap)
           != NGX_OK)
    {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }

    rk = rd_kafka_new(role == NGX_HTTP_DASHSTREAM_CLIENT_PRODUCER
                      ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
                      kc, err, err_cap);

    if (rk == NULL) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }

    return rk;
}


/*
 * A consumer stores offsets itself, after the record is in the ring; the
 * metadata client of the lag poller never joins the group, it only reads
 * the group's committed offsets.  librdkafka wants a group.id even for a
 * broadcast consumer's manual assignment; that one never commits.
 */

static ngx_int_t
ngx_http_dashstream_kafka_consumer(int role,
    const ngx_http_dashstream_kafka_params_t *kp, rd_kafka_conf_t *kc,
    char *err, size_t err_cap)
{
    char         timeout[32], heartbeat[32];
    ngx_uint_t   consumer;

    consumer = (role == NGX_HTTP_DASHSTREAM_CLIENT_CONSUMER);

    snprintf(timeout, sizeof(timeout), "%u", kp->session_timeout_ms);
    snprintf(heartbeat, sizeof(heartbeat), "%u", kp->session_timeout_ms / 3);

    if (ngx_http_dashstream_kafka_setc(kc, "enable.auto.offset.store",
                                       "false", err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "enable.partition.eof",
                                          "false", err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "auto.offset.reset",
                                          kp->offset_reset, err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "session.timeout.ms",
                                          timeout, err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "heartbeat.interval.ms",
                                          heartbeat, err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "enable.auto.commit",
                                          consumer && kp->commit
                                          ? "true" : "false", err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "auto.commit.interval.ms",
                                          "1000", err, err_cap)
        || (kp->group_id
            && ngx_http_dashstream_kafka_setc(kc, "group.id", kp->group_id,
                                              err, err_cap)))
    {
        return NGX_ERROR;
    }

    if (consumer && kp->rebalance_cb) {
        rd_kafka_conf_set_rebalance_cb(kc, kp->rebalance_cb);
    }

    return NGX_OK;
}


unsigned
ngx_http_dashstream_kafka_error_type(int err)
{
    switch (err) {

    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        return NGX_HTTP_DASHSTREAM_KERR_TRANSPORT;

    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return NGX_HTTP_DASHSTREAM_KERR_BROKERS;

    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return NGX_HTTP_DASHSTREAM_KERR_AUTH;

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return NGX_HTTP_DASHSTREAM_KERR_TOPIC;

    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return NGX_HTTP_DASHSTREAM_KERR_TIMEOUT;

    case RD_KAFKA_RESP_ERR__RESOLVE:
        return NGX_HTTP_DASHSTREAM_KERR_RESOLVE;

    case RD_KAFKA_RESP_ERR__FATAL:
        return NGX_HTTP_DASHSTREAM_KERR_FATAL;

    default:
        return NGX_HTTP_DASHSTREAM_KERR_OTHER;
    }
}


const char *
ngx_http_dashstream_kafka_error_label(unsigned type)
{
    static const char  *labels[] = {
        "transport", "all_brokers_down", "authentication", "unknown_topic",
        "timed_out", "resolve", "fatal", "other"
    };

    return labels[type < NGX_HTTP_DASHSTREAM_KERR_N
                  ? type : NGX_HTTP_DASHSTREAM_KERR_OTHER];
}


static int
ngx_http_dashstream_kafka_setc(rd_kafka_conf_t *kc, const char *name,
    const char *value, char *err, size_t err_cap)
{
    return rd_kafka_conf_set(kc, name, value, err, err_cap)
           != RD_KAFKA_CONF_OK;
}
