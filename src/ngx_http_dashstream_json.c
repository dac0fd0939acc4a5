/*
 * Copyright (C) ngx_dashstream authors
 */


#include <string.h>

#include "ngx_http_dashstream_json.h"


#define NGX_HTTP_DASHSTREAM_JSON_ST_VALUE           0
#define NGX_HTTP_DASHSTREAM_JSON_ST_VALUE_OR_CLOSE  1
#define NGX_HTTP_DASHSTREAM_JSON_ST_KEY             2
#define NGX_HTTP_DASHSTREAM_JSON_ST_KEY_OR_CLOSE    3
#define NGX_HTTP_DASHSTREAM_JSON_ST_COLON           4
#define NGX_HTTP_DASHSTREAM_JSON_ST_COMMA_OR_CLOSE  5
#define NGX_HTTP_DASHSTREAM_JSON_ST_DONE            6
#define NGX_HTTP_DASHSTREAM_JSON_ST_ERROR           7


static int ngx_http_dashstream_json_fail(ngx_http_dashstream_json_t *js,
    const unsigned char *pos, const char *error);
static int ngx_http_dashstream_json_key(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok);
static int ngx_http_dashstream_json_value(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok);
static int ngx_http_dashstream_json_close(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok);
static int ngx_http_dashstream_json_done(ngx_http_dashstream_json_t *js,
    int type);
static int ngx_http_dashstream_json_string(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok);
static int ngx_http_dashstream_json_number(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok);
static int ngx_http_dashstream_json_literal(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok);
static size_t ngx_http_dashstream_json_escape_seq(const unsigned char *p,
    const unsigned char *end, unsigned char *out, size_t *n);
static long ngx_http_dashstream_json_hex4(const unsigned char *p,
    const unsigned char *end);


void
ngx_http_dashstream_json_init(ngx_http_dashstream_json_t *js,
    const unsigned char *p, size_t len)
{
    js->start = p;
    js->pos = p;
    js->end = p + len;
    js->error = NULL;
    js->state = NGX_HTTP_DASHSTREAM_JSON_ST_VALUE;
    js->depth = 0;
}


int
ngx_http_dashstream_json_next(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok)
{
    unsigned char  c;

    memset(tok, 0, sizeof(ngx_http_dashstream_json_tok_t));

    for ( ;; ) {

        if (js->state == NGX_HTTP_DASHSTREAM_JSON_ST_ERROR) {
            return NGX_HTTP_DASHSTREAM_JSON_ERROR;
        }

        while (js->pos < js->end
               && (*js->pos == ' ' || *js->pos == '\t'
                   || *js->pos == '\n' || *js->pos == '\r'))
        {
            js->pos++;
        }

        if (js->pos == js->end) {
            if (js->state == NGX_HTTP_DASHSTREAM_JSON_ST_DONE) {
                tok->type = NGX_HTTP_DASHSTREAM_JSON_END;
                return NGX_HTTP_DASHSTREAM_JSON_END;
            }

            return ngx_http_dashstream_json_fail(js, js->pos,
                                                 "unexpected end of input");
        }

        c = *js->pos;

        switch (js->state) {

        case NGX_HTTP_DASHSTREAM_JSON_ST_DONE:
            return ngx_http_dashstream_json_fail(js, js->pos,
                                          "unexpected data after the value");

        case NGX_HTTP_DASHSTREAM_JSON_ST_COLON:
            if (c != ':') {
                return ngx_http_dashstream_json_fail(js, js->pos,
                                                     "expected ':'");
            }

            js->pos++;
            js->state = NGX_HTTP_DASHSTREAM_JSON_ST_VALUE;
            continue;

        case NGX_HTTP_DASHSTREAM_JSON_ST_COMMA_OR_CLOSE:
            if (c != ',') {
                return ngx_http_dashstream_json_close(js, tok);
            }

            js->pos++;
            js->state = (js->stack[js->depth - 1] == '{')
                        ? NGX_HTTP_DASHSTREAM_JSON_ST_KEY
                        : NGX_HTTP_DASHSTREAM_JSON_ST_VALUE;
            continue;

        case NGX_HTTP_DASHSTREAM_JSON_ST_KEY_OR_CLOSE:
            if (c == '}') {
                return ngx_http_dashstream_json_close(js, tok);
            }

            /* fall through */

        case NGX_HTTP_DASHSTREAM_JSON_ST_KEY:
            return ngx_http_dashstream_json_key(js, tok);

        case NGX_HTTP_DASHSTREAM_JSON_ST_VALUE_OR_CLOSE:
            if (c == ']') {
                return ngx_http_dashstream_json_close(js, tok);
            }

            /* fall through */

        default:
            return ngx_http_dashstream_json_value(js, tok);
        }
    }
}


