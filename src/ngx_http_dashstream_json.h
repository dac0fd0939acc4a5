/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_JSON_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_JSON_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * A strict RFC 8259 pull parser: no allocation, no recursion, never reads
 * past the end of its input.  Each call to ngx_http_dashstream_json_next()
 * returns the next token of the document; the grammar (commas, colons,
 * nesting, a single top-level value) is checked as tokens are pulled, so
 * a document is valid exactly when the caller reaches
 * NGX_HTTP_DASHSTREAM_JSON_END without NGX_HTTP_DASHSTREAM_JSON_ERROR.
 *
 * Strings must be valid UTF-8 without raw control characters; escapes are
 * checked, \u surrogates must pair.  Numbers follow the RFC grammar (no
 * leading zeros, no "+", no bare "."); literals are lower case.  Only
 * space, tab, CR and LF count as white space; a byte order mark is
 * rejected.  Duplicate object keys are not detected here: that is the
 * caller's decision (the DashFlow parser rejects duplicates of the keys
 * it reads).
 */


#define NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH  16

#define NGX_HTTP_DASHSTREAM_JSON_ERROR      -1
#define NGX_HTTP_DASHSTREAM_JSON_END        0
#define NGX_HTTP_DASHSTREAM_JSON_OBJECT     1
#define NGX_HTTP_DASHSTREAM_JSON_OBJECT_END 2
#define NGX_HTTP_DASHSTREAM_JSON_ARRAY      3
#define NGX_HTTP_DASHSTREAM_JSON_ARRAY_END  4
#define NGX_HTTP_DASHSTREAM_JSON_KEY        5
#define NGX_HTTP_DASHSTREAM_JSON_STRING     6
#define NGX_HTTP_DASHSTREAM_JSON_NUMBER     7
#define NGX_HTTP_DASHSTREAM_JSON_TRUE       8
#define NGX_HTTP_DASHSTREAM_JSON_FALSE      9
#define NGX_HTTP_DASHSTREAM_JSON_NULL       10


/*
 * start/len cover the token's text in the input; for strings and keys,
 * the bytes between the quotes, still escaped.
 */

typedef struct {
    int                   type;
    const unsigned char  *start;
    size_t                len;
    unsigned              escaped:1;
    /* numbers: no fraction and no exponent; a leading "-" */
    unsigned              integer:1;
    unsigned              negative:1;
} ngx_http_dashstream_json_tok_t;


typedef struct {
    const unsigned char  *start;
    const unsigned char  *pos;
    const unsigned char  *end;
    const char           *error;
    unsigned              state;
    unsigned              depth;
    unsigned char         stack[NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH];
} ngx_http_dashstream_json_t;


void ngx_http_dashstream_json_init(ngx_http_dashstream_json_t *js,
    const unsigned char *p, size_t len);
int ngx_http_dashstream_json_next(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok);
/* after an OBJECT or ARRAY token: pulls up to its matching end */
int ngx_http_dashstream_json_skip(ngx_http_dashstream_json_t *js,
    const ngx_http_dashstream_json_tok_t *tok);
/* 0 if valid; else -1, the byte offset and a static reason */
int ngx_http_dashstream_json_validate(const unsigned char *p, size_t len,
    size_t *err_offset, const char **err);

/* returns (size_t) -1 if dst is too small; tok->len bytes always suffice */
size_t ngx_http_dashstream_json_unescape(
    const ngx_http_dashstream_json_tok_t *tok, unsigned char *dst,
    size_t size);
/* compares the decoded string with s */
int ngx_http_dashstream_json_string_eq(
    const ngx_http_dashstream_json_tok_t *tok, const char *s);
/* canonical decimal digits only (no sign, no leading zero), at most max */
int ngx_http_dashstream_json_uint64(const unsigned char *p, size_t len,
    uint64_t max, uint64_t *value);

size_t ngx_http_dashstream_json_utf8_len(const unsigned char *p,
    const unsigned char *end);
size_t ngx_http_dashstream_json_escape_len(const unsigned char *src,
    size_t len);
unsigned char *ngx_http_dashstream_json_escape(unsigned char *dst,
    const unsigned char *src, size_t len);


#endif /* _NGX_HTTP_DASHSTREAM_JSON_H_INCLUDED_ */
