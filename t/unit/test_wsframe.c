/*
 * Copyright (C) ngx_dashstream authors
 */


#include "unit.h"

#include "ngx_http_dashstream_wsframe.h"


#define WS_NEED_MORE   NGX_HTTP_DASHSTREAM_WS_NEED_MORE
#define WS_TEXT        NGX_HTTP_DASHSTREAM_WS_TEXT
#define WS_BINARY      NGX_HTTP_DASHSTREAM_WS_BINARY
#define WS_PING        NGX_HTTP_DASHSTREAM_WS_PING
#define WS_PONG        NGX_HTTP_DASHSTREAM_WS_PONG
#define WS_CLOSE       NGX_HTTP_DASHSTREAM_WS_CLOSE
#define WS_ERROR       NGX_HTTP_DASHSTREAM_WS_ERROR

#define WS_FIN         0x80
#define WS_CTL         125
#define WS_BIG         65536

#define S(s)           (const unsigned char *) (s), sizeof(s) - 1


typedef struct {
    int            rc;
    size_t         end;
    uint16_t       close_code;
    size_t         len;
    unsigned char  data[256];
} test_event_t;


/* the reader's buffer ends where the array ends, so ASan sees overruns */
static unsigned char  test_mem[WS_BIG + WS_CTL];
static unsigned char  test_in[WS_BIG + 64];
static unsigned char  test_data[WS_BIG];

/* the mask key of the RFC 6455 section 5.7 examples */
static const unsigned char  test_key[4] = { 0x37, 0xfa, 0x21, 0x3d };


static unsigned char *
test_buf(size_t cap)
{
    return test_mem + sizeof(test_mem) - cap;
}


static void
test_init(ngx_http_dashstream_wsreader_t *r, size_t max_message)
{
    ngx_http_dashstream_wsreader_init(r, test_buf(max_message + WS_CTL),
                                      max_message + WS_CTL, max_message);
}


/* a masked client frame: b0 holds FIN, RSV and opcode as sent */
static size_t
test_frame(unsigned char *out, unsigned b0, const void *payload, size_t n)
{
    size_t                h, i;
    const unsigned char  *p;

    p = payload;
    h = ngx_http_dashstream_wsframe_header(out, 0, n);

    out[0] = (unsigned char) b0;
    out[1] |= 0x80;
    memcpy(&out[h], test_key, 4);
    h += 4;

    for (i = 0; i < n; i++) {
        out[h + i] = p[i] ^ test_key[i % 4];
    }

    return h + n;
}


static size_t
test_close_frame(unsigned char *out, unsigned code, const char *reason)
{
    size_t         n;
    unsigned char  body[WS_CTL];

    n = strlen(reason);
    body[0] = (unsigned char) (code >> 8);
    body[1] = (unsigned char) code;
    memcpy(&body[2], reason, n);

    return test_frame(out, WS_FIN | 0x8, body, n + 2);
}


/* feeds step bytes per call (0: all) and records every event */
static size_t
test_run(const unsigned char *in, size_t len, size_t step, size_t max_message,
    test_event_t *ev, size_t nev)
{
    int                             rc;
    size_t                          off, chunk, used, k;
    ngx_http_dashstream_wsreader_t  r;

    test_init(&r, max_message);

    off = 0;
    k = 0;

    while (k < nev) {
        chunk = (step == 0 || len - off < step) ? len - off : step;
        rc = ngx_http_dashstream_wsreader_feed(&r, in + off, chunk, &used);
        off += used;

        if (rc == WS_NEED_MORE) {
            CHECK_EQ_U64(used, chunk);

            if (off == len) {
                break;
            }

            continue;
        }

        ev[k].rc = rc;
        ev[k].end = off;
        ev[k].close_code = r.close_code;
        ev[k].len = r.payload_len;

        if (r.payload_len > 0 && r.payload_len <= sizeof(ev[k].data)) {
            memcpy(ev[k].data, r.payload, r.payload_len);
        }

        k++;

        if (rc == WS_ERROR) {
            break;
        }
    }

    return k;
}


/* the stream must end in ERROR with code after exactly used bytes */
static void
test_error(const unsigned char *in, size_t len, size_t max_message,
    uint16_t code, size_t used)
{
    int                             rc;
    size_t                          step, n, k, u;
    test_event_t                    ev[8];
    ngx_http_dashstream_wsreader_t  r;

    for (step = 0; step < 3; step++) {
        n = test_run(in, len, step, max_message, ev, 8);

        CHECK(n > 0);

        if (n == 0) {
            return;
        }

        for (k = 0; k + 1 < n; k++) {
            CHECK(ev[k].rc != WS_ERROR);
        }

        CHECK_EQ_INT(ev[n - 1].rc, WS_ERROR);
        CHECK_EQ_INT(ev[n - 1].close_code, code);
        CHECK_EQ_U64(ev[n - 1].end, used);
        CHECK_EQ_U64(ev[n - 1].len, 0);
    }

    test_init(&r, max_message);

    do {
        rc = ngx_http_dashstream_wsreader_feed(&r, in, len, &u);
        in += u;
        len -= u;
    } while (rc != WS_ERROR && rc != WS_NEED_MORE);

    CHECK_EQ_INT(rc, WS_ERROR);
    CHECK(r.error != NULL && r.error[0] != '\0');
    CHECK(r.payload == NULL);

    /* sticky: a valid frame afterwards changes nothing */
    n = test_frame(test_in, WS_FIN | 0x1, "ok", 2);
    rc = ngx_http_dashstream_wsreader_feed(&r, test_in, n, &u);

    CHECK_EQ_INT(rc, WS_ERROR);
    CHECK_EQ_U64(u, 0);
    CHECK_EQ_INT(r.close_code, code);
}


