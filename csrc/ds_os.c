/* ds_os.c - what the module asks of the operating system: core.sleep,
 * core.monotime, core.write_file_atomic (atomic_file.c), core.lock_file,
 * core.run_process (process.c) and the stop signals (core.watch_stop_signals,
 * core.stop_signal). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "ds_lua.h"
#include "ds_os.h"
#include "process.h"

/* The stop signal (SIGTERM or SIGINT) caught while watched, 0 before. The
 * handler only records it: run() sees it between two fetches. */
static volatile sig_atomic_t stop_signal_caught = 0;
static struct sigaction saved_term, saved_int;
static int watching_stop_signals = 0;

/* A second stop signal ends the process at once, as the signal's default
 * action (what a user pressing Ctrl-C twice expects of a slow stop). The
 * signal is blocked in its handler: raise() delivers it on return. */
static void on_stop_signal(int sig)
{
    if (stop_signal_caught != 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        raise(sig);
        return;
    }
    stop_signal_caught = sig;
}

/* core.watch_stop_signals(on): true installs a handler for SIGTERM and SIGINT
 * that records the signal (core.stop_signal) instead of ending the process;
 * false puts back the handlers there were before. -> true | nil, "SignalError: ...". */
static int core_watch_stop_signals(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    int on = lua_toboolean(L, 1);
    if (on && !watching_stop_signals) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        stop_signal_caught = 0;
        if (sigaction(SIGTERM, &sa, &saved_term) != 0)
            return ds_fail(L, "SignalError", strerror(errno));
        if (sigaction(SIGINT, &sa, &saved_int) != 0) {
            int e = errno;
            sigaction(SIGTERM, &saved_term, NULL);
            return ds_fail(L, "SignalError", strerror(e));
        }
        watching_stop_signals = 1;
    } else if (!on && watching_stop_signals) {
        sigaction(SIGTERM, &saved_term, NULL);
        sigaction(SIGINT, &saved_int, NULL);
        watching_stop_signals = 0;
        stop_signal_caught = 0;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.stop_signal() -> "TERM" | "INT" | nil: the stop signal caught since the
 * watch began. */
static int core_stop_signal(lua_State *L)
{
    int sig = stop_signal_caught;
    if (sig == SIGTERM)
        lua_pushliteral(L, "TERM");
    else if (sig == SIGINT)
        lua_pushliteral(L, "INT");
    else
        lua_pushnil(L);
    return 1;
}

/* core.sleep(seconds): blocks the calling thread without spinning; resumes
 * after a signal interrupts it so the whole interval is slept, unless it was a
 * watched stop signal (run() then stops at once, not a whole pause later). */
static int core_sleep(lua_State *L)
{
    lua_Number seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0 && seconds < 1e9, 1, "seconds must be between 0 and 1e9");
    struct timespec left;
    left.tv_sec = (time_t)seconds;
    left.tv_nsec = (long)((seconds - floor(seconds)) * 1e9);
    while (nanosleep(&left, &left) != 0 && errno == EINTR && stop_signal_caught == 0)
        ;
    return 0;
}

/* core.monotime(): seconds from an arbitrary start, never going backwards. */
static int core_monotime(lua_State *L)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
    return 1;
}

/* A path argument as C sees it: a NUL inside would silently cut it. */
static const char *check_path(lua_State *L, int arg)
{
    size_t len;
    const char *path = luaL_checklstring(L, arg, &len);
    luaL_argcheck(L, strlen(path) == len, arg, "path contains a NUL byte");
    luaL_argcheck(L, len > 0, arg, "path is empty");
    return path;
}

/* core.write_file_atomic(path, data[, mode]) -> true | nil, "FileError: ...", "FileError".
 * mode defaults to 0600: checkpoints hold stream positions, nobody else's business. */
static int core_write_file_atomic(lua_State *L)
{
    const char *path = check_path(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer mode = luaL_optinteger(L, 3, 0600);
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 3, "mode must be between 0 and 07777");
    char err[512];
    if (atomic_file_write(path, data, len, (mode_t)mode, err, sizeof err) != 0)
        return ds_fail(L, "FileError", err);
    lua_pushboolean(L, 1);
    return 1;
}

/* The lock of core.lock_file: the descriptor holding the flock, -1 once released. */
#define FILE_LOCK_MT "dynamodb_stream.file_lock"

static int file_lock_close(lua_State *L)
{
    int *fd = luaL_checkudata(L, 1, FILE_LOCK_MT);
    if (*fd >= 0)
        close(*fd); /* releases the flock */
    *fd = -1;
    return 0;
}

static int file_lock_tostring(lua_State *L)
{
    int *fd = luaL_checkudata(L, 1, FILE_LOCK_MT);
    lua_pushstring(L, *fd >= 0 ? "dynamodb_stream.file_lock (held)" : "dynamodb_stream.file_lock (released)");
    return 1;
}

