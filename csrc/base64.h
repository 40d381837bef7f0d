/* base64.h - Lua-free strict standard base64 (RFC 4648 section 4, with padding). */
#ifndef DS_BASE64_H
#define DS_BASE64_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Encoded length of n bytes: 4 * ceil(n / 3). */
#define DS_BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
/* Upper bound of the decoded length of n base64 characters. */
#define DS_BASE64_DECODED_MAX(n) (((n) / 4) * 3)

/* Writes DS_BASE64_ENCODED_LEN(n) characters to out (no NUL). */
void ds_base64_encode(const unsigned char *in, size_t n, char *out);

/* Decodes n characters into out (room for DS_BASE64_DECODED_MAX(n) bytes) and
 * stores the decoded length in *outlen. Strict: the length must be a multiple
 * of 4, only A-Z a-z 0-9 + / are allowed, '=' only as one or two final padding
 * characters, and the unused bits before the padding must be zero (so every
 * accepted input is the canonical encoding of its bytes). "" decodes to "".
 * Returns 0, or -1 with *outlen set to the offset of the first bad character. */
int ds_base64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen);

#pragma GCC visibility pop

#endif