int
ngx_http_dashstream_json_skip(ngx_http_dashstream_json_t *js,
    const ngx_http_dashstream_json_tok_t *tok)
{
    int                             rc;
    unsigned                        depth;
    ngx_http_dashstream_json_tok_t  t;

    if (tok->type != NGX_HTTP_DASHSTREAM_JSON_OBJECT
        && tok->type != NGX_HTTP_DASHSTREAM_JSON_ARRAY)
    {
        return 0;
    }

    depth = js->depth;

    for ( ;; ) {
        rc = ngx_http_dashstream_json_next(js, &t);

        if (rc == NGX_HTTP_DASHSTREAM_JSON_ERROR
            || rc == NGX_HTTP_DASHSTREAM_JSON_END)
        {
            return NGX_HTTP_DASHSTREAM_JSON_ERROR;
        }

        if ((rc == NGX_HTTP_DASHSTREAM_JSON_OBJECT_END
             || rc == NGX_HTTP_DASHSTREAM_JSON_ARRAY_END)
            && js->depth < depth)
        {
            return 0;
        }
    }
}


int
ngx_http_dashstream_json_validate(const unsigned char *p, size_t len,
    size_t *err_offset, const char **err)
{
    int                             rc;
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  tok;

    ngx_http_dashstream_json_init(&js, p, len);

    do {
        rc = ngx_http_dashstream_json_next(&js, &tok);
    } while (rc > 0);

    if (rc == NGX_HTTP_DASHSTREAM_JSON_END) {
        return 0;
    }

    if (err_offset) {
        *err_offset = (size_t) (js.pos - js.start);
    }

    if (err) {
        *err = js.error;
    }

    return -1;
}


static int
ngx_http_dashstream_json_fail(ngx_http_dashstream_json_t *js,
    const unsigned char *pos, const char *error)
{
    js->pos = pos;
    js->error = error;
    js->state = NGX_HTTP_DASHSTREAM_JSON_ST_ERROR;

    return NGX_HTTP_DASHSTREAM_JSON_ERROR;
}


static int
ngx_http_dashstream_json_key(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok)
{
    if (*js->pos != '"') {
        return ngx_http_dashstream_json_fail(js, js->pos,
                                             "expected a string key");
    }

    if (ngx_http_dashstream_json_string(js, tok) != 0) {
        return NGX_HTTP_DASHSTREAM_JSON_ERROR;
    }

    tok->type = NGX_HTTP_DASHSTREAM_JSON_KEY;
    js->state = NGX_HTTP_DASHSTREAM_JSON_ST_COLON;

    return NGX_HTTP_DASHSTREAM_JSON_KEY;
}


static int
ngx_http_dashstream_json_value(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok)
{
    unsigned char  c;

    c = *js->pos;

    switch (c) {

    case '{':
    case '[':
        if (js->depth == NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH) {
            return ngx_http_dashstream_json_fail(js, js->pos,
                                                 "nesting too deep");
        }

        js->stack[js->depth++] = c;
        tok->start = js->pos++;
        tok->len = 1;

        if (c == '{') {
            js->state = NGX_HTTP_DASHSTREAM_JSON_ST_KEY_OR_CLOSE;
            tok->type = NGX_HTTP_DASHSTREAM_JSON_OBJECT;

        } else {
            js->state = NGX_HTTP_DASHSTREAM_JSON_ST_VALUE_OR_CLOSE;
            tok->type = NGX_HTTP_DASHSTREAM_JSON_ARRAY;
        }

        return tok->type;

    case '"':
        if (ngx_http_dashstream_json_string(js, tok) != 0) {
            return NGX_HTTP_DASHSTREAM_JSON_ERROR;
        }

        tok->type = NGX_HTTP_DASHSTREAM_JSON_STRING;
        return ngx_http_dashstream_json_done(js, tok->type);

    case 't':
    case 'f':
    case 'n':
        return ngx_http_dashstream_json_literal(js, tok);

    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            return ngx_http_dashstream_json_number(js, tok);
        }

        return ngx_http_dashstream_json_fail(js, js->pos,
                                             "unexpected character");
    }
}


