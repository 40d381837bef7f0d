/* ds_filter.c - core.compile_filter(criteria[, opts]) -> filter userdata
 * owning a filter.c program; filter:match(record_json) for tests and tools.
 * criteria is Lambda's FilterCriteria ({ Filters = { { Pattern = json }, ... } }),
 * or one pattern as a JSON string or a Lua table (encoded by json_encode). */
#include <string.h>

#include "ds_filter.h"
#include "ds_json.h"
#include "ds_lua.h"
#include "filter.h"
#include "json_lex.h"

typedef struct {
    struct ds_filter *program; /* NULL once closed */
} filter_box;

struct ds_filter *ds_filter_check(lua_State *L, int idx)
{
    filter_box *box = luaL_checkudata(L, idx, DS_FILTER_MT);
    if (box->program == NULL)
        luaL_error(L, "filter is closed");
    return box->program;
}

/* Leaves the JSON text of the pattern at idx (string or Lua table) on the top
 * of the stack; what names it in messages is `what`. [-0, +1] */
static void push_pattern_text(lua_State *L, int idx, const char *what)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        lua_pushvalue(L, idx);
    } else if (lua_type(L, idx) == LUA_TTABLE) {
        lua_pushcfunction(L, ds_json_encode);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
    } else {
        luaL_error(L, "compile_filter: %s must be a JSON string or a table, got %s", what, luaL_typename(L, idx));
    }
}

/* core.compile_filter(criteria[, opts]) -> filter; raises with the reason
 * when a pattern is invalid. opts.max_filters: 1..10 (default 5, Lambda's
 * default quota). */
static int compile_filter(lua_State *L)
{
    const char *texts[DS_FILTER_MAX_FILTERS];
    size_t lens[DS_FILTER_MAX_FILTERS];
    char err[DS_FILTER_ERRSIZE];
    int n = 0, max_filters = DS_FILTER_DEFAULT_FILTERS, base;
    filter_box *box;

    luaL_argcheck(L, lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TTABLE, 1,
                  "FilterCriteria table, pattern table or pattern JSON string expected");
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "max_filters");
        if (!lua_isnil(L, -1)) {
            lua_Integer m = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
            luaL_argcheck(L, m >= 1 && m <= DS_FILTER_MAX_FILTERS, 2, "max_filters must be an integer 1..10");
            max_filters = (int)m;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    base = lua_gettop(L);
    if (lua_type(L, 1) == LUA_TTABLE && (lua_getfield(L, 1, "Filters"), !lua_isnil(L, -1))) {
        lua_Integer k, count;
        if (lua_type(L, -1) != LUA_TTABLE)
            return luaL_error(L, "compile_filter: Filters must be a list of { Pattern = json }");
        count = (lua_Integer)lua_rawlen(L, -1);
        if (count < 1 || count > max_filters)
            return luaL_error(L, "compile_filter: %d filters: between 1 and %d are allowed", (int)count, max_filters);
        luaL_checkstack(L, 2 * (int)count + 4, "compile_filter");
        for (k = 1; k <= count; k++) {
            char what[48];
            lua_rawgeti(L, base + 1, k);
            if (lua_type(L, -1) != LUA_TTABLE)
                return luaL_error(L, "compile_filter: Filters[%d] must be a table { Pattern = json }", (int)k);
            lua_getfield(L, -1, "Pattern");
            snprintf(what, sizeof what, "Filters[%d].Pattern", (int)k);
            push_pattern_text(L, lua_gettop(L), what);
            texts[n] = lua_tolstring(L, -1, &lens[n]); /* stays on the stack */
            n++;
        }
    } else {
        lua_settop(L, base);
        push_pattern_text(L, 1, "the pattern");
        texts[n] = lua_tolstring(L, -1, &lens[n]);
        n++;
    }
    box = lua_newuserdatauv(L, sizeof *box, 0);
    box->program = NULL;
    luaL_setmetatable(L, DS_FILTER_MT);
    box->program = ds_filter_compile(texts, lens, n, max_filters, err);
    if (box->program == NULL)
        return luaL_error(L, "compile_filter: %s", err);
    return 1;
}

/* filter:match(record_json) -> boolean, or nil, "InvalidJSON: ...", "InvalidJSON". */
static int filter_match(lua_State *L)
{
    struct ds_filter *f = ds_filter_check(L, 1);
    size_t len, end;
    const char *text = luaL_checklstring(L, 2, &len);
    char err[DS_FILTER_ERRSIZE];
    int k = ds_filter_match(f, text, len, &end, err);
    if (k >= 0 && ds_json_skip_ws(text, len, end) != len) {
        k = -1;
        strcpy(err, "text after the record");
    }
    if (k < 0)
        return ds_fail(L, "InvalidJSON", err);
    lua_pushboolean(L, k);
    return 1;
}

/* filter:close() (also __close, __gc): frees the program; idempotent. */
static int filter_close(lua_State *L)
{
    filter_box *box = luaL_checkudata(L, 1, DS_FILTER_MT);
    ds_filter_free(box->program);
    box->program = NULL;
    return 0;
}

static int filter_tostring(lua_State *L)
{
    filter_box *box = luaL_checkudata(L, 1, DS_FILTER_MT);
    lua_pushfstring(L, "%s (%s)", DS_FILTER_MT, box->program ? "compiled" : "closed");
    return 1;
}

static const luaL_Reg filter_methods[] = {
    {"match", filter_match},
    {"close", filter_close},
    {NULL, NULL},
};

static const luaL_Reg filter_meta[] = {
    {"__index", NULL}, /* placeholder: ds_new_class sets it */
    {"__gc", filter_close},
    {"__close", filter_close},
    {"__tostring", filter_tostring},
    {NULL, NULL},
};

void ds_open_filter(lua_State *L)
{
    ds_new_class(L, DS_FILTER_MT, filter_meta, filter_methods);
    lua_pushcfunction(L, compile_filter);
    lua_setfield(L, -2, "compile_filter");
}
