/*
 * Copyright (C) ngx_dashstream authors
 */


#include "unit.h"

#include "ngx_http_dashstream_json.h"


#define S(lit)  (const unsigned char *) (lit), sizeof(lit) - 1
#define E(lit)  (const unsigned char *) (lit),                               \
                (const unsigned char *) (lit) + sizeof(lit) - 1


/*
 * Every input is copied to the very end of a static array so that
 * AddressSanitizer reports any read past its length.
 */

static unsigned char  input[4096];


static int
validate_exact(const void *p, size_t len, size_t *off, const char **err)
{
    unsigned char  *copy;

    if (len > sizeof(input)) {
        abort();
    }

    copy = input + sizeof(input) - len;
    memcpy(copy, p, len);

    return ngx_http_dashstream_json_validate(copy, len, off, err);
}


static void
check_vectors(const char **v, int expect)
{
    size_t       off;
    const char  *err;

    for ( /* void */ ; *v != NULL; v++) {
        err = NULL;
        unit_checks++;

        if (validate_exact(*v, strlen(*v), &off, &err) != expect) {
            unit_failures++;
            fprintf(stderr, "%s: \"%s\" should be %s (%s at %zu)\n",
                    unit_current, *v, expect ? "invalid" : "valid",
                    err ? err : "-", expect ? (size_t) 0 : off);
        }
    }
}


UNIT_TEST(test_valid_vectors)
{
    static const char  *v[] = {
        "0", "-0", "1", "-1", "123", "1.5", "-1.5e10", "1E+2", "1e-2",
        "0.0", "0e0", "-0.0e-0", "1e400", "9223372036854775808",
        "\"\"", "\"a\"", "\"\\u0041\"", "\"\\ud83d\\ude00\"",
        "\"\\uDBFF\\uDFFF\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\xc3\xa9\"", "\"\xf0\x9f\x98\x80\"", "\"\xef\xbb\xbf\"",
        "\"\x7f\"", "\"\xed\x9f\xbf\"", "\"\xee\x80\x80\"",
        "\"\xf4\x8f\xbf\xbf\"", "\"\\u0000\"",
        "true", "false", "null", "[]", "{}", "[1,2,3]", "{\"a\":1}",
        "{\"\":0}", " \t\r\n[ 1 , { \"a\" : [ ] } ] \n", "[[[[]]]]",
        "{\"a\":{\"b\":{\"c\":null}}}", "[true,false,null,\"x\",-2.5E-3]",
        "{\"a\":1,\"a\":2}",
        NULL
    };

    check_vectors(v, 0);
}


UNIT_TEST(test_invalid_vectors)
{
    static const char  *v[] = {
        "", " ", "01", "-01", "00", "1.", ".1", "+1", "-", "1e", "1e+",
        "1.e1", "0x10", "1 2", "NaN", "Infinity", "-Infinity", "-a",
        "1.5e", "tru", "True", "nul", "nulls", "fals", "truee",
        "[1,]", "[,1]", "[1 2]", "[1,,2]", "{\"a\":1,}", "{,}", "{\"a\"}",
        "{\"a\" 1}", "{a:1}", "{'a':1}", "'a'", "{\"a\":1 \"b\":2}",
        "[", "]", "{", "}", "[1}", "{\"a\":1]", "[\"a\"\"b\"]",
        "{\"a\":}", "{1:2}", "{null:1}",
        "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\u00\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"",
        "\"\\ud800\\\"", "\"\\udbff\\udbff\"", "\"\\'\"", "\"\\U0041\"",
        "\"\t\"", "\"\n\"", "\"\x01\"", "\"\x1f\"",
        "\"\xff\"", "\"\x80\"", "\"\xc0\x80\"", "\"\xc1\xbf\"",
        "\"\xe0\x80\x80\"", "\"\xe0\x9f\xbf\"", "\"\xed\xa0\x80\"",
        "\"\xf0\x8f\xbf\xbf\"", "\"\xf4\x90\x80\x80\"",
        "\"\xf5\x80\x80\x80\"", "\"\xe2\x82\"", "\"\xe2\x82\xac\xac\"",
        "\"\xc3\"",
        "\xef\xbb\xbf{}", "/* c */ {}", "{} // c", "# c\n{}", "[1]x",
        "\f[]", "\v1", "[]\f", "{}{}", "[] []",
        NULL
    };

    check_vectors(v, -1);
}


