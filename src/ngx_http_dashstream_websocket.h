/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_WEBSOCKET_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_WEBSOCKET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_wsframe.h"
#include "ngx_http_dashstream_dashflow.h"


/*
 * A frame block: the bytes of one or more websocket frames, built once per
 * worker and shared by every subscriber that queues it.  For a record,
 * data holds the DashFlow cursor text frame (cursor_len bytes) followed by
 * the binary frame with the Kafka value; "raw" subscribers send only the
 * binary part.
 */

typedef struct {
    ngx_uint_t                       refs;
    size_t                           len;
    size_t                           cursor_len;
    u_char                           data[1];
} ngx_http_dashstream_frame_t;


typedef struct ngx_http_dashstream_out_s  ngx_http_dashstream_out_t;

struct ngx_http_dashstream_out_s {
    ngx_http_dashstream_out_t       *next;
    ngx_http_dashstream_frame_t     *frame;
    u_char                          *pos;
    u_char                          *last;
    ngx_uint_t                       record;    /* counts as a message */
};


typedef struct {
    ngx_uint_t                       from;
    ngx_uint_t                       thread_mode;
    ngx_http_dashstream_cursor_t    *cursors;      /* sorted by partition */
    size_t                           ncursors;
    uint8_t                         *seen;         /* per cursor */
    uint8_t                         *missing;      /* per cursor */
    ngx_http_dashstream_thread_cursor_t  *threads;
    size_t                           nthreads;
    int64_t                         *last;         /* per partition + 1 */
    uint64_t                         replayed;
    uint64_t                         lost;
} ngx_http_dashstream_replay_t;


struct ngx_http_dashstream_sub_s {
    ngx_queue_t                      queue;
    ngx_http_request_t              *request;
    ngx_connection_t                *connection;
    ngx_http_dashstream_loc_conf_t  *dlcf;

    uint64_t                         next_seq;
    ngx_http_dashstream_out_t       *out;
    ngx_http_dashstream_out_t      **out_last;
    ngx_http_dashstream_out_t       *pong;         /* not yet on the wire */
    size_t                           out_bytes;

    uint64_t                         dropped;      /* not yet told */
    ngx_http_dashstream_replay_t    *replay;

    /* resume cursors ahead of this server's ring (session.c) */
    ngx_http_dashstream_cursor_t    *ahead;
    ngx_uint_t                       nahead;

    /* filters from the query string and the tenant scope */
    ngx_str_t                        thread;
    ngx_str_t                        tenant;
    uint32_t                         types;        /* bit per type, 0: all */

    ngx_http_dashstream_wsreader_t   reader;
    u_char                          *reader_buf;

    ngx_event_t                      ping;
    ngx_event_t                      wait;
    ngx_msec_t                       last_rx;      /* or took output */
    off_t                            acked;        /* by the client's TCP */

    unsigned                         protocol:1;
    unsigned                         live:1;
    unsigned                         waiting:1;
    unsigned                         closing:1;
    unsigned                         close_rcvd:1;
    unsigned                         ping_sent:1;
    unsigned                         read_blocked:1;
    unsigned                         earliest:1;
};


/* what a handshake asks for, once wspolicy.c allowed it */
typedef struct {
    ngx_str_t                        thread;
    ngx_str_t                        tenant;
    uint32_t                         types;
    unsigned                         from_latest:1;
    unsigned                         from_earliest:1;
} ngx_http_dashstream_ws_args_t;


/* wspolicy.c: query arguments, Origin allow-list, tenant scope */
ngx_int_t ngx_http_dashstream_ws_policy(ngx_http_request_t *r,
    ngx_http_dashstream_ws_args_t *args, const char **reason);


/* websocket.c: the connection */
ngx_table_elt_t *ngx_http_dashstream_ws_header(ngx_http_request_t *r,
    const char *name, const char *token, ngx_uint_t *count);
ngx_int_t ngx_http_dashstream_sub_queue(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_frame_t *frame, u_char *pos, u_char *last,
    ngx_uint_t record);
ngx_int_t ngx_http_dashstream_sub_text(ngx_http_dashstream_sub_t *sub,
    u_char *json, size_t len);
void ngx_http_dashstream_sub_flush(ngx_http_dashstream_sub_t *sub);
void ngx_http_dashstream_sub_close(ngx_http_dashstream_sub_t *sub,
    uint16_t code, const char *reason);

/* fanout.c: frames, live delivery and catching up from the ring */
ngx_http_dashstream_frame_t *ngx_http_dashstream_frame_alloc(size_t len);
void ngx_http_dashstream_frame_unref(ngx_http_dashstream_frame_t *frame);
ngx_int_t ngx_http_dashstream_sub_wants(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_rec_t *rec);
void ngx_http_dashstream_sub_pump(ngx_http_dashstream_sub_t *sub);
void ngx_http_dashstream_sub_behind(ngx_http_dashstream_sub_t *sub,
    uint64_t seq);
void ngx_http_dashstream_sub_dropped(ngx_http_dashstream_sub_t *sub,
    uint64_t n, const char *reason);
ngx_http_dashstream_ring_t *ngx_http_dashstream_fanout_ring(void);
ngx_http_dashstream_shctx_t *ngx_http_dashstream_fanout_sh(void);
ngx_int_t ngx_http_dashstream_fanout_read(uint64_t seq,
    ngx_http_dashstream_rec_t *rec);

/* session.c: the DashFlow control protocol */
void ngx_http_dashstream_session_message(ngx_http_dashstream_sub_t *sub,
    u_char *p, size_t len);
void ngx_http_dashstream_session_earliest(ngx_http_dashstream_sub_t *sub);
ngx_int_t ngx_http_dashstream_session_replay_wants(
    ngx_http_dashstream_sub_t *sub, ngx_http_dashstream_rec_t *rec);
void ngx_http_dashstream_session_replayed(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_rec_meta_t *meta);
void ngx_http_dashstream_session_replay_done(ngx_http_dashstream_sub_t *sub);
ngx_int_t ngx_http_dashstream_session_ahead_wants(
    ngx_http_dashstream_sub_t *sub, ngx_http_dashstream_rec_t *rec);
void ngx_http_dashstream_session_free(ngx_http_dashstream_sub_t *sub);


#endif /* _NGX_HTTP_DASHSTREAM_WEBSOCKET_H_INCLUDED_ */
