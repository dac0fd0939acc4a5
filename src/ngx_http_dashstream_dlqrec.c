/*
 * Copyright (C) ngx_dashstream authors
 */


#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

#include "ngx_http_dashstream_dlqrec.h"
#include "ngx_http_dashstream_json.h"


/* the longest decimal text of an int64_t or uint64_t */
#define NGX_HTTP_DASHSTREAM_NUM_LEN  20


static unsigned char *ngx_http_dashstream_dlqrec_str(unsigned char *p,
    const char *name, const unsigned char *s, size_t len);
static unsigned char *ngx_http_dashstream_dlqrec_b64(unsigned char *p,
    const char *name, const unsigned char *s, size_t len);
static unsigned char *ngx_http_dashstream_dlqrec_lit(unsigned char *p,
    const char *s);


size_t
ngx_http_dashstream_dlqrec_size(const ngx_http_dashstream_dlqrec_t *r)
{
    size_t  size;

    /* the names, quotes and punctuation: generously */
    size = 512 + 6 * NGX_HTTP_DASHSTREAM_NUM_LEN;

    size += sizeof(NGX_HTTP_DASHSTREAM_DLQ_SCHEMA)
            + ngx_http_dashstream_json_escape_len(r->topic, r->topic_len)
            + ngx_http_dashstream_json_escape_len(
                  (const unsigned char *) r->error_type, strlen(r->error_type))
            + ngx_http_dashstream_json_escape_len(
                  (const unsigned char *) r->error, strlen(r->error))
            + NGX_HTTP_DASHSTREAM_SHA256_HEX
            + strlen(r->module_version)
            + ngx_http_dashstream_base64_len(r->included);

    if (r->key) {
        size += ngx_http_dashstream_json_escape_len(r->key, r->key_len)
                + ngx_http_dashstream_base64_len(r->key_len);
    }

    return size;
}


unsigned char *
ngx_http_dashstream_dlqrec_write(unsigned char *p,
    const ngx_http_dashstream_dlqrec_t *r)
{
    p = ngx_http_dashstream_dlqrec_str(p, "{\"schema\":",
            (const unsigned char *) NGX_HTTP_DASHSTREAM_DLQ_SCHEMA,
            sizeof(NGX_HTTP_DASHSTREAM_DLQ_SCHEMA) - 1);
    p = ngx_http_dashstream_dlqrec_str(p, ",\"topic\":", r->topic,
                                       r->topic_len);

    p += sprintf((char *) p, ",\"partition\":%d,\"offset\":%lld",
                 (int) r->partition, (long long) r->offset);

    if (r->timestamp_ms >= 0) {
        p += sprintf((char *) p, ",\"timestamp_ms\":%lld",
                     (long long) r->timestamp_ms);

    } else {
        p = ngx_http_dashstream_dlqrec_lit(p, ",\"timestamp_ms\":null");
    }

    if (r->key) {
        p = ngx_http_dashstream_dlqrec_str(p, ",\"key\":", r->key,
                                           r->key_len);
        p = ngx_http_dashstream_dlqrec_b64(p, ",\"key_base64\":", r->key,
                                           r->key_len);

    } else {
        p = ngx_http_dashstream_dlqrec_lit(p, ",\"key\":null"
                                              ",\"key_base64\":null");
    }

    p = ngx_http_dashstream_dlqrec_str(p, ",\"error_type\":",
                                       (const unsigned char *) r->error_type,
                                       strlen(r->error_type));
    p = ngx_http_dashstream_dlqrec_str(p, ",\"error\":",
                                       (const unsigned char *) r->error,
                                       strlen(r->error));

    p += sprintf((char *) p, ",\"payload_size\":%llu,"
                 "\"payload_truncated\":%s,\"payload_sha256\":\"%.64s\"",
                 (unsigned long long) r->payload_size,
                 r->included < r->payload_size ? "true" : "false",
                 r->sha256_hex);

    p = ngx_http_dashstream_dlqrec_b64(p, ",\"payload_base64\":", r->payload,
                                       r->included);

    p = ngx_http_dashstream_dlqrec_lit(p, ",\"module\":\"ngx_dashstream\"");
    p = ngx_http_dashstream_dlqrec_str(p, ",\"module_version\":",
            (const unsigned char *) r->module_version,
            strlen(r->module_version));

    p += sprintf((char *) p, ",\"dead_lettered_at_ms\":%llu}",
                 (unsigned long long) r->dead_lettered_ms);

    return p;
}


static unsigned char *
ngx_http_dashstream_dlqrec_str(unsigned char *p, const char *name,
    const unsigned char *s, size_t len)
{
    p = ngx_http_dashstream_dlqrec_lit(p, name);

    *p++ = '"';
    p = ngx_http_dashstream_json_escape(p, s, len);
    *p++ = '"';

    return p;
}


static unsigned char *
ngx_http_dashstream_dlqrec_b64(unsigned char *p, const char *name,
    const unsigned char *s, size_t len)
{
    p = ngx_http_dashstream_dlqrec_lit(p, name);

    *p++ = '"';
    p = ngx_http_dashstream_base64(p, s, len);
    *p++ = '"';

    return p;
}


static unsigned char *
ngx_http_dashstream_dlqrec_lit(unsigned char *p, const char *s)
{
    size_t  len;

    len = strlen(s);
    memcpy(p, s, len);

    return p + len;
}


size_t
ngx_http_dashstream_base64_len(size_t len)
{
    return (len + 2) / 3 * 4;
}


/* RFC 4648 section 4, with padding */

unsigned char *
ngx_http_dashstream_base64(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    uint32_t                    v;
    static const unsigned char  a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "abcdefghijklmnopqrstuvwxyz"
                                      "0123456789+/";

    while (len >= 3) {
        v = (uint32_t) src[0] << 16 | (uint32_t) src[1] << 8 | src[2];

        *dst++ = a[v >> 18];
        *dst++ = a[(v >> 12) & 0x3f];
        *dst++ = a[(v >> 6) & 0x3f];
        *dst++ = a[v & 0x3f];

        src += 3;
        len -= 3;
    }

    if (len) {
        v = (uint32_t) src[0] << 16 | (len == 2 ? (uint32_t) src[1] << 8 : 0);

        *dst++ = a[v >> 18];
        *dst++ = a[(v >> 12) & 0x3f];
        *dst++ = len == 2 ? a[(v >> 6) & 0x3f] : '=';
        *dst++ = '=';
    }

    return dst;
}


int
ngx_http_dashstream_sha256_hex(char *out, const unsigned char *p, size_t len)
{
    unsigned int        i, n;
    unsigned char       md[EVP_MAX_MD_SIZE];
    static const char   hex[] = "0123456789abcdef";

    if (EVP_Digest(p, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        out[0] = '\0';
        return -1;
    }

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }

    out[2 * n] = '\0';

    return 0;
}
