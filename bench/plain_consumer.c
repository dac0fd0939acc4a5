/*
 * Copyright (C) ngx_dashstream authors
 */


/*
 * The physical baseline for ingest: a plain librdkafka consumer that reads
 * a topic and throws the values away, with the module consumer's settings
 * (ngx_http_dashstream_kafka.c: subscribe in a group, offsets stored by
 * hand after each batch and auto-committed every second, batches of 256
 * from rd_kafka_consume_batch_queue() with a 100 ms timeout, every fetch.*
 * and queue property at librdkafka's default unless -X says otherwise).
 * It stops after -n messages and prints one JSON line with the time from
 * the first message to the last.
 *
 *   plain_consumer -b brokers -t topic -n count [-g group] [-T timeout]
 *                  [-X prop=value ...]
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>


#define PC_BATCH       256
#define PC_POLL_MS     100
#define PC_PARTITIONS  1024
#define PC_MAX_PROPS   32


typedef struct {
    const char          *brokers;
    const char          *topic;
    const char          *props[PC_MAX_PROPS];
    int                  nprops;
    char                 group[128];
    uint64_t             want;
    double               timeout;

    uint64_t             got;
    uint64_t             bytes;
    double               start;
    double               first;
    double               last;
} pc_t;


static int pc_options(pc_t *pc, int argc, char **argv);
static rd_kafka_t *pc_open(pc_t *pc);
static void pc_consume(pc_t *pc, rd_kafka_t *rk);
static double pc_now(void);
static int pc_set(rd_kafka_conf_t *conf, const char *name, const char *value);
static void pc_store(rd_kafka_t *rk, const char *topic, int64_t *next,
    int32_t *max);


int
main(int argc, char **argv)
{
    pc_t            pc;
    rd_kafka_t     *rk;
    struct rusage   ru;

    if (pc_options(&pc, argc, argv) != 0) {
        return 2;
    }

    rk = pc_open(&pc);
    if (rk == NULL) {
        return 1;
    }

    pc_consume(&pc, rk);

    getrusage(RUSAGE_SELF, &ru);

    printf("{\"count\":%llu,\"bytes\":%llu,\"seconds\":%.3f,\"rate\":%.1f,"
           "\"startup_s\":%.3f,\"cpu_s\":%.3f}\n",
           (unsigned long long) pc.got, (unsigned long long) pc.bytes,
           pc.got ? pc.last - pc.first : 0.0,
           pc.got && pc.last > pc.first ? pc.got / (pc.last - pc.first)
                                        : 0.0,
           pc.got ? pc.first - pc.start : 0.0,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    fflush(stdout);

    (void) rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    return pc.got >= pc.want ? 0 : 1;
}


static int
pc_options(pc_t *pc, int argc, char **argv)
{
    int  c;

    memset(pc, 0, sizeof(pc_t));
    pc->timeout = 300;
    snprintf(pc->group, sizeof(pc->group), "bench-plain-%d", (int) getpid());

    while ((c = getopt(argc, argv, "b:t:n:g:X:T:h")) != -1) {
        switch (c) {

        case 'b':
            pc->brokers = optarg;
            break;

        case 't':
            pc->topic = optarg;
            break;

        case 'n':
            pc->want = strtoull(optarg, NULL, 10);
            break;

        case 'g':
            snprintf(pc->group, sizeof(pc->group), "%s", optarg);
            break;

        case 'T':
            pc->timeout = atof(optarg);
            break;

        case 'X':
            if (pc->nprops < PC_MAX_PROPS && strchr(optarg, '=')) {
                pc->props[pc->nprops++] = optarg;
                break;
            }

            /* fall through */

        default:
            fprintf(stderr, "usage: plain_consumer -b brokers -t topic "
                    "-n count [-g group] [-T timeout] [-X prop=value]\n");
            return -1;
        }
    }

    if (pc->brokers == NULL || pc->topic == NULL || pc->want == 0) {
        fprintf(stderr, "plain_consumer: -b, -t and -n are required\n");
        return -1;
    }

    return 0;
}


