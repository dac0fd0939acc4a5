/*
 * Copyright (C) ngx_dashstream authors
 */


#include <string.h>

#include "ngx_http_dashstream_seq.h"


#define NGX_HTTP_DASHSTREAM_SEQ_NIL       UINT32_MAX

#define NGX_HTTP_DASHSTREAM_FNV_OFFSET    0xcbf29ce484222325ULL
#define NGX_HTTP_DASHSTREAM_FNV_PRIME     0x00000100000001b3ULL

/* 2^64 / golden ratio: spreads FNV-1a's weak low bits over the index */
#define NGX_HTTP_DASHSTREAM_SEQ_FIB       0x9e3779b97f4a7c15ULL


static uint32_t ngx_http_dashstream_seq_nslots(uint32_t capacity,
    uint32_t *bits);
static uint64_t ngx_http_dashstream_seq_hash(const char *s, size_t len);
static uint32_t ngx_http_dashstream_seq_home(ngx_http_dashstream_seq_t *t,
    uint64_t hash);
static uint32_t ngx_http_dashstream_seq_find(ngx_http_dashstream_seq_t *t,
    uint64_t hash);
static void ngx_http_dashstream_seq_insert(ngx_http_dashstream_seq_t *t,
    uint64_t hash, uint64_t seq);
static void ngx_http_dashstream_seq_evict(ngx_http_dashstream_seq_t *t);
static void ngx_http_dashstream_seq_link(ngx_http_dashstream_seq_t *t,
    uint32_t i);
static void ngx_http_dashstream_seq_unlink(ngx_http_dashstream_seq_t *t,
    uint32_t i);
static void ngx_http_dashstream_seq_move(ngx_http_dashstream_seq_t *t,
    uint32_t from, uint32_t to);


size_t
ngx_http_dashstream_seq_mem_size(uint32_t capacity)
{
    uint32_t  bits;

    if (capacity == 0 || capacity > NGX_HTTP_DASHSTREAM_SEQ_MAX_CAPACITY) {
        return 0;
    }

    return sizeof(ngx_http_dashstream_seq_t)
           + (size_t) ngx_http_dashstream_seq_nslots(capacity, &bits)
             * sizeof(ngx_http_dashstream_seq_entry_t);
}


ngx_http_dashstream_seq_t *
ngx_http_dashstream_seq_init(void *mem, uint32_t capacity)
{
    size_t                      size;
    uint32_t                    bits, n;
    ngx_http_dashstream_seq_t  *t;

    size = ngx_http_dashstream_seq_mem_size(capacity);

    if (mem == NULL || size == 0 || ((uintptr_t) mem & 7)) {
        return NULL;
    }

    memset(mem, 0, size);

    n = ngx_http_dashstream_seq_nslots(capacity, &bits);

    t = mem;
    t->capacity = capacity;
    t->mask = n - 1;
    t->shift = 64 - bits;
    t->head = NGX_HTTP_DASHSTREAM_SEQ_NIL;
    t->tail = NGX_HTTP_DASHSTREAM_SEQ_NIL;
    t->slots = (ngx_http_dashstream_seq_entry_t *) (t + 1);

    return t;
}


int
ngx_http_dashstream_seq_observe(ngx_http_dashstream_seq_t *t,
    const char *thread_id, size_t len, uint64_t seq, uint64_t *missing)
{
    uint32_t                          i;
    uint64_t                          hash, n;
    ngx_http_dashstream_seq_entry_t  *e;

    if (missing) {
        *missing = 0;
    }

    if (seq == 0) {
        t->skipped++;
        return NGX_HTTP_DASHSTREAM_SEQ_SKIPPED;
    }

    hash = ngx_http_dashstream_seq_hash(thread_id, len);
    i = ngx_http_dashstream_seq_find(t, hash);
    e = &t->slots[i];

    if (e->hash == 0) {
        ngx_http_dashstream_seq_insert(t, hash, seq);
        return NGX_HTTP_DASHSTREAM_SEQ_FIRST;
    }

    if (t->head != i) {
        ngx_http_dashstream_seq_unlink(t, i);
        ngx_http_dashstream_seq_link(t, i);
    }

    if (seq == e->last) {
        t->duplicates++;
        return NGX_HTTP_DASHSTREAM_SEQ_DUPLICATE;
    }

    if (seq < e->last) {
        t->reorders++;
        return NGX_HTTP_DASHSTREAM_SEQ_REORDER;
    }

    n = seq - e->last - 1;
    e->last = seq;

    if (n == 0) {
        return NGX_HTTP_DASHSTREAM_SEQ_OK;
    }

    t->gaps++;
    t->missing += n;

    if (missing) {
        *missing = n;
    }

    return NGX_HTTP_DASHSTREAM_SEQ_GAP;
}


