/*
 * Copyright (C) ngx_dashstream authors
 */


#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench_payload.h"


/*
 * Wire layout (protobuf tags in hex):
 *
 *   00                               framing: plain protobuf
 *   0a len  DashStreamMessage.event
 *     0a len  Event.header
 *       0a len  message_id            filler, 0..20 bytes, to hit the size
 *       10 varint timestamp_us
 *       1a 05 "bench"                 tenant_id
 *       22 len "bench-p<stream>"      thread_id
 *       28 varint sequence
 *       30 01                         type EVENT
 *     10 02   event_type NODE_START
 *     22 len  attributes entry: 0a 03 "pad" 12 len <pad bytes>
 */


#define BENCH_TENANT  "bench"


static size_t bench_varint_len(uint64_t v);
static unsigned char *bench_varint(unsigned char *p, uint64_t v);
static int bench_read_varint(const unsigned char **pp,
    const unsigned char *end, uint64_t *v);
static int bench_field(const unsigned char **pp, const unsigned char *end,
    uint32_t *tag, uint64_t *v, const unsigned char **data);
static int bench_check_header(const unsigned char *p,
    const unsigned char *end, bench_payload_t *out);
static int bench_check_attr(const unsigned char *p, const unsigned char *end,
    bench_payload_t *out, int *found);
static void bench_pad_init(void);
static unsigned char bench_pad_seed(uint64_t sequence);


/*
 * pad[i] = seed(sequence) + base[i] (mod 256).  The first
 * BENCH_PAD_ROW bytes of the 256 possible pads are kept in a table, so
 * that checking a pad is mostly a memcmp().
 */
#define BENCH_PAD_ROW  4096

static unsigned char  bench_pad_rows[256][BENCH_PAD_ROW];
static int            bench_pad_ready;


static const char  *bench_payload_errors[] = {
    "ok", "framing", "truncated", "no_header", "thread", "pad"
};


int64_t
bench_realtime_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


const char *
bench_payload_error_name(int rc)
{
    if (rc < 0 || rc >= BENCH_PAYLOAD_NERRORS) {
        return "unknown";
    }

    return bench_payload_errors[rc];
}


int
bench_payload_build(unsigned char *buf, size_t size, uint32_t stream,
    uint64_t sequence, int64_t timestamp_us)
{
    int             mid;
    char            thread[32];
    size_t          tlen, hdr, ev, entry, total, pad, i;
    unsigned char  *p, seed;

    if (size < BENCH_PAYLOAD_MIN || size > BENCH_PAYLOAD_MAX) {
        return -1;
    }

    bench_pad_init();

    tlen = (size_t) snprintf(thread, sizeof(thread), "bench-p%u", stream);

    /*
     * Largest pad first; message_id (absent, or 0..20 bytes) absorbs the
     * bytes that varint length steps would otherwise make unreachable.
     */

    /* the fixed part takes at least 40 bytes */

    for (pad = size - 40; pad > 0; pad--) {
        for (mid = -1; mid <= 20; mid++) {
            hdr = (mid < 0 ? 0 : 2 + (size_t) mid)
                  + 1 + bench_varint_len((uint64_t) timestamp_us)
                  + 2 + sizeof(BENCH_TENANT) - 1
                  + 2 + tlen
                  + 1 + bench_varint_len(sequence)
                  + 2;
            entry = 5 + 1 + bench_varint_len(pad) + pad;
            ev = 1 + bench_varint_len(hdr) + hdr
                 + 2
                 + 1 + bench_varint_len(entry) + entry;
            total = 1 + 1 + bench_varint_len(ev) + ev;

            if (total == size) {
                goto found;
            }
        }
    }

    return -1;

found:

    p = buf;
    *p++ = 0x00;
    *p++ = 0x0a;
    p = bench_varint(p, ev);

    *p++ = 0x0a;
    p = bench_varint(p, hdr);

    if (mid >= 0) {
        *p++ = 0x0a;
        *p++ = (unsigned char) mid;

        for (i = 0; i < (size_t) mid; i++) {
            *p++ = (unsigned char) (sequence >> ((i & 7) * 8));
        }
    }

    *p++ = 0x10;
    p = bench_varint(p, (uint64_t) timestamp_us);
    *p++ = 0x1a;
    *p++ = sizeof(BENCH_TENANT) - 1;
    memcpy(p, BENCH_TENANT, sizeof(BENCH_TENANT) - 1);
    p += sizeof(BENCH_TENANT) - 1;
    *p++ = 0x22;
    *p++ = (unsigned char) tlen;
    memcpy(p, thread, tlen);
    p += tlen;
    *p++ = 0x28;
    p = bench_varint(p, sequence);
    *p++ = 0x30;
    *p++ = 0x01;

    *p++ = 0x10;
    *p++ = 0x02;

    *p++ = 0x22;
    p = bench_varint(p, entry);
    *p++ = 0x0a;
    *p++ = 0x03;
    memcpy(p, "pad", 3);
    p += 3;
    *p++ = 0x12;
    p = bench_varint(p, pad);

    seed = bench_pad_seed(sequence);

    for (i = 0; i < pad; i++) {
        *p++ = (unsigned char) (seed + bench_pad_rows[0][i % BENCH_PAD_ROW]
                                + (i / BENCH_PAD_ROW) * 16);
    }

    return (size_t) (p - buf) == size ? 0 : -1;
}


