/*
 * Copyright (C) ngx_dashstream authors
 */


#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ngx_http_dashstream_json.h"
#include "ngx_http_dashstream_dashflow.h"


#define NGX_HTTP_DASHSTREAM_FIELD_TYPE       0
#define NGX_HTTP_DASHSTREAM_FIELD_FROM       1
#define NGX_HTTP_DASHSTREAM_FIELD_MODE       2
#define NGX_HTTP_DASHSTREAM_FIELD_OFFSETS    3
#define NGX_HTTP_DASHSTREAM_FIELD_SEQUENCES  4
#define NGX_HTTP_DASHSTREAM_FIELD_N          5

/* "18446744073709551615" */
#define NGX_HTTP_DASHSTREAM_UINT64_LEN       20


typedef struct {
    ngx_http_dashstream_json_tok_t   tok;
    const unsigned char             *end;
    unsigned                         set:1;
} ngx_http_dashstream_dashflow_field_t;


typedef struct {
    const char                      *code;
    char                            *msg;
    size_t                           cap;
} ngx_http_dashstream_dashflow_err_t;


typedef struct {
    unsigned char                   *buf;
    size_t                           size;
    size_t                           len;
    unsigned                         overflow:1;
} ngx_http_dashstream_dashflow_out_t;


static int ngx_http_dashstream_dashflow_fail(
    ngx_http_dashstream_dashflow_err_t *err, const char *code,
    const char *fmt, ...);
static int ngx_http_dashstream_dashflow_fields(const unsigned char *p,
    size_t len, ngx_http_dashstream_dashflow_field_t *f,
    ngx_http_dashstream_dashflow_err_t *err);
static int ngx_http_dashstream_dashflow_message(
    ngx_http_dashstream_dashflow_field_t *f,
    ngx_http_dashstream_dashflow_msg_t *m,
    ngx_http_dashstream_dashflow_err_t *err);
static int ngx_http_dashstream_dashflow_enum(
    ngx_http_dashstream_dashflow_field_t *field, const char **names,
    int *value);
static int ngx_http_dashstream_dashflow_partitions(
    ngx_http_dashstream_dashflow_field_t *field,
    ngx_http_dashstream_dashflow_msg_t *m,
    ngx_http_dashstream_dashflow_err_t *err);
static int ngx_http_dashstream_dashflow_threads(
    ngx_http_dashstream_dashflow_field_t *field,
    ngx_http_dashstream_dashflow_msg_t *m,
    ngx_http_dashstream_dashflow_err_t *err);
static int ngx_http_dashstream_dashflow_number(
    const ngx_http_dashstream_json_tok_t *tok, uint64_t max,
    uint64_t *value);

static size_t ngx_http_dashstream_dashflow_format(unsigned char *buf,
    size_t size, const char *fmt, ...);
static void ngx_http_dashstream_dashflow_put(
    ngx_http_dashstream_dashflow_out_t *out, const void *p, size_t n);
static void ngx_http_dashstream_dashflow_map(
    ngx_http_dashstream_dashflow_out_t *out,
    const ngx_http_dashstream_cursor_t *c, size_t n);
static void ngx_http_dashstream_dashflow_str(
    ngx_http_dashstream_dashflow_out_t *out, const char *s);
static void ngx_http_dashstream_dashflow_int(
    ngx_http_dashstream_dashflow_out_t *out, int64_t v);
static void ngx_http_dashstream_dashflow_uint(
    ngx_http_dashstream_dashflow_out_t *out, uint64_t v);


static const char  *ngx_http_dashstream_dashflow_field_names[] = {
    "type",
    "from",
    "mode",
    "lastOffsetsByPartition",
    "lastSequencesByThread"
};

/* indexed by NGX_HTTP_DASHSTREAM_FROM_* and NGX_HTTP_DASHSTREAM_MODE_* */

static const char  *ngx_http_dashstream_dashflow_from_names[] = {
    "cursor", "latest", "earliest", NULL
};

static const char  *ngx_http_dashstream_dashflow_mode_names[] = {
    "auto", "partition", "thread", NULL
};


