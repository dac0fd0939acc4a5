/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_ZONE_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_dashstream_ring.h"


/*
 * The shared zone: the ring, the lease that names its one writer, and every
 * value the metrics and status locations show.  The threads of worker 0
 * write, all workers read.  Every value is one aligned 64-bit word, written
 * with a plain store or ngx_atomic_fetch_add() and read without a lock, so
 * whichever worker answers a scrape shows the same numbers.
 */


/* partitions are indexed directly */
#define NGX_HTTP_DASHSTREAM_MAX_PARTITIONS   1024
#define NGX_HTTP_DASHSTREAM_MAX_WORKERS      256

#define NGX_HTTP_DASHSTREAM_HIST_MAX         16
#define NGX_HTTP_DASHSTREAM_NAME_LEN         64
#define NGX_HTTP_DASHSTREAM_MAX_TOOLS        64
#define NGX_HTTP_DASHSTREAM_MAX_SERIES       256
#define NGX_HTTP_DASHSTREAM_ERROR_LEN        256
/* Kafka topic names have at most 249 characters */
#define NGX_HTTP_DASHSTREAM_TOPIC_LEN        256

#define NGX_HTTP_DASHSTREAM_MSG_TYPES        10
#define NGX_HTTP_DASHSTREAM_EVENT_TYPES      16      /* the last: unknown */
#define NGX_HTTP_DASHSTREAM_TOOL_STAGES      4
#define NGX_HTTP_DASHSTREAM_SEVERITIES       5
#define NGX_HTTP_DASHSTREAM_DECODE_ERRORS    6       /* index 0 unused */

#define NGX_HTTP_DASHSTREAM_KERR_TRANSPORT   0
#define NGX_HTTP_DASHSTREAM_KERR_BROKERS     1
#define NGX_HTTP_DASHSTREAM_KERR_AUTH        2
#define NGX_HTTP_DASHSTREAM_KERR_TOPIC       3
#define NGX_HTTP_DASHSTREAM_KERR_TIMEOUT     4
#define NGX_HTTP_DASHSTREAM_KERR_RESOLVE     5
#define NGX_HTTP_DASHSTREAM_KERR_FATAL       6
#define NGX_HTTP_DASHSTREAM_KERR_OTHER       7
#define NGX_HTTP_DASHSTREAM_KERR_N           8

#define NGX_HTTP_DASHSTREAM_DLQ_QUEUE_FULL   0
#define NGX_HTTP_DASHSTREAM_DLQ_TIMED_OUT    1
#define NGX_HTTP_DASHSTREAM_DLQ_BROKER       2
#define NGX_HTTP_DASHSTREAM_DLQ_TOO_LARGE    3
#define NGX_HTTP_DASHSTREAM_DLQ_RETRIES      4
#define NGX_HTTP_DASHSTREAM_DLQ_OTHER        5
#define NGX_HTTP_DASHSTREAM_DLQ_N            6


/* fixed buckets; the sum is kept in millionths of the histogram's unit */
typedef struct {
    ngx_atomic_t                    bucket[NGX_HTTP_DASHSTREAM_HIST_MAX];
    ngx_atomic_t                    count;
    ngx_atomic_t                    sum;
} ngx_http_dashstream_hist_t;


/*
 * One partition of the topic.  "position" is the next offset to process
 * (the last processed offset + 1, 0 if none was), "last_written" the last
 * offset in the ring + 1; "high_watermark" and "committed" are the polled
 * offsets + 1.  In all four, 0 means "not known".
 */
typedef struct {
    ngx_atomic_t                    assigned;
    ngx_atomic_t                    assigned_ms;    /* realtime, ms */
    ngx_atomic_t                    position;
    ngx_atomic_t                    position_live;  /* since the assignment */
    ngx_atomic_t                    last_written;
    ngx_atomic_t                    last_ts_ms;     /* Kafka timestamp */
    ngx_atomic_t                    high_watermark;
    ngx_atomic_t                    hwm_ms;
    ngx_atomic_t                    committed;
    ngx_atomic_t                    messages;
    ngx_atomic_t                    paused;
    /* fail_closed: offset + 1 of a message not yet dead-lettered */
    ngx_atomic_t                    dlq_held;
} ngx_http_dashstream_part_t;


