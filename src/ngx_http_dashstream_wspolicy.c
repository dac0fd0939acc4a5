/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_websocket.h"


/*
 * The handshake's policy, decided before the 101: what the query string
 * asks for (thread, tenant, message types, from), whether the Origin may
 * subscribe, and the tenant scope the request is held to.
 */


static ngx_uint_t ngx_http_dashstream_ws_hex(u_char c);
static ngx_uint_t ngx_http_dashstream_ws_hexval(u_char c);
static ngx_int_t ngx_http_dashstream_ws_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value, const char **reason);
static uint32_t ngx_http_dashstream_ws_types(ngx_str_t *v);
static ngx_uint_t ngx_http_dashstream_ws_origin(
    ngx_http_dashstream_loc_conf_t *dlcf, ngx_str_t *origin);


/*
 * A query argument, percent-decoded: browsers send ids with reserved
 * characters encoded ("a%2Fb" for thread "a/b").  NGX_DECLINED if absent,
 * NGX_ABORT (with a reason) if given twice, badly encoded or holding a
 * control character once decoded.
 */

static ngx_int_t
ngx_http_dashstream_ws_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value, const char **reason)
{
    u_char      *p, *last, *start, *eq, *dst, *src;
    size_t       len;
    ngx_str_t    v;
    ngx_uint_t   found;

    len = ngx_strlen(name);
    p = r->args.data;
    last = p + r->args.len;
    found = 0;
    ngx_str_null(&v);

    while (p < last) {
        start = p;

        while (p < last && *p != '&') {
            p++;
        }

        eq = ngx_strlchr(start, p, '=');

        if ((size_t) ((eq ? eq : p) - start) == len
            && ngx_strncasecmp(start, (u_char *) name, len) == 0)
        {
            if (found++) {
                *reason = "a query argument is given twice";
                return NGX_ABORT;
            }

            v.data = eq ? eq + 1 : p;
            v.len = p - v.data;
        }

        p++;
    }

    if (!found) {
        return NGX_DECLINED;
    }

    for (p = v.data; p < v.data + v.len; p++) {
        if (*p == '%'
            && (v.data + v.len - p < 3
                || !ngx_http_dashstream_ws_hex(p[1])
                || !ngx_http_dashstream_ws_hex(p[2])))
        {
            *reason = "a query argument has a bad percent-encoding";
            return NGX_ABORT;
        }
    }

    dst = ngx_pnalloc(r->pool, v.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;

    /* form encoding, as URLSearchParams writes it: "+" is a space */

    for (src = v.data; src < v.data + v.len; src++) {
        if (*src == '%') {
            *dst++ = (u_char) ((ngx_http_dashstream_ws_hexval(src[1]) << 4)
                               | ngx_http_dashstream_ws_hexval(src[2]));
            src += 2;

        } else {
            *dst++ = (*src == '+') ? ' ' : *src;
        }
    }

    value->len = dst - value->data;

    if (value->len == 0) {
        *reason = "a query argument is empty";
        return NGX_ABORT;
    }

    for (p = value->data; p < dst; p++) {

        if (*p < 0x20 || *p == 0x7f) {
            *reason = "a query argument holds a control character";
            return NGX_ABORT;
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_dashstream_ws_hex(u_char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}


static ngx_uint_t
ngx_http_dashstream_ws_hexval(u_char c)
{
    return (c <= '9') ? (ngx_uint_t) (c - '0')
                      : (ngx_uint_t) ((c | 0x20) - 'a' + 10);
}


/* "type=token_chunk,error" or the type numbers; 0 for anything unknown */

static uint32_t
ngx_http_dashstream_ws_types(ngx_str_t *v)
{
    u_char     *p, *last, *start;
    uint32_t    types;
    ngx_int_t   n;
    ngx_uint_t  i;

    static const char  *names[] = {
        "unspecified", "event", "state_diff", "token_chunk",
        "tool_execution", "checkpoint", "metrics", "error", "event_batch",
        "execution_trace", NULL
    };

    types = 0;
    p = v->data;
    last = p + v->len;

    while (p < last) {
        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        n = ngx_atoi(start, p - start);

        for (i = 0; n == NGX_ERROR && names[i]; i++) {
            if ((size_t) (p - start) == ngx_strlen(names[i])
                && ngx_strncasecmp(start, (u_char *) names[i], p - start)
                   == 0)
            {
                n = i;
            }
        }

        if (n < 0 || n >= NGX_HTTP_DASHSTREAM_MSG_TYPES) {
            return 0;
        }

        types |= 1u << n;
        p++;
    }

    return types;
}


/*
 * What the request asks for and what it is allowed: query arguments,
 * the origin allow-list and the tenant scope, all checked before the 101,
 * so that a refusal is a plain HTTP status.
 */

ngx_int_t
ngx_http_dashstream_ws_policy(ngx_http_request_t *r,
    ngx_http_dashstream_ws_args_t *args, const char **reason)
{
    ngx_int_t                        rc[4];
    ngx_str_t                        v, scope, vals[2];
    ngx_uint_t                       n, i;
    ngx_table_elt_t                 *h;
    ngx_http_dashstream_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_dashstream_module);

    static const char  *names[] = { "thread", "tenant", "type", "from" };

    ngx_memzero(args, sizeof(ngx_http_dashstream_ws_args_t));

    for (i = 0; i < 4; i++) {
        rc[i] = ngx_http_dashstream_ws_arg(r, names[i],
                                           i == 0 ? &args->thread
                                           : i == 1 ? &args->tenant
                                           : &vals[i - 2], reason);

        if (rc[i] == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc[i] == NGX_ABORT) {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    if (rc[2] == NGX_OK) {
        args->types = ngx_http_dashstream_ws_types(&vals[0]);

        if (args->types == 0) {
            *reason = "the \"type\" argument lists an unknown message type";
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    v = vals[1];

    if (rc[3] == NGX_OK) {
        if (v.len == 6 && ngx_strncmp(v.data, "latest", 6) == 0) {
            args->from_latest = 1;

        } else if (v.len == 8 && ngx_strncmp(v.data, "earliest", 8) == 0) {
            args->from_earliest = 1;

        } else {
            *reason = "the \"from\" argument must be \"latest\" or "
                      "\"earliest\"";
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    h = ngx_http_dashstream_ws_header(r, "Origin", NULL, &n);

    /* a browser sends one: with two, which one would the check be about? */

    if (dlcf->origins && n > 1) {
        *reason = "more than one Origin header";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (dlcf->origins && h && !ngx_http_dashstream_ws_origin(dlcf, &h->value))
    {
        *reason = "this origin is not allowed to subscribe";
        return NGX_HTTP_FORBIDDEN;
    }

    if (dlcf->tenant_scope == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, dlcf->tenant_scope, &scope) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (scope.len == 0) {
        *reason = "no tenant scope was established for this request";
        return NGX_HTTP_FORBIDDEN;
    }

    if (args->tenant.data
        && (args->tenant.len != scope.len
            || ngx_strncmp(args->tenant.data, scope.data, scope.len) != 0))
    {
        *reason = "the requested tenant is outside this request's scope";
        return NGX_HTTP_FORBIDDEN;
    }

    args->tenant = scope;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_dashstream_ws_origin(ngx_http_dashstream_loc_conf_t *dlcf,
    ngx_str_t *origin)
{
    ngx_str_t   *o;
    ngx_uint_t   i;

    o = dlcf->origins->elts;

    for (i = 0; i < dlcf->origins->nelts; i++) {
        if ((o[i].len == 1 && o[i].data[0] == '*')
            || (o[i].len == origin->len
                && ngx_strncasecmp(o[i].data, origin->data, o[i].len) == 0))
        {
            return 1;
        }
    }

    return 0;
}
