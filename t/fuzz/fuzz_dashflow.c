/*
 * Copyright (C) ngx_dashstream authors
 *
 * libFuzzer target for the JSON parser and the DashFlow control protocol.
 * Input byte 0 picks the caps and scratch size, the rest is a client
 * message.  The message goes through the DashFlow parser, whose result
 * must keep every promise of its interface; through the JSON tokenizer,
 * whose every string must survive unescape, escape and unescape again;
 * and an accepted resume is written back with the server writers and
 * parsed again, which must give the same cursors.
 */


#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_dashstream_json.h"
#include "ngx_http_dashstream_dashflow.h"


#define FUZZ_MAX_INPUT    65536
#define FUZZ_MAX_CURSORS  64
#define FUZZ_MAX_THREADS  64
#define FUZZ_OUT          (FUZZ_MAX_CURSORS * 48 + 256)

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* arrays are used from their ends so that ASan sees any overrun */
static ngx_http_dashstream_cursor_t         fuzz_cursors[FUZZ_MAX_CURSORS];
static ngx_http_dashstream_thread_cursor_t  fuzz_threads[FUZZ_MAX_THREADS];
static char                                 fuzz_scratch[FUZZ_MAX_INPUT];
static unsigned char                        fuzz_str[FUZZ_MAX_INPUT];
static unsigned char                        fuzz_esc[FUZZ_MAX_INPUT * 6 + 2];
static unsigned char                        fuzz_back[FUZZ_MAX_INPUT];
static unsigned char                        fuzz_out[FUZZ_OUT];
static char                                 fuzz_errmsg[96];

static const size_t  fuzz_caps[] = { 0, 1, 4, FUZZ_MAX_CURSORS };

static const char  *fuzz_codes[] = {
    "INVALID_JSON", "MISSING_TYPE", "UNKNOWN_MESSAGE_TYPE", "INVALID_FROM",
    "INVALID_MODE", "INVALID_CURSOR", "RESUME_TOO_MANY_PARTITIONS",
    "RESUME_TOO_MANY_THREADS", NULL
};


static void
fuzz_check_error(const unsigned char *p, size_t len, const char *code)
{
    int          known;
    size_t       i;
    const char  *why;

    known = 0;

    for (i = 0; fuzz_codes[i] != NULL; i++) {
        if (code != NULL && strcmp(code, fuzz_codes[i]) == 0) {
            known = 1;
        }
    }

    FUZZ_CHECK(known);
    FUZZ_CHECK(memchr(fuzz_errmsg, '\0', sizeof(fuzz_errmsg)) != NULL);
    FUZZ_CHECK(fuzz_errmsg[0] != '\0');

    if (ngx_http_dashstream_json_validate(p, len, NULL, &why) != 0) {
        FUZZ_CHECK(strcmp(code, "INVALID_JSON") == 0);
        FUZZ_CHECK(why != NULL);

    } else if (strcmp(code, "INVALID_JSON") == 0) {
        FUZZ_CHECK(strncmp(fuzz_errmsg, "duplicate key", 13) == 0);
    }
}


static void
fuzz_check_ok(const unsigned char *p, size_t len,
    ngx_http_dashstream_dashflow_msg_t *m)
{
    size_t  i, j, used;

    FUZZ_CHECK(ngx_http_dashstream_json_validate(p, len, NULL, NULL) == 0);
    FUZZ_CHECK(m->type == NGX_HTTP_DASHSTREAM_MSG_RESUME
               || m->type == NGX_HTTP_DASHSTREAM_MSG_CURSOR_RESET);
    FUZZ_CHECK(m->from >= 0 && m->from <= 2);
    FUZZ_CHECK(m->mode >= 0 && m->mode <= 2);
    FUZZ_CHECK(m->ncursors <= m->max_cursors);
    FUZZ_CHECK(m->nthreads <= m->max_threads);
    FUZZ_CHECK(m->has_partitions || m->ncursors == 0);
    FUZZ_CHECK(m->has_threads || m->nthreads == 0);

    for (i = 0; i < m->ncursors; i++) {
        FUZZ_CHECK(m->cursors[i].partition >= 0);
        FUZZ_CHECK(m->cursors[i].offset >= 0);

        for (j = 0; j < i; j++) {
            FUZZ_CHECK(m->cursors[j].partition != m->cursors[i].partition);
        }
    }

    used = 0;

    for (i = 0; i < m->nthreads; i++) {
        FUZZ_CHECK(m->threads[i].len == 0
                   || m->threads[i].thread_id == m->scratch + used);
        used += m->threads[i].len;

        for (j = 0; j < i; j++) {
            FUZZ_CHECK(m->threads[j].len != m->threads[i].len
                       || (m->threads[i].len > 0
                           && memcmp(m->threads[j].thread_id,
                                     m->threads[i].thread_id,
                                     m->threads[i].len) != 0));
        }
    }

    FUZZ_CHECK(used <= m->scratch_len);
}