static int
ngx_http_dashstream_json_close(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok)
{
    unsigned char  open;

    open = js->stack[js->depth - 1];

    if (open == '{' && *js->pos == '}') {
        tok->type = NGX_HTTP_DASHSTREAM_JSON_OBJECT_END;

    } else if (open == '[' && *js->pos == ']') {
        tok->type = NGX_HTTP_DASHSTREAM_JSON_ARRAY_END;

    } else {
        return ngx_http_dashstream_json_fail(js, js->pos, (open == '{')
                                             ? "expected ',' or '}'"
                                             : "expected ',' or ']'");
    }

    js->depth--;
    tok->start = js->pos++;
    tok->len = 1;

    return ngx_http_dashstream_json_done(js, tok->type);
}


static int
ngx_http_dashstream_json_done(ngx_http_dashstream_json_t *js, int type)
{
    js->state = js->depth ? NGX_HTTP_DASHSTREAM_JSON_ST_COMMA_OR_CLOSE
                          : NGX_HTTP_DASHSTREAM_JSON_ST_DONE;
    return type;
}


static int
ngx_http_dashstream_json_string(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok)
{
    size_t                n, outlen;
    unsigned char         out[4];
    const unsigned char  *p;

    for (p = js->pos + 1; p < js->end; /* void */) {

        if (*p == '"') {
            tok->start = js->pos + 1;
            tok->len = (size_t) (p - tok->start);
            js->pos = p + 1;
            return 0;
        }

        if (*p < 0x20) {
            ngx_http_dashstream_json_fail(js, p,
                                          "control character in string");
            return -1;
        }

        if (*p == '\\') {
            n = ngx_http_dashstream_json_escape_seq(p, js->end, out, &outlen);
            if (n == 0) {
                ngx_http_dashstream_json_fail(js, p, "invalid escape");
                return -1;
            }

            tok->escaped = 1;
            p += n;
            continue;
        }

        n = ngx_http_dashstream_json_utf8_len(p, js->end);
        if (n == 0) {
            ngx_http_dashstream_json_fail(js, p, "invalid UTF-8 in string");
            return -1;
        }

        p += n;
    }

    ngx_http_dashstream_json_fail(js, p, "unterminated string");
    return -1;
}


