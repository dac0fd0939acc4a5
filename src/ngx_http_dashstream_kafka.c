/*
 * Copyright (C) ngx_dashstream authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/err.h>

#include "ngx_http_dashstream_module.h"
#include "ngx_http_dashstream_kafka.h"


typedef struct {
    const char  *name;
    const char  *why;
} ngx_http_dashstream_kafka_managed_t;


static ngx_http_dashstream_kprop_t *ngx_http_dashstream_kafka_push(
    ngx_conf_t *cf, ngx_command_t *cmd, ngx_http_dashstream_main_conf_t *dmcf,
    const char *name, ngx_str_t *value);
static ngx_http_dashstream_kprop_t *ngx_http_dashstream_kafka_find(
    ngx_http_dashstream_main_conf_t *dmcf, const char *name);
static const char *ngx_http_dashstream_kafka_managed(ngx_str_t *name);
static ngx_int_t ngx_http_dashstream_kafka_read(ngx_conf_t *cf, size_t max,
    ngx_str_t *out);
static ngx_int_t ngx_http_dashstream_kafka_check(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf);
static ngx_int_t ngx_http_dashstream_kafka_needs(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf, const char *prefix,
    ngx_uint_t allowed, const char *protocols);
static ngx_int_t ngx_http_dashstream_kafka_probe(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf, rd_kafka_conf_t *kc);
static void ngx_http_dashstream_kafka_quiet(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);
static ngx_int_t ngx_http_dashstream_kafka_consumer(int role,
    const ngx_http_dashstream_kafka_params_t *kp, rd_kafka_conf_t *kc,
    char *err, size_t err_cap);
static ngx_int_t ngx_http_dashstream_kafka_producer(
    const ngx_http_dashstream_kafka_params_t *kp, rd_kafka_conf_t *kc,
    char *err, size_t err_cap);
static int ngx_http_dashstream_kafka_setc(rd_kafka_conf_t *kc,
    const char *name, const char *value, char *err, size_t err_cap);
static char *ngx_http_dashstream_kafka_chomp(char *s);


/*
 * Properties a directive of the module sets, or that the module itself
 * manages: dashstream_kafka_property refuses them, saying why.
 */

static ngx_http_dashstream_kafka_managed_t
    ngx_http_dashstream_kafka_managed_props[] =
{

    { "bootstrap.servers", "set it with \"dashstream_brokers\"" },
    { "metadata.broker.list", "set it with \"dashstream_brokers\"" },
    { "group.id", "set it with \"dashstream_group_id\"" },
    { "security.protocol",
      "set it with \"dashstream_security_protocol\"" },
    { "sasl.mechanism", "set it with \"dashstream_sasl_mechanism\"" },
    { "sasl.mechanisms", "set it with \"dashstream_sasl_mechanism\"" },
    { "sasl.username", "set it with \"dashstream_sasl_username\"" },
    { "sasl.password", "set it with \"dashstream_sasl_password\" or "
                       "\"dashstream_sasl_password_file\"" },
    { "ssl.ca.location", "set it with \"dashstream_ssl_ca\"" },
    { "ssl.ca.pem", "set it with \"dashstream_ssl_ca\"" },
    { "ssl.certificate.location",
      "set it with \"dashstream_ssl_certificate\"" },
    { "ssl.certificate.pem", "set it with \"dashstream_ssl_certificate\"" },
    { "ssl.key.location", "set it with \"dashstream_ssl_certificate_key\"" },
    { "ssl.key.pem", "set it with \"dashstream_ssl_certificate_key\"" },
    { "socket.timeout.ms", "set it with \"dashstream_socket_timeout\"" },
    { "socket.connection.setup.timeout.ms",
      "set it with \"dashstream_connect_timeout\"" },
    { "session.timeout.ms", "set it with \"dashstream_session_timeout\"" },
    { "heartbeat.interval.ms",
      "the module derives it from \"dashstream_session_timeout\"" },
    { "auto.offset.reset", "set it with \"dashstream_offset_reset\"" },
    { "message.timeout.ms", "set it with \"dashstream_dlq_timeout\"" },
    { "delivery.timeout.ms", "set it with \"dashstream_dlq_timeout\"" },
    { "enable.auto.offset.store", "the module stores each offset itself, "
      "once the message is in the ring or dead-lettered" },
    { "enable.auto.commit", "the module commits in group mode and never "
      "in broadcast mode" },
    { "auto.commit.enable", "the module commits in group mode and never "
      "in broadcast mode" },
    { "enable.partition.eof", "the consumer loop does not expect "
      "end-of-partition events" },
    { NULL, NULL }
};


