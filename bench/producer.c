/*
 * Copyright (C) ngx_dashstream authors
 */


/*
 * The benchmark's publisher: bench_payload messages of one size at a fixed
 * rate (or as fast as it can, -r 0), either to a Kafka topic (librdkafka)
 * or as HTTP POSTs to a publisher location such as nchan's (keep-alive,
 * pipelined, so a slow response does not pace the next request).
 *
 *   producer -b brokers -t topic [-X prop=value ...]           (Kafka)
 *   producer -u http://127.0.0.1:8080/pub [-c conns] [-w window] (HTTP)
 *     common: [-r msgs/s] [-s bytes] [-S streams] [-d seconds] [-n count]
 *
 * Message i belongs to stream i % S (Kafka partition i % S, thread_id
 * "bench-p<stream>") and carries that stream's next sequence number and
 * the wall clock at the moment it is built.  It runs for -d seconds (0:
 * until SIGINT/SIGTERM) or -n messages and prints one JSON line: messages
 * sent and acknowledged, the rate achieved, how far it fell behind its
 * schedule, and its own CPU time, so a run can show the publisher was not
 * the bottleneck.
 */


#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_payload.h"


#define PROD_MAX_CONNS    16
#define PROD_MAX_PROPS    32
#define PROD_BUF          (4 * 1024 * 1024)


typedef struct {
    int                 fd;
    unsigned char      *out;
    size_t              out_pos;
    size_t              out_len;
    unsigned char      *in;
    size_t              in_len;
    unsigned            inflight;
} prod_conn_t;


typedef struct {
    /* options */
    const char         *brokers;
    const char         *topic;
    const char         *url;
    const char         *props[PROD_MAX_PROPS];
    int                 nprops;
    double              rate;
    size_t              size;
    unsigned            streams;
    double              duration;
    uint64_t            count;
    int                 nconns;
    unsigned            window;

    /* state */
    uint64_t            seq[BENCH_PAYLOAD_STREAMS];
    uint64_t            sent;
    uint64_t            acked;
    uint64_t            failed;
    double              behind_max;
    unsigned char      *msg;

    rd_kafka_t         *rk;
    rd_kafka_topic_t   *rkt;

    char                host[256];
    char                path[512];
    int                 port;
    prod_conn_t         conns[PROD_MAX_CONNS];
    unsigned            http_status[6];
} prod_t;


static int prod_options(prod_t *pr, int argc, char **argv);
static double prod_now(void);
static int prod_next(prod_t *pr);
static int prod_kafka_open(prod_t *pr);
static int prod_kafka_send(prod_t *pr);
static void prod_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque);
static int prod_http_open(prod_t *pr);
static int prod_http_send(prod_t *pr);
static int prod_http_io(prod_t *pr, long timeout_ns);
static int prod_http_responses(prod_t *pr, prod_conn_t *c);
static void prod_run(prod_t *pr);
static void prod_report(prod_t *pr, double elapsed, double cpu);
static void prod_signal(int signo);


static volatile sig_atomic_t  prod_stop;


int
main(int argc, char **argv)
{
    prod_t  *pr;

    pr = calloc(1, sizeof(prod_t));
    if (pr == NULL) {
        return 1;
    }

    if (prod_options(pr, argc, argv) != 0) {
        return 2;
    }

    pr->msg = malloc(pr->size);
    if (pr->msg == NULL
        || bench_payload_build(pr->msg, pr->size, 0, 1, 0) != 0)
    {
        fprintf(stderr, "producer: no message of %zu bytes\n", pr->size);
        return 2;
    }

    signal(SIGINT, prod_signal);
    signal(SIGTERM, prod_signal);
    signal(SIGPIPE, SIG_IGN);

    if ((pr->url ? prod_http_open(pr) : prod_kafka_open(pr)) != 0) {
        return 1;
    }

    prod_run(pr);

    return pr->failed ? 1 : 0;
}


