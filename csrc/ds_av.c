/* ds_av.c - AttributeValue <-> Lua: unmarshall, marshall, and the decimal,
 * binary and set boxes (contract and type table in HACKING.md).
 *
 * Binary values. A B value unmarshalls to a plain Lua string of its bytes. So
 * that marshall can write it back as B (not S), the table holding it gets its
 * own metatable { __binary = { [key] = bytes } } (lists: also __ddb = "L"),
 * created only for tables that hold B values. marshall writes B for a string
 * whose key is in __binary with an equal string; a changed value is S again.
 *
 * Errors raise "<fn>: <what> at <path>". The path is a chain of ds_path frames
 * on the C stack, rendered only when raising. Scratch memory is a luaL_Buffer,
 * so a raise leaks nothing. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "ds_av.h"
#include "ds_lua.h"
#include "number.h"

typedef struct {
    const char *fn;      /* "unmarshall", "marshall", ... for messages */
    int numbers_string;  /* opts.numbers == "string" */
    int mt;              /* stack index of the ds_push_markers values, or 0 (look them up) */
    ds_keys *keys;       /* cache for the names unm_finish pushes, or NULL */
} av_ctx;

/* Gives the table at the top the marker metatable `which`. */
static void av_setmt(lua_State *L, const av_ctx *c, int which)
{
    if (c->mt) {
        lua_pushvalue(L, c->mt + which);
        lua_setmetatable(L, -2);
    } else {
        luaL_setmetatable(L, ds_marker_names[which]);
    }
}

void ds_keys_miss(lua_State *L, ds_keys *k, const char *s, size_t n, const uint64_t w[3], unsigned h)
{
    lua_pushlstring(L, s, n);
    if (n == 0 || n > DS_KEYS_MAXLEN)
        return;
    lua_pushvalue(L, -1);
    k->slot[h].len = 0; /* the slot is consistent again only after the rawseti */
    lua_rawseti(L, k->table, (lua_Integer)h + 1);
    memcpy(k->slot[h].w, w, sizeof k->slot[h].w);
    k->slot[h].len = (unsigned char)n;
}

/* Pushes a map key or field name. */
static void av_push_key(lua_State *L, const av_ctx *c, const char *s, size_t n)
{
    if (c->keys)
        ds_keys_push(L, c->keys, s, n, n);
    else
        lua_pushlstring(L, s, n);
}

/* Raises "<fn>: <message> at <path>". Never returns. */
static int av_error(lua_State *L, const av_ctx *c, const ds_path *p, const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    lua_checkstack(L, 8);
    va_start(ap, fmt);
    msg = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    ds_path_push(L, p);
    lua_pushfstring(L, "%s: %s at %s", c->fn, msg, lua_tostring(L, -1));
    return lua_error(L);
}

static void av_checkstack(lua_State *L, const av_ctx *c, const ds_path *p)
{
    if (!lua_checkstack(L, 16))
        av_error(L, c, p, "Lua stack exhausted");
}

/* ---- shared helpers ---------------------------------------------------- */

/* Parses and checks a DynamoDB number string; raises when invalid. */
static void av_check_number(lua_State *L, const char *s, size_t n, const char *where, const av_ctx *c,
                            const ds_path *p)
{
    ds_decimal d;
    int st = ds_decimal_parse(s, n, &d);
    if (st == DS_NUM_OK)
        st = ds_decimal_check(&d);
    if (st != DS_NUM_OK)
        av_error(L, c, p, "invalid number '%s' in %s (%s)", ds_snippet_push(L, s, n), where, ds_number_strerror(st));
}

/* The decoded digits of a decimal box at idx (a table marked "N"), or 0. */
static int decimal_get(lua_State *L, int idx, ds_decimal *d)
{
    const char *m = ds_marker(L, idx);
    int ok = 0;
    if (m == NULL || strcmp(m, "N") != 0 || lua_type(L, idx) != LUA_TTABLE)
        return 0;
    if (lua_rawgeti(L, idx, 1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        ok = ds_decimal_parse(s, n, d) == DS_NUM_OK && ds_decimal_check(d) == DS_NUM_OK;
    }
    lua_pop(L, 1);
    return ok;
}

/* Value at top -> { [tag] = value }. [-1, +1] */
static void av_wrap(lua_State *L, const char *tag)
{
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, tag);
}

