/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_dashstream_module.h"


#define NGX_HTTP_DASHSTREAM_ZONE_MAGIC   0x64736873  /* "dshs" */

/* bumped whenever ngx_http_dashstream_shctx_t changes shape */
#define NGX_HTTP_DASHSTREAM_ZONE_LAYOUT  5

/* slab pages kept back for small allocations after the ring */
#define NGX_HTTP_DASHSTREAM_ZONE_RESERVE  32


static ngx_int_t ngx_http_dashstream_zone_reuse(ngx_shm_zone_t *shm_zone,
    ngx_http_dashstream_zone_ctx_t *octx);
static ngx_int_t ngx_http_dashstream_zone_fresh(ngx_shm_zone_t *shm_zone);
static ngx_int_t ngx_http_dashstream_zone_ring(ngx_shm_zone_t *shm_zone);
static ngx_http_dashstream_shctx_t *ngx_http_dashstream_zone_previous(
    ngx_shm_zone_t *shm_zone, size_t *size);
static ngx_int_t ngx_http_dashstream_zone_compatible(ngx_shm_zone_t *shm_zone,
    ngx_http_dashstream_shctx_t *sh);
static void ngx_http_dashstream_zone_carry(ngx_http_dashstream_shctx_t *sh,
    ngx_http_dashstream_shctx_t *osh);


/* each list ends with 0 */

const double  ngx_http_dashstream_lag_poll_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 0
};

const double  ngx_http_dashstream_e2e_buckets[] = {
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 0
};

const double  ngx_http_dashstream_tool_buckets[] = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 0
};


ngx_int_t
ngx_http_dashstream_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_dashstream_zone_ctx_t  *octx = data;

    ngx_http_dashstream_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        return ngx_http_dashstream_zone_reuse(shm_zone, octx);
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;

        return ngx_http_dashstream_zone_compatible(shm_zone, ctx->sh);
    }

    return ngx_http_dashstream_zone_fresh(shm_zone);
}


