/* lua_build_floor.c - the Lua side's floor for the decode benchmark: the cost
 * of building a decoded page's Lua values through the C API with no parsing.
 *
 *   local floor = require "lua_build_floor"
 *   local tape = floor.record(records)   -- once: the values as a list of steps
 *   local copy = floor.replay(tape)      -- timed: builds them again
 *
 * The tape holds every table's sizes, string bytes, numbers and booleans in
 * the order they are built; a replay creates each table at its final size,
 * pushes each string value with lua_pushlstring (interned like any new
 * string) and stores fields with lua_rawset / lua_rawseti: what any decoder
 * producing this shape must do at least, here without reading any JSON. Map
 * keys are reused, not pushed again (as ds.decode_records' key cache reuses
 * them); so are metatables with a __name (the module's shared markers) and
 * userdata (ds.null). Other metatables (per-table __binary ones) are built
 * again. Bench tool only: it trusts its input.
 *
 * Built for Lua 5.4 and for LuaJIT (bench/Makefile): ds.h, the module's
 * version gate, gives LuaJIT the 5.3 API it is written against and an
 * lua_isinteger that holds for integral doubles, so that array parts are
 * found there too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ds.h"

#define TAPE_MT "lua_build_floor.tape"
#define TAPE_MAX_DEPTH 200

enum step { NEW_TABLE, STRING, INTEGER, FLOAT, TRUE, FALSE, SHARED, SET_FIELD, SET_INDEX, SET_METATABLE };

typedef struct {
    unsigned char *bytes;
    size_t len, cap;
} tape;

static int tape_gc(lua_State *L)
{
    tape *t = luaL_checkudata(L, 1, TAPE_MT);
    free(t->bytes);
    t->bytes = NULL;
    return 0;
}

static void put(lua_State *L, tape *t, const void *p, size_t n)
{
    if (t->cap - t->len < n) {
        size_t cap = t->cap ? t->cap : 4096;
        unsigned char *grown;
        while (cap - t->len < n)
            cap *= 2;
        if ((grown = realloc(t->bytes, cap)) == NULL)
            luaL_error(L, "out of memory");
        t->bytes = grown;
        t->cap = cap;
    }
    memcpy(t->bytes + t->len, p, n);
    t->len += n;
}

static void put_step(lua_State *L, tape *t, enum step s)
{
    unsigned char b = (unsigned char)s;
    put(L, t, &b, 1);
}

static void put_u32(lua_State *L, tape *t, uint32_t v)
{
    put(L, t, &v, sizeof v);
}

/* A value kept by reference: its index in the tape's uservalue table. */
static void put_shared(lua_State *L, tape *t, int idx, int shared)
{
    lua_Integer i;
    lua_pushvalue(L, idx);
    if (lua_rawget(L, shared + 1) == LUA_TNUMBER) {
        i = lua_tointeger(L, -1);
    } else {
        i = (lua_Integer)lua_rawlen(L, shared) + 1;
        lua_pushvalue(L, idx);
        lua_rawseti(L, shared, i);
        lua_pushvalue(L, idx);
        lua_pushinteger(L, i);
        lua_rawset(L, shared + 1);
    }
    lua_pop(L, 1);
    put_step(L, t, SHARED);
    put_u32(L, t, (uint32_t)i);
}

static void record_value(lua_State *L, tape *t, int idx, int shared, int depth);

static void record_table(lua_State *L, tape *t, int idx, int shared, int depth)
{
    uint32_t narr = 0, nhash = 0, i;
    if (depth > TAPE_MAX_DEPTH)
        luaL_error(L, "tables nested too deep");
    luaL_checkstack(L, 8, "record");
    while (lua_rawgeti(L, idx, (lua_Integer)narr + 1) != LUA_TNIL) {
        lua_pop(L, 1);
        narr++;
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > narr)
            nhash++;
    }
    put_step(L, t, NEW_TABLE);
    put_u32(L, t, narr);
    put_u32(L, t, nhash);
    for (i = 1; i <= narr; i++) {
        lua_rawgeti(L, idx, i);
        record_value(L, t, lua_gettop(L), shared, depth + 1);
        lua_pop(L, 1);
        put_step(L, t, SET_INDEX);
        put_u32(L, t, i);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > narr) {
            if (lua_type(L, -2) == LUA_TSTRING)
                put_shared(L, t, lua_gettop(L) - 1, shared);
            else
                record_value(L, t, lua_gettop(L) - 1, shared, depth + 1);
            record_value(L, t, lua_gettop(L), shared, depth + 1);
            put_step(L, t, SET_FIELD);
        }
        lua_pop(L, 1);
    }
    if (lua_getmetatable(L, idx)) {
        int mt = lua_gettop(L);
        if (lua_getfield(L, mt, "__name") != LUA_TNIL)
            put_shared(L, t, mt, shared);
        else
            record_table(L, t, mt, shared, depth + 1);
        lua_pop(L, 2);
        put_step(L, t, SET_METATABLE);
    }
}

