/* The body userdata, see ds_body.h. It owns one block (a ds_buf's): freed by
 * close, __close and __gc, whichever comes first. */
#include <string.h>

#include "ds_body.h"
#include "ds_lua.h"

/* Unused room a body may keep at its end; more is given back. */
#define BODY_MAX_SLACK 65536
/* Blocks of closed bodies kept for the next answers (ds_body_adopt), as
 * ds_http.c keeps its own buffers: at most this many, each at most
 * BODY_POOL_BLOCK_MAX and within the moving high-water mark of recent
 * bodies (ds_keep), all together at most BODY_POOL_TOTAL. A page freed
 * and malloc'd anew for every answer left glibc's heap fragmented (about
 * 3 MB more peak RSS over 20 pages of 1.5 MB than one reused buffer). */
#define BODY_POOL_BLOCKS 16
#define BODY_POOL_BLOCK_MAX (4 * 1024 * 1024)
#define BODY_POOL_TOTAL (16 * 1024 * 1024)
#define BODY_POOL_MT "dynamodb_stream.body_pool"

typedef struct {
    ds_buf blocks[BODY_POOL_BLOCKS];
    size_t n, total;
    ds_keep keep; /* the sizes of the bodies closed last */
    int closed;   /* finalized (lua_close): keeps nothing any more */
} body_pool;

/* The registry key of the state's pool. */
static const char body_pool_key = 0;

/* The pool, or NULL once finalized. [-0, +0] */
static body_pool *pool_get(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &body_pool_key);
    body_pool *p = lua_touserdata(L, -1);
    lua_pop(L, 1); /* anchored by the registry */
    return p == NULL || p->closed ? NULL : p;
}

static int pool_gc(lua_State *L)
{
    body_pool *p = luaL_checkudata(L, 1, BODY_POOL_MT);
    for (size_t i = 0; i < p->n; i++)
        ds_buf_free(&p->blocks[i]);
    p->n = p->total = 0;
    p->closed = 1;
    return 0;
}

/* Frees b's block, or keeps it in the pool for the next answer; frees
 * the pooled blocks that recent bodies no longer need. */
static void pool_put(lua_State *L, ds_buf *b)
{
    body_pool *p = pool_get(L);
    if (p == NULL) {
        ds_buf_free(b);
        return;
    }
    ds_keep_note(&p->keep, b->len);
    for (size_t i = p->n; i-- > 0;)
        if (!ds_keep_fits(&p->keep, p->blocks[i].cap)) {
            p->total -= p->blocks[i].cap;
            ds_buf_free(&p->blocks[i]);
            p->blocks[i] = p->blocks[--p->n];
        }
    if (b->data != NULL && p->n < BODY_POOL_BLOCKS && b->cap <= BODY_POOL_BLOCK_MAX &&
        ds_keep_fits(&p->keep, b->cap) && p->total + b->cap <= BODY_POOL_TOTAL) {
        p->total += b->cap;
        p->blocks[p->n++] = ds_buf_take(b);
        return;
    }
    ds_buf_free(b);
}

size_t ds_body_pool_bytes(lua_State *L)
{
    body_pool *p = pool_get(L);
    return p == NULL ? 0 : p->total;
}

void ds_body_adopt(lua_State *L, ds_buf *b)
{
    body_pool *p;
    if (b->data != NULL || (p = pool_get(L)) == NULL || p->n == 0)
        return;
    *b = p->blocks[--p->n];
    p->total -= b->cap;
    b->len = 0;
}

typedef struct {
    ds_buf buf;        /* data is NULL once closed */
    int pins;          /* ds_body_pin calls not yet unpinned */
    int close_pending; /* close asked for while pinned */
} ds_body;

static ds_body *body_check(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, DS_BODY_MT);
}

/* The bytes of an open body; raises on a closed one. */
static const char *body_open_bytes(lua_State *L, ds_body *b, size_t *len)
{
    if (b->buf.data == NULL || b->close_pending)
        luaL_error(L, "body is closed");
    *len = b->buf.len;
    return b->buf.data;
}

void ds_body_push(lua_State *L, ds_buf *b)
{
    ds_body *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, DS_BODY_MT);
    if (b->data == NULL && ds_buf_reserve(b, 0) == NULL) /* an empty body is open too */
        luaL_error(L, "out of memory");
    ds_buf_shrink(b, BODY_MAX_SLACK); /* a grown buffer: give back its tail */
    u->buf = ds_buf_take(b);          /* nothing raises now: the block has one owner at any time */
}

const char *ds_body_pin(lua_State *L, int idx, size_t *len)
{
    ds_body *b = luaL_testudata(L, idx, DS_BODY_MT);
    if (b == NULL)
        return NULL;
    const char *p = body_open_bytes(L, b, len);
    b->pins++;
    return p;
}

void ds_body_unpin(lua_State *L, int idx)
{
    ds_body *b = luaL_testudata(L, idx, DS_BODY_MT);
    if (b != NULL && b->pins > 0 && --b->pins == 0 && b->close_pending) {
        pool_put(L, &b->buf);
        b->close_pending = 0;
    }
}

/* body:string(), tostring(body) -> the bytes as a Lua string (a copy) */
static int body_string(lua_State *L)
{
    size_t len;
    const char *p = body_open_bytes(L, body_check(L, 1), &len);
    lua_pushlstring(L, p, len);
    return 1;
}

/* #body -> the number of bytes */
static int body_len(lua_State *L)
{
    size_t len;
    body_open_bytes(L, body_check(L, 1), &len);
    lua_pushinteger(L, (lua_Integer)len);
    return 1;
}

/* body:close(): frees the bytes now (or, while a decoder reads them, when
 * it is done); using the body afterwards raises. */
static int body_close(lua_State *L)
{
    ds_body *b = body_check(L, 1);
    if (b->pins > 0)
        b->close_pending = 1;
    else
        pool_put(L, &b->buf);
    return 0;
}

/* __gc: nothing can read the bytes any more, pinned or not. */
static int body_gc(lua_State *L)
{
    ds_buf_free(&body_check(L, 1)->buf);
    return 0;
}

static const luaL_Reg body_methods[] = {
    {"string", body_string},
    {"close", body_close},
    {NULL, NULL},
};

static const luaL_Reg body_meta[] = {
    {"__index", NULL}, /* placeholder: ds_new_class sets it */
    {"__gc", body_gc},
    {"__close", body_close},
    {"__len", body_len},
    {"__tostring", body_string},
    {NULL, NULL},
};

void ds_open_body(lua_State *L)
{
    ds_new_class(L, DS_BODY_MT, body_meta, body_methods);
    ds_new_gc_type(L, BODY_POOL_MT, pool_gc);
    body_pool *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, BODY_POOL_MT);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &body_pool_key);
}
