/*
 * Copyright (C) ngx_dashstream authors
 */


#include "unit.h"
#include "ngx_http_dashstream_lagmath.h"


/* as in the zone: position is the next offset, end and commit are + 1 */

static ngx_http_dashstream_lag_out_t
lag(uint64_t position, int live, uint64_t ts, uint64_t hwm,
    uint64_t committed, int trust, int latest, uint64_t now)
{
    ngx_http_dashstream_lag_in_t   in;
    ngx_http_dashstream_lag_out_t  out;

    in.position = position;
    in.position_live = live;
    in.last_ts_ms = ts;
    in.high_watermark = hwm;
    in.committed = committed;
    in.assigned_ms = 1000000;
    in.trust_position = trust;
    in.reset_latest = latest;

    ngx_http_dashstream_lag_of(&in, now, &out);

    return out;
}


UNIT_TEST(test_caught_up_is_zero_lag_zero_age)
{
    ngx_http_dashstream_lag_out_t  o;

    /* processed up to offset 99, end offset 100: nothing left */
    o = lag(100, 1, 1500000, 101, 0, 0, 1, 2000000);
    CHECK_EQ_INT(o.lag, 0);
    CHECK_EQ_INT(o.position, 100);
    CHECK_EQ_INT(o.high_watermark, 100);
    CHECK(o.age == 0);
}


UNIT_TEST(test_behind_ages_with_the_last_processed_message)
{
    ngx_http_dashstream_lag_out_t  o;

    o = lag(100, 1, 1500000, 151, 0, 0, 1, 1560000);
    CHECK_EQ_INT(o.lag, 50);
    CHECK(o.age == 60.0);

    /* stalled: the same inputs later give the same lag, an older age */
    o = lag(100, 1, 1500000, 171, 0, 0, 1, 1620000);
    CHECK_EQ_INT(o.lag, 70);
    CHECK(o.age == 120.0);
}


UNIT_TEST(test_no_end_offset_yet_is_unknown)
{
    ngx_http_dashstream_lag_out_t  o;

    o = lag(100, 1, 1500000, 0, 0, 0, 1, 1600000);
    CHECK_EQ_INT(o.lag, -1);
    CHECK_EQ_INT(o.high_watermark, -1);
    CHECK(o.age == 0);
}


UNIT_TEST(test_no_position_yet_uses_the_committed_offset)
{
    ngx_http_dashstream_lag_out_t  o;

    /* a stale position from an earlier assignment is not trusted */
    o = lag(10, 0, 0, 201, 181, 0, 1, 1030000);
    CHECK_EQ_INT(o.position, 180);
    CHECK_EQ_INT(o.lag, 20);
    CHECK(o.age == 30.0);           /* since the assignment */
}


UNIT_TEST(test_no_commit_uses_the_reset_point)
{
    ngx_http_dashstream_lag_out_t  o;

    o = lag(0, 0, 0, 501, 0, 0, 1, 1030000);       /* latest */
    CHECK_EQ_INT(o.position, 500);
    CHECK_EQ_INT(o.lag, 0);

    o = lag(0, 0, 0, 501, 0, 0, 0, 1030000);       /* earliest */
    CHECK_EQ_INT(o.position, 0);
    CHECK_EQ_INT(o.lag, 500);
    CHECK(o.age == 30.0);
}


UNIT_TEST(test_empty_partition)
{
    ngx_http_dashstream_lag_out_t  o;

    /* end offset 0: nothing was ever produced */
    o = lag(0, 0, 0, 1, 0, 0, 0, 1030000);
    CHECK_EQ_INT(o.high_watermark, 0);
    CHECK_EQ_INT(o.lag, 0);
    CHECK(o.age == 0);
}


UNIT_TEST(test_broadcast_trusts_its_resume_position)
{
    ngx_http_dashstream_lag_out_t  o;

    o = lag(40, 0, 0, 51, 0, 1, 1, 1030000);
    CHECK_EQ_INT(o.position, 40);
    CHECK_EQ_INT(o.lag, 10);
}


UNIT_TEST(test_position_past_a_stale_end_is_zero)
{
    ngx_http_dashstream_lag_out_t  o;

    /* the consumer moved on since the last poll: never a negative lag */
    o = lag(300, 1, 1500000, 251, 0, 0, 1, 1600000);
    CHECK_EQ_INT(o.lag, 0);
    CHECK(o.age == 0);
}


UNIT_MAIN("lagmath",
    UNIT_CASE(test_caught_up_is_zero_lag_zero_age),
    UNIT_CASE(test_behind_ages_with_the_last_processed_message),
    UNIT_CASE(test_no_end_offset_yet_is_unknown),
    UNIT_CASE(test_no_position_yet_uses_the_committed_offset),
    UNIT_CASE(test_no_commit_uses_the_reset_point),
    UNIT_CASE(test_empty_partition),
    UNIT_CASE(test_broadcast_trusts_its_resume_position),
    UNIT_CASE(test_position_past_a_stale_end_is_zero))