static void
test_event(const test_event_t *ev, int rc, size_t end, uint16_t code,
    const char *data)
{
    size_t  n;

    n = strlen(data);

    CHECK_EQ_INT(ev->rc, rc);
    CHECK_EQ_U64(ev->end, end);
    CHECK_EQ_INT(ev->close_code, code);
    CHECK_EQ_U64(ev->len, n);

    if (ev->len == n) {
        CHECK_MEM(ev->data, data, n);
    }
}


UNIT_TEST(test_rfc_masked_text)
{
    int                             rc;
    size_t                          used;
    ngx_http_dashstream_wsreader_t  r;
    static const unsigned char      in[] = {
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
    };

    test_init(&r, 1024);

    rc = ngx_http_dashstream_wsreader_feed(&r, in, sizeof(in), &used);

    CHECK_EQ_INT(rc, WS_TEXT);
    CHECK_EQ_U64(used, sizeof(in));
    CHECK_EQ_U64(r.payload_len, 5);
    CHECK_MEM(r.payload, "Hello", 5);
    CHECK(r.error == NULL);

    rc = ngx_http_dashstream_wsreader_feed(&r, in, 0, &used);

    CHECK_EQ_INT(rc, WS_NEED_MORE);
    CHECK_EQ_U64(used, 0);
    CHECK(r.payload == NULL);
}


UNIT_TEST(test_rfc_unmasked_rejected)
{
    static const unsigned char  in[] = {
        0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f
    };

    test_error(in, sizeof(in), 1024, 1002, 2);
}


UNIT_TEST(test_rfc_fragmented)
{
    int                             rc;
    size_t                          n1, n2, used;
    unsigned char                   in[64];
    ngx_http_dashstream_wsreader_t  r;

    n1 = test_frame(in, 0x01, "Hel", 3);
    n2 = test_frame(in + n1, WS_FIN | 0x0, "lo", 2);

    CHECK_EQ_U64(n1, 9);
    CHECK_EQ_U64(n2, 8);

    test_init(&r, 1024);

    rc = ngx_http_dashstream_wsreader_feed(&r, in, n1, &used);

    CHECK_EQ_INT(rc, WS_NEED_MORE);
    CHECK_EQ_U64(used, n1);

    rc = ngx_http_dashstream_wsreader_feed(&r, in + n1, n2, &used);

    CHECK_EQ_INT(rc, WS_TEXT);
    CHECK_EQ_U64(used, n2);
    CHECK_EQ_U64(r.payload_len, 5);
    CHECK_MEM(r.payload, "Hello", 5);

    test_init(&r, 1024);

    rc = ngx_http_dashstream_wsreader_feed(&r, in, n1 + n2, &used);

    CHECK_EQ_INT(rc, WS_TEXT);
    CHECK_EQ_U64(used, n1 + n2);
    CHECK_MEM(r.payload, "Hello", 5);
}


UNIT_TEST(test_rfc_ping_pong)
{
    int                             rc;
    size_t                          n, used;
    unsigned char                   in[64];
    ngx_http_dashstream_wsreader_t  r;
    static const unsigned char      pong[] = {
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
    };

    n = test_frame(in, WS_FIN | 0x9, "Hello", 5);

    CHECK_EQ_U64(n, 11);
    CHECK_EQ_INT(in[0], 0x89);
    CHECK_MEM(in + 6, pong + 6, 5);

    test_init(&r, 1024);

    rc = ngx_http_dashstream_wsreader_feed(&r, in, n, &used);

    CHECK_EQ_INT(rc, WS_PING);
    CHECK_EQ_U64(used, n);
    CHECK_EQ_U64(r.payload_len, 5);
    CHECK_MEM(r.payload, "Hello", 5);

    rc = ngx_http_dashstream_wsreader_feed(&r, pong, sizeof(pong), &used);

    CHECK_EQ_INT(rc, WS_PONG);
    CHECK_EQ_U64(used, sizeof(pong));
    CHECK_EQ_U64(r.payload_len, 5);
    CHECK_MEM(r.payload, "Hello", 5);
}


