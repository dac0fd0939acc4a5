/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_dlq.h"
#include "ngx_http_dashstream_dlqrec.h"


/* at most one log line of each kind per interval */
#define NGX_HTTP_DASHSTREAM_DLQ_LOG_MS  10000


typedef struct ngx_http_dashstream_dlq_rec_s  ngx_http_dashstream_dlq_rec_t;

/*
 * One record on its way, in a single allocation:
 *
 *     +-----+-----+-------------+----------------------------+
 *     | rec | key | JSON record | JSON, payload truncated    |
 *     +-----+-----+-------------+----------------------------+
 *
 * the last part only when the full record is longer and may be refused
 * as too large.  librdkafka references the JSON without copying it until
 * the delivery report.
 */

struct ngx_http_dashstream_dlq_rec_s {
    ngx_http_dashstream_dlq_rec_t      *next;
    ngx_http_dashstream_dlq_rec_t      *prev;
    u_char                             *key;
    size_t                              key_len;
    u_char                             *json;
    size_t                              len;
    u_char                             *small;
    size_t                              small_len;
    int32_t                             partition;
    int64_t                             offset;
    uint64_t                            retry_at;
    ngx_uint_t                          attempts;
    unsigned                            hold:1;
    unsigned                            inflight:1;
};


struct ngx_http_dashstream_dlq_s {
    ngx_http_dashstream_dlq_conf_t      conf;
    rd_kafka_t                         *rk;
    rd_kafka_topic_t                   *rkt;
    ngx_http_dashstream_dlq_rec_t       head;       /* list sentinel */
    ngx_uint_t                          n;
    ngx_uint_t                          closing;
    uint64_t                            log_fail;
    uint64_t                            log_error;
    ngx_uint_t                          quiet;      /* lines not logged */
};


static ngx_int_t ngx_http_dashstream_dlq_connect(
    ngx_http_dashstream_dlq_t *dlq);
static ngx_http_dashstream_dlq_rec_t *ngx_http_dashstream_dlq_record(
    ngx_http_dashstream_dlq_t *dlq, const rd_kafka_message_t *m,
    const char *error_type, const char *error);
static void ngx_http_dashstream_dlq_attempt(ngx_http_dashstream_dlq_t *dlq,
    ngx_http_dashstream_dlq_rec_t *rec);
static void ngx_http_dashstream_dlq_failed(ngx_http_dashstream_dlq_t *dlq,
    ngx_http_dashstream_dlq_rec_t *rec, int err, const char *text);
static void ngx_http_dashstream_dlq_free(ngx_http_dashstream_dlq_t *dlq,
    ngx_http_dashstream_dlq_rec_t *rec);
static ngx_uint_t ngx_http_dashstream_dlq_reason(int err);
static void ngx_http_dashstream_dlq_delivered(rd_kafka_t *rk,
    const rd_kafka_message_t *m, void *opaque);
static void ngx_http_dashstream_dlq_error(rd_kafka_t *rk, int err,
    const char *reason, void *opaque);


static const char  *ngx_http_dashstream_dlq_reasons[] = {
    "queue_full", "timed_out", "broker", "too_large", "retries_exhausted",
    "other"
};


ngx_http_dashstream_dlq_t *
ngx_http_dashstream_dlq_create(const ngx_http_dashstream_dlq_conf_t *conf)
{
    ngx_http_dashstream_dlq_t  *dlq;

    dlq = calloc(1, sizeof(ngx_http_dashstream_dlq_t));
    if (dlq == NULL) {
        return NULL;
    }

    dlq->conf = *conf;
    dlq->conf.kp.opaque = dlq;
    dlq->conf.kp.error_cb = ngx_http_dashstream_dlq_error;
    dlq->conf.kp.dr_msg_cb = ngx_http_dashstream_dlq_delivered;
    dlq->conf.kp.rebalance_cb = NULL;

    dlq->head.next = &dlq->head;
    dlq->head.prev = &dlq->head;

    /* made now so that its settings are tried before any bad message */
    (void) ngx_http_dashstream_dlq_connect(dlq);

    return dlq;
}


