/*
 * Copyright (C) ngx_dashstream authors
 */


#include "unit.h"

#include "ngx_http_dashstream_json.h"
#include "ngx_http_dashstream_dashflow.h"


#define S(lit)  (const unsigned char *) (lit), sizeof(lit) - 1

#define MAX_CURSORS  8
#define MAX_THREADS  4


static ngx_http_dashstream_cursor_t         cursors[MAX_CURSORS];
static ngx_http_dashstream_thread_cursor_t  threads[MAX_THREADS];
static char                                 scratch[64];
static ngx_http_dashstream_dashflow_msg_t   msg;
static const char                          *code;
static char                                 errmsg[128];
static unsigned char                        input[4096];


static int
parse_caps(const char *json, size_t max_cursors, size_t max_threads,
    size_t scratch_len)
{
    size_t          len;
    unsigned char  *copy;

    memset(&msg, 0x5a, sizeof(msg));
    msg.cursors = cursors;
    msg.max_cursors = max_cursors;
    msg.threads = threads;
    msg.max_threads = max_threads;
    msg.scratch = scratch;
    msg.scratch_len = scratch_len;
    code = "unset";

    /* at the very end of an array, so AddressSanitizer sees over-reads */
    len = strlen(json);
    if (len > sizeof(input)) {
        abort();
    }

    copy = input + sizeof(input) - len;
    memcpy(copy, json, len);

    return ngx_http_dashstream_dashflow_parse(copy, len, &msg, &code, errmsg,
                                              sizeof(errmsg));
}


static int
parse(const char *json)
{
    return parse_caps(json, MAX_CURSORS, MAX_THREADS, sizeof(scratch));
}


static void
check_error(const char *json, const char *expect_code,
    const char *expect_msg)
{
    unit_checks++;

    if (parse(json) != -1 || code == NULL || strcmp(code, expect_code) != 0
        || (expect_msg != NULL && strcmp(errmsg, expect_msg) != 0))
    {
        unit_failures++;
        fprintf(stderr, "%s: %s: expected %s \"%s\", got %s \"%s\"\n",
                unit_current, json, expect_code,
                expect_msg ? expect_msg : "*", code ? code : "(null)",
                errmsg);
    }
}


