/*
 * Copyright (C) ngx_dashstream authors
 */


#include "unit.h"

#include <zstd.h>

#include "ngx_http_dashstream_decode.h"


#define LIMIT      65536
#define BUF_SIZE   (4 * LIMIT)

#define T_OK       NGX_HTTP_DASHSTREAM_DECODE_OK
#define T_TRUNC    NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED
#define T_INVALID  NGX_HTTP_DASHSTREAM_DECODE_INVALID_PROTOBUF
#define T_ZSTD     NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED
#define T_LARGE    NGX_HTTP_DASHSTREAM_DECODE_TOO_LARGE
#define T_FRAMING  NGX_HTTP_DASHSTREAM_DECODE_UNKNOWN_FRAMING

#define F_PB       NGX_HTTP_DASHSTREAM_FRAMING_PROTOBUF
#define F_ZSTD     NGX_HTTP_DASHSTREAM_FRAMING_ZSTD
#define F_LEGACY   NGX_HTTP_DASHSTREAM_FRAMING_LEGACY
#define F_NONE     NGX_HTTP_DASHSTREAM_FRAMING_NONE

#define NKEYS      6000
#define TS         1700000000123456LL


static unsigned char                   buf[BUF_SIZE];
static unsigned char                   pb[BUF_SIZE];
static char                            err[256];
static ngx_http_dashstream_decoded_t   out;


static ngx_http_dashstream_decoder_t *
decoder(size_t max_payload, size_t max_decompressed)
{
    ngx_http_dashstream_decode_limits_t  lim;

    lim.max_payload = max_payload;
    lim.max_decompressed = max_decompressed;

    return ngx_http_dashstream_decoder_create(&lim);
}


static int
decode(ngx_http_dashstream_decoder_t *d, const unsigned char *p, size_t len)
{
    return ngx_http_dashstream_decode(d, p, len, &out, err, sizeof(err));
}


/* counts as a check; a failure leaves nothing to look into */

static int
decode_ok(ngx_http_dashstream_decoder_t *d, const unsigned char *p,
    size_t len)
{
    int  rc;

    rc = decode(d, p, len);
    CHECK_EQ_INT(rc, NGX_HTTP_DASHSTREAM_DECODE_OK);

    if (rc != NGX_HTTP_DASHSTREAM_DECODE_OK) {
        fprintf(stderr, "    decode: %s: %s\n",
                ngx_http_dashstream_decode_error_name(rc), err);
    }

    return rc == NGX_HTTP_DASHSTREAM_DECODE_OK && out.msg != NULL;
}


/* frames a packed message into buf */

static size_t
frame(const unsigned char *p, size_t n, int framing)
{
    size_t  z;

    switch (framing) {

    case F_PB:
        buf[0] = 0x00;
        memcpy(buf + 1, p, n);
        return n + 1;

    case F_ZSTD:
        buf[0] = 0x01;
        z = ZSTD_compress(buf + 1, sizeof(buf) - 1, p, n, 3);
        return ZSTD_isError(z) ? 0 : z + 1;

    default:
        memcpy(buf, p, n);
        return n;
    }
}


static size_t
pack(const Dashstream__V1__DashStreamMessage *m)
{
    CHECK(dashstream__v1__dash_stream_message__get_packed_size(m)
          <= sizeof(pb));

    return dashstream__v1__dash_stream_message__pack(m, pb);
}


static void
header(Dashstream__V1__Header *h, const char *thread, const char *tenant,
    uint64_t seq, int64_t ts, Dashstream__V1__MessageType type)
{
    dashstream__v1__header__init(h);

    h->message_id.data = (uint8_t *) "\x01\x02\x03\x04";
    h->message_id.len = 4;
    h->timestamp_us = ts;
    h->tenant_id = (char *) tenant;
    h->thread_id = (char *) thread;
    h->sequence = seq;
    h->type = type;
    h->schema_version = 1;
}


/* Event "plan" of thread-42, sequence 7, with one attribute */

static size_t
pack_event(void)
{
    Dashstream__V1__Event                    ev;
    Dashstream__V1__Header                   h;
    Dashstream__V1__DashStreamMessage        m;
    Dashstream__V1__Event__AttributesEntry   a, *ap;

    header(&h, "thread-42", "acme", 7, TS,
           DASHSTREAM__V1__MESSAGE_TYPE__MESSAGE_TYPE_EVENT);

    dashstream__v1__event__attributes_entry__init(&a);
    a.key = "model";
    a.value.data = (uint8_t *) "gpt";
    a.value.len = 3;
    ap = &a;

    dashstream__v1__event__init(&ev);
    ev.header = &h;
    ev.event_type = DASHSTREAM__V1__EVENT_TYPE__EVENT_TYPE_NODE_START;
    ev.node_id = "plan";
    ev.n_attributes = 1;
    ev.attributes = &ap;

    dashstream__v1__dash_stream_message__init(&m);
    m.message_case = DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EVENT;
    m.event = &ev;

    return pack(&m);
}


