/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "ngx_http_dashstream_websocket.h"


#define NGX_HTTP_DASHSTREAM_WS_GUID   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define NGX_HTTP_DASHSTREAM_CLOSE_MS  2000
#define NGX_HTTP_DASHSTREAM_NOTSENT_LOWAT  65536
#define NGX_HTTP_DASHSTREAM_READ_MAX  16


static ngx_int_t ngx_http_dashstream_ws_check(ngx_http_request_t *r,
    ngx_str_t *key, const char **reason);
static ngx_int_t ngx_http_dashstream_ws_reject(ngx_http_request_t *r,
    ngx_uint_t status, const char *reason);
static ngx_int_t ngx_http_dashstream_ws_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_dashstream_ws_accept(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_http_dashstream_sub_t *ngx_http_dashstream_ws_sub(
    ngx_http_request_t *r, ngx_http_dashstream_ws_args_t *args);
static void ngx_http_dashstream_ws_read(ngx_http_request_t *r);
static void ngx_http_dashstream_ws_write(ngx_http_request_t *r);
static void ngx_http_dashstream_ws_feed(ngx_http_dashstream_sub_t *sub,
    u_char *p, size_t n);
static void ngx_http_dashstream_ws_event(ngx_http_dashstream_sub_t *sub,
    int ev);
static void ngx_http_dashstream_ws_control(ngx_http_dashstream_sub_t *sub,
    unsigned opcode, u_char *p, size_t len);
static void ngx_http_dashstream_ws_pong(ngx_http_dashstream_sub_t *sub,
    u_char *p, size_t len);
static ngx_http_dashstream_out_t *ngx_http_dashstream_ws_enqueue(
    ngx_http_dashstream_sub_t *sub, ngx_http_dashstream_frame_t *frame,
    u_char *pos, u_char *last, ngx_uint_t record);
static void ngx_http_dashstream_ws_sent(ngx_http_dashstream_sub_t *sub,
    ngx_uint_t n, off_t bytes);
static void ngx_http_dashstream_ws_ping(ngx_event_t *ev);
static void ngx_http_dashstream_ws_wait(ngx_event_t *ev);
static ngx_uint_t ngx_http_dashstream_ws_draining(
    ngx_http_dashstream_sub_t *sub);
static void ngx_http_dashstream_ws_lowat(ngx_connection_t *c);
static void ngx_http_dashstream_ws_finalize(ngx_http_dashstream_sub_t *sub,
    ngx_int_t rc);
static void ngx_http_dashstream_ws_detach(ngx_http_dashstream_sub_t *sub);
static void ngx_http_dashstream_ws_cleanup(void *data);
static ngx_http_dashstream_out_t *ngx_http_dashstream_out_get(ngx_log_t *log);
static void ngx_http_dashstream_out_put(ngx_http_dashstream_out_t *out);


/* queue entries are reused: one is taken per frame and subscriber */
#define NGX_HTTP_DASHSTREAM_OUT_KEEP  65536

static ngx_http_dashstream_out_t  *ngx_http_dashstream_out_free;
static ngx_uint_t                  ngx_http_dashstream_out_nfree;

static ngx_chain_t  ngx_http_dashstream_cl[NGX_IOVS_PREALLOCATE];
static ngx_buf_t    ngx_http_dashstream_bufs[NGX_IOVS_PREALLOCATE];


ngx_int_t
ngx_http_dashstream_websocket_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      key;
    const char                    *reason;
    ngx_http_dashstream_sub_t     *sub;
    ngx_http_dashstream_shctx_t   *sh;
    ngx_http_dashstream_ws_args_t  args;

    sh = ngx_http_dashstream_fanout_sh();

    rc = ngx_http_dashstream_ws_check(r, &key, &reason);

    if (rc == NGX_OK) {
        rc = ngx_http_dashstream_ws_policy(r, &args, &reason);

        if (rc == NGX_HTTP_INTERNAL_SERVER_ERROR) {
            return rc;
        }
    }

    if (rc != NGX_OK) {
        if (sh) {
            (void) ngx_atomic_fetch_add(&sh->counters.handshake_rejected, 1);
        }

        return ngx_http_dashstream_ws_reject(r, rc, reason);
    }

    if (sh == NULL || ngx_http_dashstream_fanout_ring() == NULL) {
        return ngx_http_dashstream_ws_reject(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                             "the stream is not available "
                                             "in this process");
    }

    if (ngx_http_dashstream_ws_accept(r, &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    /*
     * The subscriber is made only now: its cleanup unlinks it from the
     * fan-out and counts it out, so it must not exist on the error paths
     * above.
     */

    sub = ngx_http_dashstream_ws_sub(r, &args);
    if (sub == NULL) {
        return NGX_ERROR;
    }

    r->main->count++;
    r->read_event_handler = ngx_http_dashstream_ws_read;
    r->write_event_handler = ngx_http_dashstream_ws_write;

    r->connection->log->action = "streaming to a websocket subscriber";

    ngx_http_dashstream_fanout_add(sub);

    ngx_add_timer(&sub->ping, sub->dlcf->ping_interval);

    if (sub->earliest) {
        ngx_http_dashstream_session_earliest(sub);

    } else if (sub->waiting) {
        ngx_add_timer(&sub->wait, sub->dlcf->resume_wait);

    } else {
        ngx_http_dashstream_sub_pump(sub);
    }

    /* a client may send its first frame together with the handshake */

    if (r->header_in->pos < r->header_in->last) {
        ngx_http_dashstream_ws_feed(sub, r->header_in->pos,
                                    r->header_in->last - r->header_in->pos);
        r->header_in->pos = r->header_in->last;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_dashstream_ws_check(ngx_http_request_t *r, ngx_str_t *key,
    const char **reason)
{
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET) {
        *reason = "a websocket handshake must be a GET request";
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->http_version != NGX_HTTP_VERSION_11
        || r->headers_in.upgrade == NULL
        || !ngx_http_dashstream_ws_has_token(r->headers_in.upgrade->value.data,
                                             r->headers_in.upgrade->value.len,
                                             "websocket"))
    {
        *reason = "this location speaks only websocket "
                  "(HTTP/1.1 with \"Upgrade: websocket\")";
        return 426;
    }

    h = ngx_http_dashstream_ws_header(r, "Connection", "upgrade", &n);

    if (h == NULL) {
        *reason = "the \"Connection\" header lacks the \"upgrade\" token";
        return NGX_HTTP_BAD_REQUEST;
    }

    h = ngx_http_dashstream_ws_header(r, "Sec-WebSocket-Version", NULL, &n);

    if (n != 1 || h->value.len != 2 || ngx_strncmp(h->value.data, "13", 2))
    {
        *reason = "unsupported or missing Sec-WebSocket-Version: "
                  "this server speaks version 13";
        return 426;
    }

    h = ngx_http_dashstream_ws_header(r, "Sec-WebSocket-Key", NULL, &n);

    if (n != 1 || !ngx_http_dashstream_ws_key_valid(h->value.data,
                                                   h->value.len))
    {
        *reason = "missing, repeated or invalid Sec-WebSocket-Key";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        *reason = "a websocket handshake must not have a body";
        return NGX_HTTP_BAD_REQUEST;
    }

    *key = h->value;

    return NGX_OK;
}


/*
 * Counts the request headers of that name and returns the first one, or
 * the first one whose value lists the token.
 */

ngx_table_elt_t *
ngx_http_dashstream_ws_header(ngx_http_request_t *r, const char *name,
    const char *token, ngx_uint_t *count)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;
    found = NULL;
    *count = 0;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].key.len != len
            || ngx_strncasecmp(h[i].key.data, (u_char *) name, len) != 0)
        {
            continue;
        }

        (*count)++;

        if (found == NULL
            && (token == NULL
                || ngx_http_dashstream_ws_has_token(h[i].value.data,
                                                    h[i].value.len, token)))
        {
            found = &h[i];
        }
    }

    return found;
}


