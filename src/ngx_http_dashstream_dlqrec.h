/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_DLQREC_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_DLQREC_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_DASHSTREAM_DLQ_SCHEMA   "dashstream.dlq.v1"
#define NGX_HTTP_DASHSTREAM_SHA256_HEX   64


/*
 * The forensic record of one message that could not be decoded, as sent
 * to the dead-letter topic: one JSON object, fields in this order
 *
 *     schema, topic, partition, offset, timestamp_ms (null: none),
 *     key (the key as text, invalid UTF-8 replaced; null: no key),
 *     key_base64 (the exact key bytes; null: no key),
 *     error_type, error, payload_size, payload_truncated,
 *     payload_sha256 (of the whole payload), payload_base64 (the first
 *     "included" bytes), module, module_version, dead_lettered_at_ms
 *
 * Pure C: no nginx types, unit-tested on its own.
 */

typedef struct {
    const unsigned char  *topic;
    size_t                topic_len;
    int32_t               partition;
    int64_t               offset;
    int64_t               timestamp_ms;     /* < 0: none */
    const unsigned char  *key;              /* NULL: none */
    size_t                key_len;
    const char           *error_type;
    const char           *error;
    size_t                payload_size;
    const unsigned char  *payload;
    size_t                included;         /* <= payload_size */
    const char           *sha256_hex;       /* 64 hex digits */
    const char           *module_version;
    uint64_t              dead_lettered_ms;
} ngx_http_dashstream_dlqrec_t;


/* an upper bound of the record's length */
size_t ngx_http_dashstream_dlqrec_size(const ngx_http_dashstream_dlqrec_t *r);
unsigned char *ngx_http_dashstream_dlqrec_write(unsigned char *p,
    const ngx_http_dashstream_dlqrec_t *r);

size_t ngx_http_dashstream_base64_len(size_t len);
unsigned char *ngx_http_dashstream_base64(unsigned char *dst,
    const unsigned char *src, size_t len);

/* 64 lower-case hex digits and a NUL; -1 if libcrypto fails */
int ngx_http_dashstream_sha256_hex(char *out, const unsigned char *p,
    size_t len);


#endif /* _NGX_HTTP_DASHSTREAM_DLQREC_H_INCLUDED_ */
