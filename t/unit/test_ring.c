/*
 * Copyright (C) ngx_dashstream authors
 */


#define _GNU_SOURCE

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "ngx_http_dashstream_ring.h"


#define TEST_HDR        NGX_HTTP_DASHSTREAM_RING_REC_HEADER
#define TEST_OK         NGX_HTTP_DASHSTREAM_RING_OK
#define TEST_OVERTAKEN  NGX_HTTP_DASHSTREAM_RING_OVERTAKEN
#define TEST_NOT_YET    NGX_HTTP_DASHSTREAM_RING_NOT_YET

#define TEST_FOLLOW     0
#define TEST_RANDOM     1
#define TEST_META       2

#define TEST_C_OK       0
#define TEST_C_OVER     1
#define TEST_C_FLIGHT   2
#define TEST_C_NOT_YET  3
#define TEST_C_BAD      4
#define TEST_C_N        5


typedef struct {
    ngx_http_dashstream_ring_t  *ring;
    int                         *stop;
    int                          mode;
    uint64_t                     rnd;
    /* written by the reader only, read by the writer while it runs */
    uint64_t                     count[TEST_C_N];
} test_reader_t;


typedef struct {
    uint64_t                     appends;
    uint64_t                     bytes;
    uint64_t                     bad;
    double                       seconds;
    double                       elapsed;
    test_reader_t               *readers;
    int                          nreaders;
} test_writer_t;


typedef struct {
    int                          go;
    int                          stop;
    test_reader_t                readers[2];
} test_shared_t;


static uint64_t
test_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}


static double
test_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* the body bytes (thread_id, tenant_id, payload) of record seq */

static void
test_fill(unsigned char *p, uint64_t seq, size_t n)
{
    size_t    i;
    uint64_t  h;

    h = test_mix(seq + 0x51);

    for (i = 0; i < n; i++) {
        p[i] = (unsigned char) ((h >> ((i & 7) * 8)) + i * 31);
    }
}


static void
test_meta_for(uint64_t seq, size_t tid, size_t ten, size_t plen,
    ngx_http_dashstream_rec_meta_t *m)
{
    memset(m, 0, sizeof(*m));

    m->seq = seq;
    m->offset = (int64_t) (seq * 3 + 1000);
    m->prev_offset = seq == 0 ? -1 : (int64_t) ((seq - 1) * 3 + 1000);
    m->kafka_ts_ms = (int64_t) (1700000000000ULL + seq);
    m->producer_ts_us = -(int64_t) seq * 7;
    m->dash_sequence = seq ^ 0xfeedfacecafebeefULL;
    m->partition = (int32_t) (seq % 13) - 1;
    m->payload_len = (uint32_t) plen;
    m->msg_type = (uint8_t) (seq % 9);
    m->flags = (uint8_t) (seq >> 3);
    m->thread_id_len = (uint8_t) tid;
    m->tenant_id_len = (uint8_t) ten;
}


static int
test_meta_eq(const ngx_http_dashstream_rec_meta_t *a,
    const ngx_http_dashstream_rec_meta_t *b)
{
    return a->seq == b->seq && a->offset == b->offset
           && a->prev_offset == b->prev_offset
           && a->kafka_ts_ms == b->kafka_ts_ms
           && a->producer_ts_us == b->producer_ts_us
           && a->dash_sequence == b->dash_sequence
           && a->partition == b->partition
           && a->payload_len == b->payload_len
           && a->msg_type == b->msg_type && a->flags == b->flags
           && a->thread_id_len == b->thread_id_len
           && a->tenant_id_len == b->tenant_id_len;
}


/* record seq as the stress tests write it: every length a function of seq */

static void
test_shape(uint64_t seq, size_t max, ngx_http_dashstream_rec_meta_t *m)
{
    size_t    tid, ten, room, plen;
    uint64_t  h;

    h = test_mix(seq);
    tid = h % 40;
    ten = (h >> 8) % 12;
    room = max - tid - ten;

    switch ((h >> 16) % 16) {
    case 0:
        plen = room;
        break;
    case 1:
        plen = 0;
        break;
    case 2:
    case 3:
        plen = (h >> 24) % (room + 1);
        break;
    default:
        plen = (h >> 24) % 64;
    }

    test_meta_for(seq, tid, ten, plen, m);
}


static int
test_body_ok(const ngx_http_dashstream_rec_t *rec, uint64_t seq)
{
    size_t         n;
    unsigned char  want[65536];

    n = ngx_http_dashstream_rec_body_size(&rec->meta);

    if (n > sizeof(want)
        || rec->tenant_id != rec->thread_id + rec->meta.thread_id_len
        || rec->payload != rec->tenant_id + rec->meta.tenant_id_len)
    {
        return 0;
    }

    test_fill(want, seq, n);

    return n == 0 || memcmp(rec->thread_id, want, n) == 0;
}


static void *
test_alloc(uint32_t nslots, size_t data_size, size_t *size)
{
    void  *mem;

    *size = ngx_http_dashstream_ring_mem_size(nslots, data_size);
    mem = aligned_alloc(64, *size);

    if (mem == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }

    return mem;
}


/* appends a record whose meta and bytes are a function of its seq */