static void
test_binary(size_t size, const unsigned char *hdr, size_t hlen)
{
    int                             rc;
    size_t                          i, n, used;
    unsigned char                  *data;
    ngx_http_dashstream_wsreader_t  r;

    data = test_data;

    for (i = 0; i < size; i++) {
        data[i] = (unsigned char) (i * 7 + (i >> 8));
    }

    n = test_frame(test_in, WS_FIN | 0x2, data, size);

    CHECK_EQ_U64(n, hlen + 4 + size);
    CHECK_MEM(test_in, hdr, hlen);
    CHECK_MEM(test_in + hlen, test_key, 4);

    test_init(&r, WS_BIG);

    rc = ngx_http_dashstream_wsreader_feed(&r, test_in, n, &used);

    CHECK_EQ_INT(rc, WS_BINARY);
    CHECK_EQ_U64(used, n);
    CHECK_EQ_U64(r.payload_len, size);

    for (i = 0; i < size; i++) {
        if (r.payload[i] != (unsigned char) (i * 7 + (i >> 8))) {
            break;
        }
    }

    CHECK_EQ_U64(i, size);
}


UNIT_TEST(test_rfc_binary_256)
{
    static const unsigned char  hdr[] = { 0x82, 0xfe, 0x01, 0x00 };

    test_binary(256, hdr, sizeof(hdr));
}


UNIT_TEST(test_rfc_binary_64k)
{
    static const unsigned char  hdr[] = {
        0x82, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00
    };

    test_binary(WS_BIG, hdr, sizeof(hdr));
}


UNIT_TEST(test_error_unmasked)
{
    unsigned char  in[16];
    size_t         n;

    n = test_frame(in, WS_FIN | 0x2, "abc", 3);
    in[1] &= 0x7f;

    test_error(in, n, 1024, 1002, 2);
}


UNIT_TEST(test_error_reserved_bits)
{
    unsigned       rsv;
    unsigned char  in[16];
    size_t         n;

    for (rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        n = test_frame(in, WS_FIN | rsv | 0x1, "abc", 3);
        test_error(in, n, 1024, 1002, 1);

        n = test_frame(in, WS_FIN | rsv | 0x9, "", 0);
        test_error(in, n, 1024, 1002, 1);
    }
}


UNIT_TEST(test_error_unknown_opcodes)
{
    unsigned       op;
    unsigned char  in[16];
    size_t         n;

    for (op = 0x3; op <= 0xf; op++) {
        if (op >= 0x8 && op <= 0xa) {
            continue;
        }

        n = test_frame(in, WS_FIN | op, "x", 1);
        test_error(in, n, 1024, 1002, 1);
    }
}


UNIT_TEST(test_error_control_rules)
{
    unsigned       op;
    size_t         n;
    unsigned char  in[256], body[126];
    test_event_t   ev[1];

    memset(body, 'a', sizeof(body));

    for (op = 0x8; op <= 0xa; op++) {
        n = test_frame(in, op, "", 0);
        test_error(in, n, 1024, 1002, 1);

        n = test_frame(in, WS_FIN | op, body, 126);
        CHECK_EQ_INT(in[1], 0xfe);
        test_error(in, n, 1024, 1002, 2);

        in[1] = 0xff;
        test_error(in, n, 1024, 1002, 2);
    }

    /* 125 bytes is the largest control payload */
    n = test_frame(in, WS_FIN | 0x9, body, 125);
    CHECK_EQ_INT(in[1], 0x80 | 125);
    CHECK_EQ_U64(test_run(in, n, 0, 0, ev, 1), 1);
    CHECK_EQ_INT(ev[0].rc, WS_PING);
    CHECK_EQ_U64(ev[0].len, 125);
}


UNIT_TEST(test_error_length_top_bit)
{
    static const unsigned char  in[] = {
        0x82, 0xff, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x37, 0xfa, 0x21, 0x3d, 0x00
    };

    test_error(in, sizeof(in), 1024, 1002, 14);
}


UNIT_TEST(test_error_fragment_order)
{
    size_t         n;
    unsigned char  in[64];

    n = test_frame(in, WS_FIN | 0x0, "x", 1);
    test_error(in, n, 1024, 1002, 1);

    n = test_frame(in, 0x0, "x", 1);
    test_error(in, n, 1024, 1002, 1);

    n = test_frame(in, 0x1, "a", 1);
    n += test_frame(in + n, WS_FIN | 0x1, "b", 1);
    test_error(in, n, 1024, 1002, 8);

    n = test_frame(in, 0x2, "a", 1);
    n += test_frame(in + n, 0x2, "b", 1);
    test_error(in, n, 1024, 1002, 8);

    /* a finished message leaves nothing to continue */
    n = test_frame(in, WS_FIN | 0x1, "a", 1);
    n += test_frame(in + n, WS_FIN | 0x0, "b", 1);
    test_error(in, n, 1024, 1002, 8);
}