typedef struct {
    ngx_atomic_t                    pid;
    ngx_atomic_t                    subscribers;
} ngx_http_dashstream_worker_slot_t;


/* a text one thread writes and any worker reads: gen is odd while writing */
typedef struct {
    ngx_atomic_t                    gen;
    ngx_atomic_t                    ms;
    u_char                          text[NGX_HTTP_DASHSTREAM_ERROR_LEN];
} ngx_http_dashstream_note_t;


typedef struct {
    u_char                          name[NGX_HTTP_DASHSTREAM_NAME_LEN];
    ngx_atomic_t                    stage[NGX_HTTP_DASHSTREAM_TOOL_STAGES];
} ngx_http_dashstream_tool_t;


typedef struct {
    u_char                          scope[NGX_HTTP_DASHSTREAM_NAME_LEN];
    u_char                          name[NGX_HTTP_DASHSTREAM_NAME_LEN];
    ngx_atomic_t                    value;          /* a double's bits */
    ngx_atomic_t                    updates;
} ngx_http_dashstream_series_t;


typedef struct {
    /* consumer */
    ngx_atomic_t                    messages_ok;
    ngx_atomic_t                    messages_error;
    ngx_atomic_t                    decode_errors[NGX_HTTP_DASHSTREAM_DECODE_ERRORS];
    ngx_atomic_t                    duplicates_skipped;
    ngx_atomic_t                    bytes_consumed;
    ngx_atomic_t                    client_errors[NGX_HTTP_DASHSTREAM_KERR_N];
    ngx_atomic_t                    rebalances;
    ngx_atomic_t                    consumer_starts;
    ngx_atomic_t                    consumer_running;
    ngx_atomic_t                    broker_up;

    /* lag poller */
    ngx_atomic_t                    lag_polls;
    ngx_atomic_t                    lag_poll_failures;
    ngx_atomic_t                    lag_poll_ok_ms;
    ngx_http_dashstream_hist_t      lag_poll_duration;

    /* dead-letter queue */
    ngx_atomic_t                    dlq_sends;
    ngx_atomic_t                    dlq_failures[NGX_HTTP_DASHSTREAM_DLQ_N];
    ngx_atomic_t                    dlq_backlog;
    ngx_atomic_t                    dlq_stall_since_ms;
    ngx_atomic_t                    dlq_stall_total_ms;

    /* per-thread sequences */
    ngx_atomic_t                    seq_gaps;
    ngx_atomic_t                    seq_missing;
    ngx_atomic_t                    seq_duplicates;
    ngx_atomic_t                    seq_reorders;
    ngx_atomic_t                    seq_evictions;
    ngx_atomic_t                    seq_threads;

    /* subscribers; those connected are counted per worker slot */
    ngx_atomic_t                    subscribers_total;
    ngx_atomic_t                    frames_sent;
    ngx_atomic_t                    bytes_sent;
    ngx_atomic_t                    dropped_slow;
    ngx_atomic_t                    dropped_overtaken;
    ngx_atomic_t                    closed_slow;
    ngx_atomic_t                    resumes;
    ngx_atomic_t                    replayed;
    ngx_atomic_t                    handshake_rejected;
    ngx_atomic_t                    protocol_errors;
    ngx_http_dashstream_hist_t      e2e_latency;

    /* overwrites of the rings before this one: a resize makes it anew */
    ngx_atomic_t                    ring_overwrites_base;

    /* what the stream says */
    ngx_atomic_t                    msg_types[NGX_HTTP_DASHSTREAM_MSG_TYPES];
    ngx_atomic_t                    event_types[NGX_HTTP_DASHSTREAM_EVENT_TYPES];
    ngx_atomic_t                    token_chunks;
    ngx_atomic_t                    errors[NGX_HTTP_DASHSTREAM_SEVERITIES];
    ngx_http_dashstream_hist_t      tool_duration;
    ngx_atomic_t                    series_dropped;
} ngx_http_dashstream_counters_t;