static int
prod_options(prod_t *pr, int argc, char **argv)
{
    int  c;

    pr->rate = 1000;
    pr->size = 200;
    pr->streams = 1;
    pr->duration = 10;
    pr->nconns = 1;
    pr->window = 256;

    while ((c = getopt(argc, argv, "b:t:X:u:c:w:r:s:S:d:n:h")) != -1) {
        switch (c) {

        case 'b':
            pr->brokers = optarg;
            break;

        case 't':
            pr->topic = optarg;
            break;

        case 'X':
            if (pr->nprops == PROD_MAX_PROPS || strchr(optarg, '=') == NULL) {
                fprintf(stderr, "producer: bad -X %s\n", optarg);
                return -1;
            }

            pr->props[pr->nprops++] = optarg;
            break;

        case 'u':
            pr->url = optarg;
            break;

        case 'c':
            pr->nconns = atoi(optarg);
            break;

        case 'w':
            pr->window = (unsigned) atoi(optarg);
            break;

        case 'r':
            pr->rate = atof(optarg);
            break;

        case 's':
            pr->size = (size_t) atol(optarg);
            break;

        case 'S':
            pr->streams = (unsigned) atoi(optarg);
            break;

        case 'd':
            pr->duration = atof(optarg);
            break;

        case 'n':
            pr->count = strtoull(optarg, NULL, 10);
            break;

        default:
            fprintf(stderr,
                    "usage: producer (-b brokers -t topic [-X k=v] | "
                    "-u http://host:port/path [-c conns] [-w window])\n"
                    "                [-r rate] [-s size] [-S streams] "
                    "[-d seconds] [-n count]\n");
            return -1;
        }
    }

    if ((pr->url == NULL) == (pr->brokers == NULL || pr->topic == NULL)
        || pr->streams < 1 || pr->streams > BENCH_PAYLOAD_STREAMS
        || pr->nconns < 1 || pr->nconns > PROD_MAX_CONNS || pr->window < 1
        || pr->rate < 0 || pr->size < BENCH_PAYLOAD_MIN
        || pr->size > BENCH_PAYLOAD_MAX)
    {
        fprintf(stderr, "producer: invalid arguments (-h for help)\n");
        return -1;
    }

    return 0;
}


static double
prod_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* builds the next message into pr->msg; returns its stream */

static int
prod_next(prod_t *pr)
{
    unsigned  stream;

    stream = (unsigned) (pr->sent % pr->streams);

    (void) bench_payload_build(pr->msg, pr->size, stream, ++pr->seq[stream],
                               bench_realtime_us());

    return (int) stream;
}


static void
prod_run(prod_t *pr)
{
    int              rc;
    double           start, now, due, behind;
    uint64_t         target;
    struct rusage    ru;
    struct timespec  ts;

    start = prod_now();

    while (!prod_stop) {
        now = prod_now();

        if (pr->duration > 0 && now - start >= pr->duration) {
            break;
        }

        if (pr->count && pr->sent >= pr->count) {
            break;
        }

        /* messages due by now; the schedule does not slip when behind */

        target = pr->rate > 0 ? (uint64_t) ((now - start) * pr->rate) + 1
                              : pr->sent + 1024;

        if (pr->count && target > pr->count) {
            target = pr->count;
        }

        while (pr->sent < target && !prod_stop) {
            rc = pr->url ? prod_http_send(pr) : prod_kafka_send(pr);

            if (rc != 0) {
                break;
            }
        }

        if (pr->rate > 0 && pr->sent < target) {
            behind = (target - pr->sent) / pr->rate;

            if (behind > pr->behind_max) {
                pr->behind_max = behind;
            }
        }

        if (pr->url) {
            /* a full window waits for responses instead of spinning */

            if (prod_http_io(pr, pr->sent < target ? 1000000 : 0) != 0) {
                pr->failed++;
                break;
            }

        } else {
            rd_kafka_poll(pr->rk, 0);
        }

        if (pr->rate > 0 && pr->sent >= target) {
            due = start + pr->sent / pr->rate;
            now = prod_now();

            if (due > now) {
                ts.tv_sec = 0;
                ts.tv_nsec = (long) ((due - now) * 1e9);

                if (ts.tv_nsec > 1000000) {
                    ts.tv_nsec = 1000000;
                }

                if (pr->url) {
                    (void) prod_http_io(pr, ts.tv_nsec);

                } else {
                    nanosleep(&ts, NULL);
                }
            }
        }
    }

    now = prod_now();

    if (pr->url) {
        while (pr->acked + pr->failed < pr->sent && prod_now() - now < 10) {
            if (prod_http_io(pr, 100000000) != 0) {
                break;
            }
        }

    } else {
        rd_kafka_flush(pr->rk, 30000);
        rd_kafka_poll(pr->rk, 0);
    }

    getrusage(RUSAGE_SELF, &ru);

    prod_report(pr, now - start,
                ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
                + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);

    if (pr->rk) {
        rd_kafka_topic_destroy(pr->rkt);
        rd_kafka_destroy(pr->rk);
    }
}


