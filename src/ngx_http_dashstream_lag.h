/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_LAG_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_LAG_H_INCLUDED_


#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_kafka.h"


typedef struct ngx_http_dashstream_lag_s  ngx_http_dashstream_lag_t;


ngx_http_dashstream_lag_t *ngx_http_dashstream_lag_start(ngx_cycle_t *cycle,
    ngx_http_dashstream_main_conf_t *dmcf,
    const ngx_http_dashstream_kafka_params_t *kp);
void ngx_http_dashstream_lag_stop(ngx_http_dashstream_lag_t *lag);
void ngx_http_dashstream_lag_join(ngx_cycle_t *cycle,
    ngx_http_dashstream_lag_t *lag);


#endif /* _NGX_HTTP_DASHSTREAM_LAG_H_INCLUDED_ */
