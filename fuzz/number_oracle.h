/* number_oracle.h - number.c's rule computed independently of float_conv.c,
 * from glibc's correctly rounded printf ("%.*e") and strtod and the decimal
 * code of number.c (parse, check, to_int64): the reference that
 * fuzz_number.c and number_check.c compare the fast paths with. Slow (a few
 * microseconds a number), C locale only. */
#ifndef NUMBER_ORACLE_H
#define NUMBER_ORACLE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "number.h"

/* 1 when d * 10^e reads back (strtod) as v. */
static int oracle_reads_back(uint64_t d, int e, double v)
{
    char text[48];
    snprintf(text, sizeof text, "%llue%d", (unsigned long long)d, e);
    return strtod(text, NULL) == v;
}

/* 1 when some decimal of n significant digits reads back as v (> 0, finite),
 * with *d * 10^*e the nearest such. D, the nearest n-digit decimal (printf,
 * ties to even), is it when it reads back; else only a neighbour of D can
 * (the numbers that read back as v form an interval holding v, and D is
 * nearer v than any other n-digit decimal): D + 1, or D - 1 (below a power of
 * ten, 99..9 one place lower). "Some n-digit decimal reads back" only grows
 * with n, so the shortest n can be searched by bisection. */
static int oracle_digits(double v, int n, uint64_t *d, int *e)
{
    char text[48], *p;
    uint64_t D = 0, pow = 1;
    int i;
    snprintf(text, sizeof text, "%.*e", n - 1, v);
    for (p = text; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            D = D * 10 + (uint64_t)(*p - '0');
    *e = atoi(p + 1) - (n - 1);
    for (i = 1; i < n; i++)
        pow *= 10;
    *d = D;
    if (oracle_reads_back(D, *e, v))
        return 1;
    if (oracle_reads_back(D + 1, *e, v)) {
        *d = D + 1;
        return 1;
    }
    if (D > pow && oracle_reads_back(D - 1, *e, v)) {
        *d = D - 1;
        return 1;
    }
    if (D == pow && oracle_reads_back(pow * 10 - 1, *e - 1, v)) {
        *d = pow * 10 - 1;
        (*e)--;
        return 1;
    }
    return 0;
}

/* The shortest digits (no trailing zeros) * 10^*e that read back as v (> 0,
 * finite), the nearest to v of those, ties to even. */
static void oracle_shortest(double v, uint64_t *d, int *e)
{
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (oracle_digits(v, mid, d, e))
            hi = mid;
        else
            lo = mid + 1;
    }
    if (!oracle_digits(v, lo, d, e))
        abort(); /* 17 digits always read back */
    while (*d % 10 == 0) {
        *d /= 10;
        (*e)++;
    }
}

/* ds_number_classify's contract, from strtod and oracle_shortest. */
static int oracle_classify(const char *s, size_t n, ds_number *out)
{
    ds_decimal d;
    char text[DS_NUM_MAX_DIGITS + 24];
    uint64_t w = 0, sd;
    long i, q;
    int st, se;
    double x;
    if ((st = ds_decimal_parse(s, n, &d)) != DS_NUM_OK || (st = ds_decimal_check(&d)) != DS_NUM_OK)
        return st;
    if (ds_decimal_to_int64(&d, &out->i)) {
        out->kind = DS_NUM_INTEGER;
        return DS_NUM_OK;
    }
    out->kind = DS_NUM_DECIMAL;
    if (d.ndig > 17)
        return DS_NUM_OK;
    for (i = 0; i < d.ndig; i++)
        w = w * 10 + (uint64_t)(d.dig[i] - '0');
    q = d.exp - (d.ndig - 1);
    snprintf(text, sizeof text, "%s%se%ld", d.neg ? "-" : "", d.dig, q);
    x = strtod(text, NULL);
    oracle_shortest(x < 0 ? -x : x, &sd, &se);
    if (sd == w && se == q) {
        out->kind = DS_NUM_DOUBLE;
        out->d = x;
    }
    return DS_NUM_OK;
}

#endif