static int64_t
test_add(ngx_http_dashstream_ring_t *ring, size_t tid, size_t ten,
    size_t plen)
{
    uint64_t                         seq;
    ngx_http_dashstream_rec_meta_t   m;
    static unsigned char             body[65536];

    seq = ngx_http_dashstream_ring_head(ring);

    test_meta_for(seq, tid, ten, plen, &m);
    test_fill(body, seq, tid + ten + plen);

    return ngx_http_dashstream_ring_append(ring, &m, body, body + tid,
                                           body + tid + ten);
}


/* reads seq; if OK, checks meta and bytes against what test_add() wrote */

static int
test_get(ngx_http_dashstream_ring_t *ring, uint64_t seq)
{
    int                             rc;
    ngx_http_dashstream_rec_t       rec;
    ngx_http_dashstream_rec_meta_t  want;
    static unsigned char            buf[65536];

    rc = ngx_http_dashstream_ring_read(ring, seq, buf, sizeof(buf), &rec);

    if (rc == TEST_OK) {
        test_meta_for(seq, rec.meta.thread_id_len, rec.meta.tenant_id_len,
                      rec.meta.payload_len, &want);
        CHECK(test_meta_eq(&rec.meta, &want));
        CHECK(rec.thread_id == buf);
        CHECK(test_body_ok(&rec, seq));
    }

    return rc;
}


UNIT_TEST(test_ring_sizes)
{
    void    *mem;
    size_t   size;

    CHECK_EQ_INT(ngx_http_dashstream_ring_mem_size(64, 1024),
                 128 + 64 * 16 + 1024);
    CHECK_EQ_INT(ngx_http_dashstream_ring_mem_size(64, 1030),
                 128 + 64 * 16 + 1088);
    CHECK_EQ_INT(ngx_http_dashstream_ring_mem_size(4, 4096), 192 + 4096);
    CHECK_EQ_INT(ngx_http_dashstream_ring_mem_size(63, 4096), 0);
    CHECK_EQ_INT(ngx_http_dashstream_ring_mem_size(1, 4096), 0);
    CHECK_EQ_INT(ngx_http_dashstream_ring_mem_size(64, 1023), 0);

    mem = test_alloc(64, 1024, &size);

    CHECK(ngx_http_dashstream_ring_init(mem, size - 1, 64) == NULL);
    CHECK(ngx_http_dashstream_ring_init(mem, size, 3) == NULL);
    CHECK(ngx_http_dashstream_ring_init(mem, size, 0) == NULL);
    CHECK(ngx_http_dashstream_ring_init((char *) mem + 4, size - 8, 64)
          == NULL);
    CHECK(ngx_http_dashstream_ring_init(NULL, size, 64) == NULL);

    /* a larger nslots in the same block leaves less data */
    CHECK(ngx_http_dashstream_ring_init(mem, size, 128) == NULL);
    CHECK(ngx_http_dashstream_ring_init(mem, size, 32) != NULL);
    CHECK_EQ_INT(ngx_http_dashstream_ring_max_record(mem),
                 (size - 128 - 32 * 16) / 64 * 64 / 4 - TEST_HDR);

    free(mem);
}


UNIT_TEST(test_ring_init_attach)
{
    void                              *mem;
    size_t                             size;
    unsigned char                      saved;
    ngx_http_dashstream_ring_t        *ring;
    ngx_http_dashstream_ring_stats_t   st;

    mem = test_alloc(64, 1024, &size);
    memset(mem, 0xa5, size);

    CHECK(ngx_http_dashstream_ring_attach(mem, size) == NULL);

    ring = ngx_http_dashstream_ring_init(mem, size, 64);
    CHECK((void *) ring == mem);

    CHECK_EQ_U64(ngx_http_dashstream_ring_head(ring), 0);
    CHECK_EQ_U64(ngx_http_dashstream_ring_tail(ring), 0);
    CHECK_EQ_INT(ngx_http_dashstream_ring_max_record(ring), 1024 / 4 - 64);

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.head, 0);
    CHECK_EQ_U64(st.tail, 0);
    CHECK_EQ_U64(st.records, 0);
    CHECK_EQ_U64(st.bytes_used, 0);
    CHECK_EQ_U64(st.data_size, 1024);
    CHECK_EQ_U64(st.max_record, 192);
    CHECK_EQ_U64(st.overwrites, 0);
    CHECK_EQ_INT(st.nslots, 64);

    CHECK_EQ_INT(test_add(ring, 3, 4, 10), 0);
    CHECK_EQ_INT(test_add(ring, 0, 0, 1), 1);
    CHECK_EQ_INT(test_add(ring, 9, 0, 0), 2);

    /* a reload: same block, same size */
    CHECK_EQ_INT(ngx_http_dashstream_ring_check(mem, size), TEST_OK);
    ring = ngx_http_dashstream_ring_attach(mem, size);
    CHECK((void *) ring == mem);
    CHECK_EQ_U64(ngx_http_dashstream_ring_head(ring), 3);
    CHECK_EQ_INT(test_get(ring, 0), TEST_OK);
    CHECK_EQ_INT(test_get(ring, 2), TEST_OK);
    CHECK_EQ_INT(test_add(ring, 1, 1, 1), 3);

    CHECK(ngx_http_dashstream_ring_attach(mem, size - 64) == NULL);
    CHECK(ngx_http_dashstream_ring_attach(mem, size + 64) == NULL);
    CHECK(ngx_http_dashstream_ring_attach(mem, 16) == NULL);
    CHECK(ngx_http_dashstream_ring_attach(NULL, size) == NULL);
    CHECK_EQ_INT(ngx_http_dashstream_ring_check(mem, size - 64),
                 NGX_HTTP_DASHSTREAM_RING_INCOMPATIBLE);

    saved = *(unsigned char *) mem;
    *(unsigned char *) mem ^= 0xff;
    CHECK(ngx_http_dashstream_ring_attach(mem, size) == NULL);
    CHECK_EQ_INT(ngx_http_dashstream_ring_check(mem, size),
                 NGX_HTTP_DASHSTREAM_RING_INCOMPATIBLE);
    *(unsigned char *) mem = saved;
    CHECK(ngx_http_dashstream_ring_attach(mem, size) == ring);

    memset(mem, 0, size);
    CHECK(ngx_http_dashstream_ring_attach(mem, size) == NULL);

    free(mem);
}