static void push_base64(lua_State *L, const char *s, size_t n)
{
    luaL_Buffer b;
    size_t len = DS_BASE64_ENCODED_LEN(n);
    char *out = luaL_buffinitsize(L, &b, len);
    ds_base64_encode((const unsigned char *)s, n, out);
    luaL_pushresultsize(&b, len);
}

/* 0 when the set member at idx is new to seen (a table at that index), which
 * then maps it to i; else the index of the earlier member equal to it, as
 * DynamoDB compares them (which refuses duplicates): by bytes, or for an NS
 * (number: a Lua number, a number text or a decimal box, already checked) by
 * value, so "1" and "1.0" are one member. */
static lua_Integer set_repeat(lua_State *L, int seen, int idx, int number, lua_Integer i)
{
    lua_Integer first;
    int top = lua_gettop(L);
    if (number) {
        char text[DS_DOUBLE_BUFSIZE], canon[DS_DECIMAL_BUFSIZE];
        const char *s = text;
        size_t n;
        ds_decimal d;
        if (lua_isinteger(L, idx))
            n = (size_t)snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, idx));
        else if (lua_type(L, idx) == LUA_TNUMBER)
            n = ds_format_double((double)lua_tonumber(L, idx), text);
        else if (lua_type(L, idx) == LUA_TTABLE && lua_rawgeti(L, idx, 1) == LUA_TSTRING)
            s = lua_tolstring(L, -1, &n); /* a box's text, on the stack until parsed */
        else
            s = lua_tolstring(L, idx, &n);
        if (s == NULL || ds_decimal_parse(s, n, &d) != DS_NUM_OK)
            luaL_error(L, "set: not a number"); /* cannot happen: callers check members first */
        lua_settop(L, top);
        lua_pushlstring(L, canon, ds_decimal_format(&d, canon));
    } else {
        lua_pushvalue(L, idx);
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, seen) != LUA_TNIL) {
        first = lua_tointeger(L, -1);
        lua_pop(L, 2);
        return first;
    }
    lua_pop(L, 1);
    lua_pushinteger(L, i);
    lua_rawset(L, seen);
    return 0;
}

/* ---- unmarshall ------------------------------------------------------- */

static void unm_value(lua_State *L, int av, const ds_path *path, int depth, const av_ctx *c, int *binary);

/* Raises the error of the base64 text of n characters, bad at character at. */
static void bad_base64(lua_State *L, size_t at, size_t n, const char *where, const av_ctx *c, const ds_path *p)
{
    av_error(L, c, p, "bad base64 in %s (character %d of %d)", where, (int)(at + 1), (int)n);
}

/* Pushes the bytes of the base64 text s[0..n). */
static void unm_binary(lua_State *L, const char *s, size_t n, const char *where, const av_ctx *c, const ds_path *p)
{
    luaL_Buffer b;
    size_t outlen;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, DS_BASE64_DECODED_MAX(n));
    if (ds_base64_decode(s, n, out, &outlen) != 0) {
        luaL_pushresultsize(&b, 0);
        lua_pop(L, 1);
        bad_base64(L, outlen, n, where, c, p);
    }
    luaL_pushresultsize(&b, outlen);
}

/* Pushes the Lua value of the N string s[0..n). */
static void unm_number(lua_State *L, const char *s, size_t n, const char *where, const av_ctx *c, const ds_path *p)
{
    ds_number num;
    int st;

    if (c->numbers_string) {
        av_check_number(L, s, n, where, c, p);
        lua_pushlstring(L, s, n);
        return;
    }
    st = ds_number_classify_fast(s, n, &num);
    if (st != DS_NUM_OK)
        av_error(L, c, p, "invalid number '%s' in %s (%s)", ds_snippet_push(L, s, n), where, ds_number_strerror(st));
    /* Under 5.1/LuaJIT integers beyond 2^53 take the box (see ds.h). */
    if (num.kind == DS_NUM_INTEGER && DS_INT_EXACT(num.i)) {
        lua_pushinteger(L, (lua_Integer)num.i);
    } else if (num.kind == DS_NUM_DOUBLE && !DS_FLOAT_BOXED(num.d)) {
        lua_pushnumber(L, (lua_Number)num.d);
    } else {
        lua_createtable(L, 1, 0);
        lua_pushlstring(L, s, n);
        lua_rawseti(L, -2, 1);
        av_setmt(L, c, DS_MARK_DECIMAL);
    }
}

/* The table at res gets its metatable: a per-table one when bin holds a
 * non-empty __binary table, else list_mt for lists. Leaves res at the top. */