UNIT_TEST(test_embedded_nul_and_truncation)
{
    CHECK_EQ_INT(validate_exact("[\0]", 3, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("\"a\0b\"", 5, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("1\0", 2, NULL, NULL), -1);

    /* a valid document cut short is never read beyond its length */
    CHECK_EQ_INT(validate_exact("[1]", 2, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("true", 3, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("false", 4, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("null", 1, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("\"ab\"", 3, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("\"\\u0041\"", 5, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("\"\\ud83d\\ude00\"", 10, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("\"\xf0\x9f\x98\x80\"", 4, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("1.5e3", 4, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("1.5e3", 2, NULL, NULL), -1);
    CHECK_EQ_INT(validate_exact("-1", 1, NULL, NULL), -1);

    CHECK_EQ_INT(validate_exact("12", 1, NULL, NULL), 0);
    CHECK_EQ_INT(validate_exact("1.5e3", 3, NULL, NULL), 0);
}


UNIT_TEST(test_error_offsets)
{
    size_t       off;
    const char  *err;

    CHECK_EQ_INT(validate_exact("[1,]", 4, &off, &err), -1);
    CHECK_EQ_INT(off, 3);
    CHECK_STR(err, "unexpected character");

    CHECK_EQ_INT(validate_exact("{\"a\" 1}", 7, &off, &err), -1);
    CHECK_EQ_INT(off, 5);
    CHECK_STR(err, "expected ':'");

    CHECK_EQ_INT(validate_exact("[1 2]", 5, &off, &err), -1);
    CHECK_EQ_INT(off, 3);
    CHECK_STR(err, "expected ',' or ']'");

    CHECK_EQ_INT(validate_exact("{\"a\":1 ", 7, &off, &err), -1);
    CHECK_EQ_INT(off, 7);
    CHECK_STR(err, "unexpected end of input");

    CHECK_EQ_INT(validate_exact("[01]", 4, &off, &err), -1);
    CHECK_EQ_INT(off, 2);
    CHECK_STR(err, "leading zero in number");

    CHECK_EQ_INT(validate_exact("\"ab\x01\"", 5, &off, &err), -1);
    CHECK_EQ_INT(off, 3);
    CHECK_STR(err, "control character in string");

    CHECK_EQ_INT(validate_exact("\"a\\ud800\"", 9, &off, &err), -1);
    CHECK_EQ_INT(off, 2);
    CHECK_STR(err, "invalid escape");

    CHECK_EQ_INT(validate_exact("\"a\xff\"", 4, &off, &err), -1);
    CHECK_EQ_INT(off, 2);
    CHECK_STR(err, "invalid UTF-8 in string");

    CHECK_EQ_INT(validate_exact("{} x", 4, &off, &err), -1);
    CHECK_EQ_INT(off, 3);
    CHECK_STR(err, "unexpected data after the value");

    CHECK_EQ_INT(validate_exact("{1:2}", 5, &off, &err), -1);
    CHECK_EQ_INT(off, 1);
    CHECK_STR(err, "expected a string key");

    CHECK_EQ_INT(validate_exact("\"abc", 4, &off, &err), -1);
    CHECK_EQ_INT(off, 4);
    CHECK_STR(err, "unterminated string");
}


static void
nest(char *buf, size_t depth, int objects)
{
    size_t  i;
    char   *p;

    p = buf;

    for (i = 0; i < depth; i++) {
        p += sprintf(p, objects ? "{\"a\":" : "[");
    }

    *p++ = '1';

    for (i = 0; i < depth; i++) {
        *p++ = objects ? '}' : ']';
    }

    *p = '\0';
}


UNIT_TEST(test_depth)
{
    char         buf[256];
    size_t       off;
    const char  *err;

    CHECK_EQ_INT(NGX_HTTP_DASHSTREAM_JSON_MAX_DEPTH, 16);

    nest(buf, 16, 0);
    CHECK_EQ_INT(validate_exact(buf, strlen(buf), NULL, NULL), 0);

    nest(buf, 17, 0);
    CHECK_EQ_INT(validate_exact(buf, strlen(buf), &off, &err), -1);
    CHECK_EQ_INT(off, 16);
    CHECK_STR(err, "nesting too deep");

    nest(buf, 16, 1);
    CHECK_EQ_INT(validate_exact(buf, strlen(buf), NULL, NULL), 0);

    nest(buf, 17, 1);
    CHECK_EQ_INT(validate_exact(buf, strlen(buf), &off, &err), -1);
    CHECK_EQ_INT(off, 16 * 5);
    CHECK_STR(err, "nesting too deep");

    /* depth is current nesting, not the number of containers seen */
    CHECK_EQ_INT(validate_exact(S("[[],[],[],[],[],[],[],[],[],[],[],[],[],"
                                  "[],[],[],[],[],[],[]]"), NULL, NULL), 0);
}


UNIT_TEST(test_token_stream)
{
    size_t                          i;
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  tok;

    static const char  doc[] =
        " {\"a\" : [1, \"x\\n\", true, false, null, -2.5e3],\"b\":{}} ";

    static const struct {
        int          type;
        const char  *text;
    } expect[] = {
        { NGX_HTTP_DASHSTREAM_JSON_OBJECT, "{" },
        { NGX_HTTP_DASHSTREAM_JSON_KEY, "a" },
        { NGX_HTTP_DASHSTREAM_JSON_ARRAY, "[" },
        { NGX_HTTP_DASHSTREAM_JSON_NUMBER, "1" },
        { NGX_HTTP_DASHSTREAM_JSON_STRING, "x\\n" },
        { NGX_HTTP_DASHSTREAM_JSON_TRUE, "true" },
        { NGX_HTTP_DASHSTREAM_JSON_FALSE, "false" },
        { NGX_HTTP_DASHSTREAM_JSON_NULL, "null" },
        { NGX_HTTP_DASHSTREAM_JSON_NUMBER, "-2.5e3" },
        { NGX_HTTP_DASHSTREAM_JSON_ARRAY_END, "]" },
        { NGX_HTTP_DASHSTREAM_JSON_KEY, "b" },
        { NGX_HTTP_DASHSTREAM_JSON_OBJECT, "{" },
        { NGX_HTTP_DASHSTREAM_JSON_OBJECT_END, "}" },
        { NGX_HTTP_DASHSTREAM_JSON_OBJECT_END, "}" },
        { NGX_HTTP_DASHSTREAM_JSON_END, "" },
        { NGX_HTTP_DASHSTREAM_JSON_END, "" }
    };

    ngx_http_dashstream_json_init(&js, S(doc));

    for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                     expect[i].type);
        CHECK_EQ_INT(tok.type, expect[i].type);

        if (expect[i].type != NGX_HTTP_DASHSTREAM_JSON_END) {
            CHECK_EQ_INT(tok.len, strlen(expect[i].text));
            CHECK_MEM(tok.start, expect[i].text, tok.len);
        }

        if (i == 4) {
            CHECK_EQ_INT(tok.escaped, 1);
        }

        if (i == 3) {
            CHECK_EQ_INT(tok.integer, 1);
            CHECK_EQ_INT(tok.negative, 0);
        }

        if (i == 8) {
            CHECK_EQ_INT(tok.integer, 0);
            CHECK_EQ_INT(tok.negative, 1);
        }
    }
}


UNIT_TEST(test_error_is_sticky)
{
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  tok;

    ngx_http_dashstream_json_init(&js, S("[1,}"));

    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_ARRAY);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_NUMBER);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_ERROR);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_ERROR);
    CHECK_EQ_INT(js.pos - js.start, 3);
}


UNIT_TEST(test_skip)
{
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  tok;

    ngx_http_dashstream_json_init(&js, S("{\"a\":{\"b\":[1,{\"c\":[]}]},"
                                         "\"d\":3,\"e\":[]}"));

    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_OBJECT);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_KEY);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_OBJECT);
    CHECK_EQ_INT(ngx_http_dashstream_json_skip(&js, &tok), 0);
    CHECK_EQ_INT(js.depth, 1);

    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_KEY);
    CHECK(ngx_http_dashstream_json_string_eq(&tok, "d"));
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_NUMBER);
    CHECK_EQ_INT(ngx_http_dashstream_json_skip(&js, &tok), 0);

    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_KEY);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_ARRAY);
    CHECK_EQ_INT(ngx_http_dashstream_json_skip(&js, &tok), 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_OBJECT_END);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_END);

    ngx_http_dashstream_json_init(&js, S("[[1,2"));
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_ARRAY);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_ARRAY);
    CHECK_EQ_INT(ngx_http_dashstream_json_skip(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_ERROR);
}


