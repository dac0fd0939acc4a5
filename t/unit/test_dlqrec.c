/*
 * Copyright (C) ngx_dashstream authors
 */


#include "unit.h"

#include "ngx_http_dashstream_dlqrec.h"


static unsigned char  out[1 << 21];


static const char *
b64(const char *s, size_t len)
{
    unsigned char  *end;

    end = ngx_http_dashstream_base64(out, (const unsigned char *) s, len);
    *end = '\0';

    CHECK_EQ_U64(end - out, ngx_http_dashstream_base64_len(len));

    return (const char *) out;
}


UNIT_TEST(test_base64_rfc4648_vectors)
{
    CHECK_STR(b64("", 0), "");
    CHECK_STR(b64("f", 1), "Zg==");
    CHECK_STR(b64("fo", 2), "Zm8=");
    CHECK_STR(b64("foo", 3), "Zm9v");
    CHECK_STR(b64("foob", 4), "Zm9vYg==");
    CHECK_STR(b64("fooba", 5), "Zm9vYmE=");
    CHECK_STR(b64("foobar", 6), "Zm9vYmFy");
    CHECK_STR(b64("\x00\xff\xfe\x01", 4), "AP/+AQ==");
    CHECK_STR(b64("\xfb\xff\xbf", 3), "+/+/");
}


UNIT_TEST(test_sha256_vectors)
{
    char            hex[NGX_HTTP_DASHSTREAM_SHA256_HEX + 1];
    unsigned char  *million;

    CHECK_EQ_INT(ngx_http_dashstream_sha256_hex(hex,
                     (const unsigned char *) "", 0), 0);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                   "27ae41e4649b934ca495991b7852b855");

    CHECK_EQ_INT(ngx_http_dashstream_sha256_hex(hex,
                     (const unsigned char *) "abc", 3), 0);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223"
                   "b00361a396177a9cb410ff61f20015ad");

    million = malloc(1000000);
    memset(million, 'a', 1000000);
    CHECK_EQ_INT(ngx_http_dashstream_sha256_hex(hex, million, 1000000), 0);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67"
                   "f1809a48a497200e046d39ccc7112cd0");
    free(million);
}


static void
record_init(ngx_http_dashstream_dlqrec_t *r)
{
    memset(r, 0, sizeof(ngx_http_dashstream_dlqrec_t));

    r->topic = (const unsigned char *) "dashstream-quality";
    r->topic_len = sizeof("dashstream-quality") - 1;
    r->partition = 3;
    r->offset = 1234567;
    r->timestamp_ms = 1700000000123LL;
    r->key = (const unsigned char *) "thread-1";
    r->key_len = 8;
    r->error_type = "truncated";
    r->error = "field 2: need 5 bytes, 2 left";
    r->payload = (const unsigned char *) "\x00\x0a\x05" "ab";
    r->payload_size = 5;
    r->included = 5;
    r->sha256_hex = "0123456789abcdef0123456789abcdef"
                    "0123456789abcdef0123456789abcdef";
    r->module_version = "0.1.0";
    r->dead_lettered_ms = 1700000000999ULL;
}


static const char *
record(const ngx_http_dashstream_dlqrec_t *r)
{
    unsigned char  *end;

    end = ngx_http_dashstream_dlqrec_write(out, r);
    *end = '\0';

    CHECK((size_t) (end - out) <= ngx_http_dashstream_dlqrec_size(r));

    return (const char *) out;
}


UNIT_TEST(test_record_exact_bytes)
{
    ngx_http_dashstream_dlqrec_t  r;

    record_init(&r);

    CHECK_STR(record(&r),
        "{\"schema\":\"dashstream.dlq.v1\",\"topic\":\"dashstream-quality\","
        "\"partition\":3,\"offset\":1234567,\"timestamp_ms\":1700000000123,"
        "\"key\":\"thread-1\",\"key_base64\":\"dGhyZWFkLTE=\","
        "\"error_type\":\"truncated\","
        "\"error\":\"field 2: need 5 bytes, 2 left\","
        "\"payload_size\":5,\"payload_truncated\":false,"
        "\"payload_sha256\":\"0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef\","
        "\"payload_base64\":\"AAoFYWI=\",\"module\":\"ngx_dashstream\","
        "\"module_version\":\"0.1.0\",\"dead_lettered_at_ms\":1700000000999}");
}


