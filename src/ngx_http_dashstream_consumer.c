/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <pthread.h>
#include <stdarg.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_kafka.h"
#include "ngx_http_dashstream_decode.h"
#include "ngx_http_dashstream_stream.h"
#include "ngx_http_dashstream_lag.h"
#include "ngx_http_dashstream_dlq.h"


/*
 * The consumer thread runs in worker 0.  It touches librdkafka, the ring,
 * the zone's atomics and its own memory only; everything it wants logged
 * goes through the thread log mailbox, which worker 0 drains when woken.
 */


#define NGX_HTTP_DASHSTREAM_BATCH         256
#define NGX_HTTP_DASHSTREAM_POLL_MS       100
#define NGX_HTTP_DASHSTREAM_LEASE_STALE   30000
#define NGX_HTTP_DASHSTREAM_JOIN_MS       15000
#define NGX_HTTP_DASHSTREAM_DLQ_FLUSH_MS  2000
#define NGX_HTTP_DASHSTREAM_ERROR_LOG_MS  10000


struct ngx_http_dashstream_consumer_s {
    pthread_t                           tid;
    ngx_atomic_t                        stop;
    ngx_atomic_t                        running;

    /* a snapshot of the configuration, as C strings */
    char                               *brokers;
    char                               *topic;
    char                               *group_id;
    ngx_uint_t                          mode;
    size_t                              max_message_size;
    ngx_http_dashstream_kafka_params_t  kp;

    ngx_http_dashstream_shctx_t        *sh;
    ngx_http_dashstream_ring_t         *ring;
    int                                *wake_fds;
    ngx_uint_t                          nwake;
    ngx_pid_t                           pid;

    rd_kafka_t                         *rk;
    ngx_http_dashstream_decoder_t      *decoder;
    ngx_http_dashstream_stream_t       *stream;
    ngx_http_dashstream_lag_t          *lag;
    int32_t                             assigned;   /* broadcast */

    /* offsets to store after a batch: next offset + 1, 0 if clean */
    int64_t                            *store;
    int32_t                             store_max;

    /* dead-letter queue; fail_closed: offset + 1 of each held message */
    ngx_http_dashstream_dlq_t          *dlq;
    ngx_http_dashstream_dlq_conf_t      dlq_conf;
    ngx_uint_t                          dlq_mode;
    int64_t                            *held;
    ngx_uint_t                          nheld;

    uint64_t                            last_error_log;
    uint64_t                            last_positions;
    uint64_t                            note_ms;
    uint64_t                            beyond_log;
    ngx_uint_t                          beyond_quiet;
    uint64_t                            fail_log[NGX_HTTP_DASHSTREAM_KERR_N];
    ngx_uint_t                          fail_quiet[
                                            NGX_HTTP_DASHSTREAM_KERR_N];
    ngx_uint_t                          wrote;
};


