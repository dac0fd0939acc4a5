/*
 * Copyright (C) ngx_dashstream authors
 */


#include <string.h>

#include "ngx_http_dashstream_ring.h"


/*
 * The block; every position is an offset from the header:
 *
 *   +--------+--------------------+--------------------------------------+
 *   | header | slot[nslots]       | data[data_size]                      |
 *   +--------+--------------------+--------------------------------------+
 *              slot = {pos, len}    record of seq s at slot[s & mask].pos
 *                                   % data_size
 *
 * pos is a logical byte position that only grows.  A record never crosses
 * the end of the data area: one that would is put at the start of the next
 * lap and the rest of the lap stays unused.  A record, in 64-bit words:
 *
 *    0      1        2        3       4        5        6         7
 *   +------+--------+--------+-------+--------+--------+---------+--------+
 *   | seq  | offset | prev   | kafka | prod.  | dash   | part.   | type,  |
 *   |      |        | offset | ts_ms | ts_us  | seq    | paylen  | lens   |
 *   +------+--------+--------+-------+--------+--------+---------+--------+
 *   | thread_id | tenant_id | payload                     | zero pad to 8 |
 *   +---------------------------------------------------------------------+
 *
 * Word 6 is partition | payload_len << 32, word 7 is msg_type | flags << 8
 * | thread_id_len << 16 | tenant_id_len << 24: no struct padding is stored.
 *
 * Concurrency is a seqlock on "tail": before the writer touches bytes or
 * a slot that belong to a record, it has moved tail past that record.
 *
 *   writer, seq s                       reader of seq r
 *   tail = t' (t' > every evicted r)    r >= head (acquire)? NOT_YET
 *   release fence                       r < tail?            OVERTAKEN
 *   store slot and record words         load slot and record words
 *   head = s + 1 (release)              acquire fence
 *                                       r < tail?            OVERTAKEN
 *
 * If the reader loaded any word stored after the writer's fence, the two
 * fences synchronize and the second load of tail returns t' or later.
 * Shared words are only accessed through relaxed atomics, so a racing copy
 * is merely stale, never undefined.
 */


#define NGX_HTTP_DASHSTREAM_RING_MAGIC    0x474e495252545344ULL
#define NGX_HTTP_DASHSTREAM_RING_VERSION  1
#define NGX_HTTP_DASHSTREAM_RING_ALIGN    64

#define ngx_http_dashstream_ring_load(p)                                      \
    __atomic_load_n(p, __ATOMIC_RELAXED)
#define ngx_http_dashstream_ring_store(p, v)                                  \
    __atomic_store_n(p, v, __ATOMIC_RELAXED)
#define ngx_http_dashstream_ring_align(n, a)                                  \
    (((n) + ((a) - 1)) & ~((uint64_t) (a) - 1))


struct ngx_http_dashstream_ring_s {
    uint64_t   magic;
    uint32_t   version;
    uint32_t   header_size;
    uint32_t   slot_size;
    uint32_t   rec_header_size;
    uint32_t   nslots;
    uint32_t   reserved;
    uint64_t   size;
    uint64_t   data_size;
    uint64_t   slots_off;
    uint64_t   data_off;

    /* the writer's: off the first 64 bytes, which only ever get read */
    uint64_t   head;
    uint64_t   wpos;
    uint64_t   tail;
    uint64_t   tail_pos;
    uint64_t   overwrites;
    uint64_t   spare[3];
};


typedef struct {
    uint64_t   pos;
    uint64_t   len;
} ngx_http_dashstream_ring_slot_t;


typedef struct {
    uint64_t  *dst;
    uint64_t   word;
    size_t     fill;
} ngx_http_dashstream_ring_cursor_t;


static int ngx_http_dashstream_ring_valid_nslots(uint32_t nslots);
static uint64_t ngx_http_dashstream_ring_data_off(uint32_t nslots);
static ngx_http_dashstream_ring_slot_t *ngx_http_dashstream_ring_slots(
    ngx_http_dashstream_ring_t *ring);
static uint64_t *ngx_http_dashstream_ring_data(
    ngx_http_dashstream_ring_t *ring, uint64_t pos);
