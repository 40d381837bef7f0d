/* cjson_floor.c - the parse floor for the decode benchmark: cJSON parsing one
 * GetRecords page, (1) with the default malloc/free hooks (cJSON_Parse +
 * cJSON_Delete) and (2) with allocation hooks backed by a bump arena that is
 * reset before every parse (no per-node free at all).
 *
 *   bench/out/cjson_floor PAGE.json [runs] [min_seconds_per_run]
 *
 * Prints, per variant:  RESULT <name> <records/s> <MB/s> <records> <bytes>
 * Timing: CPU time of the process, warm-up first, median of `runs` runs each lasting at
 * least min_seconds. Parse only: no Lua values are built.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char *arena_base;
static size_t arena_size, arena_used, arena_fallbacks;

static void *arena_malloc(size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (arena_size - arena_used < need) {
        arena_fallbacks++;          /* never expected: the arena is sized up front */
        return malloc(n);
    }
    void *p = arena_base + arena_used;
    arena_used += need;
    return p;
}

static void arena_free(void *p)
{
    /* Memory inside the arena is released by the reset; fallbacks leak by design
     * (reported, and sized away). */
    (void)p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *text;
static size_t text_len;
static int use_arena;

static int parse_once(void)
{
    if (use_arena) arena_used = 0;
    cJSON *root = cJSON_ParseWithLength(text, text_len);
    if (root == NULL) {
        fprintf(stderr, "cjson_floor: parse error near byte %ld\n",
                (long)(cJSON_GetErrorPtr() - text));
        exit(1);
    }
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "Records"));
    if (!use_arena) cJSON_Delete(root);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void measure(const char *name, int runs, double min_sec)
{
    int nrec = parse_once();
    long iters = 1;
    for (;;) {
        double t0 = now();
        for (long i = 0; i < iters; i++) parse_once();
        if (now() - t0 >= min_sec) break;
        iters *= 2;
    }
    double *rates = calloc((size_t)runs, sizeof *rates);
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        for (long i = 0; i < iters; i++) parse_once();
        rates[r] = (double)iters / (now() - t0);
    }
    qsort(rates, (size_t)runs, sizeof *rates, cmp_double);
    double pages = rates[runs / 2];
    printf("RESULT %s %.0f %.1f %d %zu\n", name, pages * nrec, pages * (double)text_len / 1e6,
           nrec, text_len);
    free(rates);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PAGE.json [runs] [min_seconds]\n", argv[0]);
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    double min_sec = argc > 3 ? atof(argv[3]) : 0.25;
    if (runs < 1) runs = 1;

    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) { perror("read"); return 1; }
    buf[len] = 0;
    fclose(f);
    text = buf;
    text_len = (size_t)len;

    use_arena = 0;
    measure("cjson_malloc", runs, min_sec);

    /* A cJSON tree of a GetRecords page takes a few times the text size. */
    arena_size = text_len * 16 + (1u << 20);
    arena_base = malloc(arena_size);
    if (!arena_base) { perror("arena"); return 1; }
    cJSON_Hooks hooks = { arena_malloc, arena_free };
    cJSON_InitHooks(&hooks);
    use_arena = 1;
    measure("cjson_arena", runs, min_sec);
    if (arena_fallbacks) fprintf(stderr, "cjson_floor: %zu allocations fell back to malloc\n", arena_fallbacks);
    fprintf(stderr, "cjson_floor: arena high-water %zu bytes for %zu bytes of JSON\n", arena_used, text_len);
    cJSON_InitHooks(NULL);
    free(arena_base);
    free(buf);
    return 0;
}