int
ngx_http_dashstream_dashflow_parse(const unsigned char *p, size_t len,
    ngx_http_dashstream_dashflow_msg_t *m, const char **code, char *errmsg,
    size_t errcap)
{
    int                                   rc;
    size_t                                off;
    const char                           *why;
    ngx_http_dashstream_dashflow_err_t    err;
    ngx_http_dashstream_dashflow_field_t  f[NGX_HTTP_DASHSTREAM_FIELD_N];

    m->type = 0;
    m->from = NGX_HTTP_DASHSTREAM_FROM_CURSOR;
    m->mode = NGX_HTTP_DASHSTREAM_MODE_AUTO;
    m->has_partitions = 0;
    m->has_threads = 0;
    m->ncursors = 0;
    m->nthreads = 0;

    err.code = NULL;
    err.msg = errmsg;
    err.cap = errcap;

    if (errmsg != NULL && errcap > 0) {
        errmsg[0] = '\0';
    }

    if (ngx_http_dashstream_json_validate(p, len, &off, &why) != 0) {
        rc = ngx_http_dashstream_dashflow_fail(&err, "INVALID_JSON",
                                               "invalid JSON at byte %zu: %s",
                                               off, why);

    } else {
        rc = ngx_http_dashstream_dashflow_fields(p, len, f, &err);

        if (rc == 0) {
            rc = ngx_http_dashstream_dashflow_message(f, m, &err);
        }
    }

    *code = err.code;

    return rc;
}


static int
ngx_http_dashstream_dashflow_fail(ngx_http_dashstream_dashflow_err_t *err,
    const char *code, const char *fmt, ...)
{
    va_list  args;

    err->code = code;

    if (err->msg != NULL && err->cap > 0) {
        va_start(args, fmt);
        vsnprintf(err->msg, err->cap, fmt, args);
        va_end(args);
    }

    return -1;
}


/*
 * Finds the top-level fields the protocol defines; the document is
 * already known to be valid JSON.  A repeated defined key is rejected so
 * that no two readers of one message can disagree about what it says.
 */

static int
ngx_http_dashstream_dashflow_fields(const unsigned char *p, size_t len,
    ngx_http_dashstream_dashflow_field_t *f,
    ngx_http_dashstream_dashflow_err_t *err)
{
    int                                    rc;
    size_t                                 i;
    ngx_http_dashstream_json_t             js;
    ngx_http_dashstream_json_tok_t         key, val;
    ngx_http_dashstream_dashflow_field_t  *field;

    memset(f, 0, NGX_HTTP_DASHSTREAM_FIELD_N * sizeof(*f));

    ngx_http_dashstream_json_init(&js, p, len);

    if (ngx_http_dashstream_json_next(&js, &val)
        != NGX_HTTP_DASHSTREAM_JSON_OBJECT)
    {
        return ngx_http_dashstream_dashflow_fail(err, "MISSING_TYPE",
                                               "message is not a JSON object");
    }

    for ( ;; ) {
        rc = ngx_http_dashstream_json_next(&js, &key);

        if (rc == NGX_HTTP_DASHSTREAM_JSON_OBJECT_END) {
            return 0;
        }

        if (rc != NGX_HTTP_DASHSTREAM_JSON_KEY
            || ngx_http_dashstream_json_next(&js, &val) <= 0
            || ngx_http_dashstream_json_skip(&js, &val) != 0)
        {
            return ngx_http_dashstream_dashflow_fail(err, "INVALID_JSON",
                                                     "invalid JSON");
        }

        field = NULL;

        for (i = 0; i < NGX_HTTP_DASHSTREAM_FIELD_N; i++) {
            if (ngx_http_dashstream_json_string_eq(&key,
                                  ngx_http_dashstream_dashflow_field_names[i]))
            {
                field = &f[i];
                break;
            }
        }

        if (field == NULL) {
            continue;
        }

        if (field->set) {
            return ngx_http_dashstream_dashflow_fail(err, "INVALID_JSON",
                                "duplicate key \"%s\"",
                                ngx_http_dashstream_dashflow_field_names[i]);
        }

        field->set = 1;
        field->tok = val;
        field->end = js.pos;
    }
}