UNIT_TEST(test_resume_numbers_and_strings)
{
    CHECK_EQ_INT(parse("{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                       "{\"0\":\"41\",\"3\":7},\"from\":\"latest\","
                       "\"mode\":\"partition\"}"), 0);
    CHECK(code == NULL);
    CHECK_STR(errmsg, "");
    CHECK_EQ_INT(msg.type, NGX_HTTP_DASHSTREAM_MSG_RESUME);
    CHECK_EQ_INT(msg.from, NGX_HTTP_DASHSTREAM_FROM_LATEST);
    CHECK_EQ_INT(msg.mode, NGX_HTTP_DASHSTREAM_MODE_PARTITION);
    CHECK_EQ_INT(msg.has_partitions, 1);
    CHECK_EQ_INT(msg.has_threads, 0);
    CHECK_EQ_INT(msg.ncursors, 2);
    CHECK_EQ_INT(msg.nthreads, 0);
    CHECK_EQ_INT(cursors[0].partition, 0);
    CHECK_EQ_INT(cursors[0].offset, 41);
    CHECK_EQ_INT(cursors[1].partition, 3);
    CHECK_EQ_INT(cursors[1].offset, 7);
}


UNIT_TEST(test_resume_defaults)
{
    CHECK_EQ_INT(parse("{\"type\":\"resume\"}"), 0);
    CHECK_EQ_INT(msg.type, NGX_HTTP_DASHSTREAM_MSG_RESUME);
    CHECK_EQ_INT(msg.from, NGX_HTTP_DASHSTREAM_FROM_CURSOR);
    CHECK_EQ_INT(msg.mode, NGX_HTTP_DASHSTREAM_MODE_AUTO);
    CHECK_EQ_INT(msg.has_partitions, 0);
    CHECK_EQ_INT(msg.has_threads, 0);
    CHECK_EQ_INT(msg.ncursors, 0);
    CHECK_EQ_INT(msg.nthreads, 0);

    /* fields may come in any order; white space anywhere */
    CHECK_EQ_INT(parse(" {\n\"mode\" : \"thread\" ,\t\"type\":\"resume\"}"
                       "\r\n"), 0);
    CHECK_EQ_INT(msg.mode, NGX_HTTP_DASHSTREAM_MODE_THREAD);
}


UNIT_TEST(test_resume_empty_maps)
{
    CHECK_EQ_INT(parse("{\"type\":\"resume\",\"lastOffsetsByPartition\":{},"
                       "\"lastSequencesByThread\":{}}"), 0);
    CHECK_EQ_INT(msg.has_partitions, 1);
    CHECK_EQ_INT(msg.has_threads, 1);
    CHECK_EQ_INT(msg.ncursors, 0);
    CHECK_EQ_INT(msg.nthreads, 0);
}


UNIT_TEST(test_resume_from_and_mode_values)
{
    size_t  i;

    static const struct {
        const char  *json;
        int          from;
        int          mode;
    } v[] = {
        { "{\"type\":\"resume\",\"from\":\"latest\"}",
          NGX_HTTP_DASHSTREAM_FROM_LATEST, NGX_HTTP_DASHSTREAM_MODE_AUTO },
        { "{\"type\":\"resume\",\"from\":\"cursor\"}",
          NGX_HTTP_DASHSTREAM_FROM_CURSOR, NGX_HTTP_DASHSTREAM_MODE_AUTO },
        { "{\"type\":\"resume\",\"from\":\"earliest\"}",
          NGX_HTTP_DASHSTREAM_FROM_EARLIEST, NGX_HTTP_DASHSTREAM_MODE_AUTO },
        { "{\"type\":\"resume\",\"mode\":\"partition\"}",
          NGX_HTTP_DASHSTREAM_FROM_CURSOR,
          NGX_HTTP_DASHSTREAM_MODE_PARTITION },
        { "{\"type\":\"resume\",\"mode\":\"thread\"}",
          NGX_HTTP_DASHSTREAM_FROM_CURSOR, NGX_HTTP_DASHSTREAM_MODE_THREAD },
        { "{\"type\":\"resume\",\"mode\":\"auto\"}",
          NGX_HTTP_DASHSTREAM_FROM_CURSOR, NGX_HTTP_DASHSTREAM_MODE_AUTO },
        { "{\"type\":\"resume\",\"from\":\"earl\\u0069est\","
          "\"mode\":\"\\u0074hread\"}",
          NGX_HTTP_DASHSTREAM_FROM_EARLIEST, NGX_HTTP_DASHSTREAM_MODE_THREAD }
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        CHECK_EQ_INT(parse(v[i].json), 0);
        CHECK_EQ_INT(msg.from, v[i].from);
        CHECK_EQ_INT(msg.mode, v[i].mode);
    }
}


UNIT_TEST(test_resume_threads)
{
    CHECK_EQ_INT(parse("{\"type\":\"resume\",\"mode\":\"thread\","
                       "\"lastSequencesByThread\":{\"thread-a\":\"12\","
                       "\"t\\u00e9\\n\\\"\":18446744073709551615,\"\":0,"
                       "\"\\ud83d\\ude00\":\"18446744073709551615\"}}"), 0);
    CHECK_EQ_INT(msg.mode, NGX_HTTP_DASHSTREAM_MODE_THREAD);
    CHECK_EQ_INT(msg.has_threads, 1);
    CHECK_EQ_INT(msg.has_partitions, 0);
    CHECK_EQ_INT(msg.nthreads, 4);

    CHECK_EQ_INT(threads[0].len, 8);
    CHECK_MEM(threads[0].thread_id, "thread-a", 8);
    CHECK_EQ_U64(threads[0].sequence, 12);

    CHECK_EQ_INT(threads[1].len, 5);
    CHECK_MEM(threads[1].thread_id, "t\xc3\xa9\n\"", 5);
    CHECK_EQ_U64(threads[1].sequence, UINT64_MAX);

    CHECK_EQ_INT(threads[2].len, 0);
    CHECK_EQ_U64(threads[2].sequence, 0);

    CHECK_EQ_INT(threads[3].len, 4);
    CHECK_MEM(threads[3].thread_id, "\xf0\x9f\x98\x80", 4);
    CHECK_EQ_U64(threads[3].sequence, UINT64_MAX);

    /* ids live in the caller's scratch, packed */
    CHECK(threads[0].thread_id == scratch);
    CHECK(threads[1].thread_id == scratch + 8);
    CHECK(threads[3].thread_id == scratch + 13);
}


UNIT_TEST(test_resume_both_maps)
{
    CHECK_EQ_INT(parse("{\"lastSequencesByThread\":{\"a\":1},\"type\":"
                       "\"resume\",\"lastOffsetsByPartition\":{\"5\":\"6\"}}"),
                 0);
    CHECK_EQ_INT(msg.ncursors, 1);
    CHECK_EQ_INT(cursors[0].partition, 5);
    CHECK_EQ_INT(cursors[0].offset, 6);
    CHECK_EQ_INT(msg.nthreads, 1);
    CHECK_EQ_U64(threads[0].sequence, 1);
}


UNIT_TEST(test_cursor_reset)
{
    CHECK_EQ_INT(parse("{\"type\":\"cursor_reset\"}"), 0);
    CHECK_EQ_INT(msg.type, NGX_HTTP_DASHSTREAM_MSG_CURSOR_RESET);
    CHECK(code == NULL);

    /* resume fields mean nothing to cursor_reset and are not checked */
    CHECK_EQ_INT(parse("{\"from\":5,\"type\":\"cursor_reset\","
                       "\"lastOffsetsByPartition\":[-1],\"mode\":null}"), 0);
    CHECK_EQ_INT(msg.type, NGX_HTTP_DASHSTREAM_MSG_CURSOR_RESET);
    CHECK_EQ_INT(msg.ncursors, 0);
    CHECK_EQ_INT(msg.has_partitions, 0);
}


UNIT_TEST(test_unknown_fields_ignored)
{
    CHECK_EQ_INT(parse("{\"id\":1,\"type\":\"resume\",\"x\":{\"y\":[1,2,"
                       "{\"z\":null}],\"type\":\"bogus\"},\"x\":true,"
                       "\"lastOffsetsByPartition\":{\"1\":2},\"Type\":3}"),
                 0);
    CHECK_EQ_INT(msg.type, NGX_HTTP_DASHSTREAM_MSG_RESUME);
    CHECK_EQ_INT(msg.ncursors, 1);
    CHECK_EQ_INT(cursors[0].partition, 1);
    CHECK_EQ_INT(cursors[0].offset, 2);
}


UNIT_TEST(test_error_invalid_json)
{
    check_error("", "INVALID_JSON",
                "invalid JSON at byte 0: unexpected end of input");
    check_error("{", "INVALID_JSON",
                "invalid JSON at byte 1: unexpected end of input");
    check_error("{\"type\":\"resume\",}", "INVALID_JSON",
                "invalid JSON at byte 17: expected a string key");
    check_error("{\"type\":\"resume\"} x", "INVALID_JSON",
                "invalid JSON at byte 18: unexpected data after the value");
    check_error("{\"type\":\"resume\",\"lastOffsetsByPartition\":{\"0\":01}}",
                "INVALID_JSON",
                "invalid JSON at byte 48: leading zero in number");
    check_error("{\"type\":'resume'}", "INVALID_JSON",
                "invalid JSON at byte 8: unexpected character");
    check_error("{\"type\":\"resume\"}\n// comment", "INVALID_JSON", NULL);

    check_error("{\"type\":\"resume\",\"type\":\"resume\"}", "INVALID_JSON",
                "duplicate key \"type\"");
    check_error("{\"type\":\"resume\",\"lastOffsetsByPartition\":{},"
                "\"lastOffsetsByPartition\":{}}", "INVALID_JSON",
                "duplicate key \"lastOffsetsByPartition\"");
    check_error("{\"type\":\"resume\",\"fro\\u006d\":\"latest\","
                "\"from\":\"latest\"}", "INVALID_JSON",
                "duplicate key \"from\"");
}


UNIT_TEST(test_error_missing_type)
{
    check_error("{}", "MISSING_TYPE", "missing \"type\"");
    check_error("{\"lastOffsetsByPartition\":{}}", "MISSING_TYPE",
                "missing \"type\"");
    check_error("{\"x\":{\"type\":\"resume\"}}", "MISSING_TYPE",
                "missing \"type\"");
    check_error("[]", "MISSING_TYPE", "message is not a JSON object");
    check_error("\"resume\"", "MISSING_TYPE", "message is not a JSON object");
    check_error("null", "MISSING_TYPE", "message is not a JSON object");
    check_error("{\"type\":1}", "MISSING_TYPE", "\"type\" is not a string");
    check_error("{\"type\":null}", "MISSING_TYPE",
                "\"type\" is not a string");
    check_error("{\"type\":[\"resume\"]}", "MISSING_TYPE",
                "\"type\" is not a string");
}


UNIT_TEST(test_error_unknown_type)
{
    check_error("{\"type\":\"subscribe\"}", "UNKNOWN_MESSAGE_TYPE",
                "unknown message type");
    check_error("{\"type\":\"Resume\"}", "UNKNOWN_MESSAGE_TYPE", NULL);
    check_error("{\"type\":\"resume \"}", "UNKNOWN_MESSAGE_TYPE", NULL);
    check_error("{\"type\":\"\"}", "UNKNOWN_MESSAGE_TYPE", NULL);
    check_error("{\"type\":\"cursor\"}", "UNKNOWN_MESSAGE_TYPE", NULL);
    check_error("{\"type\":\"resume\\u0000\"}", "UNKNOWN_MESSAGE_TYPE", NULL);

    CHECK_EQ_INT(parse("{\"typ\\u0065\":\"resum\\u0065\"}"), 0);
    CHECK_EQ_INT(msg.type, NGX_HTTP_DASHSTREAM_MSG_RESUME);
}


UNIT_TEST(test_error_from_and_mode)
{
    static const char  from_msg[] =
        "\"from\" must be \"latest\", \"cursor\" or \"earliest\"";
    static const char  mode_msg[] =
        "\"mode\" must be \"partition\", \"thread\" or \"auto\"";

    check_error("{\"type\":\"resume\",\"from\":\"now\"}", "INVALID_FROM",
                from_msg);
    check_error("{\"type\":\"resume\",\"from\":\"Latest\"}", "INVALID_FROM",
                from_msg);
    check_error("{\"type\":\"resume\",\"from\":\"\"}", "INVALID_FROM",
                from_msg);
    check_error("{\"type\":\"resume\",\"from\":null}", "INVALID_FROM",
                from_msg);
    check_error("{\"type\":\"resume\",\"from\":1}", "INVALID_FROM",
                from_msg);
    check_error("{\"type\":\"resume\",\"mode\":\"threads\"}", "INVALID_MODE",
                mode_msg);
    check_error("{\"type\":\"resume\",\"mode\":false}", "INVALID_MODE",
                mode_msg);
    check_error("{\"type\":\"resume\",\"mode\":{}}", "INVALID_MODE",
                mode_msg);

    /* from is checked before mode, both before cursors */
    check_error("{\"type\":\"resume\",\"mode\":\"x\",\"from\":\"y\","
                "\"lastOffsetsByPartition\":1}", "INVALID_FROM", from_msg);
    check_error("{\"type\":\"resume\",\"mode\":\"x\","
                "\"lastOffsetsByPartition\":1}", "INVALID_MODE", mode_msg);
}


UNIT_TEST(test_error_partition_keys)
{
    static const char  *keys[] = {
        "-1", "a", "01", "00", "2147483648", "99999999999", "", " 1", "1 ",
        "1.0", "1e1", "+1", "0x1", "\\u00301", NULL
    };

    char          json[128];
    const char  **k;

    for (k = keys; *k != NULL; k++) {
        snprintf(json, sizeof(json),
                 "{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                 "{\"1\":1,\"%s\":1}}", *k);
        check_error(json, "INVALID_CURSOR",
                    "partition entry 1: key is not a non-negative 32-bit "
                    "integer");
    }

    CHECK_EQ_INT(parse("{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                       "{\"2147483647\":0,\"\\u0031\\u0032\":1}}"), 0);
    CHECK_EQ_INT(msg.ncursors, 2);
    CHECK_EQ_INT(cursors[0].partition, INT32_MAX);
    CHECK_EQ_INT(cursors[0].offset, 0);
    CHECK_EQ_INT(cursors[1].partition, 12);
}


UNIT_TEST(test_error_offsets)
{
    static const char  *values[] = {
        "-1", "\"-1\"", "-0", "1.5", "1e3", "1E3", "1.0", "\"1e3\"", "\"\"",
        "\" 1\"", "\"1 \"", "\"+1\"", "\"007\"", "\"0x10\"",
        "9223372036854775808", "\"9223372036854775808\"",
        "18446744073709551616", "\"123456789012345678901\"",
        "-9223372036854775808", "true", "false", "null", "{}", "[]", "[1]",
        NULL
    };

    char          json[128];
    const char  **v;

    for (v = values; *v != NULL; v++) {
        snprintf(json, sizeof(json),
                 "{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                 "{\"3\":%s}}", *v);
        check_error(json, "INVALID_CURSOR",
                    "offset for partition 3 is not a non-negative 64-bit "
                    "integer");
    }

    CHECK_EQ_INT(parse("{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                       "{\"0\":9223372036854775807,"
                       "\"1\":\"9223372036854775807\",\"2\":0,\"3\":\"0\","
                       "\"4\":\"\\u0034\\u0031\"}}"), 0);
    CHECK_EQ_INT(msg.ncursors, 5);
    CHECK_EQ_INT(cursors[0].offset, INT64_MAX);
    CHECK_EQ_INT(cursors[1].offset, INT64_MAX);
    CHECK_EQ_INT(cursors[2].offset, 0);
    CHECK_EQ_INT(cursors[3].offset, 0);
    CHECK_EQ_INT(cursors[4].offset, 41);
}


UNIT_TEST(test_error_sequences)
{
    static const char  *values[] = {
        "-1", "\"-1\"", "1.5", "1e3", "\"\"", "\"01\"",
        "18446744073709551616", "\"18446744073709551616\"", "null", "{}",
        NULL
    };

    char          json[128];
    const char  **v;

    for (v = values; *v != NULL; v++) {
        snprintf(json, sizeof(json),
                 "{\"type\":\"resume\",\"lastSequencesByThread\":"
                 "{\"a\":1,\"b\":%s}}", *v);
        check_error(json, "INVALID_CURSOR",
                    "thread entry 1: sequence is not a non-negative 64-bit "
                    "integer");
    }

    check_error("{\"type\":\"resume\",\"lastSequencesByThread\":[]}",
                "INVALID_CURSOR",
                "\"lastSequencesByThread\" is not an object");
    check_error("{\"type\":\"resume\",\"lastSequencesByThread\":null}",
                "INVALID_CURSOR",
                "\"lastSequencesByThread\" is not an object");
}


UNIT_TEST(test_error_map_types)
{
    check_error("{\"type\":\"resume\",\"lastOffsetsByPartition\":[]}",
                "INVALID_CURSOR",
                "\"lastOffsetsByPartition\" is not an object");
    check_error("{\"type\":\"resume\",\"lastOffsetsByPartition\":\"0:1\"}",
                "INVALID_CURSOR",
                "\"lastOffsetsByPartition\" is not an object");
    check_error("{\"type\":\"resume\",\"lastOffsetsByPartition\":null}",
                "INVALID_CURSOR",
                "\"lastOffsetsByPartition\" is not an object");
}


UNIT_TEST(test_duplicates)
{
    check_error("{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                "{\"0\":1,\"1\":1,\"0\":2}}", "INVALID_CURSOR",
                "duplicate partition 0");
    check_error("{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                "{\"7\":1,\"\\u0037\":\"1\"}}", "INVALID_CURSOR",
                "duplicate partition 7");
    check_error("{\"type\":\"resume\",\"lastSequencesByThread\":"
                "{\"ab\":1,\"a\":1,\"a\\u0062\":2}}", "INVALID_CURSOR",
                "thread entry 2: duplicate id");
    check_error("{\"type\":\"resume\",\"lastSequencesByThread\":"
                "{\"\":1,\"\":2}}", "INVALID_CURSOR",
                "thread entry 1: duplicate id");

    /* a prefix is not a duplicate */
    CHECK_EQ_INT(parse("{\"type\":\"resume\",\"lastSequencesByThread\":"
                       "{\"ab\":1,\"a\":2,\"abc\":3}}"), 0);
    CHECK_EQ_INT(msg.nthreads, 3);

    /* duplicates among unknown keys are as ignored as the keys */
    CHECK_EQ_INT(parse("{\"x\":1,\"x\":2,\"type\":\"resume\"}"), 0);
}


static void
map(char *buf, size_t size, const char *name, size_t n, int strings)
{
    size_t  i, len;

    len = snprintf(buf, size, "{\"type\":\"resume\",\"%s\":{", name);

    for (i = 0; i < n; i++) {
        len += snprintf(buf + len, size - len,
                        strings ? "%s\"t%zu\":\"%zu\"" : "%s\"%zu\":%zu",
                        i ? "," : "", i, i * 10);
    }

    snprintf(buf + len, size - len, "}}");
}


UNIT_TEST(test_partition_cap)
{
    char  json[1024];

    map(json, sizeof(json), "lastOffsetsByPartition", 8, 0);
    CHECK_EQ_INT(parse_caps(json, 8, 0, 0), 0);
    CHECK_EQ_INT(msg.ncursors, 8);
    CHECK_EQ_INT(cursors[7].partition, 7);
    CHECK_EQ_INT(cursors[7].offset, 70);

    map(json, sizeof(json), "lastOffsetsByPartition", 5, 0);
    CHECK_EQ_INT(parse_caps(json, 4, 0, 0), -1);
    CHECK_STR(code, "RESUME_TOO_MANY_PARTITIONS");
    CHECK_STR(errmsg, "more than 4 partitions");

    map(json, sizeof(json), "lastOffsetsByPartition", 4, 0);
    CHECK_EQ_INT(parse_caps(json, 4, 0, 0), 0);
    CHECK_EQ_INT(msg.ncursors, 4);

    map(json, sizeof(json), "lastOffsetsByPartition", 1, 0);
    CHECK_EQ_INT(parse_caps(json, 0, 0, 0), -1);
    CHECK_STR(code, "RESUME_TOO_MANY_PARTITIONS");
    CHECK_STR(errmsg, "more than 0 partitions");

    map(json, sizeof(json), "lastOffsetsByPartition", 0, 0);
    CHECK_EQ_INT(parse_caps(json, 0, 0, 0), 0);
    CHECK_EQ_INT(msg.has_partitions, 1);

    /* the cap never lets the parser write past max_cursors */
    cursors[3].partition = -7;
    map(json, sizeof(json), "lastOffsetsByPartition", 8, 0);
    CHECK_EQ_INT(parse_caps(json, 3, 0, 0), -1);
    CHECK_EQ_INT(cursors[3].partition, -7);
}


UNIT_TEST(test_thread_cap)
{
    char  json[1024];

    map(json, sizeof(json), "lastSequencesByThread", 4, 1);
    CHECK_EQ_INT(parse_caps(json, 0, 4, sizeof(scratch)), 0);
    CHECK_EQ_INT(msg.nthreads, 4);
    CHECK_EQ_INT(threads[3].len, 2);
    CHECK_MEM(threads[3].thread_id, "t3", 2);
    CHECK_EQ_U64(threads[3].sequence, 30);

    map(json, sizeof(json), "lastSequencesByThread", 4, 1);
    CHECK_EQ_INT(parse_caps(json, 0, 3, sizeof(scratch)), -1);
    CHECK_STR(code, "RESUME_TOO_MANY_THREADS");
    CHECK_STR(errmsg, "more than 3 threads");

    map(json, sizeof(json), "lastSequencesByThread", 1, 1);
    CHECK_EQ_INT(parse_caps(json, 0, 0, sizeof(scratch)), -1);
    CHECK_STR(code, "RESUME_TOO_MANY_THREADS");
}


UNIT_TEST(test_thread_scratch)
{
    static const char  json[] =
        "{\"type\":\"resume\",\"lastSequencesByThread\":"
        "{\"abc\":1,\"\\u00e9f\":2}}";
    static const char  empty_id[] =
        "{\"type\":\"resume\",\"lastSequencesByThread\":{\"\":5}}";

    /* "abc" and "\u00e9f" decode to 6 bytes */
    CHECK_EQ_INT(parse_caps(json, 0, 4, 6), 0);
    CHECK_EQ_INT(msg.nthreads, 2);
    CHECK_MEM(threads[1].thread_id, "\xc3\xa9" "f", 3);

    CHECK_EQ_INT(parse_caps(json, 0, 4, 5), -1);
    CHECK_STR(code, "INVALID_CURSOR");
    CHECK_STR(errmsg, "thread ids longer than 5 bytes in all");

    memset(&msg, 0, sizeof(msg));
    msg.threads = threads;
    msg.max_threads = 4;
    CHECK_EQ_INT(ngx_http_dashstream_dashflow_parse(
                     S(json), &msg, &code, NULL, 0), -1);
    CHECK_STR(code, "INVALID_CURSOR");

    CHECK_EQ_INT(ngx_http_dashstream_dashflow_parse(S(empty_id), &msg, &code,
                                                    NULL, 0), 0);
    CHECK_EQ_INT(msg.nthreads, 1);
    CHECK_EQ_INT(threads[0].len, 0);
    CHECK_EQ_U64(threads[0].sequence, 5);
}


static void
nest(char *buf, size_t size, size_t depth)
{
    size_t  i, len;

    len = snprintf(buf, size, "{\"type\":\"resume\",\"x\":");

    for (i = 0; i < depth; i++) {
        buf[len++] = '[';
    }

    for (i = 0; i < depth; i++) {
        buf[len++] = ']';
    }

    snprintf(buf + len, size - len, "}");
}


UNIT_TEST(test_deep_nesting)
{
    char  json[256];

    /* the top-level object counts as one level */
    nest(json, sizeof(json), NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH - 1);
    CHECK_EQ_INT(parse(json), 0);

    nest(json, sizeof(json), NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH);
    CHECK_EQ_INT(parse(json), -1);
    CHECK_STR(code, "INVALID_JSON");
    CHECK_STR(errmsg, "invalid JSON at byte 36: nesting too deep");

    nest(json, sizeof(json), 100);
    CHECK_EQ_INT(parse(json), -1);
    CHECK_STR(code, "INVALID_JSON");
}


UNIT_TEST(test_results_reset)
{
    CHECK_EQ_INT(parse("{\"type\":\"resume\",\"from\":\"earliest\","
                       "\"lastOffsetsByPartition\":{\"1\":1},"
                       "\"lastSequencesByThread\":{\"a\":1}}"), 0);
    CHECK_EQ_INT(msg.ncursors, 1);

    msg.max_cursors = MAX_CURSORS;
    CHECK_EQ_INT(ngx_http_dashstream_dashflow_parse(
                     (const unsigned char *) "{\"type\":\"resume\"}", 17,
                     &msg, &code, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(msg.ncursors, 0);
    CHECK_EQ_INT(msg.nthreads, 0);
    CHECK_EQ_INT(msg.has_partitions, 0);
    CHECK_EQ_INT(msg.has_threads, 0);
    CHECK_EQ_INT(msg.from, NGX_HTTP_DASHSTREAM_FROM_CURSOR);
    CHECK(code == NULL);
    CHECK_STR(errmsg, "");
}


UNIT_TEST(test_errmsg_truncated)
{
    char  small[8];

    memset(&msg, 0, sizeof(msg));
    memset(small, 'x', sizeof(small));

    CHECK_EQ_INT(ngx_http_dashstream_dashflow_parse(
                     (const unsigned char *) "{}", 2, &msg, &code, small,
                     sizeof(small)), -1);
    CHECK_STR(code, "MISSING_TYPE");
    CHECK_STR(small, "missing");

    CHECK_EQ_INT(ngx_http_dashstream_dashflow_parse(
                     (const unsigned char *) "{}", 2, &msg, &code, NULL, 0),
                 -1);
    CHECK_STR(code, "MISSING_TYPE");
}


/*
 * Checks the exact output, that every smaller buffer gives 0 and that no
 * writer touches a byte past the size it was given.
 */

typedef size_t (*writer_pt)(unsigned char *buf, size_t size, const void *arg);


static void
check_writer(writer_pt w, const void *arg, const char *expect)
{
    size_t         n, size, len;
    unsigned char  buf[512];

    len = strlen(expect);

    memset(buf, 0xee, sizeof(buf));
    n = w(buf, sizeof(buf), arg);
    CHECK_EQ_INT(n, len);
    CHECK_MEM(buf, expect, len);
    CHECK_EQ_INT(buf[len], 0xee);
    CHECK_EQ_INT(ngx_http_dashstream_json_validate(buf, n, NULL, NULL), 0);

    CHECK_EQ_INT(w(buf, len, arg), len);

    for (size = 0; size < len; size++) {
        memset(buf, 0xee, sizeof(buf));
        unit_checks++;

        if (w(buf, size, arg) != 0 || buf[size] != 0xee) {
            unit_failures++;
            fprintf(stderr, "%s: size %zu of %zu not refused cleanly\n",
                    unit_current, size, len);
            break;
        }
    }

    CHECK_EQ_INT(w(NULL, 0, arg), 0);
}


typedef struct {
    int32_t      partition;
    int64_t      a;
    int64_t      b;
    const char  *s1;
    const char  *s2;
} args_t;


static size_t
w_cursor(unsigned char *buf, size_t size, const void *arg)
{
    const args_t  *a = arg;

    return ngx_http_dashstream_dashflow_write_cursor(buf, size, a->partition,
                                                     a->a);
}


static size_t
w_cursor_stale(unsigned char *buf, size_t size, const void *arg)
{
    const args_t  *a = arg;

    return ngx_http_dashstream_dashflow_write_cursor_stale(buf, size,
                                       a->partition, a->a, a->b, a->s1);
}


static size_t
w_gap(unsigned char *buf, size_t size, const void *arg)
{
    const args_t  *a = arg;

    return ngx_http_dashstream_dashflow_write_gap(buf, size, a->partition,
                                                  (uint64_t) a->a, a->s1);
}


static size_t
w_gap_dropped(unsigned char *buf, size_t size, const void *arg)
{
    const args_t  *a = arg;

    return ngx_http_dashstream_dashflow_write_gap_dropped(buf, size,
                                              (uint64_t) a->a, a->s1, a->s2);
}


static size_t
w_error(unsigned char *buf, size_t size, const void *arg)
{
    const args_t  *a = arg;

    return ngx_http_dashstream_dashflow_write_error(buf, size, a->s1, a->s2);
}


static size_t
w_replay(unsigned char *buf, size_t size, const void *arg)
{
    return ngx_http_dashstream_dashflow_write_replay_complete(buf, size, arg);
}


static size_t
w_reset(unsigned char *buf, size_t size, const void *arg)
{
    const args_t  *a = arg;

    return ngx_http_dashstream_dashflow_write_cursor_reset_complete(buf, size,
                                                 (const void *) a->s1,
                                                 (size_t) a->a);
}


UNIT_TEST(test_write_cursor)
{
    args_t  a;

    memset(&a, 0, sizeof(a));

    a.partition = 3;
    a.a = 41;
    check_writer(w_cursor, &a,
                 "{\"type\":\"cursor\",\"partition\":3,\"offset\":\"41\"}");

    a.partition = 0;
    a.a = 0;
    check_writer(w_cursor, &a,
                 "{\"type\":\"cursor\",\"partition\":0,\"offset\":\"0\"}");

    a.partition = INT32_MAX;
    a.a = INT64_MAX;
    check_writer(w_cursor, &a,
                 "{\"type\":\"cursor\",\"partition\":2147483647,"
                 "\"offset\":\"9223372036854775807\"}");

    a.partition = INT32_MIN;
    a.a = INT64_MIN;
    check_writer(w_cursor, &a,
                 "{\"type\":\"cursor\",\"partition\":-2147483648,"
                 "\"offset\":\"-9223372036854775808\"}");
}


UNIT_TEST(test_write_replay_complete)
{
    int32_t                               missing[] = { 0, 3 };
    ngx_http_dashstream_cursor_t          last[] = { { 0, 57 }, { 3, 12 } };
    ngx_http_dashstream_replay_summary_t  rs;

    memset(&rs, 0, sizeof(rs));
    rs.total_replayed = 42;
    rs.last = last;
    rs.nlast = 2;
    rs.missing = missing;
    rs.nmissing = 2;
    rs.mode = "cursor";

    check_writer(w_replay, &rs,
                 "{\"type\":\"replay_complete\",\"totalReplayed\":42,"
                 "\"lastOffsetsByPartition\":{\"0\":\"57\",\"3\":\"12\"},"
                 "\"capped\":false,\"mode\":\"cursor\",\"complete\":false,"
                 "\"missingPartitions\":[0,3]}");

    rs.nmissing = 0;
    check_writer(w_replay, &rs,
                 "{\"type\":\"replay_complete\",\"totalReplayed\":42,"
                 "\"lastOffsetsByPartition\":{\"0\":\"57\",\"3\":\"12\"},"
                 "\"capped\":false,\"mode\":\"cursor\",\"complete\":true,"
                 "\"missingPartitions\":[]}");

    rs.capped = 1;
    rs.nlast = 0;
    rs.mode = "thread";
    rs.total_replayed = UINT64_MAX;
    check_writer(w_replay, &rs,
                 "{\"type\":\"replay_complete\","
                 "\"totalReplayed\":18446744073709551615,"
                 "\"lastOffsetsByPartition\":{},"
                 "\"capped\":true,\"mode\":\"thread\",\"complete\":false,"
                 "\"missingPartitions\":[]}");

    rs.capped = 0;
    rs.mode = NULL;
    rs.total_replayed = 0;
    rs.nmissing = 1;
    check_writer(w_replay, &rs,
                 "{\"type\":\"replay_complete\",\"totalReplayed\":0,"
                 "\"lastOffsetsByPartition\":{},\"capped\":false,"
                 "\"mode\":\"\",\"complete\":false,"
                 "\"missingPartitions\":[0]}");
}


UNIT_TEST(test_write_cursor_stale)
{
    args_t  a;

    memset(&a, 0, sizeof(a));
    a.partition = 2;
    a.a = 10;
    a.b = 1500;
    a.s1 = "requested offset is older than the oldest held";

    check_writer(w_cursor_stale, &a,
                 "{\"type\":\"cursor_stale\",\"partition\":2,"
                 "\"requested\":\"10\",\"oldest\":\"1500\","
                 "\"message\":\"requested offset is older than the oldest "
                 "held\"}");
}


UNIT_TEST(test_write_gap)
{
    args_t  a;

    memset(&a, 0, sizeof(a));
    a.partition = 5;
    a.a = 17;
    a.s1 = "17 messages were overwritten";

    check_writer(w_gap, &a,
                 "{\"type\":\"gap\",\"partition\":5,\"count\":17,"
                 "\"severity\":\"warning\","
                 "\"message\":\"17 messages were overwritten\"}");

    a.a = 3;
    a.s1 = "send_budget";
    a.s2 = "3 messages dropped: client too slow";

    check_writer(w_gap_dropped, &a,
                 "{\"type\":\"gap\",\"count\":3,\"severity\":\"warning\","
                 "\"reason\":\"send_budget\","
                 "\"message\":\"3 messages dropped: client too slow\"}");

    a.s1 = NULL;
    a.s2 = NULL;
    check_writer(w_gap_dropped, &a,
                 "{\"type\":\"gap\",\"count\":3,\"severity\":\"warning\","
                 "\"reason\":\"\",\"message\":\"\"}");
}


UNIT_TEST(test_write_error)
{
    args_t  a;

    memset(&a, 0, sizeof(a));
    a.s1 = "INVALID_CURSOR";
    a.s2 = "bad \"cursor\"\\\n\x01 caf\xc3\xa9 \xff";

    check_writer(w_error, &a,
                 "{\"type\":\"error\",\"code\":\"INVALID_CURSOR\","
                 "\"message\":\"bad \\\"cursor\\\"\\\\\\u000a\\u0001 "
                 "caf\xc3\xa9 \\ufffd\"}");
}


UNIT_TEST(test_write_cursor_reset_complete)
{
    args_t                        a;
    ngx_http_dashstream_cursor_t  latest[] = { { 0, 99 }, { 1, 0 },
                                               { 12, 123456789012LL } };

    memset(&a, 0, sizeof(a));
    a.s1 = (const char *) latest;
    a.a = 3;

    check_writer(w_reset, &a,
                 "{\"type\":\"cursor_reset_complete\","
                 "\"latestOffsetsByPartition\":{\"0\":\"99\",\"1\":\"0\","
                 "\"12\":\"123456789012\"}}");

    a.a = 0;
    check_writer(w_reset, &a,
                 "{\"type\":\"cursor_reset_complete\","
                 "\"latestOffsetsByPartition\":{}}");
}


UNIT_TEST(test_round_trip)
{
    int                           n;
    size_t                        len, prefix;
    unsigned char                 buf[256];
    char                          json[256];
    ngx_http_dashstream_cursor_t  latest[] = { { 4, 100 }, { 9, 7 } };

    /* the map a client got from cursor_reset_complete resumes as sent */
    len = ngx_http_dashstream_dashflow_write_cursor_reset_complete(buf,
                                                    sizeof(buf), latest, 2);
    prefix = sizeof("{\"type\":\"cursor_reset_complete\","
                    "\"latestOffsetsByPartition\":") - 1;
    CHECK(len > prefix);

    n = snprintf(json, sizeof(json),
                 "{\"type\":\"resume\",\"lastOffsetsByPartition\":%.*s}",
                 (int) (len - prefix - 1), buf + prefix);
    CHECK_STR(json, "{\"type\":\"resume\",\"lastOffsetsByPartition\":"
                    "{\"4\":\"100\",\"9\":\"7\"}}");
    CHECK_EQ_INT(parse(json), 0);
    CHECK_EQ_INT(n, strlen(json));
    CHECK_EQ_INT(msg.ncursors, 2);
    CHECK_EQ_INT(cursors[0].partition, 4);
    CHECK_EQ_INT(cursors[0].offset, 100);
    CHECK_EQ_INT(cursors[1].partition, 9);
    CHECK_EQ_INT(cursors[1].offset, 7);
}


UNIT_MAIN("dashflow",
          UNIT_CASE(test_resume_numbers_and_strings),
          UNIT_CASE(test_resume_defaults),
          UNIT_CASE(test_resume_empty_maps),
          UNIT_CASE(test_resume_from_and_mode_values),
          UNIT_CASE(test_resume_threads),
          UNIT_CASE(test_resume_both_maps),
          UNIT_CASE(test_cursor_reset),
          UNIT_CASE(test_unknown_fields_ignored),
          UNIT_CASE(test_error_invalid_json),
          UNIT_CASE(test_error_missing_type),
          UNIT_CASE(test_error_unknown_type),
          UNIT_CASE(test_error_from_and_mode),
          UNIT_CASE(test_error_partition_keys),
          UNIT_CASE(test_error_offsets),
          UNIT_CASE(test_error_sequences),
          UNIT_CASE(test_error_map_types),
          UNIT_CASE(test_duplicates),
          UNIT_CASE(test_partition_cap),
          UNIT_CASE(test_thread_cap),
          UNIT_CASE(test_thread_scratch),
          UNIT_CASE(test_deep_nesting),
          UNIT_CASE(test_results_reset),
          UNIT_CASE(test_errmsg_truncated),
          UNIT_CASE(test_write_cursor),
          UNIT_CASE(test_write_replay_complete),
          UNIT_CASE(test_write_cursor_stale),
          UNIT_CASE(test_write_gap),
          UNIT_CASE(test_write_error),
          UNIT_CASE(test_write_cursor_reset_complete),
          UNIT_CASE(test_round_trip))