UNIT_TEST(test_ring_round_trip)
{
    int                              rc;
    void                            *mem;
    size_t                           size, i;
    int64_t                          seq;
    unsigned char                    payload[300], buf[512];
    ngx_http_dashstream_rec_t        rec;
    ngx_http_dashstream_ring_t      *ring;
    ngx_http_dashstream_rec_meta_t   m, got;

    mem = test_alloc(16, 4096, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 16);

    for (i = 0; i < sizeof(payload); i++) {
        payload[i] = (unsigned char) (i * 7 + 1);
    }

    memset(&m, 0, sizeof(m));
    m.seq = 999;
    m.offset = 123456789012LL;
    m.prev_offset = -1;
    m.kafka_ts_ms = 1733230000123LL;
    m.producer_ts_us = 1733230000123456LL;
    m.dash_sequence = UINT64_MAX - 5;
    m.partition = 7;
    m.payload_len = sizeof(payload);
    m.msg_type = 3;
    m.flags = 0x81;
    m.thread_id_len = 9;
    m.tenant_id_len = 4;

    seq = ngx_http_dashstream_ring_append(ring, &m,
                                          (const unsigned char *) "thread-42",
                                          (const unsigned char *) "acme",
                                          payload);
    CHECK_EQ_INT(seq, 0);

    memset(&rec, 0, sizeof(rec));
    rc = ngx_http_dashstream_ring_read(ring, 0, buf, sizeof(buf), &rec);
    CHECK_EQ_INT(rc, TEST_OK);
    CHECK_EQ_U64(rec.meta.seq, 0);
    CHECK_EQ_INT(rec.meta.offset, 123456789012LL);
    CHECK_EQ_INT(rec.meta.prev_offset, -1);
    CHECK_EQ_INT(rec.meta.kafka_ts_ms, 1733230000123LL);
    CHECK_EQ_INT(rec.meta.producer_ts_us, 1733230000123456LL);
    CHECK_EQ_U64(rec.meta.dash_sequence, UINT64_MAX - 5);
    CHECK_EQ_INT(rec.meta.partition, 7);
    CHECK_EQ_INT(rec.meta.payload_len, 300);
    CHECK_EQ_INT(rec.meta.msg_type, 3);
    CHECK_EQ_INT(rec.meta.flags, 0x81);
    CHECK_EQ_INT(rec.meta.thread_id_len, 9);
    CHECK_EQ_INT(rec.meta.tenant_id_len, 4);
    CHECK(rec.thread_id == buf);
    CHECK(rec.tenant_id == buf + 9);
    CHECK(rec.payload == buf + 13);
    CHECK_MEM(rec.thread_id, "thread-42", 9);
    CHECK_MEM(rec.tenant_id, "acme", 4);
    CHECK_MEM(rec.payload, payload, sizeof(payload));

    m.seq = 0;
    CHECK_EQ_INT(ngx_http_dashstream_ring_read_meta(ring, 0, &got), TEST_OK);
    CHECK(test_meta_eq(&got, &m));

    /* negative values and a second record */
    m.partition = -1;
    m.offset = INT64_MIN;
    m.thread_id_len = 0;
    m.payload_len = 5;
    seq = ngx_http_dashstream_ring_append(ring, &m, NULL,
                                          (const unsigned char *) "acme",
                                          (const unsigned char *) "hello");
    CHECK_EQ_INT(seq, 1);

    rc = ngx_http_dashstream_ring_read(ring, 1, buf, sizeof(buf), &rec);
    CHECK_EQ_INT(rc, TEST_OK);
    CHECK_EQ_INT(rec.meta.partition, -1);
    CHECK_EQ_INT(rec.meta.offset, INT64_MIN);
    CHECK_EQ_INT(rec.meta.thread_id_len, 0);
    CHECK_MEM(rec.tenant_id, "acme", 4);
    CHECK_MEM(rec.payload, "hello", 5);

    free(mem);
}


