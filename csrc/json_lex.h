/* json_lex.h - Lua-free pieces of JSON's lexical grammar (RFC 8259), shared
 * by the JSON decoder (ds_json.c) and the one-pass records decoder
 * (ds_decode.c). */
#ifndef DS_JSON_LEX_H
#define DS_JSON_LEX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#pragma GCC visibility push(hidden)

/* The index of the first byte at or after i in s[0..n) that is not JSON
 * whitespace (space, tab, LF, CR), or n. Inline: most calls find none. */
static inline size_t ds_json_skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The first byte in [p, end) that a JSON string cannot hold as it is: '"',
 * '\\' or a control byte (below 0x20); end when there is none. Tests 16
 * bytes a step with SSE2 (every x86-64), then 8 bytes a word, while that many
 * remain (never reading past end): long strings are common. In each
 * has-zero-byte test a borrow can flag only bytes after a true hit, so the
 * first flagged byte is exact. */
const unsigned char *ds_json_plain_end(const unsigned char *p, const unsigned char *end);

#ifdef __SSE2__
/* The 16 bytes at p (all readable). */
static inline __m128i ds_json_load16(const unsigned char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* The bytes of v that are '"' or '\\' as 0xFF, the others 0. */
static inline __m128i ds_json_quote_or_backslash(__m128i v)
{
    return _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
}

/* The bytes of v at most 0x1F (control bytes) as 0xFF, the others 0. */
static inline __m128i ds_json_control(__m128i v)
{
    const __m128i controls = _mm_set1_epi8(0x1F);
    return _mm_cmpeq_epi8(_mm_max_epu8(v, controls), controls);
}

/* The bytes p[0..16) that a JSON string cannot hold as they are ('"', '\\'
 * or at most 0x1F) as bits, byte i at bit i; 16 bytes must be readable. */
static inline unsigned ds_json_special16(const unsigned char *p)
{
    __m128i v = ds_json_load16(p);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(ds_json_quote_or_backslash(v), ds_json_control(v)));
}
#endif

/* ds_json_plain_end for a caller's hot loop: inlined there, where the call
 * would cost as much as a short string's scan. */
static inline const unsigned char *ds_json_plain_end_inline(const unsigned char *p, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101u, highs = ones * 0x80;
#ifdef __SSE2__
    /* 16 bytes a step where every x86-64 has it */
    while (end - p >= 16) {
        unsigned hit = ds_json_special16(p);
        if (hit)
            return p + __builtin_ctz(hit);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t w, hit;
        memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w); /* the first byte lowest, where borrows start */
#endif
        /* (x - ones) & ~x for x = w ^ '"', w ^ '\\' and (x - 0x20s) & ~w:
         * neither byte has its high bit, so ~x's high bits are ~w's */
        hit = ((w ^ ones * '"') - ones) | ((w ^ ones * '\\') - ones) | (w - ones * 0x20);
        hit &= ~w & highs;
        if (hit)
            return p + (__builtin_ctzll(hit) >> 3);
        p += 8;
    }
    while (p < end && *p >= 0x20 && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* ds_json_plain_end where most strings are short (names, tags, small
 * values): their first 16 bytes tested inline, the rest by the call. */
static inline const unsigned char *ds_json_plain_end_short(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    if (end - p >= 16) {
        unsigned hit = ds_json_special16(p);
        if (hit)
            return p + __builtin_ctz(hit);
        p += 16;
    }
#endif
    return ds_json_plain_end(p, end);
}

/* 1 when s[0..n) is exactly a JSON number (cJSON also takes 01, 1., -.5). */
int ds_json_number_ok(const char *s, size_t n);

/* The value of the 4 hex digits at s into *out: 1, or 0 when one is not a
 * hex digit. */
int ds_json_hex4(const char *s, unsigned *out);

/* Writes the UTF-8 bytes of code point cp (at most 0x10FFFF) to out and
 * returns how many (1 to 4). */
int ds_utf8_encode(unsigned long cp, char out[4]);

#pragma GCC visibility pop

#endif
