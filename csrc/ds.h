/* Private header of dynamodb_stream.core: Lua includes, version gate,
 * visibility, the names shared between the binding files. Never installed. */
#ifndef DS_H
#define DS_H

#include <lua.h>
#include <lauxlib.h>

/* ---- Lua versions: the only place that looks at LUA_VERSION_NUM ----------
 * The code is written against the Lua 5.4 API. Lua 5.3 lacks the user values
 * of 5.4; Lua 5.1 and LuaJIT 2.1 get the 5.3 API from Debian's lua-compat53-dev
 * (compat-5.3.h in /usr/include/lua5.1, header-only: its functions are static
 * in each file) plus the lines below.
 *
 * Numbers. 5.3+: lua_Integer is 64 bits, so every int64 is a Lua integer.
 * 5.1/LuaJIT: every number is a double, exact for integers up to 2^53 in
 * magnitude. There lua_isinteger means "a number whose value is an integer a
 * double holds exactly (|x| <= 2^53)": such numbers marshall and encode as
 * integers ("42", never "42.0"); DS_INT_EXACT tells which int64 values may
 * become numbers, and DS_FLOAT_BOXED which doubles stand for integers
 * beyond 2^53, which N values keep in the lossless decimal box instead. */
#if LUA_VERSION_NUM < 502
#  include <math.h>
#  include <compat-5.3.h>
#  define DS_INT_EXACT(i)     ((i) >= -9007199254740992LL && (i) <= 9007199254740992LL)
#  define DS_FLOAT_BOXED(d) (fabs(d) > 9007199254740992.0)
#  undef lua_isinteger
#  define lua_isinteger(L, i) ds_compat_isinteger((L), (i))
static inline int ds_compat_isinteger(lua_State *L, int i)
{
    lua_Number x;
    if (lua_type(L, i) != LUA_TNUMBER)
        return 0;
    x = lua_tonumber(L, i);
    return x == floor(x) && fabs(x) <= 9007199254740992.0;
}
/* As in 5.3+, an integer argument must have an integral value. */
static inline lua_Integer ds_compat_checkinteger(lua_State *L, int arg)
{
    lua_Number x = luaL_checknumber(L, arg);
    if (x != floor(x) || fabs(x) > 9007199254740992.0)
        luaL_argerror(L, arg, "number has no integer representation");
    return (lua_Integer)x;
}
#  undef luaL_checkinteger
#  undef luaL_optinteger
#  define luaL_checkinteger(L, arg)   ds_compat_checkinteger((L), (arg))
#  define luaL_optinteger(L, arg, d)  (lua_isnoneornil((L), (arg)) ? (lua_Integer)(d) : ds_compat_checkinteger((L), (arg)))
#  define lua_newuserdatauv(L, sz, nuv) lua_newuserdata((L), (sz))
#  define lua_setiuservalue(L, idx, n)  lua_setuservalue((L), (idx))
#  define lua_getiuservalue(L, idx, n)  lua_getuservalue((L), (idx))
#elif LUA_VERSION_NUM < 503
#  error "dynamodb_stream.core builds for Lua 5.4, 5.3, 5.1 and LuaJIT 2.1, not 5.2"
#else
#  define DS_INT_EXACT(i)     1
#  define DS_FLOAT_BOXED(d) 0
#  if LUA_VERSION_NUM < 504
#    define lua_newuserdatauv(L, sz, nuv) lua_newuserdata((L), (sz))
#    define lua_setiuservalue(L, idx, n)  lua_setuservalue((L), (idx))
#    define lua_getiuservalue(L, idx, n)  lua_getuservalue((L), (idx))
#  endif
#endif

#define DS_EXPORT __attribute__((visibility("default")))
#define DS_HIDDEN __attribute__((visibility("hidden")))

#define DS_VERSION "0.1.0"

/* DynamoDB allows 32 levels of nesting; anything deeper is rejected. */
#define DS_MAX_DEPTH 32

/* Registry names of the metatables that mark a table's DynamoDB shape.
 * Each carries a field __ddb naming the type ("L", "SS", "NS", "BS", "N", "B"),
 * which is what marshall and json_encode read. */
#define DS_LIST_MT       "dynamodb_stream.list"
#define DS_STRING_SET_MT "dynamodb_stream.string_set"
#define DS_NUMBER_SET_MT "dynamodb_stream.number_set"
#define DS_BINARY_SET_MT "dynamodb_stream.binary_set"
#define DS_DECIMAL_MT    "dynamodb_stream.decimal"
#define DS_BINARY_MT     "dynamodb_stream.binary"

/* The null sentinel is a NULL light userdata (as cjson.null). */
#define ds_pushnull(L) lua_pushlightuserdata((L), NULL)
#define ds_isnull(L, i) (lua_type((L), (i)) == LUA_TLIGHTUSERDATA && lua_touserdata((L), (i)) == NULL)

/* Each ds_open_* adds its functions to the table at the top of the stack. [-0, +0] */
DS_HIDDEN void ds_open_markers(lua_State *L); /* ds_core.c: the metatables above */
DS_HIDDEN void ds_open_sigv4(lua_State *L);   /* ds_sigv4.c */
DS_HIDDEN void ds_open_http(lua_State *L);    /* ds_http.c */
DS_HIDDEN void ds_open_json(lua_State *L);    /* ds_json.c */
DS_HIDDEN void ds_open_av(lua_State *L);      /* ds_av.c: marshall / unmarshall */
DS_HIDDEN void ds_open_decode(lua_State *L);  /* ds_decode.c: decode_records */

/* The only exported symbol. */
DS_EXPORT int luaopen_dynamodb_stream_core(lua_State *L);