static void ngx_http_dashstream_ring_evict(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, uint64_t pos, uint64_t end);
static void ngx_http_dashstream_ring_put(ngx_http_dashstream_ring_cursor_t *c,
    const unsigned char *p, size_t n);
static void ngx_http_dashstream_ring_flush(
    ngx_http_dashstream_ring_cursor_t *c);
static void ngx_http_dashstream_ring_write(uint64_t *dst, uint64_t seq,
    const ngx_http_dashstream_rec_meta_t *meta, const unsigned char *thread_id,
    const unsigned char *tenant_id, const unsigned char *payload);
static void ngx_http_dashstream_ring_decode(const uint64_t *src,
    ngx_http_dashstream_rec_meta_t *meta);
static void ngx_http_dashstream_ring_copy(unsigned char *dst,
    const uint64_t *src, size_t n);
static int ngx_http_dashstream_ring_fetch(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, ngx_http_dashstream_rec_meta_t *meta, unsigned char *buf,
    size_t cap, ngx_http_dashstream_rec_t *rec);
static int ngx_http_dashstream_ring_load_rec(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, ngx_http_dashstream_rec_meta_t *meta, unsigned char *buf,
    size_t cap, int with_body);


size_t
ngx_http_dashstream_ring_mem_size(uint32_t nslots, size_t data_size)
{
    if (!ngx_http_dashstream_ring_valid_nslots(nslots)
        || data_size < NGX_HTTP_DASHSTREAM_RING_MIN_DATA
        || data_size > SIZE_MAX / 2)
    {
        return 0;
    }

    return ngx_http_dashstream_ring_data_off(nslots)
           + ngx_http_dashstream_ring_align(data_size,
                                            NGX_HTTP_DASHSTREAM_RING_ALIGN);
}


ngx_http_dashstream_ring_t *
ngx_http_dashstream_ring_init(void *mem, size_t size, uint32_t nslots)
{
    uint64_t                     off;
    ngx_http_dashstream_ring_t  *ring;

    if (mem == NULL || ((uintptr_t) mem & 7) != 0
        || !ngx_http_dashstream_ring_valid_nslots(nslots))
    {
        return NULL;
    }

    off = ngx_http_dashstream_ring_data_off(nslots);

    if (size < off + NGX_HTTP_DASHSTREAM_RING_MIN_DATA) {
        return NULL;
    }

    ring = mem;

    /* the data area needs no clearing: nothing reads it before head moves */
    memset(ring, 0, off);

    ring->version = NGX_HTTP_DASHSTREAM_RING_VERSION;
    ring->header_size = sizeof(ngx_http_dashstream_ring_t);
    ring->slot_size = sizeof(ngx_http_dashstream_ring_slot_t);
    ring->rec_header_size = NGX_HTTP_DASHSTREAM_RING_REC_HEADER;
    ring->nslots = nslots;
    ring->size = size;
    ring->data_size = (size - off)
                      & ~((uint64_t) NGX_HTTP_DASHSTREAM_RING_ALIGN - 1);
    ring->slots_off = sizeof(ngx_http_dashstream_ring_t);
    ring->data_off = off;

    __atomic_store_n(&ring->magic, NGX_HTTP_DASHSTREAM_RING_MAGIC,
                     __ATOMIC_RELEASE);

    return ring;
}


