/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_websocket.h"


/*
 * Each worker follows the ring with one cursor, live_seq.  When the
 * consumer thread signals the worker's eventfd, the worker reads every new
 * record once, builds its frames once, and queues the same frame block on
 * every live subscriber that wants it.  A subscriber that is behind (it
 * resumed from cursors, or has just connected) is not live: it reads the
 * ring at its own pace until it reaches live_seq, then joins the others.
 */


#define NGX_HTTP_DASHSTREAM_LIVE_MAX  1024
#define NGX_HTTP_DASHSTREAM_PUMP_MAX  512


typedef struct {
    ngx_connection_t                *wake;
    ngx_http_dashstream_shctx_t     *sh;
    ngx_http_dashstream_ring_t      *ring;
    uint64_t                         live_seq;
    ngx_queue_t                      live;
    ngx_queue_t                      behind;
    int                             *wake_slot;
    ngx_int_t                        slot;        /* in sh->workers */
    ngx_atomic_uint_t                topic_generation;
    u_char                          *rec_buf;
    size_t                           rec_cap;
    ngx_uint_t                       exiting;
} ngx_http_dashstream_worker_t;


static void ngx_http_dashstream_fanout_wake(ngx_event_t *ev);
static void ngx_http_dashstream_fanout_nop(ngx_event_t *ev);
static void ngx_http_dashstream_fanout_live(ngx_http_dashstream_worker_t *w);
static void ngx_http_dashstream_fanout_deliver(
    ngx_http_dashstream_worker_t *w, ngx_http_dashstream_rec_t *rec);
static ngx_int_t ngx_http_dashstream_fanout_record(
    ngx_http_dashstream_sub_t *sub, ngx_http_dashstream_frame_t *frame,
    u_char *pos);
static ngx_http_dashstream_frame_t *ngx_http_dashstream_fanout_frame(
    ngx_http_dashstream_rec_t *rec);
static void ngx_http_dashstream_fanout_latency(
    ngx_http_dashstream_worker_t *w, ngx_http_dashstream_rec_t *rec);
static void ngx_http_dashstream_fanout_shutdown(
    ngx_http_dashstream_worker_t *w);
static ngx_uint_t ngx_http_dashstream_fanout_topic(
    ngx_http_dashstream_worker_t *w);
static void ngx_http_dashstream_fanout_close_all(
    ngx_http_dashstream_worker_t *w, const char *reason);
static void ngx_http_dashstream_fanout_go_live(
    ngx_http_dashstream_worker_t *w, ngx_http_dashstream_sub_t *sub);


static ngx_http_dashstream_worker_t  ngx_http_dashstream_worker;


ngx_int_t
ngx_http_dashstream_fanout_init(ngx_cycle_t *cycle,
    ngx_http_dashstream_main_conf_t *dmcf)
{
    ngx_uint_t                     slot;
    ngx_event_t                   *rev;
    ngx_connection_t              *c;
    ngx_http_dashstream_worker_t  *w;

    w = &ngx_http_dashstream_worker;

    w->sh = ngx_http_dashstream_shctx(cycle);
    w->ring = w->sh->ring;
    w->slot = ngx_http_dashstream_worker_register(w->sh, ngx_pid);
    w->topic_generation = __atomic_load_n(&w->sh->topic_generation,
                                          __ATOMIC_ACQUIRE);
    w->live_seq = ngx_http_dashstream_ring_head(w->ring);
    ngx_queue_init(&w->live);
    ngx_queue_init(&w->behind);

    w->rec_cap = ngx_http_dashstream_ring_max_record(w->ring);
    w->rec_buf = ngx_alloc(w->rec_cap, cycle->log);
    if (w->rec_buf == NULL) {
        return NGX_ERROR;
    }

    slot = (ngx_process == NGX_PROCESS_SINGLE) ? 0 : ngx_worker;

    if (slot >= dmcf->nwake) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "dashstream: no wake-up descriptor for worker %ui",
                      slot);
        return NGX_ERROR;
    }

    c = ngx_get_connection(dmcf->wake_fds[slot], cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = w;

    /*
     * "idle" makes nginx call the handler with c->close set when a
     * graceful shutdown starts: that is where subscribers get their 1001.
     */
    c->idle = 1;

    rev = c->read;
    rev->handler = ngx_http_dashstream_fanout_wake;
    rev->log = cycle->log;
    c->write->handler = ngx_http_dashstream_fanout_nop;
    c->write->log = cycle->log;

    /* level-triggered: the handler always reads the counter back to zero */

    if (ngx_add_event(rev, NGX_READ_EVENT, 0) == NGX_ERROR) {
        ngx_free_connection(c);
        return NGX_ERROR;
    }

    w->wake = c;
    w->wake_slot = &dmcf->wake_fds[slot];

    return NGX_OK;
}