static int
ngx_http_dashstream_json_number(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok)
{
    const unsigned char  *p, *end;

    p = js->pos;
    end = js->end;

    tok->integer = 1;

    if (*p == '-') {
        tok->negative = 1;
        p++;
    }

    if (p == end || *p < '0' || *p > '9') {
        return ngx_http_dashstream_json_fail(js, p, "invalid number");
    }

    if (*p++ == '0') {
        if (p < end && *p >= '0' && *p <= '9') {
            return ngx_http_dashstream_json_fail(js, p,
                                                 "leading zero in number");
        }

    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && *p == '.') {
        tok->integer = 0;

        if (++p == end || *p < '0' || *p > '9') {
            return ngx_http_dashstream_json_fail(js, p, "invalid fraction");
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        tok->integer = 0;

        if (++p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == end || *p < '0' || *p > '9') {
            return ngx_http_dashstream_json_fail(js, p, "invalid exponent");
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    tok->type = NGX_HTTP_DASHSTREAM_JSON_NUMBER;
    tok->start = js->pos;
    tok->len = (size_t) (p - js->pos);
    js->pos = p;

    return ngx_http_dashstream_json_done(js, tok->type);
}


static int
ngx_http_dashstream_json_literal(ngx_http_dashstream_json_t *js,
    ngx_http_dashstream_json_tok_t *tok)
{
    int          type;
    size_t       len;
    const char  *word;

    switch (*js->pos) {

    case 't':
        word = "true";
        type = NGX_HTTP_DASHSTREAM_JSON_TRUE;
        break;

    case 'f':
        word = "false";
        type = NGX_HTTP_DASHSTREAM_JSON_FALSE;
        break;

    default:
        word = "null";
        type = NGX_HTTP_DASHSTREAM_JSON_NULL;
        break;
    }

    len = strlen(word);

    if ((size_t) (js->end - js->pos) < len
        || memcmp(js->pos, word, len) != 0)
    {
        return ngx_http_dashstream_json_fail(js, js->pos, "invalid literal");
    }

    tok->type = type;
    tok->start = js->pos;
    tok->len = len;
    js->pos += len;

    return ngx_http_dashstream_json_done(js, type);
}


/*
 * Decodes one escape sequence at p (which points at the backslash) into
 * UTF-8 in out; returns the number of input bytes consumed, 0 if the
 * sequence is invalid.  Lone or misordered surrogates are invalid: they
 * have no UTF-8 form.
 */

static size_t
ngx_http_dashstream_json_escape_seq(const unsigned char *p,
    const unsigned char *end, unsigned char *out, size_t *n)
{
    long  cp, lo;

    if (end - p < 2) {
        return 0;
    }

    *n = 1;

    switch (p[1]) {
    case '"':  out[0] = '"';  return 2;
    case '\\': out[0] = '\\'; return 2;
    case '/':  out[0] = '/';  return 2;
    case 'b':  out[0] = '\b'; return 2;
    case 'f':  out[0] = '\f'; return 2;
    case 'n':  out[0] = '\n'; return 2;
    case 'r':  out[0] = '\r'; return 2;
    case 't':  out[0] = '\t'; return 2;
    case 'u':  break;
    default:   return 0;
    }

    cp = ngx_http_dashstream_json_hex4(p + 2, end);

    if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff)) {
        return 0;
    }

    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u') {
            return 0;
        }

        lo = ngx_http_dashstream_json_hex4(p + 8, end);
        if (lo < 0xdc00 || lo > 0xdfff) {
            return 0;
        }

        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        out[0] = (unsigned char) (0xf0 | (cp >> 18));
        out[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (unsigned char) (0x80 | (cp & 0x3f));
        *n = 4;
        return 12;
    }

    if (cp < 0x80) {
        out[0] = (unsigned char) cp;

    } else if (cp < 0x800) {
        out[0] = (unsigned char) (0xc0 | (cp >> 6));
        out[1] = (unsigned char) (0x80 | (cp & 0x3f));
        *n = 2;

    } else {
        out[0] = (unsigned char) (0xe0 | (cp >> 12));
        out[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char) (0x80 | (cp & 0x3f));
        *n = 3;
    }

    return 6;
}