typedef struct {
    uint32_t                        magic;
    uint32_t                        layout;

    /* ring writer lease: exactly one consumer writes at any moment */
    ngx_atomic_t                    writer_pid;
    ngx_atomic_t                    writer_beat;    /* monotonic ms */
    ngx_atomic_t                    writer_generation;

    /*
     * The topic whose (partition, offset) pairs the ring and part[] hold,
     * written by the lease holder only; generation counts topic changes.
     */
    u_char                          topic[NGX_HTTP_DASHSTREAM_TOPIC_LEN];
    ngx_atomic_t                    topic_generation;

    /* partition count from the last metadata poll, 0: unknown */
    ngx_atomic_t                    partitions;
    ngx_atomic_t                    topic_missing;

    ngx_http_dashstream_counters_t  counters;
    ngx_http_dashstream_part_t      part[NGX_HTTP_DASHSTREAM_MAX_PARTITIONS];
    ngx_http_dashstream_worker_slot_t
                                    workers[NGX_HTTP_DASHSTREAM_MAX_WORKERS];

    ngx_http_dashstream_note_t      consumer_error;
    ngx_http_dashstream_note_t      lag_error;

    /* appended to only; n is published after the entry is written */
    ngx_atomic_t                    ntools;
    ngx_http_dashstream_tool_t      tools[NGX_HTTP_DASHSTREAM_MAX_TOOLS];
    ngx_atomic_t                    nseries;
    ngx_http_dashstream_series_t    series[NGX_HTTP_DASHSTREAM_MAX_SERIES];

    ngx_http_dashstream_ring_t     *ring;
} ngx_http_dashstream_shctx_t;


typedef struct {
    ngx_http_dashstream_shctx_t    *sh;
    ngx_slab_pool_t                *shpool;
    ngx_uint_t                      records;        /* ring slots asked for */
    u_char                         *file;           /* of dashstream_zone */
    ngx_uint_t                      line;
} ngx_http_dashstream_zone_ctx_t;


/* histogram bucket bounds, in the histogram's unit */
extern const double  ngx_http_dashstream_lag_poll_buckets[];
extern const double  ngx_http_dashstream_e2e_buckets[];
extern const double  ngx_http_dashstream_tool_buckets[];


ngx_int_t ngx_http_dashstream_init_zone(ngx_shm_zone_t *shm_zone, void *data);

void ngx_http_dashstream_hist_observe(ngx_http_dashstream_hist_t *h,
    const double *bounds, double v);
void ngx_http_dashstream_note_set(ngx_http_dashstream_note_t *note,
    uint64_t ms, const char *text);
size_t ngx_http_dashstream_note_get(ngx_http_dashstream_note_t *note,
    u_char *buf, size_t size, uint64_t *ms);

ngx_int_t ngx_http_dashstream_worker_register(
    ngx_http_dashstream_shctx_t *sh, ngx_pid_t pid);
void ngx_http_dashstream_worker_unregister(ngx_http_dashstream_shctx_t *sh,
    ngx_int_t slot);
ngx_uint_t ngx_http_dashstream_worker_alive(ngx_http_dashstream_shctx_t *sh,
    ngx_uint_t slot);
ngx_atomic_uint_t ngx_http_dashstream_subscribers(
    ngx_http_dashstream_shctx_t *sh);
uint64_t ngx_http_dashstream_ring_overwrites(ngx_http_dashstream_shctx_t *sh);


#endif /* _NGX_HTTP_DASHSTREAM_ZONE_H_INCLUDED_ */
