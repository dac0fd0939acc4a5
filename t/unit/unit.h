/*
 * Copyright (C) ngx_dashstream authors
 *
 * A minimal unit-test harness for the pure-C parts of the module.
 * Each t/unit/test_*.c is one executable: it defines its tests with
 * UNIT_TEST(), lists them in UNIT_MAIN(), and prints one summary line
 *
 *     unit: <suite>: <tests> tests, <checks> checks, <failures> failures
 *
 * which t/unit/run.sh adds up for CI.
 */

#ifndef _DASHSTREAM_UNIT_H_INCLUDED_
#define _DASHSTREAM_UNIT_H_INCLUDED_

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static unsigned long  unit_checks;
static unsigned long  unit_failures;
static const char    *unit_current;


#define UNIT_TEST(name)  static void name(void)

#define CHECK(cond)                                                          \
    do {                                                                     \
        unit_checks++;                                                       \
        if (!(cond)) {                                                       \
            unit_failures++;                                                 \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n",                 \
                    __FILE__, __LINE__, unit_current, #cond);                \
        }                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                   \
    do {                                                                     \
        long long  a_ = (long long) (a), b_ = (long long) (b);               \
        unit_checks++;                                                       \
        if (a_ != b_) {                                                      \
            unit_failures++;                                                 \
            fprintf(stderr, "%s:%d: %s: %s == %s failed: %lld != %lld\n",    \
                    __FILE__, __LINE__, unit_current, #a, #b, a_, b_);       \
        }                                                                    \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                   \
    do {                                                                     \
        uint64_t  a_ = (uint64_t) (a), b_ = (uint64_t) (b);                  \
        unit_checks++;                                                       \
        if (a_ != b_) {                                                      \
            unit_failures++;                                                 \
            fprintf(stderr, "%s:%d: %s: %s == %s failed: %" PRIu64          \
                    " != %" PRIu64 "\n",                                     \
                    __FILE__, __LINE__, unit_current, #a, #b, a_, b_);       \
        }                                                                    \
    } while (0)

#define CHECK_MEM(a, b, n)                                                   \
    do {                                                                     \
        unit_checks++;                                                       \
        if (memcmp((a), (b), (n)) != 0) {                                    \
            unit_failures++;                                                 \
            fprintf(stderr, "%s:%d: %s: memory %s != %s (%zu bytes)\n",      \
                    __FILE__, __LINE__, unit_current, #a, #b, (size_t) (n)); \
        }                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char  *a_ = (a), *b_ = (b);                                    \
        unit_checks++;                                                       \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {               \
            unit_failures++;                                                 \
            fprintf(stderr, "%s:%d: %s: \"%s\" != \"%s\"\n",                 \
                    __FILE__, __LINE__, unit_current,                        \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
        }                                                                    \
    } while (0)


typedef struct {
    const char  *name;
    void       (*fn)(void);
} unit_case_t;


#define UNIT_CASE(fn)  { #fn, fn }

#define UNIT_MAIN(suite, ...)                                                \
    int                                                                      \
    main(void)                                                               \
    {                                                                        \
        unit_case_t  cases[] = { __VA_ARGS__ };                              \
        size_t       i, n = sizeof(cases) / sizeof(cases[0]);                \
                                                                             \
        for (i = 0; i < n; i++) {                                            \
            unit_current = cases[i].name;                                    \
            cases[i].fn();                                                   \
        }                                                                    \
                                                                             \
        printf("unit: %s: %zu tests, %lu checks, %lu failures\n",            \
               suite, n, unit_checks, unit_failures);                        \
        return unit_failures ? 1 : 0;                                        \
    }

#endif /* _DASHSTREAM_UNIT_H_INCLUDED_ */
