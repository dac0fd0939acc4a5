/*
 * Copyright (C) ngx_dashstream authors
 */


#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "ngx_http_dashstream_decode.h"


/*
 * Unpacking costs more than the wire size: every submessage becomes a
 * struct, strings are copied, and protobuf-c allocates a 32-byte scan
 * record per field of messages with more than 16 fields.  A Metrics map
 * of short keys takes about 12 arena bytes per wire byte; shapes that
 * need more, such as thousands of empty fields, are rejected as
 * too_large.  The base covers the fixed cost under tiny limits.
 */
#define NGX_HTTP_DASHSTREAM_ARENA_FACTOR   16
#define NGX_HTTP_DASHSTREAM_ARENA_BASE     65536

/* protobuf-c structures hold nothing wider than 8 bytes */
#define NGX_HTTP_DASHSTREAM_ARENA_ALIGN    8

#define NGX_HTTP_DASHSTREAM_VARINT_MAX     10
#define NGX_HTTP_DASHSTREAM_FIELD_MAX      0x1fffffff


struct ngx_http_dashstream_decoder_s {
    ngx_http_dashstream_decode_limits_t   limits;
    ZSTD_DCtx                            *zstd;
    unsigned char                        *out;
    unsigned char                        *arena;
    size_t                                arena_size;
    size_t                                arena_used;
    unsigned                              arena_exhausted;
    ProtobufCAllocator                    allocator;
};


static int ngx_http_dashstream_decode_zstd(ngx_http_dashstream_decoder_t *d,
    const unsigned char *p, size_t len, ngx_http_dashstream_decoded_t *out,
    char *err, size_t err_cap);
static int ngx_http_dashstream_decode_protobuf(
    ngx_http_dashstream_decoder_t *d, const unsigned char *p, size_t len,
    ngx_http_dashstream_decoded_t *out, char *err, size_t err_cap);
static int ngx_http_dashstream_decode_walk(const unsigned char *p,
    size_t len, char *err, size_t err_cap);
static int ngx_http_dashstream_decode_varint(const unsigned char *p,
    size_t len, size_t *off, uint64_t *value);
static void ngx_http_dashstream_decode_summary(
    const Dashstream__V1__DashStreamMessage *msg,
    ngx_http_dashstream_decoded_t *out);
static void *ngx_http_dashstream_arena_alloc(void *data, size_t size);
static void ngx_http_dashstream_arena_free(void *data, void *p);
static int ngx_http_dashstream_decode_fail(char *err, size_t err_cap,
    int rc, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));


static const char  *ngx_http_dashstream_decode_errors[] = {
    "ok",
    "truncated",
    "invalid_protobuf",
    "decompress_failed",
    "too_large",
    "unknown_framing"
};


static const char  *ngx_http_dashstream_framings[] = {
    "none",
    "protobuf",
    "zstd",
    "legacy"
};


ngx_http_dashstream_decoder_t *
ngx_http_dashstream_decoder_create(
    const ngx_http_dashstream_decode_limits_t *lim)
{
    size_t                          max;
    ngx_http_dashstream_decoder_t  *d;

    max = lim->max_payload > lim->max_decompressed
          ? lim->max_payload : lim->max_decompressed;

    if (max > (SIZE_MAX - NGX_HTTP_DASHSTREAM_ARENA_BASE)
              / NGX_HTTP_DASHSTREAM_ARENA_FACTOR)
    {
        return NULL;
    }

    d = calloc(1, sizeof(ngx_http_dashstream_decoder_t));
    if (d == NULL) {
        return NULL;
    }

    d->limits = *lim;
    d->arena_size = max * NGX_HTTP_DASHSTREAM_ARENA_FACTOR
                    + NGX_HTTP_DASHSTREAM_ARENA_BASE;

    d->zstd = ZSTD_createDCtx();
    d->out = malloc(lim->max_decompressed ? lim->max_decompressed : 1);
    d->arena = malloc(d->arena_size);

    if (d->zstd == NULL || d->out == NULL || d->arena == NULL) {
        ngx_http_dashstream_decoder_destroy(d);
        return NULL;
    }

    d->allocator.alloc = ngx_http_dashstream_arena_alloc;
    d->allocator.free = ngx_http_dashstream_arena_free;
    d->allocator.allocator_data = d;

    return d;
}