UNIT_TEST(test_error_too_big)
{
    size_t         n, m;
    unsigned char  in[128], body[64];
    test_event_t   ev[1];

    memset(body, 'z', sizeof(body));

    /* the header alone is enough: no payload byte has to arrive */
    n = test_frame(in, WS_FIN | 0x2, body, 17);
    test_error(in, 6, 16, 1009, 6);
    test_error(in, n, 16, 1009, 6);

    n = test_frame(in, WS_FIN | 0x2, body, 16);
    CHECK_EQ_U64(test_run(in, n, 0, 16, ev, 1), 1);
    CHECK_EQ_INT(ev[0].rc, WS_BINARY);
    CHECK_EQ_U64(ev[0].len, 16);

    /* across fragments: 10 + 7 > 16, refused at the second header */
    m = test_frame(in, 0x1, body, 10);
    n = m + test_frame(in + m, WS_FIN | 0x0, body, 7);
    test_error(in, n, 16, 1009, m + 6);

    n = m + test_frame(in + m, WS_FIN | 0x0, body, 6);
    CHECK_EQ_U64(test_run(in, n, 1, 16, ev, 1), 1);
    CHECK_EQ_INT(ev[0].rc, WS_TEXT);
    CHECK_EQ_U64(ev[0].len, 16);

    /* a 64-bit length far beyond any buffer */
    memcpy(in, "\x82\xff\x00\x00\x01\x00\x00\x00\x00\x00\x37\xfa\x21\x3d",
           14);
    test_error(in, 14, 1024, 1009, 14);
}


UNIT_TEST(test_error_small_buffer)
{
    int                             rc;
    size_t                          n, used;
    unsigned char                   in[32];
    ngx_http_dashstream_wsreader_t  r;

    n = test_frame(in, WS_FIN | 0x2, "0123456789a", 11);

    /* cap 135 cannot honour max_message 100: it becomes 10 */
    ngx_http_dashstream_wsreader_init(&r, test_buf(135), 135, 100);
    rc = ngx_http_dashstream_wsreader_feed(&r, in, n, &used);

    CHECK_EQ_INT(rc, WS_ERROR);
    CHECK_EQ_INT(r.close_code, 1009);

    n = test_frame(in, WS_FIN | 0x2, "0123456789", 10);

    ngx_http_dashstream_wsreader_init(&r, test_buf(135), 135, 100);
    rc = ngx_http_dashstream_wsreader_feed(&r, in, n, &used);

    CHECK_EQ_INT(rc, WS_BINARY);
    CHECK_EQ_U64(r.payload_len, 10);

    ngx_http_dashstream_wsreader_init(&r, test_buf(124), 124, 0);
    rc = ngx_http_dashstream_wsreader_feed(&r, in, n, &used);

    CHECK_EQ_INT(rc, WS_ERROR);
    CHECK_EQ_INT(r.close_code, 1011);
    CHECK_EQ_U64(used, 0);
}


UNIT_TEST(test_error_text_utf8)
{
    size_t         n, m;
    unsigned char  in[64];
    test_event_t   ev[1];

    n = test_frame(in, WS_FIN | 0x1, "\xc0\xaf", 2);
    test_error(in, n, 1024, 1007, n);

    n = test_frame(in, WS_FIN | 0x1, "ok\xed\xa0\x80", 5);
    test_error(in, n, 1024, 1007, n);

    /* a message may end mid-character only if it is binary */
    n = test_frame(in, WS_FIN | 0x2, "\xe2\x82", 2);
    CHECK_EQ_U64(test_run(in, n, 0, 1024, ev, 1), 1);
    CHECK_EQ_INT(ev[0].rc, WS_BINARY);

    n = test_frame(in, WS_FIN | 0x1, "\xe2\x82", 2);
    test_error(in, n, 1024, 1007, n);

    /* a character split between fragments is fine */
    m = test_frame(in, 0x1, "a\xe2\x82", 3);
    n = m + test_frame(in + m, WS_FIN | 0x0, "\xac", 1);
    CHECK_EQ_U64(test_run(in, n, 1, 1024, ev, 1), 1);
    test_event(&ev[0], WS_TEXT, n, 0, "a\xe2\x82\xac");
}


UNIT_TEST(test_error_close_payload)
{
    size_t                 i, n, m;
    unsigned char          in[64];
    static const unsigned  bad[] = {
        0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535
    };

    /* after a close with code 1000 the byte past a lone 0x03 is 0xe8 */
    m = test_close_frame(in, 1000, "");
    n = m + test_frame(in + m, WS_FIN | 0x8, "\x03", 1);
    test_error(in, n, 1024, 1002, n);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = test_close_frame(in, bad[i], "");
        test_error(in, n, 1024, 1002, n);

        n = test_close_frame(in, bad[i], "why");
        test_error(in, n, 1024, 1002, n);
    }

    n = test_close_frame(in, 1000, "bad \xff reason");
    test_error(in, n, 1024, 1007, n);

    n = test_close_frame(in, 1000, "cut \xe2\x82");
    test_error(in, n, 1024, 1007, n);
}


