/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_DASHFLOW_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_DASHFLOW_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * The DashFlow websocket control protocol, compatible with the reference
 * DashFlow server's browser UI (DESIGN.md section 5).  Client messages are
 * parsed into caller-owned arrays; server messages are written into a
 * caller buffer.  Nothing here allocates.
 */


#define NGX_HTTP_DASHSTREAM_MSG_RESUME        1
#define NGX_HTTP_DASHSTREAM_MSG_CURSOR_RESET  2

#define NGX_HTTP_DASHSTREAM_FROM_CURSOR       0
#define NGX_HTTP_DASHSTREAM_FROM_LATEST       1
#define NGX_HTTP_DASHSTREAM_FROM_EARLIEST     2

#define NGX_HTTP_DASHSTREAM_MODE_AUTO         0
#define NGX_HTTP_DASHSTREAM_MODE_PARTITION    1
#define NGX_HTTP_DASHSTREAM_MODE_THREAD       2


typedef struct {
    int32_t                               partition;
    int64_t                               offset;
} ngx_http_dashstream_cursor_t;


typedef struct {
    /* JSON-unescaped, points into the message scratch, not NUL-terminated */
    const char                           *thread_id;
    size_t                                len;
    uint64_t                              sequence;
} ngx_http_dashstream_thread_cursor_t;


/*
 * The caller sets cursors/max_cursors, threads/max_threads and
 * scratch/scratch_len; max_cursors and max_threads are also the protocol
 * caps.  A scratch at least as long as the message always holds its
 * thread ids.  The parser fills in the rest.
 */

typedef struct {
    int                                   type;
    int                                   from;
    int                                   mode;
    unsigned                              has_partitions:1;
    unsigned                              has_threads:1;

    ngx_http_dashstream_cursor_t         *cursors;
    size_t                                ncursors;
    size_t                                max_cursors;

    ngx_http_dashstream_thread_cursor_t  *threads;
    size_t                                nthreads;
    size_t                                max_threads;

    char                                 *scratch;
    size_t                                scratch_len;
} ngx_http_dashstream_dashflow_msg_t;


/* replay_complete says "complete":true when !capped && nmissing == 0 */

typedef struct {
    uint64_t                              total_replayed;
    const ngx_http_dashstream_cursor_t   *last;
    size_t                                nlast;
    const int32_t                        *missing;
    size_t                                nmissing;
    const char                           *mode;
    unsigned                              capped:1;
} ngx_http_dashstream_replay_summary_t;


/*
 * Returns 0, or -1 with *code set to a static protocol error code and a
 * NUL-terminated human-readable reason in errmsg (truncated to errcap):
 *
 *   INVALID_JSON                not RFC 8259 JSON, nested deeper than
 *                               NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH, or one
 *                               of the protocol's keys given twice
 *   MISSING_TYPE                not an object, no "type", or not a string
 *   UNKNOWN_MESSAGE_TYPE        neither "resume" nor "cursor_reset"
 *   INVALID_FROM, INVALID_MODE  not one of the protocol's strings
 *   INVALID_CURSOR              a cursor map that is not an object; a key
 *                               that is not a canonical decimal int32; an
 *                               offset (sequence) that is not a canonical
 *                               non-negative int64 (uint64) JSON integer or
 *                               decimal string; a repeated partition or
 *                               thread; thread ids overflowing the scratch
 *   RESUME_TOO_MANY_PARTITIONS  more than max_cursors partitions
 *   RESUME_TOO_MANY_THREADS     more than max_threads threads
 *
 * Checks run in that order and stop at the first failure.  Unknown keys
 * are ignored; a cursor_reset is not checked beyond its "type".
 */
int ngx_http_dashstream_dashflow_parse(const unsigned char *p, size_t len,
    ngx_http_dashstream_dashflow_msg_t *m, const char **code, char *errmsg,
    size_t errcap);

/*
 * Each writer returns the message length, or 0 if it does not fit in size
 * bytes.  String arguments are NUL-terminated, NULL is written as "";
 * they are JSON-escaped and invalid UTF-8 becomes U+FFFD.
 */
size_t ngx_http_dashstream_dashflow_write_cursor(unsigned char *buf,
    size_t size, int32_t partition, int64_t offset);
size_t ngx_http_dashstream_dashflow_write_replay_complete(unsigned char *buf,
    size_t size, const ngx_http_dashstream_replay_summary_t *rs);
size_t ngx_http_dashstream_dashflow_write_cursor_stale(unsigned char *buf,
    size_t size, int32_t partition, int64_t requested, int64_t oldest,
    const char *message);
size_t ngx_http_dashstream_dashflow_write_gap(unsigned char *buf,
    size_t size, int32_t partition, uint64_t count, const char *message);
size_t ngx_http_dashstream_dashflow_write_gap_dropped(unsigned char *buf,
    size_t size, uint64_t count, const char *reason, const char *message);
size_t ngx_http_dashstream_dashflow_write_error(unsigned char *buf,
    size_t size, const char *code, const char *message);
size_t ngx_http_dashstream_dashflow_write_cursor_reset_complete(
    unsigned char *buf, size_t size,
    const ngx_http_dashstream_cursor_t *latest, size_t n);


#endif /* _NGX_HTTP_DASHSTREAM_DASHFLOW_H_INCLUDED_ */
