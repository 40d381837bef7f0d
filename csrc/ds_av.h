/* ds_av.h - AttributeValues <-> Lua: core.unmarshall, marshall, decimal,
 * binary, set, and the pieces of unmarshall that the records decoder
 * (ds_decode.c) builds its values with. */
#ifndef DS_AV_H
#define DS_AV_H

#include <stdint.h>
#include <string.h>

#include "ds.h"
#include "ds_lua.h"

/* DynamoDB allows 32 levels of nesting; anything deeper is rejected. */
#define DS_MAX_DEPTH 32

/* Adds unmarshall, unmarshall_value, marshall, marshall_value, decimal,
 * binary and set to the table at the top of the stack, and decimal_mt's
 * __tostring and __eq (after ds_open_markers). [-0, +0] */
DS_HIDDEN void ds_open_av(lua_State *L);

/* Unmarshalls the AttributeValue map at stack index idx (core.unmarshall)
 * and pushes the table; path names the map in messages. Raises "unmarshall: ... at <path>"
 * on malformed input. [-0, +1] */
DS_HIDDEN void ds_unmarshall_table(lua_State *L, int idx, const ds_path *path, int numbers_string);

/* Reads opts.numbers of the options table at idx (none/nil allowed): 1 for
 * "string", 0 for "auto"; raises on anything else. */
DS_HIDDEN int ds_av_numbers_opt(lua_State *L, int idx);

/* A cache of short Lua strings by their bytes, for names that repeat from
 * record to record: a hit is three word compares and an array read instead
 * of Lua's string interning. The strings live in a Lua table (slot i at
 * [i + 1]) at stack index `table` while the cache is used; their words are
 * kept here. */
#define DS_KEYS_SLOTS_LOG2 10
#define DS_KEYS_SLOTS  (1 << DS_KEYS_SLOTS_LOG2)
#define DS_KEYS_MAXLEN 24
typedef struct ds_keys {
    int table;
    struct {
        unsigned char len; /* 0: empty */
        uint64_t w[3];     /* keys_words of the string (ds_av.c) */
    } slot[DS_KEYS_SLOTS];
} ds_keys;

/* The words that identify a string of 1..DS_KEYS_MAXLEN bytes with its
 * length: its first and last 8 bytes, and bytes 8..16 when it is longer
 * than 16 (shorter ones zero-padded, byte i at bits 8i), so together they
 * cover every byte. readable: bytes readable at s (at least n); with 8 of
 * them a short string is one load, masked. */
static inline void ds_keys_words(const char *s, size_t n, size_t readable, uint64_t w[3])
{
    w[0] = w[1] = w[2] = 0;
    if (n < 8 && readable >= 8) {
        memcpy(&w[0], s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w[0] = __builtin_bswap64(w[0]);
#endif
        w[0] &= ((uint64_t)1 << (8 * n)) - 1;
        return;
    }
    if (n < 8) {
        size_t i;
        for (i = 0; i < n; i++)
            w[0] |= (uint64_t)(unsigned char)s[i] << (8 * i);
        return;
    }
    memcpy(&w[0], s, 8);
    memcpy(&w[2], s + n - 8, 8);
    if (n > 16)
        memcpy(&w[1], s + 8, 8);
}

/* The slot of the string with words w and length n: the top bits of a
 * multiplicative hash, the only ones that every input bit reaches (bits
 * 40-49 ignored the top 14 bits of w[0], where "attr001" and "attr005"
 * differ, and most keys of a many-attribute item shared slots). */
static inline unsigned ds_keys_slot(const uint64_t w[3], size_t n)
{
    return (unsigned)(((w[0] ^ (w[2] * 0x9E3779B97F4A7C15ull) ^ n) * 0xBF58476D1CE4E5B9ull) >>
                      (64 - DS_KEYS_SLOTS_LOG2));
}

/* ds_keys_push when the string with words w is not in slot h (or is too
 * long to be cached). */
DS_HIDDEN void ds_keys_miss(lua_State *L, ds_keys *k, const char *s, size_t n, const uint64_t w[3], unsigned h);

/* Pushes the string s[0..n), from the cache when it is there; readable
 * bytes at s (at least n) may be read. Returns its slot (0 for one too
 * long or empty to cache), which callers may use as a hash of it. Inline:
 * a hit is most of a page's names, and a call's register saves cost as
 * much as the test. [-0, +1] */
static inline unsigned ds_keys_push(lua_State *L, ds_keys *k, const char *s, size_t n, size_t readable)
{
    uint64_t w[3];
    unsigned h = 0;
    if (n > 0 && n <= DS_KEYS_MAXLEN) {
        ds_keys_words(s, n, readable, w);
        h = ds_keys_slot(w, n);
        if (k->slot[h].len == n && k->slot[h].w[0] == w[0] && k->slot[h].w[1] == w[1] &&
            k->slot[h].w[2] == w[2]) {
            lua_rawgeti(L, k->table, (lua_Integer)h + 1);
            return h;
        }
    }
    ds_keys_miss(L, k, s, n, w, h);
    return h;
}

/* Pieces of unmarshall for ds_decode.c, which reads the JSON itself. mt: stack
 * index of the ds_push_markers values. They raise on malformed input. */
/* Pushes the value of the N string s[0..n). [-0, +1] */
DS_HIDDEN void ds_av_push_number(lua_State *L, const char *s, size_t n, int numbers_string, int mt);
/* Pushes the bytes of the B (base64) string s[0..n), decoded in room (for
 * DS_BASE64_DECODED_MAX(n) bytes: a buffer the caller reuses, so that no
 * Lua buffer is made and dropped per value). [-0, +1] */
DS_HIDDEN void ds_av_push_binary(lua_State *L, const char *s, size_t n, unsigned char *room);
/* The M (is_list 0) or L table at res gets its metatable from the __binary
 * table at bin = res + 1 (a table, maybe empty): then leaves res at the top. */
DS_HIDDEN void ds_av_finish(lua_State *L, int res, int bin, int is_list, int mt, ds_keys *keys);

#endif