static rd_kafka_t *
pc_open(pc_t *pc)
{
    int                               i;
    char                              err[512], name[256], *eq;
    rd_kafka_t                       *rk;
    rd_kafka_conf_t                  *conf;
    rd_kafka_topic_partition_list_t  *topics;

    conf = rd_kafka_conf_new();

    if (pc_set(conf, "bootstrap.servers", pc->brokers)
        || pc_set(conf, "group.id", pc->group)
        || pc_set(conf, "enable.auto.offset.store", "false")
        || pc_set(conf, "enable.partition.eof", "false")
        || pc_set(conf, "auto.offset.reset", "earliest")
        || pc_set(conf, "session.timeout.ms", "6000")
        || pc_set(conf, "heartbeat.interval.ms", "2000")
        || pc_set(conf, "enable.auto.commit", "true")
        || pc_set(conf, "auto.commit.interval.ms", "1000"))
    {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    for (i = 0; i < pc->nprops; i++) {
        eq = strchr(pc->props[i], '=');
        snprintf(name, sizeof(name), "%.*s", (int) (eq - pc->props[i]),
                 pc->props[i]);

        if (pc_set(conf, name, eq + 1)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "plain_consumer: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    (void) rd_kafka_poll_set_consumer(rk);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, pc->topic,
                                      RD_KAFKA_PARTITION_UA);

    if (rd_kafka_subscribe(rk, topics) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "plain_consumer: subscribe failed\n");
        rd_kafka_topic_partition_list_destroy(topics);
        rd_kafka_destroy(rk);
        return NULL;
    }

    rd_kafka_topic_partition_list_destroy(topics);

    return rk;
}


static void
pc_consume(pc_t *pc, rd_kafka_t *rk)
{
    int32_t              max;
    int64_t             *next;
    ssize_t              n, k;
    rd_kafka_queue_t    *queue;
    rd_kafka_message_t  *m, *batch[PC_BATCH];

    next = calloc(PC_PARTITIONS, sizeof(int64_t));
    if (next == NULL) {
        return;
    }

    queue = rd_kafka_queue_get_consumer(rk);
    max = 0;
    pc->start = pc_now();

    while (pc->got < pc->want && pc_now() - pc->start < pc->timeout) {
        n = rd_kafka_consume_batch_queue(queue, PC_POLL_MS, batch, PC_BATCH);

        for (k = 0; k < n; k++) {
            m = batch[k];

            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (pc->got++ == 0) {
                    pc->first = pc_now();
                }

                pc->bytes += m->len;

                if (m->partition >= 0 && m->partition < PC_PARTITIONS) {
                    next[m->partition] = m->offset + 2;

                    if (m->partition >= max) {
                        max = m->partition + 1;
                    }
                }
            }

            rd_kafka_message_destroy(m);
        }

        pc_store(rk, pc->topic, next, &max);
    }

    pc->last = pc_now();

    rd_kafka_queue_destroy(queue);
    free(next);
}


static double
pc_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static int
pc_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char  err[512];

    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err))
        != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "plain_consumer: %s\n", err);
        return -1;
    }

    return 0;
}


/* as the module does after each batch: next offset of each partition */

static void
pc_store(rd_kafka_t *rk, const char *topic, int64_t *next, int32_t *max)
{
    int32_t                           i;
    rd_kafka_topic_partition_list_t  *list;

    if (*max == 0) {
        return;
    }

    list = rd_kafka_topic_partition_list_new(*max);

    for (i = 0; i < *max; i++) {
        if (next[i]) {
            rd_kafka_topic_partition_list_add(list, topic, i)->offset =
                next[i] - 1;
            next[i] = 0;
        }
    }

    (void) rd_kafka_offsets_store(rk, list);
    rd_kafka_topic_partition_list_destroy(list);

    *max = 0;
}
