/* number.h - Lua-free decimal handling for DynamoDB N values: parse and
 * validate a decimal string, classify it (int64 / exact double / decimal),
 * and format doubles in the shortest form that reads back the same. */
#ifndef DS_NUMBER_H
#define DS_NUMBER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#pragma GCC visibility push(hidden)

/* DynamoDB limits: 38 significant digits, 1E-130 <= |x| < 1E+126. */
#define DS_NUM_MAX_DIGITS 38
#define DS_NUM_MIN_EXP    (-130)
#define DS_NUM_MAX_EXP    125

/* A decimal in normalized form: value = (-1)^neg * 0.d1 d2 ... dn * 10^(exp + 1),
 * i.e. d1.d2...dn * 10^exp, with d1 != 0 and dn != 0. Zero has ndig == 0,
 * exp == 0 and neg == 0 (DynamoDB has no negative zero). */
typedef struct {
    int neg;
    long ndig;                          /* significant digits; may exceed what dig holds */
    long exp;                           /* adjusted exponent (saturates far outside any limit) */
    char dig[DS_NUM_MAX_DIGITS + 1];    /* first min(ndig, 38) digits, NUL-terminated */
} ds_decimal;

/* Status codes of ds_decimal_parse / ds_decimal_check / ds_number_classify. */
enum {
    DS_NUM_OK = 0,
    DS_NUM_SYNTAX,      /* not [+-]digits[.digits][(e|E)[+-]digits] (".5" and "5." allowed) */
    DS_NUM_PRECISION,   /* more than 38 significant digits */
    DS_NUM_RANGE        /* magnitude outside 1E-130 .. 9.99..E+125 */
};

typedef enum {
    DS_NUM_INTEGER,     /* integral and fits int64: use .i */
    DS_NUM_DOUBLE,      /* the shortest form of .d denotes the same decimal: use .d */
    DS_NUM_DECIMAL      /* anything else: keep the string */
} ds_numkind;

typedef struct {
    ds_numkind kind;
    long long i;
    double d;
} ds_number;

/* Syntax only (no DynamoDB limits): DS_NUM_OK or DS_NUM_SYNTAX. s need not be
 * NUL-terminated; exactly len bytes are read. */
int ds_decimal_parse(const char *s, size_t len, ds_decimal *d);

/* DynamoDB limits of a parsed decimal: DS_NUM_OK, DS_NUM_PRECISION or DS_NUM_RANGE. */
int ds_decimal_check(const ds_decimal *d);

/* 1 when a and b denote the same number (both fully stored, ndig <= 38). */
int ds_decimal_equal(const ds_decimal *a, const ds_decimal *b);

/* 1 and *out set when d is integral and fits int64, else 0. */
int ds_decimal_to_int64(const ds_decimal *d, long long *out);

/* Canonical text of d (ndig <= 38), valid JSON and DynamoDB: plain digits for
 * 1e-7 <= |x| < 1e40 ("12345678901234567890", "0.5"), else "d.ddde+X".
 * Returns the length. */
#define DS_DECIMAL_BUFSIZE 64
size_t ds_decimal_format(const ds_decimal *d, char buf[DS_DECIMAL_BUFSIZE]);

/* Parse, check the DynamoDB limits, classify. Returns a DS_NUM_* status;
 * out is filled only on DS_NUM_OK. */
int ds_number_classify(const char *s, size_t len, ds_number *out);

/* ds_number_classify's kind and value of (-1)^neg * w * 10^q, for w < 10^17
 * without trailing zeros, inside DynamoDB's range and not an int64 integer:
 * DS_NUM_DOUBLE, or DS_NUM_DECIMAL for 16-17 digits that are not the
 * shortest text of their nearest double. */
void ds_number_of_digits(uint64_t w, long q, int neg, ds_number *out);

/* 1 when s[0..8) are 8 decimal digits, with their value in *v: one load
 * and three multiplies (the SWAR method of simdjson, first byte lowest). */
