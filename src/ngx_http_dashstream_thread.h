/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _NGX_HTTP_DASHSTREAM_THREAD_H_INCLUDED_
#define _NGX_HTTP_DASHSTREAM_THREAD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * What the module's threads (consumer, lag poller, librdkafka's own) may
 * use instead of nginx's APIs: a log mailbox that worker 0 drains into
 * error.log, clocks, and C strings made before the threads start.
 */

void ngx_http_dashstream_thread_log(ngx_uint_t level, const char *fmt, ...);
void ngx_http_dashstream_thread_log_wake(int fd);
void ngx_http_dashstream_thread_log_drain(ngx_log_t *log);

uint64_t ngx_http_dashstream_monotonic_ms(void);
uint64_t ngx_http_dashstream_realtime_ms(void);

char *ngx_http_dashstream_cstr(ngx_str_t *s);


#endif /* _NGX_HTTP_DASHSTREAM_THREAD_H_INCLUDED_ */
