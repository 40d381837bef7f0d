/* filter.h - Lua-free Lambda event filtering (FilterCriteria) for DynamoDB
 * stream records: patterns compiled once into a program, matched against the
 * JSON text of one record. The semantics, where AWS documents them and where
 * we had to decide, are listed at the top of filter.c. */
#ifndef DS_FILTER_H
#define DS_FILTER_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

/* Lambda's limits: 5 filters by default (10 with a quota increase), 4096
 * characters a pattern, at most 1000 combinations of $or alternatives. */
#define DS_FILTER_MAX_FILTERS 10
#define DS_FILTER_DEFAULT_FILTERS 5
#define DS_FILTER_MAX_PATTERN 4096
#define DS_FILTER_MAX_COMBINATIONS 1000
/* Ours (Lambda documents none): levels of objects and arrays in a pattern,
 * and in a record (json_decode takes 1000, and a page adds two). */
#define DS_FILTER_MAX_PATTERN_DEPTH 64
#define DS_FILTER_MAX_RECORD_DEPTH 998

#define DS_FILTER_ERRSIZE 320

typedef struct ds_filter ds_filter;

/* Compiles n patterns (each a JSON text, texts[i] of lens[i] bytes); a record
 * passes when any of them matches. At most max_filters patterns (1 ..
 * DS_FILTER_MAX_FILTERS). Returns the program, or NULL with a message in err
 * naming the pattern, the place in it and the reason ("pattern 2:
 * dynamodb.NewImage.s.S[1]: prefix: the value must be a string"). */
ds_filter *ds_filter_compile(const char *const *texts, const size_t *lens, int n, int max_filters,
                             char err[DS_FILTER_ERRSIZE]);

/* Matches the JSON value that starts at text[0] (after whitespace): 1 when a
 * pattern matches, 0 when none does, -1 with a message in err when the text
 * is not one JSON object (or nests deeper than DS_FILTER_MAX_RECORD_DEPTH, or
 * holds a number beyond a double: what json_decode refuses, it refuses).
 * *end (may be NULL) gets the index just past the value. Uses scratch memory
 * inside f: one call at a time per program. */
int ds_filter_match(ds_filter *f, const char *text, size_t len, size_t *end, char err[DS_FILTER_ERRSIZE]);

/* For a page of records ({"Records": [record, ...], ...}, the last "Records"
 * member): the verdict of each element in order (1 passes, 0 filtered out;
 * an element that is not an object passes, for the caller's own message).
 * *verdicts stays valid until the next call with f. Returns 0, or -1 with a
 * message when the text is not JSON. Used where the page was read some other
 * way, so that it filters exactly as ds_filter_match on each record. */
int ds_filter_match_page(ds_filter *f, const char *text, size_t len, const unsigned char **verdicts, size_t *count,
                         char err[DS_FILTER_ERRSIZE]);

/* The string at dynamodb.SequenceNumber of the record ds_filter_match read
 * last (for ds_filter_match_page: of the page's last record): 1 with *s, *len
 * (good until the next call with f), or 0 when it has none. The page decoder
 * reports it so that the reader can move past a page's filtered-out tail. */
int ds_filter_sequence_number(const ds_filter *f, const char **s, size_t *len);

/* Releases the program; NULL is fine. */
void ds_filter_free(ds_filter *f);

#pragma GCC visibility pop

#endif
