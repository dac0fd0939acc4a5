/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_SEQ_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_SEQ_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_DASHSTREAM_SEQ_MAX_CAPACITY  (1U << 30)


typedef enum {
    NGX_HTTP_DASHSTREAM_SEQ_OK = 0,
    NGX_HTTP_DASHSTREAM_SEQ_FIRST,
    NGX_HTTP_DASHSTREAM_SEQ_GAP,
    NGX_HTTP_DASHSTREAM_SEQ_DUPLICATE,
    NGX_HTTP_DASHSTREAM_SEQ_REORDER,
    NGX_HTTP_DASHSTREAM_SEQ_SKIPPED
} ngx_http_dashstream_seq_rc_e;


/*
 * A thread is known by the 64-bit FNV-1a hash of its id only.  Entries
 * sit in an open-addressing table at most half full and are chained in
 * least-recently-used order, so that eviction is O(1) and exact.
 */

typedef struct {
    uint64_t                          hash;       /* 0: free slot */
    uint64_t                          last;       /* highest sequence seen */
    uint32_t                          prev;       /* toward most recent */
    uint32_t                          next;
} ngx_http_dashstream_seq_entry_t;


typedef struct {
    uint64_t                          gaps;
    uint64_t                          missing;
    uint64_t                          duplicates;
    uint64_t                          reorders;
    uint64_t                          evictions;
    uint64_t                          skipped;
    uint32_t                          threads;    /* tracked now */
    uint32_t                          capacity;

    uint32_t                          mask;
    uint32_t                          shift;
    uint32_t                          head;       /* most recently used */
    uint32_t                          tail;       /* least recently used */
    ngx_http_dashstream_seq_entry_t  *slots;
} ngx_http_dashstream_seq_t;


/* 0 if capacity is 0 or above NGX_HTTP_DASHSTREAM_SEQ_MAX_CAPACITY */
size_t ngx_http_dashstream_seq_mem_size(uint32_t capacity);

/* mem: mem_size(capacity) bytes, 8-byte aligned; NULL on bad arguments */
ngx_http_dashstream_seq_t *ngx_http_dashstream_seq_init(void *mem,
    uint32_t capacity);

/*
 * Sequence 0 means unset and is skipped.  A sequence below the highest
 * seen is a reorder and leaves the highest in place.  *missing (may be
 * NULL) is the number of sequences a gap skipped, else 0.
 */
int ngx_http_dashstream_seq_observe(ngx_http_dashstream_seq_t *t,
    const char *thread_id, size_t len, uint64_t seq, uint64_t *missing);


#endif /* _NGX_HTTP_DASHSTREAM_SEQ_H_INCLUDED_ */