/* core.lock_file(path) -> lock | nil, "Locked: ...", "Locked" | nil, "FileError: ...", "FileError".
 * An exclusive flock on path .. ".lock", held until lock:close() or collection. */
static int core_lock_file(lua_State *L)
{
    const char *path = check_path(L, 1);
    int *fd = lua_newuserdatauv(L, sizeof *fd, 0);
    *fd = -1;
    luaL_setmetatable(L, FILE_LOCK_MT);
    char err[512];
    int busy;
    *fd = atomic_file_lock(path, &busy, err, sizeof err);
    if (*fd < 0)
        return ds_fail(L, busy ? "Locked" : "FileError", err);
    return 1;
}

/* The output of core.run_process, anchored while strings are pushed (which may raise). */
#define PROCESS_RESULT_MT "dynamodb_stream.process_result"

static int process_result_gc(lua_State *L)
{
    process_result_free(luaL_checkudata(L, 1, PROCESS_RESULT_MT));
    return 0;
}

/* core.run_process(argv, opts) -> stdout, stderr, status
 *   | nil, "Timeout|OutputTooLarge|SpawnError|ProcessError: ...", code.
 * argv: a list of strings (argv[1] is the program, searched in PATH); no shell.
 * opts.timeout (seconds, > 0) and opts.max_output (bytes, default 1 MiB). */
static int core_run_process(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer argc = (lua_Integer)lua_rawlen(L, 1);
    luaL_argcheck(L, argc >= 1 && argc < 4096, 1, "argv must be a list of 1 to 4095 strings");
    lua_getfield(L, 2, "timeout");
    luaL_argcheck(L, lua_type(L, -1) == LUA_TNUMBER, 2, "opts.timeout must be a number of seconds");
    lua_Number timeout = lua_tonumber(L, -1);
    luaL_argcheck(L, timeout > 0 && timeout <= 86400, 2, "opts.timeout must be > 0 and at most 86400 seconds");
    lua_getfield(L, 2, "max_output");
    lua_Integer max_output = 1024 * 1024;
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0, 2,
                      "opts.max_output must be a positive integer");
        max_output = lua_tointeger(L, -1);
    }
    lua_pop(L, 2);
    /* The strings stay referenced by argv, and no Lua runs until the end. */
    char **argv = lua_newuserdatauv(L, (size_t)(argc + 1) * sizeof *argv, 0);
    for (lua_Integer i = 1; i <= argc; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
            luaL_argerror(L, 1, lua_pushfstring(L, "argv[%d] must be a string", (int)i));
        size_t len;
        const char *arg = lua_tolstring(L, -1, &len);
        if (strlen(arg) != len)
            luaL_argerror(L, 1, lua_pushfstring(L, "argv[%d] contains a NUL byte", (int)i));
        argv[i - 1] = (char *)arg;
        lua_pop(L, 1);
    }
    argv[argc] = NULL;
    luaL_argcheck(L, argv[0][0] != '\0', 1, "argv[1] (the program) is empty");

    process_result *res = lua_newuserdatauv(L, sizeof *res, 0);
    memset(res, 0, sizeof *res);
    luaL_setmetatable(L, PROCESS_RESULT_MT);
    char why[512];
    process_outcome outcome = process_run(argv, timeout, (size_t)max_output, res, why, sizeof why);
    static const char *const codes[] = {
        [PROCESS_TIMEOUT] = "Timeout",
        [PROCESS_TOO_LARGE] = "OutputTooLarge",
        [PROCESS_SPAWN] = "SpawnError",
        [PROCESS_SYSTEM] = "ProcessError",
    };
    if (outcome != PROCESS_OK) {
        process_result_free(res);
        return ds_fail(L, codes[outcome], why);
    }
    lua_pushlstring(L, res->out.data ? res->out.data : "", res->out.len);
    lua_pushlstring(L, res->err.data ? res->err.data : "", res->err.len);
    lua_pushinteger(L, res->status);
    process_result_free(res);
    return 3;
}

static const luaL_Reg file_lock_methods[] = {
    {"close", file_lock_close},
    {"__gc", file_lock_close},
    {"__close", file_lock_close},
    {"__tostring", file_lock_tostring},
    {NULL, NULL},
};

static const luaL_Reg os_funcs[] = {
    {"write_file_atomic", core_write_file_atomic},
    {"lock_file", core_lock_file},
    {"sleep", core_sleep},
    {"monotime", core_monotime},
    {"run_process", core_run_process},
    {"watch_stop_signals", core_watch_stop_signals},
    {"stop_signal", core_stop_signal},
    {NULL, NULL},
};

void ds_open_os(lua_State *L)
{
    luaL_newmetatable(L, FILE_LOCK_MT);
    luaL_setfuncs(L, file_lock_methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    ds_new_gc_type(L, PROCESS_RESULT_MT, process_result_gc);
    luaL_setfuncs(L, os_funcs, 0);
}