static void unm_finish(lua_State *L, int res, int bin, int is_list, const av_ctx *c)
{
    int has_binary = 0;
    if (lua_istable(L, bin)) {
        lua_pushnil(L);
        has_binary = lua_next(L, bin); /* empty when a repeated key replaced a B */
        lua_settop(L, bin);
    }
    if (has_binary) {
        lua_createtable(L, 0, 2);
        if (is_list) {
            av_push_key(L, c, "__ddb", 5);
            av_push_key(L, c, "L", 1);
            lua_rawset(L, -3);
        }
        av_push_key(L, c, "__binary", 8);
        lua_pushvalue(L, bin);
        lua_rawset(L, -3);
        lua_setmetatable(L, res);
    }
    lua_settop(L, res);
    if (!has_binary && is_list)
        av_setmt(L, c, DS_MARK_LIST);
}

/* The __binary table at bin is created on first use (it starts as nil). */
static void unm_binary_slot(lua_State *L, int bin)
{
    if (lua_isnil(L, bin)) {
        lua_newtable(L);
        lua_replace(L, bin);
    }
}

/* Pushes the table of the map (M or a whole item) at m; level counts M/L. */
static void unm_map(lua_State *L, int m, const ds_path *path, int level, const av_ctx *c)
{
    int res, bin;
    av_checkstack(L, c, path);
    lua_newtable(L);
    res = lua_gettop(L);
    lua_pushnil(L);
    bin = res + 1;
    lua_pushnil(L);
    while (lua_next(L, m)) { /* k at bin + 1, v at bin + 2 */
        ds_path fr;
        int isbin = 0;
        if (lua_type(L, -2) != LUA_TSTRING)
            av_error(L, c, path, "map key must be a string, got %s", luaL_typename(L, -2));
        fr.key = lua_tolstring(L, -2, &fr.keylen);
        fr.up = path;
        fr.index = 0;
        fr.table = NULL;
        lua_pushvalue(L, bin + 1);
        unm_value(L, bin + 2, &fr, level, c, &isbin); /* k v k val */
        if (isbin) {
            unm_binary_slot(L, bin);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, bin);
        }
        lua_rawset(L, res);
        lua_settop(L, bin + 1); /* k */
    }
    unm_finish(L, res, bin, 0, c);
}

static void unm_list(lua_State *L, int l, const ds_path *path, int level, const av_ctx *c)
{
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, l);
    int res, bin;
    av_checkstack(L, c, path);
    lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
    res = lua_gettop(L);
    lua_pushnil(L);
    bin = res + 1;
    for (i = 1; i <= n; i++) {
        ds_path fr = {path, NULL, 0, i, NULL};
        int isbin = 0;
        lua_rawgeti(L, l, i);
        unm_value(L, bin + 1, &fr, level, c, &isbin); /* item val */
        if (isbin) {
            unm_binary_slot(L, bin);
            lua_pushvalue(L, -1);
            lua_rawseti(L, bin, i);
        }
        lua_rawseti(L, res, i);
        lua_settop(L, bin);
    }
    unm_finish(L, res, bin, 1, c);
}

static void unm_set(lua_State *L, int set, const char *tag, const ds_path *path, const av_ctx *c)
{
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, set);
    int res;
    av_checkstack(L, c, path);
    lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
    res = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        ds_path fr = {path, NULL, 0, i, NULL};
        const char *str;
        size_t len;
        if (lua_rawgeti(L, set, i) != LUA_TSTRING)
            av_error(L, c, &fr, "%s items must be strings, got %s", tag, luaL_typename(L, -1));
        str = lua_tolstring(L, -1, &len);
        if (tag[0] == 'N')
            unm_number(L, str, len, tag, c, &fr);
        else if (tag[0] == 'B')
            unm_binary(L, str, len, tag, c, &fr);
        else
            lua_pushvalue(L, -1);
        lua_rawseti(L, res, i);
        lua_settop(L, res);
    }
    av_setmt(L, c, tag[0] == 'N' ? DS_MARK_NS : tag[0] == 'B' ? DS_MARK_BS : DS_MARK_SS);
}

static void unm_expect(lua_State *L, int v, int type, const char *tag, const av_ctx *c, const ds_path *p)
{
    if (lua_type(L, v) != type)
        av_error(L, c, p, "%s value must be a %s, got %s", tag, lua_typename(L, type), luaL_typename(L, v));
}

/* An L or set value with no items must not hold other keys either (a JSON
 * object where an array belongs would otherwise read as empty). */
