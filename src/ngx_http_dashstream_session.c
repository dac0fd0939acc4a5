/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_websocket.h"


/*
 * The DashFlow control protocol on top of a subscriber: resume from Kafka
 * cursors (replayed from the ring), cursor_reset, and errors.  Cursors are
 * Kafka offsets, so a client may resume on any replica of a broadcast
 * deployment.
 */


#define NGX_HTTP_DASHSTREAM_JSON_MAX  (NGX_HTTP_DASHSTREAM_MAX_PARTITIONS * 48 \
                                       + 256)


static void ngx_http_dashstream_session_resume(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_dashflow_msg_t *m);
static ngx_int_t ngx_http_dashstream_session_start(
    ngx_http_dashstream_sub_t *sub, ngx_http_dashstream_dashflow_msg_t *m);
static void ngx_http_dashstream_session_reset(ngx_http_dashstream_sub_t *sub);
static void ngx_http_dashstream_session_latest(ngx_http_dashstream_sub_t *sub);
static size_t ngx_http_dashstream_session_offsets(
    ngx_http_dashstream_cursor_t *cur);
static ngx_int_t ngx_http_dashstream_session_cursor(
    ngx_http_dashstream_replay_t *rp, int32_t partition);
static void ngx_http_dashstream_session_stale(ngx_http_dashstream_sub_t *sub,
    ngx_int_t i, int64_t oldest);
static void ngx_http_dashstream_session_error(ngx_http_dashstream_sub_t *sub,
    const char *code, const char *message);
static void ngx_http_dashstream_session_ahead(ngx_http_dashstream_sub_t *sub);
static void ngx_http_dashstream_session_replay_free(
    ngx_http_dashstream_sub_t *sub);
static void ngx_http_dashstream_session_ahead_free(
    ngx_http_dashstream_sub_t *sub);
static int ngx_http_dashstream_session_cmp(const void *a, const void *b);


void
ngx_http_dashstream_session_message(ngx_http_dashstream_sub_t *sub, u_char *p,
    size_t len)
{
    char                                 errmsg[160];
    size_t                               cap;
    const char                          *code;
    ngx_connection_t                    *c;
    ngx_http_dashstream_dashflow_msg_t   m;

    c = sub->connection;
    cap = sub->dlcf->resume_max_partitions;

    ngx_memzero(&m, sizeof(m));

    m.max_cursors = cap;
    m.max_threads = cap;
    m.scratch_len = len + 1;
    m.cursors = ngx_alloc(cap * sizeof(ngx_http_dashstream_cursor_t),
                          sub->connection->log);
    m.threads = ngx_alloc(cap * sizeof(ngx_http_dashstream_thread_cursor_t),
                          sub->connection->log);
    m.scratch = ngx_alloc(m.scratch_len, sub->connection->log);

    if (m.cursors == NULL || m.threads == NULL || m.scratch == NULL) {
        ngx_http_dashstream_session_error(sub, "INTERNAL_ERROR",
                                          "out of memory");
        goto done;
    }

    if (ngx_http_dashstream_dashflow_parse(p, len, &m, &code, errmsg,
                                           sizeof(errmsg))
        != 0)
    {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_dashstream_fanout_sh()->counters.protocol_errors,
                   1);
        ngx_log_error(NGX_LOG_INFO, sub->connection->log, 0,
                      "dashstream: bad client message: %s: %s",
                      code, errmsg);
        ngx_http_dashstream_session_error(sub, code, errmsg);
        goto done;
    }

    if (m.type == NGX_HTTP_DASHSTREAM_MSG_CURSOR_RESET) {
        ngx_http_dashstream_session_reset(sub);

    } else {
        ngx_http_dashstream_session_resume(sub, &m);
    }

done:

    ngx_free(m.cursors);
    ngx_free(m.threads);
    ngx_free(m.scratch);

    /* a resume pumps and flushes, which may have closed the connection */

    if (!c->destroyed) {
        ngx_http_dashstream_sub_flush(sub);
    }
}


