/*
 * Copyright (C) ngx_dashstream authors
 */


/*
 * A websocket load client: N subscribers on a few epoll threads, each
 * frame parsed and every counted message verified.
 *
 *   loadclient -u ws://127.0.0.1:8080/ws -n 1000 [-m dashflow|raw|nchan]
 *              [-R] [-e size] [-S sources] [-T threads] [-C inflight]
 *              [-w warmup -d seconds | -i]
 *
 * Modes: dashflow (a text cursor frame, then the binary frame with the
 * Kafka value), raw (binary frames only) and nchan (each message one
 * websocket message, text or binary).  -R sends a DashFlow resume
 * {"type":"resume","from":"latest"} after the handshake.
 *
 * A message counts only when it passes every check: its payload is a
 * bench_payload value whose pad bytes match its sequence (and is -e bytes
 * long), its sequence follows the previous one of its stream on this
 * connection (gaps, duplicates and reorders are counted), and in DashFlow
 * mode it follows exactly one cursor whose partition is the message's
 * stream and whose offset grows per partition.  Latency is the wall clock
 * at the moment the frame is parsed minus the Header.timestamp_us the
 * producer wrote (same machine, same clock).
 *
 * -S k binds connections to 127.0.0.1 ... 127.0.0.k in turn, so 10,000
 * connections (and the TIME_WAIT they leave) do not exhaust one source
 * address's ephemeral ports.
 *
 * Without -i it connects, waits -w seconds, measures -d seconds, prints one
 * JSON line and exits.  With -i it prints "ready ..." once every connection
 * is up (or failed) and takes commands on stdin: "measure SECONDS" (prints
 * a JSON line) and "quit".
 */


#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_payload.h"


#define LC_MAX_THREADS     8
#define LC_MAX_PARTITIONS  BENCH_PAYLOAD_STREAMS
#define LC_READ_BUF        (256 * 1024)
#define LC_HIST            2432
#define LC_WS_KEY          "dGhlIHNhbXBsZSBub25jZQ=="
#define LC_WS_ACCEPT       "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define LC_MODE_DASHFLOW   0
#define LC_MODE_RAW        1
#define LC_MODE_NCHAN      2

#define LC_IDLE            0
#define LC_CONNECTING      1
#define LC_HANDSHAKE       2
#define LC_OPEN            3
#define LC_CLOSED          4


enum {
    LC_ERR_CONNECT = 0,     /* connect() or the handshake failed */
    LC_ERR_PROTOCOL,        /* a frame no server should send */
    LC_ERR_UNPAIRED,        /* DashFlow: binary without cursor, 2 cursors */
    LC_ERR_CURSOR,          /* unparsable cursor, or offset not growing */
    LC_ERR_CURSOR_PARTITION,/* cursor partition is not the message's */
    LC_ERR_PAYLOAD,         /* bench_payload_check() failed */
    LC_ERR_SIZE,            /* not the -e size */
    LC_ERR_SEQ_GAP,         /* sequence jumped forward */
    LC_ERR_SEQ_BACK,        /* duplicate or reordered sequence */
    LC_ERR_CLOSED,          /* the server closed the connection */
    LC_ERR_N
};


static const char  *lc_err_names[LC_ERR_N] = {
    "connect", "protocol", "unpaired", "cursor", "cursor_partition",
    "payload", "size", "seq_gap", "seq_back", "closed"
};


typedef struct {
    uint64_t                 msgs;
    uint64_t                 bytes;
    uint64_t                 cursors;
    uint64_t                 controls;
    uint64_t                 gap_notices;
    uint64_t                 lost;
    uint64_t                 err[LC_ERR_N];
    uint64_t                 payload_err[BENCH_PAYLOAD_NERRORS];
    int64_t                  lat_max;
    uint64_t                 hist[LC_HIST];
} lc_stats_t;


typedef struct lc_thread_s  lc_thread_t;


typedef struct {
    int                      fd;
    uint8_t                  state;
    uint8_t                  want_binary;
    uint16_t                 cursor_partition;
    uint32_t                 src;
    uint32_t                 carry_len;
    uint32_t                 pend_len;
    unsigned char           *carry;
    unsigned char           *pend;
    uint64_t                *last_seq;     /* per stream */
    int64_t                 *last_offset;  /* per partition, DashFlow */
    lc_thread_t             *th;
} lc_conn_t;


typedef struct lc_s  lc_t;