UNIT_TEST(test_ring_wrap)
{
    void                              *mem;
    size_t                             size;
    uint64_t                           s;
    ngx_http_dashstream_ring_t        *ring;
    ngx_http_dashstream_ring_stats_t   st;

    /* 192-byte records: five per lap, then 64 bytes skipped */
    mem = test_alloc(64, 1024, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 64);

    for (s = 0; s < 5; s++) {
        CHECK_EQ_INT(test_add(ring, 10, 6, 112), s);
    }

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.tail, 0);
    CHECK_EQ_U64(st.bytes_used, 960);
    CHECK_EQ_U64(st.overwrites, 0);

    /* 960 + 192 crosses 1024: placed at 1024, needs [192, ...) kept */
    CHECK_EQ_INT(test_add(ring, 10, 6, 112), 5);

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.head, 6);
    CHECK_EQ_U64(st.tail, 1);
    CHECK_EQ_U64(st.records, 5);
    CHECK_EQ_U64(st.bytes_used, 1216 - 192);
    CHECK_EQ_U64(st.overwrites, 1);

    CHECK_EQ_INT(test_get(ring, 0), TEST_OVERTAKEN);

    for (s = 1; s < 6; s++) {
        CHECK_EQ_INT(test_get(ring, s), TEST_OK);
    }

    /* steady state: one eviction per append, 5 records held */
    for (s = 6; s < 1006; s++) {
        CHECK_EQ_INT(test_add(ring, 10, 6, 112), s);
        CHECK_EQ_INT(test_get(ring, s - 4), TEST_OK);
    }

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.head, 1006);
    CHECK_EQ_U64(st.tail, 1001);
    CHECK_EQ_U64(st.overwrites, 1001);
    CHECK_EQ_U64(st.records, 5);
    CHECK_EQ_U64(st.bytes_used, 1024);

    for (s = 1001; s < 1006; s++) {
        CHECK_EQ_INT(test_get(ring, s), TEST_OK);
    }

    CHECK_EQ_INT(test_get(ring, 1000), TEST_OVERTAKEN);
    CHECK_EQ_INT(test_get(ring, 1006), TEST_NOT_YET);

    free(mem);
}


static void
test_stats(ngx_http_dashstream_ring_t *ring, uint64_t head, uint64_t tail,
    uint64_t bytes_used, uint64_t overwrites)
{
    ngx_http_dashstream_ring_stats_t  st;

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.head, head);
    CHECK_EQ_U64(st.tail, tail);
    CHECK_EQ_U64(st.records, head - tail);
    CHECK_EQ_U64(st.bytes_used, bytes_used);
    CHECK_EQ_U64(st.overwrites, overwrites);
}


/* a new topic: the writer drops every record, seqs and overwrites go on */

UNIT_TEST(test_ring_clear)
{
    void                        *mem;
    size_t                       size;
    uint64_t                     s;
    ngx_http_dashstream_ring_t  *ring;

    mem = test_alloc(64, 1024, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 64);

    CHECK_EQ_U64(ngx_http_dashstream_ring_clear(ring), 0);

    for (s = 0; s < 7; s++) {
        CHECK_EQ_INT(test_add(ring, 10, 6, 112), s);
    }

    test_stats(ring, 7, 2, 1408 - 384, 2);
    CHECK_EQ_U64(ngx_http_dashstream_ring_clear(ring), 5);
    test_stats(ring, 7, 7, 0, 2);

    for (s = 0; s < 7; s++) {
        CHECK_EQ_INT(test_get(ring, s), TEST_OVERTAKEN);
    }

    CHECK_EQ_INT(test_get(ring, 7), TEST_NOT_YET);
    CHECK_EQ_U64(ngx_http_dashstream_ring_clear(ring), 0);

    /* the ring fills from where it was, and evicts as before */
    for (s = 7; s < 20; s++) {
        CHECK_EQ_INT(test_add(ring, 10, 6, 112), s);
        CHECK_EQ_INT(test_get(ring, s), TEST_OK);
    }

    test_stats(ring, 20, 15, 5 * 192, 2 + 8);

    free(mem);
}


UNIT_TEST(test_ring_evict_slots)
{
    void                              *mem;
    size_t                             size;
    uint64_t                           s;
    ngx_http_dashstream_ring_t        *ring;
    ngx_http_dashstream_ring_stats_t   st;

    mem = test_alloc(4, 4096, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 4);

    for (s = 0; s < 4; s++) {
        CHECK_EQ_INT(test_add(ring, 0, 0, 0), s);
    }

    CHECK_EQ_U64(ngx_http_dashstream_ring_tail(ring), 0);

    CHECK_EQ_INT(test_add(ring, 0, 0, 0), 4);
    CHECK_EQ_U64(ngx_http_dashstream_ring_tail(ring), 1);

    for (s = 5; s < 10; s++) {
        CHECK_EQ_INT(test_add(ring, 1, 2, 3), s);
    }

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.head, 10);
    CHECK_EQ_U64(st.tail, 6);
    CHECK_EQ_U64(st.records, 4);
    CHECK_EQ_U64(st.overwrites, 6);
    CHECK_EQ_U64(st.bytes_used, 4 * 72);

    CHECK_EQ_INT(test_get(ring, 5), TEST_OVERTAKEN);

    for (s = 6; s < 10; s++) {
        CHECK_EQ_INT(test_get(ring, s), TEST_OK);
    }

    CHECK_EQ_INT(test_get(ring, 10), TEST_NOT_YET);

    free(mem);
}


