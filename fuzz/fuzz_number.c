/* fuzz_number.c - libFuzzer harness for the Lua-free number.c and base64.c.
 *
 * Input: the first byte picks what the rest is fed to (so one corpus drives
 * both files); the checks are properties of the contracts in number.h and
 * base64.h, and a failed one aborts (libFuzzer saves the input):
 *   - ds_number_classify: a status in range; INTEGER / DOUBLE results print
 *     back to the same decimal; never reads past len (ASan).
 *   - ds_number_classify_fast and ds_number_classify give oracle_classify's
 *     answer (number_oracle.h: strtod and printf): the same status, kind and
 *     value.
 *   - ds_decimal_parse / check / format / to_int64: a checked decimal formats
 *     to text that parses back equal and passes the check again.
 *   - ds_format_double of arbitrary 8 bytes: strtod reads the text back as the
 *     same double (for finite values), the text is a valid decimal, and its
 *     digits are oracle_shortest's.
 *   - ds_digits_to_double of 8 bytes of digits and a byte of exponent: when
 *     it decides, strtod's double.
 *   - ds_base64_decode: an accepted input is the canonical encoding of its
 *     bytes (encode gives the input back); it accepts and rejects as
 *     base64_first_bad, one character at a time, and a rejection's offset is
 *     that character's.
 *   - ds_base64_encode of arbitrary bytes decodes back to them. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "float_conv.h"
#include "number.h"
#include "fuzz_check.h"
#include "number_oracle.h"

/* The shortcut, the full rule and the oracle agree on every text. */
static void fuzz_classify_fast(const char *s, size_t n)
{
    ds_number full, fast, want;
    int st = oracle_classify(s, n, &want);
    CHECK(ds_number_classify(s, n, &full) == st);
    CHECK(ds_number_classify_fast(s, n, &fast) == st);
    if (st != DS_NUM_OK)
        return;
    CHECK(fast.kind == want.kind && full.kind == want.kind);
    if (want.kind == DS_NUM_INTEGER)
        CHECK(fast.i == want.i && full.i == want.i);
    else if (want.kind == DS_NUM_DOUBLE)
        CHECK(memcmp(&fast.d, &want.d, sizeof want.d) == 0 && memcmp(&full.d, &want.d, sizeof want.d) == 0);
}

static void fuzz_decimal(const char *s, size_t n)
{
    ds_decimal d, back;
    ds_number num;
    char text[DS_DECIMAL_BUFSIZE], dbl[DS_DOUBLE_BUFSIZE];
    size_t len;
    long long i;
    int st = ds_decimal_parse(s, n, &d);

    fuzz_classify_fast(s, n);

    CHECK(st == DS_NUM_OK || st == DS_NUM_SYNTAX);
    CHECK(ds_number_strerror(st) != NULL);
    if (st != DS_NUM_OK)
        return;
    CHECK(d.ndig >= 0);
    CHECK(d.ndig != 0 || (d.neg == 0 && d.exp == 0));
    CHECK(strlen(d.dig) == (size_t)(d.ndig < DS_NUM_MAX_DIGITS ? d.ndig : DS_NUM_MAX_DIGITS));
    (void)ds_decimal_to_int64(&d, &i);
    st = ds_decimal_check(&d);
    CHECK(st == DS_NUM_OK || st == DS_NUM_PRECISION || st == DS_NUM_RANGE);
    if (st != DS_NUM_OK)
        return;

    /* A checked decimal has a canonical text that reads back the same. */
    len = ds_decimal_format(&d, text);
    CHECK(len > 0 && len < DS_DECIMAL_BUFSIZE && strlen(text) == len);
    CHECK(ds_decimal_parse(text, len, &back) == DS_NUM_OK);
    CHECK(ds_decimal_check(&back) == DS_NUM_OK);
    CHECK(ds_decimal_equal(&d, &back));

    CHECK(ds_number_classify(s, n, &num) == DS_NUM_OK);
    switch (num.kind) {
    case DS_NUM_INTEGER:
        CHECK(ds_decimal_to_int64(&d, &i) && i == num.i);
        len = (size_t)snprintf(dbl, sizeof dbl, "%lld", num.i);
        CHECK(ds_decimal_parse(dbl, len, &back) == DS_NUM_OK && ds_decimal_equal(&d, &back));
        break;
    case DS_NUM_DOUBLE:
        CHECK(isfinite(num.d));
        len = ds_format_double(num.d, dbl);
        CHECK(len > 0 && ds_decimal_parse(dbl, len, &back) == DS_NUM_OK && ds_decimal_equal(&d, &back));
        break;
    case DS_NUM_DECIMAL:
        break;
    default:
        CHECK(!"unknown ds_numkind");
    }
}