int
ngx_http_dashstream_ring_check(void *mem, size_t size)
{
    uint64_t                     head, tail, off;
    ngx_http_dashstream_ring_t  *ring;

    ring = mem;

    if (mem == NULL || ((uintptr_t) mem & 7) != 0
        || size < sizeof(ngx_http_dashstream_ring_t)
        || __atomic_load_n(&ring->magic, __ATOMIC_ACQUIRE)
           != NGX_HTTP_DASHSTREAM_RING_MAGIC
        || ring->version != NGX_HTTP_DASHSTREAM_RING_VERSION
        || ring->header_size != sizeof(ngx_http_dashstream_ring_t)
        || ring->slot_size != sizeof(ngx_http_dashstream_ring_slot_t)
        || ring->rec_header_size != NGX_HTTP_DASHSTREAM_RING_REC_HEADER
        || ring->size != size
        || !ngx_http_dashstream_ring_valid_nslots(ring->nslots))
    {
        return NGX_HTTP_DASHSTREAM_RING_INCOMPATIBLE;
    }

    off = ngx_http_dashstream_ring_data_off(ring->nslots);

    if (ring->slots_off != sizeof(ngx_http_dashstream_ring_t)
        || ring->data_off != off
        || size < off + NGX_HTTP_DASHSTREAM_RING_MIN_DATA
        || ring->data_size != ((size - off)
                       & ~((uint64_t) NGX_HTTP_DASHSTREAM_RING_ALIGN - 1)))
    {
        return NGX_HTTP_DASHSTREAM_RING_INCOMPATIBLE;
    }

    /*
     * The old writer may still be running during a reload: load tail first,
     * then head can only be ahead of it, however far the writer moves.
     */

    tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);

    if (tail > head) {
        return NGX_HTTP_DASHSTREAM_RING_INCOMPATIBLE;
    }

    return NGX_HTTP_DASHSTREAM_RING_OK;
}


ngx_http_dashstream_ring_t *
ngx_http_dashstream_ring_attach(void *mem, size_t size)
{
    if (ngx_http_dashstream_ring_check(mem, size)
        != NGX_HTTP_DASHSTREAM_RING_OK)
    {
        return NULL;
    }

    return mem;
}


size_t
ngx_http_dashstream_ring_max_record(ngx_http_dashstream_ring_t *ring)
{
    /* data_size is a multiple of 64, so a maximal record is 8-aligned */
    return ring->data_size / 4 - NGX_HTTP_DASHSTREAM_RING_REC_HEADER;
}


int64_t
ngx_http_dashstream_ring_append(ngx_http_dashstream_ring_t *ring,
    const ngx_http_dashstream_rec_meta_t *meta, const unsigned char *thread_id,
    const unsigned char *tenant_id, const unsigned char *payload)
{
    uint64_t                          seq, pos, len, size, phys;
    ngx_http_dashstream_ring_slot_t  *slot;

    if (ngx_http_dashstream_rec_body_size(meta)
        > ngx_http_dashstream_ring_max_record(ring))
    {
        return NGX_HTTP_DASHSTREAM_RING_TOO_BIG;
    }

    len = NGX_HTTP_DASHSTREAM_RING_REC_HEADER
          + ngx_http_dashstream_rec_body_size(meta);
    size = ngx_http_dashstream_ring_align(len, 8);

    seq = ngx_http_dashstream_ring_load(&ring->head);
    pos = ngx_http_dashstream_ring_load(&ring->wpos);

    phys = pos % ring->data_size;

    if (phys + size > ring->data_size) {
        pos += ring->data_size - phys;
    }

    ngx_http_dashstream_ring_evict(ring, seq, pos, pos + size);

    /* readers that see any byte stored below also see the new tail */
    __atomic_thread_fence(__ATOMIC_RELEASE);

    ngx_http_dashstream_ring_write(ngx_http_dashstream_ring_data(ring, pos),
                                   seq, meta, thread_id, tenant_id, payload);

    slot = &ngx_http_dashstream_ring_slots(ring)[seq & (ring->nslots - 1)];
    ngx_http_dashstream_ring_store(&slot->pos, pos);
    ngx_http_dashstream_ring_store(&slot->len, len);

    ngx_http_dashstream_ring_store(&ring->wpos, pos + size);
    __atomic_store_n(&ring->head, seq + 1, __ATOMIC_RELEASE);

    return (int64_t) seq;
}


uint64_t
ngx_http_dashstream_ring_clear(ngx_http_dashstream_ring_t *ring)
{
    uint64_t  head, tail;

    head = ngx_http_dashstream_ring_load(&ring->head);
    tail = ngx_http_dashstream_ring_load(&ring->tail);

    ngx_http_dashstream_ring_store(&ring->tail_pos,
                                   ngx_http_dashstream_ring_load(&ring->wpos));

    /* as in _evict(): whoever sees this tail also sees head >= tail */
    __atomic_store_n(&ring->tail, head, __ATOMIC_RELEASE);

    return head - tail;
}