/*
 * A fast shutdown (SIGTERM) exits without closing connections and without
 * the idle call of a graceful one: each subscriber gets its 1001 now, if
 * its socket takes the frame at once.
 */

void
ngx_http_dashstream_fanout_terminate(void)
{
    ngx_http_dashstream_worker_t  *w;

    w = &ngx_http_dashstream_worker;

    if (w->wake && !w->exiting) {
        ngx_http_dashstream_fanout_shutdown(w);
    }
}


void
ngx_http_dashstream_fanout_exit(ngx_cycle_t *cycle)
{
    ngx_http_dashstream_worker_t  *w;

    w = &ngx_http_dashstream_worker;

    /* called after the consumer thread, which writes to it, is joined */

    if (w->wake) {
        ngx_close_connection(w->wake);
        w->wake = NULL;
        *w->wake_slot = -1;
    }

    ngx_http_dashstream_worker_unregister(w->sh, w->slot);
    w->slot = NGX_ERROR;
}


uint64_t
ngx_http_dashstream_fanout_head(void)
{
    return ngx_http_dashstream_ring_head(ngx_http_dashstream_worker.ring);
}


ngx_http_dashstream_ring_t *
ngx_http_dashstream_fanout_ring(void)
{
    return ngx_http_dashstream_worker.ring;
}


ngx_http_dashstream_shctx_t *
ngx_http_dashstream_fanout_sh(void)
{
    return ngx_http_dashstream_worker.sh;
}


ngx_int_t
ngx_http_dashstream_fanout_read(uint64_t seq, ngx_http_dashstream_rec_t *rec)
{
    ngx_http_dashstream_worker_t  *w;

    w = &ngx_http_dashstream_worker;

    return ngx_http_dashstream_ring_read(w->ring, seq, w->rec_buf, w->rec_cap,
                                         rec);
}


void
ngx_http_dashstream_fanout_add(ngx_http_dashstream_sub_t *sub)
{
    ngx_http_dashstream_worker_t  *w;

    w = &ngx_http_dashstream_worker;

    /*
     * A topic change this worker has not seen yet (no record woke it since)
     * is older than this subscriber: it must not close it.
     */

    (void) ngx_http_dashstream_fanout_topic(w);

    ngx_queue_insert_tail(&w->behind, &sub->queue);

    (void) ngx_atomic_fetch_add(&w->sh->counters.subscribers_total, 1);

    if (w->slot >= 0) {
        (void) ngx_atomic_fetch_add(&w->sh->workers[w->slot].subscribers, 1);
    }
}


void
ngx_http_dashstream_fanout_remove(ngx_http_dashstream_sub_t *sub)
{
    ngx_http_dashstream_worker_t  *w;

    w = &ngx_http_dashstream_worker;

    ngx_queue_remove(&sub->queue);
    sub->live = 0;

    if (w->slot >= 0) {
        (void) ngx_atomic_fetch_add(&w->sh->workers[w->slot].subscribers, -1);
    }
}


static void
ngx_http_dashstream_fanout_wake(ngx_event_t *ev)
{
    uint64_t                       n;
    ngx_connection_t              *c;
    ngx_http_dashstream_worker_t  *w;

    c = ev->data;
    w = c->data;

    if (c->close && !w->exiting) {
        ngx_http_dashstream_fanout_shutdown(w);
    }

    while (read(c->fd, &n, sizeof(n)) == sizeof(n)) {
        /* void */
    }

    if (ngx_worker == 0) {
        ngx_http_dashstream_thread_log_drain(ev->log);
    }

    if (!w->exiting) {
        ngx_http_dashstream_fanout_live(w);
    }
}


