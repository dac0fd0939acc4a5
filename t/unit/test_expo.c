/*
 * Copyright (C) ngx_dashstream authors
 */


#include <math.h>

#include "unit.h"
#include "ngx_http_dashstream_expo.h"


static char  out[4096];


static ngx_http_dashstream_expo_t
expo(size_t size)
{
    ngx_http_dashstream_expo_t  e;

    memset(out, 0, sizeof(out));
    e.pos = (unsigned char *) out;
    e.end = (unsigned char *) out + size;
    e.full = 0;

    return e;
}


UNIT_TEST(test_family_and_counter)
{
    ngx_http_dashstream_expo_t   e;
    ngx_http_dashstream_label_t  l[2] = {
        { "topic", (const unsigned char *) "t1", 2 },
        { "partition", (const unsigned char *) "3", 1 }
    };

    e = expo(sizeof(out));
    ngx_http_dashstream_expo_family(&e, "x_total", "counter", "Things.");
    ngx_http_dashstream_expo_counter(&e, "x_total", l, 2,
                                     18446744073709551615ULL);
    ngx_http_dashstream_expo_counter(&e, "x_total", NULL, 0, 0);

    CHECK(!e.full);
    CHECK_STR(out, "# HELP x_total Things.\n# TYPE x_total counter\n"
              "x_total{topic=\"t1\",partition=\"3\"} 18446744073709551615\n"
              "x_total 0\n");
}


UNIT_TEST(test_label_escaping)
{
    unsigned char                dst[64];
    ngx_http_dashstream_expo_t   e;
    const unsigned char          raw[] = "a\\b\"c\nd";
    const unsigned char          bad[] = { 'x', 0xff, 'y', 0xc3, 0xa9, 0xed,
                                           0xa0, 0x80 };
    ngx_http_dashstream_label_t  l = { "tool", raw, sizeof(raw) - 1 };

    CHECK_EQ_INT(ngx_http_dashstream_expo_escape_len(raw, sizeof(raw) - 1),
                 10);
    CHECK_EQ_INT(ngx_http_dashstream_expo_escape(dst, raw, sizeof(raw) - 1),
                 10);
    CHECK_MEM(dst, "a\\\\b\\\"c\\nd", 10);

    /* invalid bytes and a surrogate become U+FFFD; valid UTF-8 stays */
    CHECK_EQ_INT(ngx_http_dashstream_expo_escape_len(bad, sizeof(bad)),
                 1 + 3 + 1 + 2 + 9);
    CHECK_EQ_INT(ngx_http_dashstream_expo_escape(dst, bad, sizeof(bad)), 16);
    CHECK_MEM(dst, "x\xef\xbf\xbdy\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd"
              "\xef\xbf\xbd", 16);

    e = expo(sizeof(out));
    ngx_http_dashstream_expo_sample(&e, "g", &l, 1, 2.5);
    CHECK_STR(out, "g{tool=\"a\\\\b\\\"c\\nd\"} 2.5\n");

    /* a value with bytes above 0x7f takes the escaping path too */
    l.value = bad;
    l.len = sizeof(bad);
    e = expo(sizeof(out));
    ngx_http_dashstream_expo_sample(&e, "g", &l, 1, 1);
    CHECK_STR(out, "g{tool=\"x\xef\xbf\xbdy\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd"
              "\xef\xbf\xbd\"} 1\n");
}


UNIT_TEST(test_doubles)
{
    unsigned char  b[32];

    b[ngx_http_dashstream_expo_double(b, sizeof(b), 0)] = 0;
    CHECK_STR((char *) b, "0");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), -42)] = 0;
    CHECK_STR((char *) b, "-42");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), 0.1)] = 0;
    CHECK_STR((char *) b, "0.1");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), 0.1 + 0.2)] = 0;
    CHECK_STR((char *) b, "0.30000000000000004");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), 2.54)] = 0;
    CHECK_STR((char *) b, "2.54");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), 1e20)] = 0;
    CHECK_STR((char *) b, "1e+20");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), NAN)] = 0;
    CHECK_STR((char *) b, "NaN");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), INFINITY)] = 0;
    CHECK_STR((char *) b, "+Inf");
    b[ngx_http_dashstream_expo_double(b, sizeof(b), -INFINITY)] = 0;
    CHECK_STR((char *) b, "-Inf");
}


UNIT_TEST(test_histogram_is_cumulative)
{
    ngx_http_dashstream_expo_t  e;
    const double                bounds[] = { 0.5, 1, 2.5, 0 };
    const uint64_t              buckets[] = { 2, 0, 3 };

    e = expo(sizeof(out));
    ngx_http_dashstream_expo_histogram(&e, "h_seconds", NULL, 0, bounds,
                                       buckets, 7, 10.25);
    CHECK(!e.full);
    CHECK_STR(out, "h_seconds_bucket{le=\"0.5\"} 2\n"
              "h_seconds_bucket{le=\"1\"} 2\n"
              "h_seconds_bucket{le=\"2.5\"} 5\n"
              "h_seconds_bucket{le=\"+Inf\"} 7\n"
              "h_seconds_sum 10.25\n"
              "h_seconds_count 7\n");

    /* buckets read after the count: +Inf never below the last bucket */
    e = expo(sizeof(out));
    ngx_http_dashstream_expo_histogram(&e, "h", NULL, 0, bounds, buckets, 4,
                                       1);
    CHECK(strstr(out, "h_bucket{le=\"+Inf\"} 5\n") != NULL);
    CHECK(strstr(out, "h_count 5\n") != NULL);
}


UNIT_TEST(test_full_buffer_stops)
{
    size_t                      n, whole;
    ngx_http_dashstream_expo_t  e;

    whole = strlen("# HELP abc Help text.\n# TYPE abc gauge\n");

    for (n = 0; n < whole + 3; n++) {
        e = expo(n);
        ngx_http_dashstream_expo_family(&e, "abc", "gauge", "Help text.");
        CHECK_EQ_INT(e.full, n < whole);
        CHECK((size_t) ((char *) e.pos - out) <= n);
    }
}


UNIT_MAIN("expo",
    UNIT_CASE(test_family_and_counter),
    UNIT_CASE(test_label_escaping),
    UNIT_CASE(test_doubles),
    UNIT_CASE(test_histogram_is_cumulative),
    UNIT_CASE(test_full_buffer_stops))