static void unm_expect_sequence(lua_State *L, int v, const char *tag, const av_ctx *c, const ds_path *p)
{
    if (lua_rawlen(L, v) > 0)
        return;
    lua_pushnil(L);
    if (lua_next(L, v))
        av_error(L, c, p, "%s value must be an array, got a table with a %s key", tag, luaL_typename(L, -2));
}

/* An M value must not be an array: JSON's [] (or a table json_decode marked as
 * a list) would otherwise read as an empty map. */
static void unm_expect_map(lua_State *L, int v, const av_ctx *c, const ds_path *p)
{
    const char *marker = ds_marker(L, v);
    if (marker != NULL && strcmp(marker, "N") != 0 && strcmp(marker, "B") != 0)
        av_error(L, c, p, "M value must be an object, got an array");
}

#define AV_SHAPE "AttributeValue must be a table with exactly one type key"

/* Pushes the type key and value of the AttributeValue at av; returns the
 * value's index. */
static int av_one(lua_State *L, const av_ctx *c, int av, const ds_path *path, const char **tag, size_t *tlen)
{
    if (lua_type(L, av) != LUA_TTABLE)
        av_error(L, c, path, AV_SHAPE ", got %s", luaL_typename(L, av));
    lua_pushnil(L);
    if (!lua_next(L, av))
        av_error(L, c, path, AV_SHAPE ", got an empty table");
    if (lua_type(L, -2) != LUA_TSTRING)
        av_error(L, c, path, AV_SHAPE ", got a %s key", luaL_typename(L, -2));
    lua_pushvalue(L, -2);
    if (lua_next(L, av))
        av_error(L, c, path, AV_SHAPE ", got several keys");
    *tag = lua_tolstring(L, -2, tlen); /* k v */
    return lua_gettop(L);
}

/* Pushes the Lua value of the AttributeValue at av. *binary is set when it
 * was a B. level is the number of M/L around it. [-0, +1] */
static void unm_value(lua_State *L, int av, const ds_path *path, int level, const av_ctx *c, int *binary)
{
    int top = lua_gettop(L), v;
    const char *tag, *s;
    size_t tlen, n;

    av_checkstack(L, c, path);
    v = av_one(L, c, av, path, &tag, &tlen);
    if (tlen == 1 && tag[0] == 'S') {
        unm_expect(L, v, LUA_TSTRING, tag, c, path);
        lua_pushvalue(L, v);
    } else if (tlen == 1 && tag[0] == 'N') {
        unm_expect(L, v, LUA_TSTRING, tag, c, path);
        s = lua_tolstring(L, v, &n);
        unm_number(L, s, n, "N", c, path);
    } else if (tlen == 1 && tag[0] == 'B') {
        unm_expect(L, v, LUA_TSTRING, tag, c, path);
        s = lua_tolstring(L, v, &n);
        unm_binary(L, s, n, "B", c, path);
        *binary = 1;
    } else if (tlen == 4 && memcmp(tag, "BOOL", 4) == 0) {
        unm_expect(L, v, LUA_TBOOLEAN, tag, c, path);
        lua_pushboolean(L, lua_toboolean(L, v));
    } else if (tlen == 4 && memcmp(tag, "NULL", 4) == 0) {
        if (lua_type(L, v) != LUA_TBOOLEAN || !lua_toboolean(L, v))
            av_error(L, c, path, "NULL value must be true, got %s", luaL_typename(L, v));
        ds_pushnull(L);
    } else if (tlen == 1 && (tag[0] == 'M' || tag[0] == 'L')) {
        unm_expect(L, v, LUA_TTABLE, tag, c, path);
        if (tag[0] == 'L')
            unm_expect_sequence(L, v, tag, c, path);
        else
            unm_expect_map(L, v, c, path);
        if (level + 1 > DS_MAX_DEPTH)
            av_error(L, c, path, "nesting deeper than %d levels", DS_MAX_DEPTH);
        if (tag[0] == 'M')
            unm_map(L, v, path, level + 1, c);
        else
            unm_list(L, v, path, level + 1, c);
    } else if (tlen == 2 && tag[1] == 'S' && (tag[0] == 'S' || tag[0] == 'N' || tag[0] == 'B')) {
        unm_expect(L, v, LUA_TTABLE, tag, c, path);
        unm_expect_sequence(L, v, tag, c, path);
        unm_set(L, v, tag, path, c);
    } else {
        av_error(L, c, path, "unknown AttributeValue type '%s'", ds_snippet_push(L, tag, tlen));
    }
    lua_replace(L, top + 1); /* k v below the result */
    lua_settop(L, top + 1);
}