int
bench_payload_check(const unsigned char *p, size_t n, bench_payload_t *out)
{
    int                   rc, have_header, have_pad;
    uint32_t              tag;
    uint64_t              v;
    const unsigned char  *end, *data, *ev_end;

    memset(out, 0, sizeof(bench_payload_t));

    if (n < 2 || p[0] != 0x00) {
        return BENCH_PAYLOAD_FRAMING;
    }

    end = p + n;
    p++;

    /* DashStreamMessage: field 1 (Event), and nothing else of ours */

    rc = bench_field(&p, end, &tag, &v, &data);
    if (rc != BENCH_PAYLOAD_OK) {
        return rc;
    }

    if (tag != 0x0a || p != end) {
        return BENCH_PAYLOAD_NO_HEADER;
    }

    p = data;
    ev_end = data + v;
    have_header = 0;
    have_pad = 0;

    while (p < ev_end) {
        rc = bench_field(&p, ev_end, &tag, &v, &data);
        if (rc != BENCH_PAYLOAD_OK) {
            return rc;
        }

        if (tag == 0x0a) {
            rc = bench_check_header(data, data + v, out);
            if (rc != BENCH_PAYLOAD_OK) {
                return rc;
            }

            have_header = 1;

        } else if (tag == 0x22) {
            if (!have_header) {
                return BENCH_PAYLOAD_NO_HEADER;
            }

            rc = bench_check_attr(data, data + v, out, &have_pad);
            if (rc != BENCH_PAYLOAD_OK) {
                return rc;
            }
        }
    }

    if (!have_header) {
        return BENCH_PAYLOAD_NO_HEADER;
    }

    return have_pad ? BENCH_PAYLOAD_OK : BENCH_PAYLOAD_PAD;
}


static int
bench_check_header(const unsigned char *p, const unsigned char *end,
    bench_payload_t *out)
{
    int                   rc, have_thread;
    uint32_t              tag, stream;
    uint64_t              v;
    const unsigned char  *data, *q;

    have_thread = 0;

    while (p < end) {
        rc = bench_field(&p, end, &tag, &v, &data);
        if (rc != BENCH_PAYLOAD_OK) {
            return rc;
        }

        switch (tag) {

        case 0x10:
            out->timestamp_us = (int64_t) v;
            break;

        case 0x28:
            out->sequence = v;
            break;

        case 0x22:
            if (v < 8 || v > 16 || memcmp(data, "bench-p", 7) != 0) {
                return BENCH_PAYLOAD_THREAD;
            }

            stream = 0;

            for (q = data + 7; q < data + v; q++) {
                if (*q < '0' || *q > '9') {
                    return BENCH_PAYLOAD_THREAD;
                }

                stream = stream * 10 + (*q - '0');
            }

            if (stream >= BENCH_PAYLOAD_STREAMS) {
                return BENCH_PAYLOAD_THREAD;
            }

            out->stream = stream;
            have_thread = 1;
            break;

        default:
            break;
        }
    }

    return have_thread ? BENCH_PAYLOAD_OK : BENCH_PAYLOAD_THREAD;
}