static size_t
unescape_lit(const char *lit, unsigned char *dst, size_t size)
{
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  tok;

    ngx_http_dashstream_json_init(&js, (const unsigned char *) lit,
                                  strlen(lit));

    if (ngx_http_dashstream_json_next(&js, &tok)
        != NGX_HTTP_DASHSTREAM_JSON_STRING)
    {
        return (size_t) -2;
    }

    return ngx_http_dashstream_json_unescape(&tok, dst, size);
}


UNIT_TEST(test_unescape)
{
    unsigned char  out[32];

    CHECK_EQ_INT(unescape_lit("\"plain\"", out, sizeof(out)), 5);
    CHECK_MEM(out, "plain", 5);

    CHECK_EQ_INT(unescape_lit("\"a\\nb\\t\\\"\\\\\\/\\b\\f\\r\"", out,
                              sizeof(out)), 10);
    CHECK_MEM(out, "a\nb\t\"\\/\b\f\r", 10);

    CHECK_EQ_INT(unescape_lit("\"\\u0041\\u00e9\\u20AC\"", out, sizeof(out)),
                 6);
    CHECK_MEM(out, "A\xc3\xa9\xe2\x82\xac", 6);

    CHECK_EQ_INT(unescape_lit("\"\\ud83d\\ude00!\"", out, sizeof(out)), 5);
    CHECK_MEM(out, "\xf0\x9f\x98\x80!", 5);

    CHECK_EQ_INT(unescape_lit("\"\\u0000\"", out, sizeof(out)), 1);
    CHECK_EQ_INT(out[0], 0);

    /* exact fit, one byte short, mid-sequence short */
    CHECK_EQ_INT(unescape_lit("\"a\\u00e9\"", out, 3), 3);
    CHECK_EQ_INT(unescape_lit("\"a\\u00e9\"", out, 2), (size_t) -1);
    CHECK_EQ_INT(unescape_lit("\"abc\"", out, 2), (size_t) -1);
    CHECK_EQ_INT(unescape_lit("\"abc\"", out, 3), 3);
    CHECK_EQ_INT(unescape_lit("\"\"", NULL, 0), 0);
}