struct lc_thread_s {
    pthread_t                tid;
    lc_t                    *lc;
    int                      ep;
    unsigned                 first;        /* connections first..last-1 */
    unsigned                 last;
    unsigned                 next;         /* next to start connecting */
    unsigned                 inflight;
    unsigned                 inflight_max;
    unsigned char           *rbuf;
    lc_stats_t               st;
    lc_stats_t               snap;
    unsigned                 gen_seen;
    unsigned                 open;
    unsigned                 failed;
    unsigned                 closed;
};


struct lc_s {
    /* options */
    char                     host[64];
    int                      port;
    char                     path[512];
    unsigned                 n;
    int                      mode;
    int                      resume;
    size_t                   expect;
    unsigned                 sources;
    unsigned                 nthreads;
    unsigned                 inflight;
    double                   warmup;
    double                   duration;
    int                      interactive;
    double                   connect_timeout;

    struct sockaddr_in       dst;
    lc_conn_t               *conns;
    lc_thread_t              th[LC_MAX_THREADS];

    /* main -> threads: reset (even) or snapshot (odd) requests */
    unsigned                 gen;
    unsigned                 stop;
};


static int lc_options(lc_t *lc, int argc, char **argv);
static void lc_raise_nofile(unsigned n);
static void *lc_thread(void *data);
static void lc_connect_more(lc_t *lc, lc_thread_t *th);
static void lc_conn_event(lc_t *lc, lc_conn_t *c, uint32_t events);
static void lc_conn_fail(lc_t *lc, lc_conn_t *c, int err);
static void lc_conn_close(lc_conn_t *c);
static int lc_send(lc_t *lc, lc_conn_t *c, const unsigned char *p, size_t n);
static int lc_send_frame(lc_t *lc, lc_conn_t *c, unsigned opcode,
    const unsigned char *p, size_t n);
static int lc_read(lc_t *lc, lc_conn_t *c);
static ssize_t lc_handshake(lc_t *lc, lc_conn_t *c, unsigned char *p,
    size_t n);
static ssize_t lc_frames(lc_t *lc, lc_conn_t *c, unsigned char *p, size_t n);
static void lc_text(lc_t *lc, lc_conn_t *c, unsigned char *p, size_t n);
static void lc_message(lc_t *lc, lc_conn_t *c, unsigned char *p, size_t n);
static int lc_hist_index(uint64_t v);
static uint64_t lc_hist_value(int i);
static double lc_now(void);
static void lc_sync(lc_t *lc, int snapshot);
static void lc_report(lc_t *lc, double seconds, double cpu);
static double lc_cpu(void);
static double lc_percentile(uint64_t *hist, uint64_t total, double q);
static void lc_wait_ready(lc_t *lc);
static void lc_interactive(lc_t *lc);
static void lc_measure(lc_t *lc, double seconds);