/* what the server writes as a cursor map, a client can send back */

static void
fuzz_round_trip(const ngx_http_dashstream_dashflow_msg_t *m)
{
    int                                   rc;
    size_t                                n, i, prefix;
    const char                           *code;
    ngx_http_dashstream_dashflow_msg_t    m2;
    ngx_http_dashstream_cursor_t          again[FUZZ_MAX_CURSORS];
    ngx_http_dashstream_replay_summary_t  rs;

    static const char  head[] =
        "{\"type\":\"cursor_reset_complete\",\"latestOffsetsByPartition\":";
    static const char  resume[] =
        "{\"type\":\"resume\",\"lastOffsetsByPartition\":";

    n = ngx_http_dashstream_dashflow_write_cursor_reset_complete(fuzz_out,
                               sizeof(fuzz_out), m->cursors, m->ncursors);
    FUZZ_CHECK(n > sizeof(head));
    FUZZ_CHECK(ngx_http_dashstream_json_validate(fuzz_out, n, NULL, NULL)
               == 0);

    prefix = sizeof(head) - 1;
    memmove(fuzz_out + sizeof(resume) - 1, fuzz_out + prefix, n - prefix);
    memcpy(fuzz_out, resume, sizeof(resume) - 1);
    n = n - prefix + sizeof(resume) - 1;

    memset(&m2, 0, sizeof(m2));
    m2.cursors = again;
    m2.max_cursors = m->ncursors;

    rc = ngx_http_dashstream_dashflow_parse(fuzz_out, n, &m2, &code, NULL, 0);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(m2.ncursors == m->ncursors);

    for (i = 0; i < m->ncursors; i++) {
        FUZZ_CHECK(again[i].partition == m->cursors[i].partition);
        FUZZ_CHECK(again[i].offset == m->cursors[i].offset);
    }

    memset(&rs, 0, sizeof(rs));
    rs.total_replayed = m->nthreads;
    rs.last = m->cursors;
    rs.nlast = m->ncursors;
    rs.mode = "partition";
    rs.missing = (m->ncursors > 0) ? &m->cursors[0].partition : NULL;
    rs.nmissing = (m->ncursors > 0) ? 1 : 0;

    n = ngx_http_dashstream_dashflow_write_replay_complete(fuzz_out,
                                                   sizeof(fuzz_out), &rs);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(ngx_http_dashstream_json_validate(fuzz_out, n, NULL, NULL)
               == 0);
    FUZZ_CHECK(ngx_http_dashstream_dashflow_write_replay_complete(fuzz_out,
                                                          n - 1, &rs) == 0);
}


static void
fuzz_dashflow(const unsigned char *p, size_t len, unsigned config)
{
    int                                 rc;
    size_t                              scratch_len;
    const char                         *code;
    ngx_http_dashstream_dashflow_msg_t  m;

    memset(&m, 0, sizeof(m));

    m.max_cursors = fuzz_caps[config & 3];
    m.max_threads = fuzz_caps[(config >> 2) & 3];
    m.cursors = fuzz_cursors + FUZZ_MAX_CURSORS - m.max_cursors;
    m.threads = fuzz_threads + FUZZ_MAX_THREADS - m.max_threads;

    switch ((config >> 4) & 3) {
    case 0:
        scratch_len = len;
        break;
    case 1:
        scratch_len = 0;
        break;
    default:
        scratch_len = ((config >> 4) & 3) * 4;
    }

    m.scratch = (config & 0x40) ? NULL
                                : fuzz_scratch + sizeof(fuzz_scratch)
                                  - scratch_len;
    m.scratch_len = (m.scratch != NULL) ? scratch_len : 0;

    code = "unset";
    memset(fuzz_errmsg, 0x7f, sizeof(fuzz_errmsg));

    rc = ngx_http_dashstream_dashflow_parse(p, len, &m, &code, fuzz_errmsg,
                                            sizeof(fuzz_errmsg));

    if (rc != 0) {
        FUZZ_CHECK(rc == -1);
        fuzz_check_error(p, len, code);
        return;
    }

    FUZZ_CHECK(code == NULL);
    fuzz_check_ok(p, len, &m);

    if (m.type == NGX_HTTP_DASHSTREAM_MSG_RESUME) {
        fuzz_round_trip(&m);
    }
}


