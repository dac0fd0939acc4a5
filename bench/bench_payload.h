/*
 * Copyright (C) ngx_dashstream authors
 */


#ifndef _BENCH_PAYLOAD_H_INCLUDED_
#define _BENCH_PAYLOAD_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/*
 * The benchmark's messages: valid DashStream values (0x00 + a protobuf
 * DashStreamMessage holding an Event) of an exact size.  The Event's header
 * carries the producer's clock (timestamp_us), a per-stream sequence and
 * the stream in thread_id ("bench-p<stream>"); an attribute "pad" fills the
 * value up to the size with bytes derived from the sequence, so a reader
 * can check every byte it was given.
 */

#define BENCH_PAYLOAD_MIN        64
#define BENCH_PAYLOAD_MAX        (1024 * 1024)
#define BENCH_PAYLOAD_STREAMS    256


enum {
    BENCH_PAYLOAD_OK = 0,
    BENCH_PAYLOAD_FRAMING,          /* not 0x00 + protobuf */
    BENCH_PAYLOAD_TRUNCATED,        /* a field runs past the end */
    BENCH_PAYLOAD_NO_HEADER,        /* no Event with a header */
    BENCH_PAYLOAD_THREAD,           /* thread_id not "bench-p<n>" */
    BENCH_PAYLOAD_PAD,              /* pad bytes differ from the pattern */
    BENCH_PAYLOAD_NERRORS
};


typedef struct {
    int64_t      timestamp_us;
    uint64_t     sequence;
    uint32_t     stream;
    size_t       pad_len;
} bench_payload_t;


/* writes a message of exactly size bytes into buf; 0, or -1 if impossible */
int bench_payload_build(unsigned char *buf, size_t size, uint32_t stream,
    uint64_t sequence, int64_t timestamp_us);

/* BENCH_PAYLOAD_OK and the fields, or the first problem found */
int bench_payload_check(const unsigned char *p, size_t n,
    bench_payload_t *out);

const char *bench_payload_error_name(int rc);

int64_t bench_realtime_us(void);


#endif /* _BENCH_PAYLOAD_H_INCLUDED_ */
