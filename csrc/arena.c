/* arena.c - Lua-free bump arena and the cJSON hooks that use it (see arena.h). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "arena.h"

#define ARENA_ALIGN       8u                 /* pointers, doubles, size_t: all cJSON stores */
#define ARENA_KEEP_MAX    ((size_t)64 << 20) /* a bigger chunk is given back when mostly unused */

struct ds_arena_chunk {
    ds_arena_chunk *next;
    size_t size, used;
    /* data follows, aligned by the header size */
};

#define CHUNK_HEADER (((sizeof(ds_arena_chunk) + 15) / 16) * 16)
#define CHUNK_DATA(c) ((unsigned char *)(c) + CHUNK_HEADER)

void ds_arena_init(ds_arena *a, size_t min_chunk)
{
    a->chunks = NULL;
    a->reserved = a->used = a->high_water = 0;
    a->min_chunk = min_chunk < 4096 ? 4096 : min_chunk;
    a->grows = 0;
}

static ds_arena_chunk *chunk_new(size_t size)
{
    ds_arena_chunk *c;
    if (size > SIZE_MAX - CHUNK_HEADER || (c = malloc(CHUNK_HEADER + size)) == NULL)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

/* Slow path of ds_arena_alloc: a new chunk, at least twice the newest. */
static void *arena_grow(ds_arena *a, size_t need)
{
    size_t size = a->chunks ? a->chunks->size : a->min_chunk;
    ds_arena_chunk *c;
    if (a->chunks)
        size = size > SIZE_MAX / 2 ? SIZE_MAX / 2 : size * 2;
    if (size < need)
        size = need;
    if ((c = chunk_new(size)) == NULL)
        return NULL;
    c->next = a->chunks;
    a->chunks = c;
    a->reserved += size;
    a->grows++;
    c->used = need;
    a->used += need;
    return CHUNK_DATA(c);
}

static inline void *arena_alloc(ds_arena *a, size_t n)
{
    ds_arena_chunk *c = a->chunks;
    size_t need;
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    if (c != NULL && c->size - c->used >= need) {
        void *p = CHUNK_DATA(c) + c->used;
        c->used += need;
        a->used += need;
        return p;
    }
    return arena_grow(a, need);
}

void *ds_arena_alloc(ds_arena *a, size_t n)
{
    return arena_alloc(a, n);
}

void ds_arena_free(ds_arena *a)
{
    ds_arena_chunk *c = a->chunks, *next;
    for (; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    a->chunks = NULL;
    a->reserved = a->used = 0;
}

void ds_arena_reset(ds_arena *a)
{
    ds_arena_chunk *c = a->chunks;
    if (a->used > a->high_water)
        a->high_water = a->used;
    if (c != NULL && c->next != NULL) {
        /* Several chunks: one of the total size serves the next round alone. */
        size_t total = a->reserved;
        ds_arena_free(a);
        if ((a->chunks = chunk_new(total)) != NULL) /* on failure: start over lazily */
            a->reserved = total;
    } else if (c != NULL && c->size > ARENA_KEEP_MAX && a->used < c->size / 4) {
        ds_arena_free(a); /* a huge page once; do not keep its memory forever */
        a->high_water = 0;
    } else if (c != NULL) {
        c->used = 0;
    }
    a->used = 0;
}

int ds_arena_owns(const ds_arena *a, const void *p)
{
    const ds_arena_chunk *c;
    uintptr_t x = (uintptr_t)p;
    for (c = a->chunks; c != NULL; c = c->next) {
        uintptr_t lo = (uintptr_t)CHUNK_DATA(c);
        if (x >= lo && x - lo < c->size)
            return 1;
    }
    return 0;
}

/* ---- cJSON hooks ------------------------------------------------------- */

/* This thread's arena during a parse, else NULL. initial-exec: read with one
 * instruction instead of a __tls_get_addr call per allocation (it needs 8
 * bytes of the static TLS surplus glibc keeps for dlopen'd libraries). */
static __thread ds_arena *current __attribute__((tls_model("initial-exec")));
static ds_arena probe_arena;         /* marks a ds_arena_hooks_active probe */
static unsigned char probe_token[ARENA_ALIGN];
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;

static void *hook_malloc(size_t n)
{
    ds_arena *a = current;
    if (a == NULL)
        return malloc(n);
    if (a == &probe_arena)
        return probe_token;
    return arena_alloc(a, n);
}

static void hook_free(void *p)
{
    ds_arena *a = current;
    if (a != NULL && (p == (void *)probe_token || ds_arena_owns(a, p)))
        return; /* released by the arena's reset */
    free(p);
}

static void install(void)
{
    cJSON_Hooks hooks;
    hooks.malloc_fn = hook_malloc;
    hooks.free_fn = hook_free;
    cJSON_InitHooks(&hooks);
    installed = 1;
}

void ds_arena_hooks_install(void)
{
    pthread_once(&install_once, install);
}

int ds_arena_hooks_active(void)
{
    ds_arena *prev = ds_arena_enter(&probe_arena);
    void *p = cJSON_malloc(1);
    ds_arena_leave(prev);
    if (p == (void *)probe_token)
        return 1;
    cJSON_free(p); /* somebody else's allocator answered */
    return 0;
}

ds_arena *ds_arena_enter(ds_arena *a)
{
    ds_arena *prev = current;
    current = a;
    return prev;
}

void ds_arena_leave(ds_arena *prev)
{
    current = prev;
}

/* On dlclose (or exit): cJSON must not keep pointers to our functions. Only
 * when they are still the installed ones; anything they handed out while no
 * arena was current came from malloc, so plain free stays right for it. */
__attribute__((destructor)) static void arena_unload(void)
{
    if (installed && ds_arena_hooks_active())
        cJSON_InitHooks(NULL);
}