static void
fuzz_string(const ngx_http_dashstream_json_tok_t *tok)
{
    size_t                          n, e;
    unsigned char                  *end;
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  t2;

    n = ngx_http_dashstream_json_unescape(tok, fuzz_str, tok->len);
    FUZZ_CHECK(n != (size_t) -1 && n <= tok->len);
    FUZZ_CHECK(tok->escaped || n == tok->len);

    if (n > 0) {
        FUZZ_CHECK(ngx_http_dashstream_json_unescape(tok, fuzz_str, n - 1)
                   == (size_t) -1);
    }

    if (memchr(fuzz_str, '\0', n) == NULL && n < sizeof(fuzz_str)) {
        fuzz_str[n] = '\0';
        FUZZ_CHECK(ngx_http_dashstream_json_string_eq(tok,
                                                      (char *) fuzz_str));
    }

    e = ngx_http_dashstream_json_escape_len(fuzz_str, n);
    fuzz_esc[0] = '"';
    end = ngx_http_dashstream_json_escape(fuzz_esc + 1, fuzz_str, n);
    FUZZ_CHECK((size_t) (end - fuzz_esc - 1) == e);
    *end++ = '"';

    /* decoded strings are valid UTF-8, so escaping loses nothing */
    ngx_http_dashstream_json_init(&js, fuzz_esc, end - fuzz_esc);
    FUZZ_CHECK(ngx_http_dashstream_json_next(&js, &t2)
               == NGX_HTTP_DASHSTREAM_JSON_STRING);
    FUZZ_CHECK(ngx_http_dashstream_json_next(&js, &t2)
               == NGX_HTTP_DASHSTREAM_JSON_END);

    ngx_http_dashstream_json_init(&js, fuzz_esc, end - fuzz_esc);
    (void) ngx_http_dashstream_json_next(&js, &t2);
    FUZZ_CHECK(ngx_http_dashstream_json_unescape(&t2, fuzz_back,
                                                 sizeof(fuzz_back)) == n);
    FUZZ_CHECK(memcmp(fuzz_back, fuzz_str, n) == 0);
}


static void
fuzz_tokens(const unsigned char *p, size_t len)
{
    int                             rc;
    size_t                          depth;
    uint64_t                        v;
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  tok;

    ngx_http_dashstream_json_init(&js, p, len);
    depth = 0;

    for ( ;; ) {
        rc = ngx_http_dashstream_json_next(&js, &tok);

        FUZZ_CHECK(js.pos >= p && js.pos <= p + len);
        FUZZ_CHECK(js.depth <= NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH);

        if (rc <= 0) {
            break;
        }

        FUZZ_CHECK(tok.start >= p && tok.start + tok.len <= p + len);

        switch (rc) {
        case NGX_HTTP_DASHSTREAM_JSON_OBJECT:
        case NGX_HTTP_DASHSTREAM_JSON_ARRAY:
            depth++;
            break;

        case NGX_HTTP_DASHSTREAM_JSON_OBJECT_END:
        case NGX_HTTP_DASHSTREAM_JSON_ARRAY_END:
            depth--;
            break;

        case NGX_HTTP_DASHSTREAM_JSON_KEY:
        case NGX_HTTP_DASHSTREAM_JSON_STRING:
            fuzz_string(&tok);
            break;

        case NGX_HTTP_DASHSTREAM_JSON_NUMBER:
            if (!tok.integer || tok.negative) {
                break;
            }

            memcpy(fuzz_back, tok.start, tok.len);
            fuzz_back[tok.len] = '\0';

            if (ngx_http_dashstream_json_uint64(tok.start, tok.len,
                                                UINT64_MAX, &v) == 0)
            {
                FUZZ_CHECK(v == strtoull((char *) fuzz_back, NULL, 10));

            } else {
                FUZZ_CHECK(tok.len >= 20);
            }

            break;
        }

        FUZZ_CHECK(depth == js.depth);
    }

    FUZZ_CHECK((rc == NGX_HTTP_DASHSTREAM_JSON_END)
               == (ngx_http_dashstream_json_validate(p, len, NULL, NULL)
                   == 0));
    FUZZ_CHECK(rc == NGX_HTTP_DASHSTREAM_JSON_ERROR || depth == 0);
}