static int
ngx_http_dashstream_dashflow_message(ngx_http_dashstream_dashflow_field_t *f,
    ngx_http_dashstream_dashflow_msg_t *m,
    ngx_http_dashstream_dashflow_err_t *err)
{
    ngx_http_dashstream_json_tok_t  *type;

    type = &f[NGX_HTTP_DASHSTREAM_FIELD_TYPE].tok;

    if (!f[NGX_HTTP_DASHSTREAM_FIELD_TYPE].set) {
        return ngx_http_dashstream_dashflow_fail(err, "MISSING_TYPE",
                                                 "missing \"type\"");
    }

    if (type->type != NGX_HTTP_DASHSTREAM_JSON_STRING) {
        return ngx_http_dashstream_dashflow_fail(err, "MISSING_TYPE",
                                                 "\"type\" is not a string");
    }

    if (ngx_http_dashstream_json_string_eq(type, "cursor_reset")) {
        m->type = NGX_HTTP_DASHSTREAM_MSG_CURSOR_RESET;
        return 0;
    }

    if (!ngx_http_dashstream_json_string_eq(type, "resume")) {
        return ngx_http_dashstream_dashflow_fail(err, "UNKNOWN_MESSAGE_TYPE",
                                                 "unknown message type");
    }

    m->type = NGX_HTTP_DASHSTREAM_MSG_RESUME;

    if (ngx_http_dashstream_dashflow_enum(&f[NGX_HTTP_DASHSTREAM_FIELD_FROM],
                                ngx_http_dashstream_dashflow_from_names,
                                &m->from)
        != 0)
    {
        return ngx_http_dashstream_dashflow_fail(err, "INVALID_FROM",
                  "\"from\" must be \"latest\", \"cursor\" or \"earliest\"");
    }

    if (ngx_http_dashstream_dashflow_enum(&f[NGX_HTTP_DASHSTREAM_FIELD_MODE],
                                ngx_http_dashstream_dashflow_mode_names,
                                &m->mode)
        != 0)
    {
        return ngx_http_dashstream_dashflow_fail(err, "INVALID_MODE",
                  "\"mode\" must be \"partition\", \"thread\" or \"auto\"");
    }

    if (f[NGX_HTTP_DASHSTREAM_FIELD_OFFSETS].set
        && ngx_http_dashstream_dashflow_partitions(
               &f[NGX_HTTP_DASHSTREAM_FIELD_OFFSETS], m, err)
           != 0)
    {
        return -1;
    }

    if (f[NGX_HTTP_DASHSTREAM_FIELD_SEQUENCES].set
        && ngx_http_dashstream_dashflow_threads(
               &f[NGX_HTTP_DASHSTREAM_FIELD_SEQUENCES], m, err)
           != 0)
    {
        return -1;
    }

    return 0;
}


static int
ngx_http_dashstream_dashflow_enum(ngx_http_dashstream_dashflow_field_t *field,
    const char **names, int *value)
{
    int  i;

    if (!field->set) {
        return 0;
    }

    if (field->tok.type != NGX_HTTP_DASHSTREAM_JSON_STRING) {
        return -1;
    }

    for (i = 0; names[i] != NULL; i++) {
        if (ngx_http_dashstream_json_string_eq(&field->tok, names[i])) {
            *value = i;
            return 0;
        }
    }

    return -1;
}


static int
ngx_http_dashstream_dashflow_partitions(
    ngx_http_dashstream_dashflow_field_t *field,
    ngx_http_dashstream_dashflow_msg_t *m,
    ngx_http_dashstream_dashflow_err_t *err)
{
    size_t                          i, n;
    int32_t                         partition;
    uint64_t                        v;
    unsigned char                   buf[NGX_HTTP_DASHSTREAM_UINT64_LEN];
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  key, val;

    if (field->tok.type != NGX_HTTP_DASHSTREAM_JSON_OBJECT) {
        return ngx_http_dashstream_dashflow_fail(err, "INVALID_CURSOR",
                             "\"lastOffsetsByPartition\" is not an object");
    }

    m->has_partitions = 1;

    ngx_http_dashstream_json_init(&js, field->tok.start,
                                  (size_t) (field->end - field->tok.start));
    (void) ngx_http_dashstream_json_next(&js, &key);

    while (ngx_http_dashstream_json_next(&js, &key)
           == NGX_HTTP_DASHSTREAM_JSON_KEY)
    {
        if (m->ncursors == m->max_cursors) {
            return ngx_http_dashstream_dashflow_fail(err,
                                                 "RESUME_TOO_MANY_PARTITIONS",
                                                 "more than %zu partitions",
                                                 m->max_cursors);
        }

        n = ngx_http_dashstream_json_unescape(&key, buf, sizeof(buf));

        if (n == (size_t) -1
            || ngx_http_dashstream_json_uint64(buf, n, INT32_MAX, &v) != 0)
        {
            return ngx_http_dashstream_dashflow_fail(err, "INVALID_CURSOR",
                  "partition entry %zu: key is not a non-negative 32-bit "
                  "integer", m->ncursors);
        }

        partition = (int32_t) v;

        (void) ngx_http_dashstream_json_next(&js, &val);

        if (ngx_http_dashstream_dashflow_number(&val, INT64_MAX, &v) != 0) {
            return ngx_http_dashstream_dashflow_fail(err, "INVALID_CURSOR",
                  "offset for partition %d is not a non-negative 64-bit "
                  "integer", (int) partition);
        }

        for (i = 0; i < m->ncursors; i++) {
            if (m->cursors[i].partition == partition) {
                return ngx_http_dashstream_dashflow_fail(err,
                                            "INVALID_CURSOR",
                                            "duplicate partition %d",
                                            (int) partition);
            }
        }

        m->cursors[m->ncursors].partition = partition;
        m->cursors[m->ncursors].offset = (int64_t) v;
        m->ncursors++;
    }

    return 0;
}


