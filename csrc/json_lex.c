/* json_lex.c - JSON lexing helpers, see json_lex.h. */
#include "json_lex.h"

#ifdef __SSE2__
/* 1 when p[0..64) holds a byte that ends a plain run: '"' or '\\' in one
 * of the four loads, or a control byte in their bytewise minimum. */
static int special64(const unsigned char *p)
{
    __m128i a = ds_json_load16(p), b = ds_json_load16(p + 16), c = ds_json_load16(p + 32), d = ds_json_load16(p + 48);
    __m128i hit = ds_json_control(_mm_min_epu8(_mm_min_epu8(a, b), _mm_min_epu8(c, d)));
    hit = _mm_or_si128(hit, _mm_or_si128(ds_json_quote_or_backslash(a), ds_json_quote_or_backslash(b)));
    hit = _mm_or_si128(hit, _mm_or_si128(ds_json_quote_or_backslash(c), ds_json_quote_or_backslash(d)));
    return _mm_movemask_epi8(hit) != 0;
}
#endif

const unsigned char *ds_json_plain_end(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    /* After two steps of 16 bytes, a long string is passed 64 bytes a
     * test; the 16-byte steps then find the byte in the last 64. */
    int step;
    for (step = 0; step < 2 && end - p >= 16; step++) {
        unsigned hit = ds_json_special16(p);
        if (hit)
            return p + __builtin_ctz(hit);
        p += 16;
    }
    if (step == 2) {
        while (end - p >= 64 && !special64(p))
            p += 64;
    }
#endif
    return ds_json_plain_end_inline(p, end);
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? exactly */
int ds_json_number_ok(const char *s, size_t n)
{
    size_t i = 0, start;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return 0;
    }
    return i == n;
}

int ds_json_hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = (unsigned char)s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v |= (c | 0x20) - 'a' + 10;
        else
            return 0;
    }
    *out = v;
    return 1;
}

int ds_utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
