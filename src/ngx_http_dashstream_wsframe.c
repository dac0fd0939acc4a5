/*
 * Copyright (C) ngx_dashstream authors
 */


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ngx_http_dashstream_wsframe.h"


/*
 * A client frame (RFC 6455, section 5.2), multi-byte fields big endian:
 *
 *    byte 0            byte 1
 *  +-+-+-+-+--------+-+-------------+-----------------+----------+---------
 *  |F|R|R|R| opcode |M| len7        | len16 or len64  | mask key | payload
 *  |I|S|S|S|        |A| 0..125: len | when len7 is    | 4 bytes, | XORed
 *  |N|V|V|V|        |S| 126: len16  | 126 or 127      | required | with the
 *  | |1|2|3|        |K| 127: len64  |                 | from a   | key,
 *  | | | | |        | |             |                 | client   | cycling
 *  +-+-+-+-+--------+-+-------------+-----------------+----------+---------
 *
 * The server's own frames carry no mask key, so their header is 2, 4 or
 * 10 bytes.  Control frames (opcode 0x8 and up) are never fragmented and
 * carry at most 125 bytes; they may arrive between the fragments of a data
 * message.
 */


#define NGX_HTTP_DASHSTREAM_WS_HEADER      0
#define NGX_HTTP_DASHSTREAM_WS_PAYLOAD     1
#define NGX_HTTP_DASHSTREAM_WS_FAILED      2

#define NGX_HTTP_DASHSTREAM_WS_MAX_REASON  123


static int ngx_http_dashstream_ws_header(ngx_http_dashstream_wsreader_t *r,
    unsigned char c);
static int ngx_http_dashstream_ws_byte0(ngx_http_dashstream_wsreader_t *r,
    unsigned char c);
static int ngx_http_dashstream_ws_byte1(ngx_http_dashstream_wsreader_t *r,
    unsigned char c);
static int ngx_http_dashstream_ws_start(ngx_http_dashstream_wsreader_t *r);
static size_t ngx_http_dashstream_ws_unmask(ngx_http_dashstream_wsreader_t *r,
    const unsigned char *in, size_t len);
static int ngx_http_dashstream_ws_done(ngx_http_dashstream_wsreader_t *r);
static int ngx_http_dashstream_ws_close(ngx_http_dashstream_wsreader_t *r);
static int ngx_http_dashstream_ws_fail(ngx_http_dashstream_wsreader_t *r,
    uint16_t code, const char *reason);
static int ngx_http_dashstream_ws_close_code_valid(unsigned code);
static unsigned char ngx_http_dashstream_ws_lower(unsigned char c);
static int ngx_http_dashstream_ws_base64(unsigned char c);


void
ngx_http_dashstream_wsreader_init(ngx_http_dashstream_wsreader_t *r,
    unsigned char *buf, size_t cap, size_t max_message)
{
    memset(r, 0, sizeof(ngx_http_dashstream_wsreader_t));

    r->buf = buf;
    r->cap = cap;
    r->hdr_need = 2;
    r->state = NGX_HTTP_DASHSTREAM_WS_HEADER;

    if (cap < NGX_HTTP_DASHSTREAM_WS_MAX_CONTROL) {
        (void) ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_INTERNAL_ERROR,
                                    "message buffer too small");
        return;
    }

    r->ctl = buf + cap - NGX_HTTP_DASHSTREAM_WS_MAX_CONTROL;
    r->max_message = cap - NGX_HTTP_DASHSTREAM_WS_MAX_CONTROL;

    if (max_message < r->max_message) {
        r->max_message = max_message;
    }
}


int
ngx_http_dashstream_wsreader_feed(ngx_http_dashstream_wsreader_t *r,
    const unsigned char *in, size_t len, size_t *used)
{
    int     rc;
    size_t  n;

    *used = 0;

    if (r->state == NGX_HTTP_DASHSTREAM_WS_FAILED) {
        return NGX_HTTP_DASHSTREAM_WS_ERROR;
    }

    r->payload = NULL;
    r->payload_len = 0;
    r->close_code = 0;
    r->error = NULL;

    rc = NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
    n = 0;

    while (n < len && rc == NGX_HTTP_DASHSTREAM_WS_NEED_MORE) {

        if (r->state == NGX_HTTP_DASHSTREAM_WS_HEADER) {
            rc = ngx_http_dashstream_ws_header(r, in[n++]);
            continue;
        }

        n += ngx_http_dashstream_ws_unmask(r, in + n, len - n);

        if (r->frame_left == 0) {
            rc = ngx_http_dashstream_ws_done(r);
        }
    }

    *used = n;

    return rc;
}