static int
ngx_http_dashstream_dashflow_threads(
    ngx_http_dashstream_dashflow_field_t *field,
    ngx_http_dashstream_dashflow_msg_t *m,
    ngx_http_dashstream_dashflow_err_t *err)
{
    char                                 *id;
    size_t                                i, n, size, used;
    uint64_t                              v;
    ngx_http_dashstream_json_t            js;
    ngx_http_dashstream_json_tok_t        key, val;
    ngx_http_dashstream_thread_cursor_t  *t;

    if (field->tok.type != NGX_HTTP_DASHSTREAM_JSON_OBJECT) {
        return ngx_http_dashstream_dashflow_fail(err, "INVALID_CURSOR",
                              "\"lastSequencesByThread\" is not an object");
    }

    m->has_threads = 1;
    used = 0;

    ngx_http_dashstream_json_init(&js, field->tok.start,
                                  (size_t) (field->end - field->tok.start));
    (void) ngx_http_dashstream_json_next(&js, &key);

    while (ngx_http_dashstream_json_next(&js, &key)
           == NGX_HTTP_DASHSTREAM_JSON_KEY)
    {
        if (m->nthreads == m->max_threads) {
            return ngx_http_dashstream_dashflow_fail(err,
                                                 "RESUME_TOO_MANY_THREADS",
                                                 "more than %zu threads",
                                                 m->max_threads);
        }

        id = NULL;
        size = 0;

        if (m->scratch != NULL) {
            id = m->scratch + used;
            size = m->scratch_len - used;
        }

        n = ngx_http_dashstream_json_unescape(&key, (unsigned char *) id,
                                              size);
        if (n == (size_t) -1) {
            return ngx_http_dashstream_dashflow_fail(err, "INVALID_CURSOR",
                                   "thread ids longer than %zu bytes in all",
                                   m->scratch_len);
        }

        (void) ngx_http_dashstream_json_next(&js, &val);

        if (ngx_http_dashstream_dashflow_number(&val, UINT64_MAX, &v) != 0) {
            return ngx_http_dashstream_dashflow_fail(err, "INVALID_CURSOR",
                  "thread entry %zu: sequence is not a non-negative 64-bit "
                  "integer", m->nthreads);
        }

        for (i = 0; i < m->nthreads; i++) {
            t = &m->threads[i];

            if (t->len == n && (n == 0 || memcmp(t->thread_id, id, n) == 0)) {
                return ngx_http_dashstream_dashflow_fail(err,
                                          "INVALID_CURSOR",
                                          "thread entry %zu: duplicate id",
                                          m->nthreads);
            }
        }

        t = &m->threads[m->nthreads++];
        t->thread_id = id;
        t->len = n;
        t->sequence = v;
        used += n;
    }

    return 0;
}


/* a JSON integer or a decimal string, canonical, non-negative, <= max */

static int
ngx_http_dashstream_dashflow_number(const ngx_http_dashstream_json_tok_t *tok,
    uint64_t max, uint64_t *value)
{
    size_t         n;
    unsigned char  buf[NGX_HTTP_DASHSTREAM_UINT64_LEN];

    if (tok->type == NGX_HTTP_DASHSTREAM_JSON_NUMBER) {
        if (!tok->integer || tok->negative) {
            return -1;
        }

        return ngx_http_dashstream_json_uint64(tok->start, tok->len, max,
                                               value);
    }

    if (tok->type != NGX_HTTP_DASHSTREAM_JSON_STRING) {
        return -1;
    }

    n = ngx_http_dashstream_json_unescape(tok, buf, sizeof(buf));

    if (n == (size_t) -1) {
        return -1;
    }

    return ngx_http_dashstream_json_uint64(buf, n, max, value);
}


