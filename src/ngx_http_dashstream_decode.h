/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_DECODE_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_DECODE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "dashstream.pb-c.h"


/*
 * A Kafka value is one of
 *
 *     0x00 | protobuf DashStreamMessage
 *     0x01 | zstd frame of a protobuf DashStreamMessage
 *     bare protobuf DashStreamMessage (legacy, first byte >= 0x08)
 *
 * 0x02..0x07 are reserved: no protobuf tag byte has field number 0.
 */

typedef enum {
    NGX_HTTP_DASHSTREAM_FRAMING_NONE = 0,
    NGX_HTTP_DASHSTREAM_FRAMING_PROTOBUF,
    NGX_HTTP_DASHSTREAM_FRAMING_ZSTD,
    NGX_HTTP_DASHSTREAM_FRAMING_LEGACY
} ngx_http_dashstream_framing_e;


/* _NTYPES sizes per-type counter arrays */
typedef enum {
    NGX_HTTP_DASHSTREAM_DECODE_OK = 0,
    NGX_HTTP_DASHSTREAM_DECODE_TRUNCATED,
    NGX_HTTP_DASHSTREAM_DECODE_INVALID_PROTOBUF,
    NGX_HTTP_DASHSTREAM_DECODE_DECOMPRESS_FAILED,
    NGX_HTTP_DASHSTREAM_DECODE_TOO_LARGE,
    NGX_HTTP_DASHSTREAM_DECODE_UNKNOWN_FRAMING,
    NGX_HTTP_DASHSTREAM_DECODE_NTYPES
} ngx_http_dashstream_decode_rc_e;


typedef struct {
    size_t                                    max_payload;
    size_t                                    max_decompressed;
} ngx_http_dashstream_decode_limits_t;


typedef struct ngx_http_dashstream_decoder_s  ngx_http_dashstream_decoder_t;


typedef struct {
    int                                       framing;
    unsigned                                  msg_type;
    int64_t                                   timestamp_us;
    uint64_t                                  sequence;
    const char                               *thread_id;
    size_t                                    thread_id_len;
    const char                               *tenant_id;
    size_t                                    tenant_id_len;
    const Dashstream__V1__DashStreamMessage  *msg;
} ngx_http_dashstream_decoded_t;


/*
 * The decoder owns a zstd context, an output buffer of max_decompressed
 * bytes and an arena for the unpacked message, all allocated here once,
 * so that decoding never allocates.  One decoder per thread.
 */
ngx_http_dashstream_decoder_t *ngx_http_dashstream_decoder_create(
    const ngx_http_dashstream_decode_limits_t *lim);
void ngx_http_dashstream_decoder_destroy(ngx_http_dashstream_decoder_t *d);

/*
 * Returns NGX_HTTP_DASHSTREAM_DECODE_OK or an error type and writes a
 * short NUL-terminated text into err (if err_cap > 0).  out->framing is
 * set as soon as the framing byte is known, also on error.  On success
 * msg_type is the oneof case (MessageType numbering, 9 for
 * ExecutionTrace, 0 if none is set), thread_id and tenant_id are never
 * NULL, and they and out->msg stay valid until the next call.
 */
int ngx_http_dashstream_decode(ngx_http_dashstream_decoder_t *d,
    const unsigned char *p, size_t len, ngx_http_dashstream_decoded_t *out,
    char *err, size_t err_cap);

const char *ngx_http_dashstream_decode_error_name(int type);
const char *ngx_http_dashstream_framing_name(int framing);


#endif /* _NGX_HTTP_DASHSTREAM_DECODE_H_INCLUDED_ */
