/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_EXPO_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_EXPO_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * Prometheus text exposition format 0.0.4, written into a caller buffer.
 * Nothing here allocates; a writer that runs out of room stops writing and
 * sets "full", so the caller can size the buffer and try again.
 */

typedef struct {
    unsigned char         *pos;
    unsigned char         *end;
    int                    full;
} ngx_http_dashstream_expo_t;


typedef struct {
    const char            *name;
    const unsigned char   *value;
    size_t                 len;
} ngx_http_dashstream_label_t;


void ngx_http_dashstream_expo_family(ngx_http_dashstream_expo_t *e,
    const char *name, const char *type, const char *help);
void ngx_http_dashstream_expo_sample(ngx_http_dashstream_expo_t *e,
    const char *name, const ngx_http_dashstream_label_t *labels, size_t n,
    double value);
void ngx_http_dashstream_expo_counter(ngx_http_dashstream_expo_t *e,
    const char *name, const ngx_http_dashstream_label_t *labels, size_t n,
    uint64_t value);

/*
 * buckets[i] counts the observations in (bounds[i-1], bounds[i]]; bounds
 * ends with 0; count includes those above the last bound (the +Inf bucket).
 */
void ngx_http_dashstream_expo_histogram(ngx_http_dashstream_expo_t *e,
    const char *name, const ngx_http_dashstream_label_t *labels, size_t n,
    const double *bounds, const uint64_t *buckets, uint64_t count,
    double sum);

/* label value escaping: \ " and newline; invalid UTF-8 becomes U+FFFD */
size_t ngx_http_dashstream_expo_escape(unsigned char *dst,
    const unsigned char *src, size_t len);
size_t ngx_http_dashstream_expo_escape_len(const unsigned char *src,
    size_t len);

/* integers without a point, else the shortest exact form; NaN, +Inf, -Inf */
size_t ngx_http_dashstream_expo_double(unsigned char *dst, size_t size,
    double v);


#endif /* _NGX_HTTP_DASHSTREAM_EXPO_H_INCLUDED_ */
