/* ds_decode.c - core.decode_records: a GetRecords response body or a Lambda
 * DynamoDB event payload to Lua records in one pass (contract in HACKING.md).
 *
 * Fast path: cJSON parses into a bump arena (arena.c; its hooks make the
 * parse cost no malloc in the steady state), then the records are built
 * straight from the tree: envelope fields as json_decode gives them, Keys,
 * NewImage and OldImage unmarshalled by ds_av.c's cJSON input, tables sized
 * from the tree. The arena belongs to a userdata (upvalue of the function),
 * reset at the start of each call and freed by __gc, so a raise leaks nothing.
 *
 * Exact path: json_decode + unmarshall of the three images of every record,
 * which defines the result. The fast path hands over to it whenever it could
 * differ or fails, so the two always agree:
 *   - a pre-scan of the text (about 3% of the time) finds a NUL byte or the
 *     escape \u0000 (cJSON cuts strings there), or a number token that cJSON's
 *     double may not read as json_decode reads the text (see number_fast_ok;
 *     AttributeValue numbers are strings, so these are the envelope's few);
 *   - cJSON rejects the text or something follows the value (for the message);
 *   - a number's double is integral from 2^53 on, where the text may be an
 *     exact int64 ("1e17");
 *   - anything in the fast build raises (malformed envelope or AttributeValue):
 *     the whole page then fails with the exact path's message, which names
 *     the first bad record in page order. */
#include <stdarg.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "arena.h"
#include "ds.h"

#define DECODE_STATE_MT "dynamodb_stream.decode_state"
#define DECODE_FIRST_CHUNK ((size_t)1 << 20)

typedef struct {
    ds_arena arena;
    cJSON *foreign; /* a tree parsed with somebody else's hooks: cJSON_Delete it */
    int busy;       /* inside a fast build (a finalizer may call us meanwhile) */
    ds_keys keys;   /* names seen in earlier pages; its strings are the user value */
} decode_state;

static void state_release_tree(decode_state *st)
{
    if (st->foreign != NULL) {
        cJSON_Delete(st->foreign);
        st->foreign = NULL;
    }
}

static int state_gc(lua_State *L)
{
    decode_state *st = luaL_checkudata(L, 1, DECODE_STATE_MT);
    state_release_tree(st);
    ds_arena_free(&st->arena);
    return 0;
}

static decode_state *state_new(lua_State *L)
{
    decode_state *st = lua_newuserdatauv(L, sizeof *st, 1);
    ds_arena_init(&st->arena, DECODE_FIRST_CHUNK);
    st->foreign = NULL;
    st->busy = 0;
    memset(&st->keys, 0, sizeof st->keys);
    luaL_setmetatable(L, DECODE_STATE_MT);
    lua_createtable(L, DS_KEYS_SLOTS, 0);
    lua_setiuservalue(L, -2, 1);
    return st;
}

/* ---- exact path --------------------------------------------------------- */

static int is_object(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        return 0;
    if (!lua_getmetatable(L, idx))
        return 1; /* json_decode gives objects no metatable, arrays list_mt */
    lua_pop(L, 1);
    return 0;
}

static int is_array(lua_State *L, int idx)
{
    int yes;
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, DS_LIST_MT);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

typedef struct {
    const char *name;
    int numbers_string;
} slow_image;

/* lua_pcall'd: (image info, image table) -> unmarshalled table */
static int slow_unmarshall(lua_State *L)
{
    const slow_image *im = lua_touserdata(L, 1);
    ds_path root = {NULL, im->name, strlen(im->name), 0, NULL};
    ds_unmarshall_table(L, 2, &root, im->numbers_string);
    return 1;
}

static int fail_response(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return ds_fail(L, "InvalidResponse", lua_tostring(L, -1));
}