static void
check_event(void)
{
    const Dashstream__V1__Event  *ev;

    CHECK(out.msg != NULL);
    if (out.msg == NULL) {
        return;
    }

    CHECK_EQ_INT(out.msg_type, 1);
    CHECK_EQ_U64(out.sequence, 7);
    CHECK_EQ_INT(out.timestamp_us, TS);
    CHECK_EQ_INT(out.thread_id_len, 9);
    CHECK_MEM(out.thread_id, "thread-42", 9);
    CHECK_EQ_INT(out.tenant_id_len, 4);
    CHECK_MEM(out.tenant_id, "acme", 4);

    ev = out.msg->event;
    CHECK_STR(ev->node_id, "plan");
    CHECK_EQ_INT(ev->event_type,
                 DASHSTREAM__V1__EVENT_TYPE__EVENT_TYPE_NODE_START);
    CHECK_EQ_INT(ev->n_attributes, 1);
    CHECK_STR(ev->attributes[0]->key, "model");
    CHECK_EQ_INT(ev->attributes[0]->value.len, 3);
    CHECK_MEM(ev->attributes[0]->value.data, "gpt", 3);
    CHECK_EQ_INT(ev->header->message_id.len, 4);
    CHECK_EQ_INT(ev->header->schema_version, 1);
}