void
ngx_http_dashstream_decoder_destroy(ngx_http_dashstream_decoder_t *d)
{
    if (d == NULL) {
        return;
    }

    ZSTD_freeDCtx(d->zstd);
    free(d->out);
    free(d->arena);
    free(d);
}


int
ngx_http_dashstream_decode(ngx_http_dashstream_decoder_t *d,
    const unsigned char *p, size_t len, ngx_http_dashstream_decoded_t *out,
    char *err, size_t err_cap)
{
    memset(out, 0, sizeof(ngx_http_dashstream_decoded_t));

    if (err_cap) {
        err[0] = '\0';
    }

    if (len > d->limits.max_payload) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_TOO_LARGE,
                   "payload of %zu bytes, limit %zu",
                   len, d->limits.max_payload);
    }

    if (len == 0) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED, "empty payload");
    }

    switch (p[0]) {

    case 0x00:
        out->framing = NGX_HTTP_DASHSTREAM_FRAMING_PROTOBUF;
        return ngx_http_dashstream_decode_protobuf(d, p + 1, len - 1, out,
                                                   err, err_cap);

    case 0x01:
        out->framing = NGX_HTTP_DASHSTREAM_FRAMING_ZSTD;
        return ngx_http_dashstream_decode_zstd(d, p + 1, len - 1, out,
                                               err, err_cap);

    case 0x02:
    case 0x03:
    case 0x04:
    case 0x05:
    case 0x06:
    case 0x07:
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_UNKNOWN_FRAMING,
                   "reserved framing byte 0x%02x", p[0]);

    default:
        out->framing = NGX_HTTP_DASHSTREAM_FRAMING_LEGACY;
        return ngx_http_dashstream_decode_protobuf(d, p, len, out,
                                                   err, err_cap);
    }
}


static int
ngx_http_dashstream_decode_zstd(ngx_http_dashstream_decoder_t *d,
    const unsigned char *p, size_t len, ngx_http_dashstream_decoded_t *out,
    char *err, size_t err_cap)
{
    size_t              n;
    uint32_t            magic;
    unsigned long long  size;

    if (len < 4) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "zstd frame of %zu bytes is too short", len);
    }

    /* skippable and legacy frames are not compressed messages */

    magic = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t) p[3] << 24;

    if (magic != ZSTD_MAGICNUMBER) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "not a zstd frame: magic 0x%08x", magic);
    }

    size = ZSTD_getFrameContentSize(p, len);

    if (size == ZSTD_CONTENTSIZE_ERROR) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "invalid zstd frame header");
    }

    if (size == ZSTD_CONTENTSIZE_UNKNOWN) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "zstd frame does not declare its content size");
    }

    if (size > d->limits.max_decompressed) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_TOO_LARGE,
                   "zstd frame declares %llu bytes, limit %zu",
                   size, d->limits.max_decompressed);
    }

    n = ZSTD_findFrameCompressedSize(p, len);

    if (ZSTD_isError(n)) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "bad zstd frame: %s", ZSTD_getErrorName(n));
    }

    if (n != len) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "trailing data: %zu bytes after the zstd frame",
                   len - n);
    }

    n = ZSTD_decompressDCtx(d->zstd, d->out, (size_t) size, p, len);

    if (ZSTD_isError(n)) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "zstd: %s", ZSTD_getErrorName(n));
    }

    if (n != size) {
        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
                   "zstd frame declares %llu bytes, holds %zu", size, n);
    }

    return ngx_http_dashstream_decode_protobuf(d, d->out, n, out,
                                               err, err_cap);
}