int
ngx_http_dashstream_ring_read(ngx_http_dashstream_ring_t *ring, uint64_t seq,
    unsigned char *buf, size_t cap, ngx_http_dashstream_rec_t *rec)
{
    return ngx_http_dashstream_ring_fetch(ring, seq, &rec->meta, buf, cap,
                                          rec);
}


int
ngx_http_dashstream_ring_read_meta(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, ngx_http_dashstream_rec_meta_t *meta)
{
    return ngx_http_dashstream_ring_fetch(ring, seq, meta, NULL, 0, NULL);
}


uint64_t
ngx_http_dashstream_ring_head(ngx_http_dashstream_ring_t *ring)
{
    return __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
}


uint64_t
ngx_http_dashstream_ring_tail(ngx_http_dashstream_ring_t *ring)
{
    return __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
}


void
ngx_http_dashstream_ring_stats(ngx_http_dashstream_ring_t *ring,
    ngx_http_dashstream_ring_stats_t *st)
{
    uint64_t  wpos, tail_pos;

    /* tail first: head is then never behind it (see the tail store) */
    st->tail = ngx_http_dashstream_ring_tail(ring);
    tail_pos = ngx_http_dashstream_ring_load(&ring->tail_pos);
    st->head = ngx_http_dashstream_ring_head(ring);
    wpos = ngx_http_dashstream_ring_load(&ring->wpos);

    /* the writer may move between the loads: clamp */
    st->records = st->head - st->tail;
    st->bytes_used = 0;

    if (st->records > ring->nslots) {
        st->records = ring->nslots;
    }

    if (st->records != 0 && wpos > tail_pos) {
        st->bytes_used = wpos - tail_pos;

        if (st->bytes_used > ring->data_size) {
            st->bytes_used = ring->data_size;
        }
    }

    st->data_size = ring->data_size;
    st->max_record = ngx_http_dashstream_ring_max_record(ring);
    st->overwrites = ngx_http_dashstream_ring_load(&ring->overwrites);
    st->nslots = ring->nslots;
}


static int
ngx_http_dashstream_ring_valid_nslots(uint32_t nslots)
{
    return nslots >= 2 && nslots <= NGX_HTTP_DASHSTREAM_RING_MAX_SLOTS
           && (nslots & (nslots - 1)) == 0;
}


static uint64_t
ngx_http_dashstream_ring_data_off(uint32_t nslots)
{
    return ngx_http_dashstream_ring_align(sizeof(ngx_http_dashstream_ring_t)
               + (uint64_t) nslots * sizeof(ngx_http_dashstream_ring_slot_t),
               NGX_HTTP_DASHSTREAM_RING_ALIGN);
}


static ngx_http_dashstream_ring_slot_t *
ngx_http_dashstream_ring_slots(ngx_http_dashstream_ring_t *ring)
{
    return (ngx_http_dashstream_ring_slot_t *)
               ((unsigned char *) ring + ring->slots_off);
}


static uint64_t *
ngx_http_dashstream_ring_data(ngx_http_dashstream_ring_t *ring, uint64_t pos)
{
    return (uint64_t *) ((unsigned char *) ring + ring->data_off
                         + pos % ring->data_size);
}


/*
 * Drops the oldest records until the one left starts at or after
 * end - data_size (so [pos, end) overwrites none of it) and the slot of
 * seq is free.
 */

static void
ngx_http_dashstream_ring_evict(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, uint64_t pos, uint64_t end)
{
    uint64_t                          tail, tail_pos, n;
    ngx_http_dashstream_ring_slot_t  *slots;

    slots = ngx_http_dashstream_ring_slots(ring);

    tail = ngx_http_dashstream_ring_load(&ring->tail);
    tail_pos = ngx_http_dashstream_ring_load(&ring->tail_pos);
    n = 0;

    while (tail < seq
           && (tail + ring->nslots <= seq
               || tail_pos + ring->data_size < end))
    {
        tail++;
        n++;

        if (tail < seq) {
            tail_pos = ngx_http_dashstream_ring_load(
                           &slots[tail & (ring->nslots - 1)].pos);
        }
    }

    if (tail == seq) {
        /* empty now, or was: the new record becomes the oldest */
        tail_pos = pos;

    } else if (n == 0) {
        return;
    }

    ngx_http_dashstream_ring_store(&ring->tail_pos, tail_pos);

    /* release: whoever sees this tail also sees head >= tail */
    __atomic_store_n(&ring->tail, tail, __ATOMIC_RELEASE);
    ngx_http_dashstream_ring_store(&ring->overwrites,
                     ngx_http_dashstream_ring_load(&ring->overwrites) + n);
}