void
ngx_http_dashstream_session_earliest(ngx_http_dashstream_sub_t *sub)
{
    ngx_http_dashstream_dashflow_msg_t  m;

    ngx_memzero(&m, sizeof(m));
    m.type = NGX_HTTP_DASHSTREAM_MSG_RESUME;
    m.from = NGX_HTTP_DASHSTREAM_FROM_EARLIEST;

    ngx_http_dashstream_session_resume(sub, &m);
}


static void
ngx_http_dashstream_session_resume(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_dashflow_msg_t *m)
{
    (void) ngx_atomic_fetch_add(
               &ngx_http_dashstream_fanout_sh()->counters.resumes, 1);

    ngx_http_dashstream_session_free(sub);

    if (sub->wait.timer_set) {
        ngx_del_timer(&sub->wait);
    }

    sub->waiting = 0;

    if (m->from == NGX_HTTP_DASHSTREAM_FROM_LATEST) {

        /* nothing to replay: go on from where the subscriber connected */

        ngx_http_dashstream_session_latest(sub);
        ngx_http_dashstream_sub_pump(sub);
        return;
    }

    if (ngx_http_dashstream_session_start(sub, m) != NGX_OK) {
        ngx_http_dashstream_session_error(sub, "INTERNAL_ERROR",
                                          "out of memory");
        return;
    }

    ngx_http_dashstream_sub_behind(sub,
                  ngx_http_dashstream_ring_tail(
                      ngx_http_dashstream_fanout_ring()));

    ngx_http_dashstream_sub_pump(sub);
}


