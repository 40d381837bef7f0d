/* number.c - Lua-free decimal handling for DynamoDB N values (see number.h).
 *
 * Classification rule for an N string s:
 *   1. integral and within int64              -> integer ("1e2", "100.00" too)
 *   2. the shortest round-trip text of strtod(s) has the same normalized
 *      digits and exponent as s              -> double ("3.14159", "0.1", "1e20")
 *   3. otherwise                             -> keep the decimal string
 * So a double is only used when nothing is lost either way. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "number.h"

#define EXP_SATURATE 1000000000L /* far beyond any limit, small enough not to overflow */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int ds_decimal_parse(const char *s, size_t len, ds_decimal *d)
{
    size_t i = 0;
    long long k = 0;          /* mantissa digits seen */
    long long intdigits = -1; /* mantissa digits before the '.' */
    long long first = -1, last = -1;
    long long e = 0;
    int neg = 0;

    if (i < len && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    for (; i < len; i++) {
        char c = s[i];
        if (is_digit(c)) {
            if (c != '0') {
                if (first < 0)
                    first = k;
                last = k;
            }
            if (first >= 0 && k - first < DS_NUM_MAX_DIGITS)
                d->dig[k - first] = c;
            k++;
        } else if (c == '.' && intdigits < 0) {
            intdigits = k;
        } else {
            break;
        }
    }
    if (k == 0)
        return DS_NUM_SYNTAX; /* "", "-", ".", "e5", "inf", "0x.." all end here or below */
    if (intdigits < 0)
        intdigits = k;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= len || !is_digit(s[i]))
            return DS_NUM_SYNTAX;
        for (; i < len && is_digit(s[i]); i++)
            if (e < EXP_SATURATE)
                e = e * 10 + (s[i] - '0');
        if (eneg)
            e = -e;
    }
    if (i != len)
        return DS_NUM_SYNTAX;

    if (first < 0) { /* zero, whatever its sign or exponent */
        d->neg = 0;
        d->ndig = 0;
        d->exp = 0;
        d->dig[0] = '\0';
        return DS_NUM_OK;
    }
    long long ndig = last - first + 1;
    long long exp = intdigits - 1 - first + e;
    if (exp > EXP_SATURATE)
        exp = EXP_SATURATE;
    if (exp < -EXP_SATURATE)
        exp = -EXP_SATURATE;
    if (ndig > EXP_SATURATE)
        ndig = EXP_SATURATE;
    d->neg = neg;
    d->ndig = (long)ndig;
    d->exp = (long)exp;
    d->dig[ndig < DS_NUM_MAX_DIGITS ? ndig : DS_NUM_MAX_DIGITS] = '\0';
    return DS_NUM_OK;
}

int ds_decimal_check(const ds_decimal *d)
{
    if (d->ndig > DS_NUM_MAX_DIGITS)
        return DS_NUM_PRECISION;
    if (d->ndig > 0 && (d->exp < DS_NUM_MIN_EXP || d->exp > DS_NUM_MAX_EXP))
        return DS_NUM_RANGE;
    return DS_NUM_OK;
}

int ds_decimal_equal(const ds_decimal *a, const ds_decimal *b)
{
    return a->neg == b->neg && a->ndig == b->ndig && a->exp == b->exp && strcmp(a->dig, b->dig) == 0;
}

int ds_decimal_to_int64(const ds_decimal *d, long long *out)
{
    unsigned long long mag = 0;
    long i;

    if (d->ndig == 0) {
        *out = 0;
        return 1;
    }
    if (d->exp < d->ndig - 1 || d->exp > 18) /* fraction, or >= 1e19 > 2^63 */
        return 0;
    for (i = 0; i < d->ndig; i++) /* ndig <= 19 here, all stored */
        mag = mag * 10 + (unsigned long long)(d->dig[i] - '0');
    for (i = d->ndig - 1; i < d->exp; i++)
        mag *= 10; /* < 1e19 < 2^64: no wrap */
    if (d->neg) {
        if (mag > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *out = mag == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)mag;
    } else {
        if (mag > (unsigned long long)LLONG_MAX)
            return 0;
        *out = (long long)mag;
    }
    return 1;
}

/* Lays out k significant digits dig with value 0.dig * 10^n the way
 * ECMAScript's Number::toString does, with plain digits up to 10^plain_max
 * (21 there). Writes at most 3 + max(k, plain_max) + 6 + 12 bytes. */
static size_t layout(char *buf, int neg, const char *dig, long k, long n, long plain_max)
{
    char *p = buf;
    long i;

    if (neg)
        *p++ = '-';
    if (k <= n && n <= plain_max) {                 /* 100, 1500 */
        memcpy(p, dig, (size_t)k);
        p += k;
        for (i = k; i < n; i++)
            *p++ = '0';
    } else if (0 < n && n <= plain_max) {           /* 3.14159 */
        memcpy(p, dig, (size_t)n);
        p += n;
        *p++ = '.';
        memcpy(p, dig + n, (size_t)(k - n));
        p += k - n;
    } else if (-6 < n && n <= 0) {           /* 0.1, 0.000001 */
        *p++ = '0';
        *p++ = '.';
        for (i = n; i < 0; i++)
            *p++ = '0';
        memcpy(p, dig, (size_t)k);
        p += k;
    } else {                                 /* 1e+21, 1.5e-7 */
        *p++ = dig[0];
        if (k > 1) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t)(k - 1));
            p += k - 1;
        }
        p += sprintf(p, "e%c%ld", n - 1 < 0 ? '-' : '+', n - 1 < 0 ? -(n - 1) : n - 1);
    }
    *p = '\0';
    return (size_t)(p - buf);
}