UNIT_TEST(test_string_eq)
{
    ngx_http_dashstream_json_tok_t  tok;

    memset(&tok, 0, sizeof(tok));

    tok.start = (const unsigned char *) "type";
    tok.len = 4;
    CHECK(ngx_http_dashstream_json_string_eq(&tok, "type"));
    CHECK(!ngx_http_dashstream_json_string_eq(&tok, "typ"));
    CHECK(!ngx_http_dashstream_json_string_eq(&tok, "types"));
    CHECK(!ngx_http_dashstream_json_string_eq(&tok, "Type"));

    tok.start = (const unsigned char *) "t\\u0079p\\u0065";
    tok.len = 14;
    tok.escaped = 1;
    CHECK(ngx_http_dashstream_json_string_eq(&tok, "type"));
    CHECK(!ngx_http_dashstream_json_string_eq(&tok, "typ"));
    CHECK(!ngx_http_dashstream_json_string_eq(&tok, "typee"));
    CHECK(!ngx_http_dashstream_json_string_eq(&tok, ""));

    tok.start = (const unsigned char *) "\\u00e9";
    tok.len = 6;
    CHECK(ngx_http_dashstream_json_string_eq(&tok, "\xc3\xa9"));
    CHECK(!ngx_http_dashstream_json_string_eq(&tok, "\xc3"));
}


UNIT_TEST(test_uint64)
{
    uint64_t  v;

    v = 7;
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("0"), UINT64_MAX, &v), 0);
    CHECK_EQ_U64(v, 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("18446744073709551615"),
                                                 UINT64_MAX, &v), 0);
    CHECK_EQ_U64(v, UINT64_MAX);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("18446744073709551616"),
                                                 UINT64_MAX, &v), -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("99999999999999999999"),
                                                 UINT64_MAX, &v), -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("9223372036854775807"),
                                                 INT64_MAX, &v), 0);
    CHECK_EQ_U64(v, INT64_MAX);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("9223372036854775808"),
                                                 INT64_MAX, &v), -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("2147483647"),
                                                 INT32_MAX, &v), 0);
    CHECK_EQ_U64(v, INT32_MAX);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("2147483648"),
                                                 INT32_MAX, &v), -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("10"), 9, &v), -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("5"), 4, &v), -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("4"), 4, &v), 0);

    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S(""), UINT64_MAX, &v), -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("01"), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("00"), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("-1"), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("+1"), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S(" 1"), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("1 "), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("1.0"), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_INT(ngx_http_dashstream_json_uint64(S("1e3"), UINT64_MAX, &v),
                 -1);
    CHECK_EQ_U64(v, 4);
}