UNIT_TEST(test_ring_evict_bytes)
{
    void                              *mem;
    size_t                             size;
    uint64_t                           s;
    ngx_http_dashstream_ring_t        *ring;
    ngx_http_dashstream_ring_stats_t   st;

    mem = test_alloc(64, 1024, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 64);

    /* 72-byte records 0..9 at 0, 72, ... 648 */
    for (s = 0; s < 10; s++) {
        CHECK_EQ_INT(test_add(ring, 8, 0, 0), s);
    }

    /* maximal (256-byte) records: 10 fits at 720, 11 goes to 1024 */
    CHECK_EQ_INT(test_add(ring, 0, 0, 192), 10);
    CHECK_EQ_U64(ngx_http_dashstream_ring_tail(ring), 0);

    CHECK_EQ_INT(test_add(ring, 0, 0, 192), 11);

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.tail, 4);
    CHECK_EQ_U64(st.overwrites, 4);
    CHECK_EQ_U64(st.records, 8);
    CHECK_EQ_U64(st.bytes_used, 1280 - 288);

    /* at 1280, keeps [512, ...): drops 288, 360, 432, 504 */
    CHECK_EQ_INT(test_add(ring, 0, 0, 192), 12);
    CHECK_EQ_U64(ngx_http_dashstream_ring_tail(ring), 8);

    /* at 1536, keeps [768, ...): drops 576, 648 and 720 */
    CHECK_EQ_INT(test_add(ring, 0, 0, 192), 13);
    CHECK_EQ_U64(ngx_http_dashstream_ring_tail(ring), 11);

    /* four maximal records fill the data area exactly */
    CHECK_EQ_INT(test_add(ring, 0, 0, 192), 14);

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.tail, 11);
    CHECK_EQ_U64(st.records, 4);
    CHECK_EQ_U64(st.bytes_used, 1024);
    CHECK_EQ_U64(st.overwrites, 11);

    for (s = 0; s < 11; s++) {
        CHECK_EQ_INT(test_get(ring, s), TEST_OVERTAKEN);
    }

    for (s = 11; s < 15; s++) {
        CHECK_EQ_INT(test_get(ring, s), TEST_OK);
    }

    CHECK_EQ_INT(test_add(ring, 0, 0, 192), 15);
    CHECK_EQ_U64(ngx_http_dashstream_ring_tail(ring), 12);

    free(mem);
}


UNIT_TEST(test_ring_max_record)
{
    int                               rc;
    void                             *mem;
    size_t                            size;
    unsigned char                     buf[192];
    ngx_http_dashstream_rec_t         rec;
    ngx_http_dashstream_ring_t       *ring;
    ngx_http_dashstream_ring_stats_t  st;

    mem = test_alloc(64, 1024, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 64);

    CHECK_EQ_INT(ngx_http_dashstream_ring_max_record(ring), 192);

    CHECK_EQ_INT(test_add(ring, 0, 0, 193),
                 NGX_HTTP_DASHSTREAM_RING_TOO_BIG);
    CHECK_EQ_INT(test_add(ring, 100, 50, 43),
                 NGX_HTTP_DASHSTREAM_RING_TOO_BIG);
    CHECK_EQ_INT(test_add(ring, 255, 255, 0),
                 NGX_HTTP_DASHSTREAM_RING_TOO_BIG);

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.head, 0);
    CHECK_EQ_U64(st.bytes_used, 0);

    CHECK_EQ_INT(test_add(ring, 100, 50, 42), 0);

    rc = ngx_http_dashstream_ring_read(ring, 0, buf, sizeof(buf), &rec);
    CHECK_EQ_INT(rc, TEST_OK);
    CHECK_EQ_INT(ngx_http_dashstream_rec_body_size(&rec.meta), 192);
    CHECK(test_body_ok(&rec, 0));

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.head, 1);
    CHECK_EQ_U64(st.bytes_used, 256);

    free(mem);
}