UNIT_TEST(t_event_all_framings)
{
    int                             f;
    size_t                          n, len;
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);
    CHECK(d != NULL);

    n = pack_event();

    for (f = F_PB; f <= F_LEGACY; f++) {
        len = frame(pb, n, f);
        CHECK(len > 0);

        CHECK_EQ_INT(decode(d, buf, len), T_OK);
        CHECK_STR(err, "");
        CHECK_EQ_INT(out.framing, f);
        check_event();
    }

    /* the legacy payload starts with the tag of field 1, length-delimited */
    CHECK_EQ_INT(pb[0], 0x0a);

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_token_chunk)
{
    int                                f;
    size_t                             n, len;
    uint32_t                           ids[3] = { 1, 2, 300 };
    float                              lp[3] = { -0.5f, -1.25f, -2.0f };
    Dashstream__V1__Header             h;
    Dashstream__V1__TokenChunk         tc;
    const Dashstream__V1__TokenChunk  *r;
    Dashstream__V1__DashStreamMessage  m;
    ngx_http_dashstream_decoder_t     *d;

    d = decoder(LIMIT, LIMIT);

    header(&h, "t-tok", "tenant-9", 3, 42,
           DASHSTREAM__V1__MESSAGE_TYPE__MESSAGE_TYPE_TOKEN_CHUNK);

    dashstream__v1__token_chunk__init(&tc);
    tc.header = &h;
    tc.request_id = "req-1";
    tc.text = "hello";
    tc.n_token_ids = 3;
    tc.token_ids = ids;
    tc.n_logprobs = 3;
    tc.logprobs = lp;
    tc.chunk_index = 5;
    tc.is_final = 1;
    tc.finish_reason = DASHSTREAM__V1__FINISH_REASON__FINISH_REASON_STOP;

    dashstream__v1__dash_stream_message__init(&m);
    m.message_case = DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_TOKEN_CHUNK;
    m.token_chunk = &tc;

    n = pack(&m);

    for (f = F_PB; f <= F_LEGACY; f++) {
        len = frame(pb, n, f);

        if (!decode_ok(d, buf, len)) {
            continue;
        }

        CHECK_EQ_INT(out.framing, f);
        CHECK_EQ_INT(out.msg_type, 3);
        CHECK_EQ_U64(out.sequence, 3);
        CHECK_EQ_INT(out.timestamp_us, 42);
        CHECK_EQ_INT(out.thread_id_len, 5);
        CHECK_MEM(out.thread_id, "t-tok", 5);
        CHECK_EQ_INT(out.tenant_id_len, 8);
        CHECK_MEM(out.tenant_id, "tenant-9", 8);

        r = out.msg->token_chunk;
        CHECK_STR(r->text, "hello");
        CHECK_EQ_INT(r->n_token_ids, 3);
        CHECK_EQ_INT(r->token_ids[2], 300);
        CHECK_EQ_INT(r->n_logprobs, 3);
        CHECK(r->logprobs[1] == -1.25f);
        CHECK_EQ_INT(r->chunk_index, 5);
        CHECK_EQ_INT(r->is_final, 1);
    }

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_metrics_map)
{
    int                                     f;
    size_t                                  n, len;
    Dashstream__V1__Header                  h;
    Dashstream__V1__Metrics                 mt;
    Dashstream__V1__MetricValue             v1, v2;
    const Dashstream__V1__Metrics          *r;
    Dashstream__V1__DashStreamMessage       m;
    Dashstream__V1__Metrics__MetricsEntry   e1, e2, *ep[2];
    ngx_http_dashstream_decoder_t          *d;

    d = decoder(LIMIT, LIMIT);

    header(&h, "t-met", "", 11, -5,
           DASHSTREAM__V1__MESSAGE_TYPE__MESSAGE_TYPE_METRICS);

    dashstream__v1__metric_value__init(&v1);
    v1.value_case = DASHSTREAM__V1__METRIC_VALUE__VALUE_INT_VALUE;
    v1.int_value = -17;
    v1.unit = "ms";

    dashstream__v1__metric_value__init(&v2);
    v2.value_case = DASHSTREAM__V1__METRIC_VALUE__VALUE_DOUBLE_VALUE;
    v2.double_value = 0.75;

    dashstream__v1__metrics__metrics_entry__init(&e1);
    e1.key = "latency";
    e1.value = &v1;
    dashstream__v1__metrics__metrics_entry__init(&e2);
    e2.key = "ratio";
    e2.value = &v2;
    ep[0] = &e1;
    ep[1] = &e2;

    dashstream__v1__metrics__init(&mt);
    mt.header = &h;
    mt.scope = "node";
    mt.n_metrics = 2;
    mt.metrics = ep;

    dashstream__v1__dash_stream_message__init(&m);
    m.message_case = DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_METRICS;
    m.metrics = &mt;

    n = pack(&m);

    for (f = F_PB; f <= F_LEGACY; f++) {
        len = frame(pb, n, f);

        if (!decode_ok(d, buf, len)) {
            continue;
        }

        CHECK_EQ_INT(out.msg_type, 6);
        CHECK_EQ_U64(out.sequence, 11);
        CHECK_EQ_INT(out.timestamp_us, -5);
        CHECK_MEM(out.thread_id, "t-met", 5);
        CHECK_EQ_INT(out.tenant_id_len, 0);
        CHECK_STR(out.tenant_id, "");

        r = out.msg->metrics;
        CHECK_STR(r->scope, "node");
        CHECK_EQ_INT(r->n_metrics, 2);
        CHECK_STR(r->metrics[0]->key, "latency");
        CHECK_EQ_INT(r->metrics[0]->value->int_value, -17);
        CHECK_STR(r->metrics[0]->value->unit, "ms");
        CHECK_STR(r->metrics[1]->key, "ratio");
        CHECK_EQ_INT(r->metrics[1]->value->value_case,
                     DASHSTREAM__V1__METRIC_VALUE__VALUE_DOUBLE_VALUE);
        CHECK(r->metrics[1]->value->double_value == 0.75);
    }

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_event_batch)
{
    int                                f, i;
    char                               node[3][16];
    size_t                             n, len;
    Dashstream__V1__Event              ev[3], *evp[3];
    Dashstream__V1__Header             h, eh[3];
    Dashstream__V1__EventBatch         b;
    Dashstream__V1__DashStreamMessage  m;
    ngx_http_dashstream_decoder_t     *d;

    d = decoder(LIMIT, LIMIT);

    for (i = 0; i < 3; i++) {
        header(&eh[i], "inner", "acme", 100 + i, TS + i,
               DASHSTREAM__V1__MESSAGE_TYPE__MESSAGE_TYPE_EVENT);
        snprintf(node[i], sizeof(node[i]), "n%d", i);

        dashstream__v1__event__init(&ev[i]);
        ev[i].header = &eh[i];
        ev[i].node_id = node[i];
        ev[i].event_type = DASHSTREAM__V1__EVENT_TYPE__EVENT_TYPE_NODE_END;
        evp[i] = &ev[i];
    }

    header(&h, "batch-thread", "acme", 9, TS - 1,
           DASHSTREAM__V1__MESSAGE_TYPE__MESSAGE_TYPE_EVENT_BATCH);

    dashstream__v1__event_batch__init(&b);
    b.header = &h;
    b.n_events = 3;
    b.events = evp;

    dashstream__v1__dash_stream_message__init(&m);
    m.message_case = DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EVENT_BATCH;
    m.event_batch = &b;

    n = pack(&m);

    for (f = F_PB; f <= F_LEGACY; f++) {
        len = frame(pb, n, f);

        if (!decode_ok(d, buf, len)) {
            continue;
        }

        CHECK_EQ_INT(out.msg_type, 8);
        CHECK_EQ_U64(out.sequence, 9);
        CHECK_EQ_INT(out.timestamp_us, TS - 1);
        CHECK_EQ_INT(out.thread_id_len, 12);
        CHECK_MEM(out.thread_id, "batch-thread", 12);

        CHECK_EQ_INT(out.msg->event_batch->n_events, 3);
        CHECK_STR(out.msg->event_batch->events[2]->node_id, "n2");
        CHECK_EQ_U64(out.msg->event_batch->events[2]->header->sequence,
                     102);
    }

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_no_header)
{
    size_t                             n, len;
    Dashstream__V1__Error              e;
    Dashstream__V1__ExecutionTrace     tr;
    Dashstream__V1__DashStreamMessage  m;
    ngx_http_dashstream_decoder_t     *d;

    d = decoder(LIMIT, LIMIT);

    dashstream__v1__execution_trace__init(&tr);
    tr.graph_name = "g";
    tr.duration_us = 12;

    dashstream__v1__dash_stream_message__init(&m);
    m.message_case =
        DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EXECUTION_TRACE;
    m.execution_trace = &tr;

    n = pack(&m);
    len = frame(pb, n, F_ZSTD);

    if (decode_ok(d, buf, len)) {
        CHECK_EQ_INT(out.msg_type, 9);
        CHECK_EQ_INT(out.timestamp_us, 0);
        CHECK_EQ_U64(out.sequence, 0);
        CHECK(out.thread_id != NULL && out.tenant_id != NULL);
        CHECK_EQ_INT(out.thread_id_len, 0);
        CHECK_EQ_INT(out.tenant_id_len, 0);
        CHECK_STR(out.msg->execution_trace->graph_name, "g");
    }

    dashstream__v1__error__init(&e);
    e.message = "boom";
    m.message_case = DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_ERROR;
    m.error = &e;

    n = pack(&m);
    len = frame(pb, n, F_PB);

    if (decode_ok(d, buf, len)) {
        CHECK_EQ_INT(out.msg_type, 7);
        CHECK_EQ_INT(out.thread_id_len, 0);
        CHECK_STR(out.msg->error->message, "boom");
    }

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_empty_envelope)
{
    unsigned char                   p[1] = { 0x00 };
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);

    CHECK_EQ_INT(decode(d, p, 1), T_OK);
    CHECK_EQ_INT(out.framing, F_PB);
    CHECK_EQ_INT(out.msg_type, 0);
    CHECK(out.msg != NULL);
    CHECK_EQ_INT(out.thread_id_len, 0);

    /* a zstd frame of nothing is an empty envelope too */
    CHECK_EQ_INT(decode(d, buf, frame(pb, 0, F_ZSTD)), T_OK);
    CHECK_EQ_INT(out.framing, F_ZSTD);
    CHECK_EQ_INT(out.msg_type, 0);

    CHECK_EQ_INT(decode(d, p, 0), T_TRUNC);
    CHECK_STR(err, "empty payload");
    CHECK_EQ_INT(out.framing, F_NONE);
    CHECK(out.msg == NULL);

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_too_large)
{
    size_t                          n;
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(100, LIMIT);

    /* reserved framing byte: the size is checked before anything else */
    memset(buf, 0x02, 101);
    CHECK_EQ_INT(decode(d, buf, 101), T_LARGE);
    CHECK_STR(err, "payload of 101 bytes, limit 100");
    CHECK_EQ_INT(out.framing, F_NONE);
    CHECK_EQ_INT(decode(d, buf, 100), T_FRAMING);

    /* exactly at the limit: 0x00, tag 0x7a (field 15), length 97 */
    buf[0] = 0x00;
    buf[1] = 0x7a;
    buf[2] = 97;
    memset(buf + 3, 'x', 97);
    CHECK_EQ_INT(decode(d, buf, 100), T_OK);
    CHECK_EQ_INT(out.msg_type, 0);
    buf[2] = 98;
    CHECK_EQ_INT(decode(d, buf, 101), T_LARGE);

    ngx_http_dashstream_decoder_destroy(d);

    d = decoder(LIMIT, LIMIT);
    n = pack_event();
    n = frame(pb, n, F_PB);
    ngx_http_dashstream_decoder_destroy(d);

    d = decoder(n - 1, LIMIT);
    CHECK_EQ_INT(decode(d, buf, n), T_LARGE);
    ngx_http_dashstream_decoder_destroy(d);

    d = decoder(n, LIMIT);
    CHECK_EQ_INT(decode(d, buf, n), T_OK);
    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_unknown_framing)
{
    int                             c;
    char                            want[64];
    unsigned char                   p[8];
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);

    memset(p, 0x0a, sizeof(p));

    for (c = 0x02; c <= 0x07; c++) {
        p[0] = (unsigned char) c;
        CHECK_EQ_INT(decode(d, p, sizeof(p)), T_FRAMING);
        CHECK_EQ_INT(out.framing, F_NONE);
        snprintf(want, sizeof(want), "reserved framing byte 0x%02x", c);
        CHECK_STR(err, want);

        CHECK_EQ_INT(decode(d, p, 1), T_FRAMING);
    }

    /* 0x08 is field 1 varint: legacy, then wrong wire type for a message */
    p[0] = 0x08;
    p[1] = 0x01;
    CHECK_EQ_INT(decode(d, p, 2), T_INVALID);
    CHECK_EQ_INT(out.framing, F_LEGACY);

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_zstd_streaming)
{
    size_t                          n, len;
    ZSTD_CCtx                      *cc;
    ZSTD_inBuffer                   in;
    ZSTD_outBuffer                  o;
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);
    n = pack_event();

    /* a stream compressor that has not seen the end declares no size */

    cc = ZSTD_createCCtx();
    in.src = pb;
    in.size = n;
    in.pos = 0;
    o.dst = buf + 1;
    o.size = sizeof(buf) - 1;
    o.pos = 0;

    CHECK(!ZSTD_isError(ZSTD_compressStream2(cc, &o, &in, ZSTD_e_continue)));
    CHECK_EQ_INT(ZSTD_compressStream2(cc, &o, &in, ZSTD_e_end), 0);
    ZSTD_freeCCtx(cc);

    buf[0] = 0x01;
    len = o.pos + 1;

    CHECK(ZSTD_getFrameContentSize(buf + 1, o.pos)
          == ZSTD_CONTENTSIZE_UNKNOWN);

    /* the same bytes decompress fine with a streaming decoder */
    CHECK(ZSTD_decompress(pb, sizeof(pb), buf + 1, o.pos) == n);

    CHECK_EQ_INT(decode(d, buf, len), T_ZSTD);
    CHECK_EQ_INT(out.framing, F_ZSTD);
    CHECK_STR(err, "zstd frame does not declare its content size");

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_zstd_declared_1gib)
{
    unsigned char                   p[10] = {
        0x01,                       /* framing */
        0x28, 0xb5, 0x2f, 0xfd,     /* zstd magic */
        0xa0,                       /* single segment, 4-byte size */
        0x00, 0x00, 0x00, 0x40      /* content size 2^30 */
    };
    ngx_http_dashstream_decoder_t  *d;

    CHECK(ZSTD_getFrameContentSize(p + 1, 9) == 1073741824ULL);

    /*
     * The frame has no blocks, so anything past the size check would
     * fail as decompress_failed; the tiny limit leaves nothing to
     * decompress into either.
     */

    d = decoder(LIMIT, 64);
    CHECK_EQ_INT(decode(d, p, sizeof(p)), T_LARGE);
    CHECK_STR(err, "zstd frame declares 1073741824 bytes, limit 64");
    CHECK_EQ_INT(out.framing, F_ZSTD);
    ngx_http_dashstream_decoder_destroy(d);

    d = decoder(LIMIT, 1048576);
    CHECK_EQ_INT(decode(d, p, sizeof(p)), T_LARGE);
    CHECK_STR(err, "zstd frame declares 1073741824 bytes, limit 1048576");
    ngx_http_dashstream_decoder_destroy(d);

    /* a real frame one byte over the limit */

    memset(pb, 'a', 65);
    d = decoder(LIMIT, 64);
    CHECK_EQ_INT(decode(d, buf, frame(pb, 65, F_ZSTD)), T_LARGE);
    CHECK_STR(err, "zstd frame declares 65 bytes, limit 64");
    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_zstd_malformed)
{
    size_t                          n, len, z;
    unsigned char                   skip[9] = {
        0x01, 0x50, 0x2a, 0x4d, 0x18, 0x00, 0x00, 0x00, 0x00
    };
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);
    n = pack_event();
    len = frame(pb, n, F_ZSTD);

    /* one stray byte, then a second frame */
    buf[len] = 0x00;
    CHECK_EQ_INT(decode(d, buf, len + 1), T_ZSTD);
    CHECK_STR(err, "trailing data: 1 bytes after the zstd frame");

    memcpy(buf + len, buf + 1, len - 1);
    CHECK_EQ_INT(decode(d, buf, 2 * len - 1), T_ZSTD);
    CHECK(strncmp(err, "trailing data", 13) == 0);

    CHECK_EQ_INT(decode(d, buf, len), T_OK);

    /* every cut of a zstd payload fails in zstd, never in protobuf */
    for (z = 1; z < len; z++) {
        CHECK_EQ_INT(decode(d, buf, z), T_ZSTD);
        CHECK_EQ_INT(out.framing, F_ZSTD);
    }

    memcpy(buf, "\x01" "abcdefgh", 9);
    CHECK_EQ_INT(decode(d, buf, 9), T_ZSTD);
    CHECK_STR(err, "not a zstd frame: magic 0x64636261");

    /* a skippable frame carries no message */
    CHECK_EQ_INT(decode(d, skip, sizeof(skip)), T_ZSTD);
    CHECK_STR(err, "not a zstd frame: magic 0x184d2a50");

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_zstd_inner_protobuf)
{
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);

    /* field 1 with wire type 6, and a cut length-delimited field */

    CHECK_EQ_INT(decode(d, buf, frame((unsigned char *) "\x0e\x01", 2,
                                      F_ZSTD)), T_INVALID);
    CHECK_EQ_INT(out.framing, F_ZSTD);

    CHECK_EQ_INT(decode(d, buf, frame((unsigned char *) "\x0a\x05\x0a", 3,
                                      F_ZSTD)), T_TRUNC);
    CHECK_STR(err, "field 1 at offset 0 needs 5 bytes, 1 left");

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_truncation)
{
    int                             want;
    char                            want_err[64];
    size_t                          n, len, cut;
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);
    n = pack_event();

    /*
     * The envelope holds one length-delimited field, so its only field
     * boundaries are the start and the end: an empty 0x00 payload is a
     * valid empty envelope and every other cut is truncated.
     */

    len = frame(pb, n, F_PB);

    for (cut = 0; cut <= len; cut++) {
        want = (cut == 1 || cut == len) ? T_OK : T_TRUNC;
        CHECK_EQ_INT(decode(d, buf, cut), want);
    }

    len = frame(pb, n, F_LEGACY);

    for (cut = 0; cut <= len; cut++) {
        want = (cut == len) ? T_OK : T_TRUNC;
        CHECK_EQ_INT(decode(d, buf, cut), want);
    }

    /* event, then field 15 fixed64: ok only at the two boundaries */

    len = frame(pb, n, F_PB);
    memcpy(buf + len, "\x79\x01\x02\x03\x04\x05\x06\x07\x08", 9);

    for (cut = len; cut <= len + 9; cut++) {
        want = (cut == len || cut == len + 9) ? T_OK : T_TRUNC;
        CHECK_EQ_INT(decode(d, buf, cut), want);
        CHECK_EQ_INT(out.msg_type, want == T_OK ? 1 : 0);
    }

    CHECK_EQ_INT(decode(d, buf, len + 5), T_TRUNC);
    snprintf(want_err, sizeof(want_err),
             "field 15 at offset %zu needs 8 bytes, 4 left", n);
    CHECK_STR(err, want_err);

    /* varint cut: a multi-byte length with its last byte missing */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x0a\x80", 3), T_TRUNC);
    CHECK_STR(err, "cut varint in field 1 at offset 0");

    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x80", 2), T_TRUNC);
    CHECK_STR(err, "cut tag at offset 0");

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_truncated_submessage)
{
    size_t                          n;
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);
    n = pack_event();

    /*
     * pb is 0x0a <len> <event>; re-wrap the first 10 bytes of the event
     * under a correct outer length: the header inside the event is cut.
     * Only the top level is walked, so protobuf-c rejects it as invalid.
     */

    CHECK(n > 40 && pb[1] == n - 2);

    buf[0] = 0x00;
    buf[1] = 0x0a;
    buf[2] = 10;
    memcpy(buf + 3, pb + 2, 10);

    CHECK_EQ_INT(decode(d, buf, 13), T_INVALID);
    CHECK(out.msg == NULL);

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_wire_types)
{
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);

    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x0e\x01", 3), T_INVALID);
    CHECK_STR(err, "wire type 6 in field 1 at offset 0");

    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x0f", 2), T_INVALID);
    CHECK_STR(err, "wire type 7 in field 1 at offset 0");

    /* groups */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x0b\x0c", 3), T_INVALID);
    CHECK_STR(err, "wire type 3 in field 1 at offset 0");
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x7c", 2), T_INVALID);

    /* legacy framing, wire type 7 at the first byte */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x7f\x00", 2), T_INVALID);
    CHECK_EQ_INT(out.framing, F_LEGACY);

    /* a bad wire type after a valid field is still invalid */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x78\x01\x7e", 4),
                 T_INVALID);
    CHECK_STR(err, "wire type 6 in field 15 at offset 2");

    /* field number 0 */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x00\x01", 3), T_INVALID);
    CHECK_STR(err, "field number 0 at offset 0");

    /* field number 2^29 is one past the largest */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x80\x80\x80\x80\x10\x00",
                        7), T_INVALID);

    /* varints: 10 bytes is the most */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x78"
                        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12),
                 T_OK);
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x78"
                        "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13),
                 T_INVALID);
    CHECK_STR(err, "overlong varint in field 15 at offset 0");

    /* a known field with the wrong wire type passes the walk only */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x08\x01", 3), T_INVALID);
    CHECK(strstr(err, "do not unpack") != NULL);

    /* fixed32 and fixed64 unknown fields */
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x7d\x01\x02\x03\x04", 6),
                 T_OK);
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00\x7d\x01\x02\x03", 5),
                 T_TRUNC);

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_unknown_fields)
{
    int                             f;
    size_t                          n, len;
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);
    n = pack_event();

    /* field 15 varint 42, field 100 bytes "zz", field 16 fixed32 */
    memcpy(pb + n, "\x78\x2a" "\xa2\x06\x02zz" "\x85\x01\x01\x02\x03\x04",
           13);
    n += 13;

    for (f = F_PB; f <= F_LEGACY; f++) {
        len = frame(pb, n, f);

        if (decode_ok(d, buf, len)) {
            check_event();
            CHECK_EQ_INT(out.msg->base.n_unknown_fields, 3);
        }
    }

    /* unknown fields inside the event too: 0x0a <len> <event> */
    CHECK(pb[1] < 0x7f - 2);
    memmove(pb + 2 + pb[1] + 2, pb + 2 + pb[1], n - 2 - pb[1]);
    memcpy(pb + 2 + pb[1], "\x78\x07", 2);
    pb[1] += 2;
    n += 2;

    if (decode_ok(d, buf, frame(pb, n, F_PB))) {
        check_event();
        CHECK_EQ_INT(out.msg->event->base.n_unknown_fields, 1);
    }

    ngx_http_dashstream_decoder_destroy(d);
}


