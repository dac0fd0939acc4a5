/*
 * Copyright (C) ngx_dashstream authors
 */


/*
 * A Kafka endpoint that needs no download, for `make demo`: librdkafka's
 * mock cluster (rdkafka_mock.h) with the DashStream topic and its DLQ
 * topic.  It prints the bootstrap servers on one line to stdout and runs
 * until SIGINT or SIGTERM.
 *
 *     mock_cluster [-t topic] [-p partitions] [-d dlq_topic] [-b brokers]
 *                  [-s slow_ms [-w]]
 *
 * -s makes every broker answer the requests a lag poller sends, ListOffsets
 * (end offsets, "watermarks") and OffsetFetch (committed offsets), slow_ms
 * late, and nothing else: Fetch, Metadata, group and commit requests keep
 * their speed (bench/, issue 4).  rd_kafka_mock_broker_set_rtt() would
 * slow every request on the broker, fetches included.  With -w the slow
 * answers start at SIGUSR1, so that a consumer can first start up (it
 * sends both requests once when it joins).
 */


#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>


#define MOCK_DEFAULT_TOPIC  "dashstream-quality"
#define MOCK_LIST_OFFSETS   2       /* Kafka protocol ApiKeys */
#define MOCK_OFFSET_FETCH   9
#define MOCK_SLOW_DEPTH     4


typedef struct {
    const char               *topic;
    const char               *dlq_topic;
    int                       partitions;
    int                       brokers;
    int                       slow_ms;
    int                       slow_wait;
    int                       slowing;
    rd_kafka_mock_cluster_t  *mcluster;
} mock_conf_t;


static int mock_parse_args(int argc, char **argv, mock_conf_t *mc);
static int mock_number(const char *s, int min, int max, const char *what);
static rd_kafka_t *mock_handle(int brokers);
static int mock_create_topic(rd_kafka_mock_cluster_t *mcluster,
    const char *topic, int partitions);
static int mock_block_signals(sigset_t *set);
static void *mock_slow_thread(void *data);
static void mock_slow_refill(mock_conf_t *mc);