UNIT_TEST(test_ring_read_errors)
{
    int                              rc;
    void                            *mem;
    size_t                           size;
    unsigned char                    buf[128];
    ngx_http_dashstream_rec_t        rec;
    ngx_http_dashstream_ring_t      *ring;
    ngx_http_dashstream_rec_meta_t   m;

    mem = test_alloc(4, 1024, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 4);

    CHECK_EQ_INT(test_get(ring, 0), TEST_NOT_YET);
    CHECK_EQ_INT(test_get(ring, 5), TEST_NOT_YET);
    CHECK_EQ_INT(ngx_http_dashstream_ring_read_meta(ring, 0, &m),
                 TEST_NOT_YET);

    CHECK_EQ_INT(test_add(ring, 20, 30, 50), 0);
    CHECK_EQ_INT(test_get(ring, 1), TEST_NOT_YET);
    CHECK_EQ_INT(test_get(ring, UINT64_MAX), TEST_NOT_YET);

    memset(buf, 0xee, sizeof(buf));
    rc = ngx_http_dashstream_ring_read(ring, 0, buf, 99, &rec);
    CHECK_EQ_INT(rc, NGX_HTTP_DASHSTREAM_RING_TOO_SMALL);
    CHECK_EQ_INT(ngx_http_dashstream_rec_body_size(&rec.meta), 100);
    CHECK_EQ_INT(rec.meta.payload_len, 50);
    CHECK_EQ_U64(rec.meta.seq, 0);
    CHECK_EQ_INT(buf[0], 0xee);

    rc = ngx_http_dashstream_ring_read(ring, 0, buf, 100, &rec);
    CHECK_EQ_INT(rc, TEST_OK);
    CHECK(test_body_ok(&rec, 0));
    CHECK_EQ_INT(buf[100], 0xee);

    CHECK_EQ_INT(ngx_http_dashstream_ring_read_meta(ring, 0, &m), TEST_OK);
    CHECK_EQ_INT(m.tenant_id_len, 30);

    /* four more: 0 loses its slot */
    CHECK_EQ_INT(test_add(ring, 0, 0, 1), 1);
    CHECK_EQ_INT(test_add(ring, 0, 0, 1), 2);
    CHECK_EQ_INT(test_add(ring, 0, 0, 1), 3);
    CHECK_EQ_INT(test_add(ring, 0, 0, 1), 4);

    CHECK_EQ_INT(test_get(ring, 0), TEST_OVERTAKEN);
    CHECK_EQ_INT(ngx_http_dashstream_ring_read_meta(ring, 0, &m),
                 TEST_OVERTAKEN);
    CHECK_EQ_INT(ngx_http_dashstream_ring_read(ring, 0, buf, 0, &rec),
                 TEST_OVERTAKEN);
    CHECK_EQ_INT(test_get(ring, 1), TEST_OK);

    free(mem);
}


UNIT_TEST(test_ring_zero_length)
{
    int                                rc;
    void                              *mem;
    size_t                             size;
    unsigned char                      buf[8];
    ngx_http_dashstream_rec_t          rec;
    ngx_http_dashstream_ring_t        *ring;
    ngx_http_dashstream_rec_meta_t     m;
    ngx_http_dashstream_ring_stats_t   st;

    mem = test_alloc(8, 1024, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 8);

    CHECK_EQ_INT(test_add(ring, 0, 0, 0), 0);

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.bytes_used, TEST_HDR);

    rc = ngx_http_dashstream_ring_read(ring, 0, NULL, 0, &rec);
    CHECK_EQ_INT(rc, TEST_OK);
    CHECK_EQ_INT(ngx_http_dashstream_rec_body_size(&rec.meta), 0);
    CHECK_EQ_INT(test_get(ring, 0), TEST_OK);

    /* ids without payload, then a 1-byte payload padded to 8 */
    CHECK_EQ_INT(test_add(ring, 5, 3, 0), 1);
    CHECK_EQ_INT(test_add(ring, 0, 0, 1), 2);
    CHECK_EQ_INT(test_get(ring, 1), TEST_OK);
    CHECK_EQ_INT(test_get(ring, 2), TEST_OK);

    rc = ngx_http_dashstream_ring_read(ring, 2, NULL, 0, &rec);
    CHECK_EQ_INT(rc, NGX_HTTP_DASHSTREAM_RING_TOO_SMALL);

    ngx_http_dashstream_ring_stats(ring, &st);
    CHECK_EQ_U64(st.bytes_used, TEST_HDR + TEST_HDR + 8 + TEST_HDR + 8);

    /* absent ids and payload may be NULL */
    test_meta_for(3, 3, 0, 0, &m);
    CHECK_EQ_INT(ngx_http_dashstream_ring_append(ring, &m,
                     (const unsigned char *) "abc", NULL, NULL), 3);

    rc = ngx_http_dashstream_ring_read(ring, 3, buf, sizeof(buf), &rec);
    CHECK_EQ_INT(rc, TEST_OK);
    CHECK_EQ_INT(rec.meta.thread_id_len, 3);
    CHECK_MEM(rec.thread_id, "abc", 3);
    CHECK(rec.tenant_id == buf + 3 && rec.payload == buf + 3);

    free(mem);
}


UNIT_TEST(test_ring_two_mappings)
{
    int                          fd;
    size_t                       size;
    unsigned char               *a, *b;
    ngx_http_dashstream_ring_t  *ra, *rb;

    size = ngx_http_dashstream_ring_mem_size(16, 4096);
    fd = memfd_create("test_ring", 0);
    CHECK(fd >= 0 && ftruncate(fd, size) == 0);

    a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(a != MAP_FAILED && b != MAP_FAILED && a != b);

    if (a == MAP_FAILED || b == MAP_FAILED) {
        return;
    }

    /* offsets only: the block works at a second address */
    ra = ngx_http_dashstream_ring_init(a, size, 16);
    CHECK_EQ_INT(test_add(ra, 4, 4, 100), 0);
    CHECK_EQ_INT(test_add(ra, 4, 4, 200), 1);

    rb = ngx_http_dashstream_ring_attach(b, size);
    CHECK(rb != NULL && (void *) rb == (void *) b);
    CHECK_EQ_INT(test_get(rb, 0), TEST_OK);
    CHECK_EQ_INT(test_get(rb, 1), TEST_OK);
    CHECK_EQ_INT(test_add(rb, 1, 2, 3), 2);
    CHECK_EQ_INT(test_get(ra, 2), TEST_OK);

    munmap(a, size);
    munmap(b, size);
    close(fd);
}