static void
ngx_http_dashstream_ring_write(uint64_t *dst, uint64_t seq,
    const ngx_http_dashstream_rec_meta_t *meta, const unsigned char *thread_id,
    const unsigned char *tenant_id, const unsigned char *payload)
{
    ngx_http_dashstream_ring_cursor_t  c;

    ngx_http_dashstream_ring_store(&dst[0], seq);
    ngx_http_dashstream_ring_store(&dst[1], (uint64_t) meta->offset);
    ngx_http_dashstream_ring_store(&dst[2], (uint64_t) meta->prev_offset);
    ngx_http_dashstream_ring_store(&dst[3], (uint64_t) meta->kafka_ts_ms);
    ngx_http_dashstream_ring_store(&dst[4], (uint64_t) meta->producer_ts_us);
    ngx_http_dashstream_ring_store(&dst[5], meta->dash_sequence);
    ngx_http_dashstream_ring_store(&dst[6],
                                   (uint64_t) (uint32_t) meta->partition
                                   | (uint64_t) meta->payload_len << 32);
    ngx_http_dashstream_ring_store(&dst[7],
                                   (uint64_t) meta->msg_type
                                   | (uint64_t) meta->flags << 8
                                   | (uint64_t) meta->thread_id_len << 16
                                   | (uint64_t) meta->tenant_id_len << 24);

    c.dst = &dst[NGX_HTTP_DASHSTREAM_RING_REC_HEADER / 8];
    c.word = 0;
    c.fill = 0;

    ngx_http_dashstream_ring_put(&c, thread_id, meta->thread_id_len);
    ngx_http_dashstream_ring_put(&c, tenant_id, meta->tenant_id_len);
    ngx_http_dashstream_ring_put(&c, payload, meta->payload_len);
    ngx_http_dashstream_ring_flush(&c);
}


/* packs bytes into whole words: the ring is only written word by word */

static void
ngx_http_dashstream_ring_put(ngx_http_dashstream_ring_cursor_t *c,
    const unsigned char *p, size_t n)
{
    size_t    k;
    uint64_t  w;

    if (n == 0) {
        /* p may be NULL */
        return;
    }

    if (c->fill != 0) {
        k = 8 - c->fill;

        if (k > n) {
            k = n;
        }

        memcpy((unsigned char *) &c->word + c->fill, p, k);
        c->fill += k;
        p += k;
        n -= k;

        if (c->fill < 8) {
            return;
        }

        ngx_http_dashstream_ring_store(c->dst++, c->word);
        c->word = 0;
        c->fill = 0;
    }

    for ( /* void */ ; n >= 8; n -= 8) {
        memcpy(&w, p, 8);
        ngx_http_dashstream_ring_store(c->dst++, w);
        p += 8;
    }

    if (n > 0) {
        memcpy(&c->word, p, n);
        c->fill = n;
    }
}


static void
ngx_http_dashstream_ring_flush(ngx_http_dashstream_ring_cursor_t *c)
{
    if (c->fill != 0) {
        ngx_http_dashstream_ring_store(c->dst, c->word);
    }
}


static void
ngx_http_dashstream_ring_decode(const uint64_t *src,
    ngx_http_dashstream_rec_meta_t *meta)
{
    uint64_t  w;

    meta->seq = ngx_http_dashstream_ring_load(&src[0]);
    meta->offset = (int64_t) ngx_http_dashstream_ring_load(&src[1]);
    meta->prev_offset = (int64_t) ngx_http_dashstream_ring_load(&src[2]);
    meta->kafka_ts_ms = (int64_t) ngx_http_dashstream_ring_load(&src[3]);
    meta->producer_ts_us = (int64_t) ngx_http_dashstream_ring_load(&src[4]);
    meta->dash_sequence = ngx_http_dashstream_ring_load(&src[5]);

    w = ngx_http_dashstream_ring_load(&src[6]);
    meta->partition = (int32_t) (uint32_t) w;
    meta->payload_len = (uint32_t) (w >> 32);

    w = ngx_http_dashstream_ring_load(&src[7]);
    meta->msg_type = (uint8_t) w;
    meta->flags = (uint8_t) (w >> 8);
    meta->thread_id_len = (uint8_t) (w >> 16);
    meta->tenant_id_len = (uint8_t) (w >> 24);
}