/* The result of json_decode(text at 1) + unmarshall of every record's images. */
static int decode_exact(lua_State *L, int numbers_string)
{
    static const char *const images[] = {"Keys", "NewImage", "OldImage"};
    int body, recs, nsi;
    lua_Integer i, n;

    lua_settop(L, 1);
    lua_pushcfunction(L, ds_json_decode);
    lua_pushvalue(L, 1);
    lua_call(L, 1, LUA_MULTRET);
    if (lua_isnil(L, 2))
        return lua_gettop(L) - 1; /* nil, "InvalidJSON: ...", "InvalidJSON" */
    body = 2;
    if (!is_object(L, body))
        return fail_response(L, "the body is not a JSON object");
    lua_getfield(L, body, "Records");
    recs = lua_gettop(L);
    if (lua_isnil(L, recs))
        return fail_response(L, "the body has no Records");
    if (!is_array(L, recs))
        return fail_response(L, "Records is not an array");
    lua_getfield(L, body, "NextShardIterator");
    nsi = lua_gettop(L);
    if (ds_isnull(L, nsi)) {
        lua_pushnil(L);
        lua_replace(L, nsi);
    } else if (!lua_isnil(L, nsi) && lua_type(L, nsi) != LUA_TSTRING) {
        return fail_response(L, "NextShardIterator is a %s, not a string", luaL_typename(L, nsi));
    }
    n = (lua_Integer)lua_rawlen(L, recs);
    for (i = 1; i <= n; i++) {
        int rec, d, k;
        lua_settop(L, nsi);
        lua_rawgeti(L, recs, i);
        rec = nsi + 1;
        if (!is_object(L, rec))
            return fail_response(L, "record %d is not an object", (int)i);
        lua_getfield(L, rec, "dynamodb");
        d = rec + 1;
        if (lua_isnil(L, d))
            continue;
        if (!is_object(L, d))
            return fail_response(L, "record %d: dynamodb is not an object", (int)i);
        for (k = 0; k < 3; k++) {
            slow_image im;
            int st;
            lua_settop(L, d);
            lua_getfield(L, d, images[k]);
            if (lua_isnil(L, -1))
                continue;
            if (!is_object(L, -1))
                return fail_response(L, "record %d: dynamodb.%s is not an object", (int)i, images[k]);
            im.name = images[k];
            im.numbers_string = numbers_string;
            lua_pushcfunction(L, slow_unmarshall);
            lua_insert(L, -2);
            lua_pushlightuserdata(L, &im);
            lua_insert(L, -2);
            st = lua_pcall(L, 2, 1, 0);
            if (st == LUA_ERRMEM)
                return lua_error(L);
            if (st != LUA_OK)
                return fail_response(L, "%s (record %d)", lua_tostring(L, -1), (int)i);
            lua_setfield(L, d, images[k]);
        }
    }
    lua_settop(L, nsi);
    return 2;
}

/* ---- fast path --------------------------------------------------------- */

typedef struct {
    const cJSON *root;
    int numbers_string;
    int inexact;  /* a number needs its text: use the exact path */
    int mt;       /* stack index of the ds_push_markers values */
    ds_keys *keys;
} fast_job;

static int fast_count(const cJSON *j)
{
    int n = 0;
    for (j = j->child; j != NULL && n < 0x7fffffff; j = j->next)
        n++;
    return n;
}

#define fast_giveup(L) luaL_error((L), "decode_records: fast path gave up")

/* Pushes an envelope value: short strings through the cache (event names,
 * regions, versions repeat), the rest as json_decode would. */
static void fast_value(lua_State *L, const cJSON *v, fast_job *job)
{
    if (cJSON_IsString(v))
        ds_keys_push(L, job->keys, v->valuestring, strlen(v->valuestring));
    else
        ds_json_push_tree(L, v, &job->inexact);
}