static ngx_int_t
ngx_http_dashstream_dlq_connect(ngx_http_dashstream_dlq_t *dlq)
{
    char  err[512];

    if (dlq->rk) {
        return NGX_OK;
    }

    dlq->rk = ngx_http_dashstream_kafka_client(
                  NGX_HTTP_DASHSTREAM_CLIENT_PRODUCER, &dlq->conf.kp,
                  err, sizeof(err));

    if (dlq->rk == NULL) {
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "cannot create the dead-letter producer for topic \"%s\" on "
            "brokers %s: %s", dlq->conf.dlq_topic, dlq->conf.brokers, err);
        return NGX_ERROR;
    }

    dlq->rkt = rd_kafka_topic_new(dlq->rk, dlq->conf.dlq_topic, NULL);

    if (dlq->rkt == NULL) {
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "dead-letter topic \"%s\": %s", dlq->conf.dlq_topic,
            rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(dlq->rk);
        dlq->rk = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_dashstream_dlq_send(ngx_http_dashstream_dlq_t *dlq,
    const rd_kafka_message_t *m, const char *error_type, const char *error,
    ngx_uint_t hold)
{
    ngx_http_dashstream_dlq_rec_t   *rec;
    ngx_http_dashstream_counters_t  *k;

    k = &dlq->conf.sh->counters;

    /* held records are bounded by the partitions: each holds its own */

    if (!hold && dlq->n >= dlq->conf.max_inflight) {
        (void) ngx_atomic_fetch_add(
                   &k->dlq_failures[NGX_HTTP_DASHSTREAM_DLQ_QUEUE_FULL], 1);
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "dead-letter record of %s/%d/%lld dropped: %lu records are "
            "already on their way to \"%s\"", dlq->conf.topic,
            (int) m->partition, (long long) m->offset,
            (unsigned long) dlq->n, dlq->conf.dlq_topic);
        return NGX_DECLINED;
    }

    rec = ngx_http_dashstream_dlq_record(dlq, m, error_type, error);

    if (rec == NULL) {
        (void) ngx_atomic_fetch_add(
                   &k->dlq_failures[NGX_HTTP_DASHSTREAM_DLQ_OTHER], 1);
        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "no memory for the dead-letter record of %s/%d/%lld",
            dlq->conf.topic, (int) m->partition, (long long) m->offset);
        return NGX_DECLINED;
    }

    rec->hold = hold;

    rec->next = &dlq->head;
    rec->prev = dlq->head.prev;
    dlq->head.prev->next = rec;
    dlq->head.prev = rec;

    dlq->n++;
    k->dlq_backlog = dlq->n;

    ngx_http_dashstream_dlq_attempt(dlq, rec);

    return NGX_OK;
}


static ngx_http_dashstream_dlq_rec_t *
ngx_http_dashstream_dlq_record(ngx_http_dashstream_dlq_t *dlq,
    const rd_kafka_message_t *m, const char *error_type, const char *error)
{
    char                            sha[NGX_HTTP_DASHSTREAM_SHA256_HEX + 1];
    size_t                          size, small;
    u_char                         *p;
    rd_kafka_timestamp_type_t       tstype;
    ngx_http_dashstream_dlqrec_t    r;
    ngx_http_dashstream_dlq_rec_t  *rec;

    if (ngx_http_dashstream_sha256_hex(sha, m->payload, m->len) != 0) {
        return NULL;
    }

    ngx_memzero(&r, sizeof(ngx_http_dashstream_dlqrec_t));

    r.topic = (const u_char *) dlq->conf.topic;
    r.topic_len = ngx_strlen(dlq->conf.topic);
    r.partition = m->partition;
    r.offset = m->offset;
    r.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    r.key = m->key;
    r.key_len = m->key_len;
    r.error_type = error_type;
    r.error = error;
    r.payload_size = m->len;
    r.payload = m->payload;
    r.included = dlq->conf.truncate ? ngx_min(m->len, dlq->conf.max_payload)
                                    : m->len;
    r.sha256_hex = sha;
    r.module_version = NGX_HTTP_DASHSTREAM_VERSION;
    r.dead_lettered_ms = ngx_http_dashstream_realtime_ms();

    size = ngx_http_dashstream_dlqrec_size(&r);
    small = 0;

    if (r.included > dlq->conf.max_payload) {
        r.included = dlq->conf.max_payload;
        small = ngx_http_dashstream_dlqrec_size(&r);
        r.included = m->len;
    }

    rec = malloc(sizeof(ngx_http_dashstream_dlq_rec_t) + m->key_len + size
                 + small);
    if (rec == NULL) {
        return NULL;
    }

    ngx_memzero(rec, sizeof(ngx_http_dashstream_dlq_rec_t));

    rec->partition = m->partition;
    rec->offset = m->offset;
    rec->key = (u_char *) (rec + 1);
    rec->key_len = m->key_len;
    ngx_memcpy(rec->key, m->key, m->key_len);

    rec->json = rec->key + m->key_len;
    p = ngx_http_dashstream_dlqrec_write(rec->json, &r);
    rec->len = p - rec->json;

    if (small) {
        r.included = dlq->conf.max_payload;
        rec->small = p;
        rec->small_len = ngx_http_dashstream_dlqrec_write(p, &r) - p;
    }

    return rec;
}


