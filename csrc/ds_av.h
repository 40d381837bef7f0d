/* ds_av.h - AttributeValues <-> Lua: core.unmarshall, marshall, decimal,
 * binary, set, and the pieces of unmarshall that the records decoder
 * (ds_decode.c) builds its values with. */
#ifndef DS_AV_H
#define DS_AV_H

#include <stdint.h>

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

/* Pushes the string s[0..n), from the cache when it is there; readable
 * bytes at s (at least n) may be read. [-0, +1] */
DS_HIDDEN void ds_keys_push(lua_State *L, ds_keys *k, const char *s, size_t n, size_t readable);

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
