/* arena_test.c - csrc/arena.c and its cJSON hooks in one process with other
 * cJSON users. Built and run by spec/core/decode_spec.lua (also under
 * valgrind when it is installed):
 *   cc -std=c99 -pthread -Icsrc spec/core/arena_test.c csrc/arena.c -lcjson
 * Prints "ok" and exits 0, or names the failed check and exits 1. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "arena.h"

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "arena_test: FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static const char *DOC = "{\"Records\":[{\"eventID\":\"1\",\"dynamodb\":{\"Keys\":{\"pk\":{\"S\":\"a\"}},"
                         "\"SizeBytes\":12}},{\"eventID\":\"2\",\"tags\":[\"x\",\"y\",\"z\"],\"n\":null}]}";

/* Every node and string of the tree lies in a. */
static int tree_in(const ds_arena *a, const cJSON *j)
{
    for (; j != NULL; j = j->next) {
        if (!ds_arena_owns(a, j) || (j->string && !ds_arena_owns(a, j->string)) ||
            (j->valuestring && !ds_arena_owns(a, j->valuestring)) || !tree_in(a, j->child))
            return 0;
    }
    return 1;
}

/* A thread that parses into its own arena, as decode_records does. */
static void *decoder(void *arg)
{
    ds_arena *a = arg;
    int i;
    for (i = 0; i < 300; i++) {
        ds_arena *prev;
        cJSON *t;
        ds_arena_reset(a);
        prev = ds_arena_enter(a);
        t = cJSON_Parse(DOC);
        ds_arena_leave(prev);
        CHECK(t != NULL && tree_in(a, t));
        CHECK(strcmp(cJSON_GetObjectItem(t, "Records")->child->child->valuestring, "1") == 0);
    }
    return NULL;
}

/* Another cJSON user at the same time: builds, prints and frees with plain
 * malloc/free; keeps some objects across the decoder's resets. */
static void *other_user(void *arg)
{
    cJSON *keep[16];
    int i;
    (void)arg;
    for (i = 0; i < 16; i++) {
        keep[i] = cJSON_CreateObject();
        cJSON_AddNumberToObject(keep[i], "i", i);
        cJSON_AddStringToObject(keep[i], "s", "kept across the other thread's resets");
    }
    for (i = 0; i < 3000; i++) {
        cJSON *o = cJSON_CreateArray();
        char *txt;
        cJSON_AddItemToArray(o, cJSON_CreateString("hello"));
        cJSON_AddItemToArray(o, cJSON_CreateNumber(i));
        txt = cJSON_PrintUnformatted(o); /* print grows its buffer: allocate/copy/free without realloc */
        CHECK(txt != NULL && strncmp(txt, "[\"hello\",", 9) == 0);
        cJSON_free(txt);
        cJSON_Delete(o);
    }
    for (i = 0; i < 16; i++) {
        char *txt = cJSON_PrintUnformatted(keep[i]);
        char want[96];
        snprintf(want, sizeof want, "{\"i\":%d,\"s\":\"kept across the other thread's resets\"}", i);
        CHECK(txt != NULL && strcmp(txt, want) == 0);
        cJSON_free(txt);
        cJSON_Delete(keep[i]);
    }
    return NULL;
}

int main(void)
{
    ds_arena a, b;
    ds_arena *prev;
    cJSON *before, *t;
    char *txt;
    pthread_t t1, t2;
    int i;

    /* A cJSON object created with the library's default malloc, before our hooks. */
    before = cJSON_Parse("{\"made\":\"before the hooks\"}");
    CHECK(before != NULL);
    CHECK(!ds_arena_hooks_active());
    ds_arena_hooks_install();
    ds_arena_hooks_install(); /* idempotent */
    CHECK(ds_arena_hooks_active());

    /* Outside enter/leave: plain malloc, whatever else this thread does. */
    ds_arena_init(&a, 4096);
    t = cJSON_Parse(DOC);
    CHECK(t != NULL && !ds_arena_owns(&a, t));
    txt = cJSON_PrintUnformatted(t);
    CHECK(txt != NULL && strncmp(txt, "{\"Records\":[", 12) == 0);
    cJSON_free(txt);
    cJSON_Delete(t);

    /* Inside: the tree is in the arena; freeing the object made before the
     * hooks goes to free() (valgrind reports it otherwise), freeing arena
     * memory does nothing. */
    prev = ds_arena_enter(&a);
    CHECK(prev == NULL);
    t = cJSON_Parse(DOC);
    CHECK(t != NULL && tree_in(&a, t));
    cJSON_Delete(before);
    cJSON_Delete(t);
    CHECK(cJSON_Parse("{\"a\":[1,2,") == NULL); /* failed parse: cJSON frees its partial tree */
    ds_arena_leave(prev);
    CHECK(a.used > 0);

    /* Growth by chunks, then one chunk of the total after a reset: a second
     * round of the same size needs no new chunk. */
    ds_arena_reset(&a);
    CHECK(a.used == 0);
    for (i = 0; i < 2000; i++)
        CHECK(ds_arena_alloc(&a, 100) != NULL);
    CHECK(a.grows > 1);
    ds_arena_reset(&a);
    {
        unsigned long grows = a.grows;
        size_t reserved = a.reserved;
        for (i = 0; i < 2000; i++)
            CHECK(ds_arena_alloc(&a, 100) != NULL);
        CHECK(a.grows == grows && a.reserved == reserved);
        for (i = 0; i < 10; i++) {
            ds_arena_reset(&a);
            CHECK(ds_arena_alloc(&a, 200000) != NULL);
        }
        CHECK(a.high_water >= 2000 * 104);
    }
    /* Alignment for cJSON's structs and doubles. */
    for (i = 1; i < 40; i++)
        CHECK(((size_t)ds_arena_alloc(&a, (size_t)i) & 7) == 0);

    /* Two threads: one parsing into its arena, one using cJSON normally. */
    ds_arena_init(&b, 4096);
    CHECK(pthread_create(&t1, NULL, decoder, &b) == 0);
    CHECK(pthread_create(&t2, NULL, other_user, NULL) == 0);
    CHECK(pthread_join(t1, NULL) == 0);
    CHECK(pthread_join(t2, NULL) == 0);
    ds_arena_free(&b);

    /* Somebody else replaces the hooks later: our parse no longer lands in
     * the arena (callers see it with ds_arena_owns and cJSON_Delete the tree). */
    cJSON_InitHooks(NULL);
    CHECK(!ds_arena_hooks_active());
    ds_arena_reset(&a);
    prev = ds_arena_enter(&a);
    t = cJSON_Parse(DOC);
    ds_arena_leave(prev);
    CHECK(t != NULL && !ds_arena_owns(&a, t));
    cJSON_Delete(t);

    ds_arena_free(&a);
    CHECK(a.chunks == NULL && a.reserved == 0);
    printf("ok\n");
    return 0;
}
