/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_dashstream_stream.h"


/*
 * Runs in the consumer thread: libc, protobuf-c structures and the zone's
 * atomics only.  Label sets that come from the stream (tool names, Metrics
 * keys) are capped; what does not fit is counted, never added.
 */


static void ngx_http_dashstream_stream_tool(ngx_http_dashstream_stream_t *st,
    const Dashstream__V1__ToolExecution *te);
static void ngx_http_dashstream_stream_metrics(
    ngx_http_dashstream_stream_t *st, const Dashstream__V1__Metrics *m);
static ngx_http_dashstream_series_t *ngx_http_dashstream_stream_series(
    ngx_http_dashstream_stream_t *st, const char *scope, const char *name);
static void ngx_http_dashstream_stream_seq(ngx_http_dashstream_stream_t *st,
    const ngx_http_dashstream_decoded_t *d);
static void ngx_http_dashstream_copy_name(u_char *dst, const char *src);


static const char  *ngx_http_dashstream_msg_types[] = {
    "unspecified", "event", "state_diff", "token_chunk", "tool_execution",
    "checkpoint", "metrics", "error", "event_batch", "execution_trace"
};


static const char  *ngx_http_dashstream_events[] = {
    "graph_start", "graph_end", "node_start", "node_end", "node_error",
    "edge_traversal", "conditional_branch", "parallel_start", "parallel_end",
    "checkpoint_save", "checkpoint_load", "node_progress", "node_thinking",
    "node_substep", "node_warning", "unknown"
};


static const char  *ngx_http_dashstream_stages[] = {
    "requested", "started", "completed", "failed"
};


static const char  *ngx_http_dashstream_severities[] = {
    "unspecified", "info", "warning", "error", "critical"
};


ngx_http_dashstream_stream_t *
ngx_http_dashstream_stream_create(ngx_http_dashstream_shctx_t *sh,
    char **allow, ngx_uint_t max_series, uint32_t threads)
{
    void                          *mem;
    ngx_http_dashstream_stream_t  *st;

    st = calloc(1, sizeof(ngx_http_dashstream_stream_t));
    if (st == NULL) {
        return NULL;
    }

    mem = malloc(ngx_http_dashstream_seq_mem_size(threads));
    if (mem == NULL) {
        free(st);
        return NULL;
    }

    st->seq = ngx_http_dashstream_seq_init(mem, threads);
    st->sh = sh;
    st->allow = allow;
    st->max_series = ngx_min(max_series, NGX_HTTP_DASHSTREAM_MAX_SERIES);

    return st;
}


void
ngx_http_dashstream_stream_destroy(ngx_http_dashstream_stream_t *st)
{
    if (st) {
        free(st->seq);
        free(st);
    }
}


void
ngx_http_dashstream_stream_observe(ngx_http_dashstream_stream_t *st,
    const ngx_http_dashstream_decoded_t *d)
{
    size_t                                    i;
    ngx_http_dashstream_counters_t           *k;
    const Dashstream__V1__DashStreamMessage  *m;

    k = &st->sh->counters;
    m = d->msg;

    (void) ngx_atomic_fetch_add(&k->msg_types[d->msg_type
                                    % NGX_HTTP_DASHSTREAM_MSG_TYPES], 1);

    ngx_http_dashstream_stream_seq(st, d);

    switch (m->message_case) {

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EVENT:
        (void) ngx_atomic_fetch_add(&k->event_types[
                   ngx_http_dashstream_event_index(m->event->event_type)], 1);
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_EVENT_BATCH:
        for (i = 0; i < m->event_batch->n_events; i++) {
            (void) ngx_atomic_fetch_add(&k->event_types[
                       ngx_http_dashstream_event_index(
                           m->event_batch->events[i]->event_type)], 1);
        }

        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_TOKEN_CHUNK:
        (void) ngx_atomic_fetch_add(&k->token_chunks, 1);
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_TOOL_EXECUTION:
        ngx_http_dashstream_stream_tool(st, m->tool_execution);
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_METRICS:
        ngx_http_dashstream_stream_metrics(st, m->metrics);
        break;

    case DASHSTREAM__V1__DASH_STREAM_MESSAGE__MESSAGE_ERROR:
        (void) ngx_atomic_fetch_add(&k->errors[
                   (ngx_uint_t) m->error->severity
                   < NGX_HTTP_DASHSTREAM_SEVERITIES
                   ? (ngx_uint_t) m->error->severity : 0], 1);
        break;

    default:
        break;
    }
}


static void
ngx_http_dashstream_stream_seq(ngx_http_dashstream_stream_t *st,
    const ngx_http_dashstream_decoded_t *d)
{
    ngx_http_dashstream_seq_t       *t, before;
    ngx_http_dashstream_counters_t  *k;

    t = st->seq;

    if (t == NULL || d->thread_id_len == 0) {
        return;
    }

    before = *t;

    (void) ngx_http_dashstream_seq_observe(t, d->thread_id, d->thread_id_len,
                                           d->sequence, NULL);

    /*
     * The consumer thread is the only writer of these.  The table is this
     * consumer's own, new at each start: the zone's counters go on from
     * where the previous consumers left them.
     */

    k = &st->sh->counters;

    k->seq_gaps += t->gaps - before.gaps;
    k->seq_missing += t->missing - before.missing;
    k->seq_duplicates += t->duplicates - before.duplicates;
    k->seq_reorders += t->reorders - before.reorders;
    k->seq_evictions += t->evictions - before.evictions;
    k->seq_threads = t->threads;
}