static void av_opts(lua_State *L, int idx, av_ctx *c)
{
    c->numbers_string = 0;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "numbers");
    if (!lua_isnil(L, -1)) {
        const char *mode = lua_tostring(L, -1);
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(mode, "string") == 0)
            c->numbers_string = 1;
        else if (lua_type(L, -1) != LUA_TSTRING || strcmp(mode, "auto") != 0)
            luaL_argerror(L, idx, "opts.numbers must be \"auto\" or \"string\"");
    }
    lua_pop(L, 1);
}

int ds_av_numbers_opt(lua_State *L, int idx)
{
    av_ctx c = {"unmarshall", 0, 0, NULL};
    av_opts(L, idx, &c);
    return c.numbers_string;
}

void ds_av_push_number(lua_State *L, const char *s, size_t n, int numbers_string, int mt)
{
    av_ctx c = {"unmarshall", numbers_string, mt, NULL};
    unm_number(L, s, n, "N", &c, NULL);
}

void ds_av_push_binary(lua_State *L, const char *s, size_t n, unsigned char *room)
{
    av_ctx c = {"unmarshall", 0, 0, NULL};
    size_t outlen;
    if (ds_base64_decode(s, n, room, &outlen) != 0)
        bad_base64(L, outlen, n, "B", &c, NULL);
    lua_pushlstring(L, (const char *)room, outlen);
}

void ds_av_finish(lua_State *L, int res, int bin, int is_list, int mt, ds_keys *keys)
{
    av_ctx c = {"unmarshall", 0, mt, keys};
    unm_finish(L, res, bin, is_list, &c);
}

void ds_unmarshall_table(lua_State *L, int idx, const ds_path *path, int numbers_string)
{
    av_ctx c = {"unmarshall", numbers_string, 0, NULL};
    unm_map(L, lua_absindex(L, idx), path, 0, &c);
}

/* core.unmarshall(av_map[, opts]) -> table */
static int av_unmarshall(lua_State *L)
{
    av_ctx c = {"unmarshall", 0, 0, NULL};
    luaL_checktype(L, 1, LUA_TTABLE);
    av_opts(L, 2, &c);
    lua_settop(L, 2);
    unm_map(L, 1, NULL, 0, &c);
    return 1;
}

/* core.unmarshall_value(av[, opts]) -> value */
static int av_unmarshall_value(lua_State *L)
{
    av_ctx c = {"unmarshall_value", 0, 0, NULL};
    int binary = 0;
    luaL_checkany(L, 1);
    av_opts(L, 2, &c);
    lua_settop(L, 2);
    unm_value(L, 1, NULL, 0, &c, &binary);
    return 1;
}

/* ---- marshall --------------------------------------------------------- */

static void mar_value(lua_State *L, int idx, const ds_path *path, int level, const av_ctx *c, int as_binary);

/* Pushes the N text of the Lua number at idx. */
static void mar_number(lua_State *L, int idx, const av_ctx *c, const ds_path *p)
{
    char buf[DS_DOUBLE_BUFSIZE];
    ds_decimal d;
    lua_Number x;
    size_t n;

    if (lua_isinteger(L, idx)) {
        lua_pushlstring(L, buf, (size_t)snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx)));
        return;
    }
    x = lua_tonumber(L, idx);
    if (!isfinite(x))
        av_error(L, c, p, "cannot marshall %s (DynamoDB numbers are finite)", x != x ? "NaN" : x > 0 ? "inf" : "-inf");
    n = ds_format_double((double)x, buf);
    if (ds_decimal_parse(buf, n, &d) != DS_NUM_OK || ds_decimal_check(&d) != DS_NUM_OK)
        av_error(L, c, p, "number %s is outside the range DynamoDB stores (1E-130 .. 9.99E+125)", buf);
    lua_pushlstring(L, buf, n);
}