static void *ngx_http_dashstream_consumer_thread(void *data);
static ngx_int_t ngx_http_dashstream_consumer_lease(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_release(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_topic(
    ngx_http_dashstream_consumer_t *c);
static ngx_int_t ngx_http_dashstream_consumer_connect(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_positions(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_assign_new(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_assigned(
    ngx_http_dashstream_consumer_t *c, int32_t partition, ngx_uint_t on);
static void ngx_http_dashstream_consumer_beyond(
    ngx_http_dashstream_consumer_t *c, rd_kafka_message_t *m);
static void ngx_http_dashstream_consumer_fail(
    ngx_http_dashstream_consumer_t *c, int rc, const char *text);
static void ngx_http_dashstream_consumer_loop(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_message(
    ngx_http_dashstream_consumer_t *c, rd_kafka_message_t *m);
static void ngx_http_dashstream_consumer_error(
    ngx_http_dashstream_consumer_t *c, rd_kafka_message_t *m);
static void ngx_http_dashstream_consumer_append(
    ngx_http_dashstream_consumer_t *c, rd_kafka_message_t *m,
    ngx_http_dashstream_part_t *part, ngx_http_dashstream_decoded_t *d,
    int64_t ts);
static void ngx_http_dashstream_consumer_undecodable(
    ngx_http_dashstream_consumer_t *c, rd_kafka_message_t *m,
    ngx_http_dashstream_part_t *part, int rc, const char *err,
    ngx_uint_t redo);
static void ngx_http_dashstream_consumer_hold(
    ngx_http_dashstream_consumer_t *c, int32_t partition, int64_t offset,
    ngx_uint_t on);
static void ngx_http_dashstream_consumer_unhold(
    ngx_http_dashstream_consumer_t *c, int32_t partition);
static void ngx_http_dashstream_consumer_dead_lettered(void *data,
    int32_t partition, int64_t offset);
static void ngx_http_dashstream_consumer_dlq_conf(
    ngx_http_dashstream_consumer_t *c, ngx_http_dashstream_main_conf_t *dmcf);
static void ngx_http_dashstream_consumer_store(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_close(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_consumer_wake(
    ngx_http_dashstream_consumer_t *c);
static void ngx_http_dashstream_rebalance(rd_kafka_t *rk,
    rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
    void *opaque);
static void ngx_http_dashstream_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static void ngx_http_dashstream_kafka_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);


static ngx_http_dashstream_consumer_t  *ngx_http_dashstream_consumer;


ngx_int_t
ngx_http_dashstream_consumer_start(ngx_cycle_t *cycle,
    ngx_http_dashstream_main_conf_t *dmcf)
{
    int                              rc;
    sigset_t                         all, old;
    ngx_str_t                        none = ngx_string("none");
    ngx_http_dashstream_consumer_t  *c;
    ngx_http_dashstream_decode_limits_t  lim;

    c = ngx_calloc(sizeof(ngx_http_dashstream_consumer_t), cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->brokers = ngx_http_dashstream_cstr(&dmcf->brokers);
    c->topic = ngx_http_dashstream_cstr(&dmcf->topic);
    c->group_id = ngx_http_dashstream_cstr(&dmcf->group_id);
    c->store = ngx_calloc(NGX_HTTP_DASHSTREAM_MAX_PARTITIONS
                          * sizeof(int64_t), cycle->log);
    c->held = ngx_calloc(NGX_HTTP_DASHSTREAM_MAX_PARTITIONS
                         * sizeof(int64_t), cycle->log);

    lim.max_payload = dmcf->max_message_size;
    lim.max_decompressed = dmcf->max_message_size;
    c->decoder = ngx_http_dashstream_decoder_create(&lim);

    if (c->brokers == NULL || c->topic == NULL || c->group_id == NULL
        || c->store == NULL || c->held == NULL || c->decoder == NULL)
    {
        ngx_log_error(NGX_LOG_CRIT, cycle->log, 0,
                      "dashstream: no memory for the consumer");
        return NGX_ERROR;
    }

    c->stream = ngx_http_dashstream_stream_create(
                    ngx_http_dashstream_shctx(cycle),
                    dmcf->stream_allow ? dmcf->stream_allow->elts : NULL,
                    dmcf->stream_max_series, (uint32_t) dmcf->seq_threads);
    if (c->stream == NULL) {
        ngx_log_error(NGX_LOG_CRIT, cycle->log, 0,
                      "dashstream: no memory for the stream tables");
        return NGX_ERROR;
    }

    c->mode = dmcf->mode;
    c->max_message_size = dmcf->max_message_size;
    c->sh = ngx_http_dashstream_shctx(cycle);
    c->ring = c->sh->ring;
    c->wake_fds = dmcf->wake_fds;
    c->nwake = dmcf->nwake;
    c->pid = ngx_pid;

    c->kp.tmpl = dmcf->kafka_conf;
    c->kp.group_id = c->group_id;
    c->kp.commit = (dmcf->mode == NGX_HTTP_DASHSTREAM_MODE_GROUP);
    c->kp.offset_reset = dmcf->offset_reset == NGX_HTTP_DASHSTREAM_RESET_LATEST
                         ? "latest" : "earliest";
    c->kp.session_timeout_ms = (unsigned) dmcf->session_timeout;
    c->kp.opaque = c;
    c->kp.log_cb = ngx_http_dashstream_kafka_log;
    c->kp.error_cb = ngx_http_dashstream_kafka_error;
    c->kp.rebalance_cb = ngx_http_dashstream_rebalance;

    ngx_http_dashstream_consumer_dlq_conf(c, dmcf);

    if (c->dlq_conf.dlq_topic == NULL) {
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "dashstream: consumer starting: brokers=%V topic=%V "
                  "group=%V mode=%s security=%V sasl=%V dlq=%V (%s)",
                  &dmcf->brokers, &dmcf->topic, &dmcf->group_id,
                  dmcf->mode == NGX_HTTP_DASHSTREAM_MODE_GROUP
                  ? "group" : "broadcast", &dmcf->security_protocol,
                  dmcf->sasl_mechanism.len ? &dmcf->sasl_mechanism : &none,
                  &dmcf->dlq_topic,
                  dmcf->dlq_mode == NGX_HTTP_DASHSTREAM_DLQ_FAIL_CLOSED
                  ? "fail_closed" : "best_effort");

    ngx_http_dashstream_thread_log_wake(dmcf->wake_fds[0]);

    c->lag = ngx_http_dashstream_lag_start(cycle, dmcf, &c->kp);

    /* nginx's signal handlers must run in the worker's own thread */

    (void) sigfillset(&all);
    (void) pthread_sigmask(SIG_BLOCK, &all, &old);

    c->running = 1;
    rc = pthread_create(&c->tid, NULL, ngx_http_dashstream_consumer_thread, c);

    (void) pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        c->running = 0;
        ngx_log_error(NGX_LOG_ALERT, cycle->log, rc,
                      "dashstream: pthread_create() failed");
        return NGX_ERROR;
    }

    ngx_http_dashstream_consumer = c;

    return NGX_OK;
}


/* the dead-letter producer's settings; it is made by the thread */

static void
ngx_http_dashstream_consumer_dlq_conf(ngx_http_dashstream_consumer_t *c,
    ngx_http_dashstream_main_conf_t *dmcf)
{
    ngx_http_dashstream_dlq_conf_t  *dc;

    dc = &c->dlq_conf;

    dc->topic = c->topic;
    dc->dlq_topic = ngx_http_dashstream_cstr(&dmcf->dlq_topic);
    dc->brokers = c->brokers;
    dc->truncate = (dmcf->dlq_payload == NGX_HTTP_DASHSTREAM_DLQ_TRUNCATED);
    dc->max_payload = dmcf->dlq_max_payload;
    dc->max_inflight = dmcf->dlq_max_inflight;
    dc->retries = dmcf->dlq_retries;
    dc->backoff = dmcf->dlq_backoff;
    dc->backoff_max = dmcf->dlq_backoff_max;
    dc->kp = c->kp;
    dc->kp.message_timeout_ms = (unsigned) dmcf->dlq_timeout;
    dc->sh = c->sh;
    dc->done = ngx_http_dashstream_consumer_dead_lettered;
    dc->data = c;

    c->dlq_mode = dmcf->dlq_mode;
}


void
ngx_http_dashstream_consumer_stop(ngx_cycle_t *cycle)
{
    if (ngx_http_dashstream_consumer == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                  "dashstream: stopping the consumer");

    ngx_http_dashstream_consumer->stop = 1;
    ngx_http_dashstream_lag_stop(ngx_http_dashstream_consumer->lag);
}


void
ngx_http_dashstream_consumer_join(ngx_cycle_t *cycle)
{
    int                              rc;
    struct timespec                  ts;
    ngx_http_dashstream_consumer_t  *c;

    c = ngx_http_dashstream_consumer;

    if (c == NULL) {
        return;
    }

    c->stop = 1;

    /*
     * Leaving the group and committing is bounded by librdkafka's own
     * timeouts; a thread stuck beyond that ends with the process, and the
     * next worker 0 takes the lease over from the dead pid.
     */

    (void) clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += NGX_HTTP_DASHSTREAM_JOIN_MS / 1000;

    rc = pthread_timedjoin_np(c->tid, NULL, &ts);

    if (rc != 0) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, rc,
                      "dashstream: the consumer thread did not stop "
                      "within %d ms", NGX_HTTP_DASHSTREAM_JOIN_MS);
    }

    ngx_http_dashstream_lag_join(cycle, c->lag);
    ngx_http_dashstream_thread_log_drain(cycle->log);

    ngx_http_dashstream_consumer = NULL;
}


static void *
ngx_http_dashstream_consumer_thread(void *data)
{
    ngx_http_dashstream_consumer_t  *c = data;

    if (ngx_http_dashstream_consumer_lease(c) == NGX_OK) {

        ngx_http_dashstream_consumer_topic(c);

        (void) ngx_atomic_fetch_add(&c->sh->counters.consumer_starts, 1);
        c->sh->counters.consumer_running = 1;

        while (!c->stop) {
            if (ngx_http_dashstream_consumer_connect(c) == NGX_OK) {
                ngx_http_dashstream_consumer_loop(c);
                ngx_http_dashstream_consumer_close(c);
                break;
            }

            /* rd_kafka_new() or subscribe() failed: retry */
            usleep(1000 * 1000);
        }

        c->sh->counters.consumer_running = 0;
        ngx_http_dashstream_consumer_release(c);
    }

    ngx_http_dashstream_decoder_destroy(c->decoder);
    ngx_http_dashstream_stream_destroy(c->stream);
    c->decoder = NULL;
    c->stream = NULL;

    __atomic_store_n(&c->running, 0, __ATOMIC_RELEASE);
    ngx_http_dashstream_consumer_wake(c);

    return NULL;
}


static ngx_int_t
ngx_http_dashstream_consumer_lease(ngx_http_dashstream_consumer_t *c)
{
    uint64_t                      beat, waited, now;
    ngx_atomic_uint_t             owner;
    ngx_http_dashstream_shctx_t  *sh;

    sh = c->sh;
    waited = 0;

    /*
     * The ring has exactly one writer.  A new worker 0 (after a reload or
     * a respawn) waits for the previous consumer to hand the lease back,
     * or takes it over when its process is gone.
     */

    while (!c->stop) {
        owner = sh->writer_pid;

        if (owner == 0
            && ngx_atomic_cmp_set(&sh->writer_pid, 0, (ngx_atomic_uint_t) c->pid))
        {
            break;
        }

        if (owner != 0 && kill((pid_t) owner, 0) == -1 && errno == ESRCH
            && ngx_atomic_cmp_set(&sh->writer_pid, owner,
                                  (ngx_atomic_uint_t) c->pid))
        {
            ngx_http_dashstream_thread_log(NGX_LOG_WARN,
                "the previous consumer (pid %lu) is gone; taking the ring "
                "over", (unsigned long) owner);
            break;
        }

        now = ngx_http_dashstream_monotonic_ms();
        beat = sh->writer_beat;

        if (owner != 0 && now > beat + NGX_HTTP_DASHSTREAM_LEASE_STALE
            && ngx_atomic_cmp_set(&sh->writer_pid, owner,
                                  (ngx_atomic_uint_t) c->pid))
        {
            ngx_http_dashstream_thread_log(NGX_LOG_WARN,
                "the consumer of pid %lu has not written for %ums; "
                "taking the ring over", (unsigned long) owner,
                (unsigned) (now - beat));
            break;
        }

        if (waited % 5000 == 0 && owner != 0) {
            ngx_http_dashstream_thread_log(NGX_LOG_INFO,
                "waiting for the consumer of pid %lu to hand the ring over",
                (unsigned long) owner);
        }

        usleep(50 * 1000);
        waited += 50;
    }

    if (c->stop) {
        return NGX_DECLINED;
    }

    sh->writer_beat = ngx_http_dashstream_monotonic_ms();
    (void) ngx_atomic_fetch_add(&sh->writer_generation, 1);

    return NGX_OK;
}


/*
 * The zone's offsets say which (partition, offset) pairs are in the ring
 * already, and the ring's cursors are those pairs: both belong to one
 * topic.  A reload or a restart with another topic would otherwise skip the
 * new topic's offsets below the old ones as duplicates and mix two topics'
 * cursors, so the holder of the lease, the only writer, starts both anew.
 * Counters go on.  The workers see topic_generation change and close their
 * subscribers, whose cursors were the old topic's.
 */

static void
ngx_http_dashstream_consumer_topic(ngx_http_dashstream_consumer_t *c)
{
    uint64_t                      dropped;
    ngx_http_dashstream_shctx_t  *sh;

    sh = c->sh;

    if (ngx_strncmp(sh->topic, c->topic, NGX_HTTP_DASHSTREAM_TOPIC_LEN) == 0) {
        return;
    }

    if (sh->topic[0] != '\0') {
        /* nothing is assigned: the previous consumer released its partitions */
        ngx_memzero(sh->part, sizeof(sh->part));

        dropped = ngx_http_dashstream_ring_clear(c->ring);

        ngx_http_dashstream_thread_log(NGX_LOG_NOTICE,
            "dashstream_topic changed from \"%s\" to \"%s\": the ring's "
            "%llu records and the partition offsets of \"%s\" are "
            "dropped, \"%s\" starts anew; counters are kept",
            (char *) sh->topic, c->topic, (unsigned long long) dropped,
            (char *) sh->topic, c->topic);

        /* release: a worker that sees the generation sees the empty ring */
        __atomic_fetch_add(&sh->topic_generation, 1, __ATOMIC_RELEASE);
    }

    ngx_cpystrn(sh->topic, (u_char *) c->topic, NGX_HTTP_DASHSTREAM_TOPIC_LEN);
}


static void
ngx_http_dashstream_consumer_release(ngx_http_dashstream_consumer_t *c)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        c->sh->part[i].assigned = 0;
    }

    (void) ngx_atomic_cmp_set(&c->sh->writer_pid, (ngx_atomic_uint_t) c->pid,
                              0);
}


static ngx_int_t
ngx_http_dashstream_consumer_connect(ngx_http_dashstream_consumer_t *c)
{
    char                              err[512];
    rd_kafka_resp_err_t               rc;
    rd_kafka_topic_partition_list_t  *topics;

    c->rk = ngx_http_dashstream_kafka_client(NGX_HTTP_DASHSTREAM_CLIENT_CONSUMER,
                                             &c->kp, err, sizeof(err));
    if (c->rk == NULL) {
        ngx_http_dashstream_consumer_fail(c, RD_KAFKA_RESP_ERR__FATAL, err);
        return NGX_ERROR;
    }

    (void) rd_kafka_poll_set_consumer(c->rk);

    if (c->dlq == NULL) {
        c->dlq = ngx_http_dashstream_dlq_create(&c->dlq_conf);
    }

    if (c->mode == NGX_HTTP_DASHSTREAM_MODE_BROADCAST) {
        /* partitions are assigned as the lag poller finds them */
        return NGX_OK;
    }

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, c->topic, RD_KAFKA_PARTITION_UA);

    rc = rd_kafka_subscribe(c->rk, topics);

    rd_kafka_topic_partition_list_destroy(topics);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_http_dashstream_consumer_fail(c, rc, rd_kafka_err2str(rc));
        rd_kafka_destroy(c->rk);
        c->rk = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Broadcast mode: every partition, read without a group, from where the
 * ring left off (the zone keeps positions across reloads) or else from
 * the configured reset point.  New partitions join as the topic grows.
 */

static void
ngx_http_dashstream_consumer_assign_new(ngx_http_dashstream_consumer_t *c)
{
    int32_t                           i, n;
    int64_t                           next;
    rd_kafka_resp_err_t               rc;
    rd_kafka_topic_partition_list_t  *parts;

    n = (int32_t) ngx_min(c->sh->partitions,
                          NGX_HTTP_DASHSTREAM_MAX_PARTITIONS);

    if (n <= c->assigned) {
        return;
    }

    parts = rd_kafka_topic_partition_list_new(n - c->assigned);

    for (i = c->assigned; i < n; i++) {
        next = (int64_t) c->sh->part[i].position;

        rd_kafka_topic_partition_list_add(parts, c->topic, i)->offset =
            c->sh->part[i].dlq_held ? (int64_t) c->sh->part[i].dlq_held - 1
            : next > 0 ? next
            : (c->kp.offset_reset[0] == 'l' ? RD_KAFKA_OFFSET_END
                                            : RD_KAFKA_OFFSET_BEGINNING);
    }

    rc = rd_kafka_incremental_assign(c->rk, parts) ? RD_KAFKA_RESP_ERR__FAIL
                                                   : RD_KAFKA_RESP_ERR_NO_ERROR;

    rd_kafka_topic_partition_list_destroy(parts);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_http_dashstream_consumer_fail(c, rc, "cannot assign partitions");
        return;
    }

    for (i = c->assigned; i < n; i++) {
        ngx_http_dashstream_consumer_assigned(c, i, 1);
    }

    ngx_http_dashstream_thread_log(NGX_LOG_INFO,
        "broadcast: reading partitions %d to %d of \"%s\"",
        (int) c->assigned, (int) n - 1, c->topic);

    c->assigned = n;
}


/*
 * When idle, take librdkafka's own position for each assigned partition:
 * it steps over what is never delivered (transaction markers, aborted
 * records), which a position kept from delivered messages cannot, and
 * a caught-up consumer would otherwise show a lag of one forever.
 */

static void
ngx_http_dashstream_consumer_positions(ngx_http_dashstream_consumer_t *c)
{
    int                               i;
    uint64_t                          now;
    ngx_uint_t                        p;
    ngx_http_dashstream_part_t       *part;
    rd_kafka_topic_partition_t       *e;
    rd_kafka_topic_partition_list_t  *list;

    now = ngx_http_dashstream_monotonic_ms();

    if (now - c->last_positions < 1000) {
        return;
    }

    c->last_positions = now;

    list = rd_kafka_topic_partition_list_new(16);

    for (p = 0; p < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; p++) {
        part = &c->sh->part[p];

        if (part->assigned && part->position_live && !part->paused) {
            rd_kafka_topic_partition_list_add(list, c->topic, (int32_t) p);
        }
    }

    if (list->cnt && rd_kafka_position(c->rk, list)
                     == RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        for (i = 0; i < list->cnt; i++) {
            e = &list->elems[i];
            part = &c->sh->part[e->partition];

            if (e->err == RD_KAFKA_RESP_ERR_NO_ERROR
                && e->offset > (int64_t) part->position)
            {
                part->position = (ngx_atomic_uint_t) e->offset;
            }
        }
    }

    rd_kafka_topic_partition_list_destroy(list);
}


static void
ngx_http_dashstream_consumer_assigned(ngx_http_dashstream_consumer_t *c,
    int32_t partition, ngx_uint_t on)
{
    ngx_http_dashstream_part_t  *part;

    if (partition < 0 || partition >= NGX_HTTP_DASHSTREAM_MAX_PARTITIONS) {
        return;
    }

    part = &c->sh->part[partition];

    if (on) {
        part->assigned_ms = ngx_http_dashstream_realtime_ms();
        part->position_live = 0;
        part->high_watermark = 0;
        part->committed = 0;
        part->paused = 0;
    }

    part->assigned = on;
}


static void
ngx_http_dashstream_consumer_loop(ngx_http_dashstream_consumer_t *c)
{
    ssize_t              n, i;
    rd_kafka_queue_t    *queue;
    rd_kafka_message_t  *batch[NGX_HTTP_DASHSTREAM_BATCH];

    queue = rd_kafka_queue_get_consumer(c->rk);

    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {

        if (c->mode == NGX_HTTP_DASHSTREAM_MODE_BROADCAST) {
            ngx_http_dashstream_consumer_assign_new(c);
        }

        /*
         * rd_kafka_consume_batch_queue() returns when its batch is full or
         * its timeout is over, which at low rates holds every message for
         * the whole timeout.  Wait for one message, then take what comes
         * within a millisecond: batches under load, no latency floor.
         */

        batch[0] = rd_kafka_consumer_poll(c->rk, NGX_HTTP_DASHSTREAM_POLL_MS);
        n = 0;

        if (batch[0] != NULL) {
            n = rd_kafka_consume_batch_queue(queue, 1, batch + 1,
                                             NGX_HTTP_DASHSTREAM_BATCH - 1);
            n = (n < 0 ? 0 : n) + 1;
        }

        c->wrote = 0;

        for (i = 0; i < n; i++) {
            ngx_http_dashstream_consumer_message(c, batch[i]);
            rd_kafka_message_destroy(batch[i]);
        }

        ngx_http_dashstream_consumer_store(c);

        if (n == 0) {
            ngx_http_dashstream_consumer_positions(c);
        }

        if (c->dlq) {
            ngx_http_dashstream_dlq_poll(c->dlq);
        }

        if (c->wrote) {
            ngx_http_dashstream_consumer_wake(c);
        }

        c->sh->writer_beat = ngx_http_dashstream_monotonic_ms();
    }

    rd_kafka_queue_destroy(queue);
}


static void
ngx_http_dashstream_consumer_message(ngx_http_dashstream_consumer_t *c,
    rd_kafka_message_t *m)
{
    int                              rc;
    char                             err[256];
    int64_t                          ts;
    ngx_uint_t                       redo;
    rd_kafka_timestamp_type_t        tstype;
    ngx_http_dashstream_part_t      *part;
    ngx_http_dashstream_counters_t  *k;
    ngx_http_dashstream_decoded_t    d;

    if (m->err) {
        ngx_http_dashstream_consumer_error(c, m);
        return;
    }

    k = &c->sh->counters;
    k->broker_up = 1;

    if (m->partition < 0 || m->partition >= NGX_HTTP_DASHSTREAM_MAX_PARTITIONS) {
        ngx_http_dashstream_consumer_beyond(c, m);
        return;
    }

    part = &c->sh->part[m->partition];

    /*
     * fail_closed: a held partition is paused, but messages fetched after
     * the held one may still arrive; it is read again from there once the
     * held message is dead-lettered.
     */

    if (c->held[m->partition]) {
        return;
    }

    if (m->partition >= c->store_max) {
        c->store_max = m->partition + 1;
    }

    c->store[m->partition] = m->offset + 2;

    /*
     * Already handled (in the ring, or dead-lettered): read again after a
     * restart, a reload or a rebalance.  Skipping it here is what keeps a
     * (partition, offset) from entering the ring twice.  A message that
     * was held for the dead-letter topic when its consumer stopped is
     * sent again, but not counted again.
     */

    redo = (part->dlq_held == (ngx_atomic_uint_t) m->offset + 1);

    if ((int64_t) part->position > m->offset && !redo) {
        (void) ngx_atomic_fetch_add(&k->duplicates_skipped, 1);
        return;
    }

    ts = rd_kafka_message_timestamp(m, &tstype);

    if (!redo) {
        part->position = m->offset + 1;
        part->position_live = 1;
        part->last_ts_ms = ts > 0 ? (ngx_atomic_uint_t) ts
                                  : ngx_http_dashstream_realtime_ms();
    }

    rc = ngx_http_dashstream_decode(c->decoder, m->payload, m->len, &d,
                                    err, sizeof(err));

    if (rc != NGX_HTTP_DASHSTREAM_DECODE_OK) {
        ngx_http_dashstream_consumer_undecodable(c, m, part, rc, err, redo);
        return;
    }

    part->dlq_held = 0;

    ngx_http_dashstream_stream_observe(c->stream, &d);
    ngx_http_dashstream_consumer_append(c, m, part, &d, ts);
}


static void
ngx_http_dashstream_consumer_append(ngx_http_dashstream_consumer_t *c,
    rd_kafka_message_t *m, ngx_http_dashstream_part_t *part,
    ngx_http_dashstream_decoded_t *d, int64_t ts)
{
    int64_t                          seq;
    ngx_http_dashstream_counters_t  *k;
    ngx_http_dashstream_rec_meta_t   meta;

    k = &c->sh->counters;

    ngx_memzero(&meta, sizeof(meta));

    meta.offset = m->offset;
    meta.prev_offset = (int64_t) part->last_written - 1;
    meta.kafka_ts_ms = ts;
    meta.producer_ts_us = d->timestamp_us;
    meta.dash_sequence = d->sequence;
    meta.partition = m->partition;
    meta.payload_len = (uint32_t) m->len;
    meta.msg_type = (uint8_t) d->msg_type;
    meta.thread_id_len = (uint8_t) ngx_min(d->thread_id_len, 255);
    meta.tenant_id_len = (uint8_t) ngx_min(d->tenant_id_len, 255);

    seq = ngx_http_dashstream_ring_append(c->ring, &meta,
                                          (const u_char *) d->thread_id,
                                          (const u_char *) d->tenant_id,
                                          m->payload);
    if (seq < 0) {
        (void) ngx_atomic_fetch_add(&k->messages_error, 1);
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "message at %s/%d/%lld of %zu bytes does not fit the ring",
            c->topic, (int) m->partition, (long long) m->offset, m->len);
        return;
    }

    part->last_written = m->offset + 1;
    (void) ngx_atomic_fetch_add(&part->messages, 1);
    (void) ngx_atomic_fetch_add(&k->messages_ok, 1);
    (void) ngx_atomic_fetch_add(&k->bytes_consumed, m->len);

    c->wrote++;
}


/*
 * Every undecodable message goes to the dead-letter topic.  best_effort:
 * its offset is stored with the batch whatever becomes of the record.
 * fail_closed: the offset stored stops at it and its partition pauses
 * until the record is delivered (see _dead_lettered() below).
 */

static void
ngx_http_dashstream_consumer_undecodable(ngx_http_dashstream_consumer_t *c,
    rd_kafka_message_t *m, ngx_http_dashstream_part_t *part, int rc,
    const char *err, ngx_uint_t redo)
{
    ngx_uint_t                       hold;
    ngx_http_dashstream_counters_t  *k;

    k = &c->sh->counters;

    if (!redo) {
        (void) ngx_atomic_fetch_add(&k->messages_error, 1);
        (void) ngx_atomic_fetch_add(&k->decode_errors[rc], 1);
        ngx_http_dashstream_thread_log(NGX_LOG_WARN,
            "undecodable message at %s/%d/%lld (%s): %s", c->topic,
            (int) m->partition, (long long) m->offset,
            ngx_http_dashstream_decode_error_name(rc), err);
    }

    hold = (c->dlq_mode == NGX_HTTP_DASHSTREAM_DLQ_FAIL_CLOSED);

    if (c->dlq == NULL) {
        c->dlq = ngx_http_dashstream_dlq_create(&c->dlq_conf);
    }

    if (c->dlq == NULL
        || ngx_http_dashstream_dlq_send(c->dlq, m,
                                   ngx_http_dashstream_decode_error_name(rc),
                                   err, hold)
           != NGX_OK)
    {
        part->dlq_held = 0;
        return;
    }

    if (!hold) {
        return;
    }

    part->dlq_held = m->offset + 1;
    c->store[m->partition] = m->offset + 1;

    ngx_http_dashstream_consumer_hold(c, m->partition, m->offset, 1);
}


static void
ngx_http_dashstream_consumer_hold(ngx_http_dashstream_consumer_t *c,
    int32_t partition, int64_t offset, ngx_uint_t on)
{
    rd_kafka_error_t                 *error;
    rd_kafka_topic_partition_list_t  *list;

    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, c->topic, partition)->offset =
        offset + 1;

    if (on) {
        (void) rd_kafka_pause_partitions(c->rk, list);

        c->held[partition] = offset + 1;
        c->sh->part[partition].paused = 1;

        if (c->nheld++ == 0) {
            c->sh->counters.dlq_stall_since_ms =
                                         ngx_http_dashstream_realtime_ms();
        }

        rd_kafka_topic_partition_list_destroy(list);
        return;
    }

    /*
     * librdkafka resumes after the last message it handed over, beyond
     * the held one: seek back to just after it.  The seek's barrier
     * discards anything fetched before it.
     */

    (void) rd_kafka_resume_partitions(c->rk, list);

    error = rd_kafka_seek_partitions(c->rk, list, 0);
    if (error) {
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "seek to %s/%d/%lld failed: %s", c->topic, (int) partition,
            (long long) offset + 1, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }

    rd_kafka_topic_partition_list_destroy(list);

    ngx_http_dashstream_consumer_unhold(c, partition);
}