int
ngx_http_dashstream_wsreader_idle(const ngx_http_dashstream_wsreader_t *r)
{
    return r->state == NGX_HTTP_DASHSTREAM_WS_HEADER && r->hdr_len == 0
           && r->msg_opcode == 0;
}


static int
ngx_http_dashstream_ws_header(ngx_http_dashstream_wsreader_t *r,
    unsigned char c)
{
    r->hdr[r->hdr_len++] = c;

    if (r->hdr_len == 1) {
        return ngx_http_dashstream_ws_byte0(r, c);
    }

    if (r->hdr_len == 2) {
        return ngx_http_dashstream_ws_byte1(r, c);
    }

    if (r->hdr_len < r->hdr_need) {
        return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
    }

    return ngx_http_dashstream_ws_start(r);
}


static int
ngx_http_dashstream_ws_byte0(ngx_http_dashstream_wsreader_t *r,
    unsigned char c)
{
    r->fin = (c & 0x80) ? 1 : 0;
    r->opcode = c & 0x0f;

    /* no extension is ever negotiated, so RSV1-3 have no meaning */
    if (c & 0x70) {
        return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "reserved bits set");
    }

    switch (r->opcode) {

    case NGX_HTTP_DASHSTREAM_WS_OP_CONT:
        if (r->msg_opcode == 0) {
            return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "continuation without a message");
        }

        break;

    case NGX_HTTP_DASHSTREAM_WS_OP_TEXT:
    case NGX_HTTP_DASHSTREAM_WS_OP_BINARY:
        if (r->msg_opcode != 0) {
            return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "new message inside a fragmented one");
        }

        r->msg_opcode = r->opcode;
        break;

    case NGX_HTTP_DASHSTREAM_WS_OP_CLOSE:
    case NGX_HTTP_DASHSTREAM_WS_OP_PING:
    case NGX_HTTP_DASHSTREAM_WS_OP_PONG:
        if (!r->fin) {
            return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "fragmented control frame");
        }

        break;

    default:
        return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "unknown opcode");
    }

    return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
}


static int
ngx_http_dashstream_ws_byte1(ngx_http_dashstream_wsreader_t *r,
    unsigned char c)
{
    unsigned  len;

    if ((c & 0x80) == 0) {
        return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "unmasked client frame");
    }

    len = c & 0x7f;

    if ((r->opcode & 0x8) && len > NGX_HTTP_DASHSTREAM_WS_MAX_CONTROL) {
        return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "control frame too long");
    }

    r->hdr_need = 2 + 4;

    if (len == 126) {
        r->hdr_need += 2;

    } else if (len == 127) {
        r->hdr_need += 8;
    }

    return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
}


static int
ngx_http_dashstream_ws_start(ngx_http_dashstream_wsreader_t *r)
{
    unsigned  i, ext;
    uint64_t  len;

    ext = r->hdr_need - 6;
    len = r->hdr[1] & 0x7f;

    if (ext) {
        len = 0;

        for (i = 0; i < ext; i++) {
            len = (len << 8) | r->hdr[2 + i];
        }
    }

    if (len >> 63) {
        return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "frame length has its top bit set");
    }

    if ((r->opcode & 0x8) == 0 && len > r->max_message - r->msg_len) {
        return ngx_http_dashstream_ws_fail(r,
                                   NGX_HTTP_DASHSTREAM_WS_CLOSE_MESSAGE_TOO_BIG,
                                   "message too big");
    }

    memcpy(r->mask, &r->hdr[2 + ext], 4);

    r->mask_pos = 0;
    r->frame_left = len;
    r->pos = (r->opcode & 0x8) ? r->ctl : r->buf + r->msg_len;

    r->hdr_len = 0;
    r->hdr_need = 2;

    if (len == 0) {
        return ngx_http_dashstream_ws_done(r);
    }

    r->state = NGX_HTTP_DASHSTREAM_WS_PAYLOAD;

    return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
}


