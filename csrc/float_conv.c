/* float_conv.c - see float_conv.h. Both directions scale by one entry of
 * pow10_table.h: E(e) = floor(10^e * 2^(127 - b(e))), b(e) = floor(log2 10^e),
 * exact for 0 <= e <= 55, else E(e) < 10^e * 2^(127 - b(e)) < E(e) + 1. */
#include <string.h>

#include "float_conv.h"
#include "pow10_table.h"

/* floor(x / 2^n) for any sign (>> of a negative int is implementation-defined). */
static int floor_shift(long x, int n)
{
    return (int)(x >= 0 ? x >> n : -((-x + (1L << n) - 1) >> n));
}

/* The integer log formulas; scripts/gen-pow10-table checks them over the
 * ranges used here (|e| <= 400, q in [-1100, 1000)). */
static int floor_log2_pow10(int e)
{
    return floor_shift((long)e * 1741647, 19);
}

/* a * b = *hi * 2^64 + the result. */
static uint64_t mul128(uint64_t a, uint64_t b, uint64_t *hi)
{
#if defined(__SIZEOF_INT128__)
    unsigned __int128 p = (unsigned __int128)a * b;
    *hi = (uint64_t)(p >> 64);
    return (uint64_t)p;
#else
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return (mid << 32) | (uint32_t)p00;
#endif
}

/* ---- decimal -> double ------------------------------------------------ */

/* A 192-bit product p[2]:p[1]:p[0] (p[2] most significant, its bit 63 or 62
 * the leading one) rounded to 53 bits, ties to even: *m in [2^52, 2^53) and
 * the power of two of the product it scales to (result ~ m * 2^(*shift + 128)). */
static void round53(const uint64_t p[3], uint64_t *m, int *shift)
{
    int s = 10 + (int)(p[2] >> 63); /* bits of p[2] below the 53 kept */
    uint64_t rem = p[2] & (((uint64_t)1 << s) - 1), half = (uint64_t)1 << (s - 1);
    *m = p[2] >> s;
    if (rem > half || (rem == half && (p[1] != 0 || p[0] != 0 || (*m & 1))))
        (*m)++;
    *shift = s;
    if (*m == (uint64_t)1 << 53) {
        *m >>= 1;
        (*shift)++;
    }
}

/* Why it is exact: with wn = w shifted so its top bit is set, the true
 * w * 10^q is wn * E(q) * 2^(b(q) - 127 - lz) when E(q) is exact, else lies
 * strictly between wn * E(q) and wn * (E(q) + 1) = wn * E(q) + wn on that
 * scale. Rounding to nearest is monotone, so when both ends of that bracket
 * round to the same double, so does the true value. The bracket is 2^-127 of
 * the value wide; it straddles a rounding boundary only for values within
 * that of a halfway point, which we leave to strtod. */
int ds_digits_to_double(uint64_t w, int q, double *out)
{
    uint64_t lo[3], hi[3], m, m_hi, bits, a_hi, a_lo, b_hi, b_lo, mid;
    int lz, s, s_hi;
    long e2, biased;
    const uint64_t *t;

    if (w == 0 || q < DS_POW10_MIN || q > DS_POW10_MAX)
        return 0;
    lz = __builtin_clzll(w); /* w != 0 */
    w <<= lz;
    t = POW10[q - DS_POW10_MIN];
    a_lo = mul128(w, t[0], &a_hi); /* w * E = a * 2^64 + b */
    b_lo = mul128(w, t[1], &b_hi);
    mid = a_lo + b_hi;
    lo[0] = b_lo;
    lo[1] = mid;
    lo[2] = a_hi + (mid < a_lo);
    round53(lo, &m, &s);
    if (!(q >= 0 && q <= DS_POW10_EXACT_MAX)) {
        /* wn * E + wn: below 2^192 since E + 1 <= 2^128 */
        memcpy(hi, lo, sizeof hi);
        hi[0] += w;
        if (hi[0] < w && ++hi[1] == 0)
            hi[2]++;
        round53(hi, &m_hi, &s_hi);
        if (m_hi != m || s_hi != s)
            return 0;
    }
    /* value = m * 2^(s + 128) * 2^(b - 127 - lz); m = 1.f * 2^52 */
    e2 = (long)s + 1 + floor_log2_pow10(q) - lz;
    biased = e2 + 52 + 1023;
    if (biased < 1 || biased > 2046)
        return 0;
    bits = ((uint64_t)biased << 52) | (m & (((uint64_t)1 << 52) - 1));
    memcpy(out, &bits, sizeof bits);
    return 1;
}