static int
ngx_http_dashstream_decode_protobuf(ngx_http_dashstream_decoder_t *d,
    const unsigned char *p, size_t len, ngx_http_dashstream_decoded_t *out,
    char *err, size_t err_cap)
{
    int                                 rc;
    ProtobufCMessage                   *m;
    Dashstream__V1__DashStreamMessage  *msg;

    rc = ngx_http_dashstream_decode_walk(p, len, err, err_cap);
    if (rc != NGX_HTTP_DASHSTREAM_DECODE_OK) {
        return rc;
    }

    d->arena_used = 0;
    d->arena_exhausted = 0;

    m = protobuf_c_message_unpack(
            &dashstream__v1__dash_stream_message__descriptor,
            &d->allocator, len, p);

    if (m == NULL) {
        if (d->arena_exhausted) {
            return ngx_http_dashstream_decode_fail(err, err_cap,
                       NGX_HTTP_DASHSTREAM_DECODE_TOO_LARGE,
                       "decoded message exceeds memory limit");
        }

        return ngx_http_dashstream_decode_fail(err, err_cap,
                   NGX_HTTP_DASHSTREAM_DECODE_INVALID_PROTOBUF,
                   "%zu bytes do not unpack as DashStreamMessage: "
                   "wrong wire type or malformed submessage", len);
    }

    msg = (Dashstream__V1__DashStreamMessage *) m;

    ngx_http_dashstream_decode_summary(msg, out);

    return NGX_HTTP_DASHSTREAM_DECODE_OK;
}


/*
 * protobuf-c accepts field number 0 and wraps lengths above 2^32, and
 * says nothing about why it failed: walking the top level first tells a
 * cut message from a malformed one.
 */

static int
ngx_http_dashstream_decode_walk(const unsigned char *p, size_t len,
    char *err, size_t err_cap)
{
    int       rc;
    size_t    off, start;
    uint64_t  tag, field, need;

    off = 0;

    while (off < len) {
        start = off;

        rc = ngx_http_dashstream_decode_varint(p, len, &off, &tag);
        if (rc != NGX_HTTP_DASHSTREAM_DECODE_OK) {
            return ngx_http_dashstream_decode_fail(err, err_cap, rc,
                       "%s tag at offset %zu",
                       rc == NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED
                       ? "cut" : "overlong", start);
        }

        field = tag >> 3;

        if (field == 0 || field > NGX_HTTP_DASHSTREAM_FIELD_MAX) {
            return ngx_http_dashstream_decode_fail(err, err_cap,
                       NGX_HTTP_DASHSTREAM_DECODE_INVALID_PROTOBUF,
                       "field number %" PRIu64 " at offset %zu",
                       field, start);
        }

        switch (tag & 7) {

        case 0:
        case 2:
            rc = ngx_http_dashstream_decode_varint(p, len, &off, &need);
            if (rc != NGX_HTTP_DASHSTREAM_DECODE_OK) {
                return ngx_http_dashstream_decode_fail(err, err_cap, rc,
                           "%s varint in field %" PRIu64 " at offset %zu",
                           rc == NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED
                           ? "cut" : "overlong", field, start);
            }

            if ((tag & 7) == 0) {
                need = 0;
            }

            break;

        case 1:
            need = 8;
            break;

        case 5:
            need = 4;
            break;

        default:
            return ngx_http_dashstream_decode_fail(err, err_cap,
                       NGX_HTTP_DASHSTREAM_DECODE_INVALID_PROTOBUF,
                       "wire type %u in field %" PRIu64 " at offset %zu",
                       (unsigned) (tag & 7), field, start);
        }

        if (need > len - off) {
            return ngx_http_dashstream_decode_fail(err, err_cap,
                       NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED,
                       "field %" PRIu64 " at offset %zu needs %" PRIu64
                       " bytes, %zu left", field, start, need, len - off);
        }

        off += need;
    }

    return NGX_HTTP_DASHSTREAM_DECODE_OK;
}