static void fast_dynamodb(lua_State *L, const cJSON *d, fast_job *job)
{
    const cJSON *ch;
    lua_createtable(L, 0, fast_count(d));
    for (ch = d->child; ch != NULL; ch = ch->next) {
        const char *k = ch->string;
        size_t klen = strlen(k);
        ds_keys_push(L, job->keys, k, klen);
        if ((klen == 4 && memcmp(k, "Keys", 4) == 0) || (klen == 8 && memcmp(k, "NewImage", 8) == 0) ||
            (klen == 8 && memcmp(k, "OldImage", 8) == 0)) {
            ds_path root = {NULL, k, klen, 0, NULL};
            if (!cJSON_IsObject(ch))
                fast_giveup(L);
            ds_unmarshall_json(L, ch, &root, job->numbers_string, job->mt, job->keys);
        } else {
            fast_value(L, ch, job);
        }
        lua_rawset(L, -3);
    }
}

static void fast_record(lua_State *L, const cJSON *rec, fast_job *job)
{
    const cJSON *ch;
    if (!cJSON_IsObject(rec))
        fast_giveup(L);
    lua_createtable(L, 0, fast_count(rec));
    for (ch = rec->child; ch != NULL; ch = ch->next) {
        const char *k = ch->string;
        size_t klen = strlen(k);
        ds_keys_push(L, job->keys, k, klen);
        if (klen == 8 && memcmp(k, "dynamodb", 8) == 0) {
            if (!cJSON_IsObject(ch))
                fast_giveup(L);
            fast_dynamodb(L, ch, job);
        } else {
            fast_value(L, ch, job);
        }
        lua_rawset(L, -3);
    }
}

/* lua_pcall'd: (job, state) -> records, next_shard_iterator */
static int fast_build(lua_State *L)
{
    fast_job *job = lua_touserdata(L, 1);
    const cJSON *ch, *records = NULL, *nsi = NULL;
    lua_Integer i = 0;

    lua_getiuservalue(L, 2, 1); /* 3: the key cache's strings */
    job->keys->table = 3;
    ds_push_markers(L); /* 4..8 */
    job->mt = 4;
    if (!cJSON_IsObject(job->root))
        fast_giveup(L);
    for (ch = job->root->child; ch != NULL; ch = ch->next) { /* a repeated key: the last wins */
        if (strcmp(ch->string, "Records") == 0)
            records = ch;
        else if (strcmp(ch->string, "NextShardIterator") == 0)
            nsi = ch;
    }
    if (records == NULL || !cJSON_IsArray(records))
        fast_giveup(L);
    lua_createtable(L, fast_count(records), 0);
    for (ch = records->child; ch != NULL; ch = ch->next) {
        fast_record(L, ch, job);
        lua_rawseti(L, -2, ++i);
    }
    lua_pushvalue(L, job->mt); /* list_mt */
    lua_setmetatable(L, -2);
    if (nsi == NULL || cJSON_IsNull(nsi))
        lua_pushnil(L);
    else if (cJSON_IsString(nsi))
        lua_pushstring(L, nsi->valuestring);
    else
        fast_giveup(L);
    return 2;
}

/* Bytes of a string that need no look: all but '"', '\\' and NUL. */
static unsigned char plain_byte[256];


/* A number token outside the images that the double rule reads exactly as
 * json_decode reads its text: valid JSON syntax (cJSON also takes 01, 1.,
 * -.5, which json_decode rejects), at most 15 mantissa digits (so a
 * non-integral text cannot round to an integral double) and an exponent of at
 * most 300 (no underflow to 0). */
static int number_fast_ok(const char *t, size_t len)
{
    size_t i, digits = 0;
    long e = 0;
    if (!ds_json_number_ok(t, len))
        return 0;
    for (i = 0; i < len && t[i] != 'e' && t[i] != 'E'; i++)
        digits += t[i] >= '0' && t[i] <= '9';
    if (digits > 15)
        return 0;
    for (i++; i < len; i++)
        if (t[i] >= '0' && t[i] <= '9' && (e = e * 10 + (t[i] - '0')) > 300)
            return 0;
    return 1;
}

/* 1 when the fast path could differ from json_decode + unmarshall: a NUL
 * byte or the escape \u0000 (cJSON cuts strings there; an escaped backslash
 * before u0000 also counts, then the exact path is only slower), or a number
 * token that number_fast_ok refuses. One pass: strings are skipped with a
 * table lookup per byte. */
