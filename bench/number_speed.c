/* number_speed.c - ns per N text through ds_number_classify_fast (the reader
 * of every N value) and per double through ds_format_double (marshall,
 * json_encode), by digit count; no Lua. A micro-benchmark, not a test:
 *   make -C bench number_speed && bench/out/number_speed [count]
 * Texts are of random doubles in [0, 180) (coordinates, prices, ratios),
 * written as SDKs write them (shortest) and by printf at 8, 16 and 17 digits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "number.h"

static uint64_t state = 42;

static double random_double(void)
{
    state = state * 6364136223846793005u + 1442695040888963407u; /* PCG's LCG step */
    return (double)(state >> 11) / 9007199254740992.0 * 180.0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best of 5 passes over the texts, ns per text. */
static double time_classify(char (*texts)[32], size_t n)
{
    double best = 1e9;
    volatile double sink = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++) {
            ds_number num;
            if (ds_number_classify_fast(texts[i], strlen(texts[i]), &num) == DS_NUM_OK)
                sink += num.kind == DS_NUM_DOUBLE ? num.d : 1;
        }
        double t = (now() - t0) / (double)n * 1e9;
        best = t < best ? t : best;
    }
    return best;
}

static double time_format(const double *v, size_t n)
{
    double best = 1e9;
    volatile size_t sink = 0;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++) {
            char buf[DS_DOUBLE_BUFSIZE];
            sink += ds_format_double(v[i], buf);
        }
        double t = (now() - t0) / (double)n * 1e9;
        best = t < best ? t : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 100000;
    double *v = malloc(n * sizeof *v);
    char(*texts)[32] = malloc(n * sizeof *texts);
    const char *formats[] = {"%.8g", "%.16g", "%.17g"};
    if (v == NULL || texts == NULL)
        return 1;
    for (size_t i = 0; i < n; i++)
        v[i] = random_double();
    for (size_t i = 0; i < n; i++)
        ds_format_double(v[i], texts[i]);
    printf("classify shortest texts (16-17 digits mostly): %8.1f ns\n", time_classify(texts, n));
    for (int f = 0; f < 3; f++) {
        for (size_t i = 0; i < n; i++)
            snprintf(texts[i], sizeof texts[i], formats[f], v[i]);
        printf("classify %-5s texts:                         %8.1f ns\n", formats[f], time_classify(texts, n));
    }
    printf("ds_format_double:                               %8.1f ns\n", time_format(v, n));
    free(v);
    free(texts);
    return 0;
}