/*
 * The template every client is made from.  Built once per configuration
 * load, in the master, so that a bad value fails "nginx -t" with
 * librdkafka's own words and the file:line of its directive.
 */

rd_kafka_conf_t *
ngx_http_dashstream_kafka_conf(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf)
{
    char                          err[512], *brokers;
    ngx_uint_t                    i;
    rd_kafka_conf_t              *kc;
    ngx_http_dashstream_kprop_t  *kp;

    if (ngx_http_dashstream_kafka_check(cf, dmcf) != NGX_OK) {
        return NULL;
    }

    brokers = ngx_pnalloc(cf->pool, dmcf->brokers.len + 1);
    if (brokers == NULL) {
        return NULL;
    }

    (void) ngx_cpystrn((u_char *) brokers, dmcf->brokers.data,
                       dmcf->brokers.len + 1);

    kc = rd_kafka_conf_new();
    if (kc == NULL) {
        return NULL;
    }

    if (ngx_http_dashstream_kafka_setc(kc, "bootstrap.servers", brokers,
                                       err, sizeof(err))
        || ngx_http_dashstream_kafka_setc(kc, "client.id", "ngx-dashstream",
                                          err, sizeof(err))
        /* commits stored offsets every second, unless a property says */
        || ngx_http_dashstream_kafka_setc(kc, "auto.commit.interval.ms",
                                          "1000", err, sizeof(err)))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "invalid \"dashstream_brokers\": %s in %s:%ui",
                      err, dmcf->brokers_file, dmcf->brokers_line);
        rd_kafka_conf_destroy(kc);
        return NULL;
    }

    kp = dmcf->kafka_props ? dmcf->kafka_props->elts : NULL;

    for (i = 0; kp && i < dmcf->kafka_props->nelts; i++) {
        if (ngx_http_dashstream_kafka_setc(kc, kp[i].name, kp[i].value,
                                           err, sizeof(err)))
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%s\": %s in %s:%ui", kp[i].directive,
                          ngx_http_dashstream_kafka_chomp(err), kp[i].file,
                          kp[i].line);
            rd_kafka_conf_destroy(kc);
            return NULL;
        }
    }

    if (ngx_http_dashstream_kafka_probe(cf, dmcf, kc) != NGX_OK) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }

    return kc;
}


/*
 * Settings that are valid one by one but not together: SASL settings
 * without a SASL protocol are silently ignored by librdkafka, and a SASL
 * protocol without a mechanism falls back to GSSAPI.
 */