static int
bench_check_attr(const unsigned char *p, const unsigned char *end,
    bench_payload_t *out, int *found)
{
    int                   rc;
    size_t                i;
    uint32_t              tag;
    uint64_t              v;
    unsigned char         seed;
    const unsigned char  *data, *key, *val;
    size_t                key_len, val_len;

    key = NULL;
    val = NULL;
    key_len = 0;
    val_len = 0;

    while (p < end) {
        rc = bench_field(&p, end, &tag, &v, &data);
        if (rc != BENCH_PAYLOAD_OK) {
            return rc;
        }

        if (tag == 0x0a) {
            key = data;
            key_len = v;

        } else if (tag == 0x12) {
            val = data;
            val_len = v;
        }
    }

    if (key_len != 3 || memcmp(key, "pad", 3) != 0) {
        return BENCH_PAYLOAD_OK;
    }

    if (val_len > BENCH_PAYLOAD_MAX) {
        return BENCH_PAYLOAD_PAD;
    }

    bench_pad_init();
    seed = bench_pad_seed(out->sequence);

    for (i = 0; i < val_len; i += BENCH_PAD_ROW) {
        if (memcmp(val + i, bench_pad_rows[(unsigned char) (seed + (i
                                               / BENCH_PAD_ROW) * 16)],
                   val_len - i < BENCH_PAD_ROW ? val_len - i : BENCH_PAD_ROW)
            != 0)
        {
            return BENCH_PAYLOAD_PAD;
        }
    }

    out->pad_len = val_len;
    *found = 1;

    return BENCH_PAYLOAD_OK;
}


/* one field: tag, and the varint value or the length and start of data */

static int
bench_field(const unsigned char **pp, const unsigned char *end,
    uint32_t *tag, uint64_t *v, const unsigned char **data)
{
    uint64_t  t;

    if (bench_read_varint(pp, end, &t) != 0 || t > 0xffffffff) {
        return BENCH_PAYLOAD_TRUNCATED;
    }

    *tag = (uint32_t) t;
    *data = NULL;

    switch (t & 7) {

    case 0:
        return bench_read_varint(pp, end, v) ? BENCH_PAYLOAD_TRUNCATED
                                             : BENCH_PAYLOAD_OK;

    case 2:
        if (bench_read_varint(pp, end, v) != 0
            || *v > (uint64_t) (end - *pp))
        {
            return BENCH_PAYLOAD_TRUNCATED;
        }

        *data = *pp;
        *pp += *v;
        return BENCH_PAYLOAD_OK;

    case 1:
    case 5:
        *v = (t & 7) == 1 ? 8 : 4;

        if (*v > (uint64_t) (end - *pp)) {
            return BENCH_PAYLOAD_TRUNCATED;
        }

        *pp += *v;
        return BENCH_PAYLOAD_OK;

    default:
        return BENCH_PAYLOAD_TRUNCATED;
    }
}


static int
bench_read_varint(const unsigned char **pp, const unsigned char *end,
    uint64_t *v)
{
    unsigned              shift;
    const unsigned char  *p;

    p = *pp;
    *v = 0;

    for (shift = 0; shift < 64; shift += 7) {
        if (p >= end) {
            return -1;
        }

        *v |= (uint64_t) (*p & 0x7f) << shift;

        if ((*p++ & 0x80) == 0) {
            *pp = p;
            return 0;
        }
    }

    return -1;
}


static size_t
bench_varint_len(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }

    return n;
}


static unsigned char *
bench_varint(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char) (v | 0x80);
        v >>= 7;
    }

    *p++ = (unsigned char) v;

    return p;
}


static void
bench_pad_init(void)
{
    size_t  s, i;

    if (__atomic_load_n(&bench_pad_ready, __ATOMIC_ACQUIRE)) {
        return;
    }

    /* threads racing here write the same bytes */

    for (s = 0; s < 256; s++) {
        for (i = 0; i < BENCH_PAD_ROW; i++) {
            bench_pad_rows[s][i] = (unsigned char) (s + i * 151 + (i >> 8));
        }
    }

    __atomic_store_n(&bench_pad_ready, 1, __ATOMIC_RELEASE);
}


static unsigned char
bench_pad_seed(uint64_t sequence)
{
    return (unsigned char) ((uint32_t) (sequence * 2654435761u) >> 13);
}