static int
test_verify(test_reader_t *r, int rc, uint64_t seq,
    ngx_http_dashstream_rec_t *rec)
{
    size_t                          max;
    ngx_http_dashstream_rec_meta_t  want;

    if (rc != TEST_OK) {
        return 1;
    }

    max = ngx_http_dashstream_ring_max_record(r->ring);
    test_shape(seq, max, &want);

    return test_meta_eq(&rec->meta, &want)
           && (r->mode == TEST_META || test_body_ok(rec, seq));
}


static void
test_count(test_reader_t *r, int i)
{
    __atomic_store_n(&r->count[i], r->count[i] + 1, __ATOMIC_RELAXED);
}


static uint64_t
test_total(test_reader_t *r, int n, int i)
{
    uint64_t  sum;

    for (sum = 0; n > 0; n--, r++) {
        sum += __atomic_load_n(&r->count[i], __ATOMIC_RELAXED);
    }

    return sum;
}


static void
test_reader_run(test_reader_t *r)
{
    int                         rc;
    uint64_t                    seq, tail, head, lo;
    unsigned char              *buf;
    ngx_http_dashstream_rec_t   rec;

    buf = malloc(ngx_http_dashstream_ring_max_record(r->ring));
    seq = 0;

    while (!__atomic_load_n(r->stop, __ATOMIC_RELAXED)) {
        tail = ngx_http_dashstream_ring_tail(r->ring);

        if (r->mode != TEST_FOLLOW) {
            head = ngx_http_dashstream_ring_head(r->ring);
            lo = tail > 2 ? tail - 2 : 0;
            head = (head > tail ? head : tail) + 1;
            r->rnd = test_mix(r->rnd);
            seq = lo + r->rnd % (head - lo);
        }

        if (r->mode == TEST_META) {
            rc = ngx_http_dashstream_ring_read_meta(r->ring, seq, &rec.meta);

        } else {
            rc = ngx_http_dashstream_ring_read(r->ring, seq, buf,
                      ngx_http_dashstream_ring_max_record(r->ring), &rec);
        }

        if (!test_verify(r, rc, seq, &rec)) {
            test_count(r, TEST_C_BAD);
        }

        switch (rc) {
        case TEST_OK:
            test_count(r, TEST_C_OK);
            seq++;
            break;
        case TEST_OVERTAKEN:
            test_count(r, TEST_C_OVER);

            if (seq >= tail) {
                test_count(r, TEST_C_FLIGHT);
            }

            seq = ngx_http_dashstream_ring_tail(r->ring);
            break;
        case TEST_NOT_YET:
            /* spin: a yield costs a whole time slice on a busy machine */
            test_count(r, TEST_C_NOT_YET);
            break;
        default:
            test_count(r, TEST_C_BAD);
        }
    }

    free(buf);
}


static void *
test_reader_thread(void *data)
{
    test_reader_run(data);
    return NULL;
}


/*
 * Runs for w->seconds, longer (up to 5 times) on a loaded machine until the
 * readers have seen enough of each outcome for the checks to mean something.
 */

static int
test_writer_done(test_writer_t *w, double elapsed)
{
    test_reader_t  *r;

    r = w->readers;

    if (elapsed < w->seconds) {
        return 0;
    }

    return elapsed > 5 * w->seconds
           || (test_total(r, w->nreaders, TEST_C_OK) >= 1000
               && test_total(r, w->nreaders, TEST_C_OVER) >= 100
               && test_total(r, w->nreaders, TEST_C_FLIGHT) >= 10);
}


static void
test_writer_run(ngx_http_dashstream_ring_t *ring, int *stop, test_writer_t *w)
{
    size_t                           max, n;
    uint64_t                         seq;
    double                           start;
    unsigned char                   *body;
    ngx_http_dashstream_rec_meta_t   m;

    max = ngx_http_dashstream_ring_max_record(ring);
    body = malloc(max);
    start = test_now();
    seq = ngx_http_dashstream_ring_head(ring);

    for ( ;; seq++) {
        if ((seq & 1023) == 0 && test_writer_done(w, test_now() - start)) {
            break;
        }

        test_shape(seq, max, &m);
        n = ngx_http_dashstream_rec_body_size(&m);
        test_fill(body, seq, n);

        if (ngx_http_dashstream_ring_append(ring, &m, body,
                body + m.thread_id_len,
                body + m.thread_id_len + m.tenant_id_len) != (int64_t) seq)
        {
            w->bad++;
        }

        w->appends++;
        w->bytes += (TEST_HDR + n + 7) & ~(size_t) 7;
    }

    w->elapsed = test_now() - start;
    __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
    free(body);
}


