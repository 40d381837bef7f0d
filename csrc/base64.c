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

/* The 6-bit value of c, or -1. */
static int dec_char(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
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
        int last = i + 4 == n;
        int pad = 0, q[4], j;
        for (j = 0; j < 4; j++) {
            q[j] = dec_char(s[i + j]);
            if (q[j] < 0) {
                /* '=' only in the last two positions of the last group, and
                 * "x==" / "xx=" only: no data after padding */
                if (s[i + j] == '=' && last && j >= 2 && (j == 3 || s[i + 3] == '=')) {
                    q[j] = 0;
                    pad = 4 - j;
                    break;
                }
                *outlen = i + j;
                return -1;
            }
        }
        unsigned long v = (unsigned long)q[0] << 18 | (unsigned long)q[1] << 12;
        if (pad < 2)
            v |= (unsigned long)q[2] << 6;
        if (pad < 1)
            v |= (unsigned long)q[3];
        /* non-canonical: bits that the padding drops must be zero */
        if ((pad == 2 && (v & 0xFFFF)) || (pad == 1 && (v & 0xFF))) {
            *outlen = i + 3 - (size_t)pad;
            return -1;
        }
        out[o++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(v >> 8 & 0xFF);
        if (pad < 1)
            out[o++] = (unsigned char)(v & 0xFF);
    }
    *outlen = o;
    return 0;
}