int
main(int argc, char **argv)
{
    unsigned  i, per;
    lc_t     *lc;

    lc = calloc(1, sizeof(lc_t));
    if (lc == NULL) {
        return 1;
    }

    if (lc_options(lc, argc, argv) != 0) {
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    lc_raise_nofile(lc->n + 64);

    lc->conns = calloc(lc->n, sizeof(lc_conn_t));
    if (lc->conns == NULL) {
        return 1;
    }

    per = (lc->n + lc->nthreads - 1) / lc->nthreads;

    for (i = 0; i < lc->nthreads; i++) {
        lc->th[i].first = i * per < lc->n ? i * per : lc->n;
        lc->th[i].last = (i + 1) * per < lc->n ? (i + 1) * per : lc->n;
        lc->th[i].next = lc->th[i].first;
        lc->th[i].inflight_max = lc->inflight / lc->nthreads + 1;
        lc->th[i].lc = lc;
        lc->th[i].ep = epoll_create1(0);
        lc->th[i].rbuf = malloc(LC_READ_BUF);

        if (lc->th[i].ep == -1 || lc->th[i].rbuf == NULL) {
            fprintf(stderr, "loadclient: %s\n", strerror(errno));
            return 1;
        }
    }

    for (i = 0; i < lc->nthreads; i++) {
        if (pthread_create(&lc->th[i].tid, NULL, lc_thread, &lc->th[i]) != 0)
        {
            fprintf(stderr, "loadclient: pthread_create() failed\n");
            return 1;
        }
    }

    lc_wait_ready(lc);

    if (lc->interactive) {
        lc_interactive(lc);

    } else {
        usleep((useconds_t) (lc->warmup * 1e6));
        lc_measure(lc, lc->duration);
    }

    __atomic_store_n(&lc->stop, 1, __ATOMIC_RELEASE);

    for (i = 0; i < lc->nthreads; i++) {
        pthread_join(lc->th[i].tid, NULL);
    }

    return 0;
}


static int
lc_options(lc_t *lc, int argc, char **argv)
{
    int   c;
    char  mode[16];

    lc->n = 1;
    lc->nthreads = 1;
    lc->sources = 1;
    lc->inflight = 256;
    lc->warmup = 2;
    lc->duration = 5;
    lc->connect_timeout = 60;
    strcpy(mode, "dashflow");
    lc->path[0] = '\0';

    while ((c = getopt(argc, argv, "u:n:m:Re:S:T:C:w:d:it:h")) != -1) {
        switch (c) {

        case 'u':
            if (sscanf(optarg, "ws://%63[^:/]:%d%511s", lc->host, &lc->port,
                       lc->path) != 3)
            {
                fprintf(stderr, "loadclient: -u ws://IP:PORT/path\n");
                return -1;
            }
            break;

        case 'n':
            lc->n = (unsigned) atoi(optarg);
            break;

        case 'm':
            snprintf(mode, sizeof(mode), "%s", optarg);
            break;

        case 'R':
            lc->resume = 1;
            break;

        case 'e':
            lc->expect = (size_t) atol(optarg);
            break;

        case 'S':
            lc->sources = (unsigned) atoi(optarg);
            break;

        case 'T':
            lc->nthreads = (unsigned) atoi(optarg);
            break;

        case 'C':
            lc->inflight = (unsigned) atoi(optarg);
            break;

        case 'w':
            lc->warmup = atof(optarg);
            break;

        case 'd':
            lc->duration = atof(optarg);
            break;

        case 'i':
            lc->interactive = 1;
            break;

        case 't':
            lc->connect_timeout = atof(optarg);
            break;

        default:
            fprintf(stderr,
                    "usage: loadclient -u ws://IP:PORT/path [-n conns] "
                    "[-m dashflow|raw|nchan] [-R]\n"
                    "       [-e size] [-S sources] [-T threads] "
                    "[-C inflight] [-t connect_timeout]\n"
                    "       [-w warmup -d seconds | -i]\n");
            return -1;
        }
    }

    lc->mode = strcmp(mode, "raw") == 0 ? LC_MODE_RAW
               : strcmp(mode, "nchan") == 0 ? LC_MODE_NCHAN
               : strcmp(mode, "dashflow") == 0 ? LC_MODE_DASHFLOW : -1;

    lc->dst.sin_family = AF_INET;
    lc->dst.sin_port = htons((uint16_t) lc->port);

    if (lc->mode < 0 || lc->path[0] == '\0' || lc->n < 1
        || lc->nthreads < 1 || lc->nthreads > LC_MAX_THREADS
        || lc->sources < 1 || lc->sources > 250 || lc->inflight < 1
        || inet_pton(AF_INET, lc->host, &lc->dst.sin_addr) != 1)
    {
        fprintf(stderr, "loadclient: invalid arguments (-h for help)\n");
        return -1;
    }

    return 0;
}


static void
lc_raise_nofile(unsigned n)
{
    struct rlimit  rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }

    if (rl.rlim_max < n) {
        rl.rlim_max = n;    /* root may raise the hard limit */
    }

    rl.rlim_cur = rl.rlim_max;

    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        (void) getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
    }

    if (rl.rlim_cur < n) {
        fprintf(stderr, "loadclient: RLIMIT_NOFILE is %lu, fewer than the "
                "%u descriptors needed\n", (unsigned long) rl.rlim_cur, n);
    }
}


static void *
lc_thread(void *data)
{
    lc_thread_t  *th = data;

    int                  i, n;
    lc_t                *lc;
    unsigned             gen, k;
    struct epoll_event   evs[256];

    lc = th->lc;

    while (!__atomic_load_n(&lc->stop, __ATOMIC_ACQUIRE)) {

        lc_connect_more(lc, th);

        n = epoll_wait(th->ep, evs, 256, 10);

        for (i = 0; i < n; i++) {
            lc_conn_event(lc, evs[i].data.ptr, evs[i].events);
        }

        gen = __atomic_load_n(&lc->gen, __ATOMIC_ACQUIRE);

        if (gen != th->gen_seen) {
            if (gen & 1) {
                th->snap = th->st;

            } else {
                memset(&th->st, 0, sizeof(lc_stats_t));
            }

            __atomic_store_n(&th->gen_seen, gen, __ATOMIC_RELEASE);
        }
    }

    for (k = th->first; k < th->last; k++) {
        if (lc->conns[k].state != LC_IDLE) {
            lc_conn_close(&lc->conns[k]);
        }
    }

    return NULL;
}