UNIT_TEST(test_close_codes)
{
    size_t                 i, n;
    unsigned char          in[64];
    test_event_t           ev[1];
    static const unsigned  good[] = {
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
        1014, 3000, 3999, 4000, 4999
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        n = test_close_frame(in, good[i], "bye \xce\xba");
        CHECK_EQ_U64(test_run(in, n, 0, 1024, ev, 1), 1);
        test_event(&ev[0], WS_CLOSE, n, (uint16_t) good[i], "bye \xce\xba");
    }

    n = test_frame(in, WS_FIN | 0x8, "", 0);
    CHECK_EQ_U64(test_run(in, n, 0, 1024, ev, 1), 1);
    test_event(&ev[0], WS_CLOSE, n, 1005, "");
}


UNIT_TEST(test_interleaved_control)
{
    size_t         n, a, b, c;
    unsigned char  in[128];
    test_event_t   ev[4];

    a = test_frame(in, 0x1, "Hel", 3);
    b = a + test_frame(in + a, WS_FIN | 0x9, "x", 1);
    c = b + test_frame(in + b, WS_FIN | 0xa, "", 0);
    n = c + test_frame(in + c, WS_FIN | 0x0, "lo", 2);

    CHECK_EQ_U64(test_run(in, n, 0, 1024, ev, 4), 3);
    test_event(&ev[0], WS_PING, b, 0, "x");
    test_event(&ev[1], WS_PONG, c, 0, "");
    test_event(&ev[2], WS_TEXT, n, 0, "Hello");

    /* the control area must not overlap a message that fills max_message */
    a = test_frame(in, 0x2, "abcdef", 6);
    b = a + test_close_frame(in + a, 1000, "zzzz");
    n = b + test_frame(in + b, WS_FIN | 0x0, "gh", 2);

    CHECK_EQ_U64(test_run(in, n, 1, 8, ev, 4), 2);
    test_event(&ev[0], WS_CLOSE, b, 1000, "zzzz");
    test_event(&ev[1], WS_BINARY, n, 0, "abcdefgh");
}


UNIT_TEST(test_split_feeding)
{
    size_t         i, n, k, step, e[8];
    unsigned char  in[512], big[200];
    test_event_t   ev[8];

    for (i = 0; i < sizeof(big); i++) {
        big[i] = (unsigned char) (i ^ 0x5a);
    }

    n = test_frame(in, WS_FIN | 0x1, "Hello", 5);
    e[0] = n;
    n += test_frame(in + n, 0x2, "ab", 2);
    n += test_frame(in + n, WS_FIN | 0x9, "ping", 4);
    e[1] = n;
    n += test_frame(in + n, 0x0, "cde", 3);
    n += test_frame(in + n, WS_FIN | 0x0, "", 0);
    e[2] = n;
    n += test_frame(in + n, WS_FIN | 0x1, "", 0);
    e[3] = n;
    n += test_frame(in + n, WS_FIN | 0xa, "", 0);
    e[4] = n;
    n += test_frame(in + n, WS_FIN | 0x2, big, sizeof(big));
    e[5] = n;
    n += test_close_frame(in + n, 1001, "bye");
    e[6] = n;

    for (step = 0; step <= 7; step++) {
        k = test_run(in, n, step, 1024, ev, 8);

        CHECK_EQ_U64(k, 7);

        if (k != 7) {
            continue;
        }

        test_event(&ev[0], WS_TEXT, e[0], 0, "Hello");
        test_event(&ev[1], WS_PING, e[1], 0, "ping");
        test_event(&ev[2], WS_BINARY, e[2], 0, "abcde");
        test_event(&ev[3], WS_TEXT, e[3], 0, "");
        test_event(&ev[4], WS_PONG, e[4], 0, "");
        CHECK_EQ_INT(ev[5].rc, WS_BINARY);
        CHECK_EQ_U64(ev[5].end, e[5]);
        CHECK_EQ_U64(ev[5].len, sizeof(big));
        CHECK_MEM(ev[5].data, big, sizeof(big));
        test_event(&ev[6], WS_CLOSE, e[6], 1001, "bye");
    }
}