size_t
ngx_http_dashstream_dashflow_write_cursor(unsigned char *buf, size_t size,
    int32_t partition, int64_t offset)
{
    return ngx_http_dashstream_dashflow_format(buf, size,
               "{\"type\":\"cursor\",\"partition\":%d,\"offset\":\"%D\"}",
               (int) partition, offset);
}


size_t
ngx_http_dashstream_dashflow_write_replay_complete(unsigned char *buf,
    size_t size, const ngx_http_dashstream_replay_summary_t *rs)
{
    return ngx_http_dashstream_dashflow_format(buf, size,
               "{\"type\":\"replay_complete\",\"totalReplayed\":%U,"
               "\"lastOffsetsByPartition\":%M,\"capped\":%B,\"mode\":%S,"
               "\"complete\":%B,\"missingPartitions\":%A}",
               rs->total_replayed, rs->last, rs->nlast, (int) rs->capped,
               rs->mode, (int) (!rs->capped && rs->nmissing == 0),
               rs->missing, rs->nmissing);
}


size_t
ngx_http_dashstream_dashflow_write_cursor_stale(unsigned char *buf,
    size_t size, int32_t partition, int64_t requested, int64_t oldest,
    const char *message)
{
    return ngx_http_dashstream_dashflow_format(buf, size,
               "{\"type\":\"cursor_stale\",\"partition\":%d,"
               "\"requested\":\"%D\",\"oldest\":\"%D\",\"message\":%S}",
               (int) partition, requested, oldest, message);
}


size_t
ngx_http_dashstream_dashflow_write_gap(unsigned char *buf, size_t size,
    int32_t partition, uint64_t count, const char *message)
{
    return ngx_http_dashstream_dashflow_format(buf, size,
               "{\"type\":\"gap\",\"partition\":%d,\"count\":%U,"
               "\"severity\":\"warning\",\"message\":%S}",
               (int) partition, count, message);
}


size_t
ngx_http_dashstream_dashflow_write_gap_dropped(unsigned char *buf,
    size_t size, uint64_t count, const char *reason, const char *message)
{
    return ngx_http_dashstream_dashflow_format(buf, size,
               "{\"type\":\"gap\",\"count\":%U,\"severity\":\"warning\","
               "\"reason\":%S,\"message\":%S}",
               count, reason, message);
}


size_t
ngx_http_dashstream_dashflow_write_error(unsigned char *buf, size_t size,
    const char *code, const char *message)
{
    return ngx_http_dashstream_dashflow_format(buf, size,
               "{\"type\":\"error\",\"code\":%S,\"message\":%S}",
               code, message);
}


size_t
ngx_http_dashstream_dashflow_write_cursor_reset_complete(unsigned char *buf,
    size_t size, const ngx_http_dashstream_cursor_t *latest, size_t n)
{
    return ngx_http_dashstream_dashflow_format(buf, size,
               "{\"type\":\"cursor_reset_complete\","
               "\"latestOffsetsByPartition\":%M}",
               latest, n);
}


/*
 * A printf for the writers above; the format is always a literal here.
 *   %d  int               %D  int64_t           %U  uint64_t
 *   %B  int as true/false %S  const char *, escaped, in quotes (NULL: "")
 *   %M  cursors, count as {"P":"O",...}
 *   %A  int32_t array, count as [a,b,...]
 * Returns the length, or 0 if the output does not fit.
 */