static long
ngx_http_dashstream_json_hex4(const unsigned char *p,
    const unsigned char *end)
{
    long           v;
    unsigned char  c;
    size_t         i;

    if (end - p < 4) {
        return -1;
    }

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = v * 16 + ((c | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    return v;
}


size_t
ngx_http_dashstream_json_unescape(const ngx_http_dashstream_json_tok_t *tok,
    unsigned char *dst, size_t size)
{
    size_t                n, outlen, used;
    unsigned char         out[4];
    const unsigned char  *p, *end;

    p = tok->start;
    end = p + tok->len;
    used = 0;

    while (p < end) {

        if (*p != '\\') {
            if (used == size) {
                return (size_t) -1;
            }

            dst[used++] = *p++;
            continue;
        }

        n = ngx_http_dashstream_json_escape_seq(p, end, out, &outlen);
        if (n == 0 || size - used < outlen) {
            return (size_t) -1;
        }

        p += n;
        memcpy(dst + used, out, outlen);
        used += outlen;
    }

    return used;
}


int
ngx_http_dashstream_json_string_eq(const ngx_http_dashstream_json_tok_t *tok,
    const char *s)
{
    size_t                n, outlen, slen, i;
    unsigned char         out[4];
    const unsigned char  *p, *end;

    slen = strlen(s);

    if (!tok->escaped) {
        return tok->len == slen && memcmp(tok->start, s, slen) == 0;
    }

    p = tok->start;
    end = p + tok->len;
    i = 0;

    while (p < end) {

        if (*p != '\\') {
            if (i == slen || (unsigned char) s[i] != *p) {
                return 0;
            }

            i++;
            p++;
            continue;
        }

        n = ngx_http_dashstream_json_escape_seq(p, end, out, &outlen);
        if (n == 0 || slen - i < outlen || memcmp(s + i, out, outlen) != 0) {
            return 0;
        }

        i += outlen;
        p += n;
    }

    return i == slen;
}


/*
 * Canonical decimal only: digits, no sign, no leading zero, no white
 * space, at most max.
 */

int
ngx_http_dashstream_json_uint64(const unsigned char *p, size_t len,
    uint64_t max, uint64_t *value)
{
    size_t    i;
    uint64_t  v, d;

    if (len == 0 || (p[0] == '0' && len > 1)) {
        return -1;
    }

    v = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        d = p[i] - '0';

        if (d > max || v > (max - d) / 10) {
            return -1;
        }

        v = v * 10 + d;
    }

    *value = v;

    return 0;
}


/*
 * The length of the well-formed UTF-8 sequence at p, 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are not).
 */

size_t
ngx_http_dashstream_json_utf8_len(const unsigned char *p,
    const unsigned char *end)
{
    size_t         n, i;
    unsigned char  c, lo, hi;

    if (p >= end) {
        return 0;
    }

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c < 0xc2) {
        return 0;

    } else if (c < 0xe0) {
        n = 2;

    } else if (c < 0xf0) {
        n = 3;
        lo = (c == 0xe0) ? 0xa0 : 0x80;
        hi = (c == 0xed) ? 0x9f : 0xbf;

    } else if (c < 0xf5) {
        n = 4;
        lo = (c == 0xf0) ? 0x90 : 0x80;
        hi = (c == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if ((size_t) (end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    return n;
}


/*
 * Escapes '"', '\' and control characters (as \u00XX); valid UTF-8 passes
 * through, each byte of an invalid sequence becomes \ufffd so the output
 * is always a valid JSON string body.
 */

size_t
ngx_http_dashstream_json_escape_len(const unsigned char *src, size_t len)
{
    size_t                n, size;
    const unsigned char  *end;

    size = 0;
    end = src + len;

    while (src < end) {

        if (*src == '"' || *src == '\\') {
            size += 2;
            src++;

        } else if (*src < 0x20) {
            size += sizeof("\\u0000") - 1;
            src++;

        } else {
            n = ngx_http_dashstream_json_utf8_len(src, end);

            if (n == 0) {
                size += sizeof("\\ufffd") - 1;
                src++;

            } else {
                size += n;
                src += n;
            }
        }
    }

    return size;
}


unsigned char *
ngx_http_dashstream_json_escape(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t                      n;
    const unsigned char        *end;
    static const unsigned char  hex[] = "0123456789abcdef";

    end = src + len;

    while (src < end) {

        if (*src == '"' || *src == '\\') {
            *dst++ = '\\';
            *dst++ = *src++;

        } else if (*src < 0x20) {
            *dst++ = '\\';
            *dst++ = 'u';
            *dst++ = '0';
            *dst++ = '0';
            *dst++ = hex[*src >> 4];
            *dst++ = hex[*src & 0xf];
            src++;

        } else {
            n = ngx_http_dashstream_json_utf8_len(src, end);

            if (n == 0) {
                memcpy(dst, "\\ufffd", sizeof("\\ufffd") - 1);
                dst += sizeof("\\ufffd") - 1;
                src++;

            } else {
                memcpy(dst, src, n);
                dst += n;
                src += n;
            }
        }
    }

    return dst;
}