static ngx_int_t
ngx_http_dashstream_zone_reuse(ngx_shm_zone_t *shm_zone,
    ngx_http_dashstream_zone_ctx_t *octx)
{
    ngx_http_dashstream_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (ngx_http_dashstream_zone_compatible(shm_zone, octx->sh) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->sh = octx->sh;
    ctx->shpool = octx->shpool;

    if (ctx->records != octx->records) {
        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                      "dashstream_zone \"%V\": the records count changed "
                      "from %ui to %ui, which takes effect only when the "
                      "zone is made anew (change its size or name)",
                      &shm_zone->shm.name, octx->records, ctx->records);
        ctx->records = octx->records;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_dashstream_zone_compatible(ngx_shm_zone_t *shm_zone,
    ngx_http_dashstream_shctx_t *sh)
{
    if (sh->magic == NGX_HTTP_DASHSTREAM_ZONE_MAGIC
        && sh->layout == NGX_HTTP_DASHSTREAM_ZONE_LAYOUT)
    {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                  "dashstream_zone \"%V\" was made by an incompatible "
                  "version of the module; restart nginx or rename the zone",
                  &shm_zone->shm.name);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_dashstream_zone_fresh(ngx_shm_zone_t *shm_zone)
{
    size_t                           len, osize;
    ngx_http_dashstream_shctx_t     *sh, *osh;
    ngx_http_dashstream_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    sh = ngx_slab_calloc(ctx->shpool, sizeof(ngx_http_dashstream_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ctx->sh = sh;
    ctx->shpool->data = sh;

    sh->magic = NGX_HTTP_DASHSTREAM_ZONE_MAGIC;
    sh->layout = NGX_HTTP_DASHSTREAM_ZONE_LAYOUT;

    len = sizeof(" in dashstream_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in dashstream_zone \"%V\"%Z",
                &shm_zone->shm.name);

    ctx->shpool->log_nomem = 0;

    /*
     * A zone whose size changed is made anew by ngx_init_cycle(); carry
     * everything but the ring's records over from the zone of the running
     * cycle (counters must not go backwards), and say so.
     */

    osh = ngx_http_dashstream_zone_previous(shm_zone, &osize);

    if (osh) {
        ngx_http_dashstream_zone_carry(sh, osh);

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "dashstream_zone \"%V\" resized from %uz to %uz: "
                      "the ring starts empty; counters, stream series, "
                      "the topic and its partition offsets are carried over",
                      &shm_zone->shm.name, osize, shm_zone->shm.size);
    }

    return ngx_http_dashstream_zone_ring(shm_zone);
}


/*
 * The old zone's writer may still be running: every value is copied once,
 * as it is at this moment.  Its ring's overwrites go into the base the new
 * ring's own count is added to.
 */

static void
ngx_http_dashstream_zone_carry(ngx_http_dashstream_shctx_t *sh,
    ngx_http_dashstream_shctx_t *osh)
{
    ngx_uint_t                        i;
    ngx_http_dashstream_part_t       *part, *opart;

    ngx_memcpy(&sh->counters, &osh->counters, sizeof(sh->counters));
    sh->counters.ring_overwrites_base = ngx_http_dashstream_ring_overwrites(osh);

    for (i = 0; i < NGX_HTTP_DASHSTREAM_MAX_PARTITIONS; i++) {
        part = &sh->part[i];
        opart = &osh->part[i];

        part->last_written = opart->last_written;
        part->position = opart->position;
        part->messages = opart->messages;
        part->dlq_held = opart->dlq_held;
    }

    ngx_memcpy(sh->topic, osh->topic, sizeof(sh->topic));
    sh->topic[NGX_HTTP_DASHSTREAM_TOPIC_LEN - 1] = '\0';
    sh->topic_generation = osh->topic_generation;

    sh->ntools = ngx_min(osh->ntools, NGX_HTTP_DASHSTREAM_MAX_TOOLS);
    ngx_memcpy(sh->tools, osh->tools, sizeof(sh->tools));
    sh->nseries = ngx_min(osh->nseries, NGX_HTTP_DASHSTREAM_MAX_SERIES);
    ngx_memcpy(sh->series, osh->series, sizeof(sh->series));
}


uint64_t
ngx_http_dashstream_ring_overwrites(ngx_http_dashstream_shctx_t *sh)
{
    ngx_http_dashstream_ring_stats_t  st;

    if (sh->ring == NULL) {
        return sh->counters.ring_overwrites_base;
    }

    ngx_http_dashstream_ring_stats(sh->ring, &st);

    return sh->counters.ring_overwrites_base + st.overwrites;
}


static ngx_int_t
ngx_http_dashstream_zone_ring(ngx_shm_zone_t *shm_zone)
{
    void                            *mem;
    size_t                           size;
    uint32_t                         nslots;
    ngx_uint_t                       pages;
    ngx_http_dashstream_zone_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (ctx->shpool->pfree <= NGX_HTTP_DASHSTREAM_ZONE_RESERVE + 16) {
        goto too_small;
    }

    pages = ctx->shpool->pfree - NGX_HTTP_DASHSTREAM_ZONE_RESERVE;
    size = pages << ngx_pagesize_shift;

    /* the ring indexes with a mask: round the slot count down to 2^n */

    nslots = 1;
    while ((ngx_uint_t) nslots * 2 <= ctx->records && nslots < 0x40000000) {
        nslots *= 2;
    }

    if (ngx_http_dashstream_ring_mem_size(nslots, size / 2) > size) {
        goto too_small;
    }

    mem = ngx_slab_alloc(ctx->shpool, size);
    if (mem == NULL) {
        goto too_small;
    }

    ctx->sh->ring = ngx_http_dashstream_ring_init(mem, size, nslots);
    if (ctx->sh->ring == NULL) {
        goto too_small;
    }

    return NGX_OK;

too_small:

    ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                  "dashstream_zone \"%V\" of %uz bytes is too small for "
                  "%ui records in %s:%ui", &shm_zone->shm.name,
                  shm_zone->shm.size, ctx->records, ctx->file, ctx->line);

    return NGX_ERROR;
}


static ngx_http_dashstream_shctx_t *
ngx_http_dashstream_zone_previous(ngx_shm_zone_t *shm_zone, size_t *size)
{
    ngx_uint_t                       i;
    ngx_list_part_t                 *part;
    ngx_shm_zone_t                  *oshm_zone;
    ngx_http_dashstream_zone_ctx_t  *octx;

    /* during ngx_init_cycle() ngx_cycle is still the running cycle */

    if (ngx_cycle == NULL || ngx_cycle->shared_memory.part.elts == NULL) {
        return NULL;
    }

    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    oshm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            oshm_zone = part->elts;
            i = 0;
        }

        if (oshm_zone[i].tag != shm_zone->tag
            || oshm_zone[i].shm.name.len != shm_zone->shm.name.len
            || ngx_strncmp(oshm_zone[i].shm.name.data, shm_zone->shm.name.data,
                           shm_zone->shm.name.len) != 0)
        {
            continue;
        }

        octx = oshm_zone[i].data;

        if (octx == NULL || octx->sh == NULL
            || octx->sh->magic != NGX_HTTP_DASHSTREAM_ZONE_MAGIC
            || octx->sh->layout != NGX_HTTP_DASHSTREAM_ZONE_LAYOUT)
        {
            return NULL;
        }

        *size = oshm_zone[i].shm.size;

        return octx->sh;
    }
}


ngx_http_dashstream_shctx_t *
ngx_http_dashstream_shctx(ngx_cycle_t *cycle)
{
    ngx_http_dashstream_zone_ctx_t   *ctx;
    ngx_http_dashstream_main_conf_t  *dmcf;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_dashstream_module);
    if (dmcf == NULL || dmcf->shm_zone == NULL) {
        return NULL;
    }

    ctx = dmcf->shm_zone->data;

    return ctx->sh;
}