static void
lc_connect_more(lc_t *lc, lc_thread_t *th)
{
    int                  fd, one;
    lc_conn_t           *c;
    struct sockaddr_in   src;
    struct epoll_event   ev;

    while (th->next < th->last && th->inflight < th->inflight_max) {
        c = &lc->conns[th->next];
        c->th = th;
        c->src = th->next % lc->sources;
        c->state = LC_CONNECTING;
        th->next++;
        th->inflight++;

        c->last_seq = calloc(BENCH_PAYLOAD_STREAMS, sizeof(uint64_t));
        c->last_offset = lc->mode == LC_MODE_DASHFLOW
                         ? calloc(LC_MAX_PARTITIONS, sizeof(int64_t)) : NULL;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        c->fd = fd;

        if (fd == -1 || c->last_seq == NULL
            || (lc->mode == LC_MODE_DASHFLOW && c->last_offset == NULL))
        {
            lc_conn_fail(lc, c, errno);
            continue;
        }

        if (lc->sources > 1) {
            one = 1;
            (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                              sizeof(one));

            memset(&src, 0, sizeof(src));
            src.sin_family = AF_INET;
            src.sin_addr.s_addr = htonl(0x7f000001 + c->src);

            if (bind(fd, (struct sockaddr *) &src, sizeof(src)) != 0) {
                lc_conn_fail(lc, c, errno);
                continue;
            }
        }

        one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        if (connect(fd, (struct sockaddr *) &lc->dst, sizeof(lc->dst)) != 0
            && errno != EINPROGRESS)
        {
            lc_conn_fail(lc, c, errno);
            continue;
        }

        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.ptr = c;

        if (epoll_ctl(th->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            lc_conn_fail(lc, c, errno);
            continue;
        }
    }
}


static void
lc_conn_event(lc_t *lc, lc_conn_t *c, uint32_t events)
{
    int                  err;
    socklen_t            len;
    char                 req[1024];
    int                  n;
    struct epoll_event   ev;

    if (c->state == LC_CLOSED) {
        return;
    }

    if (c->state == LC_CONNECTING) {
        err = 0;
        len = sizeof(err);
        (void) getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);

        if (err != 0) {
            lc_conn_fail(lc, c, err);
            return;
        }

        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " LC_WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     lc->path, lc->host, lc->port);

        c->state = LC_HANDSHAKE;

        ev.events = EPOLLIN;
        ev.data.ptr = c;
        (void) epoll_ctl(c->th->ep, EPOLL_CTL_MOD, c->fd, &ev);

        if (lc_send(lc, c, (unsigned char *) req, (size_t) n) != 0) {
            lc_conn_fail(lc, c, errno);
        }

        return;
    }

    if ((events & EPOLLOUT) && c->pend_len) {
        if (lc_send(lc, c, NULL, 0) != 0) {
            lc_conn_fail(lc, c, errno);
            return;
        }
    }

    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        (void) lc_read(lc, c);
    }
}


static void
lc_conn_fail(lc_t *lc, lc_conn_t *c, int err)
{
    lc_thread_t  *th;

    th = c->th;

    if (c->state == LC_CLOSED) {
        return;
    }

    if (c->state == LC_OPEN) {
        th->open--;
        th->closed++;
        th->st.err[LC_ERR_CLOSED]++;

    } else {
        th->inflight--;
        th->failed++;
        th->st.err[LC_ERR_CONNECT]++;

        if (th->failed <= 3) {
            fprintf(stderr, "loadclient: connection %ld failed: %s\n",
                    (long) (c - lc->conns), err ? strerror(err) : "handshake");
        }
    }

    lc_conn_close(c);
}


static void
lc_conn_close(lc_conn_t *c)
{
    if (c->fd != -1) {
        close(c->fd);
        c->fd = -1;
    }

    c->state = LC_CLOSED;
    free(c->carry);
    free(c->pend);
    c->carry = NULL;
    c->pend = NULL;
    c->carry_len = 0;
    c->pend_len = 0;
}


/* writes p (after anything pending); what does not fit waits for EPOLLOUT */

