/*
 * Copyright (C) ngx_dashstream authors
 *
 * libFuzzer target for the Kafka payload decoder.  Input byte 0 picks a
 * decoder (roomy or tiny limits), whether the rest is repeated up to the
 * payload limit, and whether it is decoded as is or first compressed into
 * a 0x01 zstd payload, so that the protobuf walk is reached both ways.
 * Every result must keep the decoder's promises, decoding twice must
 * agree, and whatever the arena unpacked must pack to the same bytes as
 * protobuf-c's own unpack with malloc.
 */


#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "ngx_http_dashstream_decode.h"


#define FUZZ_MAX    8192

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_http_dashstream_decoder_t  *fuzz_decoders[2];
static unsigned char                   fuzz_in[FUZZ_MAX];
static unsigned char                   fuzz_buf[2 * FUZZ_MAX + 64];
static unsigned char                   fuzz_pack[2][4 * FUZZ_MAX];


static void
fuzz_init(void)
{
    ngx_http_dashstream_decode_limits_t  lim;

    lim.max_payload = FUZZ_MAX;
    lim.max_decompressed = FUZZ_MAX;
    fuzz_decoders[0] = ngx_http_dashstream_decoder_create(&lim);

    lim.max_payload = 96;
    lim.max_decompressed = 48;
    fuzz_decoders[1] = ngx_http_dashstream_decoder_create(&lim);

    FUZZ_CHECK(fuzz_decoders[0] != NULL && fuzz_decoders[1] != NULL);
}


/* the arena tree against protobuf-c's own malloc'd tree */

static void
fuzz_compare(const unsigned char *body, size_t len,
    const Dashstream__V1__DashStreamMessage *msg)
{
    size_t                              a, b;
    Dashstream__V1__DashStreamMessage  *ref;

    ref = dashstream__v1__dash_stream_message__unpack(NULL, len, body);
    FUZZ_CHECK(ref != NULL);

    FUZZ_CHECK(ref->message_case == msg->message_case);

    a = dashstream__v1__dash_stream_message__get_packed_size(msg);
    b = dashstream__v1__dash_stream_message__get_packed_size(ref);
    FUZZ_CHECK(a == b && a <= sizeof(fuzz_pack[0]));

    dashstream__v1__dash_stream_message__pack(msg, fuzz_pack[0]);
    dashstream__v1__dash_stream_message__pack(ref, fuzz_pack[1]);
    FUZZ_CHECK(memcmp(fuzz_pack[0], fuzz_pack[1], a) == 0);

    dashstream__v1__dash_stream_message__free_unpacked(ref, NULL);
}


static void
fuzz_check(ngx_http_dashstream_decoder_t *d, size_t max_payload,
    const unsigned char *p, size_t len)
{
    int                            rc, rc2;
    char                           err[128];
    size_t                         skip;
    ngx_http_dashstream_decoded_t  out, out2;

    memset(err, 'x', sizeof(err));

    rc = ngx_http_dashstream_decode(d, p, len, &out, err, sizeof(err));

    FUZZ_CHECK(rc >= 0 && rc < NGX_HTTP_DASHSTREAM_DECODE_NTYPES);
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    FUZZ_CHECK((rc == NGX_HTTP_DASHSTREAM_DECODE_OK) == (err[0] == '\0'));
    FUZZ_CHECK(strcmp(ngx_http_dashstream_decode_error_name(rc), "unknown"));

    if (len > max_payload) {
        FUZZ_CHECK(rc == NGX_HTTP_DASHSTREAM_DECODE_TOO_LARGE);
        FUZZ_CHECK(out.framing == NGX_HTTP_DASHSTREAM_FRAMING_NONE);
        return;
    }

    if (len == 0) {
        FUZZ_CHECK(rc == NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED);
        return;
    }

    if (p[0] >= 0x02 && p[0] <= 0x07) {
        FUZZ_CHECK(rc == NGX_HTTP_DASHSTREAM_DECODE_UNKNOWN_FRAMING);
        FUZZ_CHECK(out.framing == NGX_HTTP_DASHSTREAM_FRAMING_NONE);
        return;
    }

    FUZZ_CHECK(out.framing == (p[0] == 0x00
                               ? NGX_HTTP_DASHSTREAM_FRAMING_PROTOBUF
                               : p[0] == 0x01
                               ? NGX_HTTP_DASHSTREAM_FRAMING_ZSTD
                               : NGX_HTTP_DASHSTREAM_FRAMING_LEGACY));

    rc2 = ngx_http_dashstream_decode(d, p, len, &out2, NULL, 0);
    FUZZ_CHECK(rc == rc2);

    if (rc != NGX_HTTP_DASHSTREAM_DECODE_OK) {
        FUZZ_CHECK(out.msg == NULL);
        FUZZ_CHECK(p[0] != 0x01
                   || rc != NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED
                   || strstr(err, "offset") != NULL);
        return;
    }

    FUZZ_CHECK(out2.msg != NULL);
    FUZZ_CHECK(out2.msg_type == (unsigned) out2.msg->message_case);
    FUZZ_CHECK(out2.msg_type <= 9);
    FUZZ_CHECK(out2.thread_id != NULL && out2.tenant_id != NULL);
    FUZZ_CHECK(strlen(out2.thread_id) == out2.thread_id_len);
    FUZZ_CHECK(strlen(out2.tenant_id) == out2.tenant_id_len);

    if (p[0] != 0x01) {
        skip = (p[0] == 0x00);
        fuzz_compare(p + skip, len - skip, out2.msg);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                          n, max_payload;
    const unsigned char            *p;
    ngx_http_dashstream_decoder_t  *d;

    if (fuzz_decoders[0] == NULL) {
        fuzz_init();
    }

    if (size == 0 || size > FUZZ_MAX + 1) {
        return 0;
    }

    d = fuzz_decoders[data[0] & 1];
    max_payload = (data[0] & 1) ? 96 : FUZZ_MAX;

    p = data + 1;
    n = size - 1;

    /* many copies of a few fields: large messages, arena exhaustion */

    if ((data[0] & 4) && n > 0) {
        for (size = 0; size + n <= max_payload; size += n) {
            memcpy(fuzz_in + size, p, n);
        }

        p = fuzz_in;
        n = size;
    }

    if ((data[0] & 2) == 0) {
        fuzz_check(d, max_payload, p, n);
        return 0;
    }

    fuzz_buf[0] = 0x01;
    n = ZSTD_compress(fuzz_buf + 1, sizeof(fuzz_buf) - 1, p, n, 1);
    FUZZ_CHECK(!ZSTD_isError(n));

    fuzz_check(d, max_payload, fuzz_buf, n + 1);

    return 0;
}