static ngx_int_t
ngx_http_dashstream_ws_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason)
{
    size_t        len;
    ngx_buf_t    *b;
    ngx_str_t     v;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "dashstream: websocket handshake rejected with %ui: %s",
                  status, reason);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_NOT_ALLOWED) {
        ngx_str_set(&v, "GET");

        if (ngx_http_dashstream_ws_add_header(r, "Allow", &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (status == 426) {
        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
        ngx_str_set(&v, "websocket");

        if (ngx_http_dashstream_ws_add_header(r, "Upgrade", &v) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (status == 426 || status == NGX_HTTP_BAD_REQUEST) {
        ngx_str_set(&v, "13");

        if (ngx_http_dashstream_ws_add_header(r, "Sec-WebSocket-Version", &v)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    len = ngx_strlen(reason);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, reason, len);
    *b->last++ = LF;

    return ngx_http_dashstream_send_buffer(r, status, b, "text/plain",
                                           sizeof("text/plain") - 1);
}


static ngx_int_t
ngx_http_dashstream_ws_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


static ngx_int_t
ngx_http_dashstream_ws_accept(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char      digest[20];
    ngx_str_t   src, accept;
    ngx_sha1_t  sha1;

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_update(&sha1, NGX_HTTP_DASHSTREAM_WS_GUID,
                    sizeof(NGX_HTTP_DASHSTREAM_WS_GUID) - 1);
    ngx_sha1_final(digest, &sha1);

    src.data = digest;
    src.len = sizeof(digest);

    accept.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(20));
    if (accept.data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64(&accept, &src);

    ngx_str_set(&src, "websocket");

    if (ngx_http_dashstream_ws_add_header(r, "Upgrade", &src) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_dashstream_ws_add_header(r, "Sec-WebSocket-Accept",
                                             &accept);
}


static ngx_http_dashstream_sub_t *
ngx_http_dashstream_ws_sub(ngx_http_request_t *r,
    ngx_http_dashstream_ws_args_t *args)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_dashstream_sub_t  *sub;

    sub = ngx_pcalloc(r->pool, sizeof(ngx_http_dashstream_sub_t));
    if (sub == NULL) {
        return NULL;
    }

    sub->request = r;
    sub->connection = r->connection;
    sub->dlcf = ngx_http_get_module_loc_conf(r, ngx_http_dashstream_module);
    sub->protocol = sub->dlcf->protocol;
    sub->out_last = &sub->out;
    sub->last_rx = ngx_current_msec;
    sub->next_seq = ngx_http_dashstream_fanout_head();

    sub->ping.handler = ngx_http_dashstream_ws_ping;
    sub->ping.data = sub;
    sub->ping.log = r->connection->log;

    sub->wait.handler = ngx_http_dashstream_ws_wait;
    sub->wait.data = sub;
    sub->wait.log = r->connection->log;

    ngx_http_dashstream_ws_lowat(r->connection);

    sub->thread = args->thread;
    sub->tenant = args->tenant;
    sub->types = args->types;
    sub->earliest = args->from_earliest;

    /* DashFlow clients resume first; give them a moment to say from where */
    sub->waiting = (sub->protocol == NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW
                    && !args->from_latest && !args->from_earliest);

    /* last: from here on the cleanup unlinks and counts the subscriber out */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_dashstream_ws_cleanup;
    cln->data = sub;

    ngx_http_set_ctx(r, sub, ngx_http_dashstream_module);

    return sub;
}


static void
ngx_http_dashstream_ws_read(ngx_http_request_t *r)
{
    u_char                      buf[4096];
    ssize_t                     n;
    ngx_uint_t                  i;
    ngx_connection_t           *c;
    ngx_http_dashstream_sub_t  *sub;

    c = r->connection;
    sub = ngx_http_get_module_ctx(r, ngx_http_dashstream_module);

    for (i = 0; i < NGX_HTTP_DASHSTREAM_READ_MAX; i++) {

        /*
         * Backpressure: what a client's frames cause (pongs, replies) is
         * queued too, so a subscriber over its budget is not read until
         * its output drains (sub_flush reads on); its own socket then
         * stops the client.
         */

        if (sub->out_bytes > sub->dlcf->send_budget) {
            sub->read_blocked = 1;
            ngx_http_block_reading(r);
            return;
        }

        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_CLOSE);
            }

            return;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "dashstream: subscriber closed the connection "
                          "without a close frame");
            ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_CLOSE);
            return;
        }

        ngx_http_dashstream_ws_feed(sub, buf, n);

        if (c->destroyed || sub->request == NULL) {
            return;
        }
    }

    /* a busy client: let the other events of this worker, epoll's too, run */
    ngx_post_event(c->read, &ngx_posted_next_events);
}


