/*
 * Copyright (C) ngx_dashstream authors
 *
 * libFuzzer target for the websocket frame codec.  Input byte 0 picks
 * max_message, byte 1 the split pattern, the rest is a client stream.  The
 * stream is fed whole to one reader and in pieces to another, and read by
 * a simple whole-frame model of RFC 6455 written here: all three must
 * report the same events at the same offsets, and every event must keep
 * the reader's promises.  The same bytes go through the UTF-8 validator
 * (checked against a decoder written another way), the header helpers,
 * and, as a close reason, through the close writer and back into a reader.
 */


#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_dashstream_wsframe.h"


#define FUZZ_CTL    NGX_HTTP_DASHSTREAM_WS_MAX_CONTROL
#define FUZZ_MAX    8192

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            abort();                                                         \
        }                                                                    \
    } while (0)


typedef struct {
    ngx_http_dashstream_wsreader_t  r;
    unsigned char                  *buf;
    size_t                          cap;
    size_t                          max;
    size_t                          off;
} fuzz_reader_t;


/* RFC 6455 read a second way: whole frames at once, for comparison */
typedef struct {
    const unsigned char  *in;
    size_t                len;
    size_t                off;
    size_t                max;
    unsigned              msg_op;
    size_t                msg_len;

    size_t                end;
    uint16_t              code;
    unsigned char        *payload;
    size_t                payload_len;
} fuzz_model_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* each buffer ends where its array ends, so ASan sees overruns */
static unsigned char  fuzz_mem_a[FUZZ_MAX + FUZZ_CTL];
static unsigned char  fuzz_mem_b[FUZZ_MAX + FUZZ_CTL];

static unsigned char  fuzz_model_msg[FUZZ_MAX];
static unsigned char  fuzz_model_ctl[FUZZ_CTL];

static const size_t  fuzz_max_message[] = {
    0, 1, 7, 125, 126, 1000, 4096, FUZZ_MAX
};

static const size_t  fuzz_chunk_limit[] = { 1, 2, 3, 7, 16, 200, 5000 };


static void
fuzz_reader_init(fuzz_reader_t *f, unsigned char *mem, size_t max)
{
    f->cap = max + FUZZ_CTL;
    f->buf = mem + FUZZ_MAX + FUZZ_CTL - f->cap;
    f->max = max;
    f->off = 0;

    ngx_http_dashstream_wsreader_init(&f->r, f->buf, f->cap, max);
}


static int
fuzz_close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}