static void fuzz_digits_to_double(const uint8_t *data, size_t n)
{
    uint64_t w;
    int q;
    char text[48];
    double got;
    if (n < sizeof w + 2)
        return;
    memcpy(&w, data, sizeof w);
    q = (int)(data[8] | data[9] << 8) % 700 - 350;
    snprintf(text, sizeof text, "%llue%d", (unsigned long long)w, q);
    if (ds_digits_to_double(w, q, &got))
        CHECK(got == strtod(text, NULL));
}

static void fuzz_double(const uint8_t *data, size_t n)
{
    double v;
    char buf[DS_DOUBLE_BUFSIZE];
    ds_decimal d;
    size_t len;
    uint64_t digits, want_digits;
    int e10, want_e10;
    fuzz_digits_to_double(data, n);
    if (n < sizeof v)
        return;
    memcpy(&v, data, sizeof v);
    len = ds_format_double(v, buf);
    if (!isfinite(v)) {
        CHECK(len == 0);
        return;
    }
    CHECK(len > 0 && len < DS_DOUBLE_BUFSIZE && strlen(buf) == len);
    CHECK(strtod(buf, NULL) == v);
    CHECK(ds_decimal_parse(buf, len, &d) == DS_NUM_OK);
    if (v == 0)
        return;
    ds_double_shortest(fabs(v), &digits, &e10);
    oracle_shortest(fabs(v), &want_digits, &want_e10);
    CHECK(digits == want_digits && e10 == want_e10);
}

/* base64.h's contract one character at a time: the offset of the first bad
 * character of s[0..n), or n when it is all good. */
static size_t base64_first_bad(const char *s, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t g;
    if (n % 4 != 0)
        return n - n % 4;
    for (g = 0; g < n; g += 4) {
        int v[4] = {0, 0, 0, 0}, j, pad = 0;
        for (j = 0; j < 4; j++) {
            const char *at = s[g + j] != '\0' ? strchr(alphabet, s[g + j]) : NULL;
            if (at != NULL) {
                v[j] = (int)(at - alphabet);
                continue;
            }
            if (s[g + j] == '=' && g + 4 == n && j >= 2 && (j == 3 || s[g + 3] == '=')) {
                pad = 4 - j;
                break;
            }
            return g + (size_t)j;
        }
        if ((pad == 2 && v[1] % 16 != 0) || (pad == 1 && v[2] % 4 != 0))
            return g + 3 - (size_t)pad;
    }
    return n;
}

static void fuzz_base64_decode(const char *s, size_t n)
{
    unsigned char *out = malloc(DS_BASE64_DECODED_MAX(n) + 1);
    size_t outlen = (size_t)-1, bad = base64_first_bad(s, n);
    int rc;
    CHECK(out != NULL);
    rc = ds_base64_decode(s, n, out, &outlen);
    CHECK(rc == (bad == n ? 0 : -1));
    if (rc == 0) {
        char *again = malloc(DS_BASE64_ENCODED_LEN(outlen) + 1);
        CHECK(again != NULL);
        CHECK(outlen <= DS_BASE64_DECODED_MAX(n));
        ds_base64_encode(out, outlen, again);
        CHECK(DS_BASE64_ENCODED_LEN(outlen) == n && memcmp(again, s, n) == 0);
        free(again);
    } else {
        CHECK(outlen == bad);
    }
    free(out);
}

static void fuzz_base64_encode(const uint8_t *data, size_t n)
{
    size_t elen = DS_BASE64_ENCODED_LEN(n), outlen = 0;
    char *enc = malloc(elen ? elen : 1);
    unsigned char *dec = malloc(DS_BASE64_DECODED_MAX(elen) + 1);
    CHECK(enc != NULL && dec != NULL);
    ds_base64_encode(data, n, enc);
    CHECK(ds_base64_decode(enc, elen, dec, &outlen) == 0);
    CHECK(outlen == n && (n == 0 || memcmp(dec, data, n) == 0));
    free(enc);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;
    if (size == 0)
        return 0;
    s = dup_exact(data + 1, size - 1);
    switch (data[0] % 4) {
    case 0: fuzz_decimal(s, size - 1); break;
    case 1: fuzz_double(data + 1, size - 1); break;
    case 2: fuzz_base64_decode(s, size - 1); break;
    default: fuzz_base64_encode(data + 1, size - 1); break;
    }
    free(s);
    return 0;
}
