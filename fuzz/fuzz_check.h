/* fuzz_check.h - what every harness needs: a check that aborts (libFuzzer
 * keeps the input), and copies of the input sized exactly, so that ASan sees
 * any read past its end. */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

static inline char *dup_exact(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n)
        memcpy(p, data, n);
    return p;
}

#endif