static void
ngx_http_dashstream_ws_feed(ngx_http_dashstream_sub_t *sub, u_char *p,
    size_t n)
{
    int                ev;
    size_t             used, cap;
    ngx_connection_t  *c;

    c = sub->connection;

    /* after the client's close frame, or a broken frame, nothing counts */

    if (sub->close_rcvd) {
        return;
    }

    if (sub->reader_buf == NULL) {
        cap = sub->dlcf->max_client_message + 125;

        sub->reader_buf = ngx_alloc(cap, c->log);
        if (sub->reader_buf == NULL) {
            ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_CLOSE);
            return;
        }

        ngx_http_dashstream_wsreader_init(&sub->reader, sub->reader_buf, cap,
                                          sub->dlcf->max_client_message);
    }

    for ( ;; ) {
        ev = ngx_http_dashstream_wsreader_feed(&sub->reader, p, n, &used);

        p += used;
        n -= used;

        if (ev == NGX_HTTP_DASHSTREAM_WS_NEED_MORE) {
            break;
        }

        sub->last_rx = ngx_current_msec;

        ngx_http_dashstream_ws_event(sub, ev);

        /* the request, and sub with it, may be freed by now */

        if (c->destroyed || sub->request == NULL || sub->close_rcvd) {
            return;
        }
    }

    /*
     * Clients rarely speak after their resume: between messages the buffer
     * goes back, so an idle subscriber costs nginx's request and no more.
     * It is not taken from the request pool, whose ngx_pfree() gives back
     * only large allocations: a small dashstream_client_max_message left
     * one buffer in the pool per burst.
     */

    if (ngx_http_dashstream_wsreader_idle(&sub->reader)) {
        ngx_free(sub->reader_buf);
        sub->reader_buf = NULL;
    }
}