static int
ngx_http_dashstream_decode_varint(const unsigned char *p, size_t len,
    size_t *off, uint64_t *value)
{
    size_t    i, n;
    uint64_t  v;

    v = 0;

    for (n = 0; n < NGX_HTTP_DASHSTREAM_VARINT_MAX; n++) {
        i = *off + n;

        if (i == len) {
            return NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED;
        }

        v |= (uint64_t) (p[i] & 0x7f) << (7 * n);

        if ((p[i] & 0x80) == 0) {
            *off = i + 1;
            *value = v;
            return NGX_HTTP_DASHSTREAM_DECODE_OK;
        }
    }

    return NGX_HTTP_DASHSTREAM_DECODE_INVALID_PROTOBUF;
}


static void
ngx_http_dashstream_decode_summary(
    const Dashstream__V1__DashStreamMessage *msg,
    ngx_http_dashstream_decoded_t *out)
{
    const Dashstream__V1__Header  *h;

    switch (msg->message_case) {

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EVENT:
        h = msg->event->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_STATE_DIFF:
        h = msg->state_diff->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_TOKEN_CHUNK:
        h = msg->token_chunk->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_TOOL_EXECUTION:
        h = msg->tool_execution->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_CHECKPOINT:
        h = msg->checkpoint->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_METRICS:
        h = msg->metrics->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_ERROR:
        h = msg->error->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EVENT_BATCH:
        h = msg->event_batch->header;
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EXECUTION_TRACE:
        h = msg->execution_trace->header;
        break;

    default:
        h = NULL;
    }

    out->msg_type = (unsigned) msg->message_case;
    out->msg = msg;
    out->thread_id = "";
    out->tenant_id = "";

    if (h == NULL) {
        return;
    }

    out->timestamp_us = h->timestamp_us;
    out->sequence = h->sequence;
    out->thread_id = h->thread_id;
    out->thread_id_len = strlen(h->thread_id);
    out->tenant_id = h->tenant_id;
    out->tenant_id_len = strlen(h->tenant_id);
}


static void *
ngx_http_dashstream_arena_alloc(void *data, size_t size)
{
    void                           *p;
    ngx_http_dashstream_decoder_t  *d;

    d = data;

    if (size > d->arena_size - d->arena_used) {
        d->arena_exhausted = 1;
        return NULL;
    }

    p = d->arena + d->arena_used;

    /* arena_size is a multiple of the alignment, so this cannot overrun */

    d->arena_used += (size + NGX_HTTP_DASHSTREAM_ARENA_ALIGN - 1)
                     & ~((size_t) NGX_HTTP_DASHSTREAM_ARENA_ALIGN - 1);

    return p;
}


static void
ngx_http_dashstream_arena_free(void *data, void *p)
{
    /* the arena is reset as a whole before each unpack */
}


static int
ngx_http_dashstream_decode_fail(char *err, size_t err_cap, int rc,
    const char *fmt, ...)
{
    va_list  args;

    if (err_cap) {
        va_start(args, fmt);
        vsnprintf(err, err_cap, fmt, args);
        va_end(args);
    }

    return rc;
}


const char *
ngx_http_dashstream_decode_error_name(int type)
{
    if (type < 0 || type >= NGX_HTTP_DASHSTREAM_DECODE_NTYPES) {
        return "unknown";
    }

    return ngx_http_dashstream_decode_errors[type];
}


const char *
ngx_http_dashstream_framing_name(int framing)
{
    if (framing < NGX_HTTP_DASHSTREAM_FRAMING_NONE
        || framing > NGX_HTTP_DASHSTREAM_FRAMING_LEGACY)
    {
        return "unknown";
    }

    return ngx_http_dashstream_framings[framing];
}
