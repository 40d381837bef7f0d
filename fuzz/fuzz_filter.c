/* fuzz_filter.c - libFuzzer harness for the Lua-free filter.c (Lambda
 * FilterCriteria), no Lua.
 *
 * Input: up to 3 patterns and a record, separated by NUL bytes
 * ("pattern\0pattern\0record"; without a NUL the input is one pattern and is
 * also matched as a record). Checks, a failed one aborts:
 *   - ds_filter_compile returns a program or NULL with a message that names
 *     the pattern ("pattern N: ...") or the filter count; never reads past a
 *     pattern (each is copied into an exactly sized block).
 *   - ds_filter_match gives 1, 0, or -1 with a message; *end within the text;
 *     the same answer twice (the scratch it reuses keeps nothing between
 *     records); and the same answer again after another record was matched.
 *   - ds_filter_sequence_number after a match: none, or bytes no longer than
 *     the record (each read, for ASan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "fuzz_check.h"

static volatile unsigned char sink; /* where the sequence number's bytes are read to */

static int match_checked(ds_filter *f, const char *text, size_t len)
{
    char err[DS_FILTER_ERRSIZE];
    size_t end = (size_t)-1;
    int k = ds_filter_match(f, text, len, &end, err);
    CHECK(k == -1 || k == 0 || k == 1);
    if (k < 0) {
        CHECK(err[0] != '\0');
    } else {
        const char *seq;
        size_t seq_len, i;
        CHECK(end <= len);
        if (ds_filter_sequence_number(f, &seq, &seq_len)) {
            CHECK(seq_len <= len);
            for (i = 0; i < seq_len; i++)
                sink ^= (unsigned char)seq[i];
        }
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *texts[4];
    const char *ctexts[3];
    size_t lens[4];
    int parts = 0, npatterns, k;
    size_t start = 0, i;
    char err[DS_FILTER_ERRSIZE];
    ds_filter *f;

    for (i = 0; i <= size && parts < 4; i++) {
        if (i == size || data[i] == 0) {
            lens[parts] = i - start;
            texts[parts] = dup_exact(data + start, lens[parts]);
            parts++;
            start = i + 1;
        }
    }
    npatterns = parts == 1 ? 1 : parts - 1;
    for (k = 0; k < npatterns; k++)
        ctexts[k] = texts[k];
    err[0] = '\0';
    f = ds_filter_compile(ctexts, lens, npatterns, DS_FILTER_DEFAULT_FILTERS, err);
    if (f == NULL) {
        CHECK(strncmp(err, "pattern ", 8) == 0);
    } else {
        const char *rec = texts[parts - 1];
        size_t rlen = lens[parts - 1];
        int first = match_checked(f, rec, rlen);
        CHECK(match_checked(f, rec, rlen) == first);
        match_checked(f, texts[0], lens[0]);
        CHECK(match_checked(f, rec, rlen) == first);
        ds_filter_free(f);
    }
    for (k = 0; k < parts; k++)
        free(texts[k]);
    return 0;
}