static void
test_report(const char *what, ngx_http_dashstream_ring_t *ring,
    test_writer_t *w, test_reader_t *r, int n)
{
    uint64_t                          ok, over, flight, not_yet, bad, laps;
    ngx_http_dashstream_ring_stats_t  st;

    ngx_http_dashstream_ring_stats(ring, &st);
    laps = w->bytes / st.data_size;

    ok = test_total(r, n, TEST_C_OK);
    over = test_total(r, n, TEST_C_OVER);
    flight = test_total(r, n, TEST_C_FLIGHT);
    not_yet = test_total(r, n, TEST_C_NOT_YET);
    bad = test_total(r, n, TEST_C_BAD);

    printf("%s: %" PRIu64 " appends in %.2fs (%.0f/s, %" PRIu64 " laps); "
           "reads: %" PRIu64 " ok, %" PRIu64 " overtaken (%" PRIu64
           " during the read), %" PRIu64 " not yet, %" PRIu64 " bad\n",
           what, w->appends, w->elapsed, w->appends / w->elapsed,
           laps, ok, over, flight, not_yet, bad);

    CHECK_EQ_U64(w->bad, 0);
    CHECK_EQ_U64(bad, 0);
    CHECK(ok > 0);
    CHECK(over > 0);
    CHECK(flight > 0);
    CHECK(laps > 1000);
    CHECK_EQ_U64(st.head, w->appends);
}


UNIT_TEST(test_ring_stress_threads)
{
    int                          i, stop;
    void                        *mem;
    size_t                       size;
    pthread_t                    tid[3];
    test_writer_t                w;
    test_reader_t                r[3];
    ngx_http_dashstream_ring_t  *ring;

    /* 16 slots, 4096 bytes: both limits evict, the ring laps constantly */
    mem = test_alloc(16, 4096, &size);
    ring = ngx_http_dashstream_ring_init(mem, size, 16);

    stop = 0;
    memset(&w, 0, sizeof(w));
    memset(r, 0, sizeof(r));

    for (i = 0; i < 3; i++) {
        r[i].ring = ring;
        r[i].stop = &stop;
        r[i].mode = i;
        r[i].rnd = i + 1;
        CHECK(pthread_create(&tid[i], NULL, test_reader_thread, &r[i]) == 0);
    }

    w.seconds = 2.0;
    w.readers = r;
    w.nreaders = 3;
    test_writer_run(ring, &stop, &w);

    for (i = 0; i < 3; i++) {
        pthread_join(tid[i], NULL);
    }

    test_report("stress (3 reader threads)", ring, &w, r, 3);

    free(mem);
}


static pid_t
test_fork_reader(test_shared_t *sh, void *mem, size_t size, int i)
{
    pid_t           pid;
    test_reader_t  *r;

    /* the child must not write out the parent's buffered output again */
    fflush(stdout);
    fflush(stderr);

    pid = fork();

    if (pid != 0) {
        return pid;
    }

    /* a worker process: attaches to the block the "master" created */
    r = &sh->readers[i];
    r->ring = ngx_http_dashstream_ring_attach(mem, size);

    if (r->ring == NULL) {
        _exit(2);
    }

    while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }

    test_reader_run(r);

    _exit(r->count[TEST_C_BAD] == 0 ? 0 : 1);
}


UNIT_TEST(test_ring_stress_fork)
{
    int                          i, status;
    void                        *mem;
    size_t                       size;
    pid_t                        pid[2];
    test_writer_t                w;
    test_shared_t               *sh;
    ngx_http_dashstream_ring_t  *ring;

    size = ngx_http_dashstream_ring_mem_size(16, 4096);
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh = mmap(NULL, sizeof(test_shared_t), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED && sh != MAP_FAILED);

    if (mem == MAP_FAILED || sh == MAP_FAILED) {
        return;
    }

    ring = ngx_http_dashstream_ring_init(mem, size, 16);
    memset(sh, 0, sizeof(test_shared_t));
    memset(&w, 0, sizeof(w));

    for (i = 0; i < 2; i++) {
        sh->readers[i].stop = &sh->stop;
        sh->readers[i].mode = i;
        sh->readers[i].rnd = i + 11;
        pid[i] = test_fork_reader(sh, mem, size, i);
        CHECK(pid[i] > 0);
    }

    __atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
    w.seconds = 1.0;
    w.readers = sh->readers;
    w.nreaders = 2;
    test_writer_run(ring, &sh->stop, &w);

    for (i = 0; i < 2; i++) {
        CHECK(waitpid(pid[i], &status, 0) == pid[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }

    test_report("stress (2 reader processes)", ring, &w, sh->readers, 2);

    munmap(sh, sizeof(test_shared_t));
    munmap(mem, size);
}


UNIT_MAIN("ring",
          UNIT_CASE(test_ring_sizes),
          UNIT_CASE(test_ring_init_attach),
          UNIT_CASE(test_ring_round_trip),
          UNIT_CASE(test_ring_wrap),
          UNIT_CASE(test_ring_clear),
          UNIT_CASE(test_ring_evict_slots),
          UNIT_CASE(test_ring_evict_bytes),
          UNIT_CASE(test_ring_max_record),
          UNIT_CASE(test_ring_read_errors),
          UNIT_CASE(test_ring_zero_length),
          UNIT_CASE(test_ring_two_mappings),
          UNIT_CASE(test_ring_stress_threads),
          UNIT_CASE(test_ring_stress_fork))