static inline int ds_eight_digits(const char *s, uint64_t *v)
{
    uint64_t w;
    memcpy(&w, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    /* each byte's high nibble 3, and still 3 after adding 6 (at most '9') */
    if (((w & 0xF0F0F0F0F0F0F0F0u) | (((w + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) !=
        0x3333333333333333u)
        return 0;
    w = (w & 0x0F0F0F0F0F0F0F0Fu) * 2561 >> 8;             /* pairs of digits */
    w = (w & 0x00FF00FF00FF00FFu) * 6553601 >> 16;         /* groups of four */
    *v = (w & 0x0000FFFF0000FFFFu) * 42949672960001u >> 32; /* all eight */
    return 1;
}

/* Reads the digits at p (before end) into *m (*m * 10 + each, eight at a
 * time while eight remain); returns the first byte after them. */
static inline const char *ds_read_digits(const char *p, const char *end, uint64_t *m)
{
    uint64_t v;
    while (end - p >= 8 && ds_eight_digits(p, &v)) {
        *m = *m * 100000000u + v;
        p += 8;
    }
    while (p < end && (unsigned char)(*p - '0') <= 9) {
        *m = *m * 10 + (uint64_t)(*p - '0');
        p++;
    }
    return p;
}

/* ds_number_classify's answer, status and value alike, reached faster for
 * the texts most N values are. Inline, as it runs once per N value of a
 * page: -?d*.?d* with at most 17 digits is read here (integral, with no
 * fraction or a zero one: an integer; up to 15 digits: its digits m over
 * 10^f for its f fraction digits, both exact, so one correctly rounded
 * division, the nearest double; 16 or 17: ds_number_of_digits); anything
 * else goes to ds_number_classify. */
static inline int ds_number_classify_fast(const char *s, size_t len, ds_number *out)
{
    static const uint64_t p10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
                                   1000000000, 10000000000, 100000000000, 1000000000000,
                                   10000000000000, 100000000000000, 1000000000000000,
                                   10000000000000000, 100000000000000000};
    size_t digits, frac = 0;
    int neg = len > 0 && s[0] == '-';
    const char *p = s + neg, *end = s + len, *int_end;
    uint64_t m = 0; /* < 10^19 < 2^64: at most 19 digits in 19 bytes */
    if (len == 0 || len > 19)
        return ds_number_classify(s, len, out);
    p = int_end = ds_read_digits(p, end, &m);
    if (p < end && *p == '.') {
        p = ds_read_digits(p + 1, end, &m);
        frac = (size_t)(p - int_end - 1);
    }
    digits = (size_t)(int_end - s - neg) + frac;
    if (p != end || digits == 0 || digits > 17)
        return ds_number_classify(s, len, out);
    /* integral: no fraction digits, or as many trailing zeros (the last
     * digit tested first: a division is slow) */
    if (frac == 0 || (m % 10 == 0 && m % p10[frac] == 0)) {
        out->kind = DS_NUM_INTEGER;
        out->i = neg ? -(long long)(m / p10[frac]) : (long long)(m / p10[frac]);
    } else if (digits <= 15) {
        out->kind = DS_NUM_DOUBLE;
        out->d = (neg ? -(double)m : (double)m) / (double)p10[frac];
    } else {
        long q = -(long)frac;
        for (; m % 10 == 0; m /= 10)
            q++;
        ds_number_of_digits(m, q, neg, out);
    }
    return DS_NUM_OK;
}

/* A short English description of a DS_NUM_* status. */
const char *ds_number_strerror(int status);

/* Shortest text that reads back as v (v must be finite; the nearest to v of
 * those, ties to an even last digit: ds_double_shortest), laid out as
 * ECMAScript's Number.prototype.toString: plain digits for 1e-7 <= |v| < 1e21
 * ("3.14159", "0.1", "100", "0.000001"), else "1e+21", "1.5e-7". Negative zero
 * prints "0". Independent of the C locale. Returns the length. */
#define DS_DOUBLE_BUFSIZE 32
size_t ds_format_double(double v, char buf[DS_DOUBLE_BUFSIZE]);

#pragma GCC visibility pop

#endif