/* Runtime failure: pushes nil, "code: msg", code and returns 3. Never raises
 * (but may, like any push, on memory exhaustion). */
DS_HIDDEN int ds_fail(lua_State *L, const char *code, const char *msg);

/* 1 when the keys of the table at t (an absolute index) are exactly 1..n for
 * some n >= 1: a non-empty sequence, written as an array / an L. */
DS_HIDDEN int ds_is_sequence(lua_State *L, int t);

/* Pushes the __binary table of t's metatable (key -> bytes that came from a B
 * value), or nil; returns its stack index. [-0, +1] */
DS_HIDDEN int ds_binary_table(lua_State *L, int t);

/* 1 when the string at val is recorded in the __binary table at bin under the
 * key at the top of the stack, which is popped. [-1, +0] */
DS_HIDDEN int ds_is_binary(lua_State *L, int bin, int val);

/* The index of the first byte at or after i in s[0..n) that is not JSON
 * whitespace (space, tab, LF, CR), or n. */
DS_HIDDEN size_t ds_json_skip_ws(const char *s, size_t n, size_t i);

/* The __ddb tag of the metatable of the table at idx, or NULL when it has none. */
DS_HIDDEN const char *ds_marker(lua_State *L, int idx);

/* Where a value sits inside a nested value, for error messages: a chain of
 * frames on the C stack (free on the success path), rendered only on error.
 * key points into a Lua string that stays on the stack while the frame lives. */
typedef struct ds_path {
    const struct ds_path *up;
    const char *key;     /* string key, or NULL for an index */
    size_t keylen;
    lua_Integer index;   /* 1-based position when key is NULL */
    const void *table;   /* the table holding the key (cycle checks), or NULL */
} ds_path;

/* ---- shared by ds_decode.c ---- */

/* Unmarshalls the AttributeValue map at stack index idx (core.unmarshall)
 * and pushes the table; path names the map in messages. Raises "unmarshall: ... at <path>"
 * on malformed input. (ds_av.c) [-0, +1] */
DS_HIDDEN void ds_unmarshall_table(lua_State *L, int idx, const ds_path *path, int numbers_string);

/* A cache of short Lua strings by their bytes, for names that repeat from
 * record to record: a hit is a memcmp and an array read instead of Lua's
 * string interning. The strings live in a Lua table (slot i at [i + 1]) at
 * stack index `table` while the cache is used; the bytes are kept here. */
#define DS_KEYS_SLOTS  1024
#define DS_KEYS_MAXLEN 24
typedef struct ds_keys {
    int table;
    struct {
        unsigned char len; /* 0: empty */
        char bytes[DS_KEYS_MAXLEN];
    } slot[DS_KEYS_SLOTS];
} ds_keys;

/* Pushes the string s[0..n), from the cache when it is there. [-0, +1] */
DS_HIDDEN void ds_keys_push(lua_State *L, ds_keys *k, const char *s, size_t n);

/* Pushes list_mt, string_set_mt, number_set_mt, binary_set_mt, decimal_mt
 * (five values, in this order: offsets DS_MARK_*) for the ds_av_* pieces
 * below. [-0, +5] */
enum { DS_MARK_LIST, DS_MARK_SS, DS_MARK_NS, DS_MARK_BS, DS_MARK_DECIMAL };
DS_HIDDEN void ds_push_markers(lua_State *L);

/* Pieces of unmarshall for ds_decode.c, which reads the JSON itself. mt: stack
 * index of the ds_push_markers values. They raise on malformed input. */
/* Pushes the value of the N string s[0..n). [-0, +1] */
DS_HIDDEN void ds_av_push_number(lua_State *L, const char *s, size_t n, int numbers_string, int mt);
/* Pushes the bytes of the B (base64) string s[0..n). [-0, +1] */
DS_HIDDEN void ds_av_push_binary(lua_State *L, const char *s, size_t n);
/* The M (is_list 0) or L table at res gets its metatable from the __binary
 * table at bin = res + 1 (a table, maybe empty): then leaves res at the top. */
DS_HIDDEN void ds_av_finish(lua_State *L, int res, int bin, int is_list, int mt, ds_keys *keys);

/* decode_records' one-pass path over text[0..n): pushes records and
 * next_shard_iterator and returns 1, or pushes nothing and returns 0 when the
 * text needs the exact path (core.decode_records on it as a string). Raises
 * only on memory errors. (ds_decode.c) */
DS_HIDDEN int ds_decode_fast(lua_State *L, const char *text, size_t n, int numbers_string);

/* Reads opts.numbers of the options table at idx (none/nil allowed): 1 for
 * "string", 0 for "auto"; raises on anything else. (ds_av.c) */
DS_HIDDEN int ds_av_numbers_opt(lua_State *L, int idx);

/* 1 when s[0..n) is exactly a JSON number (cJSON also takes 01, 1., -.5). (ds_json.c) */
DS_HIDDEN int ds_json_number_ok(const char *s, size_t n);

/* The value of the 4 hex digits at s into *out: 1, or 0 when one is not a
 * hex digit. (ds_json.c) */
DS_HIDDEN int ds_json_hex4(const char *s, unsigned *out);

/* Writes the UTF-8 bytes of code point cp (at most 0x10FFFF) to out and
 * returns how many (1 to 4). (ds_json.c) */
DS_HIDDEN int ds_utf8_encode(unsigned long cp, char out[4]);

/* core.json_decode as a C function. (ds_json.c) */
DS_HIDDEN int ds_json_decode(lua_State *L);

/* Pushes the path as text, e.g. 'a.b[3]["odd key"]', or "top level". [-0, +1]
 * (ds_av.c) */
DS_HIDDEN void ds_path_push(lua_State *L, const ds_path *p);

#endif
