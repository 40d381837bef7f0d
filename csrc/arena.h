/* arena.h - Lua-free bump arena, and cJSON allocation hooks that use one.
 *
 * An arena hands out memory by bumping a pointer inside chunks taken from
 * malloc; nothing is freed one by one. ds_arena_reset makes all of it
 * reusable at once (a GetRecords page is parsed, converted, then forgotten),
 * and ds_arena_free returns it to malloc.
 *
 * cJSON's allocation hooks are global to the process, so they are installed
 * once (ds_arena_hooks_install) and stay correct for every other cJSON user:
 *   - the malloc hook serves from the calling thread's current arena when one
 *     is set (ds_arena_enter .. ds_arena_leave), else it calls malloc;
 *   - the free hook ignores pointers inside the thread's current arena and
 *     calls free for anything else.
 * Other threads, and this thread outside enter/leave, see plain malloc/free.
 * Keep enter .. leave tight around cJSON calls that cannot run foreign code
 * (a cJSON_Parse*): anything another cJSON user allocates on this thread in
 * between would land in the arena.
 *
 * cJSON_InitHooks with non-default functions turns off cJSON's internal use
 * of realloc (printing then allocates, copies and frees through the hooks),
 * which is correct, only slower, for other users.
 *
 * If some other code installs its own hooks after us, the arena is simply no
 * longer used: ds_arena_hooks_active() says so, and callers must free their
 * trees with cJSON_Delete (ds_arena_owns(root) tells which case a tree is).
 * When this code is unloaded (dlclose) while its hooks are still installed,
 * it resets cJSON to malloc/free, so cJSON never calls into unmapped code.
 * Replacing hooks while another thread is inside cJSON is a race in cJSON
 * itself and is not supported. */
#ifndef DS_ARENA_H
#define DS_ARENA_H

#include <stddef.h>

typedef struct ds_arena_chunk ds_arena_chunk;

typedef struct ds_arena {
    ds_arena_chunk *chunks; /* newest first; allocation happens in the newest */
    size_t reserved;        /* bytes of all chunks (headers excluded) */
    size_t used;            /* bytes handed out since the last reset */
    size_t high_water;      /* largest `used` seen at a reset */
    size_t min_chunk;       /* size of the first chunk */
    unsigned long grows;    /* chunks added since ds_arena_init */
} ds_arena;

/* An empty arena whose first chunk (allocated on first use) has at least
 * min_chunk bytes. */
void ds_arena_init(ds_arena *a, size_t min_chunk);

/* n bytes aligned for any scalar (8 bytes), or NULL when malloc fails. */
void *ds_arena_alloc(ds_arena *a, size_t n);

/* Makes everything allocated reusable. When the last round needed several
 * chunks they are replaced by one big enough for it, so a workload of the
 * same size reaches a steady state with a single chunk and no malloc. A
 * chunk far larger than recent use (over 64 MiB and 4x the use) is given back. */
void ds_arena_reset(ds_arena *a);

/* Returns all chunks to malloc; the arena is empty (and reusable) after. */
void ds_arena_free(ds_arena *a);

/* 1 when p points into memory of one of a's chunks. */
int ds_arena_owns(const ds_arena *a, const void *p);

/* ---- cJSON hooks ------------------------------------------------------- */

/* Installs the hooks described above, once per process (thread-safe). */
void ds_arena_hooks_install(void);

/* 1 when cJSON currently allocates through our hooks (probes with a tiny
 * allocation), 0 when somebody replaced them or they were never installed. */
int ds_arena_hooks_active(void);

/* Makes a the calling thread's current arena and returns the previous one
 * (normally NULL); ds_arena_leave(prev) restores it. */
ds_arena *ds_arena_enter(ds_arena *a);
void ds_arena_leave(ds_arena *prev);

#endif