static void
prod_report(prod_t *pr, double elapsed, double cpu)
{
    printf("{\"mode\":\"%s\",\"size\":%zu,\"rate_target\":%.0f,"
           "\"sent\":%llu,\"acked\":%llu,\"failed\":%llu,"
           "\"seconds\":%.3f,\"rate\":%.1f,\"behind_max_s\":%.3f,"
           "\"cpu_s\":%.3f,\"http_2xx\":%u,\"http_other\":%u}\n",
           pr->url ? "http" : "kafka", pr->size, pr->rate,
           (unsigned long long) pr->sent, (unsigned long long) pr->acked,
           (unsigned long long) pr->failed, elapsed,
           elapsed > 0 ? pr->sent / elapsed : 0.0, pr->behind_max, cpu,
           pr->http_status[2],
           pr->http_status[1] + pr->http_status[3] + pr->http_status[4]
           + pr->http_status[5]);
    fflush(stdout);
}


static void
prod_signal(int signo)
{
    prod_stop = 1;
}


/* Kafka */

static int
prod_kafka_open(prod_t *pr)
{
    int               i;
    char              err[512], name[256], *eq;
    rd_kafka_conf_t  *conf;

    conf = rd_kafka_conf_new();

    /*
     * linger.ms 1: at a fixed rate the producer's own batching adds at most
     * a millisecond to the latency it helps measure.
     */

    if (rd_kafka_conf_set(conf, "bootstrap.servers", pr->brokers,
                          err, sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof(err))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000",
                             err, sizeof(err)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", "1048576",
                             err, sizeof(err)) != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }

    for (i = 0; i < pr->nprops; i++) {
        eq = strchr(pr->props[i], '=');
        snprintf(name, sizeof(name), "%.*s", (int) (eq - pr->props[i]),
                 pr->props[i]);

        if (rd_kafka_conf_set(conf, name, eq + 1, err, sizeof(err))
            != RD_KAFKA_CONF_OK)
        {
            fprintf(stderr, "producer: %s\n", err);
            return -1;
        }
    }

    rd_kafka_conf_set_dr_msg_cb(conf, prod_kafka_dr);
    rd_kafka_conf_set_opaque(conf, pr);

    pr->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (pr->rk == NULL) {
        fprintf(stderr, "producer: rd_kafka_new(): %s\n", err);
        return -1;
    }

    pr->rkt = rd_kafka_topic_new(pr->rk, pr->topic, NULL);

    return 0;
}


static int
prod_kafka_send(prod_t *pr)
{
    int   stream;
    char  key[32];
    int   klen;

    stream = prod_next(pr);
    klen = snprintf(key, sizeof(key), "bench-p%d", stream);

    while (rd_kafka_produce(pr->rkt, stream, RD_KAFKA_MSG_F_COPY, pr->msg,
                            pr->size, key, (size_t) klen, NULL) != 0)
    {
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "producer: %s\n",
                    rd_kafka_err2str(rd_kafka_last_error()));
            pr->failed++;
            pr->sent++;
            return -1;
        }

        rd_kafka_poll(pr->rk, 1);

        if (prod_stop) {
            pr->seq[stream]--;
            return -1;
        }
    }

    pr->sent++;

    return 0;
}


static void
prod_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    prod_t  *pr = opaque;

    if (m->err) {
        if (pr->failed++ == 0) {
            fprintf(stderr, "producer: delivery failed: %s\n",
                    rd_kafka_err2str(m->err));
        }

    } else {
        pr->acked++;
    }
}


/* HTTP */