static void
ngx_http_dashstream_stream_tool(ngx_http_dashstream_stream_t *st,
    const Dashstream__V1__ToolExecution *te)
{
    ngx_uint_t                    i, n, stage;
    const char                   *name;
    ngx_http_dashstream_shctx_t  *sh;
    ngx_http_dashstream_tool_t   *tool;

    sh = st->sh;
    stage = (ngx_uint_t) te->stage < NGX_HTTP_DASHSTREAM_TOOL_STAGES
            ? (ngx_uint_t) te->stage : 0;
    name = te->tool_name[0] ? te->tool_name : "unnamed";
    n = sh->ntools;
    tool = NULL;

    for (i = 0; i < n; i++) {
        if (ngx_strncmp(sh->tools[i].name, name,
                        NGX_HTTP_DASHSTREAM_NAME_LEN - 1) == 0)
        {
            tool = &sh->tools[i];
            break;
        }
    }

    if (tool == NULL) {

        /* the last entry takes every tool beyond the cap */

        if (n == NGX_HTTP_DASHSTREAM_MAX_TOOLS - 1) {
            name = "other";
        }

        tool = &sh->tools[ngx_min(n, NGX_HTTP_DASHSTREAM_MAX_TOOLS - 1)];

        if (n < NGX_HTTP_DASHSTREAM_MAX_TOOLS) {
            ngx_http_dashstream_copy_name(tool->name, name);
            __atomic_store_n(&sh->ntools, n + 1, __ATOMIC_RELEASE);
        }
    }

    (void) ngx_atomic_fetch_add(&tool->stage[stage], 1);

    if (te->duration_us > 0
        && (te->stage == DASHSTREAM__V1__TOOL_STAGE__TOOL_STAGE_COMPLETED
            || te->stage == DASHSTREAM__V1__TOOL_STAGE__TOOL_STAGE_FAILED))
    {
        ngx_http_dashstream_hist_observe(&sh->counters.tool_duration,
                                         ngx_http_dashstream_tool_buckets,
                                         te->duration_us / 1e6);
    }
}


static void
ngx_http_dashstream_stream_metrics(ngx_http_dashstream_stream_t *st,
    const Dashstream__V1__Metrics *m)
{
    double                               v;
    size_t                               i;
    char                               **a;
    const Dashstream__V1__MetricValue   *mv;
    ngx_http_dashstream_series_t        *s;

    for (i = 0; i < m->n_metrics; i++) {
        mv = m->metrics[i]->value;

        if (mv == NULL || m->metrics[i]->key == NULL) {
            continue;
        }

        for (a = st->allow; a && *a; a++) {
            if (ngx_strcmp(*a, m->metrics[i]->key) == 0) {
                break;
            }
        }

        if (a == NULL || *a == NULL) {
            continue;
        }

        switch (mv->value_case) {
        case DASHSTREAM__V1__METRIC_VALUE__VALUE_INT_VALUE:
            v = (double) mv->int_value;
            break;
        case DASHSTREAM__V1__METRIC_VALUE__VALUE_DOUBLE_VALUE:
            v = mv->double_value;
            break;
        case DASHSTREAM__V1__METRIC_VALUE__VALUE_BOOL_VALUE:
            v = mv->bool_value ? 1 : 0;
            break;
        default:
            continue;
        }

        s = ngx_http_dashstream_stream_series(st, m->scope, *a);
        if (s == NULL) {
            continue;
        }

        ngx_memcpy((void *) &s->value, &v, sizeof(double));
        (void) ngx_atomic_fetch_add(&s->updates, 1);
    }
}


static ngx_http_dashstream_series_t *
ngx_http_dashstream_stream_series(ngx_http_dashstream_stream_t *st,
    const char *scope, const char *name)
{
    ngx_uint_t                     i, n;
    ngx_http_dashstream_shctx_t   *sh;
    ngx_http_dashstream_series_t  *s;

    sh = st->sh;
    n = sh->nseries;
    scope = scope ? scope : "";

    for (i = 0; i < n; i++) {
        s = &sh->series[i];

        if (ngx_strncmp(s->name, name, NGX_HTTP_DASHSTREAM_NAME_LEN - 1) == 0
            && ngx_strncmp(s->scope, scope, NGX_HTTP_DASHSTREAM_NAME_LEN - 1)
               == 0)
        {
            return s;
        }
    }

    if (n >= st->max_series) {
        (void) ngx_atomic_fetch_add(&sh->counters.series_dropped, 1);
        return NULL;
    }

    s = &sh->series[n];

    ngx_http_dashstream_copy_name(s->scope, scope);
    ngx_http_dashstream_copy_name(s->name, name);
    __atomic_store_n(&sh->nseries, n + 1, __ATOMIC_RELEASE);

    return s;
}


static void
ngx_http_dashstream_copy_name(u_char *dst, const char *src)
{
    size_t  len;

    len = ngx_min(ngx_strlen(src), NGX_HTTP_DASHSTREAM_NAME_LEN - 1);

    ngx_memcpy(dst, src, len);
    dst[len] = '\0';
}


ngx_uint_t
ngx_http_dashstream_event_index(int event_type)
{
    if (event_type >= 0 && event_type <= 10) {
        return (ngx_uint_t) event_type;
    }

    if (event_type >= 80 && event_type <= 83) {
        return (ngx_uint_t) event_type - 80 + 11;
    }

    return NGX_HTTP_DASHSTREAM_EVENT_TYPES - 1;
}


const char *
ngx_http_dashstream_event_name(ngx_uint_t index)
{
    return ngx_http_dashstream_events[index];
}


const char *
ngx_http_dashstream_msg_type_name(ngx_uint_t type)
{
    return ngx_http_dashstream_msg_types[type];
}


const char *
ngx_http_dashstream_tool_stage_name(ngx_uint_t stage)
{
    return ngx_http_dashstream_stages[stage];
}


const char *
ngx_http_dashstream_severity_name(ngx_uint_t severity)
{
    return ngx_http_dashstream_severities[severity];
}