static void
ngx_http_dashstream_ring_copy(unsigned char *dst, const uint64_t *src,
    size_t n)
{
    uint64_t  w;

    for ( /* void */ ; n >= 8; n -= 8) {
        w = ngx_http_dashstream_ring_load(src++);
        memcpy(dst, &w, 8);
        dst += 8;
    }

    if (n > 0) {
        w = ngx_http_dashstream_ring_load(src);
        memcpy(dst, &w, n);
    }
}


static int
ngx_http_dashstream_ring_fetch(ngx_http_dashstream_ring_t *ring, uint64_t seq,
    ngx_http_dashstream_rec_meta_t *meta, unsigned char *buf, size_t cap,
    ngx_http_dashstream_rec_t *rec)
{
    int  rc;

    if (seq >= __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE)) {
        return NGX_HTTP_DASHSTREAM_RING_NOT_YET;
    }

    if (seq < ngx_http_dashstream_ring_load(&ring->tail)) {
        return NGX_HTTP_DASHSTREAM_RING_OVERTAKEN;
    }

    rc = ngx_http_dashstream_ring_load_rec(ring, seq, meta, buf, cap,
                                           rec != NULL);

    __atomic_thread_fence(__ATOMIC_ACQUIRE);

    if (seq < ngx_http_dashstream_ring_load(&ring->tail)) {
        return NGX_HTTP_DASHSTREAM_RING_OVERTAKEN;
    }

    if (rc == NGX_HTTP_DASHSTREAM_RING_OK && rec != NULL) {
        rec->thread_id = buf;
        rec->tenant_id = buf + meta->thread_id_len;
        rec->payload = rec->tenant_id + meta->tenant_id_len;
    }

    return rc;
}


/*
 * What this loads may be torn if the writer is overtaking us: it is only
 * bounds-checked, so the copy stays inside the block, and is trusted once
 * the caller's second load of tail says seq is still held.
 */

static int
ngx_http_dashstream_ring_load_rec(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, ngx_http_dashstream_rec_meta_t *meta, unsigned char *buf,
    size_t cap, int with_body)
{
    size_t                            body;
    uint64_t                          pos, len, phys;
    const uint64_t                   *src;
    ngx_http_dashstream_ring_slot_t  *slot;

    slot = &ngx_http_dashstream_ring_slots(ring)[seq & (ring->nslots - 1)];
    pos = ngx_http_dashstream_ring_load(&slot->pos);
    len = ngx_http_dashstream_ring_load(&slot->len);
    phys = pos % ring->data_size;

    if ((pos & 7) != 0
        || len < NGX_HTTP_DASHSTREAM_RING_REC_HEADER
        || len - NGX_HTTP_DASHSTREAM_RING_REC_HEADER
           > ngx_http_dashstream_ring_max_record(ring)
        || phys + len > ring->data_size)
    {
        return NGX_HTTP_DASHSTREAM_RING_CORRUPT;
    }

    src = ngx_http_dashstream_ring_data(ring, pos);
    ngx_http_dashstream_ring_decode(src, meta);
    body = ngx_http_dashstream_rec_body_size(meta);

    if (meta->seq != seq
        || NGX_HTTP_DASHSTREAM_RING_REC_HEADER + body != len)
    {
        return NGX_HTTP_DASHSTREAM_RING_CORRUPT;
    }

    if (!with_body) {
        return NGX_HTTP_DASHSTREAM_RING_OK;
    }

    if (body > cap) {
        return NGX_HTTP_DASHSTREAM_RING_TOO_SMALL;
    }

    src += NGX_HTTP_DASHSTREAM_RING_REC_HEADER / 8;
    ngx_http_dashstream_ring_copy(buf, src, body);

    return NGX_HTTP_DASHSTREAM_RING_OK;
}