void
ngx_http_dashstream_hist_observe(ngx_http_dashstream_hist_t *h,
    const double *bounds, double v)
{
    ngx_uint_t  i;

    for (i = 0; bounds[i] != 0; i++) {
        if (v <= bounds[i]) {
            (void) ngx_atomic_fetch_add(&h->bucket[i], 1);
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&h->sum,
                                (ngx_atomic_int_t) (v < 0 ? 0 : v * 1e6));
    (void) ngx_atomic_fetch_add(&h->count, 1);
}


/*
 * A seqlock: the one writer makes gen odd, copies, makes it even; a reader
 * retries while gen is odd or changed under it.
 */

void
ngx_http_dashstream_note_set(ngx_http_dashstream_note_t *note, uint64_t ms,
    const char *text)
{
    size_t  len;

    __atomic_fetch_add(&note->gen, 1, __ATOMIC_ACQ_REL);

    len = ngx_min(ngx_strlen(text), NGX_HTTP_DASHSTREAM_ERROR_LEN - 1);

    ngx_memcpy(note->text, text, len);
    note->text[len] = '\0';
    note->ms = ms;

    __atomic_fetch_add(&note->gen, 1, __ATOMIC_RELEASE);
}


size_t
ngx_http_dashstream_note_get(ngx_http_dashstream_note_t *note, u_char *buf,
    size_t size, uint64_t *ms)
{
    size_t             len;
    ngx_uint_t         tries;
    ngx_atomic_uint_t  gen;

    for (tries = 0; tries < 100; tries++) {
        gen = __atomic_load_n(&note->gen, __ATOMIC_ACQUIRE);

        if (gen & 1) {
            continue;
        }

        len = ngx_min(ngx_strnlen(note->text, NGX_HTTP_DASHSTREAM_ERROR_LEN),
                      size);
        ngx_memcpy(buf, note->text, len);
        *ms = note->ms;

        __atomic_thread_fence(__ATOMIC_ACQUIRE);

        if (__atomic_load_n(&note->gen, __ATOMIC_RELAXED) == gen) {
            return len;
        }
    }

    *ms = 0;

    return 0;
}


/*
 * A slot per worker process for the subscriber counts of the metrics and
 * status locations.  A worker that is killed never gives its slot back:
 * whoever registers takes back every slot whose process is gone, and the
 * readers skip such slots until then.
 */

ngx_int_t
ngx_http_dashstream_worker_register(ngx_http_dashstream_shctx_t *sh,
    ngx_pid_t pid)
{
    ngx_int_t           slot;
    ngx_uint_t          i;
    ngx_atomic_uint_t   old;

    slot = NGX_ERROR;

    for (i = 0; i < NGX_HTTP_DASHSTREAM_MAX_WORKERS; i++) {
        old = sh->workers[i].pid;

        if (old != 0 && ngx_http_dashstream_worker_alive(sh, i)) {
            continue;
        }

        if (slot == NGX_ERROR) {
            if (ngx_atomic_cmp_set(&sh->workers[i].pid, old,
                                   (ngx_atomic_uint_t) pid))
            {
                sh->workers[i].subscribers = 0;
                slot = (ngx_int_t) i;
            }

            continue;
        }

        if (old != 0) {
            sh->workers[i].subscribers = 0;
            (void) ngx_atomic_cmp_set(&sh->workers[i].pid, old, 0);
        }
    }

    return slot;
}


void
ngx_http_dashstream_worker_unregister(ngx_http_dashstream_shctx_t *sh,
    ngx_int_t slot)
{
    if (slot >= 0) {
        sh->workers[slot].subscribers = 0;
        sh->workers[slot].pid = 0;
    }
}


ngx_uint_t
ngx_http_dashstream_worker_alive(ngx_http_dashstream_shctx_t *sh,
    ngx_uint_t slot)
{
    ngx_atomic_uint_t  pid;

    pid = sh->workers[slot].pid;

    if (pid == 0) {
        return 0;
    }

    return kill((pid_t) pid, 0) == 0 || ngx_errno != NGX_ESRCH;
}


ngx_atomic_uint_t
ngx_http_dashstream_subscribers(ngx_http_dashstream_shctx_t *sh)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  n;

    n = 0;

    for (i = 0; i < NGX_HTTP_DASHSTREAM_MAX_WORKERS; i++) {
        if (ngx_http_dashstream_worker_alive(sh, i)) {
            n += sh->workers[i].subscribers;
        }
    }

    return n;
}