static int
lc_send(lc_t *lc, lc_conn_t *c, const unsigned char *p, size_t n)
{
    ssize_t              k;
    unsigned char       *np;
    struct epoll_event   ev;

    if (n) {
        np = realloc(c->pend, c->pend_len + n);
        if (np == NULL) {
            return -1;
        }

        memcpy(np + c->pend_len, p, n);
        c->pend = np;
        c->pend_len += (uint32_t) n;
    }

    k = send(c->fd, c->pend, c->pend_len, MSG_NOSIGNAL);

    if (k < 0 && errno != EAGAIN) {
        return -1;
    }

    if (k > 0) {
        memmove(c->pend, c->pend + k, c->pend_len - (size_t) k);
        c->pend_len -= (uint32_t) k;
    }

    ev.events = EPOLLIN | (c->pend_len ? EPOLLOUT : 0);
    ev.data.ptr = c;
    (void) epoll_ctl(c->th->ep, EPOLL_CTL_MOD, c->fd, &ev);

    return 0;
}


static int
lc_send_frame(lc_t *lc, lc_conn_t *c, unsigned opcode,
    const unsigned char *p, size_t n)
{
    size_t          i, h;
    uint32_t        key;
    unsigned char   buf[256];

    if (n > 125) {
        return -1;
    }

    key = (uint32_t) random();

    buf[0] = (unsigned char) (0x80 | opcode);
    buf[1] = (unsigned char) (0x80 | n);
    memcpy(buf + 2, &key, 4);
    h = 6;

    for (i = 0; i < n; i++) {
        buf[h + i] = p[i] ^ buf[2 + (i & 3)];
    }

    return lc_send(lc, c, buf, h + n);
}


/*
 * One recv() per event into the thread's buffer, behind what is left of
 * a frame from the last one; complete frames are parsed in place.
 */

static int
lc_read(lc_t *lc, lc_conn_t *c)
{
    ssize_t         k, used;
    size_t          have;
    unsigned char  *buf;

    buf = c->th->rbuf;
    have = c->carry_len;

    if (have) {
        memcpy(buf, c->carry, have);
    }

    k = recv(c->fd, buf + have, LC_READ_BUF - have, 0);

    if (k == 0 || (k < 0 && errno != EAGAIN)) {
        lc_conn_fail(lc, c, k == 0 ? ECONNRESET : errno);
        return -1;
    }

    if (k < 0) {
        return 0;
    }

    have += (size_t) k;

    used = c->state == LC_HANDSHAKE ? lc_handshake(lc, c, buf, have)
                                    : lc_frames(lc, c, buf, have);

    if (used < 0 || c->state == LC_CLOSED) {
        return -1;
    }

    if (have - (size_t) used > 0) {
        if (c->carry_len < have - (size_t) used || c->carry == NULL) {
            free(c->carry);
            c->carry = malloc(have - (size_t) used);

            if (c->carry == NULL) {
                lc_conn_fail(lc, c, ENOMEM);
                return -1;
            }
        }

        memcpy(c->carry, buf + used, have - (size_t) used);
        c->carry_len = (uint32_t) (have - (size_t) used);

    } else if (c->carry) {
        free(c->carry);
        c->carry = NULL;
        c->carry_len = 0;
    }

    return 0;
}


static ssize_t
lc_handshake(lc_t *lc, lc_conn_t *c, unsigned char *p, size_t n)
{
    size_t          head;
    ssize_t         more;
    unsigned char  *eoh;
    static const char  resume[] = "{\"type\":\"resume\",\"from\":\"latest\"}";

    eoh = memmem(p, n, "\r\n\r\n", 4);

    if (eoh == NULL) {
        if (n > 8192) {
            lc_conn_fail(lc, c, 0);
            return -1;
        }

        return 0;
    }

    head = (size_t) (eoh + 4 - p);
    *eoh = '\0';

    if (strncmp((char *) p, "HTTP/1.1 101", 12) != 0
        || strcasestr((char *) p, "\r\nSec-WebSocket-Accept: " LC_WS_ACCEPT)
           == NULL)
    {
        if (c->th->failed < 3) {
            fprintf(stderr, "loadclient: handshake refused: %.80s\n", p);
        }

        lc_conn_fail(lc, c, 0);
        return -1;
    }

    c->state = LC_OPEN;
    c->th->inflight--;
    c->th->open++;

    if (lc->resume
        && lc_send_frame(lc, c, 0x1, (const unsigned char *) resume,
                         sizeof(resume) - 1) != 0)
    {
        lc_conn_fail(lc, c, errno);
        return -1;
    }

    more = lc_frames(lc, c, p + head, n - head);

    return more < 0 ? more : (ssize_t) head + more;
}


