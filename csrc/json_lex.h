/* json_lex.h - Lua-free pieces of JSON's lexical grammar (RFC 8259), shared
 * by the JSON decoder (ds_json.c) and the one-pass records decoder
 * (ds_decode.c). */
#ifndef DS_JSON_LEX_H
#define DS_JSON_LEX_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* The index of the first byte at or after i in s[0..n) that is not JSON
 * whitespace (space, tab, LF, CR), or n. */
size_t ds_json_skip_ws(const char *s, size_t n, size_t i);

/* The first byte in [p, end) that a JSON string cannot hold as it is: '"',
 * '\\' or a control byte (below 0x20); end when there is none. Tests 8 bytes
 * a word while 8 remain (never reading past end): long strings are common.
 * In each has-zero-byte test a borrow can flag only bytes after a true hit,
 * so the first flagged byte is exact. */
const unsigned char *ds_json_plain_end(const unsigned char *p, const unsigned char *end);

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