/* the stall ends when no partition is held any more */

static void
ngx_http_dashstream_consumer_unhold(ngx_http_dashstream_consumer_t *c,
    int32_t partition)
{
    uint64_t                         now;
    ngx_http_dashstream_counters_t  *k;

    if (partition < 0 || partition >= NGX_HTTP_DASHSTREAM_MAX_PARTITIONS
        || c->held[partition] == 0)
    {
        return;
    }

    k = &c->sh->counters;
    now = ngx_http_dashstream_realtime_ms();

    c->held[partition] = 0;
    c->sh->part[partition].paused = 0;

    if (--c->nheld == 0 && k->dlq_stall_since_ms) {
        (void) ngx_atomic_fetch_add(&k->dlq_stall_total_ms,
                                    now - k->dlq_stall_since_ms);
        k->dlq_stall_since_ms = 0;
    }
}


/* fail_closed: the held message is in the dead-letter topic */

static void
ngx_http_dashstream_consumer_dead_lettered(void *data, int32_t partition,
    int64_t offset)
{
    ngx_http_dashstream_consumer_t *c = data;

    ngx_http_dashstream_part_t  *part;

    part = &c->sh->part[partition];

    if (part->dlq_held == (ngx_atomic_uint_t) offset + 1) {
        part->dlq_held = 0;
    }

    if (c->held[partition] != offset + 1) {
        /* revoked meanwhile: its next owner reads it again */
        return;
    }

    ngx_http_dashstream_consumer_hold(c, partition, offset, 0);

    if (partition >= c->store_max) {
        c->store_max = partition + 1;
    }

    c->store[partition] = offset + 2;

    ngx_http_dashstream_thread_log(NGX_LOG_NOTICE,
        "held message %s/%d/%lld is dead-lettered: partition resumed",
        c->topic, (int) partition, (long long) offset);
}