static char                                   keys[NKEYS][16];
static Dashstream__V1__MetricValue            values[NKEYS];
static Dashstream__V1__Metrics__MetricsEntry  entries[NKEYS];
static Dashstream__V1__Metrics__MetricsEntry *entry_ptrs[NKEYS];


UNIT_TEST(t_arena)
{
    int                                 i;
    size_t                              n;
    Dashstream__V1__Header              h;
    Dashstream__V1__Metrics             mt;
    Dashstream__V1__DashStreamMessage   m;
    ngx_http_dashstream_decoder_t      *d;

    d = decoder(LIMIT, LIMIT);

    /* thousands of tiny unknown fields cost far more than their size */

    buf[0] = 0x00;
    for (n = 1; n + 2 <= LIMIT; n += 2) {
        buf[n] = 0x78;
        buf[n + 1] = 0x00;
    }

    CHECK_EQ_INT(decode(d, buf, n), T_LARGE);
    CHECK_STR(err, "decoded message exceeds memory limit");
    CHECK(out.msg == NULL);

    /* the arena is reset: the next message decodes */
    CHECK_EQ_INT(decode(d, buf, frame(pb, pack_event(), F_PB)), T_OK);
    check_event();

    /* the densest realistic shape, a map of short keys, fits */

    header(&h, "t", "", 1, 1,
           DASHSTREAM__V1__MESSAGE_TYPE__MESSAGE_TYPE_METRICS);

    for (i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%04d", i);
        dashstream__v1__metric_value__init(&values[i]);
        values[i].value_case = DASHSTREAM__V1__METRIC_VALUE__VALUE_INT_VALUE;
        values[i].int_value = i;
        dashstream__v1__metrics__metrics_entry__init(&entries[i]);
        entries[i].key = keys[i];
        entries[i].value = &values[i];
        entry_ptrs[i] = &entries[i];
    }

    dashstream__v1__metrics__init(&mt);
    mt.header = &h;
    mt.metrics = entry_ptrs;
    mt.n_metrics = NKEYS;

    dashstream__v1__dash_stream_message__init(&m);
    m.message_case = DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_METRICS;
    m.metrics = &mt;

    while (dashstream__v1__dash_stream_message__get_packed_size(&m) >= LIMIT) {
        mt.n_metrics--;
    }

    n = frame(pb, pack(&m), F_PB);
    CHECK(n > LIMIT - 32);

    if (decode_ok(d, buf, n)) {
        CHECK_EQ_INT(out.msg->metrics->n_metrics, mt.n_metrics);
        CHECK_EQ_INT(out.msg->metrics->metrics[mt.n_metrics - 1]
                     ->value->int_value, mt.n_metrics - 1);
    }

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_err_buffer)
{
    char                            small[6];
    ngx_http_dashstream_decoder_t  *d;

    d = decoder(LIMIT, LIMIT);

    CHECK_EQ_INT(ngx_http_dashstream_decode(d, buf, 0, &out, NULL, 0),
                 T_TRUNC);

    CHECK_EQ_INT(ngx_http_dashstream_decode(d, buf, 0, &out, small,
                                            sizeof(small)),
                 T_TRUNC);
    CHECK_STR(small, "empty");

    strcpy(err, "stale");
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00", 1), T_OK);
    CHECK_STR(err, "");

    ngx_http_dashstream_decoder_destroy(d);
}