static size_t
ngx_http_dashstream_dashflow_format(unsigned char *buf, size_t size,
    const char *fmt, ...)
{
    size_t                                i, n;
    va_list                               args;
    const char                           *lit;
    const int32_t                        *a;
    ngx_http_dashstream_dashflow_out_t    out;
    const ngx_http_dashstream_cursor_t   *c;

    out.buf = buf;
    out.size = size;
    out.len = 0;
    out.overflow = 0;

    va_start(args, fmt);

    for ( /* void */ ; *fmt != '\0'; fmt++) {

        if (*fmt != '%') {
            ngx_http_dashstream_dashflow_put(&out, fmt, 1);
            continue;
        }

        switch (*++fmt) {

        case 'd':
            ngx_http_dashstream_dashflow_int(&out, va_arg(args, int));
            break;

        case 'D':
            ngx_http_dashstream_dashflow_int(&out, va_arg(args, int64_t));
            break;

        case 'U':
            ngx_http_dashstream_dashflow_uint(&out, va_arg(args, uint64_t));
            break;

        case 'B':
            lit = va_arg(args, int) ? "true" : "false";
            ngx_http_dashstream_dashflow_put(&out, lit, strlen(lit));
            break;

        case 'S':
            ngx_http_dashstream_dashflow_str(&out, va_arg(args, char *));
            break;

        case 'M':
            c = va_arg(args, const ngx_http_dashstream_cursor_t *);
            n = va_arg(args, size_t);
            ngx_http_dashstream_dashflow_map(&out, c, n);
            break;

        default: /* 'A' */
            a = va_arg(args, const int32_t *);
            n = va_arg(args, size_t);

            ngx_http_dashstream_dashflow_put(&out, "[", 1);

            for (i = 0; i < n; i++) {
                if (i > 0) {
                    ngx_http_dashstream_dashflow_put(&out, ",", 1);
                }

                ngx_http_dashstream_dashflow_int(&out, a[i]);
            }

            ngx_http_dashstream_dashflow_put(&out, "]", 1);
            break;
        }
    }

    va_end(args);

    return out.overflow ? 0 : out.len;
}


static void
ngx_http_dashstream_dashflow_put(ngx_http_dashstream_dashflow_out_t *out,
    const void *p, size_t n)
{
    if (out->overflow || out->size - out->len < n) {
        out->overflow = 1;
        return;
    }

    if (n > 0) {
        memcpy(out->buf + out->len, p, n);
        out->len += n;
    }
}


static void
ngx_http_dashstream_dashflow_map(ngx_http_dashstream_dashflow_out_t *out,
    const ngx_http_dashstream_cursor_t *c, size_t n)
{
    size_t  i;

    ngx_http_dashstream_dashflow_put(out, "{", 1);

    for (i = 0; i < n; i++) {
        if (i > 0) {
            ngx_http_dashstream_dashflow_put(out, ",", 1);
        }

        ngx_http_dashstream_dashflow_put(out, "\"", 1);
        ngx_http_dashstream_dashflow_int(out, c[i].partition);
        ngx_http_dashstream_dashflow_put(out, "\":\"", 3);
        ngx_http_dashstream_dashflow_int(out, c[i].offset);
        ngx_http_dashstream_dashflow_put(out, "\"", 1);
    }

    ngx_http_dashstream_dashflow_put(out, "}", 1);
}


static void
ngx_http_dashstream_dashflow_str(ngx_http_dashstream_dashflow_out_t *out,
    const char *s)
{
    size_t  len, n;

    if (s == NULL) {
        s = "";
    }

    len = strlen(s);
    n = ngx_http_dashstream_json_escape_len((const unsigned char *) s, len);

    if (out->overflow || out->size - out->len < n + 2) {
        out->overflow = 1;
        return;
    }

    out->buf[out->len++] = '"';
    (void) ngx_http_dashstream_json_escape(out->buf + out->len,
                                           (const unsigned char *) s, len);
    out->len += n;
    out->buf[out->len++] = '"';
}


static void
ngx_http_dashstream_dashflow_int(ngx_http_dashstream_dashflow_out_t *out,
    int64_t v)
{
    if (v < 0) {
        ngx_http_dashstream_dashflow_put(out, "-", 1);
        ngx_http_dashstream_dashflow_uint(out, (uint64_t) -(v + 1) + 1);
        return;
    }

    ngx_http_dashstream_dashflow_uint(out, (uint64_t) v);
}


static void
ngx_http_dashstream_dashflow_uint(ngx_http_dashstream_dashflow_out_t *out,
    uint64_t v)
{
    unsigned char  *p, *last, digits[NGX_HTTP_DASHSTREAM_UINT64_LEN];

    last = digits + sizeof(digits);
    p = last;

    do {
        *--p = (unsigned char) ('0' + v % 10);
        v /= 10;
    } while (v);

    ngx_http_dashstream_dashflow_put(out, p, (size_t) (last - p));
}