static void
ngx_http_dashstream_fanout_nop(ngx_event_t *ev)
{
}


static void
ngx_http_dashstream_fanout_live(ngx_http_dashstream_worker_t *w)
{
    int                         rc;
    uint64_t                    head, tail;
    ngx_uint_t                  n;
    ngx_queue_t                *q, *next;
    ngx_http_dashstream_rec_t   rec;
    ngx_http_dashstream_sub_t  *sub;

    if (ngx_http_dashstream_fanout_topic(w)) {
        return;
    }

    head = ngx_http_dashstream_ring_head(w->ring);

    if (ngx_queue_empty(&w->live)) {
        w->live_seq = head;
        return;
    }

    for (n = 0; w->live_seq < head && n < NGX_HTTP_DASHSTREAM_LIVE_MAX; n++) {

        rc = ngx_http_dashstream_ring_read(w->ring, w->live_seq, w->rec_buf,
                                           w->rec_cap, &rec);

        if (rc == NGX_HTTP_DASHSTREAM_RING_OVERTAKEN) {

            /* this worker fell a whole ring behind the writer */

            tail = ngx_http_dashstream_ring_tail(w->ring);

            for (q = ngx_queue_head(&w->live);
                 q != ngx_queue_sentinel(&w->live);
                 q = ngx_queue_next(q))
            {
                sub = ngx_queue_data(q, ngx_http_dashstream_sub_t, queue);

                if (sub->next_seq < tail) {
                    ngx_http_dashstream_sub_dropped(sub,
                                                    tail - sub->next_seq,
                                                    "overtaken");
                    sub->next_seq = tail;
                }
            }

            w->live_seq = tail;
            continue;
        }

        if (rc == NGX_HTTP_DASHSTREAM_RING_OK) {
            ngx_http_dashstream_fanout_deliver(w, &rec);
        }

        w->live_seq++;
    }

    for (q = ngx_queue_head(&w->live);
         q != ngx_queue_sentinel(&w->live);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_http_dashstream_sub_t, queue);

        if (sub->out) {
            ngx_http_dashstream_sub_flush(sub);
        }
    }

    /*
     * More to do: go on after this worker's other events.  A handler that
     * posts itself to ngx_posted_events runs again in the same cycle, so
     * a writer faster than the fan-out would keep the worker from ever
     * reaching epoll (no accept, no scrape, no socket ready event).
     */

    if (w->live_seq < head) {
        ngx_post_event(w->wake->read, &ngx_posted_next_events);
    }
}


static void
ngx_http_dashstream_fanout_deliver(ngx_http_dashstream_worker_t *w,
    ngx_http_dashstream_rec_t *rec)
{
    size_t                        need;
    ngx_queue_t                  *q, *next;
    ngx_connection_t             *c;
    ngx_http_dashstream_sub_t    *sub;
    ngx_http_dashstream_frame_t  *frame;

    frame = NULL;

    for (q = ngx_queue_head(&w->live);
         q != ngx_queue_sentinel(&w->live);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_http_dashstream_sub_t, queue);

        /*
         * A subscriber that caught up from the ring may be ahead of this
         * worker's cursor: it has already had (or skipped) this record.
         */

        if (sub->next_seq > w->live_seq) {
            continue;
        }

        sub->next_seq = w->live_seq + 1;

        if (!ngx_http_dashstream_sub_wants(sub, rec)) {
            continue;
        }

        if (frame == NULL) {
            frame = ngx_http_dashstream_fanout_frame(rec);
            if (frame == NULL) {
                return;
            }

            ngx_http_dashstream_fanout_latency(w, rec);
        }

        need = frame->len
               - (sub->protocol == NGX_HTTP_DASHSTREAM_PROTO_RAW
                  ? frame->cursor_len : 0);

        /*
         * A round may carry more than a budget: before a subscriber counts
         * as slow, its socket takes what it can.  An empty queue takes any
         * one record, however large.
         */

        if (sub->out_bytes
            && sub->out_bytes + need > sub->dlcf->send_budget
            && sub->connection->write->ready)
        {
            c = sub->connection;

            ngx_http_dashstream_sub_flush(sub);

            if (c->destroyed || sub->request == NULL || sub->closing) {
                continue;
            }
        }

        if (sub->out_bytes
            && sub->out_bytes + need > sub->dlcf->send_budget)
        {

            if (sub->dlcf->slow_policy == NGX_HTTP_DASHSTREAM_SLOW_CLOSE) {
                (void) ngx_atomic_fetch_add(&w->sh->counters.closed_slow, 1);
                ngx_log_error(NGX_LOG_INFO, sub->connection->log, 0,
                              "dashstream: closing a subscriber over its "
                              "send budget of %uz bytes",
                              sub->dlcf->send_budget);
                ngx_http_dashstream_sub_close(sub,
                                       NGX_HTTP_DASHSTREAM_WS_CLOSE_POLICY_VIOLATION,
                                       "send budget exceeded");
                continue;
            }

            ngx_http_dashstream_sub_dropped(sub, 1, "slow_subscriber");
            continue;
        }

        (void) ngx_http_dashstream_fanout_record(sub, frame, frame->data);
    }

    if (frame && frame->refs == 0) {
        ngx_free(frame);
    }
}