static void
ngx_http_dashstream_consumer_error(ngx_http_dashstream_consumer_t *c,
    rd_kafka_message_t *m)
{
    char      text[320];
    uint64_t  now;

    now = ngx_http_dashstream_monotonic_ms();

    /* the same error comes back every poll: say it at most once a second */

    if (now - c->last_error_log < 1000) {
        (void) ngx_atomic_fetch_add(&c->sh->counters.client_errors[
                   ngx_http_dashstream_kafka_error_type(m->err)], 1);
        return;
    }

    c->last_error_log = now;

    snprintf(text, sizeof(text), "topic \"%s\": %s",
             m->rkt ? rd_kafka_topic_name(m->rkt) : c->topic,
             rd_kafka_message_errstr(m));

    ngx_http_dashstream_consumer_fail(c, m->err, text);
}


/* one Kafka client error: counted by type, logged, shown in the status */

/*
 * A group may assign partitions past the ones the zone has room for: each
 * message of those is an error, in the counter and in the status; the log
 * says so once per ERROR_LOG_MS with how many there were.
 */

static void
ngx_http_dashstream_consumer_beyond(ngx_http_dashstream_consumer_t *c,
    rd_kafka_message_t *m)
{
    char      text[160];
    uint64_t  now;

    (void) ngx_atomic_fetch_add(&c->sh->counters.messages_error, 1);

    now = ngx_http_dashstream_monotonic_ms();
    c->beyond_quiet++;

    if (c->beyond_log != 0
        && now - c->beyond_log < NGX_HTTP_DASHSTREAM_ERROR_LOG_MS)
    {
        return;
    }

    snprintf(text, sizeof(text), "partition %d is beyond the %d partitions "
             "the module serves: its messages are skipped", (int) m->partition,
             NGX_HTTP_DASHSTREAM_MAX_PARTITIONS);

    ngx_http_dashstream_note_set(&c->sh->consumer_error,
                                 ngx_http_dashstream_realtime_ms(), text);

    ngx_http_dashstream_thread_log(NGX_LOG_ERR,
        "Kafka consumer of topic \"%s\": %s (%lu message(s) of such "
        "partitions skipped since the last such line, at most one per "
        "%ds)", c->topic, text, (unsigned long) c->beyond_quiet,
        NGX_HTTP_DASHSTREAM_ERROR_LOG_MS / 1000);

    c->beyond_log = now;
    c->beyond_quiet = 0;
}