static void
ngx_http_dashstream_ws_event(ngx_http_dashstream_sub_t *sub, int ev)
{
    ngx_http_dashstream_wsreader_t  *rd;

    rd = &sub->reader;

    switch (ev) {

    case NGX_HTTP_DASHSTREAM_WS_TEXT:
        if (sub->protocol == NGX_HTTP_DASHSTREAM_PROTO_DASHFLOW
            && !sub->closing)
        {
            ngx_http_dashstream_session_message(sub, rd->payload,
                                                rd->payload_len);
        }

        break;

    case NGX_HTTP_DASHSTREAM_WS_BINARY:
        ngx_http_dashstream_sub_close(sub,
                                      NGX_HTTP_DASHSTREAM_WS_CLOSE_UNSUPPORTED_DATA,
                                      "binary messages are not accepted");
        break;

    case NGX_HTTP_DASHSTREAM_WS_ERROR:
        (void) ngx_atomic_fetch_add(
                   &ngx_http_dashstream_fanout_sh()->counters.protocol_errors,
                   1);
        ngx_log_error(NGX_LOG_INFO, sub->connection->log, 0,
                      "dashstream: websocket protocol error: %s", rd->error);

        /*
         * The reader has failed and will not see a close frame from the
         * client: the connection is closed once ours is out (RFC 6455,
         * 7.1.7), without the close-wait.
         */

        sub->close_rcvd = 1;

        if (!sub->closing) {
            ngx_http_dashstream_sub_close(sub, rd->close_code, rd->error);

        } else if (sub->out == NULL) {
            ngx_http_dashstream_ws_finalize(sub, NGX_DONE);
        }

        break;

    default:
        ngx_http_dashstream_ws_control(sub, ev == NGX_HTTP_DASHSTREAM_WS_PING
                                       ? NGX_HTTP_DASHSTREAM_WS_OP_PING
                                       : ev == NGX_HTTP_DASHSTREAM_WS_PONG
                                       ? NGX_HTTP_DASHSTREAM_WS_OP_PONG
                                       : NGX_HTTP_DASHSTREAM_WS_OP_CLOSE,
                                       rd->payload, rd->payload_len);
        break;
    }
}


static void
ngx_http_dashstream_ws_control(ngx_http_dashstream_sub_t *sub,
    unsigned opcode, u_char *p, size_t len)
{
    switch (opcode) {

    case NGX_HTTP_DASHSTREAM_WS_OP_PING:
        if (!sub->closing) {
            ngx_http_dashstream_ws_pong(sub, p, len);
        }

        return;

    case NGX_HTTP_DASHSTREAM_WS_OP_PONG:
        sub->ping_sent = 0;
        return;

    default: /* NGX_HTTP_DASHSTREAM_WS_OP_CLOSE */
        sub->close_rcvd = 1;

        if (sub->closing) {
            if (sub->out == NULL) {
                ngx_http_dashstream_ws_finalize(sub, NGX_DONE);
            }

            return;
        }

        ngx_http_dashstream_sub_close(sub,
                              sub->reader.close_code == 1005
                              ? NGX_HTTP_DASHSTREAM_WS_CLOSE_NORMAL
                              : sub->reader.close_code, "");
        return;
    }
}