static size_t
ngx_http_dashstream_ws_unmask(ngx_http_dashstream_wsreader_t *r,
    const unsigned char *in, size_t len)
{
    size_t    i;
    unsigned  m;

    if (len > r->frame_left) {
        len = (size_t) r->frame_left;
    }

    /* the key cycles over the whole frame, not over each feed() */
    m = r->mask_pos;

    for (i = 0; i < len; i++) {
        r->pos[i] = in[i] ^ r->mask[m];
        m = (m + 1) & 3;
    }

    r->pos += len;
    r->mask_pos = m;
    r->frame_left -= len;

    return len;
}


static int
ngx_http_dashstream_ws_done(ngx_http_dashstream_wsreader_t *r)
{
    int  rc;

    r->state = NGX_HTTP_DASHSTREAM_WS_HEADER;

    switch (r->opcode) {

    case NGX_HTTP_DASHSTREAM_WS_OP_CLOSE:
        return ngx_http_dashstream_ws_close(r);

    case NGX_HTTP_DASHSTREAM_WS_OP_PING:
    case NGX_HTTP_DASHSTREAM_WS_OP_PONG:
        r->payload = r->ctl;
        r->payload_len = (size_t) (r->pos - r->ctl);

        return (r->opcode == NGX_HTTP_DASHSTREAM_WS_OP_PING)
               ? NGX_HTTP_DASHSTREAM_WS_PING : NGX_HTTP_DASHSTREAM_WS_PONG;
    }

    r->msg_len = (size_t) (r->pos - r->buf);

    if (!r->fin) {
        return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
    }

    if (r->msg_opcode == NGX_HTTP_DASHSTREAM_WS_OP_TEXT) {

        if (!ngx_http_dashstream_utf8_valid(r->buf, r->msg_len)) {
            return ngx_http_dashstream_ws_fail(r,
                                   NGX_HTTP_DASHSTREAM_WS_CLOSE_INVALID_PAYLOAD,
                                   "text message is not UTF-8");
        }

        rc = NGX_HTTP_DASHSTREAM_WS_TEXT;

    } else {
        rc = NGX_HTTP_DASHSTREAM_WS_BINARY;
    }

    r->payload = r->buf;
    r->payload_len = r->msg_len;

    r->msg_opcode = 0;
    r->msg_len = 0;

    return rc;
}


static int
ngx_http_dashstream_ws_close(ngx_http_dashstream_wsreader_t *r)
{
    size_t    n;
    unsigned  code;

    n = (size_t) (r->pos - r->ctl);

    if (n == 0) {
        r->payload = r->ctl;
        r->close_code = NGX_HTTP_DASHSTREAM_WS_CLOSE_NO_STATUS;
        return NGX_HTTP_DASHSTREAM_WS_CLOSE;
    }

    if (n == 1) {
        return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "close frame with a 1-byte payload");
    }

    code = (r->ctl[0] << 8) | r->ctl[1];

    if (!ngx_http_dashstream_ws_close_code_valid(code)) {
        return ngx_http_dashstream_ws_fail(r,
                                    NGX_HTTP_DASHSTREAM_WS_CLOSE_PROTOCOL_ERROR,
                                    "invalid close code");
    }

    if (!ngx_http_dashstream_utf8_valid(r->ctl + 2, n - 2)) {
        return ngx_http_dashstream_ws_fail(r,
                                   NGX_HTTP_DASHSTREAM_WS_CLOSE_INVALID_PAYLOAD,
                                   "close reason is not UTF-8");
    }

    r->payload = r->ctl + 2;
    r->payload_len = n - 2;
    r->close_code = (uint16_t) code;

    return NGX_HTTP_DASHSTREAM_WS_CLOSE;
}


static int
ngx_http_dashstream_ws_fail(ngx_http_dashstream_wsreader_t *r, uint16_t code,
    const char *reason)
{
    r->state = NGX_HTTP_DASHSTREAM_WS_FAILED;
    r->payload = NULL;
    r->payload_len = 0;
    r->close_code = code;
    r->error = reason;

    return NGX_HTTP_DASHSTREAM_WS_ERROR;
}


static int
ngx_http_dashstream_ws_close_code_valid(unsigned code)
{
    /* 3000-3999 are registered with IANA, 4000-4999 are private */
    if (code >= 3000 && code <= 4999) {
        return 1;
    }

    if (code < 1000 || code > 1014) {
        return 0;
    }

    /* 1004 is reserved, 1005 and 1006 stand for "no code" locally */
    return code != 1004 && code != 1005 && code != 1006;
}