static void
ngx_http_dashstream_consumer_fail(ngx_http_dashstream_consumer_t *c, int rc,
    const char *text)
{
    uint64_t  now;
    unsigned  type;

    type = ngx_http_dashstream_kafka_error_type(rc);
    now = ngx_http_dashstream_monotonic_ms();

    (void) ngx_atomic_fetch_add(&c->sh->counters.client_errors[type], 1);

    /* "all brokers are down" follows the error that says why: keep that */

    if (type != NGX_HTTP_DASHSTREAM_KERR_BROKERS
        || now - c->note_ms >= NGX_HTTP_DASHSTREAM_ERROR_LOG_MS
        || c->note_ms == 0)
    {
        ngx_http_dashstream_note_set(&c->sh->consumer_error,
                                     ngx_http_dashstream_realtime_ms(), text);
        c->note_ms = (type == NGX_HTTP_DASHSTREAM_KERR_BROKERS) ? 0 : now;
    }

    /* librdkafka repeats an error on every retry: one line per type */

    if (c->fail_log[type] != 0
        && now - c->fail_log[type] < NGX_HTTP_DASHSTREAM_ERROR_LOG_MS)
    {
        c->fail_quiet[type]++;
        return;
    }

    ngx_http_dashstream_thread_log(NGX_LOG_ERR,
        "Kafka consumer of topic \"%s\" on brokers %s: %s "
        "(%lu more of this type in the last %ds)",
        c->topic, c->brokers, text, (unsigned long) c->fail_quiet[type],
        NGX_HTTP_DASHSTREAM_ERROR_LOG_MS / 1000);

    c->fail_log[type] = now;
    c->fail_quiet[type] = 0;
}