/* parses complete server frames; returns the bytes used */

static ssize_t
lc_frames(lc_t *lc, lc_conn_t *c, unsigned char *p, size_t n)
{
    size_t          h, i;
    uint64_t        len;
    unsigned        opcode;
    unsigned char  *start;

    start = p;

    while (n >= 2 && c->state == LC_OPEN) {
        opcode = p[0] & 0x0f;
        len = p[1] & 0x7f;
        h = 2;

        if ((p[0] & 0x70) || (p[1] & 0x80) || !(p[0] & 0x80)) {
            /* RSV bits, a masked server frame, or fragmentation */
            c->th->st.err[LC_ERR_PROTOCOL]++;
            lc_conn_fail(lc, c, EPROTO);
            return -1;
        }

        if (len == 126) {
            if (n < 4) {
                break;
            }

            len = ((uint64_t) p[2] << 8) | p[3];
            h = 4;

        } else if (len == 127) {
            if (n < 10) {
                break;
            }

            for (len = 0, i = 2; i < 10; i++) {
                len = (len << 8) | p[i];
            }

            h = 10;
        }

        if (len > LC_READ_BUF / 2) {
            c->th->st.err[LC_ERR_PROTOCOL]++;
            lc_conn_fail(lc, c, EMSGSIZE);
            return -1;
        }

        if (n < h + len) {
            break;
        }

        switch (opcode) {

        case 0x1:
            if (lc->mode == LC_MODE_NCHAN) {
                lc_message(lc, c, p + h, (size_t) len);

            } else {
                lc_text(lc, c, p + h, (size_t) len);
            }
            break;

        case 0x2:
            lc_message(lc, c, p + h, (size_t) len);
            break;

        case 0x8:
            (void) lc_send_frame(lc, c, 0x8, p + h, len < 2 ? 0 : 2);
            c->th->st.err[LC_ERR_CLOSED]++;
            c->th->open--;
            c->th->closed++;

            if (c->th->closed <= 3) {
                fprintf(stderr, "loadclient: server closed a connection "
                        "with %u\n",
                        len >= 2 ? (unsigned) (p[h] << 8 | p[h + 1]) : 1005);
            }

            lc_conn_close(c);
            return -1;

        case 0x9:
            (void) lc_send_frame(lc, c, 0xA, p + h, (size_t) len);
            c->th->st.controls++;
            break;

        case 0xA:
            c->th->st.controls++;
            break;

        default:
            c->th->st.err[LC_ERR_PROTOCOL]++;
            lc_conn_fail(lc, c, EPROTO);
            return -1;
        }

        p += h + len;
        n -= h + len;
    }

    return p - start;
}


/* DashFlow and raw text frames: a cursor, a gap notice or a control */

static void
lc_text(lc_t *lc, lc_conn_t *c, unsigned char *p, size_t n)
{
    char         *q, *e;
    long          part;
    long long     off;
    lc_stats_t   *st;
    static const char  cursor[] = "{\"type\":\"cursor\",\"partition\":";

    st = &c->th->st;

    if (n < sizeof(cursor) - 1 || memcmp(p, cursor, sizeof(cursor) - 1)) {
        if (n > 14 && memcmp(p, "{\"type\":\"gap\"", 13) == 0) {
            st->gap_notices++;

        } else {
            st->controls++;
        }

        return;
    }

    if (lc->mode != LC_MODE_DASHFLOW || c->want_binary) {
        st->err[LC_ERR_UNPAIRED]++;
    }

    /* {"type":"cursor","partition":P,"offset":"O"} */

    q = (char *) p + sizeof(cursor) - 1;
    e = (char *) p + n;
    part = strtol(q, &q, 10);

    if (q + 11 >= e || memcmp(q, ",\"offset\":\"", 11) != 0
        || part < 0 || part >= LC_MAX_PARTITIONS)
    {
        st->err[LC_ERR_CURSOR]++;
        c->want_binary = 0;
        return;
    }

    q += 11;
    off = strtoll(q, &q, 10);

    if (q + 2 != e || q[0] != '"' || q[1] != '}' || off < 0) {
        st->err[LC_ERR_CURSOR]++;
        c->want_binary = 0;
        return;
    }

    if (c->last_offset[part] && off < c->last_offset[part]) {
        st->err[LC_ERR_CURSOR]++;
    }

    c->last_offset[part] = off + 1;
    c->cursor_partition = (uint16_t) part;
    c->want_binary = 1;
    st->cursors++;
}