static void
ngx_http_dashstream_dlq_attempt(ngx_http_dashstream_dlq_t *dlq,
    ngx_http_dashstream_dlq_rec_t *rec)
{
    int  err;

    rec->attempts++;

    if (ngx_http_dashstream_dlq_connect(dlq) != NGX_OK) {
        ngx_http_dashstream_dlq_failed(dlq, rec, RD_KAFKA_RESP_ERR__FAIL,
                                       "no producer");
        return;
    }

    if (rd_kafka_produce(dlq->rkt, RD_KAFKA_PARTITION_UA, 0, rec->json,
                         rec->len, rec->key_len ? rec->key : NULL,
                         rec->key_len, rec)
        == 0)
    {
        rec->inflight = 1;
        return;
    }

    err = rd_kafka_last_error();

    ngx_http_dashstream_dlq_failed(dlq, rec, err, rd_kafka_err2str(err));
}


/*
 * One attempt failed: counted by reason; the record is tried again after
 * a backoff that doubles up to backoff_max, unless it is not held and has
 * had all its retries.  A record too large to send goes again with its
 * payload truncated.
 */

static void
ngx_http_dashstream_dlq_failed(ngx_http_dashstream_dlq_t *dlq,
    ngx_http_dashstream_dlq_rec_t *rec, int err, const char *text)
{
    uint64_t                         now, wait;
    ngx_uint_t                       reason, give_up;
    ngx_http_dashstream_counters_t  *k;

    k = &dlq->conf.sh->counters;
    reason = ngx_http_dashstream_dlq_reason(err);

    (void) ngx_atomic_fetch_add(&k->dlq_failures[reason], 1);

    if (reason == NGX_HTTP_DASHSTREAM_DLQ_TOO_LARGE && rec->small) {
        rec->json = rec->small;
        rec->len = rec->small_len;
        rec->small = NULL;
    }

    give_up = !rec->hold && rec->attempts > dlq->conf.retries;

    wait = dlq->conf.backoff << ngx_min(rec->attempts - 1, 20);
    wait = ngx_min(wait, dlq->conf.backoff_max);

    now = ngx_http_dashstream_monotonic_ms();
    rec->retry_at = now + wait;

    if (now - dlq->log_fail >= NGX_HTTP_DASHSTREAM_DLQ_LOG_MS
        || dlq->log_fail == 0)
    {
        dlq->log_fail = now;

        ngx_http_dashstream_thread_log(NGX_LOG_ERR,
            "dead-letter record of %s/%d/%lld to topic \"%s\" on brokers "
            "%s failed (%s: %s), attempt %lu; %s%s", dlq->conf.topic,
            (int) rec->partition, (long long) rec->offset,
            dlq->conf.dlq_topic, dlq->conf.brokers,
            ngx_http_dashstream_dlq_reasons[reason], text,
            (unsigned long) rec->attempts,
            give_up ? "given up" : "retrying",
            rec->hold ? ", the partition waits for it" : "");
    }

    if (give_up) {
        (void) ngx_atomic_fetch_add(
                   &k->dlq_failures[NGX_HTTP_DASHSTREAM_DLQ_RETRIES], 1);
        ngx_http_dashstream_dlq_free(dlq, rec);
    }
}


void
ngx_http_dashstream_dlq_poll(ngx_http_dashstream_dlq_t *dlq)
{
    uint64_t                        now;
    ngx_http_dashstream_dlq_rec_t  *rec, *next;

    if (dlq->rk) {
        (void) rd_kafka_poll(dlq->rk, 0);
    }

    if (dlq->n == 0) {
        return;
    }

    now = ngx_http_dashstream_monotonic_ms();

    for (rec = dlq->head.next; rec != &dlq->head; rec = next) {
        next = rec->next;

        if (!rec->inflight && rec->retry_at <= now) {
            ngx_http_dashstream_dlq_attempt(dlq, rec);
        }
    }
}