static void
ngx_http_dashstream_consumer_store(ngx_http_dashstream_consumer_t *c)
{
    int32_t                           i;
    rd_kafka_topic_partition_list_t  *list;

    if (!c->kp.commit || c->store_max == 0) {
        c->store_max = 0;
        return;
    }

    list = rd_kafka_topic_partition_list_new(c->store_max);

    for (i = 0; i < c->store_max; i++) {
        if (c->store[i]) {
            rd_kafka_topic_partition_list_add(list, c->topic, i)->offset =
                c->store[i] - 1;
            c->store[i] = 0;
        }
    }

    /* a partition revoked meanwhile refuses the store; that is fine */
    (void) rd_kafka_offsets_store(c->rk, list);

    rd_kafka_topic_partition_list_destroy(list);

    c->store_max = 0;
}


static void
ngx_http_dashstream_consumer_close(ngx_http_dashstream_consumer_t *c)
{
    int32_t              i;
    rd_kafka_resp_err_t  rc;

    ngx_http_dashstream_dlq_destroy(c->dlq,
                                    NGX_HTTP_DASHSTREAM_DLQ_FLUSH_MS);
    c->dlq = NULL;

    /* still held: not stored past, read and dead-lettered again later */

    for (i = 0; c->nheld && i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        if (c->held[i]) {
            ngx_http_dashstream_consumer_hold(c, i, c->held[i] - 1, 0);
        }
    }

    ngx_http_dashstream_consumer_store(c);

    if (c->kp.commit) {
        rc = rd_kafka_commit(c->rk, NULL, 0);

        if (rc != RD_KAFKA_RESP_ERR_NO_ERROR
            && rc != RD_KAFKA_RESP_ERR__NO_OFFSET)
        {
            ngx_http_dashstream_thread_log(NGX_LOG_WARN,
                "committing offsets on stop failed: %s",
                rd_kafka_err2str(rc));
        }
    }

    rc = rd_kafka_consumer_close(c->rk);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_http_dashstream_thread_log(NGX_LOG_WARN,
            "closing the consumer: %s", rd_kafka_err2str(rc));
    }

    rd_kafka_destroy(c->rk);
    c->rk = NULL;

    ngx_http_dashstream_thread_log(NGX_LOG_INFO, "consumer stopped");
}