static uint32_t
ngx_http_dashstream_seq_nslots(uint32_t capacity, uint32_t *bits)
{
    uint32_t  n;

    /* at most half full keeps linear probes short */

    n = 2;
    *bits = 1;

    while (n < (uint64_t) capacity * 2) {
        n <<= 1;
        (*bits)++;
    }

    return n;
}


static uint64_t
ngx_http_dashstream_seq_hash(const char *s, size_t len)
{
    size_t    i;
    uint64_t  h;

    h = NGX_HTTP_DASHSTREAM_FNV_OFFSET;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) s[i];
        h *= NGX_HTTP_DASHSTREAM_FNV_PRIME;
    }

    return h ? h : 1;
}


static uint32_t
ngx_http_dashstream_seq_home(ngx_http_dashstream_seq_t *t, uint64_t hash)
{
    return (uint32_t) ((hash * NGX_HTTP_DASHSTREAM_SEQ_FIB) >> t->shift);
}


static uint32_t
ngx_http_dashstream_seq_find(ngx_http_dashstream_seq_t *t, uint64_t hash)
{
    uint32_t  i;

    i = ngx_http_dashstream_seq_home(t, hash);

    while (t->slots[i].hash != 0 && t->slots[i].hash != hash) {
        i = (i + 1) & t->mask;
    }

    return i;
}


static void
ngx_http_dashstream_seq_insert(ngx_http_dashstream_seq_t *t, uint64_t hash,
    uint64_t seq)
{
    uint32_t  i;

    if (t->threads == t->capacity) {
        ngx_http_dashstream_seq_evict(t);
    }

    /* eviction may have shifted the probe sequence: search again */

    i = ngx_http_dashstream_seq_find(t, hash);

    t->slots[i].hash = hash;
    t->slots[i].last = seq;
    t->threads++;

    ngx_http_dashstream_seq_link(t, i);
}


/*
 * Removes the least recently used entry with backward-shift deletion:
 * each later entry of the probe run moves into the hole unless its home
 * slot lies cyclically after the hole, so no tombstones are needed.
 */

static void
ngx_http_dashstream_seq_evict(ngx_http_dashstream_seq_t *t)
{
    uint32_t  hole, j, home;

    hole = t->tail;

    ngx_http_dashstream_seq_unlink(t, hole);
    t->threads--;
    t->evictions++;

    j = hole;

    for ( ;; ) {
        j = (j + 1) & t->mask;

        if (t->slots[j].hash == 0) {
            break;
        }

        home = ngx_http_dashstream_seq_home(t, t->slots[j].hash);

        if (j > hole ? (home <= hole || home > j)
                     : (home <= hole && home > j))
        {
            ngx_http_dashstream_seq_move(t, j, hole);
            hole = j;
        }
    }

    t->slots[hole].hash = 0;
}


static void
ngx_http_dashstream_seq_link(ngx_http_dashstream_seq_t *t, uint32_t i)
{
    t->slots[i].prev = NGX_HTTP_DASHSTREAM_SEQ_NIL;
    t->slots[i].next = t->head;

    if (t->head != NGX_HTTP_DASHSTREAM_SEQ_NIL) {
        t->slots[t->head].prev = i;

    } else {
        t->tail = i;
    }

    t->head = i;
}


static void
ngx_http_dashstream_seq_unlink(ngx_http_dashstream_seq_t *t, uint32_t i)
{
    ngx_http_dashstream_seq_entry_t  *e;

    e = &t->slots[i];

    if (e->prev != NGX_HTTP_DASHSTREAM_SEQ_NIL) {
        t->slots[e->prev].next = e->next;

    } else {
        t->head = e->next;
    }

    if (e->next != NGX_HTTP_DASHSTREAM_SEQ_NIL) {
        t->slots[e->next].prev = e->prev;

    } else {
        t->tail = e->prev;
    }
}


static void
ngx_http_dashstream_seq_move(ngx_http_dashstream_seq_t *t, uint32_t from,
    uint32_t to)
{
    ngx_http_dashstream_seq_entry_t  *e;

    t->slots[to] = t->slots[from];
    e = &t->slots[to];

    if (e->prev != NGX_HTTP_DASHSTREAM_SEQ_NIL) {
        t->slots[e->prev].next = to;

    } else {
        t->head = to;
    }

    if (e->next != NGX_HTTP_DASHSTREAM_SEQ_NIL) {
        t->slots[e->next].prev = to;

    } else {
        t->tail = to;
    }
}