UNIT_TEST(t_names)
{
    CHECK_STR(ngx_http_dashstream_decode_error_name(T_OK), "ok");
    CHECK_STR(ngx_http_dashstream_decode_error_name(T_TRUNC), "truncated");
    CHECK_STR(ngx_http_dashstream_decode_error_name(T_INVALID),
              "invalid_protobuf");
    CHECK_STR(ngx_http_dashstream_decode_error_name(T_ZSTD),
              "decompress_failed");
    CHECK_STR(ngx_http_dashstream_decode_error_name(T_LARGE), "too_large");
    CHECK_STR(ngx_http_dashstream_decode_error_name(T_FRAMING),
              "unknown_framing");
    CHECK_STR(ngx_http_dashstream_decode_error_name(-1), "unknown");
    CHECK_STR(ngx_http_dashstream_decode_error_name(
                  NGX_HTTP_DASHSTREAM_DECODE_NTYPES), "unknown");

    CHECK_STR(ngx_http_dashstream_framing_name(F_NONE), "none");
    CHECK_STR(ngx_http_dashstream_framing_name(F_PB), "protobuf");
    CHECK_STR(ngx_http_dashstream_framing_name(F_ZSTD), "zstd");
    CHECK_STR(ngx_http_dashstream_framing_name(F_LEGACY), "legacy");
    CHECK_STR(ngx_http_dashstream_framing_name(9), "unknown");
}


