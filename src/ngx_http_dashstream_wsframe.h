/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_WSFRAME_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_WSFRAME_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_DASHSTREAM_WS_OP_CONT                  0x0
#define NGX_HTTP_DASHSTREAM_WS_OP_TEXT                  0x1
#define NGX_HTTP_DASHSTREAM_WS_OP_BINARY                0x2
#define NGX_HTTP_DASHSTREAM_WS_OP_CLOSE                 0x8
#define NGX_HTTP_DASHSTREAM_WS_OP_PING                  0x9
#define NGX_HTTP_DASHSTREAM_WS_OP_PONG                  0xa

#define NGX_HTTP_DASHSTREAM_WS_CLOSE_NORMAL             1000
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_GOING_AWAY         1001
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR     1002
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_UNSUPPORTED_DATA   1003
/* reported for a close frame without a code; never sent on the wire */
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_NO_STATUS          1005
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_INVALID_PAYLOAD    1007
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_POLICY_VIOLATION   1008
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_MESSAGE_TOO_BIG    1009
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_INTERNAL_ERROR     1011
#define NGX_HTTP_DASHSTREAM_WS_CLOSE_TRY_AGAIN_LATER    1013

/* longest header the server writes: 2 bytes + 64-bit length, no mask */
#define NGX_HTTP_DASHSTREAM_WS_MAX_HEADER               10
#define NGX_HTTP_DASHSTREAM_WS_MAX_CONTROL              125
/* longest close frame: header + code + 123 bytes of reason */
#define NGX_HTTP_DASHSTREAM_WS_MAX_CLOSE_FRAME          127


enum {
    NGX_HTTP_DASHSTREAM_WS_NEED_MORE = 0,
    NGX_HTTP_DASHSTREAM_WS_TEXT,
    NGX_HTTP_DASHSTREAM_WS_BINARY,
    NGX_HTTP_DASHSTREAM_WS_PING,
    NGX_HTTP_DASHSTREAM_WS_PONG,
    NGX_HTTP_DASHSTREAM_WS_CLOSE,
    NGX_HTTP_DASHSTREAM_WS_ERROR
};


typedef struct {
    /*
     * The last event returned by feed().  payload points into the
     * caller's buffer and stays valid until the next feed().  TEXT and
     * BINARY: the whole message; PING and PONG: the application data;
     * CLOSE: the reason text only, with the peer's code in close_code
     * (1005 if the frame had no payload); ERROR: payload is NULL,
     * close_code is the code the server must close with and error a
     * static reason.
     */
    unsigned char  *payload;
    size_t          payload_len;
    uint16_t        close_code;
    const char     *error;

    /* private: the parser's state between calls */
    unsigned char  *buf;
    size_t          cap;
    size_t          max_message;
    size_t          msg_len;
    unsigned char  *pos;
    unsigned char  *ctl;
    uint64_t        frame_left;

    unsigned char   hdr[14];
    unsigned char   mask[4];
    unsigned        hdr_len;
    unsigned        hdr_need;
    unsigned        mask_pos;
    unsigned        opcode;
    unsigned        msg_opcode;
    unsigned        state;
    unsigned        fin:1;
} ngx_http_dashstream_wsreader_t;


/*
 * buf must hold cap >= max_message + 125 bytes: data messages are
 * assembled at its start, control frames in its last 125 bytes, so a
 * control frame between fragments leaves the message intact.  A smaller
 * cap lowers max_message to cap - 125; a cap below 125 makes every feed()
 * return ERROR with 1011.
 */
void ngx_http_dashstream_wsreader_init(ngx_http_dashstream_wsreader_t *r,
    unsigned char *buf, size_t cap, size_t max_message);

/*
 * Consumes bytes from in[0..len), sets *used and returns one event; call
 * again with the remaining bytes until NEED_MORE.  After ERROR every call
 * returns ERROR and consumes nothing.  Parsing goes on after CLOSE: the
 * caller stops reading.
 */
int ngx_http_dashstream_wsreader_feed(ngx_http_dashstream_wsreader_t *r,
    const unsigned char *in, size_t len, size_t *used);

/*
 * Between messages: no header, payload or fragmented message in progress,
 * so the caller may drop its buffer and init a new reader later.
 */
int ngx_http_dashstream_wsreader_idle(const ngx_http_dashstream_wsreader_t *r);

/* an unmasked header with FIN set; out holds 10 bytes; returns its size */
size_t ngx_http_dashstream_wsframe_header(unsigned char *out, unsigned opcode,
    uint64_t payload_len);

/*
 * A whole close frame; out holds 127 bytes; returns its size.  reason may
 * be NULL and is cut to 123 bytes on a UTF-8 character boundary.  The code
 * 1005 gives a close frame with no payload.
 */
size_t ngx_http_dashstream_wsframe_close(unsigned char *out, uint16_t code,
    const char *reason);

/* strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF */
int ngx_http_dashstream_utf8_valid(const unsigned char *p, size_t n);

/* a comma-separated header list holds token, ignoring case and OWS */
int ngx_http_dashstream_ws_has_token(const unsigned char *v, size_t n,
    const char *token);

/* Sec-WebSocket-Key: canonical padded base64 of exactly 16 bytes */
int ngx_http_dashstream_ws_key_valid(const unsigned char *p, size_t n);


#endif /* _NGX_HTTP_DASHSTREAM_WSFRAME_H_INCLUDED_ */