static void record_value(lua_State *L, tape *t, int idx, int shared, int depth)
{
    size_t n;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        put_step(L, t, STRING);
        put_u32(L, t, (uint32_t)n);
        put(L, t, s, n);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            lua_Integer v = lua_tointeger(L, idx);
            put_step(L, t, INTEGER);
            put(L, t, &v, sizeof v);
        } else {
            lua_Number v = lua_tonumber(L, idx);
            put_step(L, t, FLOAT);
            put(L, t, &v, sizeof v);
        }
        break;
    case LUA_TBOOLEAN:
        put_step(L, t, lua_toboolean(L, idx) ? TRUE : FALSE);
        break;
    case LUA_TTABLE:
        record_table(L, t, idx, shared, depth);
        break;
    case LUA_TUSERDATA:
    case LUA_TLIGHTUSERDATA:
        put_shared(L, t, idx, shared);
        break;
    default:
        luaL_error(L, "cannot record a %s", luaL_typename(L, idx));
    }
}

/* record(value) -> tape */
static int l_record(lua_State *L)
{
    tape *t;
    int shared;
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    t = lua_newuserdatauv(L, sizeof *t, 1); /* 2 */
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, TAPE_MT);
    lua_newtable(L); /* 3: index -> shared value */
    lua_newtable(L); /* 4: shared value -> index */
    shared = 3;
    record_value(L, t, 1, shared, 0);
    lua_pushvalue(L, shared);
    lua_setiuservalue(L, 2, 1);
    lua_settop(L, 2);
    return 1;
}

static uint32_t get_u32(const unsigned char **p)
{
    uint32_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/* replay(tape) -> the values built again */
static int l_replay(lua_State *L)
{
    const tape *t = luaL_checkudata(L, 1, TAPE_MT);
    const unsigned char *p = t->bytes, *end = t->bytes + t->len;
    lua_getiuservalue(L, 1, 1); /* 2: shared values */
    while (p < end) {
        uint32_t a, b;
        lua_Integer i;
        lua_Number x;
        if (!lua_checkstack(L, 4))
            return luaL_error(L, "stack overflow");
        switch ((enum step)*p++) {
        case NEW_TABLE:
            a = get_u32(&p);
            b = get_u32(&p);
            lua_createtable(L, (int)a, (int)b);
            break;
        case STRING:
            a = get_u32(&p);
            lua_pushlstring(L, (const char *)p, a);
            p += a;
            break;
        case INTEGER:
            memcpy(&i, p, sizeof i);
            p += sizeof i;
            lua_pushinteger(L, i);
            break;
        case FLOAT:
            memcpy(&x, p, sizeof x);
            p += sizeof x;
            lua_pushnumber(L, x);
            break;
        case TRUE:
        case FALSE:
            lua_pushboolean(L, p[-1] == TRUE);
            break;
        case SHARED:
            lua_rawgeti(L, 2, get_u32(&p));
            break;
        case SET_FIELD:
            lua_rawset(L, -3);
            break;
        case SET_INDEX:
            lua_rawseti(L, -2, get_u32(&p));
            break;
        case SET_METATABLE:
            lua_setmetatable(L, -2);
            break;
        }
    }
    return 1;
}

int luaopen_lua_build_floor(lua_State *L)
{
    static const luaL_Reg fns[] = {{"record", l_record}, {"replay", l_replay}, {NULL, NULL}};
    luaL_newmetatable(L, TAPE_MT);
    lua_pushcfunction(L, tape_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    return 1;
}