/* Pushes the validated string of the decimal box at t. */
static void mar_decimal(lua_State *L, int t, const char *where, const av_ctx *c, const ds_path *p)
{
    size_t n;
    const char *s;
    if (lua_rawgeti(L, t, 1) != LUA_TSTRING)
        av_error(L, c, p, "decimal box holds a %s, not a string", luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    av_check_number(L, s, n, where, c, p);
}

/* Pushes the base64 text of the binary box at t. */
static void mar_binary_box(lua_State *L, int t, const av_ctx *c, const ds_path *p)
{
    size_t n;
    const char *s;
    if (lua_rawgeti(L, t, 1) != LUA_TSTRING)
        av_error(L, c, p, "binary box holds a %s, not a string", luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &n);
    push_base64(L, s, n);
    lua_remove(L, -2);
}

/* Checks depth and cycles before descending into the container t. */
static void mar_enter(lua_State *L, int t, const ds_path *path, int level, const av_ctx *c)
{
    const void *ptr = lua_topointer(L, t);
    const ds_path *p;
    for (p = path; p != NULL; p = p->up)
        if (p->table == ptr)
            av_error(L, c, path, "table cycle (the table contains itself)");
    if (level > DS_MAX_DEPTH)
        av_error(L, c, path, "nesting deeper than %d levels", DS_MAX_DEPTH);
    av_checkstack(L, c, path);
}

/* Pushes the map of AttributeValues for the string-keyed table t. */
static void mar_map_body(lua_State *L, int t, const ds_path *path, int level, const av_ctx *c)
{
    const void *ptr = lua_topointer(L, t);
    int bin = ds_binary_table(L, t);
    int res;
    lua_newtable(L);
    res = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) { /* k v */
        ds_path fr;
        int as_binary;
        if (lua_type(L, -2) == LUA_TNUMBER) {
            lua_pushvalue(L, -2); /* convert a copy, not the traversal key */
            av_error(L, c, path, "cannot marshall a table with the number key %s (mixed or sparse table?"
                     " map keys must be strings)", lua_tostring(L, -1));
        } else if (lua_type(L, -2) != LUA_TSTRING) {
            av_error(L, c, path, "cannot marshall a table with a %s key (map keys must be strings)",
                     luaL_typename(L, -2));
        }
        fr.up = path;
        fr.key = lua_tolstring(L, -2, &fr.keylen);
        fr.index = 0;
        fr.table = ptr;
        lua_pushvalue(L, -2);
        as_binary = ds_is_binary(L, bin, lua_gettop(L) - 1);
        mar_value(L, lua_gettop(L), &fr, level, c, as_binary); /* k v av */
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, res); /* k v */
        lua_pop(L, 1);
    }
    lua_remove(L, bin);
}

static void mar_list(lua_State *L, int t, const ds_path *path, int level, const av_ctx *c)
{
    const void *ptr = lua_topointer(L, t);
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, t);
    int bin, res;
    mar_enter(L, t, path, level, c);
    bin = ds_binary_table(L, t);
    lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
    res = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        ds_path fr = {path, NULL, 0, i, ptr};
        int as_binary;
        if (lua_rawgeti(L, t, i) == LUA_TNIL)
            av_error(L, c, &fr, "nil in a list (use core.null)");
        lua_pushinteger(L, i);
        as_binary = ds_is_binary(L, bin, lua_gettop(L) - 1);
        mar_value(L, lua_gettop(L), &fr, level, c, as_binary); /* item av */
        lua_rawseti(L, res, i);
        lua_pop(L, 1);
    }
    luaL_setmetatable(L, DS_LIST_MT); /* so json_encode writes [] even when empty */
    lua_remove(L, bin);
    av_wrap(L, "L");
}

static void mar_set(lua_State *L, int t, const char *tag, const ds_path *path, const av_ctx *c)
{
    lua_Integer i, first, n = (lua_Integer)lua_rawlen(L, t);
    int seen;
    av_checkstack(L, c, path);
    if (n == 0)
        av_error(L, c, path, "empty %s set (DynamoDB rejects empty sets)", tag);
    lua_newtable(L);
    seen = lua_gettop(L);
    lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
    for (i = 1; i <= n; i++) {
        ds_path fr = {path, NULL, 0, i, NULL};
        int item, type = lua_rawgeti(L, t, i);
        const char *m = type == LUA_TTABLE ? ds_marker(L, -1) : NULL;
        item = lua_gettop(L);
        if (tag[0] == 'S' && type == LUA_TSTRING) {
            lua_pushvalue(L, item);
        } else if (tag[0] == 'N' && type == LUA_TNUMBER) {
            mar_number(L, item, c, &fr);
        } else if (tag[0] == 'N' && type == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, item, &len);
            av_check_number(L, s, len, "NS", c, &fr);
            lua_pushvalue(L, item);
        } else if (tag[0] == 'N' && m && strcmp(m, "N") == 0) {
            mar_decimal(L, item, "NS", c, &fr);
        } else if (tag[0] == 'B' && type == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, item, &len);
            push_base64(L, s, len);
        } else if (tag[0] == 'B' && m && strcmp(m, "B") == 0) {
            mar_binary_box(L, item, c, &fr);
        } else {
            av_error(L, c, &fr, "cannot put a %s into a %s set", luaL_typename(L, item), tag);
        }
        if ((first = set_repeat(L, seen, lua_gettop(L), tag[0] == 'N', i)) != 0)
            av_error(L, c, &fr, "%s set item repeats item %d (DynamoDB refuses duplicate set members)", tag,
                     (int)first);
        lua_rawseti(L, -3, i);
        lua_pop(L, 1);
    }
    luaL_setmetatable(L, DS_LIST_MT);
    lua_remove(L, seen);
    av_wrap(L, tag);
}

