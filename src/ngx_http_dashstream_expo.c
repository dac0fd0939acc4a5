/*
 * Copyright (C) ngx_dashstream authors
 */


#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_dashstream_expo.h"


static void ngx_http_dashstream_expo_put(ngx_http_dashstream_expo_t *e,
    const void *p, size_t len);
static void ngx_http_dashstream_expo_str(ngx_http_dashstream_expo_t *e,
    const char *s);
static void ngx_http_dashstream_expo_series(ngx_http_dashstream_expo_t *e,
    const char *name, const char *suffix,
    const ngx_http_dashstream_label_t *labels, size_t n, const char *le);
static int ngx_http_dashstream_expo_plain(const unsigned char *src,
    size_t len);
static size_t ngx_http_dashstream_utf8_seq(const unsigned char *p,
    size_t len);


void
ngx_http_dashstream_expo_family(ngx_http_dashstream_expo_t *e,
    const char *name, const char *type, const char *help)
{
    ngx_http_dashstream_expo_str(e, "# HELP ");
    ngx_http_dashstream_expo_str(e, name);
    ngx_http_dashstream_expo_str(e, " ");
    ngx_http_dashstream_expo_str(e, help);
    ngx_http_dashstream_expo_str(e, "\n# TYPE ");
    ngx_http_dashstream_expo_str(e, name);
    ngx_http_dashstream_expo_str(e, " ");
    ngx_http_dashstream_expo_str(e, type);
    ngx_http_dashstream_expo_str(e, "\n");
}


void
ngx_http_dashstream_expo_sample(ngx_http_dashstream_expo_t *e,
    const char *name, const ngx_http_dashstream_label_t *labels, size_t n,
    double value)
{
    unsigned char  num[32];

    ngx_http_dashstream_expo_series(e, name, NULL, labels, n, NULL);
    ngx_http_dashstream_expo_put(e, " ", 1);
    ngx_http_dashstream_expo_put(e, num,
                                 ngx_http_dashstream_expo_double(num,
                                                                 sizeof(num),
                                                                 value));
    ngx_http_dashstream_expo_put(e, "\n", 1);
}


void
ngx_http_dashstream_expo_counter(ngx_http_dashstream_expo_t *e,
    const char *name, const ngx_http_dashstream_label_t *labels, size_t n,
    uint64_t value)
{
    char  num[32];

    ngx_http_dashstream_expo_series(e, name, NULL, labels, n, NULL);
    ngx_http_dashstream_expo_put(e, num,
                                 (size_t) snprintf(num, sizeof(num),
                                                   " %llu\n",
                                                   (unsigned long long) value));
}


void
ngx_http_dashstream_expo_histogram(ngx_http_dashstream_expo_t *e,
    const char *name, const ngx_http_dashstream_label_t *labels, size_t n,
    const double *bounds, const uint64_t *buckets, uint64_t count,
    double sum)
{
    char          num[32];
    size_t        i;
    uint64_t      cumulative;
    unsigned char le[32];

    cumulative = 0;

    for (i = 0; bounds[i] != 0; i++) {
        cumulative += buckets[i];

        le[ngx_http_dashstream_expo_double(le, sizeof(le) - 1, bounds[i])]
            = '\0';

        ngx_http_dashstream_expo_series(e, name, "_bucket", labels, n,
                                        (const char *) le);
        ngx_http_dashstream_expo_put(e, num,
                                     (size_t) snprintf(num, sizeof(num),
                                                   " %llu\n",
                                                   (unsigned long long)
                                                   cumulative));
    }

    /* a bucket counted after "count" was read must not exceed +Inf */
    if (count < cumulative) {
        count = cumulative;
    }

    ngx_http_dashstream_expo_series(e, name, "_bucket", labels, n, "+Inf");
    ngx_http_dashstream_expo_put(e, num,
                                 (size_t) snprintf(num, sizeof(num), " %llu\n",
                                                   (unsigned long long) count));

    ngx_http_dashstream_expo_series(e, name, "_sum", labels, n, NULL);
    ngx_http_dashstream_expo_put(e, " ", 1);
    ngx_http_dashstream_expo_put(e, le,
                                 ngx_http_dashstream_expo_double(le, sizeof(le),
                                                                 sum));
    ngx_http_dashstream_expo_put(e, "\n", 1);

    ngx_http_dashstream_expo_series(e, name, "_count", labels, n, NULL);
    ngx_http_dashstream_expo_put(e, num,
                                 (size_t) snprintf(num, sizeof(num), " %llu\n",
                                                   (unsigned long long) count));
}


