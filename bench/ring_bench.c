/*
 * Copyright (C) ngx_dashstream authors
 *
 * Ring throughput: appends per second with no reader, then with readers
 * following the head in other threads.
 *
 *   cc -O2 -Isrc -o build/ring_bench bench/ring_bench.c \
 *       src/ngx_http_dashstream_ring.c -lpthread
 *   build/ring_bench [payload bytes] [readers]
 */


#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ngx_http_dashstream_ring.h"


#define BENCH_SLOTS     65536
#define BENCH_DATA      (64 * 1024 * 1024)
#define BENCH_SECONDS   2.0


typedef struct {
    ngx_http_dashstream_ring_t  *ring;
    int                          stop;
    size_t                       payload;
    uint64_t                     appends;
    double                       elapsed;
} bench_writer_t;


typedef struct {
    bench_writer_t              *w;
    uint64_t                     ok;
    uint64_t                     overtaken;
    uint64_t                     bytes;
} bench_reader_t;


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void *
bench_read(void *data)
{
    int                          rc;
    size_t                       cap;
    uint64_t                     seq;
    unsigned char               *buf;
    bench_reader_t              *r;
    ngx_http_dashstream_rec_t    rec;
    ngx_http_dashstream_ring_t  *ring;

    r = data;
    ring = r->w->ring;
    cap = ngx_http_dashstream_ring_max_record(ring);
    buf = malloc(cap);
    seq = ngx_http_dashstream_ring_head(ring);

    while (!__atomic_load_n(&r->w->stop, __ATOMIC_RELAXED)) {
        rc = ngx_http_dashstream_ring_read(ring, seq, buf, cap, &rec);

        if (rc == NGX_HTTP_DASHSTREAM_RING_OK) {
            r->ok++;
            r->bytes += rec.meta.payload_len;
            seq++;

        } else if (rc == NGX_HTTP_DASHSTREAM_RING_OVERTAKEN) {
            r->overtaken++;
            seq = ngx_http_dashstream_ring_tail(ring);
        }
    }

    free(buf);

    return NULL;
}


static void
bench_write(bench_writer_t *w)
{
    double                           start;
    unsigned char                   *payload;
    ngx_http_dashstream_rec_meta_t   m;

    payload = malloc(w->payload);
    memset(payload, 'x', w->payload);
    memset(&m, 0, sizeof(m));

    m.thread_id_len = 16;
    m.tenant_id_len = 8;
    m.payload_len = (uint32_t) w->payload;

    start = bench_now();

    for ( ;; ) {
        if ((w->appends & 4095) == 0 && bench_now() - start > BENCH_SECONDS) {
            break;
        }

        m.offset = (int64_t) w->appends;
        (void) ngx_http_dashstream_ring_append(w->ring, &m,
                   (const unsigned char *) "thread-0123456789",
                   (const unsigned char *) "tenant-a", payload);
        w->appends++;
    }

    w->elapsed = bench_now() - start;
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED);
    free(payload);
}


int
main(int argc, char **argv)
{
    int              i, n;
    void            *mem;
    size_t           size;
    pthread_t        tid[8];
    bench_writer_t   w;
    bench_reader_t   r[8];

    memset(&w, 0, sizeof(w));
    memset(r, 0, sizeof(r));

    w.payload = argc > 1 ? (size_t) atol(argv[1]) : 512;
    n = argc > 2 ? atoi(argv[2]) : 0;
    n = n < 0 ? 0 : (n > 8 ? 8 : n);

    size = ngx_http_dashstream_ring_mem_size(BENCH_SLOTS, BENCH_DATA);
    mem = aligned_alloc(64, size);
    w.ring = ngx_http_dashstream_ring_init(mem, size, BENCH_SLOTS);

    if (w.ring == NULL) {
        fprintf(stderr, "ring_bench: init failed\n");
        return 1;
    }

    for (i = 0; i < n; i++) {
        r[i].w = &w;
        pthread_create(&tid[i], NULL, bench_read, &r[i]);
    }

    bench_write(&w);

    printf("ring_bench: payload %zu bytes, %d readers: %.0f appends/s "
           "(%.0f MB/s)", w.payload, n, w.appends / w.elapsed,
           w.appends * (double) w.payload / w.elapsed / 1e6);

    for (i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        printf("; reader %d: %.0f reads/s, %llu overtaken", i,
               r[i].ok / w.elapsed, (unsigned long long) r[i].overtaken);
    }

    printf("\n");
    free(mem);

    return 0;
}