/*
 * RFC 6455, 5.5.3: of pings that arrive before a pong is sent, only the
 * most recent needs an answer.  A pong not yet on the wire takes the new
 * payload, so a client that pings and never reads costs one pong.
 */

static void
ngx_http_dashstream_ws_pong(ngx_http_dashstream_sub_t *sub, u_char *p,
    size_t len)
{
    ngx_http_dashstream_out_t    *out;
    ngx_http_dashstream_frame_t  *frame;

    out = sub->pong;

    if (out) {
        frame = out->frame;
        sub->out_bytes -= out->last - out->pos;

    } else {
        /* the reader refuses control frames over 125 bytes */
        frame = ngx_http_dashstream_frame_alloc(2 + 125);
        if (frame == NULL) {
            return;
        }
    }

    frame->len = ngx_http_dashstream_wsframe_header(frame->data,
                                              NGX_HTTP_DASHSTREAM_WS_OP_PONG,
                                              len);
    ngx_memcpy(frame->data + frame->len, p, len);
    frame->len += len;

    if (out) {
        out->last = frame->data + frame->len;
        sub->out_bytes += frame->len;

    } else {
        sub->pong = ngx_http_dashstream_ws_enqueue(sub, frame, frame->data,
                                                   frame->data + frame->len,
                                                   0);
    }

    ngx_http_dashstream_sub_flush(sub);
}


ngx_int_t
ngx_http_dashstream_sub_queue(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_frame_t *frame, u_char *pos, u_char *last,
    ngx_uint_t record)
{
    return ngx_http_dashstream_ws_enqueue(sub, frame, pos, last, record)
           ? NGX_OK : NGX_ERROR;
}


static ngx_http_dashstream_out_t *
ngx_http_dashstream_ws_enqueue(ngx_http_dashstream_sub_t *sub,
    ngx_http_dashstream_frame_t *frame, u_char *pos, u_char *last,
    ngx_uint_t record)
{
    ngx_http_dashstream_out_t  *out;

    out = ngx_http_dashstream_out_get(sub->connection->log);
    if (out == NULL) {
        if (frame->refs == 0) {
            ngx_free(frame);
        }

        return NULL;
    }

    frame->refs++;

    out->next = NULL;
    out->frame = frame;
    out->pos = pos;
    out->last = last;
    out->record = record;

    *sub->out_last = out;
    sub->out_last = &out->next;
    sub->out_bytes += last - pos;

    return out;
}


ngx_int_t
ngx_http_dashstream_sub_text(ngx_http_dashstream_sub_t *sub, u_char *json,
    size_t len)
{
    ngx_http_dashstream_frame_t  *frame;

    frame = ngx_http_dashstream_frame_alloc(len + 10);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    frame->len = ngx_http_dashstream_wsframe_header(frame->data,
                                              NGX_HTTP_DASHSTREAM_WS_OP_TEXT,
                                              len);
    ngx_memcpy(frame->data + frame->len, json, len);
    frame->len += len;

    return ngx_http_dashstream_sub_queue(sub, frame, frame->data,
                                         frame->data + frame->len, 0);
}


