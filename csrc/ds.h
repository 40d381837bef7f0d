/* Private header of dynamodb_stream.core: Lua includes, version gate,
 * visibility, the names shared between the binding files. Never installed. */
#ifndef DS_H
#define DS_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 503
#  error "dynamodb_stream.core needs the Lua 5.3+ API (LuaJIT comes later through lua-compat53)"
#elif LUA_VERSION_NUM < 504
#  define lua_newuserdatauv(L, sz, nuv) lua_newuserdata((L), (sz))
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

/* The only exported symbol. */
DS_EXPORT int luaopen_dynamodb_stream_core(lua_State *L);

/* Runtime failure: pushes nil, "code: msg", code and returns 3. Never raises
 * (but may, like any push, on memory exhaustion). */
DS_HIDDEN int ds_fail(lua_State *L, const char *code, const char *msg);

/* Pushes the __binary table of t's metatable (key -> bytes that came from a B
 * value), or nil; returns its stack index. [-0, +1] */
DS_HIDDEN int ds_binary_table(lua_State *L, int t);

/* 1 when the string at val is recorded in the __binary table at bin under the
 * key at the top of the stack, which is popped. [-1, +0] */
DS_HIDDEN int ds_is_binary(lua_State *L, int bin, int val);

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

/* Pushes the path as text, e.g. 'a.b[3]["odd key"]', or "top level". [-0, +1]
 * (ds_av.c) */
DS_HIDDEN void ds_path_push(lua_State *L, const ds_path *p);

#endif
