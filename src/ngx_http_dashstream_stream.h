/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_STREAM_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_STREAM_H_INCLUDED_


#include "ngx_http_dashstream_zone.h"
#include "ngx_http_dashstream_decode.h"
#include "ngx_http_dashstream_seq.h"


/*
 * What the consumer thread learns from each decoded message: counts by
 * message, event and tool stage, per-thread sequence checks and the
 * allow-listed numeric values of Metrics messages.  Written into the zone
 * by the consumer thread only.
 */

typedef struct {
    ngx_http_dashstream_shctx_t   *sh;
    ngx_http_dashstream_seq_t     *seq;
    char                         **allow;       /* NULL-terminated */
    ngx_uint_t                     max_series;
} ngx_http_dashstream_stream_t;


ngx_http_dashstream_stream_t *ngx_http_dashstream_stream_create(
    ngx_http_dashstream_shctx_t *sh, char **allow, ngx_uint_t max_series,
    uint32_t threads);
void ngx_http_dashstream_stream_destroy(ngx_http_dashstream_stream_t *st);
void ngx_http_dashstream_stream_observe(ngx_http_dashstream_stream_t *st,
    const ngx_http_dashstream_decoded_t *d);

ngx_uint_t ngx_http_dashstream_event_index(int event_type);
const char *ngx_http_dashstream_event_name(ngx_uint_t index);
const char *ngx_http_dashstream_msg_type_name(ngx_uint_t type);
const char *ngx_http_dashstream_tool_stage_name(ngx_uint_t stage);
const char *ngx_http_dashstream_severity_name(ngx_uint_t severity);


#endif /* _NGX_HTTP_DASHSTREAM_STREAM_H_INCLUDED_ */
