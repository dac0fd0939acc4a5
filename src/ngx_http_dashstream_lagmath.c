/*
 * Copyright (C) ngx_dashstream authors
 */


#include <stddef.h>

#include "ngx_http_dashstream_lagmath.h"


/*
 * The position the lag is measured from, in order of trust:
 *
 *   the consumer's own position, once it has processed a message of the
 *   partition since the assignment (or, in broadcast mode, the position it
 *   resumes from);
 *   the group's committed offset, which the consumer starts from;
 *   with no commit, the reset point: the end ("latest": no lag) or the
 *   start of the partition ("earliest": all of it is lag).
 *
 * The offset age is the age of the newest message the consumer processed
 * while it is behind, or, if it has processed none since the assignment,
 * the time since the assignment; it is 0 when there is no lag.  A stalled
 * consumer therefore shows both lag and age growing.
 */

void
ngx_http_dashstream_lag_of(const ngx_http_dashstream_lag_in_t *in,
    uint64_t now_ms, ngx_http_dashstream_lag_out_t *out)
{
    int64_t   pos, end;
    uint64_t  since;

    end = in->high_watermark ? (int64_t) in->high_watermark - 1 : -1;

    if (in->position && (in->position_live || in->trust_position)) {
        pos = (int64_t) in->position;

    } else if (in->committed) {
        pos = (int64_t) in->committed - 1;

    } else if (end >= 0) {
        pos = in->reset_latest ? end : 0;

    } else {
        pos = -1;
    }

    out->position = pos;
    out->high_watermark = end;
    out->age = 0;

    if (end < 0 || pos < 0) {
        out->lag = -1;
        return;
    }

    out->lag = end > pos ? end - pos : 0;

    if (out->lag == 0) {
        return;
    }

    since = (in->position_live && in->last_ts_ms) ? in->last_ts_ms
                                                  : in->assigned_ms;

    out->age = (since && now_ms > since) ? (now_ms - since) / 1000.0 : 0;
}