/* ---- double -> shortest decimal (Schubfach) ----------------------------- */

/* g * cp / 2^128 rounded to odd (floor, with the last bit set when anything
 * was dropped), g = {high, low}. Rounding to odd keeps every comparison with
 * an even integer, which is all the caller does with the results. */
static uint64_t round_to_odd(const uint64_t g[2], uint64_t cp)
{
    uint64_t x_hi, y_hi, y_lo;
    (void)mul128(g[1], cp, &x_hi);
    y_lo = mul128(g[0], cp, &y_hi);
    y_lo += x_hi;
    y_hi += y_lo < x_hi;
    return y_hi | (y_lo != 0);
}

/* R. Giulietti, "The Schubfach way to render doubles" (2020, revised 2022),
 * figures 4 and 6, whose proof this follows. v = c * 2^q; the numbers that
 * round to v form an interval [v - 2^(q-1) (or 2^(q-2) below a power of two),
 * v + 2^(q-1)], its ends included when c is even. Scaled by 10^-k with k =
 * floor(log10 of the interval's width), the interval is 1 to 10 units wide:
 * it holds at most one multiple of 10 (a shorter decimal: take it if so) and
 * at least one integer (then the one or two integers next to v; when both are
 * inside take the nearer, ties to even). Everything is computed on 4 * c so
 * that the ends and v are integers before scaling; g = E(-k) + 1 > 10^-k
 * scaled, a 128-bit upper bound, is precise enough that the round-to-odd
 * products compare with multiples of 4 exactly as the true values do (the
 * paper's theorem; 126 bits suffice, we have 128). */
static uint64_t schubfach(double v, int *exp10)
{
    uint64_t bits, t, c, cb, cbl, cbr, vb, vbl, vbr, lower, upper, s, g[2];
    int be, q, k, h, even, closer_lower, sp_in, tp_in, s_in, t_in;

    memcpy(&bits, &v, sizeof bits);
    be = (int)((bits >> 52) & 0x7ff);
    t = bits & (((uint64_t)1 << 52) - 1);
    c = be ? t | ((uint64_t)1 << 52) : t;
    q = be ? be - 1075 : -1074;
    even = !(c & 1);
    closer_lower = t == 0 && be > 1;
    cb = c << 2;
    cbl = cb - 2 + (uint64_t)closer_lower;
    cbr = cb + 2;
    /* k = floor(log10(2^q)), or of 3/4 * 2^q when the lower gap is halved */
    k = floor_shift((long)q * 1262611 - (closer_lower ? 524031 : 0), 22);
    h = q + floor_log2_pow10(-k) + 1; /* 1..4: cb << h < 2^64 */
    g[0] = POW10[-k - DS_POW10_MIN][0];
    g[1] = POW10[-k - DS_POW10_MIN][1] + 1;
    g[0] += g[1] == 0; /* no overflow: the script checks E < 2^128 - 1 */
    vbl = round_to_odd(g, cbl << h);
    vb = round_to_odd(g, cb << h);
    vbr = round_to_odd(g, cbr << h);
    lower = vbl + !even;
    upper = vbr - !even;
    s = vb >> 2;
    if (s >= 10) { /* candidates 10 * sp and 10 * (sp + 1), one digit shorter */
        uint64_t sp = s / 10;
        sp_in = lower <= 40 * sp;
        tp_in = 40 * sp + 40 <= upper;
        if (sp_in != tp_in) {
            *exp10 = k + 1;
            return sp + (uint64_t)tp_in;
        }
    }
    *exp10 = k;
    s_in = lower <= 4 * s;
    t_in = 4 * s + 4 <= upper;
    if (s_in != t_in)
        return s + (uint64_t)t_in;
    /* both inside: the nearer, vb against the midpoint 4s + 2; ties to even */
    return s + (vb > 4 * s + 2 || (vb == 4 * s + 2 && (s & 1)));
}

void ds_double_shortest(double v, uint64_t *digits, int *exp10)
{
    uint64_t s = schubfach(v, exp10);
    while (s % 10 == 0) {
        s /= 10;
        (*exp10)++;
    }
    *digits = s;
}