static void
ngx_http_dashstream_consumer_wake(ngx_http_dashstream_consumer_t *c)
{
    uint64_t    one;
    ngx_uint_t  i;

    one = 1;

    for (i = 0; i < c->nwake; i++) {
        /* EAGAIN means the counter is already set: the worker will look */
        (void) write(c->wake_fds[i], &one, sizeof(one));
    }
}


static void
ngx_http_dashstream_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    ngx_http_dashstream_consumer_t *c = opaque;

    int          i, coop;
    ngx_uint_t   assigned;

    coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    assigned = (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS);

    /*
     * Revoked partitions stop counting before the consumer lets them go,
     * so that no lag series outlives its assignment.
     */

    for (i = 0; i < parts->cnt; i++) {
        ngx_http_dashstream_consumer_assigned(c, parts->elems[i].partition,
                                              assigned);
        ngx_http_dashstream_consumer_unhold(c, parts->elems[i].partition);
    }

    if (coop) {
        if (assigned) {
            (void) rd_kafka_incremental_assign(rk, parts);

        } else {
            (void) rd_kafka_incremental_unassign(rk, parts);
        }

    } else {
        (void) rd_kafka_assign(rk, assigned ? parts : NULL);
    }

    (void) ngx_atomic_fetch_add(&c->sh->counters.rebalances, 1);

    ngx_http_dashstream_thread_log(NGX_LOG_INFO,
        "rebalance (%s): %d partitions of \"%s\" %s",
        coop ? "cooperative" : "eager", parts->cnt, c->topic,
        assigned ? "assigned" : "revoked");
}


static void
ngx_http_dashstream_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf)
{
    ngx_uint_t  lvl;

    lvl = level <= 3 ? NGX_LOG_ERR
          : level == 4 ? NGX_LOG_WARN
          : level == 5 ? NGX_LOG_NOTICE
          : level == 6 ? NGX_LOG_INFO : NGX_LOG_DEBUG;

    /*
     * Every client is made from one template: the dead-letter producer
     * warns of each consumer property in it, the consumers of each
     * producer property, at each start.
     */

    if (ngx_strcmp(fac, "CONFWARN") == 0
        && ngx_strstr(buf, " property and will be ignored by this ") != NULL)
    {
        lvl = NGX_LOG_DEBUG;
    }

    ngx_http_dashstream_thread_log(lvl, "librdkafka %s: %s", fac, buf);
}


static void
ngx_http_dashstream_kafka_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_http_dashstream_consumer_t *c = opaque;

    char  text[320];

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        c->sh->counters.broker_up = 0;
    }

    snprintf(text, sizeof(text), "%s: %s", rd_kafka_err2name(err), reason);

    ngx_http_dashstream_consumer_fail(c, err, text);
}