static void mar_table(lua_State *L, int t, const ds_path *path, int level, const av_ctx *c)
{
    const char *m = ds_marker(L, t);
    if (m == NULL) { /* plain table (or a map carrying __binary) */
        int first_key_type;
        lua_pushnil(L);
        if (lua_next(L, t)) {
            first_key_type = lua_type(L, -2);
            lua_pop(L, 2);
        } else {
            first_key_type = LUA_TNIL;
        }
        if (first_key_type == LUA_TNUMBER && ds_is_sequence(L, t)) {
            mar_list(L, t, path, level, c);
        } else {
            mar_enter(L, t, path, level, c);
            mar_map_body(L, t, path, level, c);
            av_wrap(L, "M");
        }
    } else if (strcmp(m, "L") == 0) {
        mar_list(L, t, path, level, c);
    } else if (strcmp(m, "N") == 0) {
        mar_decimal(L, t, "N", c, path);
        av_wrap(L, "N");
    } else if (strcmp(m, "B") == 0) {
        mar_binary_box(L, t, c, path);
        av_wrap(L, "B");
    } else if (strcmp(m, "SS") == 0 || strcmp(m, "NS") == 0 || strcmp(m, "BS") == 0) {
        mar_set(L, t, m, path, c);
    } else {
        av_error(L, c, path, "cannot marshall a table marked __ddb = '%s'", m);
    }
}

/* Pushes the AttributeValue of the Lua value at idx. as_binary: the string is
 * a recorded B value. level counts the M/L around it. [-0, +1] */
static void mar_value(lua_State *L, int idx, const ds_path *path, int level, const av_ctx *c, int as_binary)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        if (as_binary) {
            size_t n;
            const char *s = lua_tolstring(L, idx, &n);
            push_base64(L, s, n);
            av_wrap(L, "B");
        } else {
            lua_pushvalue(L, idx);
            av_wrap(L, "S");
        }
        break;
    case LUA_TNUMBER:
        mar_number(L, idx, c, path);
        av_wrap(L, "N");
        break;
    case LUA_TBOOLEAN:
        lua_pushvalue(L, idx);
        av_wrap(L, "BOOL");
        break;
    case LUA_TTABLE:
        mar_table(L, idx, path, level + 1, c);
        break;
    default:
        if (ds_isnull(L, idx)) {
            lua_pushboolean(L, 1);
            av_wrap(L, "NULL");
        } else {
            av_error(L, c, path, "cannot marshall a %s", luaL_typename(L, idx));
        }
        break;
    }
}

static void mar_opts(lua_State *L, int idx)
{
    /* No options yet; accept a table so callers can pass one through. */
    if (!lua_isnoneornil(L, idx))
        luaL_checktype(L, idx, LUA_TTABLE);
}

/* core.marshall(tbl[, opts]) -> { name = AttributeValue, ... } */
static int av_marshall(lua_State *L)
{
    av_ctx c = {"marshall", 0, 0, NULL};
    const char *m;
    luaL_checktype(L, 1, LUA_TTABLE);
    mar_opts(L, 2);
    lua_settop(L, 2);
    m = ds_marker(L, 1);
    if (m != NULL)
        return luaL_error(L, "marshall: an item must be a map, got a table marked '%s' (use marshall_value)", m);
    mar_map_body(L, 1, NULL, 0, &c);
    return 1;
}

/* core.marshall_value(v[, opts]) -> AttributeValue */
static int av_marshall_value(lua_State *L)
{
    av_ctx c = {"marshall_value", 0, 0, NULL};
    luaL_checkany(L, 1);
    mar_opts(L, 2);
    lua_settop(L, 2);
    mar_value(L, 1, NULL, 0, &c, 0);
    return 1;
}

