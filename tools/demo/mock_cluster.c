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


typedef struct {
    const char  *topic;
    const char  *dlq_topic;
    int          partitions;
    int          brokers;
} mock_conf_t;


static int mock_parse_args(int argc, char **argv, mock_conf_t *mc);
static int mock_number(const char *s, int min, int max, const char *what);
static rd_kafka_t *mock_handle(int brokers);
static int mock_create_topic(rd_kafka_mock_cluster_t *mcluster,
    const char *topic, int partitions);
static int mock_block_signals(sigset_t *set);


int
main(int argc, char **argv)
{
    int                       sig;
    char                      dlq[256];
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

    /* the one line a script reads */
    printf("%s\n", bootstraps);
    fflush(stdout);

    while (sigwait(&set, &sig) != 0) {
        /* void */
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

    while ((c = getopt(argc, argv, "t:p:d:b:h")) != -1) {
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

        default:
            fprintf(stderr, "usage: %s [-t topic] [-p partitions] "
                    "[-d dlq_topic] [-b brokers]\n"
                    "  defaults: -t %s -p 4 -d <topic>-dlq -b 1\n",
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

    err = pthread_sigmask(SIG_BLOCK, set, NULL);

    if (err != 0) {
        fprintf(stderr, "mock_cluster: pthread_sigmask() failed: %s\n",
                strerror(err));
        return -1;
    }

    return 0;
}