static void
check_escape(const char *in, size_t len, const char *expect)
{
    size_t          n;
    unsigned char   out[128], *last;

    n = ngx_http_dashstream_json_escape_len((const unsigned char *) in, len);
    CHECK_EQ_INT(n, strlen(expect));

    memset(out, 0xee, sizeof(out));
    last = ngx_http_dashstream_json_escape(out, (const unsigned char *) in,
                                           len);
    CHECK_EQ_INT(last - out, strlen(expect));
    CHECK_MEM(out, expect, strlen(expect));
    CHECK_EQ_INT(out[n], 0xee);
}


UNIT_TEST(test_escape)
{
    check_escape("", 0, "");
    check_escape("plain text", 10, "plain text");
    check_escape("a\"b\\c/", 6, "a\\\"b\\\\c/");
    check_escape("\n\r\t\b\f\x01\x1f\x7f", 8,
                 "\\u000a\\u000d\\u0009\\u0008\\u000c\\u0001\\u001f\x7f");
    check_escape("\0x", 2, "\\u0000x");
    check_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
                 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    check_escape("a\xff" "b", 3, "a\\ufffdb");
    check_escape("\xe2\x82", 2, "\\ufffd\\ufffd");
    check_escape("\xc0\x80", 2, "\\ufffd\\ufffd");
    check_escape("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd");
    check_escape("\xf4\x90\x80\x80", 4,
                 "\\ufffd\\ufffd\\ufffd\\ufffd");
}


UNIT_TEST(test_escape_round_trip)
{
    size_t                          i, n;
    unsigned char                   in[256], quoted[1600], back[256];
    ngx_http_dashstream_json_t      js;
    ngx_http_dashstream_json_tok_t  tok;

    /* every byte value below 0x80 plus multi-byte UTF-8 */
    for (i = 0; i < 128; i++) {
        in[i] = (unsigned char) i;
    }

    memcpy(in + 128, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    n = 137;

    quoted[0] = '"';
    i = ngx_http_dashstream_json_escape(quoted + 1, in, n) - quoted;
    quoted[i++] = '"';

    CHECK_EQ_INT(ngx_http_dashstream_json_validate(quoted, i, NULL, NULL), 0);

    ngx_http_dashstream_json_init(&js, quoted, i);
    CHECK_EQ_INT(ngx_http_dashstream_json_next(&js, &tok),
                 NGX_HTTP_DASHSTREAM_JSON_STRING);
    CHECK_EQ_INT(ngx_http_dashstream_json_unescape(&tok, back, sizeof(back)),
                 n);
    CHECK_MEM(back, in, n);
}


UNIT_TEST(test_utf8_len)
{
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("a")), 1);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xc2\x80")), 2);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xdf\xbf")), 2);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xe0\xa0\x80")), 3);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xef\xbf\xbf")), 3);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xf0\x90\x80\x80")),
                 4);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xf4\x8f\xbf\xbf")),
                 4);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xc2")), 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xc2\xc0")), 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xe1\x80\xc0")), 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xf1\x80\x80\x7f")), 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xf8\x88\x80\x80")), 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(E("\xbf")), 0);
    CHECK_EQ_INT(ngx_http_dashstream_json_utf8_len(
                     (const unsigned char *) "a", (const unsigned char *) "a"),
                 0);
}


UNIT_MAIN("json",
          UNIT_CASE(test_valid_vectors),
          UNIT_CASE(test_invalid_vectors),
          UNIT_CASE(test_embedded_nul_and_truncation),
          UNIT_CASE(test_error_offsets),
          UNIT_CASE(test_depth),
          UNIT_CASE(test_token_stream),
          UNIT_CASE(test_error_is_sticky),
          UNIT_CASE(test_skip),
          UNIT_CASE(test_unescape),
          UNIT_CASE(test_string_eq),
          UNIT_CASE(test_uint64),
          UNIT_CASE(test_escape),
          UNIT_CASE(test_escape_round_trip),
          UNIT_CASE(test_utf8_len))
