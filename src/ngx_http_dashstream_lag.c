/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <pthread.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_kafka.h"
#include "ngx_http_dashstream_lag.h"
#include "ngx_http_dashstream_thread.h"


/*
 * The lag poller: a thread of worker 0 beside the consumer, with its own
 * Kafka client, so that a slow broker never slows the consume loop it
 * measures.  Every interval, within a time budget, it reads the topic's
 * metadata (partition count, existence, broker reachability), the end
 * offsets of the partitions assigned to this instance (the last stable
 * offset under read_committed) and, in group mode, their committed
 * offsets.  Lag itself is worked out when a worker answers a scrape, from
 * these and the consumer's own position, so it is never stale by more
 * than one poll and never survives a revocation.
 */


struct ngx_http_dashstream_lag_s {
    pthread_t                           tid;
    ngx_atomic_t                        stop;
    ngx_atomic_t                        running;

    char                               *topic;
    char                               *brokers;
    ngx_msec_t                          interval;
    ngx_msec_t                          budget;
    ngx_http_dashstream_kafka_params_t  kp;
    ngx_http_dashstream_shctx_t        *sh;

    rd_kafka_t                         *rk;
    uint64_t                            last_log;
    int                                 beyond_told;    /* partition count */
};


static void *ngx_http_dashstream_lag_thread(void *data);
static ngx_int_t ngx_http_dashstream_lag_poll(ngx_http_dashstream_lag_t *lag);
static ngx_int_t ngx_http_dashstream_lag_metadata(
    ngx_http_dashstream_lag_t *lag, int timeout, char *err, size_t err_cap);
static ngx_int_t ngx_http_dashstream_lag_offsets(
    ngx_http_dashstream_lag_t *lag, int timeout, char *err, size_t err_cap);
static int ngx_http_dashstream_lag_left(uint64_t deadline);
static void ngx_http_dashstream_lag_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);


ngx_http_dashstream_lag_t *
ngx_http_dashstream_lag_start(ngx_cycle_t *cycle,
    ngx_http_dashstream_main_conf_t *dmcf,
    const ngx_http_dashstream_kafka_params_t *kp)
{
    int                         rc;
    sigset_t                    all, old;
    ngx_http_dashstream_lag_t  *lag;

    lag = ngx_calloc(sizeof(ngx_http_dashstream_lag_t), cycle->log);
    if (lag == NULL) {
        return NULL;
    }

    lag->topic = ngx_http_dashstream_cstr(&dmcf->topic);
    lag->brokers = ngx_http_dashstream_cstr(&dmcf->brokers);

    if (lag->topic == NULL || lag->brokers == NULL) {
        return NULL;
    }

    lag->interval = dmcf->lag_interval;
    lag->budget = dmcf->lag_timeout;
    lag->kp = *kp;
    lag->kp.rebalance_cb = NULL;
    lag->kp.error_cb = ngx_http_dashstream_lag_error;
    lag->kp.opaque = lag;
    lag->sh = ngx_http_dashstream_shctx(cycle);

    (void) sigfillset(&all);
    (void) pthread_sigmask(SIG_BLOCK, &all, &old);

    lag->running = 1;
    rc = pthread_create(&lag->tid, NULL, ngx_http_dashstream_lag_thread, lag);

    (void) pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, rc,
                      "dashstream: pthread_create() failed for the lag "
                      "poller");
        return NULL;
    }

    return lag;
}


void
ngx_http_dashstream_lag_stop(ngx_http_dashstream_lag_t *lag)
{
    if (lag) {
        __atomic_store_n(&lag->stop, 1, __ATOMIC_RELEASE);
    }
}


void
ngx_http_dashstream_lag_join(ngx_cycle_t *cycle, ngx_http_dashstream_lag_t *lag)
{
    struct timespec  ts;

    if (lag == NULL) {
        return;
    }

    lag->stop = 1;

    (void) clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (lag->budget / 1000) + 5;

    if (pthread_timedjoin_np(lag->tid, NULL, &ts) != 0) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "dashstream: the lag poller did not stop in time");
    }
}