UNIT_TEST(test_record_without_key_or_timestamp)
{
    ngx_http_dashstream_dlqrec_t  r;

    record_init(&r);
    r.key = NULL;
    r.timestamp_ms = -1;
    r.payload_size = 0;
    r.included = 0;
    r.error_type = "invalid_protobuf";
    r.error = "";

    CHECK_STR(record(&r),
        "{\"schema\":\"dashstream.dlq.v1\",\"topic\":\"dashstream-quality\","
        "\"partition\":3,\"offset\":1234567,\"timestamp_ms\":null,"
        "\"key\":null,\"key_base64\":null,"
        "\"error_type\":\"invalid_protobuf\",\"error\":\"\","
        "\"payload_size\":0,\"payload_truncated\":false,"
        "\"payload_sha256\":\"0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef\","
        "\"payload_base64\":\"\",\"module\":\"ngx_dashstream\","
        "\"module_version\":\"0.1.0\",\"dead_lettered_at_ms\":1700000000999}");
}


UNIT_TEST(test_record_escapes_key_and_error)
{
    ngx_http_dashstream_dlqrec_t  r;

    record_init(&r);
    r.key = (const unsigned char *) "a\"b\\\x01\xff";
    r.key_len = 6;
    r.error = "bad \"tag\"\n";
    r.topic = (const unsigned char *) "t\"1";
    r.topic_len = 3;

    CHECK(strstr(record(&r),
                 "\"topic\":\"t\\\"1\",") != NULL);
    CHECK(strstr((const char *) out,
                 ",\"key\":\"a\\\"b\\\\\\u0001\\ufffd\","
                 "\"key_base64\":\"YSJiXAH/\",") != NULL);
    CHECK(strstr((const char *) out,
                 ",\"error\":\"bad \\\"tag\\\"\\u000a\",") != NULL);
}


UNIT_TEST(test_record_truncated_payload)
{
    size_t                         i;
    unsigned char                  payload[100];
    ngx_http_dashstream_dlqrec_t   r;

    for (i = 0; i < sizeof(payload); i++) {
        payload[i] = (unsigned char) i;
    }

    record_init(&r);
    r.payload = payload;
    r.payload_size = sizeof(payload);
    r.included = 4;

    CHECK(strstr(record(&r), "\"payload_size\":100,"
                             "\"payload_truncated\":true,") != NULL);
    CHECK(strstr((const char *) out,
                 "\"payload_base64\":\"AAECAw==\",") != NULL);

    r.included = 100;
    CHECK(strstr(record(&r), "\"payload_truncated\":false,") != NULL);
}


UNIT_TEST(test_record_size_bound)
{
    size_t                         n, len;
    unsigned char                 *end;
    static unsigned char           junk[70000];
    ngx_http_dashstream_dlqrec_t   r;

    for (n = 0; n < sizeof(junk); n++) {
        junk[n] = (unsigned char) (n * 7919 % 251);
    }

    record_init(&r);

    /* worst cases: every key and error byte escaped, huge numbers */
    r.key = (const unsigned char *) "\x01\x02\x03\"\"\\";
    r.key_len = 6;
    r.error = "\x01\x02\x03\x04\"\"\"\\\\\\";
    r.partition = -2147483647 - 1;
    r.offset = -9223372036854775807LL - 1;
    r.timestamp_ms = 9223372036854775807LL;
    r.dead_lettered_ms = 18446744073709551615ULL;

    for (n = 0; n < sizeof(junk); n += 997) {
        r.payload = junk;
        r.payload_size = sizeof(junk);
        r.included = n;

        end = ngx_http_dashstream_dlqrec_write(out, &r);
        len = end - out;

        CHECK(len <= ngx_http_dashstream_dlqrec_size(&r));
    }
}


UNIT_MAIN("dlqrec",
    UNIT_CASE(test_base64_rfc4648_vectors),
    UNIT_CASE(test_sha256_vectors),
    UNIT_CASE(test_record_exact_bytes),
    UNIT_CASE(test_record_without_key_or_timestamp),
    UNIT_CASE(test_record_escapes_key_and_error),
    UNIT_CASE(test_record_truncated_payload),
    UNIT_CASE(test_record_size_bound))