UNIT_TEST(t_create)
{
    ngx_http_dashstream_decoder_t  *d;

    CHECK(decoder(SIZE_MAX, 1) == NULL);
    CHECK(decoder(1, SIZE_MAX / 2) == NULL);

    d = decoder(1, 0);
    CHECK(d != NULL);
    CHECK_EQ_INT(decode(d, (unsigned char *) "\x00", 1), T_OK);
    CHECK_EQ_INT(decode(d, buf, frame(pb, 0, F_ZSTD)), T_LARGE);
    ngx_http_dashstream_decoder_destroy(d);

    /* max_decompressed 0 still admits an empty zstd frame */
    d = decoder(64, 0);
    CHECK_EQ_INT(decode(d, buf, frame(pb, 0, F_ZSTD)), T_OK);
    CHECK_EQ_INT(decode(d, buf, frame(pb, 1, F_ZSTD)), T_LARGE);
    ngx_http_dashstream_decoder_destroy(d);

    ngx_http_dashstream_decoder_destroy(NULL);
}


UNIT_MAIN("decode",
    UNIT_CASE(t_event_all_framings),
    UNIT_CASE(t_token_chunk),
    UNIT_CASE(t_metrics_map),
    UNIT_CASE(t_event_batch),
    UNIT_CASE(t_no_header),
    UNIT_CASE(t_empty_envelope),
    UNIT_CASE(t_too_large),
    UNIT_CASE(t_unknown_framing),
    UNIT_CASE(t_zstd_streaming),
    UNIT_CASE(t_zstd_declared_1gib),
    UNIT_CASE(t_zstd_malformed),
    UNIT_CASE(t_zstd_inner_protobuf),
    UNIT_CASE(t_truncation),
    UNIT_CASE(t_truncated_submessage),
    UNIT_CASE(t_wire_types),
    UNIT_CASE(t_unknown_fields),
    UNIT_CASE(t_arena),
    UNIT_CASE(t_err_buffer),
    UNIT_CASE(t_names),
    UNIT_CASE(t_create))
