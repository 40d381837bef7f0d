/* fuzz_lua.c - libFuzzer harness that drives dynamodb_stream.core through an
 * embedded Lua 5.4 (Debian's static liblua5.4.a is linked into the fuzzer
 * only; the module itself never links liblua).
 *
 * Built once per target with -DFUZZ_TARGET="json" (or "av", "records"): each
 * input gets a fresh lua_State with a capped allocator, opens the module with
 * luaopen_dynamodb_stream_core, loads fuzz/harness.lua (path compiled in as
 * FUZZ_HARNESS, read once at start-up) and calls harness[FUZZ_TARGET](core,
 * input) under lua_pcall.
 * The Lua side turns every clean rejection into a normal return and calls
 * error() for a broken property; this file aborts on such an error, so
 * libFuzzer records the input. Closing the state per input means anything
 * still allocated afterwards is a C leak, which LeakSanitizer reports. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET (json, av or records)"
#endif
#ifndef FUZZ_HARNESS
#error "define FUZZ_HARNESS (path of fuzz/harness.lua)"
#endif

int luaopen_dynamodb_stream_core(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *harness_src;
static size_t harness_len;

/* Reads fuzz/harness.lua once, so editing it during a run changes nothing. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FILE *f = fopen(FUZZ_HARNESS, "rb");
    long n;
    (void)argc;
    (void)argv;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        (harness_src = malloc((size_t)n + 1)) == NULL || fread(harness_src, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "fuzz_lua: cannot read %s\n", FUZZ_HARNESS);
        exit(2);
    }
    harness_len = (size_t)n;
    fclose(f);
    return 0;
}

/* Lua memory is capped so a huge input fails with a Lua "not enough memory"
 * error (a clean rejection) instead of tripping libFuzzer's RSS limit. */
#define FUZZ_LUA_MEM_LIMIT ((size_t)256 << 20)

static size_t lua_mem_used;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (ptr == NULL)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        lua_mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && lua_mem_used + (nsize - osize) > FUZZ_LUA_MEM_LIMIT)
        return NULL;
    ptr = realloc(ptr, nsize);
    if (ptr != NULL)
        lua_mem_used = lua_mem_used - osize + nsize;
    return ptr;
}

static int fuzz_run(lua_State *L)
{
    const char *data = lua_touserdata(L, 1);
    size_t size = (size_t)lua_tointeger(L, 2);
    luaL_openlibs(L);
    luaL_requiref(L, "dynamodb_stream.core", luaopen_dynamodb_stream_core, 0); /* core */
    if (luaL_loadbuffer(L, harness_src, harness_len, "@" FUZZ_HARNESS) != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);                   /* core harness */
    lua_getfield(L, -1, FUZZ_TARGET);    /* core harness fn */
    if (lua_type(L, -1) != LUA_TFUNCTION)
        return luaL_error(L, "harness.lua has no function '%s'", FUZZ_TARGET);
    lua_pushvalue(L, -3);
    lua_pushlstring(L, data, size);
    lua_call(L, 2, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = lua_newstate(capped_alloc, NULL);
    int rc;
    if (L == NULL)
        abort();
    lua_pushcfunction(L, fuzz_run);
    lua_pushlightuserdata(L, (void *)data);
    lua_pushinteger(L, (lua_Integer)size);
    rc = lua_pcall(L, 2, 0, 0);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        /* Out of memory in the harness's own bookkeeping is not a finding. */
        if (rc == LUA_ERRMEM) {
            lua_close(L);
            return 0;
        }
        fprintf(stderr, "fuzz_lua(%s): property broken: %s\n", FUZZ_TARGET, msg ? msg : "(non-string error)");
        abort();
    }
    lua_close(L);
    return 0;
}