size_t ds_decimal_format(const ds_decimal *d, char buf[DS_DECIMAL_BUFSIZE])
{
    if (d->ndig == 0 || d->ndig > DS_NUM_MAX_DIGITS) {
        strcpy(buf, "0"); /* callers only format checked decimals */
        return d->ndig == 0 ? 1 : 0;
    }
    return layout(buf, d->neg, d->dig, d->ndig, d->exp + 1, 40);
}

size_t ds_format_double(double v, char buf[DS_DOUBLE_BUFSIZE])
{
    char tmp[48], dig[20];
    const char *q;
    long k = 0, e10;
    int prec;

    if (!isfinite(v)) {
        buf[0] = '\0';
        return 0;
    }
    if (v == 0) {
        strcpy(buf, "0");
        return 1;
    }
    /* %.Ne and strtod both use the current locale's decimal point, so the
     * round-trip test is consistent; the digits are then read locale-free. */
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    for (q = tmp; *q && *q != 'e' && *q != 'E'; q++)
        if (is_digit(*q) && k < (long)sizeof dig - 1)
            dig[k++] = *q;
    e10 = *q ? strtol(q + 1, NULL, 10) : 0;
    while (k > 1 && dig[k - 1] == '0')
        k--;
    dig[k] = '\0';
    return layout(buf, v < 0, dig, k, e10 + 1, 21);
}

int ds_number_classify(const char *s, size_t len, ds_number *out)
{
    ds_decimal d, back;
    int st;

    if ((st = ds_decimal_parse(s, len, &d)) != DS_NUM_OK || (st = ds_decimal_check(&d)) != DS_NUM_OK)
        return st;
    if (ds_decimal_to_int64(&d, &out->i)) {
        out->kind = DS_NUM_INTEGER;
        return DS_NUM_OK;
    }
    out->kind = DS_NUM_DECIMAL;
    if (d.ndig <= 17) { /* a shortest double never has more digits */
        char text[DS_NUM_MAX_DIGITS + 24], shortest[DS_DOUBLE_BUFSIZE];
        /* integer mantissa and exponent: no decimal point, so no locale issue */
        snprintf(text, sizeof text, "%s%se%ld", d.neg ? "-" : "", d.dig, d.exp - (d.ndig - 1));
        double x = strtod(text, NULL);
        size_t n = ds_format_double(x, shortest);
        if (n > 0 && ds_decimal_parse(shortest, n, &back) == DS_NUM_OK && ds_decimal_equal(&back, &d)) {
            out->kind = DS_NUM_DOUBLE;
            out->d = x;
        }
    }
    return DS_NUM_OK;
}

/* m * 10^scale for an integer m < 2^53, correctly rounded. */
static double decimal_scale(double m, long scale, const ds_decimal *d)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    char text[DS_NUM_MAX_DIGITS + 24];
    if (scale >= 0 && scale <= 22)
        return m * p10[scale]; /* both exact: one rounding (Clinger's fast path) */
    if (scale < 0 && scale >= -22)
        return m / p10[-scale];
    snprintf(text, sizeof text, "%se%ld", d->dig, scale);
    return strtod(text, NULL); /* no decimal point: no locale issue */
}

/* ds_number_classify, with a shortcut that gives the same answer: a decimal
 * of at most 15 significant digits (DBL_DIG) inside DynamoDB's range (all
 * normal doubles) is always a double, because 15-digit decimals survive the
 * trip through a double, so no shorter text can denote the nearest double and
 * the shortest text of it has exactly these digits. Its value is then
 * digits * 10^scale, computed exactly rounded without strtod when |scale| <= 22. */
int ds_number_classify_decimal(const char *s, size_t n, ds_number *out)
{
    ds_decimal d;
    long i;
    double m = 0;
    int st = ds_decimal_parse(s, n, &d);
    if (st == DS_NUM_OK)
        st = ds_decimal_check(&d);
    if (st != DS_NUM_OK)
        return st;
    if (ds_decimal_to_int64(&d, &out->i)) {
        out->kind = DS_NUM_INTEGER;
        return DS_NUM_OK;
    }
    if (d.ndig > 15)
        return ds_number_classify(s, n, out); /* the full rule: strtod and shortest text */
    for (i = 0; i < d.ndig; i++)
        m = m * 10 + (d.dig[i] - '0'); /* < 10^15 < 2^53: exact */
    m = decimal_scale(m, d.exp - (d.ndig - 1), &d);
    out->kind = DS_NUM_DOUBLE;
    out->d = d.neg ? -m : m;
    return DS_NUM_OK;
}

const char *ds_number_strerror(int status)
{
    switch (status) {
    case DS_NUM_OK:
        return "valid";
    case DS_NUM_SYNTAX:
        return "not a decimal number";
    case DS_NUM_PRECISION:
        return "more than 38 significant digits";
    case DS_NUM_RANGE:
        return "magnitude outside 1E-130 .. 9.99E+125";
    default:
        return "invalid";
    }
}
