/* ds_lua.c - the binding helpers of ds_lua.h. A leaf: it calls nothing
 * else of the module. */
#include <stdio.h>
#include <string.h>

#include "ds_lua.h"

#define SNIPPET_MAX 40     /* bytes of a bad value or key quoted in a message */
#define PATH_MAX_FRAMES 32 /* deeper paths show their innermost frames */

int ds_fail(lua_State *L, const char *code, const char *msg)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", code, msg);
    lua_pushstring(L, code);
    return 3;
}

const char *ds_marker(lua_State *L, int idx)
{
    const char *tag = NULL;
    if (!lua_getmetatable(L, idx))
        return NULL;
    if (lua_getfield(L, -1, "__ddb") == LUA_TSTRING)
        tag = lua_tostring(L, -1); /* interned literal kept alive by the metatable */
    lua_pop(L, 2);
    return tag;
}

int ds_is_sequence(lua_State *L, int t)
{
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_Integer k;
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        if (k > max)
            max = k;
        count++;
    }
    return count > 0 && count == max;
}

int ds_binary_table(lua_State *L, int t)
{
    if (lua_getmetatable(L, t)) {
        lua_pushliteral(L, "__binary");
        lua_rawget(L, -2);
        lua_remove(L, -2);
        if (lua_istable(L, -1))
            return lua_gettop(L);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    return lua_gettop(L);
}

int ds_is_binary(lua_State *L, int bin, int val)
{
    int yes;
    if (!lua_istable(L, bin) || lua_type(L, val) != LUA_TSTRING) {
        lua_pop(L, 1);
        return 0;
    }
    lua_rawget(L, bin);
    yes = lua_rawequal(L, -1, val);
    lua_pop(L, 1);
    return yes;
}

void ds_new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                  const luaL_Reg *methods)
{
    luaL_newmetatable(L, name); /* sets mt.__name */
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void ds_new_gc_type(lua_State *L, const char *name, lua_CFunction gc)
{
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

static void markers_new(lua_State *L, const char *name, const char *tag, const char *field)
{
    luaL_newmetatable(L, name);
    lua_pushstring(L, tag);
    lua_setfield(L, -2, "__ddb");
    lua_setfield(L, -2, field);
}

void ds_open_markers(lua_State *L)
{
    markers_new(L, DS_LIST_MT, "L", "list_mt");
    markers_new(L, DS_STRING_SET_MT, "SS", "string_set_mt");
    markers_new(L, DS_NUMBER_SET_MT, "NS", "number_set_mt");
    markers_new(L, DS_BINARY_SET_MT, "BS", "binary_set_mt");
    markers_new(L, DS_DECIMAL_MT, "N", "decimal_mt");
    markers_new(L, DS_BINARY_MT, "B", "binary_mt");
}

const char *const ds_marker_names[5] = {DS_LIST_MT, DS_STRING_SET_MT, DS_NUMBER_SET_MT, DS_BINARY_SET_MT,
                                        DS_DECIMAL_MT};

void ds_push_markers(lua_State *L)
{
    int i;
    for (i = 0; i < 5; i++)
        luaL_getmetatable(L, ds_marker_names[i]);
}

static void add_escaped(luaL_Buffer *b, const char *s, size_t n)
{
    size_t i, lim = n > SNIPPET_MAX ? SNIPPET_MAX : n;
    for (i = 0; i < lim; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            luaL_addchar(b, (char)ch);
        } else {
            char esc[8];
            snprintf(esc, sizeof esc, "\\%u", ch);
            luaL_addstring(b, esc);
        }
    }
    if (n > lim)
        luaL_addstring(b, "...");
}

const char *ds_snippet_push(lua_State *L, const char *s, size_t n)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_escaped(&b, s, n);
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

static int path_is_ident(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > SNIPPET_MAX || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static void path_add(luaL_Buffer *b, const ds_path *p, int left)
{
    if (p->up && left > 1)
        path_add(b, p->up, left - 1);
    else if (p->up)
        luaL_addstring(b, "...");
    if (p->key == NULL) {
        char idx[32];
        snprintf(idx, sizeof idx, "[%lld]", (long long)p->index);
        luaL_addstring(b, idx);
    } else if (path_is_ident(p->key, p->keylen)) {
        if (p->up && left > 1)
            luaL_addchar(b, '.');
        luaL_addlstring(b, p->key, p->keylen);
    } else {
        luaL_addstring(b, "[\"");
        add_escaped(b, p->key, p->keylen);
        luaL_addstring(b, "\"]");
    }
}

void ds_path_push(lua_State *L, const ds_path *p)
{
    luaL_Buffer b;
    if (p == NULL) {
        lua_pushliteral(L, "top level");
        return;
    }
    luaL_buffinit(L, &b);
    path_add(&b, p, PATH_MAX_FRAMES);
    luaL_pushresult(&b);
}
