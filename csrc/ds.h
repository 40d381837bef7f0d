/* Private header of every binding file of dynamodb_stream.core (the ds_*.c
 * files, which include lua.h): Lua includes, the version gate, visibility,
 * the module's version. Each part declares its own names in its own header
 * (ds_lua.h: the helpers they all call). The engine files (Lua-free) never
 * include it. Never installed. */
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

/* core._VERSION and the HTTP User-Agent. */
#define DS_VERSION "0.1.0"

#endif