int
main(int argc, char **argv)
{
    int                       sig, err;
    char                      dlq[256];
    pthread_t                 slow;
    sigset_t                  set;
    const char               *bootstraps;
    rd_kafka_t               *rk;
    mock_conf_t               mc;
    rd_kafka_mock_cluster_t  *mcluster;

    if (mock_parse_args(argc, argv, &mc) != 0) {
        return 2;
    }

    if (mc.dlq_topic == NULL) {
        if (snprintf(dlq, sizeof(dlq), "%s-dlq", mc.topic)
            >= (int) sizeof(dlq))
        {
            fprintf(stderr, "mock_cluster: topic name too long\n");
            return 2;
        }

        mc.dlq_topic = dlq;
    }

    /*
     * Blocked before librdkafka starts its threads, which inherit the
     * mask: the signals stay pending for sigwait() below, whichever
     * thread the kernel picks.
     */

    if (mock_block_signals(&set) != 0) {
        return 1;
    }

    rk = mock_handle(mc.brokers);
    if (rk == NULL) {
        return 1;
    }

    mcluster = rd_kafka_handle_mock_cluster(rk);
    if (mcluster == NULL) {
        fprintf(stderr, "mock_cluster: librdkafka made no mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }

    if (mock_create_topic(mcluster, mc.topic, mc.partitions) != 0
        || mock_create_topic(mcluster, mc.dlq_topic, 1) != 0)
    {
        rd_kafka_destroy(rk);
        return 1;
    }

    bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);

    fprintf(stderr, "mock_cluster: librdkafka %s mock cluster, %d broker(s), "
            "topic \"%s\" (%d partitions), DLQ topic \"%s\"\n",
            rd_kafka_version_str(), mc.brokers, mc.topic, mc.partitions,
            mc.dlq_topic);

    if (mc.slow_ms > 0) {
        mc.mcluster = mcluster;
        mc.slowing = !mc.slow_wait;
        mock_slow_refill(&mc);

        err = pthread_create(&slow, NULL, mock_slow_thread, &mc);
        if (err != 0) {
            fprintf(stderr, "mock_cluster: pthread_create() failed: %s\n",
                    strerror(err));
            rd_kafka_destroy(rk);
            return 1;
        }

        fprintf(stderr, "mock_cluster: ListOffsets and OffsetFetch answered "
                "%d ms late%s\n", mc.slow_ms,
                mc.slow_wait ? " from SIGUSR1 on" : "");
    }

    /* the one line a script reads */
    printf("%s\n", bootstraps);
    fflush(stdout);

    for ( ;; ) {
        if (sigwait(&set, &sig) != 0) {
            continue;
        }

        if (sig != SIGUSR1) {
            break;
        }

        if (mc.slow_ms > 0 && !mc.slowing) {
            fprintf(stderr, "mock_cluster: slow answers start now\n");
            __atomic_store_n(&mc.slowing, 1, __ATOMIC_RELEASE);
        }
    }

    fprintf(stderr, "mock_cluster: signal %d, stopping\n", sig);

    /* the handle owns the cluster and destroys it */
    rd_kafka_destroy(rk);

    return 0;
}


static int
mock_parse_args(int argc, char **argv, mock_conf_t *mc)
{
    int  c;

    mc->topic = MOCK_DEFAULT_TOPIC;
    mc->dlq_topic = NULL;
    mc->partitions = 4;
    mc->brokers = 1;
    mc->slow_ms = 0;
    mc->slow_wait = 0;
    mc->slowing = 0;
    mc->mcluster = NULL;

    while ((c = getopt(argc, argv, "t:p:d:b:s:wh")) != -1) {
        switch (c) {

        case 't':
            mc->topic = optarg;
            break;

        case 'd':
            mc->dlq_topic = optarg;
            break;

        case 'p':
            mc->partitions = mock_number(optarg, 1, 1024, "partitions");
            if (mc->partitions < 0) {
                return -1;
            }
            break;

        case 'b':
            mc->brokers = mock_number(optarg, 1, 16, "brokers");
            if (mc->brokers < 0) {
                return -1;
            }
            break;

        case 's':
            mc->slow_ms = mock_number(optarg, 1, 600000, "slow_ms");
            if (mc->slow_ms < 0) {
                return -1;
            }
            break;

        case 'w':
            mc->slow_wait = 1;
            break;

        default:
            fprintf(stderr, "usage: %s [-t topic] [-p partitions] "
                    "[-d dlq_topic] [-b brokers] [-s slow_ms [-w]]\n"
                    "  defaults: -t %s -p 4 -d <topic>-dlq -b 1, "
                    "no slow answers\n",
                    argv[0], MOCK_DEFAULT_TOPIC);
            return -1;
        }
    }

    if (optind != argc || mc->topic[0] == '\0') {
        fprintf(stderr, "mock_cluster: unexpected arguments (-h for help)\n");
        return -1;
    }

    return 0;
}


static int
mock_number(const char *s, int min, int max, const char *what)
{
    long   n;
    char  *end;

    errno = 0;
    n = strtol(s, &end, 10);

    if (errno || *s == '\0' || *end != '\0' || n < min || n > max) {
        fprintf(stderr, "mock_cluster: invalid %s \"%s\": must be %d to %d\n",
                what, s, min, max);
        return -1;
    }

    return (int) n;
}


/*
 * test.mock.num.brokers makes librdkafka start the mock cluster with the
 * handle and point the handle at it; the producer itself is never used.
 */

static rd_kafka_t *
mock_handle(int brokers)
{
    char              errstr[512], n[16];
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    conf = rd_kafka_conf_new();

    snprintf(n, sizeof(n), "%d", brokers);

    if (rd_kafka_conf_set(conf, "client.id", "dashstream-mock-cluster",
                          errstr, sizeof(errstr))
        != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "test.mock.num.brokers", n,
                             errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "mock_cluster: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "mock_cluster: rd_kafka_new() failed: %s\n", errstr);
        return NULL;
    }

    return rk;
}


static int
mock_create_topic(rd_kafka_mock_cluster_t *mcluster, const char *topic,
    int partitions)
{
    rd_kafka_resp_err_t  err;

    err = rd_kafka_mock_topic_create(mcluster, topic, partitions, 1);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "mock_cluster: creating topic \"%s\" failed: %s\n",
                topic, rd_kafka_err2str(err));
        return -1;
    }

    return 0;
}


static int
mock_block_signals(sigset_t *set)
{
    int  err;

    /* a shell starts background jobs with SIGINT ignored */

    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);

    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);

    err = pthread_sigmask(SIG_BLOCK, set, NULL);

    if (err != 0) {
        fprintf(stderr, "mock_cluster: pthread_sigmask() failed: %s\n",
                strerror(err));
        return -1;
    }

    return 0;
}


/*
 * A broker's error stack for an ApiKey holds (error, delay) entries that
 * its next requests of that type consume, whichever client sends them; an
 * entry without error just delays the answer.  The stacks are kept topped
 * up, a few entries deep, for as long as the cluster runs.
 */

static void *
mock_slow_thread(void *data)
{
    mock_conf_t  *mc = data;

    for ( ;; ) {
        usleep(50 * 1000);
        mock_slow_refill(mc);
    }

    return NULL;
}


static void
mock_slow_refill(mock_conf_t *mc)
{
    int       b, k;
    size_t    cnt;
    int16_t   keys[2] = { MOCK_LIST_OFFSETS, MOCK_OFFSET_FETCH };

    if (!__atomic_load_n(&mc->slowing, __ATOMIC_ACQUIRE)) {
        return;
    }

    for (b = 1; b <= mc->brokers; b++) {
        for (k = 0; k < 2; k++) {
            cnt = 0;    /* left alone while the stack does not exist */

            if (rd_kafka_mock_broker_error_stack_cnt(mc->mcluster, b, keys[k],
                                                     &cnt)
                != RD_KAFKA_RESP_ERR_NO_ERROR)
            {
                continue;
            }

            while (cnt++ < MOCK_SLOW_DEPTH) {
                (void) rd_kafka_mock_broker_push_request_error_rtts(
                           mc->mcluster, b, keys[k], 1,
                           RD_KAFKA_RESP_ERR_NO_ERROR, mc->slow_ms);
            }
        }
    }
}
