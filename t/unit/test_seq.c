/*
 * Copyright (C) ngx_dashstream authors
 */


#include "unit.h"

#include "ngx_http_dashstream_seq.h"


#define OBS(t, id, seq, m)                                                   \
    ngx_http_dashstream_seq_observe(t, id, strlen(id), seq, m)


static ngx_http_dashstream_seq_t *
seq_new(uint32_t capacity)
{
    void  *mem;

    mem = malloc(ngx_http_dashstream_seq_mem_size(capacity));
    if (mem == NULL) {
        return NULL;
    }

    return ngx_http_dashstream_seq_init(mem, capacity);
}


UNIT_TEST(t_in_order)
{
    uint64_t                    m;
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(4);
    CHECK(t != NULL);

    CHECK_EQ_INT(OBS(t, "a", 1, &m), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(t->threads, 1);
    CHECK_EQ_INT(OBS(t, "a", 2, &m), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_U64(m, 0);
    CHECK_EQ_INT(OBS(t, "a", 3, &m), NGX_HTTP_DASHSTREAM_SEQ_OK);

    /* a thread first seen mid-stream is not a gap */
    CHECK_EQ_INT(OBS(t, "b", 1000, &m), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_U64(m, 0);
    CHECK_EQ_INT(OBS(t, "b", 1001, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_INT(OBS(t, "a", 4, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);

    CHECK_EQ_INT(t->threads, 2);
    CHECK_EQ_U64(t->gaps, 0);
    CHECK_EQ_U64(t->missing, 0);
    CHECK_EQ_U64(t->duplicates, 0);
    CHECK_EQ_U64(t->reorders, 0);
    CHECK_EQ_U64(t->evictions, 0);
    CHECK_EQ_U64(t->skipped, 0);

    free(t);
}


UNIT_TEST(t_gap)
{
    uint64_t                    m;
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(4);

    CHECK_EQ_INT(OBS(t, "a", 1, &m), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(OBS(t, "a", 5, &m), NGX_HTTP_DASHSTREAM_SEQ_GAP);
    CHECK_EQ_U64(m, 3);
    CHECK_EQ_INT(OBS(t, "a", 6, &m), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_U64(m, 0);
    CHECK_EQ_INT(OBS(t, "a", 10, &m), NGX_HTTP_DASHSTREAM_SEQ_GAP);
    CHECK_EQ_U64(m, 3);
    CHECK_EQ_INT(OBS(t, "a", 12, NULL), NGX_HTTP_DASHSTREAM_SEQ_GAP);

    CHECK_EQ_U64(t->gaps, 3);
    CHECK_EQ_U64(t->missing, 7);
    CHECK_EQ_U64(t->duplicates, 0);
    CHECK_EQ_U64(t->reorders, 0);

    /* the largest possible jump */
    CHECK_EQ_INT(OBS(t, "z", 1, &m), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(OBS(t, "z", UINT64_MAX, &m), NGX_HTTP_DASHSTREAM_SEQ_GAP);
    CHECK_EQ_U64(m, UINT64_MAX - 2);
    CHECK_EQ_INT(OBS(t, "z", UINT64_MAX, &m),
                 NGX_HTTP_DASHSTREAM_SEQ_DUPLICATE);

    free(t);
}


UNIT_TEST(t_duplicate)
{
    uint64_t                    m;
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(4);

    OBS(t, "a", 1, NULL);
    OBS(t, "a", 2, NULL);

    m = 99;
    CHECK_EQ_INT(OBS(t, "a", 2, &m), NGX_HTTP_DASHSTREAM_SEQ_DUPLICATE);
    CHECK_EQ_U64(m, 0);
    CHECK_EQ_INT(OBS(t, "a", 2, &m), NGX_HTTP_DASHSTREAM_SEQ_DUPLICATE);
    CHECK_EQ_INT(OBS(t, "a", 3, &m), NGX_HTTP_DASHSTREAM_SEQ_OK);

    CHECK_EQ_U64(t->duplicates, 2);
    CHECK_EQ_U64(t->gaps, 0);
    CHECK_EQ_U64(t->reorders, 0);

    free(t);
}


UNIT_TEST(t_reorder)
{
    uint64_t                    m;
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(4);

    OBS(t, "a", 1, NULL);
    OBS(t, "a", 2, NULL);

    CHECK_EQ_INT(OBS(t, "a", 4, &m), NGX_HTTP_DASHSTREAM_SEQ_GAP);
    CHECK_EQ_U64(m, 1);
    CHECK_EQ_INT(OBS(t, "a", 3, &m), NGX_HTTP_DASHSTREAM_SEQ_REORDER);
    CHECK_EQ_U64(m, 0);

    /* the late message does not lower the mark: 5 follows 4 */
    CHECK_EQ_INT(OBS(t, "a", 5, &m), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_INT(OBS(t, "a", 1, &m), NGX_HTTP_DASHSTREAM_SEQ_REORDER);
    CHECK_EQ_INT(OBS(t, "a", 6, &m), NGX_HTTP_DASHSTREAM_SEQ_OK);

    CHECK_EQ_U64(t->reorders, 2);
    CHECK_EQ_U64(t->gaps, 1);
    CHECK_EQ_U64(t->missing, 1);
    CHECK_EQ_U64(t->duplicates, 0);

    free(t);
}


UNIT_TEST(t_unset)
{
    uint64_t                    m;
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(4);

    m = 99;
    CHECK_EQ_INT(OBS(t, "a", 0, &m), NGX_HTTP_DASHSTREAM_SEQ_SKIPPED);
    CHECK_EQ_U64(m, 0);
    CHECK_EQ_INT(t->threads, 0);
    CHECK_EQ_U64(t->skipped, 1);

    CHECK_EQ_INT(OBS(t, "a", 5, &m), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(OBS(t, "a", 0, &m), NGX_HTTP_DASHSTREAM_SEQ_SKIPPED);
    CHECK_EQ_INT(OBS(t, "a", 6, &m), NGX_HTTP_DASHSTREAM_SEQ_OK);

    CHECK_EQ_U64(t->skipped, 2);
    CHECK_EQ_U64(t->gaps + t->duplicates + t->reorders, 0);

    free(t);
}


UNIT_TEST(t_thread_ids)
{
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(8);

    /* ids are compared by their bytes, NUL included */

    CHECK_EQ_INT(ngx_http_dashstream_seq_observe(t, "a\0b", 3, 1, NULL),
                 NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(ngx_http_dashstream_seq_observe(t, "a\0c", 3, 7, NULL),
                 NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(ngx_http_dashstream_seq_observe(t, "a", 1, 3, NULL),
                 NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(ngx_http_dashstream_seq_observe(t, "", 0, 3, NULL),
                 NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(ngx_http_dashstream_seq_observe(t, "a\0b", 3, 2, NULL),
                 NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_INT(ngx_http_dashstream_seq_observe(t, "", 0, 4, NULL),
                 NGX_HTTP_DASHSTREAM_SEQ_OK);

    CHECK_EQ_INT(t->threads, 4);

    free(t);
}


UNIT_TEST(t_eviction_lru)
{
    uint64_t                    m;
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(3);

    OBS(t, "a", 1, NULL);
    OBS(t, "b", 1, NULL);
    OBS(t, "c", 1, NULL);
    CHECK_EQ_INT(t->threads, 3);
    CHECK_EQ_U64(t->evictions, 0);

    /* recency a, c, b: a duplicate counts as use too */
    CHECK_EQ_INT(OBS(t, "a", 1, NULL), NGX_HTTP_DASHSTREAM_SEQ_DUPLICATE);

    CHECK_EQ_INT(OBS(t, "d", 1, NULL), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_U64(t->evictions, 1);
    CHECK_EQ_INT(t->threads, 3);

    /* b was evicted, a and c were kept */
    CHECK_EQ_INT(OBS(t, "a", 2, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_INT(OBS(t, "c", 2, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_U64(t->evictions, 1);

    /* recency c, a, d: b starts fresh, no false gap; d goes */
    m = 99;
    CHECK_EQ_INT(OBS(t, "b", 50, &m), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_U64(m, 0);
    CHECK_EQ_U64(t->evictions, 2);

    CHECK_EQ_INT(OBS(t, "c", 3, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_INT(OBS(t, "b", 51, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);

    /* recency b, c, a */
    CHECK_EQ_INT(OBS(t, "d", 9, NULL), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_U64(t->evictions, 3);
    CHECK_EQ_INT(OBS(t, "a", 9, NULL), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_U64(t->evictions, 4);
    CHECK_EQ_INT(OBS(t, "d", 10, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);

    CHECK_EQ_U64(t->gaps, 0);
    CHECK_EQ_U64(t->missing, 0);
    CHECK_EQ_U64(t->reorders, 0);
    CHECK_EQ_U64(t->duplicates, 1);
    CHECK_EQ_INT(t->threads, 3);

    free(t);
}


UNIT_TEST(t_capacity_one)
{
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(1);

    CHECK_EQ_INT(OBS(t, "a", 1, NULL), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(OBS(t, "a", 2, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_INT(OBS(t, "b", 1, NULL), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(OBS(t, "a", 3, NULL), NGX_HTTP_DASHSTREAM_SEQ_FIRST);
    CHECK_EQ_INT(OBS(t, "a", 4, NULL), NGX_HTTP_DASHSTREAM_SEQ_OK);
    CHECK_EQ_U64(t->evictions, 2);
    CHECK_EQ_INT(t->threads, 1);

    free(t);
}


UNIT_TEST(t_mem_size)
{
    char                        mem[512];
    uint64_t                    aligned[64];
    ngx_http_dashstream_seq_t  *t;

    CHECK_EQ_U64(ngx_http_dashstream_seq_mem_size(0), 0);
    CHECK_EQ_U64(ngx_http_dashstream_seq_mem_size(
                     NGX_HTTP_DASHSTREAM_SEQ_MAX_CAPACITY + 1), 0);

    /* 4 threads take 8 slots of 24 bytes */
    CHECK_EQ_U64(ngx_http_dashstream_seq_mem_size(4),
                 sizeof(ngx_http_dashstream_seq_t)
                 + 8 * sizeof(ngx_http_dashstream_seq_entry_t));
    CHECK_EQ_U64(sizeof(ngx_http_dashstream_seq_entry_t), 24);
    CHECK(ngx_http_dashstream_seq_mem_size(5)
          == ngx_http_dashstream_seq_mem_size(8));
    CHECK(ngx_http_dashstream_seq_mem_size(9)
          > ngx_http_dashstream_seq_mem_size(8));
    CHECK(ngx_http_dashstream_seq_mem_size(
              NGX_HTTP_DASHSTREAM_SEQ_MAX_CAPACITY) > 0);

    CHECK(ngx_http_dashstream_seq_init(NULL, 4) == NULL);
    CHECK(ngx_http_dashstream_seq_init(aligned, 0) == NULL);
    CHECK(ngx_http_dashstream_seq_init(mem + 1, 2) == NULL);

    CHECK(ngx_http_dashstream_seq_mem_size(4) <= sizeof(aligned));
    t = ngx_http_dashstream_seq_init(aligned, 4);
    CHECK(t != NULL && (void *) t == (void *) aligned);
    CHECK_EQ_INT(t->capacity, 4);
}


/*
 * The table against a plain model: a list of (id, last, last use) with
 * a linear search for the least recently used.
 */

typedef struct {
    int       id;
    uint64_t  last;
    uint64_t  used;
} model_entry_t;


static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}


static int
model_observe(model_entry_t *m, uint32_t *n, uint32_t cap, int id,
    uint64_t seq, uint64_t tick, uint64_t *missing)
{
    uint32_t  i, lru;

    *missing = 0;

    if (seq == 0) {
        return NGX_HTTP_DASHSTREAM_SEQ_SKIPPED;
    }

    for (i = 0; i < *n; i++) {
        if (m[i].id == id) {
            break;
        }
    }

    if (i == *n) {
        if (*n == cap) {
            lru = 0;
            for (i = 1; i < *n; i++) {
                if (m[i].used < m[lru].used) {
                    lru = i;
                }
            }
            m[lru] = m[--*n];
        }

        m[*n].id = id;
        m[*n].last = seq;
        m[*n].used = tick;
        (*n)++;
        return NGX_HTTP_DASHSTREAM_SEQ_FIRST;
    }

    m[i].used = tick;

    if (seq == m[i].last) {
        return NGX_HTTP_DASHSTREAM_SEQ_DUPLICATE;
    }

    if (seq < m[i].last) {
        return NGX_HTTP_DASHSTREAM_SEQ_REORDER;
    }

    *missing = seq - m[i].last - 1;
    m[i].last = seq;

    return *missing ? NGX_HTTP_DASHSTREAM_SEQ_GAP : NGX_HTTP_DASHSTREAM_SEQ_OK;
}


static void
model_run(uint32_t cap, int nids, int ops, uint64_t seed)
{
    int                         id, rc, mrc, mism;
    char                        name[32];
    uint32_t                    n;
    uint64_t                    seq, r, miss, mmiss, gaps, evictions;
    uint64_t                    next[512];
    model_entry_t              *model;
    ngx_http_dashstream_seq_t  *t;

    t = seq_new(cap);
    model = calloc(cap, sizeof(model_entry_t));
    n = 0;
    mism = 0;
    gaps = 0;
    evictions = 0;

    for (id = 0; id < nids; id++) {
        next[id] = 1;
    }

    for (r = 1; r <= (uint64_t) ops; r++) {
        id = xorshift(&seed) % nids;

        switch (xorshift(&seed) % 8) {

        case 0:
            seq = next[id] + xorshift(&seed) % 5;
            break;

        case 1:
            seq = next[id] > 1 ? next[id] - 1 : 1;
            break;

        case 2:
            seq = next[id] > 3 ? next[id] - 3 : 1;
            break;

        case 3:
            seq = 0;
            break;

        default:
            seq = next[id];
        }

        if (seq >= next[id]) {
            next[id] = seq + 1;
        }

        snprintf(name, sizeof(name), "thread-%d", id);

        rc = OBS(t, name, seq, &miss);

        if (n == cap && rc == NGX_HTTP_DASHSTREAM_SEQ_FIRST) {
            evictions++;
        }

        mrc = model_observe(model, &n, cap, id, seq, r, &mmiss);

        if (rc != mrc || miss != mmiss) {
            mism++;
        }

        gaps += (mrc == NGX_HTTP_DASHSTREAM_SEQ_GAP);
    }

    CHECK_EQ_INT(mism, 0);
    CHECK_EQ_INT(t->threads, n);
    CHECK_EQ_U64(t->gaps, gaps);
    CHECK_EQ_U64(t->evictions, evictions);
    CHECK(cap >= (uint32_t) nids || t->evictions > 0);

    free(model);
    free(t);
}


UNIT_TEST(t_model)
{
    model_run(1, 3, 2000, 1);
    model_run(3, 8, 20000, 2);
    model_run(16, 64, 50000, 3);
    model_run(100, 130, 50000, 4);
    model_run(200, 150, 20000, 5);
    model_run(250, 500, 100000, 6);
}


UNIT_MAIN("seq",
    UNIT_CASE(t_in_order),
    UNIT_CASE(t_gap),
    UNIT_CASE(t_duplicate),
    UNIT_CASE(t_reorder),
    UNIT_CASE(t_unset),
    UNIT_CASE(t_thread_ids),
    UNIT_CASE(t_eviction_lru),
    UNIT_CASE(t_capacity_one),
    UNIT_CASE(t_mem_size),
    UNIT_CASE(t_model))