void
ngx_http_dashstream_sub_flush(ngx_http_dashstream_sub_t *sub)
{
    off_t                       sent, start;
    ngx_uint_t                  n;
    ngx_chain_t                *cl;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_dashstream_out_t  *out;

    r = sub->request;
    c = sub->connection;

    if (r == NULL || c->error) {
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* the 101 response itself may still wait in the write filter */

    if (r->out) {
        if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
            ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_CLOSE);
            return;
        }

        if (r->out) {
            if (!c->write->timer_set) {
                ngx_add_timer(c->write, clcf->send_timeout);
            }

            return;
        }
    }

    sent = c->sent;

    while (sub->out && c->write->ready) {

        for (n = 0, out = sub->out; out && n < NGX_IOVS_PREALLOCATE; n++) {
            ngx_http_dashstream_bufs[n].pos = out->pos;
            ngx_http_dashstream_bufs[n].last = out->last;
            ngx_http_dashstream_bufs[n].memory = 1;
            ngx_http_dashstream_cl[n].buf = &ngx_http_dashstream_bufs[n];
            ngx_http_dashstream_cl[n].next = &ngx_http_dashstream_cl[n + 1];
            out = out->next;
        }

        ngx_http_dashstream_cl[n - 1].next = NULL;

        start = c->sent;
        cl = c->send_chain(c, ngx_http_dashstream_cl, 0);

        if (cl == NGX_CHAIN_ERROR) {
            c->error = 1;
            ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_CLOSE);
            return;
        }

        ngx_http_dashstream_ws_sent(sub, n, c->sent - start);
    }

    if (sub->read_blocked && sub->out_bytes <= sub->dlcf->send_budget) {
        sub->read_blocked = 0;
        sub->last_rx = ngx_current_msec;
        ngx_post_event(c->read, &ngx_posted_events);
    }

    if (sub->out) {

        /*
         * send_timeout runs from when output blocks and starts again only
         * when the socket takes bytes: a client's own frames (pings) do
         * not hold it off.
         */

        if (!c->write->timer_set || c->sent != sent) {
            ngx_add_timer(c->write, clcf->send_timeout);
        }

        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_CLOSE);
        }

        return;
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (!sub->closing) {
        return;
    }

    if (sub->close_rcvd) {
        ngx_http_dashstream_ws_finalize(sub, NGX_DONE);
        return;
    }

    /*
     * Our close frame is out: the client has the close-wait to answer.
     * Until it was out, send_timeout was the bound.
     */

    if (!sub->wait.timer_set) {
        ngx_add_timer(&sub->wait, NGX_HTTP_DASHSTREAM_CLOSE_MS);
    }
}


/* retires what one send_chain() took of the first n queue entries */

static void
ngx_http_dashstream_ws_sent(ngx_http_dashstream_sub_t *sub, ngx_uint_t n,
    off_t bytes)
{
    ngx_uint_t                    i, messages;
    ngx_http_dashstream_out_t    *out;
    ngx_http_dashstream_shctx_t  *sh;

    messages = 0;

    for (i = 0; i < n; i++) {
        out = sub->out;
        sub->out_bytes -= ngx_http_dashstream_bufs[i].pos - out->pos;
        out->pos = ngx_http_dashstream_bufs[i].pos;

        if (out == sub->pong && out->pos != out->frame->data) {
            sub->pong = NULL;
        }

        if (out->pos != out->last) {
            break;
        }

        sub->out = out->next;
        messages += out->record;
        ngx_http_dashstream_frame_unref(out->frame);
        ngx_http_dashstream_out_put(out);
    }

    if (sub->out == NULL) {
        sub->out_last = &sub->out;
    }

    sh = ngx_http_dashstream_fanout_sh();

    (void) ngx_atomic_fetch_add(&sh->counters.bytes_sent,
                                (ngx_atomic_int_t) bytes);
    (void) ngx_atomic_fetch_add(&sh->counters.frames_sent, messages);
}


static void
ngx_http_dashstream_ws_write(ngx_http_request_t *r)
{
    ngx_connection_t           *c;
    ngx_http_dashstream_sub_t  *sub;

    c = r->connection;
    sub = ngx_http_get_module_ctx(r, ngx_http_dashstream_module);

    if (c->write->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "dashstream: subscriber timed out");
        c->timedout = 1;
        ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    ngx_http_dashstream_sub_flush(sub);

    if (c->destroyed) {
        return;
    }

    if (sub->request && !sub->live && !sub->waiting && !sub->closing
        && sub->out_bytes < sub->dlcf->send_budget / 2)
    {
        ngx_http_dashstream_sub_pump(sub);
    }
}


