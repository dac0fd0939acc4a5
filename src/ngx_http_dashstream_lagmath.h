/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_LAGMATH_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_LAGMATH_H_INCLUDED_


#include <stdint.h>


/*
 * Consumer lag of one assigned partition, from what the consumer thread
 * and the lag poller last stored (see ngx_http_dashstream_part_t): the
 * position is the next offset to process, 0 if none was processed; the
 * end and committed offsets are stored + 1, 0 meaning "not known".
 */

typedef struct {
    uint64_t   position;        /* next offset to process, 0: none */
    uint64_t   position_live;   /* position set since the assignment */
    uint64_t   last_ts_ms;      /* Kafka timestamp of the last processed */
    uint64_t   high_watermark;  /* end offset (LSO if read_committed), + 1 */
    uint64_t   committed;       /* the group's committed offset, + 1 */
    uint64_t   assigned_ms;
    int        trust_position;  /* broadcast: position is where we resume */
    int        reset_latest;    /* auto.offset.reset */
} ngx_http_dashstream_lag_in_t;


typedef struct {
    int64_t    position;        /* -1: not known */
    int64_t    high_watermark;  /* -1: not known */
    int64_t    lag;             /* -1: not known (no end offset yet) */
    double     age;             /* seconds */
} ngx_http_dashstream_lag_out_t;


void ngx_http_dashstream_lag_of(const ngx_http_dashstream_lag_in_t *in,
    uint64_t now_ms, ngx_http_dashstream_lag_out_t *out);


#endif /* _NGX_HTTP_DASHSTREAM_LAGMATH_H_INCLUDED_ */