UNIT_TEST(test_header_writer)
{
    size_t         n;
    unsigned char  out[NGX_HTTP_DASHSTREAM_WS_MAX_HEADER];

    n = ngx_http_dashstream_wsframe_header(out, 0x1, 0);
    CHECK_EQ_U64(n, 2);
    CHECK_MEM(out, "\x81\x00", 2);

    n = ngx_http_dashstream_wsframe_header(out, 0x2, 125);
    CHECK_EQ_U64(n, 2);
    CHECK_MEM(out, "\x82\x7d", 2);

    n = ngx_http_dashstream_wsframe_header(out, 0x2, 126);
    CHECK_EQ_U64(n, 4);
    CHECK_MEM(out, "\x82\x7e\x00\x7e", 4);

    n = ngx_http_dashstream_wsframe_header(out, 0x1, 65535);
    CHECK_EQ_U64(n, 4);
    CHECK_MEM(out, "\x81\x7e\xff\xff", 4);

    n = ngx_http_dashstream_wsframe_header(out, 0x2, 65536);
    CHECK_EQ_U64(n, 10);
    CHECK_MEM(out, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);

    n = ngx_http_dashstream_wsframe_header(out, 0x2, 0x0102030405060708ULL);
    CHECK_EQ_U64(n, 10);
    CHECK_MEM(out, "\x82\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);

    n = ngx_http_dashstream_wsframe_header(out, 0xa, 3);
    CHECK_EQ_U64(n, 2);
    CHECK_MEM(out, "\x8a\x03", 2);
}


static void
test_close_cut(size_t pad, const char *tail, size_t expect)
{
    size_t         n;
    char           reason[256];
    unsigned char  out[NGX_HTTP_DASHSTREAM_WS_MAX_CLOSE_FRAME];

    memset(reason, 'a', pad);
    strcpy(reason + pad, tail);

    n = ngx_http_dashstream_wsframe_close(out, 1001, reason);

    CHECK_EQ_U64(n, 4 + expect);
    CHECK_EQ_INT(out[1], 2 + expect);
    CHECK_MEM(out + 4, reason, expect);
    CHECK(ngx_http_dashstream_utf8_valid(out + 4, n - 4));
}


UNIT_TEST(test_close_writer)
{
    int                             rc;
    size_t                          n, i, used;
    char                            reason[201];
    unsigned char                   in[160], out[160];
    ngx_http_dashstream_wsreader_t  r;

    n = ngx_http_dashstream_wsframe_close(out, 1000, "done");
    CHECK_EQ_U64(n, 8);
    CHECK_MEM(out, "\x88\x06\x03\xe8" "done", 8);

    n = ngx_http_dashstream_wsframe_close(out, 1009, NULL);
    CHECK_EQ_U64(n, 4);
    CHECK_MEM(out, "\x88\x02\x03\xf1", 4);

    n = ngx_http_dashstream_wsframe_close(out, 1005, "ignored");
    CHECK_EQ_U64(n, 2);
    CHECK_MEM(out, "\x88\x00", 2);

    test_close_cut(123, "", 123);
    test_close_cut(200, "", 123);
    test_close_cut(122, "x", 123);
    test_close_cut(121, "\xc3\xa9", 123);
    test_close_cut(122, "\xc3\xa9", 122);
    test_close_cut(121, "\xe2\x82\xac", 121);
    test_close_cut(120, "\xe2\x82\xac", 123);
    test_close_cut(120, "\xf0\x9f\x98\x80", 120);
    test_close_cut(119, "\xf0\x9f\x98\x80", 123);
    test_close_cut(122, "\xf0\x9f\x98\x80", 122);

    /* a reason that is not UTF-8 loses at most 3 bytes more */
    memset(reason, 0x80, 200);
    reason[200] = '\0';

    n = ngx_http_dashstream_wsframe_close(out, 1000, reason);
    CHECK_EQ_U64(n, 4 + 120);

    /* what the server writes, a client reader would accept */
    n = ngx_http_dashstream_wsframe_close(out, 4321, "\xce\xba\xce\xb1");
    CHECK_EQ_U64(n, 8);

    memcpy(in, out, 2);
    in[1] |= 0x80;
    memcpy(in + 2, test_key, 4);

    for (i = 2; i < n; i++) {
        in[i + 4] = out[i] ^ test_key[(i - 2) % 4];
    }

    test_init(&r, 0);
    rc = ngx_http_dashstream_wsreader_feed(&r, in, n + 4, &used);

    CHECK_EQ_INT(rc, WS_CLOSE);
    CHECK_EQ_U64(used, n + 4);
    CHECK_EQ_INT(r.close_code, 4321);
    CHECK_EQ_U64(r.payload_len, 4);
    CHECK_MEM(r.payload, "\xce\xba\xce\xb1", 4);
}


UNIT_TEST(test_utf8)
{
    int     ok;
    size_t  i;
    static const struct {
        const char  *s;
        size_t       n;
        int          ok;
    } v[] = {
        { "", 0, 1 },
        { "plain ascii", 11, 1 },
        { "\x00", 1, 1 },
        { "\xc2\x80", 2, 1 },
        { "\xdf\xbf", 2, 1 },
        { "\xe0\xa0\x80", 3, 1 },
        { "\xe2\x82\xac", 3, 1 },
        { "\xed\x9f\xbf", 3, 1 },
        { "\xee\x80\x80", 3, 1 },
        { "\xef\xbf\xbf", 3, 1 },
        { "\xf0\x90\x80\x80", 4, 1 },
        { "\xf0\x9f\x98\x80", 4, 1 },
        { "\xf4\x8f\xbf\xbf", 4, 1 },
        { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11, 1 },
        { "\xc0\xaf", 2, 0 },
        { "\xc1\xbf", 2, 0 },
        { "\xc0\x80", 2, 0 },
        { "\xe0\x80\xaf", 3, 0 },
        { "\xe0\x9f\xbf", 3, 0 },
        { "\xf0\x80\x80\xaf", 4, 0 },
        { "\xf0\x8f\xbf\xbf", 4, 0 },
        { "\xed\xa0\x80", 3, 0 },
        { "\xed\xbf\xbf", 3, 0 },
        { "\xed\xa0\x80\xed\xb0\x80", 6, 0 },
        { "\xf4\x90\x80\x80", 4, 0 },
        { "\xf5\x80\x80\x80", 4, 0 },
        { "\xf8\x88\x80\x80\x80", 5, 0 },
        { "\xfe", 1, 0 },
        { "\xff", 1, 0 },
        { "\x80", 1, 0 },
        { "\xbf", 1, 0 },
        { "\xc2", 1, 0 },
        { "\xe2\x82", 2, 0 },
        { "\xf0\x9f\x98", 3, 0 },
        { "ok\xf0\x9f", 4, 0 },
        { "\xc2\x41", 2, 0 },
        { "\xe2\x28\xa1", 3, 0 },
        { "\xe2\x82\x28", 3, 0 },
        { "\xf0\x9f\x98\x28", 4, 0 },
        { "\xc2\xc2\x80", 3, 0 },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        ok = ngx_http_dashstream_utf8_valid((const unsigned char *) v[i].s,
                                            v[i].n);

        if (ok != v[i].ok) {
            fprintf(stderr, "utf8 vector %zu\n", i);
        }

        CHECK_EQ_INT(ok, v[i].ok);
    }

    CHECK(ngx_http_dashstream_utf8_valid(NULL, 0));
}


/* decodes one character as RFC 3629 defines it; 0 if it is not one */
static size_t
test_utf8_char(const unsigned char *p, size_t n)
{
    size_t    len, k;
    uint32_t  cp;

    len = (p[0] < 0x80) ? 1 : (p[0] >> 5) == 0x6 ? 2
          : (p[0] >> 4) == 0xe ? 3 : (p[0] >> 3) == 0x1e ? 4 : 0;

    if (len == 0 || len > n) {
        return 0;
    }

    cp = (len == 1) ? p[0] : p[0] & (0x7f >> len);

    for (k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80) {
            return 0;
        }

        cp = (cp << 6) | (p[k] & 0x3f);
    }

    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
        || (len == 4 && cp < 0x10000) || cp > 0x10ffff
        || (cp >= 0xd800 && cp <= 0xdfff))
    {
        return 0;
    }

    return len;
}