static int needs_exact(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            for (p++;;) {
                while (p < end && plain_byte[*p])
                    p++;
                if (p >= end)
                    return 0; /* unterminated: cJSON rejects it */
                if (*p == '"')
                    break;
                if (*p == '\0')
                    return 1;
                if (end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0)
                    return 1;
                p += 2; /* the backslash and the escaped byte */
            }
            p++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            const unsigned char *t = p;
            while (p < end && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' ||
                               *p == 'E'))
                p++;
            if (!number_fast_ok((const char *)t, (size_t)(p - t)))
                return 1;
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return 1; /* not JSON whitespace, though cJSON skips it */
        } else {
            p++;
        }
    }
    return 0;
}

/* core.decode_records(json_text[, opts]) -> records, next_shard_iterator
 *   | nil, "InvalidJSON: ...", "InvalidJSON" | nil, "InvalidResponse: ...", "InvalidResponse" */
static int decode_records(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    int numbers_string = ds_av_numbers_opt(L, 2);
    decode_state *st;
    ds_arena *prev;
    const char *end = NULL;
    cJSON *root;
    fast_job job;
    int rc;

    lua_settop(L, 1);
    if (needs_exact(s, n))
        return decode_exact(L, numbers_string);
    st = lua_touserdata(L, lua_upvalueindex(1));
    if (st->busy) /* called from a finalizer during our own build: own arena */
        st = state_new(L);
    ds_arena_reset(&st->arena);
    ds_arena_hooks_install();
    prev = ds_arena_enter(&st->arena); /* only around the parse: no foreign code runs here */
    root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    ds_arena_leave(prev);
    if (root == NULL)
        return decode_exact(L, numbers_string); /* for json_decode's message */
    if (!ds_arena_owns(&st->arena, root))
        st->foreign = root; /* somebody replaced cJSON's hooks after ours */
    if (end == NULL || ds_json_skip_ws(s, n, (size_t)(end - s)) != n) {
        state_release_tree(st);
        return decode_exact(L, numbers_string);
    }
    job.root = root;
    job.numbers_string = numbers_string;
    job.inexact = 0;
    job.keys = &st->keys;
    st->busy = 1;
    lua_pushcfunction(L, fast_build);
    lua_pushlightuserdata(L, &job);
    if (lua_gettop(L) == 4) /* the temporary state of a nested call */
        lua_pushvalue(L, 2);
    else
        lua_pushvalue(L, lua_upvalueindex(1));
    rc = lua_pcall(L, 2, 2, 0);
    st->busy = 0;
    state_release_tree(st);
    if (rc == LUA_OK && !job.inexact)
        return 2;
    if (rc == LUA_ERRMEM)
        return lua_error(L);
    return decode_exact(L, numbers_string);
}

/* core.decode_arena_stats() -> { reserved = bytes, high_water = bytes, grows = n }
 * of the module's decode arena (tests: repeated pages reuse it). */
static int decode_arena_stats(lua_State *L)
{
    const decode_state *st = lua_touserdata(L, lua_upvalueindex(1));
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)st->arena.reserved);
    lua_setfield(L, -2, "reserved");
    lua_pushinteger(L, (lua_Integer)st->arena.high_water);
    lua_setfield(L, -2, "high_water");
    lua_pushinteger(L, (lua_Integer)st->arena.grows);
    lua_setfield(L, -2, "grows");
    return 1;
}

void ds_open_decode(lua_State *L)
{
    int i;
    for (i = 0; i < 256; i++)
        plain_byte[i] = i != '"' && i != '\\' && i != 0;
    luaL_newmetatable(L, DECODE_STATE_MT);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    state_new(L);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, decode_records, 1);
    lua_setfield(L, -3, "decode_records");
    lua_pushcclosure(L, decode_arena_stats, 1);
    lua_setfield(L, -2, "decode_arena_stats");
}