/* decodes code points, unlike the validator, which checks byte ranges */
static int
fuzz_utf8_ref(const unsigned char *p, size_t n)
{
    size_t    i, k, len;
    uint32_t  cp, min;

    for (i = 0; i < n; i += len) {

        if (p[i] < 0x80) {
            len = 1;
            continue;
        }

        if ((p[i] & 0xe0) == 0xc0) {
            len = 2;
            cp = p[i] & 0x1f;
            min = 0x80;

        } else if ((p[i] & 0xf0) == 0xe0) {
            len = 3;
            cp = p[i] & 0x0f;
            min = 0x800;

        } else if ((p[i] & 0xf8) == 0xf0) {
            len = 4;
            cp = p[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (n - i < len) {
            return 0;
        }

        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (p[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


static unsigned char
fuzz_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c + 'a' - 'A' : c;
}


/* token t occurs where only OWS separates it from the commas around it */
static int
fuzz_token_ref(const unsigned char *v, size_t n, const char *t, size_t k)
{
    size_t  i, j;

    for (i = 0; i + k <= n; i++) {

        for (j = 0; j < k; j++) {
            if (fuzz_lower(v[i + j]) != fuzz_lower((unsigned char) t[j])) {
                break;
            }
        }

        if (j < k) {
            continue;
        }

        for (j = i; j > 0 && (v[j - 1] == ' ' || v[j - 1] == '\t'); j--) {
            /* void */
        }

        if (j > 0 && v[j - 1] != ',') {
            continue;
        }

        for (j = i + k; j < n && (v[j] == ' ' || v[j] == '\t'); j++) {
            /* void */
        }

        if (j == n || v[j] == ',') {
            return 1;
        }
    }

    return 0;
}


static void
fuzz_check_event(fuzz_reader_t *f, int rc)
{
    unsigned char                   *ctl;
    ngx_http_dashstream_wsreader_t  *r;

    r = &f->r;
    ctl = f->buf + f->cap - FUZZ_CTL;

    switch (rc) {

    case NGX_HTTP_DASHSTREAM_WS_TEXT:
        FUZZ_CHECK(fuzz_utf8_ref(r->payload, r->payload_len));
        /* fall through */

    case NGX_HTTP_DASHSTREAM_WS_BINARY:
        FUZZ_CHECK(r->payload == f->buf && r->payload_len <= f->max);
        break;

    case NGX_HTTP_DASHSTREAM_WS_PING:
    case NGX_HTTP_DASHSTREAM_WS_PONG:
        FUZZ_CHECK(r->payload == ctl && r->payload_len <= FUZZ_CTL);
        break;

    case NGX_HTTP_DASHSTREAM_WS_CLOSE:
        FUZZ_CHECK(r->payload_len <= FUZZ_CTL - 2);
        FUZZ_CHECK(fuzz_utf8_ref(r->payload, r->payload_len));
        FUZZ_CHECK(r->close_code == NGX_HTTP_DASHSTREAM_WS_CLOSE_NO_STATUS
                   ? r->payload == ctl && r->payload_len == 0
                   : r->payload == ctl + 2
                     && fuzz_close_code_ok(r->close_code));
        break;

    case NGX_HTTP_DASHSTREAM_WS_ERROR:
        FUZZ_CHECK(r->payload == NULL && r->payload_len == 0);
        FUZZ_CHECK(r->error != NULL);
        FUZZ_CHECK(r->close_code == 1002 || r->close_code == 1007
                   || r->close_code == 1009);
        break;

    default:
        abort();
    }
}


static int
fuzz_model_fail(fuzz_model_t *m, size_t end, uint16_t code)
{
    m->end = end;
    m->code = code;
    m->payload = NULL;
    m->payload_len = 0;

    return NGX_HTTP_DASHSTREAM_WS_ERROR;
}


/* -1 when a whole frame is there; otherwise the event to report */
static int
fuzz_model_header(fuzz_model_t *m, size_t *hl, uint64_t *plen)
{
    size_t                i, avail;
    unsigned              op, ctl, l7;
    const unsigned char  *p;

    p = m->in + m->off;
    avail = m->len - m->off;

    if (avail < 1) {
        return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
    }

    op = p[0] & 0x0f;
    ctl = (op == 0x8 || op == 0x9 || op == 0xa);

    if ((p[0] & 0x70) != 0
        || (op > 0x2 && !ctl)
        || (op == 0x0 && m->msg_op == 0)
        || ((op == 0x1 || op == 0x2) && m->msg_op != 0)
        || (ctl && (p[0] & 0x80) == 0))
    {
        return fuzz_model_fail(m, m->off + 1, 1002);
    }

    if (avail < 2) {
        return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
    }

    l7 = p[1] & 0x7f;

    if ((p[1] & 0x80) == 0 || (ctl && l7 > 125)) {
        return fuzz_model_fail(m, m->off + 2, 1002);
    }

    *hl = (l7 == 126) ? 8 : (l7 == 127) ? 14 : 6;

    if (avail < *hl) {
        return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
    }

    *plen = l7;

    for (i = 2; i < *hl - 4; i++) {
        *plen = (i == 2 ? 0 : *plen << 8) | p[i];
    }

    if (*plen >= (uint64_t) 1 << 63) {
        return fuzz_model_fail(m, m->off + *hl, 1002);
    }

    if (!ctl && m->msg_len + *plen > m->max) {
        return fuzz_model_fail(m, m->off + *hl, 1009);
    }

    if (avail - *hl < *plen) {
        return NGX_HTTP_DASHSTREAM_WS_NEED_MORE;
    }

    return -1;
}


static int
fuzz_model_control(fuzz_model_t *m, unsigned op, size_t n)
{
    unsigned  code;

    m->end = m->off;
    m->code = 0;
    m->payload = fuzz_model_ctl;
    m->payload_len = n;

    if (op != 0x8) {
        return op == 0x9 ? NGX_HTTP_DASHSTREAM_WS_PING
                         : NGX_HTTP_DASHSTREAM_WS_PONG;
    }

    if (n == 0) {
        m->code = 1005;
        return NGX_HTTP_DASHSTREAM_WS_CLOSE;
    }

    if (n == 1) {
        return fuzz_model_fail(m, m->off, 1002);
    }

    code = (fuzz_model_ctl[0] << 8) | fuzz_model_ctl[1];

    if (!fuzz_close_code_ok(code)) {
        return fuzz_model_fail(m, m->off, 1002);
    }

    if (!fuzz_utf8_ref(fuzz_model_ctl + 2, n - 2)) {
        return fuzz_model_fail(m, m->off, 1007);
    }

    m->code = (uint16_t) code;
    m->payload += 2;
    m->payload_len -= 2;

    return NGX_HTTP_DASHSTREAM_WS_CLOSE;
}


static int
fuzz_model_next(fuzz_model_t *m)
{
    int                   rc;
    size_t                hl, i, n;
    uint64_t              plen;
    unsigned              op;
    unsigned char        *dst;
    const unsigned char  *p;

    for ( ;; ) {
        rc = fuzz_model_header(m, &hl, &plen);

        if (rc != -1) {
            return rc;
        }

        p = m->in + m->off;
        op = p[0] & 0x0f;
        n = (size_t) plen;
        dst = (op & 0x8) ? fuzz_model_ctl : fuzz_model_msg + m->msg_len;

        for (i = 0; i < n; i++) {
            dst[i] = p[hl + i] ^ p[hl - 4 + i % 4];
        }

        m->off += hl + n;

        if (op & 0x8) {
            return fuzz_model_control(m, op, n);
        }

        m->msg_op = (op != 0) ? op : m->msg_op;
        m->msg_len += n;

        if ((p[0] & 0x80) != 0) {
            break;
        }
    }

    m->end = m->off;

    if (m->msg_op == 1 && !fuzz_utf8_ref(fuzz_model_msg, m->msg_len)) {
        return fuzz_model_fail(m, m->off, 1007);
    }

    rc = (m->msg_op == 1) ? NGX_HTTP_DASHSTREAM_WS_TEXT
                          : NGX_HTTP_DASHSTREAM_WS_BINARY;

    m->code = 0;
    m->payload = fuzz_model_msg;
    m->payload_len = m->msg_len;
    m->msg_op = 0;
    m->msg_len = 0;

    return rc;
}


/* the next event of a reader fed everything that is left */
static int
fuzz_next_whole(fuzz_reader_t *f, const unsigned char *in, size_t len)
{
    int     rc;
    size_t  used;

    rc = ngx_http_dashstream_wsreader_feed(&f->r, in + f->off, len - f->off,
                                           &used);
    FUZZ_CHECK(used <= len - f->off);

    f->off += used;

    if (rc == NGX_HTTP_DASHSTREAM_WS_NEED_MORE) {
        FUZZ_CHECK(f->off == len);
    }

    return rc;
}


/* the next event of a reader fed in pieces of pseudo-random size */
static int
fuzz_next_split(fuzz_reader_t *f, const unsigned char *in, size_t len,
    uint32_t *seed, size_t limit)
{
    int     rc;
    size_t  chunk, used;

    rc = NGX_HTTP_DASHSTREAM_WS_NEED_MORE;

    while (f->off < len) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;

        chunk = 1 + *seed % limit;

        if (chunk > len - f->off) {
            chunk = len - f->off;
        }

        rc = ngx_http_dashstream_wsreader_feed(&f->r, in + f->off, chunk,
                                               &used);
        FUZZ_CHECK(used <= chunk);

        f->off += used;

        if (rc != NGX_HTTP_DASHSTREAM_WS_NEED_MORE) {
            break;
        }

        FUZZ_CHECK(used == chunk);
    }

    return rc;
}


static void
fuzz_reader(const unsigned char *data, size_t size)
{
    int                   ra, rb, rm;
    size_t                len, used;
    uint32_t              seed;
    fuzz_model_t          m;
    fuzz_reader_t         a, b;
    const unsigned char  *in;

    fuzz_reader_init(&a, fuzz_mem_a, fuzz_max_message[data[0] % 8]);
    fuzz_reader_init(&b, fuzz_mem_b, fuzz_max_message[data[0] % 8]);

    seed = 0x9e3779b9u ^ data[1];
    in = data + 2;
    len = size - 2;

    memset(&m, 0, sizeof(fuzz_model_t));
    m.in = in;
    m.len = len;
    m.max = a.max;

    for ( ;; ) {
        ra = fuzz_next_whole(&a, in, len);
        rb = fuzz_next_split(&b, in, len, &seed,
                             fuzz_chunk_limit[data[1] % 7]);
        rm = fuzz_model_next(&m);

        FUZZ_CHECK(ra == rb && a.off == b.off);
        FUZZ_CHECK(ra == rm);

        if (ra == NGX_HTTP_DASHSTREAM_WS_NEED_MORE) {
            break;
        }

        fuzz_check_event(&a, ra);

        FUZZ_CHECK(a.off == m.end);
        FUZZ_CHECK(a.r.close_code == b.r.close_code);
        FUZZ_CHECK(a.r.close_code == m.code);
        FUZZ_CHECK(a.r.error == b.r.error);
        FUZZ_CHECK(a.r.payload_len == b.r.payload_len);
        FUZZ_CHECK(a.r.payload_len == m.payload_len);
        FUZZ_CHECK(a.r.payload_len == 0
                   || (memcmp(a.r.payload, b.r.payload, a.r.payload_len) == 0
                       && memcmp(a.r.payload, m.payload, m.payload_len)
                          == 0));

        if (ra == NGX_HTTP_DASHSTREAM_WS_ERROR) {
            ra = ngx_http_dashstream_wsreader_feed(&a.r, in, len, &used);
            FUZZ_CHECK(ra == NGX_HTTP_DASHSTREAM_WS_ERROR && used == 0);
            break;
        }
    }
}


/* a close frame from the writer, masked, must read back as written */
static void
fuzz_close_roundtrip(const unsigned char *data, size_t size)
{
    int            rc;
    char           reason[200];
    size_t         i, n, rlen, used;
    unsigned       code;
    fuzz_reader_t  c;
    unsigned char  out[NGX_HTTP_DASHSTREAM_WS_MAX_CLOSE_FRAME];
    unsigned char  in[NGX_HTTP_DASHSTREAM_WS_MAX_CLOSE_FRAME + 4];

    code = (data[0] << 8) | data[1];
    rlen = size - 2 < sizeof(reason) - 1 ? size - 2 : sizeof(reason) - 1;
    memcpy(reason, data + 2, rlen);
    reason[rlen] = '\0';
    rlen = strlen(reason);

    n = ngx_http_dashstream_wsframe_close(out, (uint16_t) code, reason);

    FUZZ_CHECK(n >= 2 && n <= sizeof(out) && out[0] == 0x88);
    FUZZ_CHECK(out[1] == n - 2);

    if (code == NGX_HTTP_DASHSTREAM_WS_CLOSE_NO_STATUS) {
        FUZZ_CHECK(n == 2);

    } else {
        FUZZ_CHECK(rlen > 123 ? n - 4 >= 120 && n - 4 <= 123 : n - 4 == rlen);
        FUZZ_CHECK(memcmp(out + 4, reason, n - 4) == 0);
        FUZZ_CHECK(n - 4 == rlen || n - 4 == 120
                   || (reason[n - 4] & 0xc0) != 0x80);
        FUZZ_CHECK(!fuzz_utf8_ref((unsigned char *) reason, rlen)
                   || fuzz_utf8_ref(out + 4, n - 4));
    }

    in[0] = out[0];
    in[1] = out[1] | 0x80;
    memcpy(in + 2, data, 4);

    for (i = 2; i < n; i++) {
        in[i + 4] = out[i] ^ data[(i - 2) % 4];
    }

    fuzz_reader_init(&c, fuzz_mem_a, 0);
    rc = ngx_http_dashstream_wsreader_feed(&c.r, in, n + 4, &used);
    FUZZ_CHECK(used == n + 4);

    if (n > 2 && !fuzz_close_code_ok(code)) {
        FUZZ_CHECK(rc == NGX_HTTP_DASHSTREAM_WS_ERROR
                   && c.r.close_code == 1002);

    } else if (!fuzz_utf8_ref(out + 4, n > 2 ? n - 4 : 0)) {
        FUZZ_CHECK(rc == NGX_HTTP_DASHSTREAM_WS_ERROR
                   && c.r.close_code == 1007);

    } else {
        FUZZ_CHECK(rc == NGX_HTTP_DASHSTREAM_WS_CLOSE);
        FUZZ_CHECK(c.r.close_code == code);
        FUZZ_CHECK(c.r.payload_len == (n > 2 ? n - 4 : 0));
        FUZZ_CHECK(memcmp(c.r.payload, out + 4, c.r.payload_len) == 0);
    }
}


/* a slice of the input, as a token, is looked for in the whole input */
static void
fuzz_token(const unsigned char *data, size_t size)
{
    char    token[9];
    size_t  i, k, o;

    o = data[0] % size;
    k = 1 + data[1] % 8;
    k = (k > size - o) ? size - o : k;

    for (i = 0; i < k; i++) {
        token[i] = (char) data[o + i];

        /* such tokens never match, by either reading */
        if (strchr(", \t", token[i]) != NULL) {
            return;
        }
    }

    token[k] = '\0';

    FUZZ_CHECK(ngx_http_dashstream_ws_has_token(data, size, token)
               == fuzz_token_ref(data, size, token, k));
}


static void
fuzz_helpers(const unsigned char *data, size_t size)
{
    size_t         n, i;
    uint64_t       len, back;
    unsigned char  out[NGX_HTTP_DASHSTREAM_WS_MAX_HEADER];

    FUZZ_CHECK(ngx_http_dashstream_utf8_valid(data, size)
               == fuzz_utf8_ref(data, size));

    fuzz_token(data, size);

    if (ngx_http_dashstream_ws_key_valid(data, size)) {
        FUZZ_CHECK(size == 24 && data[22] == '=' && data[23] == '=');
    }

    len = 0;

    for (i = 0; i < 8 && i < size; i++) {
        len = (len << 8) | data[i];
    }

    len >>= data[0] % 64;
    n = ngx_http_dashstream_wsframe_header(out, data[0] & 0x0f, len);

    FUZZ_CHECK(out[0] == (0x80 | (data[0] & 0x0f)));

    if (n == 2) {
        back = out[1];

    } else {
        back = 0;

        for (i = 2; i < n; i++) {
            back = (back << 8) | out[i];
        }

        FUZZ_CHECK(out[1] == (n == 4 ? 126 : 127));
        FUZZ_CHECK(back >= (n == 4 ? 126 : 65536));
    }

    FUZZ_CHECK(back == len);
    FUZZ_CHECK(len < 126 ? n == 2 : n > 2);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }

    fuzz_reader(data, size);
    fuzz_close_roundtrip(data, size);
    fuzz_helpers(data, size);

    return 0;
}