static int
test_utf8_ref(const unsigned char *p, size_t n)
{
    size_t  i, len;

    for (i = 0; i < n; i += len) {
        len = test_utf8_char(p + i, n - i);

        if (len == 0) {
            return 0;
        }
    }

    return 1;
}


/* every string of 1-3 bytes; 4 bytes with the tail from edge cases */
UNIT_TEST(test_utf8_exhaustive)
{
    size_t                      i, j, n, bad;
    uint32_t                    v;
    unsigned char               s[4];
    static const unsigned char  edge[] = {
        0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
        0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff
    };

    bad = 0;

    for (n = 1; n <= 3; n++) {
        for (v = 0; v < (1u << (8 * n)); v++) {
            for (i = 0; i < n; i++) {
                s[i] = (unsigned char) (v >> (8 * i));
            }

            bad += ngx_http_dashstream_utf8_valid(s, n) != test_utf8_ref(s, n);
        }
    }

    n = sizeof(edge);

    for (v = 0; v < 256; v++) {
        for (j = 0; j < n * n * n; j++) {
            s[0] = (unsigned char) v;
            s[1] = edge[j % n];
            s[2] = edge[j / n % n];
            s[3] = edge[j / n / n];

            bad += ngx_http_dashstream_utf8_valid(s, 4) != test_utf8_ref(s, 4);
        }
    }

    CHECK_EQ_U64(bad, 0);

    /* the reference itself must tell the vectors above apart */
    CHECK(test_utf8_ref((const unsigned char *) "\xf4\x8f\xbf\xbf", 4));
    CHECK(!test_utf8_ref((const unsigned char *) "\xf4\x90\x80\x80", 4));
    CHECK(!test_utf8_ref((const unsigned char *) "\xed\xa0\x80", 3));
    CHECK(!test_utf8_ref((const unsigned char *) "\xe0\x9f\xbf", 3));
    CHECK(test_utf8_ref((const unsigned char *) "\xe0\xa0\x80", 3));
}