static void
ngx_http_dashstream_dlq_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque)
{
    ngx_http_dashstream_dlq_t *dlq = opaque;

    ngx_http_dashstream_dlq_rec_t  *rec;

    rec = m->_private;
    rec->inflight = 0;

    if (dlq->closing) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            (void) ngx_atomic_fetch_add(&dlq->conf.sh->counters.dlq_sends, 1);

            if (rec->hold) {
                dlq->conf.done(dlq->conf.data, rec->partition, rec->offset);
            }
        }

        ngx_http_dashstream_dlq_free(dlq, rec);
        return;
    }

    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_http_dashstream_dlq_failed(dlq, rec, m->err,
                                       rd_kafka_err2str(m->err));
        return;
    }

    (void) ngx_atomic_fetch_add(&dlq->conf.sh->counters.dlq_sends, 1);

    if (rec->hold) {
        dlq->conf.done(dlq->conf.data, rec->partition, rec->offset);
    }

    ngx_http_dashstream_dlq_free(dlq, rec);
}


static void
ngx_http_dashstream_dlq_free(ngx_http_dashstream_dlq_t *dlq,
    ngx_http_dashstream_dlq_rec_t *rec)
{
    rec->prev->next = rec->next;
    rec->next->prev = rec->prev;

    dlq->n--;
    dlq->conf.sh->counters.dlq_backlog = dlq->n;

    free(rec);
}


static ngx_uint_t
ngx_http_dashstream_dlq_reason(int err)
{
    switch (err) {

    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return NGX_HTTP_DASHSTREAM_DLQ_QUEUE_FULL;

    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return NGX_HTTP_DASHSTREAM_DLQ_TIMED_OUT;

    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return NGX_HTTP_DASHSTREAM_DLQ_TOO_LARGE;

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return NGX_HTTP_DASHSTREAM_DLQ_BROKER;

    default:
        return err > 0 ? NGX_HTTP_DASHSTREAM_DLQ_BROKER
                       : NGX_HTTP_DASHSTREAM_DLQ_OTHER;
    }
}


/* the producer's own trouble (brokers, authentication): counted, logged */

static void
ngx_http_dashstream_dlq_error(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    ngx_http_dashstream_dlq_t *dlq = opaque;

    uint64_t  now;

    (void) ngx_atomic_fetch_add(&dlq->conf.sh->counters.client_errors[
               ngx_http_dashstream_kafka_error_type(err)], 1);

    now = ngx_http_dashstream_monotonic_ms();

    if (now - dlq->log_error < NGX_HTTP_DASHSTREAM_DLQ_LOG_MS
        && dlq->log_error != 0)
    {
        dlq->quiet++;
        return;
    }

    ngx_http_dashstream_thread_log(NGX_LOG_ERR,
        "Kafka dead-letter producer of topic \"%s\" on brokers %s: %s: %s "
        "(%lu more in the last %ds)", dlq->conf.dlq_topic,
        dlq->conf.brokers, rd_kafka_err2name(err), reason,
        (unsigned long) dlq->quiet,
        NGX_HTTP_DASHSTREAM_DLQ_LOG_MS / 1000);

    dlq->log_error = now;
    dlq->quiet = 0;
}


/*
 * At stop: what can be delivered within the timeout is; the rest is
 * purged.  A held record that is purged was never stored past: the next
 * consumer reads its message again and sends it again.
 */

void
ngx_http_dashstream_dlq_destroy(ngx_http_dashstream_dlq_t *dlq,
    ngx_msec_t timeout)
{
    ngx_uint_t                      held, other;
    ngx_http_dashstream_dlq_rec_t  *rec;

    if (dlq == NULL) {
        return;
    }

    dlq->closing = 1;

    if (dlq->rk) {
        (void) rd_kafka_flush(dlq->rk, (int) timeout);
        (void) rd_kafka_purge(dlq->rk, RD_KAFKA_PURGE_F_QUEUE
                                       | RD_KAFKA_PURGE_F_INFLIGHT);
        (void) rd_kafka_poll(dlq->rk, 0);
    }

    held = 0;
    other = 0;

    while (dlq->head.next != &dlq->head) {
        rec = dlq->head.next;

        if (rec->hold) {
            held++;

        } else {
            other++;
            (void) ngx_atomic_fetch_add(&dlq->conf.sh->counters.dlq_failures[
                       NGX_HTTP_DASHSTREAM_DLQ_OTHER], 1);
        }

        ngx_http_dashstream_dlq_free(dlq, rec);
    }

    if (held || other) {
        ngx_http_dashstream_thread_log(NGX_LOG_WARN,
            "dead-letter records not delivered at stop: %lu lost, %lu to be "
            "sent again from their held offsets", (unsigned long) other,
            (unsigned long) held);
    }

    if (dlq->rkt) {
        rd_kafka_topic_destroy(dlq->rkt);
    }

    if (dlq->rk) {
        rd_kafka_destroy(dlq->rk);
    }

    free(dlq);
}