void
ngx_http_dashstream_sub_close(ngx_http_dashstream_sub_t *sub, uint16_t code,
    const char *reason)
{
    ngx_http_dashstream_out_t    *out, *next;
    ngx_http_dashstream_frame_t  *frame;

    if (sub->closing || sub->request == NULL) {
        return;
    }

    sub->closing = 1;
    sub->live = 0;
    sub->pong = NULL;

    /* a frame already on the wire is finished; the rest is not sent */

    if (sub->out) {
        out = sub->out->next;
        sub->out->next = NULL;
        sub->out_last = &sub->out->next;
        sub->out_bytes = sub->out->last - sub->out->pos;

        for ( /* void */ ; out; out = next) {
            next = out->next;
            ngx_http_dashstream_frame_unref(out->frame);
            ngx_http_dashstream_out_put(out);
        }
    }

    frame = ngx_http_dashstream_frame_alloc(128);

    if (frame) {
        frame->len = ngx_http_dashstream_wsframe_close(frame->data, code,
                                                       reason);
        (void) ngx_http_dashstream_sub_queue(sub, frame, frame->data,
                                             frame->data + frame->len, 0);
    }

    /* the resume wait ends; the close-wait starts when the frame is out */

    if (sub->wait.timer_set) {
        ngx_del_timer(&sub->wait);
    }

    sub->waiting = 0;

    ngx_http_dashstream_sub_flush(sub);
}


static void
ngx_http_dashstream_ws_ping(ngx_event_t *ev)
{
    u_char                        hdr[10];
    ngx_connection_t             *c;
    ngx_http_dashstream_sub_t    *sub;
    ngx_http_dashstream_frame_t  *frame;

    sub = ev->data;
    c = sub->connection;

    if (sub->closing) {
        return;
    }

    /* unread while over its budget, the client is not idle: send_timeout */

    if (sub->read_blocked) {
        ngx_add_timer(&sub->ping, sub->dlcf->ping_interval);
        return;
    }

    /* our ping may wait behind output the client is still reading */

    if (ngx_http_dashstream_ws_draining(sub)) {
        sub->last_rx = ngx_current_msec;
    }

    if (ngx_current_msec - sub->last_rx >= sub->dlcf->idle_timeout) {
        ngx_log_error(NGX_LOG_INFO, sub->connection->log, 0,
                      "dashstream: subscriber idle for %M ms, closing",
                      ngx_current_msec - sub->last_rx);
        ngx_http_dashstream_sub_close(sub, NGX_HTTP_DASHSTREAM_WS_CLOSE_GOING_AWAY,
                                      "idle timeout");
        return;
    }

    frame = ngx_http_dashstream_frame_alloc(sizeof(hdr));

    if (frame) {
        frame->len = ngx_http_dashstream_wsframe_header(frame->data,
                                              NGX_HTTP_DASHSTREAM_WS_OP_PING,
                                              0);
        if (ngx_http_dashstream_sub_queue(sub, frame, frame->data,
                                          frame->data + frame->len, 0)
            == NGX_OK)
        {
            sub->ping_sent = 1;
        }

        ngx_http_dashstream_sub_flush(sub);
    }

    if (!c->destroyed && sub->request) {
        ngx_add_timer(&sub->ping, sub->dlcf->ping_interval);
    }
}


static void
ngx_http_dashstream_ws_wait(ngx_event_t *ev)
{
    ngx_http_dashstream_sub_t  *sub;

    sub = ev->data;

    if (sub->closing) {

        /*
         * The close frame may be behind output the client is still
         * reading: it cannot answer before it got there, and closing now
         * would reset the connection and lose what it has not read.  As
         * with send_timeout, progress is what counts; a worker that shuts
         * down is bounded by worker_shutdown_timeout.
         */

        if (ngx_http_dashstream_ws_draining(sub)) {
            ngx_add_timer(&sub->wait, NGX_HTTP_DASHSTREAM_CLOSE_MS);
            return;
        }

        ngx_log_error(NGX_LOG_INFO, sub->connection->log, 0,
                      "dashstream: no close frame from the subscriber "
                      "within %d ms", NGX_HTTP_DASHSTREAM_CLOSE_MS);
        ngx_http_dashstream_ws_finalize(sub, NGX_HTTP_CLOSE);
        return;
    }

    /* no resume in time: stream from where the subscriber connected */

    ngx_log_error(NGX_LOG_INFO, sub->connection->log, 0,
                  "dashstream: no resume within %M ms, streaming from the "
                  "connection point", sub->dlcf->resume_wait);

    sub->waiting = 0;
    ngx_http_dashstream_sub_pump(sub);
}