/*
 * End-to-end latency, producer to subscriber queue: the DashStream header
 * timestamp if the producer set one, else the Kafka timestamp.
 */

static void
ngx_http_dashstream_fanout_latency(ngx_http_dashstream_worker_t *w,
    ngx_http_dashstream_rec_t *rec)
{
    double    from_ms;
    uint64_t  now;

    if (rec->meta.producer_ts_us > 0) {
        from_ms = rec->meta.producer_ts_us / 1000.0;

    } else if (rec->meta.kafka_ts_ms > 0) {
        from_ms = (double) rec->meta.kafka_ts_ms;

    } else {
        return;
    }

    now = ngx_http_dashstream_realtime_ms();

    ngx_http_dashstream_hist_observe(&w->sh->counters.e2e_latency,
                                     ngx_http_dashstream_e2e_buckets,
                                     now > from_ms ? now - from_ms : 0);
}


/* queues a record's frames, with a gap notice first if some were lost */

static ngx_int_t
ngx_http_dashstream_fanout_record(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_frame_t *frame, u_char *pos)
{
    u_char  buf[256];
    size_t  len;

    if (sub->dropped && sub->protocol == NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW) {
        len = ngx_http_dashstream_dashflow_write_gap_dropped(buf, sizeof(buf),
                  sub->dropped, "dropped",
                  "messages were dropped for this subscriber; resume from "
                  "your cursors to fetch what the server still holds");

        if (len && ngx_http_dashstream_sub_text(sub, buf, len) == NGX_OK) {
            sub->dropped = 0;
        }
    }

    if (sub->protocol == NGX_HTTP_DASHSTREAM_PROTO_RAW) {
        pos += frame->cursor_len;
    }

    return ngx_http_dashstream_sub_queue(sub, frame, pos,
                                         frame->data + frame->len, 1);
}


static ngx_http_dashstream_frame_t *
ngx_http_dashstream_fanout_frame(ngx_http_dashstream_rec_t *rec)
{
    u_char                       *p;
    u_char                        json[128];
    size_t                        jlen;
    ngx_http_dashstream_frame_t  *frame;

    jlen = ngx_http_dashstream_dashflow_write_cursor(json, sizeof(json),
                                                     rec->meta.partition,
                                                     rec->meta.offset);

    frame = ngx_http_dashstream_frame_alloc(jlen + rec->meta.payload_len + 20);
    if (frame == NULL) {
        return NULL;
    }

    p = frame->data;
    p += ngx_http_dashstream_wsframe_header(p, NGX_HTTP_DASHSTREAM_WS_OP_TEXT,
                                            jlen);
    p = ngx_cpymem(p, json, jlen);

    frame->cursor_len = p - frame->data;

    p += ngx_http_dashstream_wsframe_header(p,
                                            NGX_HTTP_DASHSTREAM_WS_OP_BINARY,
                                            rec->meta.payload_len);
    p = ngx_cpymem(p, rec->payload, rec->meta.payload_len);

    frame->len = p - frame->data;

    return frame;
}