size_t
ngx_http_dashstream_wsframe_header(unsigned char *out, unsigned opcode,
    uint64_t payload_len)
{
    unsigned  i;

    out[0] = (unsigned char) (0x80 | (opcode & 0x0f));

    if (payload_len < 126) {
        out[1] = (unsigned char) payload_len;
        return 2;
    }

    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char) (payload_len >> 8);
        out[3] = (unsigned char) payload_len;
        return 4;
    }

    out[1] = 127;

    for (i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char) (payload_len >> (56 - 8 * i));
    }

    return 10;
}


size_t
ngx_http_dashstream_wsframe_close(unsigned char *out, uint16_t code,
    const char *reason)
{
    size_t  n;

    out[0] = 0x80 | NGX_HTTP_DASHSTREAM_WS_OP_CLOSE;

    if (code == NGX_HTTP_DASHSTREAM_WS_CLOSE_NO_STATUS) {
        out[1] = 0;
        return 2;
    }

    n = 0;

    if (reason != NULL) {

        while (n <= NGX_HTTP_DASHSTREAM_WS_MAX_REASON && reason[n] != '\0') {
            n++;
        }

        if (n > NGX_HTTP_DASHSTREAM_WS_MAX_REASON) {
            n = NGX_HTTP_DASHSTREAM_WS_MAX_REASON;

            /* back off to the start of the character cut: 3 bytes at most */
            while (n > NGX_HTTP_DASHSTREAM_WS_MAX_REASON - 3
                   && ((unsigned char) reason[n] & 0xc0) == 0x80)
            {
                n--;
            }
        }
    }

    out[1] = (unsigned char) (2 + n);
    out[2] = (unsigned char) (code >> 8);
    out[3] = (unsigned char) code;

    if (n) {
        memcpy(&out[4], reason, n);
    }

    return 4 + n;
}


int
ngx_http_dashstream_utf8_valid(const unsigned char *p, size_t n)
{
    size_t    i, need;
    unsigned  c, lo, hi;

    i = 0;

    while (i < n) {
        c = p[i++];

        if (c < 0x80) {
            continue;
        }

        /*
         * The second byte's range excludes overlong forms (E0, F0),
         * surrogates (ED) and code points above U+10FFFF (F4); C0, C1
         * and F5-FF never start a character.
         */

        lo = 0x80;
        hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;

        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            lo = (c == 0xe0) ? 0xa0 : 0x80;
            hi = (c == 0xed) ? 0x9f : 0xbf;

        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            lo = (c == 0xf0) ? 0x90 : 0x80;
            hi = (c == 0xf4) ? 0x8f : 0xbf;

        } else {
            return 0;
        }

        if (n - i < need || p[i] < lo || p[i] > hi) {
            return 0;
        }

        for (i++, need--; need; i++, need--) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
        }
    }

    return 1;
}


int
ngx_http_dashstream_ws_has_token(const unsigned char *v, size_t n,
    const char *token)
{
    size_t  len, i, s, e, k;

    len = strlen(token);

    if (len == 0) {
        return 0;
    }

    i = 0;

    while (i < n) {
        s = i;

        while (i < n && v[i] != ',') {
            i++;
        }

        e = i++;

        while (s < e && (v[s] == ' ' || v[s] == '\t')) {
            s++;
        }

        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }

        if (e - s != len) {
            continue;
        }

        for (k = 0; k < len; k++) {
            if (ngx_http_dashstream_ws_lower(v[s + k])
                != ngx_http_dashstream_ws_lower((unsigned char) token[k]))
            {
                break;
            }
        }

        if (k == len) {
            return 1;
        }
    }

    return 0;
}


static unsigned char
ngx_http_dashstream_ws_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char) (c | 0x20) : c;
}


int
ngx_http_dashstream_ws_key_valid(const unsigned char *p, size_t n)
{
    int     d;
    size_t  i;

    /* 16 bytes encode as 22 digits and "==" */
    if (n != 24 || p[22] != '=' || p[23] != '=') {
        return 0;
    }

    d = 0;

    for (i = 0; i < 22; i++) {
        d = ngx_http_dashstream_ws_base64(p[i]);

        if (d < 0) {
            return 0;
        }
    }

    /* the last digit holds the final 2 bits; its 4 padding bits are 0 */
    return (d & 0x0f) == 0;
}


static int
ngx_http_dashstream_ws_base64(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '+') {
        return 62;
    }

    if (c == '/') {
        return 63;
    }

    return -1;
}
