/* base64.c - Lua-free strict standard base64 (see base64.h). */
#include "base64.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <tmmintrin.h>
#define DS_BASE64_SSSE3 1
#endif

static const char enc_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void ds_base64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        *out++ = enc_table[v >> 18 & 63];
        *out++ = enc_table[v >> 12 & 63];
        *out++ = enc_table[v >> 6 & 63];
        *out++ = enc_table[v & 63];
    }
    if (n - i == 1) {
        unsigned long v = (unsigned long)in[i] << 16;
        *out++ = enc_table[v >> 18 & 63];
        *out++ = enc_table[v >> 12 & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
        *out++ = enc_table[v >> 18 & 63];
        *out++ = enc_table[v >> 12 & 63];
        *out++ = enc_table[v >> 6 & 63];
        *out++ = '=';
    }
}

/* The 6-bit value of each byte, or BAD ('=' included): one OR of a group's
 * four values tells whether all four are in the alphabet. */
#define BAD 0x80
#define X BAD
static const unsigned char dec_table[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
};
#undef X

/* The group of four characters at s, the last of the text when last: its
 * bytes written at out, their count returned; or -1 with *bad set to the
 * position of the first bad character in it. Checks each character alone:
 * for the groups that the table's one test rejects, and the final one. */
static int decode_group_slowly(const unsigned char *s, int last, unsigned char *out, size_t *bad)
{
    int pad = 0, q[4], j;
    unsigned long v;
    for (j = 0; j < 4; j++) {
        q[j] = dec_table[s[j]];
        if (q[j] == BAD) {
            /* '=' only in the last two positions of the last group, and
             * "x==" / "xx=" only: no data after padding */
            if (s[j] == '=' && last && j >= 2 && (j == 3 || s[3] == '=')) {
                q[j] = 0;
                pad = 4 - j;
                break;
            }
            *bad = (size_t)j;
            return -1;
        }
    }
    v = (unsigned long)q[0] << 18 | (unsigned long)q[1] << 12;
    if (pad < 2)
        v |= (unsigned long)q[2] << 6;
    if (pad < 1)
        v |= (unsigned long)q[3];
    /* non-canonical: bits that the padding drops must be zero */
    if ((pad == 2 && (v & 0xFFFF)) || (pad == 1 && (v & 0xFF))) {
        *bad = (size_t)(3 - pad);
        return -1;
    }
    out[0] = (unsigned char)(v >> 16);
    out[1] = (unsigned char)(v >> 8 & 0xFF);
    out[2] = (unsigned char)(v & 0xFF);
    return 3 - pad;
}

#ifdef DS_BASE64_SSSE3
/* Decodes the 16-character blocks at the start of s[0..n) with SSSE3's byte
 * shuffles (every x86-64 since 2006; checked at run time), 12 bytes to out
 * each, up to the first block holding a character outside the alphabet
 * ('=' included), which is left to the table with all that follows: that
 * path alone says where a bad character is and reads the padding. Returns
 * the count of characters decoded, a multiple of 16. */
__attribute__((target("ssse3"))) static size_t decode_blocks_ssse3(const unsigned char *s, size_t n,
                                                                    unsigned char *out)
{
    /* A character is outside the alphabet when the class of its high nibble
     * (a bit) is among the classes its low nibble is bad for: high nibbles
     * 0, 1 and 8-15 are bad with any low nibble (bit 0x01), 2 takes only
     * B and F ("+/", 0x02), 3 only 0-9 (0x04), 4 and 6 all but 0 (0x08),
     * 5 and 7 only 0-A (0x10). */
    const __m128i bad_for_low = _mm_setr_epi8(0x0B, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x07,
                                              0x15, 0x17, 0x17, 0x17, 0x15);
    const __m128i high_class = _mm_setr_epi8(0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x08, 0x10, 0x01, 0x01, 0x01,
                                             0x01, 0x01, 0x01, 0x01, 0x01);
    /* What to add to a character for its 6-bit value, by high nibble; '/'
     * (high nibble 2) looks one entry lower than '+'. */
    const __m128i to_value = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    /* each group's 24 bits, big-endian, packed into the first 12 bytes */
    const __m128i pack = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m128i nibble = _mm_set1_epi8(0x0F), zero = _mm_setzero_si128();
    size_t i;

    for (i = 0; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i high = _mm_and_si128(_mm_srli_epi32(x, 4), nibble);
        __m128i bad = _mm_and_si128(_mm_shuffle_epi8(bad_for_low, _mm_and_si128(x, nibble)),
                                    _mm_shuffle_epi8(high_class, high));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, zero)) != 0xFFFF)
            break;
        __m128i slash = _mm_cmpeq_epi8(x, _mm_set1_epi8('/'));
        __m128i v = _mm_add_epi8(x, _mm_shuffle_epi8(to_value, _mm_add_epi8(high, slash)));
        /* 6-bit pairs to 12 bits, then 12-bit pairs to 24 bits a group */
        v = _mm_madd_epi16(_mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140)), _mm_set1_epi32(0x00011000));
        v = _mm_shuffle_epi8(v, pack);
        uint32_t tail = (uint32_t)_mm_cvtsi128_si32(_mm_srli_si128(v, 8));
        _mm_storel_epi64((__m128i *)(void *)(out + i / 4 * 3), v);
        memcpy(out + i / 4 * 3 + 8, &tail, 4);
    }
    return i;
}
#endif

int ds_base64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o;

    if (n % 4 != 0) {
        *outlen = n - n % 4; /* the incomplete final group */
        return -1;
    }
#ifdef DS_BASE64_SSSE3
    if (n >= 16 && __builtin_cpu_supports("ssse3"))
        i = decode_blocks_ssse3(s, n, out);
#endif
    for (o = i / 4 * 3; i < n; i += 4) {
        unsigned a = dec_table[s[i]], b = dec_table[s[i + 1]], c = dec_table[s[i + 2]], d = dec_table[s[i + 3]];
        if ((a | b | c | d) & BAD) {
            size_t bad;
            int k = decode_group_slowly(s + i, i + 4 == n, out + o, &bad);
            if (k < 0) {
                *outlen = i + bad;
                return -1;
            }
            o += (size_t)k;
            continue;
        }
        unsigned long v = (unsigned long)a << 18 | (unsigned long)b << 12 | c << 6 | d;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8 & 0xFF);
        out[o + 2] = (unsigned char)(v & 0xFF);
        o += 3;
    }
    *outlen = o;
    return 0;
}