static ngx_int_t
ngx_http_dashstream_kafka_check(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf)
{
    ngx_uint_t                    sasl, ssl;
    const char                   *missing;
    ngx_http_dashstream_kprop_t  *proto, *cert, *key;

    proto = ngx_http_dashstream_kafka_find(dmcf, "security.protocol");

    sasl = proto && ngx_strncmp(proto->value, "sasl_", 5) == 0;
    ssl = proto && ngx_strstr(proto->value, "ssl") != NULL;

    if (ngx_http_dashstream_kafka_needs(cf, dmcf, "dashstream_sasl_", sasl,
                                        "sasl_plaintext or sasl_ssl")
           != NGX_OK
        || ngx_http_dashstream_kafka_needs(cf, dmcf, "dashstream_ssl_", ssl,
                                           "ssl or sasl_ssl")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    missing = NULL;

    if (sasl) {
        missing = !ngx_http_dashstream_kafka_find(dmcf, "sasl.mechanism")
                  ? "dashstream_sasl_mechanism"
                  : !ngx_http_dashstream_kafka_find(dmcf, "sasl.username")
                  ? "dashstream_sasl_username"
                  : !ngx_http_dashstream_kafka_find(dmcf, "sasl.password")
                  ? "dashstream_sasl_password\" or "
                    "\"dashstream_sasl_password_file" : NULL;
    }

    if (missing) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_security_protocol %s\" needs \"%s\" "
                      "in %s:%ui", proto->value, missing, proto->file,
                      proto->line);
        return NGX_ERROR;
    }

    cert = ngx_http_dashstream_kafka_find(dmcf, "ssl.certificate.pem");
    key = ngx_http_dashstream_kafka_find(dmcf, "ssl.key.pem");

    if (cert != NULL && key == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_ssl_certificate\" needs "
                      "\"dashstream_ssl_certificate_key\" in %s:%ui",
                      cert->file, cert->line);
        return NGX_ERROR;
    }

    if (key != NULL && cert == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"dashstream_ssl_certificate_key\" needs "
                      "\"dashstream_ssl_certificate\" in %s:%ui",
                      key->file, key->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_dashstream_kafka_needs(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf, const char *prefix,
    ngx_uint_t allowed, const char *protocols)
{
    size_t                        len;
    ngx_uint_t                    i;
    ngx_http_dashstream_kprop_t  *kp;

    if (allowed || dmcf->kafka_props == NULL) {
        return NGX_OK;
    }

    len = ngx_strlen(prefix);
    kp = dmcf->kafka_props->elts;

    for (i = 0; i < dmcf->kafka_props->nelts; i++) {
        if (ngx_strncmp(kp[i].directive, prefix, len) == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%s\" needs \"dashstream_security_protocol\" "
                          "%s in %s:%ui", kp[i].directive, protocols,
                          kp[i].file, kp[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * What only rd_kafka_new() checks (certificate and key files that do not
 * parse or do not match, a mechanism this librdkafka lacks, conflicting
 * properties): a throwaway producer, destroyed at once.  librdkafka
 * blocks every signal in its own threads, so the master's are unaffected.
 */

static ngx_int_t
ngx_http_dashstream_kafka_probe(ngx_conf_t *cf,
    ngx_http_dashstream_main_conf_t *dmcf, rd_kafka_conf_t *kc)
{
    char                          err[512];
    u_char                       *file;
    ngx_uint_t                    i, line;
    rd_kafka_t                   *rk;
    rd_kafka_conf_t              *probe;
    ngx_http_dashstream_kprop_t  *kp;

    probe = rd_kafka_conf_dup(kc);
    if (probe == NULL) {
        return NGX_ERROR;
    }

    rd_kafka_conf_set_log_cb(probe, ngx_http_dashstream_kafka_quiet);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, probe, err, sizeof(err));

    /*
     * Loading PEM chains leaves "no start line" in this thread's OpenSSL
     * error queue: the workers would inherit it and nginx would report it
     * as a stale error at their first TLS handshake.
     */

    ERR_clear_error();

    if (rk) {
        rd_kafka_destroy(rk);
        return NGX_OK;
    }

    rd_kafka_conf_destroy(probe);

    /* blame the directive whose property librdkafka names, if any */

    file = dmcf->brokers_file;
    line = dmcf->brokers_line;
    kp = dmcf->kafka_props ? dmcf->kafka_props->elts : NULL;

    for (i = 0; kp && i < dmcf->kafka_props->nelts; i++) {
        if (ngx_strstr(err, kp[i].name)) {
            file = kp[i].file;
            line = kp[i].line;
        }
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "librdkafka refuses the Kafka client settings: %s "
                  "in %s:%ui", ngx_http_dashstream_kafka_chomp(err), file,
                  line);

    return NGX_ERROR;
}


static void
ngx_http_dashstream_kafka_quiet(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf)
{
    /* the probe never talks to a broker: nothing worth saying */
}


/* dashstream_kafka_property NAME VALUE */

char *
ngx_http_dashstream_kafka_property(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t   *value;
    const char  *why;

    value = cf->args->elts;

    why = ngx_http_dashstream_kafka_managed(&value[1]);

    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "Kafka property \"%V\" is managed by the "
                           "module: %s", &value[1], why);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_dashstream_kafka_push(cf, cmd, conf, (char *) value[1].data,
                                       &value[2])
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static const char *
ngx_http_dashstream_kafka_managed(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_dashstream_kafka_managed_props[i].name; i++) {
        if (ngx_strcasecmp(name->data, (u_char *)
                           ngx_http_dashstream_kafka_managed_props[i].name)
            == 0)
        {
            return ngx_http_dashstream_kafka_managed_props[i].why;
        }
    }

    return NULL;
}


/*
 * dashstream_security_protocol plaintext|ssl|sasl_plaintext|sasl_ssl and
 * dashstream_sasl_mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512: the
 * mechanisms librdkafka implements itself, without Kerberos or OAuth.
 */

char *
ngx_http_dashstream_kafka_security(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_dashstream_main_conf_t *dmcf = conf;

    ngx_str_t    *value;
    ngx_uint_t    i, proto;
    const char  **allowed;

    static const char  *protocols[] = {
        "plaintext", "ssl", "sasl_plaintext", "sasl_ssl", NULL
    };

    static const char  *mechanisms[] = {
        "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL
    };

    value = cf->args->elts;
    proto = (ngx_strcmp(cmd->post, "security.protocol") == 0);
    allowed = proto ? protocols : mechanisms;

    for (i = 0; allowed[i]; i++) {
        if (ngx_strcmp(value[1].data, allowed[i]) == 0) {
            break;
        }
    }

    if (allowed[i] == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": must be %s", &value[1],
                           proto ? "plaintext, ssl, sasl_plaintext or "
                                   "sasl_ssl"
                                 : "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_dashstream_kafka_push(cf, cmd, dmcf, cmd->post, &value[1])
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    if (proto) {
        dmcf->security_protocol = value[1];

    } else {
        dmcf->sasl_mechanism = value[1];
    }

    return NGX_CONF_OK;
}


/* dashstream_sasl_username, dashstream_sasl_password */

char *
ngx_http_dashstream_kafka_sasl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty value");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_dashstream_kafka_push(cf, cmd, conf, cmd->post, &value[1])
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * dashstream_sasl_password_file: read once, at configuration time, so that
 * the secret need not be in nginx.conf (nor in "nginx -T"); trailing line
 * breaks are not part of it.
 */

char *
ngx_http_dashstream_kafka_password_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t  secret;

    if (ngx_http_dashstream_kafka_read(cf, 4096, &secret) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (secret.len
           && (secret.data[secret.len - 1] == LF
               || secret.data[secret.len - 1] == CR))
    {
        secret.data[--secret.len] = '\0';
    }

    if (secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "no password in \"%V\"",
                           &((ngx_str_t *) cf->args->elts)[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_dashstream_kafka_push(cf, cmd, conf, cmd->post, &secret)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * dashstream_ssl_ca, dashstream_ssl_certificate(_key): PEM files, read by
 * the master as nginx reads its own certificates, and given to librdkafka
 * as ssl.*.pem, so that a key readable by root only works.
 */

char *
ngx_http_dashstream_kafka_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t  pem;

    if (ngx_http_dashstream_kafka_read(cf, 1024 * 1024, &pem) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_dashstream_kafka_push(cf, cmd, conf, cmd->post, &pem)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the file the directive names, whole and NUL-terminated, < max bytes */

static ngx_int_t
ngx_http_dashstream_kafka_read(ngx_conf_t *cf, size_t max, ngx_str_t *out)
{
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value;
    ngx_file_info_t   fi;

    value = cf->args->elts;

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(value[1].data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &value[1]);
        return NGX_ERROR;
    }

    n = -1;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &value[1]);

    } else if (!ngx_is_file(&fi) || (size_t) ngx_file_size(&fi) >= max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a file of less than %uz bytes",
                           &value[1], max);

    } else {
        out->data = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);

        if (out->data) {
            n = ngx_read_fd(fd, out->data, (size_t) ngx_file_size(&fi));

            if (n == -1) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                                   ngx_read_fd_n " \"%V\" failed",
                                   &value[1]);
            }
        }
    }

    (void) ngx_close_file(fd);

    if (n == -1) {
        return NGX_ERROR;
    }

    out->len = n;
    out->data[n] = '\0';

    return NGX_OK;
}


/* dashstream_socket_timeout, dashstream_connect_timeout */

char *
ngx_http_dashstream_kafka_timeout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t   *value, ms;
    ngx_msec_t   t;

    value = cf->args->elts;

    t = ngx_parse_time(&value[1], 0);

    if (t == (ngx_msec_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* librdkafka reads an int: a larger value would wrap */

    if (t > NGX_HTTP_DASHSTREAM_KAFKA_MAX_MS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": value must be at most %Mms",
                           &cmd->name, (ngx_msec_t)
                           NGX_HTTP_DASHSTREAM_KAFKA_MAX_MS);
        return NGX_CONF_ERROR;
    }

    ms.data = ngx_pnalloc(cf->pool, NGX_INT_T_LEN + 1);
    if (ms.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ms.len = ngx_sprintf(ms.data, "%M", t) - ms.data;
    ms.data[ms.len] = '\0';

    if (ngx_http_dashstream_kafka_push(cf, cmd, conf, cmd->post, &ms)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Records one property (value NUL-terminated) once librdkafka accepted it
 * on a scratch configuration, so that a bad name or value fails at its
 * own line.  librdkafka never quotes a string value it accepts, so no
 * secret reaches a message.
 */

static ngx_http_dashstream_kprop_t *
ngx_http_dashstream_kafka_push(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_dashstream_main_conf_t *dmcf, const char *name, ngx_str_t *value)
{
    char                          err[512];
    rd_kafka_conf_t              *scratch;
    rd_kafka_conf_res_t           rc;
    ngx_http_dashstream_kprop_t  *kp;

    kp = ngx_http_dashstream_kafka_find(dmcf, name);

    if (kp) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" sets Kafka property \"%s\", which "
                           "\"%s\" already sets (%s:%ui)", &cmd->name, name,
                           kp->directive, kp->file, kp->line);
        return NULL;
    }

    scratch = rd_kafka_conf_new();
    if (scratch == NULL) {
        return NULL;
    }

    rc = rd_kafka_conf_set(scratch, name, (char *) value->data, err,
                           sizeof(err));

    rd_kafka_conf_destroy(scratch);

    if (rc != RD_KAFKA_CONF_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\": %s", &cmd->name,
                           ngx_http_dashstream_kafka_chomp(err));
        return NULL;
    }

    if (dmcf->kafka_props == NULL) {
        dmcf->kafka_props = ngx_array_create(cf->pool, 8,
                                      sizeof(ngx_http_dashstream_kprop_t));
        if (dmcf->kafka_props == NULL) {
            return NULL;
        }
    }

    kp = ngx_array_push(dmcf->kafka_props);
    if (kp == NULL) {
        return NULL;
    }

    kp->name = name;
    kp->value = (char *) value->data;
    kp->directive = (const char *) cmd->name.data;
    kp->file = cf->conf_file->file.name.data;
    kp->line = cf->conf_file->line;

    return kp;
}


static ngx_http_dashstream_kprop_t *
ngx_http_dashstream_kafka_find(ngx_http_dashstream_main_conf_t *dmcf,
    const char *name)
{
    ngx_uint_t                    i;
    ngx_http_dashstream_kprop_t  *kp;

    if (dmcf->kafka_props == NULL) {
        return NULL;
    }

    kp = dmcf->kafka_props->elts;

    for (i = 0; i < dmcf->kafka_props->nelts; i++) {
        if (ngx_strcmp(kp[i].name, name) == 0) {
            return &kp[i];
        }
    }

    return NULL;
}


rd_kafka_t *
ngx_http_dashstream_kafka_client(int role,
    const ngx_http_dashstream_kafka_params_t *kp, char *err, size_t err_cap)
{
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *kc;

    kc = rd_kafka_conf_dup(kp->tmpl);
    if (kc == NULL) {
        snprintf(err, err_cap, "rd_kafka_conf_dup() failed");
        return NULL;
    }

    rd_kafka_conf_set_opaque(kc, kp->opaque);

    if (kp->log_cb) {
        rd_kafka_conf_set_log_cb(kc, kp->log_cb);
    }

    if (kp->error_cb) {
        rd_kafka_conf_set_error_cb(kc, kp->error_cb);
    }

    if ((role == NGX_HTTP_DASHSTREAM_CLIENT_PRODUCER
         ? ngx_http_dashstream_kafka_producer(kp, kc, err, err_cap)
         : ngx_http_dashstream_kafka_consumer(role, kp, kc, err, err_cap))
        != NGX_OK)
    {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }

    rk = rd_kafka_new(role == NGX_HTTP_DASHSTREAM_CLIENT_PRODUCER
                      ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
                      kc, err, err_cap);

    if (rk == NULL) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }

    return rk;
}