ngx_http_dashstream_frame_t *
ngx_http_dashstream_frame_alloc(size_t len)
{
    ngx_http_dashstream_frame_t  *frame;

    frame = ngx_alloc(offsetof(ngx_http_dashstream_frame_t, data) + len,
                      ngx_cycle->log);
    if (frame == NULL) {
        return NULL;
    }

    frame->refs = 0;
    frame->len = 0;
    frame->cursor_len = 0;

    return frame;
}


void
ngx_http_dashstream_frame_unref(ngx_http_dashstream_frame_t *frame)
{
    if (--frame->refs == 0) {
        ngx_free(frame);
    }
}


ngx_int_t
ngx_http_dashstream_sub_wants(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_rec_t *rec)
{
    if (sub->closing) {
        return 0;
    }

    if (sub->types && !(sub->types & (1u << (rec->meta.msg_type & 31)))) {
        return 0;
    }

    if (sub->thread.len
        && (sub->thread.len != rec->meta.thread_id_len
            || ngx_memcmp(sub->thread.data, rec->thread_id, sub->thread.len)))
    {
        return 0;
    }

    if (sub->tenant.len
        && (sub->tenant.len != rec->meta.tenant_id_len
            || ngx_memcmp(sub->tenant.data, rec->tenant_id, sub->tenant.len)))
    {
        return 0;
    }

    if (sub->nahead) {
        return ngx_http_dashstream_session_ahead_wants(sub, rec);
    }

    return 1;
}


void
ngx_http_dashstream_sub_dropped(ngx_http_dashstream_sub_t *sub, uint64_t n,
    const char *reason)
{
    ngx_http_dashstream_shctx_t  *sh;

    sh = ngx_http_dashstream_worker.sh;

    sub->dropped += n;

    if (sub->replay) {
        sub->replay->lost += n;
    }

    if (reason[0] == 's') {
        (void) ngx_atomic_fetch_add(&sh->counters.dropped_slow, n);

    } else {
        (void) ngx_atomic_fetch_add(&sh->counters.dropped_overtaken, n);
    }
}


/*
 * A subscriber that is behind reads the ring itself, a bounded number of
 * records at a time, and becomes live when it reaches the worker's cursor.
 */

void
ngx_http_dashstream_sub_pump(ngx_http_dashstream_sub_t *sub)
{
    int                              rc;
    uint64_t                         tail;
    ngx_uint_t                       n, more;
    ngx_connection_t                *c;
    ngx_http_dashstream_rec_t        rec;
    ngx_http_dashstream_worker_t    *w;
    ngx_http_dashstream_frame_t     *frame;

    w = &ngx_http_dashstream_worker;

    if (sub->request == NULL || sub->live || sub->waiting || sub->closing) {
        return;
    }

    /* a new topic's records: the wake-up handler closes it first */

    if (__atomic_load_n(&w->sh->topic_generation, __ATOMIC_ACQUIRE)
        != w->topic_generation)
    {
        return;
    }

    more = 1;

    for (n = 0; n < NGX_HTTP_DASHSTREAM_PUMP_MAX; n++) {

        if (sub->out_bytes >= sub->dlcf->send_budget) {
            break;
        }

        /*
         * Caught up with the writer, not merely with this worker's cursor,
         * which may lag (after a reload the new workers are woken only once
         * the new consumer writes): the worker skips for a live subscriber
         * whatever lies below its next_seq.
         */

        if (sub->next_seq >= ngx_http_dashstream_ring_head(w->ring)) {
            ngx_http_dashstream_fanout_go_live(w, sub);
            break;
        }

        tail = ngx_http_dashstream_ring_tail(w->ring);

        if (sub->next_seq < tail) {
            ngx_http_dashstream_sub_dropped(sub, tail - sub->next_seq,
                                            "overtaken");
            sub->next_seq = tail;
            continue;
        }

        rc = ngx_http_dashstream_ring_read(w->ring, sub->next_seq, w->rec_buf,
                                           w->rec_cap, &rec);
        if (rc == NGX_HTTP_DASHSTREAM_RING_OVERTAKEN) {
            continue;
        }

        sub->next_seq++;

        if (rc != NGX_HTTP_DASHSTREAM_RING_OK
            || (sub->replay
                && !ngx_http_dashstream_session_replay_wants(sub, &rec))
            || !ngx_http_dashstream_sub_wants(sub, &rec))
        {
            continue;
        }

        frame = ngx_http_dashstream_fanout_frame(&rec);
        if (frame == NULL
            || ngx_http_dashstream_fanout_record(sub, frame, frame->data)
               != NGX_OK)
        {
            more = 0;
            break;
        }

        if (sub->replay) {
            ngx_http_dashstream_session_replayed(sub, &rec.meta);
        }
    }

    c = sub->connection;

    ngx_http_dashstream_sub_flush(sub);

    if (c->destroyed) {
        return;
    }

    /*
     * Stopped by the round's bound or by the send budget, with records
     * left: a socket that took everything queued raises no write event,
     * so the pump goes on by itself after this worker's other events.
     * A socket that did not is written again when it is ready, and the
     * write handler pumps on.
     */

    if (more && sub->request && !sub->live && !sub->closing
        && sub->out == NULL)
    {
        ngx_post_event(c->write, &ngx_posted_next_events);
    }
}