static ngx_int_t
ngx_http_dashstream_session_start(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_dashflow_msg_t *m)
{
    size_t                         i, n, size;
    u_char                        *p;
    ngx_http_dashstream_replay_t  *rp;

    n = (m->mode == NGX_HTTP_DASHSTREAM_MODE_THREAD) ? 0 : m->ncursors;

    if (m->from == NGX_HTTP_DASHSTREAM_FROM_EARLIEST) {
        n = 0;
    }

    size = sizeof(ngx_http_dashstream_replay_t)
           + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS * sizeof(int64_t)
           + n * (sizeof(ngx_http_dashstream_cursor_t) + 2);

    for (i = 0; m->mode == NGX_HTTP_DASHSTREAM_MODE_THREAD
                && i < m->nthreads; i++)
    {
        size += sizeof(ngx_http_dashstream_thread_cursor_t)
                + m->threads[i].len;
    }

    p = ngx_calloc(size, sub->connection->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rp = (ngx_http_dashstream_replay_t *) p;
    p += sizeof(ngx_http_dashstream_replay_t);

    rp->from = m->from;
    rp->last = (int64_t *) p;
    p += NGX_HTTP_DASHSTREAM_MAX_PARTITIONS * sizeof(int64_t);

    rp->cursors = (ngx_http_dashstream_cursor_t *) p;
    rp->ncursors = n;
    ngx_memcpy(rp->cursors, m->cursors, n * sizeof(*rp->cursors));
    p += n * sizeof(ngx_http_dashstream_cursor_t);

    ngx_qsort(rp->cursors, n, sizeof(*rp->cursors),
              ngx_http_dashstream_session_cmp);

    rp->seen = p;
    rp->missing = p + n;
    p += 2 * n;

    if (m->mode == NGX_HTTP_DASHSTREAM_MODE_THREAD) {
        rp->thread_mode = 1;
        rp->threads = (ngx_http_dashstream_thread_cursor_t *) p;
        rp->nthreads = m->nthreads;
        p += m->nthreads * sizeof(ngx_http_dashstream_thread_cursor_t);

        for (i = 0; i < m->nthreads; i++) {
            rp->threads[i].len = m->threads[i].len;
            rp->threads[i].sequence = m->threads[i].sequence;
            rp->threads[i].thread_id = (const char *) p;
            p = ngx_cpymem(p, m->threads[i].thread_id, m->threads[i].len);
        }
    }

    sub->replay = rp;

    return NGX_OK;
}


ngx_int_t
ngx_http_dashstream_session_replay_wants(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_rec_t *rec)
{
    int64_t                          c;
    ngx_int_t                        i;
    ngx_http_dashstream_replay_t    *rp;
    ngx_http_dashstream_rec_meta_t  *meta;

    rp = sub->replay;
    meta = &rec->meta;

    if (rp->thread_mode) {
        for (i = 0; i < (ngx_int_t) rp->nthreads; i++) {
            if (rp->threads[i].len == meta->thread_id_len
                && ngx_memcmp(rp->threads[i].thread_id, rec->thread_id,
                              meta->thread_id_len) == 0)
            {
                return meta->dash_sequence > rp->threads[i].sequence;
            }
        }

        return 0;
    }

    i = ngx_http_dashstream_session_cursor(rp, meta->partition);

    if (i < 0) {
        /* a partition the client has no cursor for: all that is held */
        return 1;
    }

    c = rp->cursors[i].offset;

    /*
     * The first record of a partition tells whether anything between the
     * client's cursor and it was evicted: the writer links each record to
     * the previous offset it wrote for the same partition.
     */

    if (!rp->seen[i]) {
        rp->seen[i] = 1;

        if (meta->offset > c
            && (meta->prev_offset > c
                || (meta->prev_offset == -1 && meta->offset > c + 1)))
        {
            ngx_http_dashstream_session_stale(sub, i, meta->offset);
        }
    }

    return meta->offset > c;
}


void
ngx_http_dashstream_session_replayed(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_rec_meta_t *meta)
{
    sub->replay->replayed++;

    if (meta->partition >= 0
        && meta->partition < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS)
    {
        sub->replay->last[meta->partition] = meta->offset + 1;
    }

    (void) ngx_atomic_fetch_add(
               &ngx_http_dashstream_fanout_sh()->counters.replayed, 1);
}


void
ngx_http_dashstream_session_replay_done(ngx_http_dashstream_sub_t *sub)
{
    u_char                               *buf;
    size_t                                i, n, len;
    int32_t                              *missing, p;
    int64_t                               written;
    ngx_http_dashstream_cursor_t         *last;
    ngx_http_dashstream_replay_t         *rp;
    ngx_http_dashstream_shctx_t          *sh;
    ngx_http_dashstream_replay_summary_t  rs;

    rp = sub->replay;
    sh = ngx_http_dashstream_fanout_sh();

    /* cursors of partitions none of whose records are held any more */

    for (i = 0; i < rp->ncursors; i++) {
        p = rp->cursors[i].partition;
        written = (p < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS)
                  ? (int64_t) sh->part[p].last_written : 0;

        if (!rp->seen[i] && written - 1 > rp->cursors[i].offset) {
            ngx_http_dashstream_session_stale(sub, i, written);
        }
    }

    ngx_http_dashstream_session_ahead(sub);

    buf = ngx_alloc(NGX_HTTP_DASHSTREAM_JSON_MAX
                    + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS
                      * (sizeof(*last) + sizeof(*missing)),
                    sub->connection->log);
    if (buf == NULL) {
        ngx_http_dashstream_session_replay_free(sub);
        return;
    }

    last = (ngx_http_dashstream_cursor_t *) (buf + NGX_HTTP_DASHSTREAM_JSON_MAX);
    missing = (int32_t *) (last + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS);

    for (i = 0, n = 0; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        if (rp->last[i]) {
            last[n].partition = (int32_t) i;
            last[n++].offset = rp->last[i] - 1;
        }
    }

    ngx_memzero(&rs, sizeof(rs));

    rs.total_replayed = rp->replayed;
    rs.last = last;
    rs.nlast = n;
    rs.missing = missing;
    rs.mode = rp->thread_mode ? "thread"
              : rp->from == NGX_HTTP_DASHSTREAM_FROM_EARLIEST ? "earliest"
              : "cursor";

    for (i = 0; i < rp->ncursors; i++) {
        if (rp->missing[i] || rp->lost) {
            missing[rs.nmissing++] = rp->cursors[i].partition;
        }
    }

    for (i = 0; rp->lost && rp->ncursors == 0 && i < n; i++) {
        missing[rs.nmissing++] = last[i].partition;
    }

    len = ngx_http_dashstream_dashflow_write_replay_complete(buf,
                                            NGX_HTTP_DASHSTREAM_JSON_MAX, &rs);

    if (len && sub->protocol == NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW) {
        (void) ngx_http_dashstream_sub_text(sub, buf, len);
    }

    ngx_free(buf);
    ngx_http_dashstream_session_replay_free(sub);
}


/*
 * A client may resume with a cursor this server's ring has not reached
 * yet: it saw those records on another replica, or here before a restart,
 * and this server's consumer is behind.  Nothing of such a partition was
 * replayed; its live records up to the cursor are skipped, once, until
 * the first one past it.  Only cursors below the partition's polled high
 * watermark count: a cursor beyond what Kafka holds names records that do
 * not exist, and filtering on it would silence the partition.
 */

static void
ngx_http_dashstream_session_ahead(ngx_http_dashstream_sub_t *sub)
{
    size_t                         i, n, pass;
    int32_t                        p;
    int64_t                        c, written, hwm;
    ngx_http_dashstream_replay_t  *rp;
    ngx_http_dashstream_shctx_t   *sh;

    rp = sub->replay;
    sh = ngx_http_dashstream_fanout_sh();

    /* the first pass counts, the second fills */

    for (pass = 0, n = 0; pass < 2; pass++) {

        if (pass == 1) {
            if (n == 0) {
                return;
            }

            sub->ahead = ngx_alloc(n * sizeof(ngx_http_dashstream_cursor_t),
                                   sub->connection->log);
            if (sub->ahead == NULL) {
                return;
            }

            n = 0;
        }

        for (i = 0; i < rp->ncursors; i++) {
            p = rp->cursors[i].partition;
            c = rp->cursors[i].offset;

            if (p < 0 || p >= NGX_HTTP_DASHSTREAM_MAX_PARTITIONS
                || rp->last[p])
            {
                continue;
            }

            written = (int64_t) sh->part[p].last_written;   /* offset + 1 */
            hwm = (int64_t) sh->part[p].high_watermark - 1; /* next offset */

            if (c >= written && c < hwm) {
                if (pass == 1) {
                    sub->ahead[n] = rp->cursors[i];
                }

                n++;
            }
        }
    }

    sub->nahead = n;
}


ngx_int_t
ngx_http_dashstream_session_ahead_wants(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_rec_t *rec)
{
    ngx_uint_t  i;

    for (i = 0; i < sub->nahead; i++) {
        if (sub->ahead[i].partition != rec->meta.partition) {
            continue;
        }

        if (rec->meta.offset <= sub->ahead[i].offset) {
            return 0;
        }

        /* past the cursor: this partition is live again */

        sub->ahead[i] = sub->ahead[--sub->nahead];

        if (sub->nahead == 0) {
            ngx_free(sub->ahead);
            sub->ahead = NULL;
        }

        return 1;
    }

    return 1;
}


void
ngx_http_dashstream_session_free(ngx_http_dashstream_sub_t *sub)
{
    ngx_http_dashstream_session_replay_free(sub);
    ngx_http_dashstream_session_ahead_free(sub);
}


static void
ngx_http_dashstream_session_ahead_free(ngx_http_dashstream_sub_t *sub)
{
    if (sub->ahead) {
        ngx_free(sub->ahead);
        sub->ahead = NULL;
        sub->nahead = 0;
    }
}


static void
ngx_http_dashstream_session_replay_free(ngx_http_dashstream_sub_t *sub)
{
    if (sub->replay) {
        ngx_free(sub->replay);
        sub->replay = NULL;
    }
}


static void
ngx_http_dashstream_session_reset(ngx_http_dashstream_sub_t *sub)
{
    u_char                        *buf;
    size_t                         n, len;
    ngx_http_dashstream_cursor_t  *cur;

    /* the client's cursors become the latest: none of its old ones counts */

    ngx_http_dashstream_session_ahead_free(sub);

    buf = ngx_alloc(NGX_HTTP_DASHSTREAM_JSON_MAX
                    + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS * sizeof(*cur),
                    sub->connection->log);
    if (buf == NULL) {
        return;
    }

    cur = (ngx_http_dashstream_cursor_t *) (buf + NGX_HTTP_DASHSTREAM_JSON_MAX);
    n = ngx_http_dashstream_session_offsets(cur);

    len = ngx_http_dashstream_dashflow_write_cursor_reset_complete(buf,
                                       NGX_HTTP_DASHSTREAM_JSON_MAX, cur, n);
    if (len) {
        (void) ngx_http_dashstream_sub_text(sub, buf, len);
    }

    ngx_free(buf);
}


static void
ngx_http_dashstream_session_latest(ngx_http_dashstream_sub_t *sub)
{
    u_char                               *buf;
    size_t                                len;
    ngx_http_dashstream_cursor_t         *cur;
    ngx_http_dashstream_replay_summary_t  rs;

    buf = ngx_alloc(NGX_HTTP_DASHSTREAM_JSON_MAX
                    + NGX_HTTP_DASHSTREAM_MAX_PARTITIONS * sizeof(*cur),
                    sub->connection->log);
    if (buf == NULL) {
        return;
    }

    cur = (ngx_http_dashstream_cursor_t *) (buf + NGX_HTTP_DASHSTREAM_JSON_MAX);

    ngx_memzero(&rs, sizeof(rs));
    rs.last = cur;
    rs.nlast = ngx_http_dashstream_session_offsets(cur);
    rs.mode = "latest";

    len = ngx_http_dashstream_dashflow_write_replay_complete(buf,
                                            NGX_HTTP_DASHSTREAM_JSON_MAX, &rs);
    if (len) {
        (void) ngx_http_dashstream_sub_text(sub, buf, len);
    }

    ngx_free(buf);
}


/* the last offset written to the ring for every partition that has one */

static size_t
ngx_http_dashstream_session_offsets(ngx_http_dashstream_cursor_t *cur)
{
    size_t                        i, n;
    ngx_atomic_uint_t             written;
    ngx_http_dashstream_shctx_t  *sh;

    sh = ngx_http_dashstream_fanout_sh();

    for (i = 0, n = 0; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        written = sh->part[i].last_written;

        if (written) {
            cur[n].partition = (int32_t) i;
            cur[n++].offset = (int64_t) written - 1;
        }
    }

    return n;
}


static ngx_int_t
ngx_http_dashstream_session_cursor(ngx_http_dashstream_replay_t *rp,
    int32_t partition)
{
    ngx_int_t  lo, hi, mid;

    lo = 0;
    hi = (ngx_int_t) rp->ncursors - 1;

    while (lo <= hi) {
        mid = (lo + hi) / 2;

        if (rp->cursors[mid].partition == partition) {
            return mid;
        }

        if (rp->cursors[mid].partition < partition) {
            lo = mid + 1;

        } else {
            hi = mid - 1;
        }
    }

    return -1;
}


static void
ngx_http_dashstream_session_stale(ngx_http_dashstream_sub_t *sub, ngx_int_t i,
    int64_t oldest)
{
    u_char                         buf[256];
    size_t                         len;
    ngx_http_dashstream_replay_t  *rp;

    rp = sub->replay;
    rp->missing[i] = 1;

    if (sub->protocol != NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW) {
        return;
    }

    len = ngx_http_dashstream_dashflow_write_cursor_stale(buf, sizeof(buf),
              rp->cursors[i].partition, rp->cursors[i].offset, oldest,
              "the server no longer holds every message after this cursor; "
              "state may be incomplete");
    if (len) {
        (void) ngx_http_dashstream_sub_text(sub, buf, len);
    }
}


static void
ngx_http_dashstream_session_error(ngx_http_dashstream_sub_t *sub,
    const char *code, const char *message)
{
    u_char  buf[512];
    size_t  len;

    len = ngx_http_dashstream_dashflow_write_error(buf, sizeof(buf), code,
                                                   message);
    if (len) {
        (void) ngx_http_dashstream_sub_text(sub, buf, len);
    }
}


static int
ngx_http_dashstream_session_cmp(const void *a, const void *b)
{
    const ngx_http_dashstream_cursor_t  *x = a, *y = b;

    return (x->partition > y->partition) - (x->partition < y->partition);
}