static void
fuzz_writers(const unsigned char *p, size_t len)
{
    int       k;
    size_t    n, i;
    int32_t   partition;
    int64_t   a, b;
    char      expect[160];

    /* arbitrary bytes as text: the output must still be JSON */
    n = len < sizeof(fuzz_str) - 1 ? len : sizeof(fuzz_str) - 1;

    for (i = 0; i < n; i++) {
        fuzz_str[i] = p[i] ? p[i] : ' ';
    }

    fuzz_str[n] = '\0';

    n = ngx_http_dashstream_dashflow_write_error(fuzz_esc, sizeof(fuzz_esc),
                                                 "INVALID_JSON",
                                                 (char *) fuzz_str);
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(ngx_http_dashstream_json_validate(fuzz_esc, n, NULL, NULL)
               == 0);
    FUZZ_CHECK(ngx_http_dashstream_dashflow_write_error(fuzz_esc, n - 1,
                                                        "INVALID_JSON",
                                                        (char *) fuzz_str)
               == 0);

    n = ngx_http_dashstream_dashflow_write_gap_dropped(fuzz_esc,
                                             sizeof(fuzz_esc), len,
                                             (char *) fuzz_str, "dropped");
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(ngx_http_dashstream_json_validate(fuzz_esc, n, NULL, NULL)
               == 0);

    /* numbers: compare with libc formatting */
    if (len < 20) {
        return;
    }

    memcpy(&partition, p, sizeof(partition));
    memcpy(&a, p + 4, sizeof(a));
    memcpy(&b, p + 12, sizeof(b));

    n = ngx_http_dashstream_dashflow_write_cursor(fuzz_out, sizeof(fuzz_out),
                                                  partition, a);
    k = snprintf(expect, sizeof(expect),
                 "{\"type\":\"cursor\",\"partition\":%" PRId32
                 ",\"offset\":\"%" PRId64 "\"}", partition, a);
    FUZZ_CHECK(n == (size_t) k && memcmp(fuzz_out, expect, n) == 0);

    n = ngx_http_dashstream_dashflow_write_cursor_stale(fuzz_out,
                             sizeof(fuzz_out), partition, a, b, "stale");
    k = snprintf(expect, sizeof(expect),
                 "{\"type\":\"cursor_stale\",\"partition\":%" PRId32
                 ",\"requested\":\"%" PRId64 "\",\"oldest\":\"%" PRId64
                 "\",\"message\":\"stale\"}", partition, a, b);
    FUZZ_CHECK(n == (size_t) k && memcmp(fuzz_out, expect, n) == 0);

    n = ngx_http_dashstream_dashflow_write_gap(fuzz_out, sizeof(fuzz_out),
                                               partition, (uint64_t) b, "g");
    k = snprintf(expect, sizeof(expect),
                 "{\"type\":\"gap\",\"partition\":%" PRId32
                 ",\"count\":%" PRIu64 ",\"severity\":\"warning\","
                 "\"message\":\"g\"}", partition, (uint64_t) b);
    FUZZ_CHECK(n == (size_t) k && memcmp(fuzz_out, expect, n) == 0);
    FUZZ_CHECK(ngx_http_dashstream_dashflow_write_gap(fuzz_out, n - 1,
                                            partition, (uint64_t) b, "g")
               == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT) {
        return 0;
    }

    fuzz_dashflow(data + 1, size - 1, data[0]);
    fuzz_tokens(data + 1, size - 1);
    fuzz_writers(data + 1, size - 1);

    return 0;
}