/* ---- boxes ------------------------------------------------------------ */

/* core.decimal(str) -> decimal box */
static int av_decimal(lua_State *L)
{
    size_t n;
    const char *s;
    ds_decimal d;
    int st;
    luaL_checktype(L, 1, LUA_TSTRING);
    s = lua_tolstring(L, 1, &n);
    st = ds_decimal_parse(s, n, &d);
    if (st == DS_NUM_OK)
        st = ds_decimal_check(&d);
    if (st != DS_NUM_OK)
        return luaL_argerror(L, 1, lua_pushfstring(L, "invalid number '%s' (%s)", ds_snippet_push(L, s, n),
                                                   ds_number_strerror(st)));
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    luaL_setmetatable(L, DS_DECIMAL_MT);
    return 1;
}

/* core.binary(str) -> binary box */
static int av_binary(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TSTRING);
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    luaL_setmetatable(L, DS_BINARY_MT);
    return 1;
}

/* core.set(kind, items) -> a new sequence of the items tagged with the set marker */
static int av_set(lua_State *L)
{
    static const char *const kinds[] = {"SS", "NS", "BS", NULL};
    static const char *const mts[] = {DS_STRING_SET_MT, DS_NUMBER_SET_MT, DS_BINARY_SET_MT};
    int kind = luaL_checkoption(L, 1, NULL, kinds);
    lua_Integer i, n, first;
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (lua_Integer)lua_rawlen(L, 2);
    lua_settop(L, 2);
    lua_newtable(L); /* 3: the members seen */
    lua_createtable(L, n < INT_MAX ? (int)n : 0, 0);
    for (i = 1; i <= n; i++) {
        int type = lua_rawgeti(L, 2, i);
        const char *m = type == LUA_TTABLE ? ds_marker(L, -1) : NULL;
        int ok;
        if (kind == 0) {
            ok = type == LUA_TSTRING;
        } else if (kind == 1) {
            ds_decimal d;
            size_t len;
            const char *s;
            if (type == LUA_TNUMBER) {
                lua_Number x = lua_tonumber(L, -1);
                ok = lua_isinteger(L, -1) || isfinite(x);
            } else if (type == LUA_TSTRING) {
                s = lua_tolstring(L, -1, &len);
                ok = ds_decimal_parse(s, len, &d) == DS_NUM_OK && ds_decimal_check(&d) == DS_NUM_OK;
            } else {
                ok = decimal_get(L, lua_gettop(L), &d);
            }
        } else if (m != NULL && strcmp(m, "B") == 0) {
            ok = lua_rawgeti(L, -1, 1) == LUA_TSTRING; /* unbox: BS items are raw byte strings */
            lua_remove(L, -2);
        } else {
            ok = type == LUA_TSTRING;
        }
        if (!ok)
            return luaL_error(L, "set: item %d cannot be in a %s set (%s)", (int)i, kinds[kind],
                              type == LUA_TNIL ? "nil" : luaL_typename(L, -1));
        if ((first = set_repeat(L, 3, lua_gettop(L), kind == 1, i)) != 0)
            return luaL_error(L, "set: item %d repeats item %d (DynamoDB refuses duplicate set members)", (int)i,
                              (int)first);
        lua_rawseti(L, -2, i);
    }
    luaL_setmetatable(L, mts[kind]);
    return 1;
}

static int decimal_tostring(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE || lua_rawgeti(L, 1, 1) != LUA_TSTRING)
        lua_pushliteral(L, "<invalid decimal>");
    return 1;
}

static int decimal_eq(lua_State *L)
{
    ds_decimal a, b;
    lua_pushboolean(L, decimal_get(L, 1, &a) && decimal_get(L, 2, &b) && ds_decimal_equal(&a, &b));
    return 1;
}

static const luaL_Reg av_funcs[] = {
    {"unmarshall", av_unmarshall},
    {"unmarshall_value", av_unmarshall_value},
    {"marshall", av_marshall},
    {"marshall_value", av_marshall_value},
    {"decimal", av_decimal},
    {"binary", av_binary},
    {"set", av_set},
    {NULL, NULL},
};

void ds_open_av(lua_State *L)
{
    luaL_setfuncs(L, av_funcs, 0);
    luaL_getmetatable(L, DS_DECIMAL_MT); /* created by ds_open_markers */
    lua_pushcfunction(L, decimal_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, decimal_eq);
    lua_setfield(L, -2, "__eq");
    lua_pop(L, 1);
}