/*
 * A consumer stores offsets itself, after the record is in the ring; the
 * metadata client of the lag poller never joins the group, it only reads
 * the group's committed offsets.  librdkafka wants a group.id even for a
 * broadcast consumer's manual assignment; that one never commits.
 */

static ngx_int_t
ngx_http_dashstream_kafka_consumer(int role,
    const ngx_http_dashstream_kafka_params_t *kp, rd_kafka_conf_t *kc,
    char *err, size_t err_cap)
{
    char         timeout[32], heartbeat[32], value[32];
    size_t       size;
    ngx_uint_t   consumer;

    consumer = (role == NGX_HTTP_DASHSTREAM_CLIENT_CONSUMER);

    snprintf(timeout, sizeof(timeout), "%u", kp->session_timeout_ms);
    snprintf(heartbeat, sizeof(heartbeat), "%u", kp->session_timeout_ms / 3);

    if (ngx_http_dashstream_kafka_setc(kc, "enable.auto.offset.store",
                                       "false", err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "enable.partition.eof",
                                          "false", err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "auto.offset.reset",
                                          kp->offset_reset, err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "session.timeout.ms",
                                          timeout, err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "heartbeat.interval.ms",
                                          heartbeat, err, err_cap)
        || ngx_http_dashstream_kafka_setc(kc, "enable.auto.commit",
                                          consumer && kp->commit
                                          ? "true" : "false", err, err_cap)
        || (kp->group_id
            && ngx_http_dashstream_kafka_setc(kc, "group.id", kp->group_id,
                                              err, err_cap)))
    {
        return NGX_ERROR;
    }

    if (consumer && kp->rebalance_cb) {
        rd_kafka_conf_set_rebalance_cb(kc, kp->rebalance_cb);
    }

    /*
     * librdkafka stops fetching a partition whose queue holds
     * queued.min.messages and looks again only after a back-off: a
     * consumer that decodes every message drains the queue, then idles.
     * Queued bytes stay bounded by queued.max.messages.kbytes.  A value
     * given with dashstream_kafka_property is kept.
     */

    size = sizeof(value);

    if (consumer
        && rd_kafka_conf_get(kc, "queued.min.messages", value, &size)
           == RD_KAFKA_CONF_OK
        && ngx_strcmp(value, "100000") == 0
        && ngx_http_dashstream_kafka_setc(kc, "queued.min.messages",
                                          "1000000", err, err_cap))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The dead-letter producer: each attempt of a record ends within the
 * configured time with a delivery report; retries past that are the DLQ
 * module's, with its own backoff.
 */

static ngx_int_t
ngx_http_dashstream_kafka_producer(
    const ngx_http_dashstream_kafka_params_t *kp, rd_kafka_conf_t *kc,
    char *err, size_t err_cap)
{
    char  timeout[32];

    snprintf(timeout, sizeof(timeout), "%u", kp->message_timeout_ms);

    if (ngx_http_dashstream_kafka_setc(kc, "message.timeout.ms", timeout,
                                       err, err_cap))
    {
        return NGX_ERROR;
    }

    if (kp->dr_msg_cb) {
        rd_kafka_conf_set_dr_msg_cb(kc, kp->dr_msg_cb);
    }

    return NGX_OK;
}


unsigned
ngx_http_dashstream_kafka_error_type(int err)
{
    switch (err) {

    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        return NGX_HTTP_DASHSTREAM_KERR_TRANSPORT;

    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return NGX_HTTP_DASHSTREAM_KERR_BROKERS;

    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return NGX_HTTP_DASHSTREAM_KERR_AUTH;

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return NGX_HTTP_DASHSTREAM_KERR_TOPIC;

    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return NGX_HTTP_DASHSTREAM_KERR_TIMEOUT;

    case RD_KAFKA_RESP_ERR__RESOLVE:
        return NGX_HTTP_DASHSTREAM_KERR_RESOLVE;

    case RD_KAFKA_RESP_ERR__FATAL:
        return NGX_HTTP_DASHSTREAM_KERR_FATAL;

    default:
        return NGX_HTTP_DASHSTREAM_KERR_OTHER;
    }
}


const char *
ngx_http_dashstream_kafka_error_label(unsigned type)
{
    static const char  *labels[] = {
        "transport", "all_brokers_down", "authentication", "unknown_topic",
        "timed_out", "resolve", "fatal", "other"
    };

    return labels[type < NGX_HTTP_DASHSTREAM_KERR_N
                  ? type : NGX_HTTP_DASHSTREAM_KERR_OTHER];
}


static int
ngx_http_dashstream_kafka_setc(rd_kafka_conf_t *kc, const char *name,
    const char *value, char *err, size_t err_cap)
{
    return rd_kafka_conf_set(kc, name, value, err, err_cap)
           != RD_KAFKA_CONF_OK;
}


/* some librdkafka messages end with a line break */

static char *
ngx_http_dashstream_kafka_chomp(char *s)
{
    size_t  n;

    n = ngx_strlen(s);

    while (n && (s[n - 1] == LF || s[n - 1] == CR || s[n - 1] == ' ')) {
        s[--n] = '\0';
    }

    return s;
}
