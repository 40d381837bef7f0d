/* ds_lua.h - the binding helpers every part of the module calls: the
 * nil, "Code: msg", "Code" return, the marker metatables and their tags,
 * table shapes, the null sentinel, and the text of a place inside a value
 * for error messages. ds_lua.c calls no other file of the module: the
 * parts depend on it, never the reverse. */
#ifndef DS_LUA_H
#define DS_LUA_H

#include "ds.h"

/* Runtime failure: pushes nil, "code: msg", code and returns 3. Never raises
 * (but may, like any push, on memory exhaustion). */
DS_HIDDEN int ds_fail(lua_State *L, const char *code, const char *msg);

/* The null sentinel is a NULL light userdata (as cjson.null). */
#define ds_pushnull(L) lua_pushlightuserdata((L), NULL)
#define ds_isnull(L, i) (lua_type((L), (i)) == LUA_TLIGHTUSERDATA && lua_touserdata((L), (i)) == NULL)

/* ---- markers ---------------------------------------------------------------
 * Registry names of the metatables that mark a table's DynamoDB shape.
 * Each carries a field __ddb naming the type ("L", "SS", "NS", "BS", "N", "B"),
 * which is what marshall and json_encode read. */
#define DS_LIST_MT       "dynamodb_stream.list"
#define DS_STRING_SET_MT "dynamodb_stream.string_set"
#define DS_NUMBER_SET_MT "dynamodb_stream.number_set"
#define DS_BINARY_SET_MT "dynamodb_stream.binary_set"
#define DS_DECIMAL_MT    "dynamodb_stream.decimal"
#define DS_BINARY_MT     "dynamodb_stream.binary"

/* Creates the metatables above and adds them to the table at the top of the
 * stack (list_mt, string_set_mt, ...). [-0, +0] */
DS_HIDDEN void ds_open_markers(lua_State *L);

/* Pushes list_mt, string_set_mt, number_set_mt, binary_set_mt, decimal_mt
 * (five values, in this order: offsets DS_MARK_*), so that code setting
 * many metatables reads them from the stack. [-0, +5] */
enum { DS_MARK_LIST, DS_MARK_SS, DS_MARK_NS, DS_MARK_BS, DS_MARK_DECIMAL };
DS_HIDDEN void ds_push_markers(lua_State *L);

/* The registry names of those five, by DS_MARK_* offset. */
DS_HIDDEN extern const char *const ds_marker_names[5];

/* The __ddb tag of the metatable of the table at idx, or NULL when it has none. */
DS_HIDDEN const char *ds_marker(lua_State *L, int idx);

/* ---- userdata types ---- */

/* Registers the metatable `name` of a userdata class: the metamethods in meta
 * (an "__index" entry there is a placeholder) and, as __index, a new table of
 * methods. [-0, +0] */
DS_HIDDEN void ds_new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                            const luaL_Reg *methods);

/* Registers the metatable `name` of a userdata whose one metamethod is __gc
 * (memory anchored for a call that may raise). [-0, +0] */
DS_HIDDEN void ds_new_gc_type(lua_State *L, const char *name, lua_CFunction gc);

/* ---- table shapes ---- */

/* 1 when the keys of the table at t (an absolute index) are exactly 1..n for
 * some n >= 1: a non-empty sequence, written as an array / an L. */
DS_HIDDEN int ds_is_sequence(lua_State *L, int t);

/* Pushes the __binary table of t's metatable (key -> bytes that came from a B
 * value), or nil; returns its stack index. [-0, +1] */
DS_HIDDEN int ds_binary_table(lua_State *L, int t);

/* 1 when the string at val is recorded in the __binary table at bin under the
 * key at the top of the stack, which is popped. [-1, +0] */
DS_HIDDEN int ds_is_binary(lua_State *L, int bin, int val);

/* ---- messages ---- */

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

/* Pushes the path as text, e.g. 'a.b[3]["odd key"]', or "top level". [-0, +1] */
DS_HIDDEN void ds_path_push(lua_State *L, const ds_path *p);

/* Pushes a printable, bounded excerpt of s[0..n) (a bad value or key quoted
 * in a message) and returns it. [-0, +1] */
DS_HIDDEN const char *ds_snippet_push(lua_State *L, const char *s, size_t n);

#endif