static void
ngx_http_dashstream_expo_series(ngx_http_dashstream_expo_t *e,
    const char *name, const char *suffix,
    const ngx_http_dashstream_label_t *labels, size_t n, const char *le)
{
    int     plain;
    size_t  i, len;

    ngx_http_dashstream_expo_str(e, name);

    if (suffix) {
        ngx_http_dashstream_expo_str(e, suffix);
    }

    if (n == 0 && le == NULL) {
        return;
    }

    ngx_http_dashstream_expo_put(e, "{", 1);

    for (i = 0; i < n; i++) {
        if (i) {
            ngx_http_dashstream_expo_put(e, ",", 1);
        }

        ngx_http_dashstream_expo_str(e, labels[i].name);
        ngx_http_dashstream_expo_put(e, "=\"", 2);

        plain = ngx_http_dashstream_expo_plain(labels[i].value,
                                               labels[i].len);

        len = plain ? labels[i].len
                    : ngx_http_dashstream_expo_escape_len(labels[i].value,
                                                          labels[i].len);

        if (e->full || (size_t) (e->end - e->pos) < len) {
            e->full = 1;
            return;
        }

        if (plain) {
            memcpy(e->pos, labels[i].value, len);
            e->pos += len;

        } else {
            e->pos += ngx_http_dashstream_expo_escape(e->pos, labels[i].value,
                                                      labels[i].len);
        }

        ngx_http_dashstream_expo_put(e, "\"", 1);
    }

    if (le) {
        if (n) {
            ngx_http_dashstream_expo_put(e, ",", 1);
        }

        ngx_http_dashstream_expo_str(e, "le=\"");
        ngx_http_dashstream_expo_str(e, le);
        ngx_http_dashstream_expo_put(e, "\"", 1);
    }

    ngx_http_dashstream_expo_put(e, "}", 1);
}


size_t
ngx_http_dashstream_expo_escape_len(const unsigned char *src, size_t len)
{
    size_t  i, n, out;

    for (i = 0, out = 0; i < len; i += n) {
        n = ngx_http_dashstream_utf8_seq(src + i, len - i);

        if (n == 0) {
            out += 3;       /* U+FFFD */
            n = 1;

        } else if (src[i] == '\\' || src[i] == '"' || src[i] == '\n') {
            out += 2;

        } else {
            out += n;
        }
    }

    return out;
}


size_t
ngx_http_dashstream_expo_escape(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t          i, n;
    unsigned char  *p;

    p = dst;

    for (i = 0; i < len; i += n) {
        n = ngx_http_dashstream_utf8_seq(src + i, len - i);

        if (n == 0) {
            *p++ = 0xef; *p++ = 0xbf; *p++ = 0xbd;
            n = 1;
            continue;
        }

        switch (src[i]) {
        case '\\':
            *p++ = '\\'; *p++ = '\\';
            break;
        case '"':
            *p++ = '\\'; *p++ = '"';
            break;
        case '\n':
            *p++ = '\\'; *p++ = 'n';
            break;
        default:
            memcpy(p, src + i, n);
            p += n;
        }
    }

    return p - dst;
}


/*
 * Most label values (topics, partitions, worker numbers) are ASCII without
 * a quote, a backslash or a newline: they are copied as they are.
 */

static int
ngx_http_dashstream_expo_plain(const unsigned char *src, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (src[i] >= 0x80 || src[i] == '\\' || src[i] == '"'
            || src[i] == '\n')
        {
            return 0;
        }
    }

    return 1;
}


/* the length of the valid UTF-8 sequence at p, 0 if it is not one */

static size_t
ngx_http_dashstream_utf8_seq(const unsigned char *p, size_t len)
{
    size_t    n, i;
    uint32_t  c, min;

    if (p[0] < 0x80) {
        return 1;
    }

    if ((p[0] & 0xe0) == 0xc0) {
        n = 2; c = p[0] & 0x1f; min = 0x80;

    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3; c = p[0] & 0x0f; min = 0x800;

    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4; c = p[0] & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return n;
}


size_t
ngx_http_dashstream_expo_double(unsigned char *dst, size_t size, double v)
{
    int   n, prec;
    char  buf[32];

    if (isnan(v)) {
        n = snprintf((char *) dst, size, "NaN");

    } else if (isinf(v)) {
        n = snprintf((char *) dst, size, v > 0 ? "+Inf" : "-Inf");

    } else if (v == (double) (long long) v && fabs(v) < 1e15) {
        n = snprintf((char *) dst, size, "%lld", (long long) v);

    } else {
        /* the shortest form that reads back as the same double */

        for (prec = 1; prec < 17; prec++) {
            n = snprintf(buf, sizeof(buf), "%.*g", prec, v);

            if (strtod(buf, NULL) == v) {
                break;
            }
        }

        n = snprintf((char *) dst, size, "%.*g", prec, v);
    }

    return n < 0 ? 0 : ((size_t) n < size ? (size_t) n : size - 1);
}


static void
ngx_http_dashstream_expo_put(ngx_http_dashstream_expo_t *e, const void *p,
    size_t len)
{
    if (e->full || (size_t) (e->end - e->pos) < len) {
        e->full = 1;
        return;
    }

    memcpy(e->pos, p, len);
    e->pos += len;
}


static void
ngx_http_dashstream_expo_str(ngx_http_dashstream_expo_t *e, const char *s)
{
    ngx_http_dashstream_expo_put(e, s, strlen(s));
}
