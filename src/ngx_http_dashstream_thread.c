/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <stdarg.h>

#include "ngx_http_dashstream_thread.h"


#define NGX_HTTP_DASHSTREAM_LOG_SLOTS  64
#define NGX_HTTP_DASHSTREAM_LOG_LEN    400


typedef struct {
    ngx_uint_t                          level;
    size_t                              len;
    u_char                              text[NGX_HTTP_DASHSTREAM_LOG_LEN];
} ngx_http_dashstream_log_entry_t;


/*
 * Any thread may write: librdkafka calls back from its own threads, so
 * writers take a spin lock for the copy.  Worker 0 alone reads, without
 * one, when its eventfd wakes it.
 */

typedef struct {
    ngx_http_dashstream_log_entry_t     entry[NGX_HTTP_DASHSTREAM_LOG_SLOTS];
    ngx_atomic_t                        head;
    ngx_atomic_t                        tail;
    ngx_atomic_t                        lock;
    ngx_atomic_t                        lost;
    int                                 wake_fd;
} ngx_http_dashstream_mailbox_t;


static ngx_http_dashstream_mailbox_t  ngx_http_dashstream_mailbox = {
    .wake_fd = -1
};


void
ngx_http_dashstream_thread_log(ngx_uint_t level, const char *fmt, ...)
{
    int                               n;
    va_list                           args;
    uint64_t                          one;
    ngx_atomic_uint_t                 head;
    ngx_http_dashstream_mailbox_t    *mb;
    ngx_http_dashstream_log_entry_t  *e;

    mb = &ngx_http_dashstream_mailbox;

    while (!ngx_atomic_cmp_set(&mb->lock, 0, 1)) {
        ngx_cpu_pause();
    }

    head = mb->head;

    if (head - __atomic_load_n(&mb->tail, __ATOMIC_ACQUIRE)
        >= NGX_HTTP_DASHSTREAM_LOG_SLOTS)
    {
        (void) ngx_atomic_fetch_add(&mb->lost, 1);
        __atomic_store_n(&mb->lock, 0, __ATOMIC_RELEASE);
        return;
    }

    e = &mb->entry[head % NGX_HTTP_DASHSTREAM_LOG_SLOTS];

    va_start(args, fmt);
    n = vsnprintf((char *) e->text, sizeof(e->text), fmt, args);
    va_end(args);

    e->len = n < 0 ? 0 : ngx_min((size_t) n, sizeof(e->text) - 1);
    e->level = level;

    __atomic_store_n(&mb->head, head + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&mb->lock, 0, __ATOMIC_RELEASE);

    if (mb->wake_fd != -1) {
        one = 1;
        (void) write(mb->wake_fd, &one, sizeof(one));
    }
}


void
ngx_http_dashstream_thread_log_wake(int fd)
{
    ngx_http_dashstream_mailbox.wake_fd = fd;
}


void
ngx_http_dashstream_thread_log_drain(ngx_log_t *log)
{
    ngx_atomic_uint_t                 tail, lost;
    ngx_http_dashstream_mailbox_t    *mb;
    ngx_http_dashstream_log_entry_t  *e;

    mb = &ngx_http_dashstream_mailbox;

    for ( ;; ) {
        tail = mb->tail;

        if (tail == __atomic_load_n(&mb->head, __ATOMIC_ACQUIRE)) {
            break;
        }

        e = &mb->entry[tail % NGX_HTTP_DASHSTREAM_LOG_SLOTS];

        ngx_log_error(e->level, log, 0, "dashstream: %*s", e->len, e->text);

        __atomic_store_n(&mb->tail, tail + 1, __ATOMIC_RELEASE);
    }

    lost = __atomic_exchange_n(&mb->lost, 0, __ATOMIC_ACQ_REL);

    if (lost) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "dashstream: %uA log lines of the module's threads "
                      "were dropped", lost);
    }
}


uint64_t
ngx_http_dashstream_monotonic_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


uint64_t
ngx_http_dashstream_realtime_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


char *
ngx_http_dashstream_cstr(ngx_str_t *s)
{
    char  *p;

    p = ngx_alloc(s->len + 1, ngx_cycle->log);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return p;
}
