/* number.c - Lua-free decimal handling for DynamoDB N values (see number.h).
 *
 * Classification rule for an N string s:
 *   1. integral and within int64              -> integer ("1e2", "100.00" too)
 *   2. the shortest round-trip text of the double nearest s has the same
 *      normalized digits and exponent as s    -> double ("3.14159", "0.1", "1e20")
 *   3. otherwise                             -> keep the decimal string
 * So a double is only used when nothing is lost either way: the number, printed
 * by ds_format_double (marshall, json_encode), gives back the same decimal.
 * Both the nearest double and the shortest text come from float_conv.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "float_conv.h"
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
    char dig[20];
    uint64_t digits;
    int e10;
    long k = 0, i;

    if (!isfinite(v)) {
        buf[0] = '\0';
        return 0;
    }
    if (v == 0) {
        strcpy(buf, "0");
        return 1;
    }
    ds_double_shortest(fabs(v), &digits, &e10);
    for (; digits > 0; digits /= 10)
        dig[k++] = (char)('0' + digits % 10);
    for (i = 0; i < k / 2; i++) { /* written last digit first */
        char c = dig[i];
        dig[i] = dig[k - 1 - i];
        dig[k - 1 - i] = c;
    }
    dig[k] = '\0';
    return layout(buf, v < 0, dig, k, e10 + k, 21);
}

/* The double nearest (-1)^neg * w * 10^q, inside DynamoDB's range. */
static double digits_to_double(uint64_t w, long q, int neg)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    char text[48];
    double x;
    if (w <= (uint64_t)1 << 53 && q >= -22 && q <= 22) /* both exact: one rounding (Clinger) */
        x = q >= 0 ? (double)w * p10[q] : (double)w / p10[-q];
    else if (!ds_digits_to_double(w, (int)q, &x)) {
        snprintf(text, sizeof text, "%llue%ld", (unsigned long long)w, q);
        x = strtod(text, NULL); /* no decimal point: no locale issue */
    }
    return neg ? -x : x;
}

/* A decimal of at most 15 significant digits (DBL_DIG) inside DynamoDB's
 * range (all normal doubles) is always a double: 15-digit decimals survive
 * the trip through a double, so no shorter text denotes the nearest double
 * and its shortest text has exactly these digits. 16 or 17 digits: a double
 * when the shortest digits of the nearest double are these. */
void ds_number_of_digits(uint64_t w, long q, int neg, ds_number *out)
{
    uint64_t shortest;
    int e10;
    out->kind = DS_NUM_DOUBLE;
    out->d = digits_to_double(w, q, neg);
    if (w >= 1000000000000000u) {
        ds_double_shortest(fabs(out->d), &shortest, &e10);
        if (shortest != w || e10 != q)
            out->kind = DS_NUM_DECIMAL;
    }
}

int ds_number_classify(const char *s, size_t len, ds_number *out)
{
    ds_decimal d;
    uint64_t w = 0;
    long i;
    int st;

    if ((st = ds_decimal_parse(s, len, &d)) != DS_NUM_OK || (st = ds_decimal_check(&d)) != DS_NUM_OK)
        return st;
    if (ds_decimal_to_int64(&d, &out->i)) {
        out->kind = DS_NUM_INTEGER;
        return DS_NUM_OK;
    }
    if (d.ndig > 17) { /* a shortest text has at most 17 digits */
        out->kind = DS_NUM_DECIMAL;
        return DS_NUM_OK;
    }
    for (i = 0; i < d.ndig; i++)
        w = w * 10 + (uint64_t)(d.dig[i] - '0'); /* < 10^17: no wrap */
    ds_number_of_digits(w, d.exp - (d.ndig - 1), d.neg, out);
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