/*
 * What a subscriber cannot take waits in its queue, under its send budget
 * and the slow-subscriber policy, not in a kernel buffer that autotuning
 * grows to megabytes: there, our pings and close frames would wait behind
 * it for minutes, and nginx would see no write event (so send_timeout
 * would run) while the client reads.  With TCP_NOTSENT_LOWAT the socket
 * is writable only while little of what it holds is unsent.  Not TCP (a
 * unix socket): nothing to do.
 */

static void
ngx_http_dashstream_ws_lowat(ngx_connection_t *c)
{
#if defined(TCP_NOTSENT_LOWAT)
    int  lowat;

    lowat = NGX_HTTP_DASHSTREAM_NOTSENT_LOWAT;

    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
                   sizeof(int))
        == -1)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, ngx_socket_errno,
                       "dashstream: TCP_NOTSENT_LOWAT not set on fd %d",
                       c->fd);
    }
#endif
}


/*
 * Whether the client's TCP took bytes since the last look: what nginx
 * sent less what the kernel still holds unacknowledged (SIOCOUTQ).
 */

static ngx_uint_t
ngx_http_dashstream_ws_draining(ngx_http_dashstream_sub_t *sub)
{
    int                unacked;
    off_t              acked;
    ngx_connection_t  *c;

    c = sub->connection;

    if (ioctl(c->fd, SIOCOUTQ, &unacked) == -1) {
        return 0;
    }

    acked = c->sent - unacked;

    if (acked <= sub->acked) {
        return 0;
    }

    sub->acked = acked;

    return unacked > 0;
}


static void
ngx_http_dashstream_ws_finalize(ngx_http_dashstream_sub_t *sub, ngx_int_t rc)
{
    ngx_uint_t           nested;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = sub->request;

    if (r == NULL) {
        return;
    }

    c = r->connection;

    /* in the content handler, nginx runs the posted requests on return */
    nested = (r->main->count > 1);

    ngx_http_dashstream_ws_detach(sub);

    ngx_http_finalize_request(r, rc);

    /*
     * Timers and the fan-out call this outside a request event.  Either
     * way the request may be freed on return: callers check c->destroyed
     * before they touch sub again.
     */

    if (!nested) {
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_dashstream_ws_detach(ngx_http_dashstream_sub_t *sub)
{
    ngx_http_dashstream_out_t  *out, *next;

    if (sub->request == NULL) {
        return;
    }

    sub->request = NULL;

    ngx_http_dashstream_fanout_remove(sub);
    ngx_http_dashstream_session_free(sub);

    for (out = sub->out; out; out = next) {
        next = out->next;
        ngx_http_dashstream_frame_unref(out->frame);
        ngx_http_dashstream_out_put(out);
    }

    sub->out = NULL;
    sub->out_last = &sub->out;
    sub->pong = NULL;

    if (sub->ping.timer_set) {
        ngx_del_timer(&sub->ping);
    }

    if (sub->wait.timer_set) {
        ngx_del_timer(&sub->wait);
    }

    if (sub->ping.posted) {
        ngx_delete_posted_event(&sub->ping);
    }

    if (sub->wait.posted) {
        ngx_delete_posted_event(&sub->wait);
    }
}


static void
ngx_http_dashstream_ws_cleanup(void *data)
{
    ngx_http_dashstream_sub_t  *sub = data;

    ngx_http_dashstream_ws_detach(sub);

    if (sub->reader_buf) {
        ngx_free(sub->reader_buf);
        sub->reader_buf = NULL;
    }
}


static ngx_http_dashstream_out_t *
ngx_http_dashstream_out_get(ngx_log_t *log)
{
    ngx_http_dashstream_out_t  *out;

    out = ngx_http_dashstream_out_free;

    if (out) {
        ngx_http_dashstream_out_free = out->next;
        ngx_http_dashstream_out_nfree--;
        return out;
    }

    return ngx_alloc(sizeof(ngx_http_dashstream_out_t), log);
}


static void
ngx_http_dashstream_out_put(ngx_http_dashstream_out_t *out)
{
    if (ngx_http_dashstream_out_nfree >= NGX_HTTP_DASHSTREAM_OUT_KEEP) {
        ngx_free(out);
        return;
    }

    out->next = ngx_http_dashstream_out_free;
    ngx_http_dashstream_out_free = out;
    ngx_http_dashstream_out_nfree++;
}