static void *
ngx_http_dashstream_lag_thread(void *data)
{
    ngx_http_dashstream_lag_t *lag = data;

    char      err[512];
    uint64_t  next;

    lag->rk = ngx_http_dashstream_kafka_client(
                  NGX_HTTP_DASHSTREAM_CLIENT_METADATA, &lag->kp,
                  err, sizeof(err));

    if (lag->rk == NULL) {
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "cannot create the lag client for brokers %s: %s",
            lag->brokers, err);
        ngx_http_dashstream_note_set(&lag->sh->lag_error,
                                     ngx_http_dashstream_realtime_ms(), err);
        lag->running = 0;
        return NULL;
    }

    while (!__atomic_load_n(&lag->stop, __ATOMIC_ACQUIRE)) {
        next = ngx_http_dashstream_monotonic_ms() + lag->interval;

        (void) ngx_http_dashstream_lag_poll(lag);

        while (!lag->stop && ngx_http_dashstream_monotonic_ms() < next) {
            usleep(50 * 1000);
        }
    }

    rd_kafka_destroy(lag->rk);
    lag->rk = NULL;
    lag->running = 0;

    return NULL;
}


static ngx_int_t
ngx_http_dashstream_lag_poll(ngx_http_dashstream_lag_t *lag)
{
    char                             err[512];
    uint64_t                         start, deadline, now;
    ngx_int_t                        rc;
    ngx_http_dashstream_counters_t  *k;

    k = &lag->sh->counters;
    start = ngx_http_dashstream_monotonic_ms();
    deadline = start + lag->budget;
    err[0] = '\0';

    rc = ngx_http_dashstream_lag_metadata(lag,
                                         ngx_http_dashstream_lag_left(deadline),
                                         err, sizeof(err));
    if (rc == NGX_OK) {
        rc = ngx_http_dashstream_lag_offsets(lag,
                                         ngx_http_dashstream_lag_left(deadline),
                                         err, sizeof(err));
    }

    now = ngx_http_dashstream_monotonic_ms();

    ngx_http_dashstream_hist_observe(&k->lag_poll_duration,
                                     ngx_http_dashstream_lag_poll_buckets,
                                     (now - start) / 1000.0);
    (void) ngx_atomic_fetch_add(&k->lag_polls, 1);

    if (rc == NGX_OK) {
        k->lag_poll_ok_ms = ngx_http_dashstream_realtime_ms();
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&k->lag_poll_failures, 1);
    ngx_http_dashstream_note_set(&lag->sh->lag_error,
                                 ngx_http_dashstream_realtime_ms(), err);

    /* the same failure repeats every poll: say it at most every 30 s */

    if (now - lag->last_log >= 30000 || lag->last_log == 0) {
        lag->last_log = now;
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "lag poll of topic \"%s\" on brokers %s failed: %s",
            lag->topic, lag->brokers, err);
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_dashstream_lag_metadata(ngx_http_dashstream_lag_t *lag, int timeout,
    char *err, size_t err_cap)
{
    int                           n;
    rd_kafka_resp_err_t           rc;
    rd_kafka_topic_t             *rkt;
    const rd_kafka_metadata_t    *md;
    ngx_http_dashstream_shctx_t  *sh;

    sh = lag->sh;

    rkt = rd_kafka_topic_new(lag->rk, lag->topic, NULL);
    rc = rd_kafka_metadata(lag->rk, 0, rkt, &md, timeout);
    rd_kafka_topic_destroy(rkt);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        sh->counters.broker_up = 0;
        (void) ngx_atomic_fetch_add(&sh->counters.client_errors[
                   ngx_http_dashstream_kafka_error_type(rc)], 1);
        snprintf(err, err_cap, "metadata: %s", rd_kafka_err2str(rc));
        return NGX_ERROR;
    }

    sh->counters.broker_up = 1;

    rc = md->topic_cnt == 1 ? md->topics[0].err
                            : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    n = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;

    rd_kafka_metadata_destroy(md);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR || n == 0) {
        sh->topic_missing = 1;
        (void) ngx_atomic_fetch_add(&sh->counters.client_errors[
                   NGX_HTTP_DASHSTREAM_KERR_TOPIC], 1);
        snprintf(err, err_cap, "topic \"%s\" is not available: %s",
                 lag->topic, rd_kafka_err2str(rc));
        return NGX_ERROR;
    }

    sh->topic_missing = 0;
    sh->partitions = n;

    if (n > NGX_HTTP_DASHSTREAM_MAX_PARTITIONS && n != lag->beyond_told) {
        lag->beyond_told = n;
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "topic \"%s\" has %d partitions; the module serves partitions "
            "0 to %d only: partitions %d to %d are not read in broadcast "
            "mode, and their messages are skipped and counted as errors "
            "in group mode", lag->topic, n,
            NGX_HTTP_DASHSTREAM_MAX_PARTITIONS - 1,
            NGX_HTTP_DASHSTREAM_MAX_PARTITIONS, n - 1);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_dashstream_lag_offsets(ngx_http_dashstream_lag_t *lag, int timeout,
    char *err, size_t err_cap)
{
    int                               i;
    int64_t                           now;
    ngx_uint_t                        p;
    rd_kafka_resp_err_t               rc;
    ngx_http_dashstream_shctx_t      *sh;
    rd_kafka_topic_partition_t       *e;
    rd_kafka_topic_partition_list_t  *ends, *committed;

    sh = lag->sh;

    ends = rd_kafka_topic_partition_list_new(16);
    committed = rd_kafka_topic_partition_list_new(16);

    for (p = 0; p < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; p++) {
        if (sh->part[p].assigned) {
            /* RD_KAFKA_OFFSET_END as a timestamp asks for the end offset */
            rd_kafka_topic_partition_list_add(ends, lag->topic, (int32_t) p)
                ->offset = RD_KAFKA_OFFSET_END;
            rd_kafka_topic_partition_list_add(committed, lag->topic,
                                              (int32_t) p);
        }
    }

    rc = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (ends->cnt) {
        rc = rd_kafka_offsets_for_times(lag->rk, ends, timeout);
    }

    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR && ends->cnt && lag->kp.commit) {
        rc = rd_kafka_committed(lag->rk, committed, timeout);
    }

    now = ngx_http_dashstream_realtime_ms();

    for (i = 0; rc == RD_KAFKA_RESP_ERR_NO_ERROR && i < ends->cnt; i++) {
        e = &ends->elems[i];

        if (e->err == RD_KAFKA_RESP_ERR_NO_ERROR && e->offset >= 0) {
            sh->part[e->partition].high_watermark = e->offset + 1;
            sh->part[e->partition].hwm_ms = now;

        } else if (e->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = e->err;
        }

        e = &committed->elems[i];

        if (lag->kp.commit && e->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            sh->part[e->partition].committed = e->offset >= 0
                                               ? e->offset + 1 : 0;
        }
    }

    rd_kafka_topic_partition_list_destroy(ends);
    rd_kafka_topic_partition_list_destroy(committed);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        (void) ngx_atomic_fetch_add(&sh->counters.client_errors[
                   ngx_http_dashstream_kafka_error_type(rc)], 1);
        snprintf(err, err_cap, "end offsets: %s", rd_kafka_err2str(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
ngx_http_dashstream_lag_left(uint64_t deadline)
{
    uint64_t  now;

    now = ngx_http_dashstream_monotonic_ms();

    /* a request always gets a little time, even past the budget */
    return now + 100 >= deadline ? 100 : (int) (deadline - now);
}


static void
ngx_http_dashstream_lag_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_http_dashstream_lag_t *lag = opaque;

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        lag->sh->counters.broker_up = 0;
    }

    (void) ngx_atomic_fetch_add(&lag->sh->counters.client_errors[
               ngx_http_dashstream_kafka_error_type(err)], 1);
}