void
ngx_http_dashstream_sub_behind(ngx_http_dashstream_sub_t *sub, uint64_t seq)
{
    sub->next_seq = seq;
    sub->live = 0;

    ngx_queue_remove(&sub->queue);
    ngx_queue_insert_tail(&ngx_http_dashstream_worker.behind, &sub->queue);
}


static void
ngx_http_dashstream_fanout_go_live(ngx_http_dashstream_worker_t *w,
    ngx_http_dashstream_sub_t *sub)
{
    sub->live = 1;

    ngx_queue_remove(&sub->queue);
    ngx_queue_insert_tail(&w->live, &sub->queue);

    if (sub->replay) {
        ngx_http_dashstream_session_replay_done(sub);
    }
}


static void
ngx_http_dashstream_fanout_shutdown(ngx_http_dashstream_worker_t *w)
{
    ngx_log_error(NGX_LOG_INFO, w->wake->log, 0,
                  "dashstream: shutting down, closing subscribers with 1001");

    if (ngx_worker == 0) {
        ngx_http_dashstream_consumer_stop((ngx_cycle_t *) ngx_cycle);
    }

    w->exiting = 1;

    ngx_http_dashstream_fanout_close_all(w, "server is shutting down; resume "
                                            "elsewhere");
}


/*
 * The consumer started the ring anew for another topic: the cursors every
 * subscriber holds are the old topic's, so none of them goes on with the
 * new one's records as if they followed.
 */

static ngx_uint_t
ngx_http_dashstream_fanout_topic(ngx_http_dashstream_worker_t *w)
{
    ngx_atomic_uint_t  gen;

    gen = __atomic_load_n(&w->sh->topic_generation, __ATOMIC_ACQUIRE);

    if (gen == w->topic_generation) {
        return 0;
    }

    w->topic_generation = gen;
    w->live_seq = ngx_http_dashstream_ring_head(w->ring);

    ngx_log_error(NGX_LOG_INFO, w->wake->log, 0,
                  "dashstream: the topic changed, closing subscribers "
                  "with 1001");

    ngx_http_dashstream_fanout_close_all(w, "the topic changed; cursors "
                                            "no longer apply");

    return 1;
}


static void
ngx_http_dashstream_fanout_close_all(ngx_http_dashstream_worker_t *w,
    const char *reason)
{
    ngx_uint_t                  i;
    ngx_queue_t                *q, *next, *queues[2];
    ngx_http_dashstream_sub_t  *sub;

    queues[0] = &w->live;
    queues[1] = &w->behind;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = next)
        {
            next = ngx_queue_next(q);
            sub = ngx_queue_data(q, ngx_http_dashstream_sub_t, queue);

            ngx_http_dashstream_sub_close(sub,
                                          NGX_HTTP_DASHSTREAM_WS_CLOSE_GOING_AWAY,
                                          reason);
        }
    }
}