UNIT_TEST(test_has_token)
{
    CHECK(ngx_http_dashstream_ws_has_token(S("keep-alive, Upgrade"),
                                           "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token(S("Upgrade"), "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token(S("UPGRADE"), "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token(S("  upgrade  "), "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token(S("\tUpgrade\t,x"), "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token(S("keep-alive,upgrade"),
                                           "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token(S("a,,upgrade,"), "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token(S("WebSocket"), "websocket"));

    CHECK(!ngx_http_dashstream_ws_has_token(S("keep-alive"), "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S("upgrades"), "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S("upgrade2, close"),
                                            "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S("xupgrade"), "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S("up grade"), "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S("upgrad"), "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S(""), "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S(" , ,"), "upgrade"));
    CHECK(!ngx_http_dashstream_ws_has_token(S(",,"), ""));
    CHECK(!ngx_http_dashstream_ws_has_token(NULL, 0, "upgrade"));

    /* the length bounds the value: no reading up to a NUL */
    CHECK(!ngx_http_dashstream_ws_has_token((const unsigned char *)
                                            "upgradeX", 6, "upgrade"));
    CHECK(ngx_http_dashstream_ws_has_token((const unsigned char *)
                                           "upgrade, x", 7, "upgrade"));
}


UNIT_TEST(test_key_valid)
{
    CHECK(ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ==")));
    CHECK(ngx_http_dashstream_ws_key_valid(S("AAAAAAAAAAAAAAAAAAAAAA==")));
    CHECK(ngx_http_dashstream_ws_key_valid(S("+++++++++++++++++++++w==")));
    CHECK(ngx_http_dashstream_ws_key_valid(S("/////////////////////w==")));

    CHECK(!ngx_http_dashstream_ws_key_valid(S("")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ=")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ===")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZR==")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("/////////////////////x==")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQQ=")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25j=Q==")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZ-==")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZ ==")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("dGhlIHNhbXBsZSBub25jZQ==\n")));

    /* 17 bytes and 15 bytes */
    CHECK(!ngx_http_dashstream_ws_key_valid(S("AAAAAAAAAAAAAAAAAAAAAAA=")));
    CHECK(!ngx_http_dashstream_ws_key_valid(S("AAAAAAAAAAAAAAAAAAAA")));
}


UNIT_TEST(test_idle_between_messages)
{
    size_t                           n, used, i;
    unsigned char                    in[64];
    ngx_http_dashstream_wsreader_t   r;

    test_init(&r, 1024);
    CHECK(ngx_http_dashstream_wsreader_idle(&r));

    /* a fragmented text "Hel" + "lo": busy until the last fragment ends */
    n = test_frame(in, NGX_HTTP_DASHSTREAM_WS_OP_TEXT, S("Hel"));
    n += test_frame(in + n, WS_FIN | NGX_HTTP_DASHSTREAM_WS_OP_CONT, S("lo"));

    for (i = 0; i < n; i++) {
        used = 0;
        if (ngx_http_dashstream_wsreader_feed(&r, in + i, 1, &used)
            == WS_TEXT)
        {
            CHECK_EQ_INT(i, n - 1);
        }

        CHECK_EQ_INT(used, 1);
        CHECK_EQ_INT(ngx_http_dashstream_wsreader_idle(&r), i == n - 1);
    }

    /* a ping between fragments does not make the reader idle */
    n = test_frame(in, NGX_HTTP_DASHSTREAM_WS_OP_TEXT, S("a"));
    n += test_frame(in + n, WS_FIN | NGX_HTTP_DASHSTREAM_WS_OP_PING, S("p"));
    CHECK_EQ_INT(ngx_http_dashstream_wsreader_feed(&r, in, n, &used),
                 WS_PING);
    CHECK(!ngx_http_dashstream_wsreader_idle(&r));
}


UNIT_MAIN("wsframe",
    UNIT_CASE(test_rfc_masked_text),
    UNIT_CASE(test_rfc_unmasked_rejected),
    UNIT_CASE(test_rfc_fragmented),
    UNIT_CASE(test_rfc_ping_pong),
    UNIT_CASE(test_rfc_binary_256),
    UNIT_CASE(test_rfc_binary_64k),
    UNIT_CASE(test_error_unmasked),
    UNIT_CASE(test_error_reserved_bits),
    UNIT_CASE(test_error_unknown_opcodes),
    UNIT_CASE(test_error_control_rules),
    UNIT_CASE(test_error_length_top_bit),
    UNIT_CASE(test_error_fragment_order),
    UNIT_CASE(test_error_too_big),
    UNIT_CASE(test_error_small_buffer),
    UNIT_CASE(test_error_text_utf8),
    UNIT_CASE(test_error_close_payload),
    UNIT_CASE(test_close_codes),
    UNIT_CASE(test_interleaved_control),
    UNIT_CASE(test_split_feeding),
    UNIT_CASE(test_header_writer),
    UNIT_CASE(test_close_writer),
    UNIT_CASE(test_utf8),
    UNIT_CASE(test_utf8_exhaustive),
    UNIT_CASE(test_has_token),
    UNIT_CASE(test_key_valid),
    UNIT_CASE(test_idle_between_messages))
