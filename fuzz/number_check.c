/* number_check.c - number.c's and float_conv.c's fast paths against
 * number_oracle.h (glibc printf/strtod) on pseudo-random inputs; run by
 * spec/unit/core/number_spec.lua (make number-check). Usage:
 *   number_check [doubles [seed]]
 * Checks, each a disagreement printed and counted (exit 1 if any):
 *   - ds_double_shortest and ds_format_double of random bit patterns (every
 *     finite double, subnormals included) and of every power of two: the
 *     oracle's shortest digits, and strtod reads the text back as v;
 *   - ds_number_classify and ds_number_classify_fast of texts of random
 *     doubles inside DynamoDB's range (random bits, and random [0, 1) scaled)
 *     printed shortest, %.15g, %.16g and %.17g; of every power of two in
 *     range printed shortest, at 16 and 17 digits and their last digit +-1;
 *     and of random decimal texts: oracle_classify's status, kind and bits;
 *   - ds_digits_to_double of random digits and exponents: strtod's double
 *     whenever it decides (the undecided share is printed). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "float_conv.h"
#include "number.h"
#include "number_oracle.h"

static uint64_t state = 0x9E3779B97F4A7C15u;
static long failures, checked;

static uint64_t next(void) /* xorshift64* */
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Du;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void fail(const char *what, const char *detail)
{
    if (failures++ < 20)
        fprintf(stderr, "number_check: %s: %s\n", what, detail);
}

static void check_print(double v)
{
    uint64_t d, od;
    int e, oe;
    char buf[DS_DOUBLE_BUFSIZE], want[48];
    ds_decimal got, exp;
    size_t n;
    if (!isfinite(v) || v == 0)
        return;
    checked++;
    ds_double_shortest(fabs(v), &d, &e);
    oracle_shortest(fabs(v), &od, &oe);
    snprintf(want, sizeof want, "%s%llue%d", v < 0 ? "-" : "", (unsigned long long)od, oe);
    if (d != od || e != oe)
        fail("ds_double_shortest", want);
    n = ds_format_double(v, buf);
    if (ds_decimal_parse(buf, n, &got) != DS_NUM_OK || ds_decimal_parse(want, strlen(want), &exp) != DS_NUM_OK ||
        !ds_decimal_equal(&got, &exp) || strtod(buf, NULL) != v)
        fail("ds_format_double", want);
}

static void check_text(const char *s)
{
    ds_number got, fast, want;
    size_t n = strlen(s);
    int st = oracle_classify(s, n, &want);
    checked++;
    if (ds_number_classify(s, n, &got) != st || ds_number_classify_fast(s, n, &fast) != st) {
        fail("status", s);
        return;
    }
    if (st != DS_NUM_OK)
        return;
    if (got.kind != want.kind || fast.kind != want.kind)
        fail("kind", s);
    else if (want.kind == DS_NUM_INTEGER && (got.i != want.i || fast.i != want.i))
        fail("integer", s);
    else if (want.kind == DS_NUM_DOUBLE &&
             (memcmp(&got.d, &want.d, sizeof got.d) != 0 || memcmp(&fast.d, &want.d, sizeof got.d) != 0))
        fail("double", s);
}

/* v's texts as SDKs and printf write them. */
static void check_texts_of(double v)
{
    char text[64];
    ds_format_double(v, text);
    check_text(text);
    snprintf(text, sizeof text, "%.15g", v);
    check_text(text);
    snprintf(text, sizeof text, "%.16g", v);
    check_text(text);
    snprintf(text, sizeof text, "%.17g", v);
    check_text(text);
}

/* A double inside DynamoDB's range (1e-130 .. 1e125), random bits. */
static double random_in_range(void)
{
    for (;;) {
        double v = from_bits(next() & 0x7FFFFFFFFFFFFFFFu);
        if (v >= 1e-130 && v < 9.99e125)
            return next() & 1 ? -v : v;
    }
}

static void check_random_text(void)
{
    char text[80], *p = text;
    int ndig = 1 + (int)(next() % 20), point = (int)(next() % (uint64_t)(ndig + 1)), i;
    if (next() & 1)
        *p++ = '-';
    for (i = 0; i < ndig; i++) {
        if (i == point && i > 0)
            *p++ = '.';
        *p++ = (char)('0' + next() % 10);
    }
    if (next() % 3)
        p += sprintf(p, "e%d", (int)(next() % 300) - 150);
    *p = '\0';
    check_text(text);
}

static void check_digits_to_double(long *undecided)
{
    uint64_t w = next() >> (next() % 64);
    int q = (int)(next() % 290) - 160;
    char text[48];
    double got, want;
    if (w == 0)
        return;
    snprintf(text, sizeof text, "%llue%d", (unsigned long long)w, q);
    want = strtod(text, NULL);
    checked++;
    if (!ds_digits_to_double(w, q, &got))
        (*undecided)++;
    else if (memcmp(&got, &want, sizeof got) != 0)
        fail("ds_digits_to_double", text);
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? atol(argv[1]) : 400000, i, undecided = 0;
    int e, delta;
    if (argc > 2)
        state ^= (uint64_t)strtoull(argv[2], NULL, 10) * 0x9E3779B97F4A7C15u;

    for (e = -1074; e <= 1023; e++)
        check_print(ldexp(1, e));
    for (i = 0; i < count; i++) {
        check_print(from_bits(next()));
        check_texts_of(random_in_range());
        check_texts_of((double)(next() >> 11) / 9007199254740992.0 * pow(10, (int)(next() % 200) - 100));
        check_random_text();
        check_digits_to_double(&undecided);
    }
    /* powers of two in range: shortest, 16 and 17 digits, the last digit moved */
    for (e = -431; e <= 418; e++) {
        double v = ldexp(1, e);
        char text[64];
        check_texts_of(v);
        check_texts_of(-v);
        for (delta = -1; delta <= 1; delta += 2) {
            uint64_t d;
            int x;
            ds_double_shortest(v, &d, &x);
            snprintf(text, sizeof text, "%llue%d", (unsigned long long)(d + (uint64_t)delta), x);
            check_text(text);
        }
    }
    printf("number_check: %ld checks, %ld failures; ds_digits_to_double left %ld of %ld to strtod\n", checked, failures,
           undecided, count);
    return failures ? 1 : 0;
}