static void
lc_message(lc_t *lc, lc_conn_t *c, unsigned char *p, size_t n)
{
    int               rc;
    int64_t           lat;
    uint64_t          last;
    lc_stats_t       *st;
    bench_payload_t   pl;

    st = &c->th->st;

    if (lc->mode == LC_MODE_DASHFLOW) {
        if (!c->want_binary) {
            st->err[LC_ERR_UNPAIRED]++;
            return;
        }

        c->want_binary = 0;
    }

    rc = bench_payload_check(p, n, &pl);

    if (rc != BENCH_PAYLOAD_OK) {
        st->err[LC_ERR_PAYLOAD]++;
        st->payload_err[rc]++;
        return;
    }

    if (lc->expect && n != lc->expect) {
        st->err[LC_ERR_SIZE]++;
        return;
    }

    if (lc->mode == LC_MODE_DASHFLOW && pl.stream != c->cursor_partition) {
        st->err[LC_ERR_CURSOR_PARTITION]++;
        return;
    }

    last = c->last_seq[pl.stream];
    c->last_seq[pl.stream] = pl.sequence;

    if (last && pl.sequence <= last) {
        st->err[LC_ERR_SEQ_BACK]++;
        return;
    }

    if (last && pl.sequence > last + 1) {
        st->err[LC_ERR_SEQ_GAP]++;
        st->lost += pl.sequence - last - 1;
    }

    lat = bench_realtime_us() - pl.timestamp_us;

    if (lat < 0) {
        lat = 0;
    }

    st->hist[lc_hist_index((uint64_t) lat)]++;

    if (lat > st->lat_max) {
        st->lat_max = lat;
    }

    st->msgs++;
    st->bytes += n;
}


/* log-linear buckets: exact below 128 us, then 64 per power of two */

static int
lc_hist_index(uint64_t v)
{
    int  msb, shift, i;

    if (v < 128) {
        return (int) v;
    }

    msb = 63 - __builtin_clzll(v);
    shift = msb - 6;
    i = 128 + (shift - 1) * 64 + (int) ((v >> shift) - 64);

    return i < LC_HIST ? i : LC_HIST - 1;
}


static uint64_t
lc_hist_value(int i)
{
    int  shift;

    if (i < 128) {
        return (uint64_t) i;
    }

    shift = (i - 128) / 64 + 1;

    /* the middle of the bucket */
    return ((uint64_t) (64 + (i - 128) % 64) << shift)
           + ((uint64_t) 1 << (shift - 1));
}


static double
lc_percentile(uint64_t *hist, uint64_t total, double q)
{
    int       i;
    uint64_t  seen, want;

    if (total == 0) {
        return 0;
    }

    want = (uint64_t) (q * total);

    if (want >= total) {
        want = total - 1;
    }

    for (seen = 0, i = 0; i < LC_HIST; i++) {
        seen += hist[i];

        if (seen > want) {
            return lc_hist_value(i) / 1000.0;
        }
    }

    return 0;
}


static double
lc_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static double
lc_cpu(void)
{
    struct rusage  ru;

    getrusage(RUSAGE_SELF, &ru);

    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}


/* asks every thread to act on a new generation and waits until they did */

static void
lc_sync(lc_t *lc, int snapshot)
{
    unsigned  i, gen;

    gen = lc->gen + 1;

    if ((gen & 1) != (unsigned) snapshot) {
        gen++;
    }

    __atomic_store_n(&lc->gen, gen, __ATOMIC_RELEASE);

    for (i = 0; i < lc->nthreads; i++) {
        while (__atomic_load_n(&lc->th[i].gen_seen, __ATOMIC_ACQUIRE) != gen)
        {
            usleep(1000);
        }
    }
}