static int
prod_http_open(prod_t *pr)
{
    int                 i, one;
    char                port[16];
    struct addrinfo     hints, *ai;
    prod_conn_t        *c;

    if (sscanf(pr->url, "http://%255[^:/]:%d%511s", pr->host, &pr->port,
               pr->path) != 3)
    {
        fprintf(stderr, "producer: -u must be http://host:port/path\n");
        return -1;
    }

    snprintf(port, sizeof(port), "%d", pr->port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;

    if (getaddrinfo(pr->host, port, &hints, &ai) != 0) {
        fprintf(stderr, "producer: cannot resolve %s\n", pr->host);
        return -1;
    }

    for (i = 0; i < pr->nconns; i++) {
        c = &pr->conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        c->out = malloc(PROD_BUF);
        c->in = malloc(PROD_BUF);

        if (c->fd == -1 || c->out == NULL || c->in == NULL
            || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0)
        {
            fprintf(stderr, "producer: connect to %s: %s\n", pr->url,
                    strerror(errno));
            freeaddrinfo(ai);
            return -1;
        }

        one = 1;
        (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one,
                          sizeof(one));
        (void) fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    }

    freeaddrinfo(ai);

    return 0;
}


static int
prod_http_send(prod_t *pr)
{
    int           n;
    prod_conn_t  *c, *best;
    int           i;

    /* the connection with the fewest requests in flight */

    best = &pr->conns[0];

    for (i = 1; i < pr->nconns; i++) {
        c = &pr->conns[i];

        if (c->inflight < best->inflight) {
            best = c;
        }
    }

    c = best;

    if (c->inflight >= pr->window
        || c->out_len + pr->size + 256 > PROD_BUF)
    {
        return -1;
    }

    (void) prod_next(pr);

    if (c->out_pos == c->out_len) {
        c->out_pos = 0;
        c->out_len = 0;
    }

    n = snprintf((char *) c->out + c->out_len, 256,
                 "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                 "Content-Type: application/octet-stream\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 pr->path, pr->host, pr->port, pr->size);

    c->out_len += (size_t) n;
    memcpy(c->out + c->out_len, pr->msg, pr->size);
    c->out_len += pr->size;
    c->inflight++;
    pr->sent++;

    return 0;
}


static int
prod_http_io(prod_t *pr, long timeout_ns)
{
    int              i, n;
    ssize_t          k;
    prod_conn_t     *c;
    struct pollfd    pfd[PROD_MAX_CONNS];
    struct timespec  ts;

    for (i = 0; i < pr->nconns; i++) {
        c = &pr->conns[i];
        pfd[i].fd = c->fd;
        pfd[i].events = POLLIN | (c->out_pos < c->out_len ? POLLOUT : 0);
        pfd[i].revents = 0;
    }

    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;

    n = ppoll(pfd, (nfds_t) pr->nconns, &ts, NULL);

    for (i = 0; n > 0 && i < pr->nconns; i++) {
        c = &pr->conns[i];

        if (pfd[i].revents & POLLOUT) {
            k = write(c->fd, c->out + c->out_pos, c->out_len - c->out_pos);

            if (k > 0) {
                c->out_pos += (size_t) k;

            } else if (errno != EAGAIN) {
                fprintf(stderr, "producer: write: %s\n", strerror(errno));
                return -1;
            }
        }

        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            k = read(c->fd, c->in + c->in_len, PROD_BUF - c->in_len);

            if (k == 0 || (k < 0 && errno != EAGAIN)) {
                fprintf(stderr, "producer: the server closed a connection\n");
                return -1;
            }

            if (k > 0) {
                c->in_len += (size_t) k;

                if (prod_http_responses(pr, c) != 0) {
                    return -1;
                }
            }
        }
    }

    return 0;
}


/* complete responses in c->in: status counted, body skipped */

static int
prod_http_responses(prod_t *pr, prod_conn_t *c)
{
    int             status;
    size_t          used, head, body;
    unsigned char  *p, *end, *eoh;
    const char     *cl;

    p = c->in;
    end = c->in + c->in_len;

    for ( ;; ) {
        eoh = memmem(p, end - p, "\r\n\r\n", 4);
        if (eoh == NULL) {
            break;
        }

        head = eoh + 4 - p;

        if (sscanf((char *) p, "HTTP/1.%*d %d", &status) != 1) {
            fprintf(stderr, "producer: bad response\n");
            return -1;
        }

        body = 0;
        *eoh = '\0';
        cl = strcasestr((char *) p, "\r\nContent-Length:");
        *eoh = '\r';

        if (cl) {
            body = (size_t) strtoul(cl + 17, NULL, 10);
        }

        if (head + body > (size_t) (end - p)) {
            break;
        }

        p += head + body;
        c->inflight--;

        if (status >= 100 && status < 600) {
            pr->http_status[status / 100]++;
        }

        if (status >= 200 && status < 300) {
            pr->acked++;

        } else if (pr->failed++ == 0) {
            fprintf(stderr, "producer: HTTP status %d\n", status);
        }
    }

    used = p - c->in;
    memmove(c->in, p, c->in_len - used);
    c->in_len -= used;

    return 0;
}
