/* base64.c - Lua-free strict standard base64 (see base64.h). */
#include "base64.h"

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

int ds_base64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i, o = 0;

    if (n % 4 != 0) {
        *outlen = n - n % 4; /* the incomplete final group */
        return -1;
    }
    for (i = 0; i < n; i += 4) {
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