static void
lc_wait_ready(lc_t *lc)
{
    unsigned  i, open, failed, done;
    double    start;

    start = lc_now();

    for ( ;; ) {
        open = 0;
        failed = 0;
        done = 1;

        for (i = 0; i < lc->nthreads; i++) {
            open += __atomic_load_n(&lc->th[i].open, __ATOMIC_RELAXED);
            failed += __atomic_load_n(&lc->th[i].failed, __ATOMIC_RELAXED);

            if (__atomic_load_n(&lc->th[i].next, __ATOMIC_RELAXED)
                    < lc->th[i].last
                || __atomic_load_n(&lc->th[i].inflight, __ATOMIC_RELAXED))
            {
                done = 0;
            }
        }

        if (done || lc_now() - start > lc->connect_timeout) {
            break;
        }

        usleep(10000);
    }

    fprintf(lc->interactive ? stdout : stderr,
            "ready %u open %u failed %.3f seconds\n", open, failed,
            lc_now() - start);
    fflush(stdout);
}


static void
lc_interactive(lc_t *lc)
{
    char    line[256];
    double  seconds;

    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (sscanf(line, "measure %lf", &seconds) == 1) {
            lc_measure(lc, seconds);

        } else if (strncmp(line, "quit", 4) == 0) {
            break;

        } else {
            fprintf(stderr, "loadclient: unknown command: %s", line);
        }
    }
}


static void
lc_measure(lc_t *lc, double seconds)
{
    double  start, cpu;

    lc_sync(lc, 0);
    start = lc_now();
    cpu = lc_cpu();

    usleep((useconds_t) (seconds * 1e6));

    lc_sync(lc, 1);

    lc_report(lc, lc_now() - start, lc_cpu() - cpu);
}


static void
lc_report(lc_t *lc, double seconds, double cpu)
{
    int           k;
    unsigned      i, open, failed, closed;
    lc_stats_t   *s, *t;

    s = calloc(1, sizeof(lc_stats_t));
    if (s == NULL) {
        return;
    }

    open = 0;
    failed = 0;
    closed = 0;

    for (i = 0; i < lc->nthreads; i++) {
        t = &lc->th[i].snap;
        open += __atomic_load_n(&lc->th[i].open, __ATOMIC_RELAXED);
        failed += __atomic_load_n(&lc->th[i].failed, __ATOMIC_RELAXED);
        closed += __atomic_load_n(&lc->th[i].closed, __ATOMIC_RELAXED);

        s->msgs += t->msgs;
        s->bytes += t->bytes;
        s->cursors += t->cursors;
        s->controls += t->controls;
        s->gap_notices += t->gap_notices;
        s->lost += t->lost;

        if (t->lat_max > s->lat_max) {
            s->lat_max = t->lat_max;
        }

        for (k = 0; k < LC_ERR_N; k++) {
            s->err[k] += t->err[k];
        }

        for (k = 0; k < BENCH_PAYLOAD_NERRORS; k++) {
            s->payload_err[k] += t->payload_err[k];
        }

        for (k = 0; k < LC_HIST; k++) {
            s->hist[k] += t->hist[k];
        }
    }

    printf("{\"mode\":\"%s\",\"conns\":%u,\"open\":%u,\"failed\":%u,"
           "\"closed\":%u,\"seconds\":%.3f,\"msgs\":%llu,\"rate\":%.1f,"
           "\"bytes\":%llu,\"cursors\":%llu,\"controls\":%llu,"
           "\"gap_notices\":%llu,\"lost\":%llu,"
           "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"client_cpu_s\":%.3f,"
           "\"errors\":{",
           lc->mode == LC_MODE_DASHFLOW ? "dashflow"
           : lc->mode == LC_MODE_RAW ? "raw" : "nchan",
           lc->n, open, failed, closed, seconds,
           (unsigned long long) s->msgs, s->msgs / seconds,
           (unsigned long long) s->bytes, (unsigned long long) s->cursors,
           (unsigned long long) s->controls,
           (unsigned long long) s->gap_notices,
           (unsigned long long) s->lost,
           lc_percentile(s->hist, s->msgs, 0.50),
           lc_percentile(s->hist, s->msgs, 0.90),
           lc_percentile(s->hist, s->msgs, 0.99),
           lc_percentile(s->hist, s->msgs, 0.999),
           s->lat_max / 1000.0, cpu);

    for (k = 0; k < LC_ERR_N; k++) {
        printf("%s\"%s\":%llu", k ? "," : "", lc_err_names[k],
               (unsigned long long) s->err[k]);
    }

    printf("},\"payload_errors\":{");

    for (k = 1; k < BENCH_PAYLOAD_NERRORS; k++) {
        printf("%s\"%s\":%llu", k > 1 ? "," : "",
               bench_payload_error_name(k),
               (unsigned long long) s->payload_err[k]);
    }

    printf("}}\n");
    fflush(stdout);

    free(s);
}
