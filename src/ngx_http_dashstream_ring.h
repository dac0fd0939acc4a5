/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_RING_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_RING_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * A single-writer, multi-reader record ring in one caller-provided memory
 * block (a slab allocation in an nginx shared zone).  The block holds only
 * offsets, so it may be mapped at different addresses and is reused as is
 * after a reload.  Readers take no lock and never block the writer; a read
 * either returns an intact copy or reports that the writer overtook it.
 *
 * Sizing: every record takes NGX_HTTP_DASHSTREAM_RING_REC_HEADER bytes of
 * metadata plus thread_id, tenant_id and payload bytes (the "body"), rounded
 * up to 8.  A body may be at most ngx_http_dashstream_ring_max_record()
 * bytes, so a read buffer of that size never gets TOO_SMALL.  On TOO_SMALL,
 * rec->meta is filled in and ngx_http_dashstream_rec_body_size(&rec->meta)
 * is the size needed; ngx_http_dashstream_ring_read_meta() gives the same
 * without copying the body.  The meta a read fills in is only valid when it
 * returns OK or TOO_SMALL.
 *
 * After a reload, ngx_http_dashstream_ring_attach() keeps the block's own
 * nslots and data_size (see ngx_http_dashstream_ring_stats()); the caller
 * decides whether they still match its configuration.
 */

#define NGX_HTTP_DASHSTREAM_RING_OK            0
#define NGX_HTTP_DASHSTREAM_RING_OVERTAKEN    -1
#define NGX_HTTP_DASHSTREAM_RING_NOT_YET      -2
#define NGX_HTTP_DASHSTREAM_RING_TOO_SMALL    -3
#define NGX_HTTP_DASHSTREAM_RING_TOO_BIG      -4
#define NGX_HTTP_DASHSTREAM_RING_INCOMPATIBLE -5
/* a record that is not overtaken is inconsistent: a second writer */
#define NGX_HTTP_DASHSTREAM_RING_CORRUPT      -6

#define NGX_HTTP_DASHSTREAM_RING_REC_HEADER    64
#define NGX_HTTP_DASHSTREAM_RING_MIN_DATA      1024
#define NGX_HTTP_DASHSTREAM_RING_MAX_SLOTS     (1U << 24)


typedef struct ngx_http_dashstream_ring_s  ngx_http_dashstream_ring_t;


typedef struct {
    uint64_t   seq;             /* assigned by the ring */
    int64_t    offset;          /* Kafka offset */
    int64_t    prev_offset;     /* previous offset of this partition written
                                   to the ring, -1 if none (writer supplies) */
    int64_t    kafka_ts_ms;     /* Kafka timestamp, -1 if none */
    int64_t    producer_ts_us;  /* DashStream Header.timestamp_us, 0 if
                                   unknown */
    uint64_t   dash_sequence;   /* DashStream Header.sequence */
    int32_t    partition;
    uint32_t   payload_len;
    uint8_t    msg_type;        /* DashStream MessageType, 0 = unknown */
    uint8_t    flags;
    uint8_t    thread_id_len;   /* truncated to 255 by the writer */
    uint8_t    tenant_id_len;
} ngx_http_dashstream_rec_meta_t;


typedef struct {
    ngx_http_dashstream_rec_meta_t   meta;
    const unsigned char             *thread_id;
    const unsigned char             *tenant_id;
    const unsigned char             *payload;
} ngx_http_dashstream_rec_t;


/* one snapshot per field: the fields are not read atomically together */
typedef struct {
    uint64_t   head;            /* next seq to be written */
    uint64_t   tail;            /* oldest readable seq */
    uint64_t   records;         /* head - tail */
    uint64_t   bytes_used;      /* data bytes from the oldest record to the
                                   end of the newest, lap skips included */
    uint64_t   data_size;
    uint64_t   max_record;
    uint64_t   overwrites;      /* records evicted to make room */
    uint32_t   nslots;
} ngx_http_dashstream_ring_stats_t;


#define ngx_http_dashstream_rec_body_size(m)                                  \
    ((size_t) (m)->thread_id_len + (m)->tenant_id_len + (m)->payload_len)


size_t ngx_http_dashstream_ring_mem_size(uint32_t nslots, size_t data_size);
ngx_http_dashstream_ring_t *ngx_http_dashstream_ring_init(void *mem,
    size_t size, uint32_t nslots);
int ngx_http_dashstream_ring_check(void *mem, size_t size);
ngx_http_dashstream_ring_t *ngx_http_dashstream_ring_attach(void *mem,
    size_t size);
size_t ngx_http_dashstream_ring_max_record(ngx_http_dashstream_ring_t *ring);

/* writer only; returns the seq (>= 0) or NGX_HTTP_DASHSTREAM_RING_TOO_BIG */
int64_t ngx_http_dashstream_ring_append(ngx_http_dashstream_ring_t *ring,
    const ngx_http_dashstream_rec_meta_t *meta, const unsigned char *thread_id,
    const unsigned char *tenant_id, const unsigned char *payload);

/*
 * writer only: drops every record (readers of them get OVERTAKEN; seqs go
 * on from head) without counting overwrites; returns how many it dropped
 */
uint64_t ngx_http_dashstream_ring_clear(ngx_http_dashstream_ring_t *ring);

/* rec->thread_id, tenant_id and payload point into buf on OK */
int ngx_http_dashstream_ring_read(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, unsigned char *buf, size_t cap,
    ngx_http_dashstream_rec_t *rec);
int ngx_http_dashstream_ring_read_meta(ngx_http_dashstream_ring_t *ring,
    uint64_t seq, ngx_http_dashstream_rec_meta_t *meta);

uint64_t ngx_http_dashstream_ring_head(ngx_http_dashstream_ring_t *ring);
uint64_t ngx_http_dashstream_ring_tail(ngx_http_dashstream_ring_t *ring);
void ngx_http_dashstream_ring_stats(ngx_http_dashstream_ring_t *ring,
    ngx_http_dashstream_ring_stats_t *st);


#endif /* _NGX_HTTP_DASHSTREAM_RING_H_INCLUDED_ */
