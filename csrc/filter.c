/* filter.c - Lambda FilterCriteria for DynamoDB stream records (see filter.h).
 *
 * How a record is seen: ds_filter_match takes the JSON text of one record,
 * reads it once into a tree of spans kept in the program's scratch (no
 * allocation once warm, strings without escapes point into the text), and
 * walks the compiled patterns over it. The page decoder can so call it on a
 * record's span before it builds any Lua value.
 *
 * Semantics (AWS's documentation and event-ruler; "ours" marks a decision
 * where they are silent, "extension" where we do more than Lambda):
 * - Patterns: object fields AND, the values of a leaf array OR, filters OR.
 *   Duplicate object keys merge path by path; of two leaf arrays at one path
 *   the last wins. A key "a.b" is the path a, b (both in patterns and
 *   records). $or: an array of at least two objects, each ANDed with its
 *   siblings; $or keys never merge (each one more AND).
 * - The record in Lambda's shape: userIdentity.PrincipalId / Type (GetRecords)
 *   are read as principalId / type.
 * - Leaf values at a path: the scalars there, array elements (nested arrays
 *   crushed) included; objects hold none. With none, only exists:false
 *   matches. A pattern object applied to an array matches when it matches one
 *   element (all conditions under it in the same element: array
 *   consistency); an empty array counts as absent (ours, for exists:false).
 * - Strings compare as bytes; equals-ignore-case folds each code point with
 *   the C library's simple case mapping (C.UTF-8; ASCII without it).
 * - Numbers compare as exact decimals of at most 38 significant digits in
 *   DynamoDB's range (1E-130 .. 9.99E+125): wider patterns are refused, wider
 *   record numbers are not numeric (exact numbers and numeric never match
 *   them, anything-but numbers lets them pass). A number in a leaf array
 *   matches equal values in other spellings (300 matches 300.0, as ruler).
 * - Extension: numeric also reads a string under an "N" key or in an "NS"
 *   array (DynamoDB numbers, strings on the wire), where Lambda never matches.
 * - anything-but needs a leaf value and matches every value that is not of
 *   the excluded kind (null, booleans, numbers vs strings...).
 * - wildcard and cidr (EventBridge only) are refused. */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "buffer.h"
#include "filter.h"
#include "json_lex.h"
#include "number.h"

/* ---- growable arrays ---------------------------------------------------- */

/* Room for one more element of size es in *p (count *n, capacity *cap):
 * its index, or -1 on allocation failure (nothing changed). */
static int grow(void **p, size_t *n, size_t *cap, size_t es)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void *q;
        if (nc > (size_t)INT32_MAX / 2 || nc > SIZE_MAX / es)
            return -1;
        q = realloc(*p, nc * es);
        if (q == NULL)
            return -1;
        *p = q;
        *cap = nc;
    }
    return (int)(*n)++;
}

/* ---- JSON text to a tree of spans --------------------------------------- */

enum { J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL };

typedef struct {
    unsigned char kind;
    unsigned char dynamodb_number; /* a string under "N" or in "NS" */
    unsigned char made_from_dots;  /* an object a dotted record key made */
    unsigned char merges;          /* record object: inserts look for a same-named member */
    const char *key;               /* key in the parent object, or NULL */
    size_t keylen;
    const char *s; /* string bytes (decoded) or number text */
    size_t len;
    size_t at;            /* offset of the value in the text, for messages */
    int parent;            /* the object or array holding it, -1 for the root */
    int first, last, next; /* children and next sibling, -1 for none */
} jnode;

/* What a record read needs of the record (ds_filter_match): a tree of the
 * paths the patterns name. A member no path names is checked for syntax and
 * makes no node (a leaf's matchers see no value in an object, so the members
 * of an object at a leaf's path are not needed either); under a dotted key
 * or a `whole` path everything is read. */
typedef struct {
    size_t key, keylen; /* in the filter's pool */
    int first, next;    /* children and next sibling, -1 for none */
    int whole;          /* read all of the value */
} wnode;

enum { WANT_ALL = -1, WANT_NONE = -2 }; /* a read's want, besides a wnode index */

/* The members of the record objects that merge (those with dotted keys) by
 * (object, key), so that an insert finds its same-named member without
 * scanning the object: open addressing over node indices, -1 empty. */
typedef struct {
    int *slot;
    size_t cap, used;
} jindex;

typedef struct {
    jnode *v;
    size_t n, cap;
    ds_buf strings; /* decoded escaped strings; sized once per text, never moves */
    jindex index;
    const char *text;
    size_t len, pos;
    int record; /* read as a record: dotted keys split, same-named objects merged */
    int max_depth;
    const wnode *wants; /* with want >= 0: the paths to read (keys in pool) */
    const char *pool;
    const char *err;
} jtree;

static int jfail(jtree *t, const char *why)
{
    if (t->err == NULL)
        t->err = why;
    return -1;
}

static int jnew(jtree *t, int kind)
{
    int i = grow((void **)&t->v, &t->n, &t->cap, sizeof *t->v);
    if (i < 0)
        return jfail(t, "out of memory");
    memset(&t->v[i], 0, sizeof t->v[i]);
    t->v[i].kind = (unsigned char)kind;
    t->v[i].first = t->v[i].last = t->v[i].next = t->v[i].parent = -1;
    t->v[i].at = t->pos;
    return i;
}

static void jappend(jtree *t, int parent, int child)
{
    jnode *p = &t->v[parent];
    t->v[child].next = -1;
    t->v[child].parent = parent;
    if (p->last < 0)
        p->first = child;
    else
        t->v[p->last].next = child;
    p->last = child;
}

/* The rest of jstring from i, the first byte after start that is not plain:
 * the bytes decoded into t->strings. Out of line: rare, and its registers
 * would make every string's call cost more. */
__attribute__((noinline)) static int jstring_escaped(jtree *t, size_t start, size_t i, const char **s, size_t *len)
{
    const char *x = t->text;
    const unsigned char *u = (const unsigned char *)x;
    char *out = t->strings.data + t->strings.len;
    memcpy(out, x + start, i - start);
    *len = i - start;
    while (i < t->len && x[i] != '"') {
        unsigned cp, lo;
        char c = x[i];
        if ((unsigned char)c < 0x20)
            return jfail(t, "raw control character in a string");
        if (c != '\\') { /* a run of plain bytes */
            size_t run_end = (size_t)(ds_json_plain_end(u + i, u + t->len) - u);
            memcpy(out + *len, x + i, run_end - i);
            *len += run_end - i;
            i = run_end;
            continue;
        }
        if (++i >= t->len)
            break;
        switch (x[i]) {
        case '"': case '\\': case '/': out[(*len)++] = x[i]; i++; continue;
        case 'b': out[(*len)++] = '\b'; i++; continue;
        case 'f': out[(*len)++] = '\f'; i++; continue;
        case 'n': out[(*len)++] = '\n'; i++; continue;
        case 'r': out[(*len)++] = '\r'; i++; continue;
        case 't': out[(*len)++] = '\t'; i++; continue;
        case 'u': break;
        default: return jfail(t, "bad escape in a string");
        }
        if (i + 5 > t->len || !ds_json_hex4(x + i + 1, &cp))
            return jfail(t, "bad \\u escape in a string");
        i += 5;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return jfail(t, "lone surrogate in a string");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 > t->len || x[i] != '\\' || x[i + 1] != 'u' || !ds_json_hex4(x + i + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                return jfail(t, "lone surrogate in a string");
            i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        *len += (size_t)ds_utf8_encode(cp, out + *len);
    }
    if (i >= t->len)
        return jfail(t, "unterminated string");
    *s = out;
    t->strings.len += *len;
    t->pos = i + 1;
    return 0;
}

/* Reads the string at t->pos (its '"'); *s, *len get its bytes. */
static inline int jstring(jtree *t, const char **s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)t->text;
    size_t start = t->pos + 1, i = (size_t)(ds_json_plain_end_inline(u + start, u + t->len) - u);
    if (i < t->len && u[i] == '"') {
        *s = t->text + start;
        *len = i - start;
        t->pos = i + 1;
        return 0;
    }
    return jstring_escaped(t, start, i, s, len);
}

static int jvalue(jtree *t, int depth, int want);

/* 1 when the JSON number s is beyond a double (strtod gives an infinity). */
static int beyond_double(const char *s, size_t n)
{
    char text[DS_NUM_MAX_DIGITS + 32];
    ds_decimal d;
    size_t i;
    for (i = 0; i < n && s[i] != 'e' && s[i] != 'E'; i++)
        ;
    if (i == n && n < 300) /* no exponent and fewer than 300 digits: below 1e300 */
        return 0;
    if (ds_decimal_parse(s, n, &d) != DS_NUM_OK || d.ndig == 0 || d.exp < 308)
        return 0;
    /* the first 38 digits decide: only a rounding at DBL_MAX would need more */
    snprintf(text, sizeof text, "%s%c.%se%ld", d.neg ? "-" : "", d.dig[0], d.dig + 1, d.exp);
    return isinf(strtod(text, NULL));
}

static int key_is(const char *k, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(k, want, n) == 0;
}

/* The last member of object o named k (length n), or -1. */
static int jmember(const jtree *t, int o, const char *k, size_t n)
{
    int c, found = -1;
    for (c = t->v[o].first; c >= 0; c = t->v[c].next)
        if (t->v[c].keylen == n && memcmp(t->v[c].key, k, n) == 0)
            found = c;
    return found;
}

static size_t jhash(int o, const char *k, size_t n)
{
    size_t h = (size_t)14695981039346656037ULL ^ (size_t)o, i;
    for (i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * (size_t)1099511628211ULL;
    return h;
}

/* The slot of member k of object o: holding it, or -1 (an empty slot). The
 * index must have room (cap > 0). */
static int *jindex_slot(jtree *t, int o, const char *k, size_t n)
{
    size_t mask = t->index.cap - 1, i = jhash(o, k, n) & mask;
    for (;; i = (i + 1) & mask) {
        int m = t->index.slot[i];
        if (m < 0 || (t->v[m].parent == o && t->v[m].keylen == n && memcmp(t->v[m].key, k, n) == 0))
            return &t->index.slot[i];
    }
}

/* Indexes member m (its parent and key set) as the one of its name. */
static int jindex_put(jtree *t, int m)
{
    int *slot;
    if ((t->index.used + 1) * 2 > t->index.cap) {
        jindex old = t->index;
        size_t cap = old.cap ? old.cap * 2 : 64, i;
        if (cap > SIZE_MAX / 2 / sizeof(int) || (t->index.slot = malloc(cap * sizeof(int))) == NULL) {
            t->index = old;
            return jfail(t, "out of memory");
        }
        memset(t->index.slot, 0xff, cap * sizeof(int)); /* all -1 */
        t->index.cap = cap;
        for (i = 0; i < old.cap; i++)
            if (old.slot[i] >= 0)
                *jindex_slot(t, t->v[old.slot[i]].parent, t->v[old.slot[i]].key, t->v[old.slot[i]].keylen) =
                    old.slot[i];
        free(old.slot);
    }
    slot = jindex_slot(t, t->v[m].parent, t->v[m].key, t->v[m].keylen);
    if (*slot < 0)
        t->index.used++;
    *slot = m;
    return 0;
}

/* Object o starts merging: its members so far go into the index. */
static int jmerging(jtree *t, int o)
{
    int c;
    if (t->v[o].merges)
        return 0;
    t->v[o].merges = 1;
    for (c = t->v[o].first; c >= 0; c = t->v[c].next)
        if (jindex_put(t, c) < 0)
            return -1;
    return 0;
}

/* Record objects: puts child (its key set) into o. A dotted key becomes
 * nested objects; an object a dotted key made merges with a same-named
 * object; otherwise the later member replaces the earlier. */
static int jinsert(jtree *t, int o, int child)
{
    int old;
    if (!t->v[o].merges) {
        jappend(t, o, child);
        return 0;
    }
    old = t->index.cap ? *jindex_slot(t, o, t->v[child].key, t->v[child].keylen) : -1;
    if (old < 0) {
        jappend(t, o, child);
        return jindex_put(t, child);
    }
    if (t->v[old].kind == J_OBJECT && t->v[child].kind == J_OBJECT &&
        (t->v[old].made_from_dots || t->v[child].made_from_dots)) {
        int c = t->v[child].first;
        if (jmerging(t, old) < 0)
            return -1;
        while (c >= 0) {
            int next = t->v[c].next;
            if (jinsert(t, old, c) < 0)
                return -1;
            c = next;
        }
        return 0;
    }
    { /* replace in place, keeping old's place in the list (and the index) */
        jnode keep = t->v[old];
        int c;
        t->v[old] = t->v[child];
        t->v[old].next = keep.next;
        t->v[old].parent = keep.parent;
        t->v[old].key = keep.key;
        t->v[old].keylen = keep.keylen;
        t->v[old].merges = 0; /* its members are not in the index under old */
        for (c = t->v[old].first; c >= 0; c = t->v[c].next)
            t->v[c].parent = old;
    }
    return 0;
}

/* Record objects: the member k: v, a dotted k split into nested objects. */
static int jput(jtree *t, int o, const char *k, size_t klen, int v)
{
    const char *dot = memchr(k, '.', klen), *last = k + klen;
    size_t lastlen = 0;
    int c;
    while (last > k && last[-1] != '.')
        last--, lastlen++;
    if (t->v[v].kind == J_STRING && key_is(last, lastlen, "N"))
        t->v[v].dynamodb_number = 1;
    if (t->v[v].kind == J_ARRAY && key_is(last, lastlen, "NS"))
        for (c = t->v[v].first; c >= 0; c = t->v[c].next)
            t->v[c].dynamodb_number = t->v[c].kind == J_STRING;
    if (dot != NULL) {
        /* innermost first: "a.b.c": v becomes a: { b: { c: v } } */
        const char *seg_end = k + klen, *p = seg_end;
        while (p > dot) {
            const char *seg = p;
            int w;
            while (seg > k && seg[-1] != '.')
                seg--;
            t->v[v].key = seg;
            t->v[v].keylen = (size_t)(seg_end - seg);
            if ((w = jnew(t, J_OBJECT)) < 0)
                return -1;
            t->v[w].made_from_dots = 1;
            jappend(t, w, v);
            v = w;
            p = seg - 1;
            seg_end = p;
        }
        klen = (size_t)(dot - k);
        if (jmerging(t, o) < 0)
            return -1;
    }
    t->v[v].key = k;
    t->v[v].keylen = klen;
    return jinsert(t, o, v);
}

/* The want of member k of an object read under want w (>= 0). */
static int jwant(const jtree *t, int w, const char *k, size_t n)
{
    const char *dot = memchr(k, '.', n);
    size_t seg = dot != NULL ? (size_t)(dot - k) : n;
    int c;
    for (c = t->wants[w].first; c >= 0; c = t->wants[c].next)
        if (t->wants[c].keylen == seg && memcmp(t->pool + t->wants[c].key, k, seg) == 0)
            return dot != NULL || t->wants[c].whole ? WANT_ALL : c;
    return WANT_NONE;
}

/* The scalar at t->pos that is not a string (a literal or a number), checked
 * and passed; its kind, or -1. */
static int jscalar(jtree *t)
{
    static const struct { const char *word; size_t n; int kind; } literals[] = {
        {"true", 4, J_TRUE}, {"false", 5, J_FALSE}, {"null", 4, J_NULL}};
    const char *x = t->text;
    size_t i = t->pos, k;
    for (k = 0; k < sizeof literals / sizeof literals[0]; k++) {
        if (x[i] != literals[k].word[0])
            continue;
        if (t->len - i < literals[k].n || memcmp(x + i, literals[k].word, literals[k].n) != 0)
            return jfail(t, "unexpected character");
        t->pos += literals[k].n;
        return literals[k].kind;
    }
    while (i < t->len && ((x[i] >= '0' && x[i] <= '9') || x[i] == '.' || x[i] == '-' || x[i] == '+' ||
                          x[i] == 'e' || x[i] == 'E'))
        i++;
    if (i == t->pos || !ds_json_number_ok(x + t->pos, i - t->pos))
        return jfail(t, "bad number or unexpected character");
    if (beyond_double(x + t->pos, i - t->pos))
        return jfail(t, "number out of range"); /* as json_decode: the decoder's paths agree */
    t->pos = i;
    return J_NUMBER;
}

/* Passes the value at t->pos, checking its syntax as jvalue reads it at
 * depth (the same errors at the same bytes), and makes no node: a record
 * member no pattern names. A loop, not a call per value. */
static int jskip(jtree *t, int depth)
{
    unsigned char in_array[DS_FILTER_MAX_RECORD_DEPTH + 1]; /* per open container */
    const char *x = t->text, *unused;
    size_t n;
    int open = 0;
    for (;;) {
        /* a value */
        if (t->pos >= t->len)
            return jfail(t, "unexpected end");
        if (x[t->pos] == '{' || x[t->pos] == '[') {
            int array = x[t->pos] == '[';
            if (depth + open > t->max_depth)
                return jfail(t, "nested too deeply");
            in_array[open++] = (unsigned char)array;
            t->pos = ds_json_skip_ws(x, t->len, t->pos + 1);
            if (t->pos < t->len && x[t->pos] == (array ? ']' : '}')) {
                t->pos++;
                open--;
            } else if (array) {
                continue;
            } else {
                goto key;
            }
        } else if (x[t->pos] == '"') {
            if (jstring(t, &unused, &n) < 0)
                return -1;
        } else if (jscalar(t) < 0) {
            return -1;
        }
        /* after a value: the end, a comma, or a container's close */
        for (;;) {
            if (open == 0)
                return 0;
            t->pos = ds_json_skip_ws(x, t->len, t->pos);
            if (t->pos < t->len && x[t->pos] == ',') {
                t->pos = ds_json_skip_ws(x, t->len, t->pos + 1);
                break;
            }
            if (t->pos < t->len && x[t->pos] == (in_array[open - 1] ? ']' : '}')) {
                t->pos++;
                open--;
                continue;
            }
            return jfail(t, in_array[open - 1] ? "expected ',' or ']'" : "expected ',' or '}'");
        }
        if (in_array[open - 1])
            continue;
    key:
        if (t->pos >= t->len || x[t->pos] != '"')
            return jfail(t, "expected a key");
        if (jstring(t, &unused, &n) < 0)
            return -1;
        t->pos = ds_json_skip_ws(x, t->len, t->pos);
        if (t->pos >= t->len || x[t->pos] != ':')
            return jfail(t, "expected ':'");
        t->pos = ds_json_skip_ws(x, t->len, t->pos + 1);
    }
}

/* An object read under want: a member that no path of want names is passed
 * by jskip. */
static int jobject(jtree *t, int depth, int want)
{
    int o = jnew(t, J_OBJECT);
    if (o < 0)
        return -1;
    t->pos = ds_json_skip_ws(t->text, t->len, t->pos + 1);
    if (t->pos < t->len && t->text[t->pos] == '}') {
        t->pos++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t klen;
        int v, member_want;
        if (t->pos >= t->len || t->text[t->pos] != '"')
            return jfail(t, "expected a key");
        if (jstring(t, &k, &klen) < 0)
            return -1;
        t->pos = ds_json_skip_ws(t->text, t->len, t->pos);
        if (t->pos >= t->len || t->text[t->pos] != ':')
            return jfail(t, "expected ':'");
        t->pos = ds_json_skip_ws(t->text, t->len, t->pos + 1);
        member_want = want >= 0 ? jwant(t, want, k, klen) : want;
        if (member_want == WANT_NONE) {
            if (jskip(t, depth + 1) < 0)
                return -1;
        } else if ((v = jvalue(t, depth + 1, member_want)) < 0) {
            return -1;
        } else if (t->record) {
            if (jput(t, o, k, klen, v) < 0)
                return -1;
        } else {
            t->v[v].key = k;
            t->v[v].keylen = klen;
            jappend(t, o, v);
        }
        t->pos = ds_json_skip_ws(t->text, t->len, t->pos);
        if (t->pos < t->len && t->text[t->pos] == ',') {
            t->pos = ds_json_skip_ws(t->text, t->len, t->pos + 1);
            continue;
        }
        if (t->pos < t->len && t->text[t->pos] == '}') {
            t->pos++;
            return o;
        }
        return jfail(t, "expected ',' or '}'");
    }
}

static int jarray(jtree *t, int depth, int want)
{
    int a = jnew(t, J_ARRAY);
    if (a < 0)
        return -1;
    t->pos = ds_json_skip_ws(t->text, t->len, t->pos + 1);
    if (t->pos < t->len && t->text[t->pos] == ']') {
        t->pos++;
        return a;
    }
    for (;;) {
        int v = jvalue(t, depth + 1, want); /* a pattern reads an array's elements as the array */
        if (v < 0)
            return -1;
        jappend(t, a, v);
        t->pos = ds_json_skip_ws(t->text, t->len, t->pos);
        if (t->pos < t->len && t->text[t->pos] == ',') {
            t->pos = ds_json_skip_ws(t->text, t->len, t->pos + 1);
            continue;
        }
        if (t->pos < t->len && t->text[t->pos] == ']') {
            t->pos++;
            return a;
        }
        return jfail(t, "expected ',' or ']'");
    }
}

static int jvalue(jtree *t, int depth, int want)
{
    const char *x = t->text;
    size_t at = t->pos;
    int v, kind;
    if (t->pos >= t->len)
        return jfail(t, "unexpected end");
    if ((x[t->pos] == '{' || x[t->pos] == '[') && depth > t->max_depth)
        return jfail(t, "nested too deeply");
    switch (x[t->pos]) {
    case '{': return jobject(t, depth, want);
    case '[': return jarray(t, depth, want);
    case '"':
        if ((v = jnew(t, J_STRING)) < 0 || jstring(t, &t->v[v].s, &t->v[v].len) < 0)
            return -1;
        return v;
    default:
        if ((kind = jscalar(t)) < 0 || (v = jnew(t, kind)) < 0)
            return -1;
        if (kind == J_NUMBER) {
            t->v[v].s = x + at;
            t->v[v].len = t->pos - at;
        }
        return v;
    }
}

/* Reads the JSON value at text[0..len) (after whitespace) into t, under
 * want (WANT_ALL, or the root of t->wants); its root is node 0. Returns 0,
 * or -1 with t->err. */
static int jread(jtree *t, const char *text, size_t len, int record, int max_depth, int want)
{
    t->n = 0;
    t->text = text;
    t->len = len;
    t->record = record;
    t->max_depth = max_depth;
    t->err = NULL;
    if (t->index.used > 0) {
        memset(t->index.slot, 0xff, t->index.cap * sizeof(int));
        t->index.used = 0;
    }
    ds_buf_reset(&t->strings);
    if (ds_buf_reserve(&t->strings, len + 1) == NULL)
        return jfail(t, "out of memory");
    t->pos = ds_json_skip_ws(text, len, 0);
    return jvalue(t, 1, want) < 0 ? -1 : 0;
}

static void jfree(jtree *t)
{
    free(t->v);
    free(t->index.slot);
    ds_buf_free(&t->strings);
    memset(t, 0, sizeof *t);
}

/* ---- case folding ------------------------------------------------------- */

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_locale_open(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* When the module is unloaded (lua_close dlcloses it): the locale is the
 * one allocation that outlives every program. */
__attribute__((destructor)) static void utf8_locale_close(void)
{
    if (utf8_locale != (locale_t)0)
        freelocale(utf8_locale);
    utf8_locale = (locale_t)0;
}

static unsigned long fold_cp(unsigned long cp)
{
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    if (utf8_locale == (locale_t)0)
        return cp;
    return (unsigned long)towlower_l(towupper_l((wint_t)cp, utf8_locale), utf8_locale);
}

/* The code point at s[*i] (advancing *i), or -1 for a byte that does not
 * start valid UTF-8 (taken alone). */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    unsigned long cp;
    size_t k, need;
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF)
        need = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, cp = c & 0x07;
    else
        goto bad;
    if (*i + need >= n)
        goto bad;
    for (k = 1; k <= need; k++) {
        if ((s[*i + k] & 0xC0) != 0x80)
            goto bad;
        cp = cp << 6 | (s[*i + k] & 0x3F);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        goto bad;
    *i += need + 1;
    return (long)cp;
bad:
    (*i)++;
    return -1;
}

/* Appends the case-folded form of s to b (invalid bytes kept as they are). */
static int fold(ds_buf *b, const char *s, size_t n)
{
    size_t i = 0;
    pthread_once(&utf8_once, utf8_locale_open);
    while (i < n) {
        size_t at = i;
        long cp = utf8_next((const unsigned char *)s, n, &i);
        char enc[4];
        int k;
        if (cp < 0) {
            if (ds_buf_append(b, s + at, 1) < 0)
                return -1;
            continue;
        }
        k = ds_utf8_encode(fold_cp((unsigned long)cp), enc);
        if (ds_buf_append(b, enc, (size_t)k) < 0)
            return -1;
    }
    return 0;
}

/* ---- decimals ----------------------------------------------------------- */

/* Reads s as a number within DynamoDB's limits: 1, or 0 when it is not one. */
static int decimal_read(const char *s, size_t n, ds_decimal *d)
{
    return ds_decimal_parse(s, n, d) == DS_NUM_OK && ds_decimal_check(d) == DS_NUM_OK;
}

/* <0, 0, >0 as a < b, a == b, a > b (both checked: at most 38 digits). */
static int decimal_cmp(const ds_decimal *a, const ds_decimal *b)
{
    int sa = a->ndig == 0 ? 0 : a->neg ? -1 : 1, sb = b->ndig == 0 ? 0 : b->neg ? -1 : 1, mag;
    if (sa != sb || sa == 0)
        return sa - sb;
    if (a->exp != b->exp)
        mag = a->exp < b->exp ? -1 : 1;
    else
        mag = strcmp(a->dig, b->dig);
    return sa * mag;
}

/* ---- the program ---------------------------------------------------------- */

enum {
    M_STRING, M_NUMBER, M_TRUE, M_FALSE, M_NULL, /* exact values */
    M_PREFIX, M_SUFFIX, M_PREFIX_FOLDED, M_SUFFIX_FOLDED, M_EQUALS_FOLDED,
    M_EXISTS, M_NOT_EXISTS, M_NUMERIC,
    M_BUT_STRINGS, M_BUT_NUMBERS, M_BUT_PREFIXES, M_BUT_SUFFIXES, M_BUT_FOLDED
};

enum { BOUND_NONE, BOUND_OPEN, BOUND_CLOSED };

typedef struct {
    size_t s, len;     /* bytes in the pool (strings; folded for *_FOLDED) */
    ds_decimal number; /* M_NUMBER, M_BUT_NUMBERS */
} pvalue;

typedef struct {
    int kind;
    int first, count; /* values, for the exact and anything-but kinds */
    int lo_kind, hi_kind; /* M_NUMERIC */
    ds_decimal lo, hi;
} pmatcher;

typedef struct {
    int first_matcher, matchers; /* a leaf array (the last one given), or 0 matchers */
    int first_field, first_or;   /* lists of pfield / por, -1 when empty */
} pnode;

typedef struct {
    size_t key, keylen; /* in the pool */
    int child, next;
} pfield;

typedef struct {
    int node, next_alt, next_or; /* next_alt: same $or; next_or: the node's next $or (first alt only) */
} por;

struct ds_filter {
    pnode *nodes;
    size_t nnodes, capnodes;
    pfield *fields;
    size_t nfields, capfields;
    por *ors;
    size_t nors, capors;
    pmatcher *matchers;
    size_t nmatchers, capmatchers;
    pvalue *values;
    size_t nvalues, capvalues;
    ds_buf pool;
    int roots[DS_FILTER_MAX_FILTERS];
    int nroots;
    wnode *wants; /* what a record read needs; 0 is the record */
    size_t nwants, capwants;
    jtree rec;   /* the record being matched */
    ds_buf fold; /* a record string folded */
    ds_buf verdicts; /* ds_filter_match_page's answer */
};

#define POOL(f, off) ((f)->pool.data + (off))

/* ---- compiler ------------------------------------------------------------ */

/* Where the compiler is in a pattern, for messages: a chain on the C stack. */
typedef struct cpath {
    const struct cpath *up;
    const char *key; /* NULL: an index */
    size_t keylen;
    int index;
} cpath;

typedef struct {
    ds_filter *f;
    jtree *t;
    int pattern; /* 1-based */
    char *err;
} compiler;

static size_t path_render(const cpath *p, char *out, size_t room)
{
    size_t n = 0;
    int w;
    if (p == NULL)
        return 0;
    n = path_render(p->up, out, room);
    if (n >= room)
        return n;
    if (p->key != NULL)
        w = snprintf(out + n, room - n, "%s%.*s", n ? "." : "", (int)(p->keylen > 64 ? 64 : p->keylen), p->key);
    else
        w = snprintf(out + n, room - n, "[%d]", p->index);
    return w < 0 ? n : n + (size_t)w;
}

static int cfail(compiler *c, const cpath *p, const char *why)
{
    char where[160];
    if (path_render(p, where, sizeof where) == 0)
        snprintf(where, sizeof where, "top level");
    snprintf(c->err, DS_FILTER_ERRSIZE, "pattern %d: %s: %s", c->pattern, where, why);
    return -1;
}

static int c_oom(compiler *c)
{
    snprintf(c->err, DS_FILTER_ERRSIZE, "pattern %d: out of memory", c->pattern);
    return -1;
}

static int new_node(compiler *c)
{
    int i = grow((void **)&c->f->nodes, &c->f->nnodes, &c->f->capnodes, sizeof(pnode));
    if (i < 0)
        return c_oom(c);
    c->f->nodes[i].first_matcher = c->f->nodes[i].matchers = 0;
    c->f->nodes[i].first_field = c->f->nodes[i].first_or = -1;
    return i;
}

static int pool_add(compiler *c, const char *s, size_t n, size_t *off)
{
    *off = c->f->pool.len;
    return ds_buf_append(&c->f->pool, s, n) < 0 ? c_oom(c) : 0;
}

static int pool_add_folded(compiler *c, const char *s, size_t n, size_t *off)
{
    *off = c->f->pool.len;
    return fold(&c->f->pool, s, n) < 0 ? c_oom(c) : 0;
}

/* The child of node for key segment k, made when missing. */
static int child_for(compiler *c, int node, const char *k, size_t n)
{
    ds_filter *f = c->f;
    int i, fi, child;
    size_t off;
    for (i = f->nodes[node].first_field; i >= 0; i = f->fields[i].next)
        if (f->fields[i].keylen == n && memcmp(POOL(f, f->fields[i].key), k, n) == 0)
            return f->fields[i].child;
    if ((child = new_node(c)) < 0 || pool_add(c, k, n, &off) < 0)
        return -1;
    if ((fi = grow((void **)&f->fields, &f->nfields, &f->capfields, sizeof(pfield))) < 0)
        return c_oom(c);
    f->fields[fi].key = off;
    f->fields[fi].keylen = n;
    f->fields[fi].child = child;
    f->fields[fi].next = f->nodes[node].first_field;
    f->nodes[node].first_field = fi;
    return child;
}

static int new_value(compiler *c)
{
    int i = grow((void **)&c->f->values, &c->f->nvalues, &c->f->capvalues, sizeof(pvalue));
    if (i < 0)
        return c_oom(c);
    memset(&c->f->values[i], 0, sizeof(pvalue));
    return i;
}

static int number_value(compiler *c, const cpath *p, int v, ds_decimal *out)
{
    const jnode *j = &c->t->v[v];
    if (!decimal_read(j->s, j->len, out))
        return cfail(c, p, "numbers must have at most 38 significant digits, within 1E-130 .. 9.99E+125");
    return 0;
}

/* A value of a list (or a single value) of anything-but / exact kinds. */
static int add_value(compiler *c, const cpath *p, int v, int folded)
{
    const jnode *j = &c->t->v[v];
    int i = new_value(c);
    if (i < 0)
        return -1;
    if (j->kind == J_NUMBER)
        return number_value(c, p, v, &c->f->values[i].number);
    if ((folded ? pool_add_folded(c, j->s, j->len, &c->f->values[i].s)
                : pool_add(c, j->s, j->len, &c->f->values[i].s)) < 0)
        return -1;
    c->f->values[i].len = c->f->pool.len - c->f->values[i].s; /* folding may change the length */
    return 0;
}

/* The string of op's value, or of its {"equals-ignore-case": s} form
 * (*folded set) when allow_folded. */
static int op_string(compiler *c, const cpath *p, int v, int allow_folded, int *folded, int *str)
{
    const jnode *j = &c->t->v[v];
    *folded = 0;
    if (j->kind == J_STRING) {
        *str = v;
        return 0;
    }
    if (allow_folded && j->kind == J_OBJECT && j->first >= 0 && j->first == j->last &&
        key_is(c->t->v[j->first].key, c->t->v[j->first].keylen, "equals-ignore-case") &&
        c->t->v[j->first].kind == J_STRING) {
        *folded = 1;
        *str = j->first;
        return 0;
    }
    return cfail(c, p, allow_folded ? "the value must be a string or {\"equals-ignore-case\": string}"
                                    : "the value must be a string");
}

static int numeric_op(const jnode *j)
{
    static const char *const ops[] = {"=", "<", "<=", ">", ">="};
    int i;
    if (j->kind != J_STRING)
        return -1;
    for (i = 0; i < 5; i++)
        if (key_is(j->s, j->len, ops[i]))
            return i;
    return -1;
}

static int compile_numeric(compiler *c, const cpath *p, int v, pmatcher *m)
{
    const jtree *t = c->t;
    int items[5], n = 0, e, op1, op2;
    if (t->v[v].kind != J_ARRAY)
        return cfail(c, p, "the value must be an array like [\">\", 0, \"<=\", 5]");
    for (e = t->v[v].first; e >= 0 && n < 5; e = t->v[e].next)
        items[n++] = e;
    if (n != 2 && n != 4)
        return cfail(c, p, "one comparison or a range of two");
    op1 = numeric_op(&t->v[items[0]]);
    if (op1 < 0 || t->v[items[1]].kind != J_NUMBER)
        return cfail(c, p, "expected an operator (=, <, <=, >, >=) then a number");
    if (number_value(c, p, items[1], op1 >= 3 || op1 == 0 ? &m->lo : &m->hi) < 0)
        return -1;
    m->lo_kind = m->hi_kind = BOUND_NONE;
    if (op1 == 0) {
        m->hi = m->lo;
        m->lo_kind = m->hi_kind = BOUND_CLOSED;
    } else if (op1 >= 3) {
        m->lo_kind = op1 == 3 ? BOUND_OPEN : BOUND_CLOSED;
    } else {
        m->hi_kind = op1 == 1 ? BOUND_OPEN : BOUND_CLOSED;
    }
    if (n == 2)
        return 0;
    op2 = numeric_op(&t->v[items[2]]);
    if (op1 < 3 || (op2 != 1 && op2 != 2) || t->v[items[3]].kind != J_NUMBER)
        return cfail(c, p, "a range is a lower bound (> or >=) then an upper bound (< or <=)");
    if (number_value(c, p, items[3], &m->hi) < 0)
        return -1;
    m->hi_kind = op2 == 1 ? BOUND_OPEN : BOUND_CLOSED;
    if (decimal_cmp(&m->lo, &m->hi) >= 0)
        return cfail(c, p, "the lower bound must be below the upper bound");
    return 0;
}

/* {"anything-but": x} */
static int compile_anything_but(compiler *c, const cpath *p, int v, pmatcher *m)
{
    const jtree *t = c->t;
    const jnode *j = &t->v[v];
    int e, kind, str;
    m->first = (int)c->f->nvalues;
    m->count = 0;
    if (j->kind == J_STRING || j->kind == J_NUMBER) {
        m->kind = j->kind == J_STRING ? M_BUT_STRINGS : M_BUT_NUMBERS;
        m->count = 1;
        return add_value(c, p, v, 0);
    }
    if (j->kind == J_ARRAY) {
        if (j->first < 0)
            return cfail(c, p, "empty arrays are not allowed");
        kind = t->v[j->first].kind;
        m->kind = kind == J_STRING ? M_BUT_STRINGS : M_BUT_NUMBERS;
        for (e = j->first; e >= 0; e = t->v[e].next, m->count++) {
            if ((kind != J_STRING && kind != J_NUMBER) || t->v[e].kind != kind)
                return cfail(c, p, "a list must hold only strings or only numbers");
            if (add_value(c, p, e, 0) < 0)
                return -1;
        }
        return 0;
    }
    if (j->kind != J_OBJECT || j->first < 0 || j->first != j->last)
        return cfail(c, p, "expected a string, a number, a list of them, or an object with one "
                           "of prefix, suffix, equals-ignore-case");
    e = j->first;
    if (key_is(t->v[e].key, t->v[e].keylen, "prefix"))
        m->kind = M_BUT_PREFIXES;
    else if (key_is(t->v[e].key, t->v[e].keylen, "suffix"))
        m->kind = M_BUT_SUFFIXES;
    else if (key_is(t->v[e].key, t->v[e].keylen, "equals-ignore-case"))
        m->kind = M_BUT_FOLDED;
    else
        return cfail(c, p, "only prefix, suffix and equals-ignore-case may be nested in it");
    if (t->v[e].kind == J_STRING) {
        str = e;
        if (m->kind != M_BUT_FOLDED && t->v[str].len == 0)
            return cfail(c, p, "an empty prefix or suffix is not allowed");
        m->count = 1;
        return add_value(c, p, str, m->kind == M_BUT_FOLDED);
    }
    if (t->v[e].kind != J_ARRAY || t->v[e].first < 0)
        return cfail(c, p, "expected a string or a non-empty list of strings");
    for (str = t->v[e].first; str >= 0; str = t->v[str].next, m->count++) {
        if (t->v[str].kind != J_STRING)
            return cfail(c, p, "expected a string or a non-empty list of strings");
        if (m->kind != M_BUT_FOLDED && t->v[str].len == 0)
            return cfail(c, p, "an empty prefix or suffix is not allowed");
        if (add_value(c, p, str, m->kind == M_BUT_FOLDED) < 0)
            return -1;
    }
    return 0;
}

/* One element of a leaf array. */
static int compile_matcher(compiler *c, const cpath *p, int v, pmatcher *m)
{
    const jtree *t = c->t;
    const jnode *j = &t->v[v];
    int op, folded, str;
    memset(m, 0, sizeof *m);
    switch (j->kind) {
    case J_TRUE: m->kind = M_TRUE; return 0;
    case J_FALSE: m->kind = M_FALSE; return 0;
    case J_NULL: m->kind = M_NULL; return 0;
    case J_STRING:
    case J_NUMBER:
        m->kind = j->kind == J_STRING ? M_STRING : M_NUMBER;
        m->first = (int)c->f->nvalues;
        m->count = 1;
        return add_value(c, p, v, 0);
    case J_ARRAY: return cfail(c, p, "a matcher cannot be an array");
    default: break;
    }
    if (j->first < 0 || j->first != j->last)
        return cfail(c, p, "an operator object must have exactly one key");
    op = j->first;
    {
        const char *k = t->v[op].key;
        size_t kl = t->v[op].keylen;
        cpath here = {p, k, kl, 0};
        if (key_is(k, kl, "prefix") || key_is(k, kl, "suffix")) {
            int prefix = key_is(k, kl, "prefix");
            if (op_string(c, &here, op, 1, &folded, &str) < 0)
                return -1;
            m->kind = folded ? (prefix ? M_PREFIX_FOLDED : M_SUFFIX_FOLDED) : (prefix ? M_PREFIX : M_SUFFIX);
            m->first = (int)c->f->nvalues;
            m->count = 1;
            return add_value(c, &here, str, folded);
        }
        if (key_is(k, kl, "equals-ignore-case")) {
            if (op_string(c, &here, op, 0, &folded, &str) < 0)
                return -1;
            m->kind = M_EQUALS_FOLDED;
            m->first = (int)c->f->nvalues;
            m->count = 1;
            return add_value(c, &here, str, 1);
        }
        if (key_is(k, kl, "exists")) {
            if (t->v[op].kind != J_TRUE && t->v[op].kind != J_FALSE)
                return cfail(c, &here, "exists: the value must be true or false");
            m->kind = t->v[op].kind == J_TRUE ? M_EXISTS : M_NOT_EXISTS;
            return 0;
        }
        if (key_is(k, kl, "numeric")) {
            m->kind = M_NUMERIC;
            return compile_numeric(c, &here, op, m);
        }
        if (key_is(k, kl, "anything-but"))
            return compile_anything_but(c, &here, op, m);
        if (key_is(k, kl, "wildcard") || key_is(k, kl, "cidr"))
            return cfail(c, &here, "not supported (an EventBridge operator that Lambda does not document)");
        return cfail(c, &here, "unknown operator (operators are case-sensitive: prefix, suffix, "
                               "equals-ignore-case, anything-but, numeric, exists)");
    }
}

static int compile_leaf(compiler *c, const cpath *p, int arr, int node)
{
    ds_filter *f = c->f;
    int e, i = 0, first = (int)f->nmatchers, count = 0;
    if (c->t->v[arr].first < 0)
        return cfail(c, p, "empty arrays are not allowed");
    for (e = c->t->v[arr].first; e >= 0; e = c->t->v[e].next)
        count++;
    for (e = c->t->v[arr].first; e >= 0; e = c->t->v[e].next) {
        cpath here = {p, NULL, 0, ++i};
        pmatcher m;
        int mi;
        if (compile_matcher(c, &here, e, &m) < 0)
            return -1;
        if ((mi = grow((void **)&f->matchers, &f->nmatchers, &f->capmatchers, sizeof(pmatcher))) < 0)
            return c_oom(c);
        f->matchers[mi] = m;
    }
    f->nodes[node].first_matcher = first; /* the last leaf array at a path wins */
    f->nodes[node].matchers = count;
    return 0;
}

static int is_operator_name(const char *k, size_t n)
{
    static const char *const names[] = {"anything-but", "cidr", "equals-ignore-case", "exists", "numeric",
                                        "prefix", "suffix", "wildcard", "=", "<", "<=", ">", ">="};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (key_is(k, n, names[i]))
            return 1;
    return 0;
}

static int compile_object(compiler *c, const cpath *p, int obj, int node, int depth, int in_or);

static int compile_or(compiler *c, const cpath *p, int arr, int node, int depth)
{
    ds_filter *f = c->f;
    int e, n = 0, i = 0, prev = -1;
    for (e = c->t->v[arr].first; e >= 0; e = c->t->v[e].next)
        n++;
    if (c->t->v[arr].kind != J_ARRAY || n < 2)
        return cfail(c, p, "the value must be an array of at least two objects");
    for (e = c->t->v[arr].first; e >= 0; e = c->t->v[e].next) {
        cpath here = {p, NULL, 0, ++i};
        int alt, oi;
        if (c->t->v[e].kind != J_OBJECT || c->t->v[e].first < 0)
            return cfail(c, &here, "each alternative must be a non-empty object");
        if ((alt = new_node(c)) < 0 || compile_object(c, &here, e, alt, depth + 1, 1) < 0)
            return -1;
        if ((oi = grow((void **)&f->ors, &f->nors, &f->capors, sizeof(por))) < 0)
            return c_oom(c);
        f->ors[oi].node = alt;
        f->ors[oi].next_alt = -1;
        f->ors[oi].next_or = -1;
        if (prev < 0) {
            f->ors[oi].next_or = f->nodes[node].first_or;
            f->nodes[node].first_or = oi;
        } else {
            f->ors[prev].next_alt = oi;
        }
        prev = oi;
    }
    return 0;
}

static int compile_object(compiler *c, const cpath *p, int obj, int node, int depth, int in_or)
{
    const jtree *t = c->t;
    int m;
    for (m = t->v[obj].first; m >= 0; m = t->v[m].next) {
        const char *k = t->v[m].key, *seg = k, *dot;
        size_t kl = t->v[m].keylen;
        cpath here = {p, k, kl, 0};
        int target = node, d = depth + 1;
        if (key_is(k, kl, "$or")) {
            if (compile_or(c, &here, m, node, depth) < 0)
                return -1;
            continue;
        }
        if (in_or && is_operator_name(k, kl))
            return cfail(c, &here, "an operator name cannot be a field name inside $or");
        /* "a.b" is the path a, b */
        while ((dot = memchr(seg, '.', kl - (size_t)(seg - k))) != NULL) {
            if ((target = child_for(c, target, seg, (size_t)(dot - seg))) < 0)
                return -1;
            seg = dot + 1;
            d++;
        }
        if ((target = child_for(c, target, seg, kl - (size_t)(seg - k))) < 0)
            return -1;
        if (d > 2 * DS_FILTER_MAX_PATTERN_DEPTH)
            return cfail(c, &here, "the path is too deep");
        switch (t->v[m].kind) {
        case J_OBJECT:
            if (t->v[m].first < 0)
                return cfail(c, &here, "empty objects are not allowed");
            if (compile_object(c, &here, m, target, d, 0) < 0)
                return -1;
            break;
        case J_ARRAY:
            if (compile_leaf(c, &here, m, target) < 0)
                return -1;
            break;
        default:
            return cfail(c, &here, "the value must be an object or an array");
        }
    }
    return 0;
}

/* How many patterns node stands for once every $or is expanded (saturating). */
static unsigned long combinations(const ds_filter *f, int node)
{
    unsigned long total = 1, alts;
    int i, a;
    for (i = f->nodes[node].first_field; i >= 0; i = f->fields[i].next) {
        total *= combinations(f, f->fields[i].child);
        if (total > DS_FILTER_MAX_COMBINATIONS)
            return DS_FILTER_MAX_COMBINATIONS + 1;
    }
    for (i = f->nodes[node].first_or; i >= 0; i = f->ors[i].next_or) {
        alts = 0;
        for (a = i; a >= 0; a = f->ors[a].next_alt) {
            alts += combinations(f, f->ors[a].node);
            if (alts > DS_FILTER_MAX_COMBINATIONS)
                return DS_FILTER_MAX_COMBINATIONS + 1;
        }
        total *= alts;
        if (total > DS_FILTER_MAX_COMBINATIONS)
            return DS_FILTER_MAX_COMBINATIONS + 1;
    }
    return total;
}

/* A new want node for key (pool offset), with no children; or -1. */
static int want_node(ds_filter *f, size_t key, size_t keylen)
{
    int c = grow((void **)&f->wants, &f->nwants, &f->capwants, sizeof(wnode));
    if (c < 0)
        return -1;
    f->wants[c].key = key;
    f->wants[c].keylen = keylen;
    f->wants[c].first = f->wants[c].next = -1;
    f->wants[c].whole = 0;
    return c;
}

/* The child of want node w for key k (pool offset), made when missing. */
static int want_child(ds_filter *f, int w, size_t key, size_t keylen)
{
    int c;
    for (c = f->wants[w].first; c >= 0; c = f->wants[c].next)
        if (f->wants[c].keylen == keylen && memcmp(POOL(f, f->wants[c].key), POOL(f, key), keylen) == 0)
            return c;
    if ((c = want_node(f, key, keylen)) < 0)
        return -1;
    f->wants[c].next = f->wants[w].first;
    f->wants[w].first = c;
    return c;
}

/* Adds the paths of pattern node pn (its fields and $or alternatives) under
 * want node w. */
static int want_paths(ds_filter *f, int w, int pn)
{
    int i, a;
    for (i = f->nodes[pn].first_field; i >= 0; i = f->fields[i].next) {
        int child = f->fields[i].child, c = want_child(f, w, f->fields[i].key, f->fields[i].keylen);
        if (c < 0 || want_paths(f, c, child) < 0)
            return -1;
    }
    for (i = f->nodes[pn].first_or; i >= 0; i = f->ors[i].next_or)
        for (a = i; a >= 0; a = f->ors[a].next_alt)
            if (want_paths(f, w, f->ors[a].node) < 0)
                return -1;
    return 0;
}

/* The record's paths to read: every pattern's, userIdentity (renamed in
 * place, lambda_shape) and dynamodb.SequenceNumber (ds_filter_sequence_number). */
static int want_build(ds_filter *f)
{
    static const char *const always[][2] = {{"userIdentity", NULL}, {"dynamodb", "SequenceNumber"}};
    size_t i, j, off;
    int root, w;
    if ((root = want_node(f, 0, 0)) < 0)
        return -1;
    for (i = 0; i < (size_t)f->nroots; i++)
        if (want_paths(f, root, f->roots[i]) < 0)
            return -1;
    for (i = 0; i < sizeof always / sizeof always[0]; i++) {
        for (j = 0, w = root; j < 2 && always[i][j] != NULL; j++) {
            off = f->pool.len;
            if (ds_buf_append(&f->pool, always[i][j], strlen(always[i][j])) < 0 ||
                (w = want_child(f, w, off, strlen(always[i][j]))) < 0)
                return -1;
        }
        f->wants[w].whole = 1;
    }
    return 0;
}

static int compile_pattern(compiler *c, const char *text, size_t len)
{
    size_t i, chars = 0;
    int root;
    for (i = 0; i < len; i++)
        chars += ((unsigned char)text[i] & 0xC0) != 0x80;
    if (chars > DS_FILTER_MAX_PATTERN)
        return cfail(c, NULL, "longer than 4096 characters");
    if (jread(c->t, text, len, 0, DS_FILTER_MAX_PATTERN_DEPTH, WANT_ALL) < 0) {
        char why[96];
        snprintf(why, sizeof why, "invalid JSON at byte %zu: %s", c->t->pos + 1, c->t->err);
        return cfail(c, NULL, why);
    }
    if (ds_json_skip_ws(text, len, c->t->pos) != len)
        return cfail(c, NULL, "invalid JSON: text after the pattern");
    if (c->t->v[0].kind != J_OBJECT)
        return cfail(c, NULL, "a pattern must be a JSON object");
    if (c->t->v[0].first < 0)
        return cfail(c, NULL, "empty objects are not allowed");
    if ((root = new_node(c)) < 0 || compile_object(c, NULL, 0, root, 0, 0) < 0)
        return -1;
    if (combinations(c->f, root) > DS_FILTER_MAX_COMBINATIONS)
        return cfail(c, NULL, "$or expands to more than 1000 combinations");
    c->f->roots[c->f->nroots++] = root;
    return 0;
}

ds_filter *ds_filter_compile(const char *const *texts, const size_t *lens, int n, int max_filters,
                             char err[DS_FILTER_ERRSIZE])
{
    ds_filter *f;
    jtree pattern;
    compiler c;
    int i;
    if (max_filters < 1 || max_filters > DS_FILTER_MAX_FILTERS)
        max_filters = DS_FILTER_DEFAULT_FILTERS;
    if (n < 1 || n > max_filters) {
        snprintf(err, DS_FILTER_ERRSIZE, "%d filters: between 1 and %d are allowed", n, max_filters);
        return NULL;
    }
    if ((f = calloc(1, sizeof *f)) == NULL) {
        snprintf(err, DS_FILTER_ERRSIZE, "out of memory");
        return NULL;
    }
    memset(&pattern, 0, sizeof pattern);
    if (ds_buf_append(&f->pool, "", 1) < 0) { /* offsets from 1: the pool is never NULL */
        snprintf(err, DS_FILTER_ERRSIZE, "out of memory");
        ds_filter_free(f);
        return NULL;
    }
    c.f = f;
    c.t = &pattern;
    c.err = err;
    for (i = 0; i < n; i++) {
        c.pattern = i + 1;
        if (compile_pattern(&c, texts[i], lens[i]) < 0) {
            jfree(&pattern);
            ds_filter_free(f);
            return NULL;
        }
    }
    jfree(&pattern);
    if (want_build(f) < 0) {
        snprintf(err, DS_FILTER_ERRSIZE, "out of memory");
        ds_filter_free(f);
        return NULL;
    }
    return f;
}

void ds_filter_free(ds_filter *f)
{
    if (f == NULL)
        return;
    free(f->nodes);
    free(f->fields);
    free(f->ors);
    free(f->matchers);
    free(f->values);
    free(f->wants);
    ds_buf_free(&f->pool);
    jfree(&f->rec);
    ds_buf_free(&f->fold);
    ds_buf_free(&f->verdicts);
    free(f);
}

/* ---- matching ----------------------------------------------------------- */

static int starts(const char *s, size_t n, const char *p, size_t pn)
{
    return pn <= n && memcmp(s, p, pn) == 0;
}

static int ends(const char *s, size_t n, const char *p, size_t pn)
{
    return pn <= n && memcmp(s + n - pn, p, pn) == 0;
}

/* 1 when the record number (or DynamoDB number string) v reads as a decimal. */
static int record_number(const jnode *v, ds_decimal *d)
{
    if (v->kind != J_NUMBER && !(v->kind == J_STRING && v->dynamodb_number))
        return 0;
    return decimal_read(v->s, v->len, d);
}

static int in_bounds(const pmatcher *m, const ds_decimal *d)
{
    int lo = m->lo_kind == BOUND_NONE ? 1 : decimal_cmp(d, &m->lo), hi = m->hi_kind == BOUND_NONE ? -1 : decimal_cmp(d, &m->hi);
    return (m->lo_kind == BOUND_OPEN ? lo > 0 : lo >= 0) && (m->hi_kind == BOUND_OPEN ? hi < 0 : hi <= 0);
}

/* 1 when the leaf value v (a scalar) satisfies one of m's values. */
static int any_value(ds_filter *f, const pmatcher *m, const jnode *v)
{
    int i, folded = m->kind == M_EQUALS_FOLDED || m->kind == M_PREFIX_FOLDED || m->kind == M_SUFFIX_FOLDED ||
                    m->kind == M_BUT_FOLDED;
    const char *s = v->s;
    size_t n = v->len;
    ds_decimal d;
    int is_number = 0;
    if (m->kind == M_NUMBER || m->kind == M_BUT_NUMBERS) {
        if (v->kind != J_NUMBER || !decimal_read(v->s, v->len, &d))
            return 0;
        is_number = 1;
    } else if (v->kind != J_STRING) {
        return 0;
    }
    if (folded) {
        ds_buf_reset(&f->fold);
        if (fold(&f->fold, v->s, v->len) < 0)
            return -1;
        s = f->fold.data ? f->fold.data : "";
        n = f->fold.len;
    }
    for (i = m->first; i < m->first + m->count; i++) {
        const pvalue *pv = &f->values[i];
        const char *ps = POOL(f, pv->s);
        if (is_number) {
            if (decimal_cmp(&d, &pv->number) == 0)
                return 1;
            continue;
        }
        switch (m->kind) {
        case M_PREFIX: case M_PREFIX_FOLDED: case M_BUT_PREFIXES:
            if (starts(s, n, ps, pv->len))
                return 1;
            break;
        case M_SUFFIX: case M_SUFFIX_FOLDED: case M_BUT_SUFFIXES:
            if (ends(s, n, ps, pv->len))
                return 1;
            break;
        default: /* M_STRING, M_BUT_STRINGS, M_EQUALS_FOLDED, M_BUT_FOLDED */
            if (n == pv->len && memcmp(s, ps, n) == 0)
                return 1;
        }
    }
    return 0;
}

/* 1 when the scalar v satisfies m (M_NOT_EXISTS is the caller's), -1 on
 * allocation failure. */
static int matcher_accepts(ds_filter *f, const pmatcher *m, const jnode *v)
{
    ds_decimal d;
    int r;
    switch (m->kind) {
    case M_TRUE: return v->kind == J_TRUE;
    case M_FALSE: return v->kind == J_FALSE;
    case M_NULL: return v->kind == J_NULL;
    case M_EXISTS: return 1;
    case M_NOT_EXISTS: return 0;
    case M_NUMERIC: return record_number(v, &d) && in_bounds(m, &d);
    case M_BUT_STRINGS: case M_BUT_NUMBERS: case M_BUT_PREFIXES: case M_BUT_SUFFIXES: case M_BUT_FOLDED:
        r = any_value(f, m, v);
        return r < 0 ? -1 : !r;
    default: return any_value(f, m, v);
    }
}

/* Over the leaf values under r (r itself, or array elements, nested arrays
 * crushed): 1 when one satisfies a matcher of p, -1 on allocation failure;
 * *seen counts whether any leaf value was there. */
static int leaf_values_match(ds_filter *f, const pnode *p, int r, int *seen)
{
    const jnode *v = &f->rec.v[r];
    int c, i, k;
    if (v->kind == J_OBJECT)
        return 0;
    if (v->kind == J_ARRAY) {
        for (c = v->first; c >= 0; c = f->rec.v[c].next)
            if ((k = leaf_values_match(f, p, c, seen)) != 0)
                return k;
        return 0;
    }
    *seen = 1;
    for (i = p->first_matcher; i < p->first_matcher + p->matchers; i++)
        if ((k = matcher_accepts(f, &f->matchers[i], v)) != 0)
            return k;
    return 0;
}

static int leaf_match(ds_filter *f, const pnode *p, int r)
{
    int seen = 0, k = r < 0 ? 0 : leaf_values_match(f, p, r, &seen), i;
    if (k != 0 || seen)
        return k;
    for (i = p->first_matcher; i < p->first_matcher + p->matchers; i++)
        if (f->matchers[i].kind == M_NOT_EXISTS)
            return 1;
    return 0;
}

static int node_match(ds_filter *f, int pn, int r);

/* The fields and $or of node pn over r, an object, a scalar or absent (-1). */
static int object_match(ds_filter *f, int pn, int r)
{
    const pnode *p = &f->nodes[pn];
    int i, a, k;
    for (i = p->first_field; i >= 0; i = f->fields[i].next) {
        int child = -1;
        if (r >= 0 && f->rec.v[r].kind == J_OBJECT)
            child = jmember(&f->rec, r, POOL(f, f->fields[i].key), f->fields[i].keylen);
        if ((k = node_match(f, f->fields[i].child, child)) != 1)
            return k;
    }
    for (i = p->first_or; i >= 0; i = f->ors[i].next_or) {
        for (a = i; a >= 0; a = f->ors[a].next_alt)
            if ((k = object_match(f, f->ors[a].node, r)) != 0)
                break;
        if (k != 1)
            return k;
    }
    return 1;
}

/* object_match over the elements of array r (nested arrays crushed): 1 when
 * one element matches; *seen notes whether there was any. */
static int elements_match(ds_filter *f, int pn, int r, int *seen)
{
    int c, k;
    for (c = f->rec.v[r].first; c >= 0; c = f->rec.v[c].next) {
        if (f->rec.v[c].kind == J_ARRAY)
            k = elements_match(f, pn, c, seen);
        else
            *seen = 1, k = object_match(f, pn, c);
        if (k != 0)
            return k;
    }
    return 0;
}

/* 1 when pattern node pn matches record node r (-1: absent), 0 when not,
 * -1 on allocation failure. */
static int node_match(ds_filter *f, int pn, int r)
{
    const pnode *p = &f->nodes[pn];
    int k, seen = 0;
    if (p->matchers > 0 && (k = leaf_match(f, p, r)) != 1)
        return k;
    if (p->first_field < 0 && p->first_or < 0)
        return 1;
    if (r < 0 || f->rec.v[r].kind != J_ARRAY)
        return object_match(f, pn, r);
    if ((k = elements_match(f, pn, r, &seen)) != 0 || seen)
        return k;
    return object_match(f, pn, -1); /* an empty array is as absent */
}

/* Lambda's names for GetRecords' userIdentity.PrincipalId / Type. */
static void lambda_shape(jtree *t)
{
    int id = jmember(t, 0, "userIdentity", 12), c;
    if (id < 0 || t->v[id].kind != J_OBJECT)
        return;
    for (c = t->v[id].first; c >= 0; c = t->v[c].next) {
        if (key_is(t->v[c].key, t->v[c].keylen, "PrincipalId"))
            t->v[c].key = "principalId", t->v[c].keylen = 11;
        else if (key_is(t->v[c].key, t->v[c].keylen, "Type"))
            t->v[c].key = "type", t->v[c].keylen = 4;
    }
}

int ds_filter_match(ds_filter *f, const char *text, size_t len, size_t *end, char err[DS_FILTER_ERRSIZE])
{
    int i, k;
    f->rec.wants = f->wants;
    f->rec.pool = f->pool.data;
    if (jread(&f->rec, text, len, 1, DS_FILTER_MAX_RECORD_DEPTH, 0) < 0) {
        snprintf(err, DS_FILTER_ERRSIZE, "invalid JSON record at byte %zu: %s", f->rec.pos + 1, f->rec.err);
        return -1;
    }
    if (end != NULL)
        *end = f->rec.pos;
    if (f->rec.v[0].kind != J_OBJECT) {
        snprintf(err, DS_FILTER_ERRSIZE, "a record must be a JSON object");
        return -1;
    }
    lambda_shape(&f->rec);
    for (i = 0; i < f->nroots; i++) {
        if ((k = object_match(f, f->roots[i], 0)) != 0) {
            if (k < 0)
                snprintf(err, DS_FILTER_ERRSIZE, "out of memory");
            return k;
        }
    }
    return 0;
}

int ds_filter_sequence_number(const ds_filter *f, const char **s, size_t *len)
{
    const jtree *t = &f->rec;
    int d = t->n > 0 && t->v[0].kind == J_OBJECT ? jmember(t, 0, "dynamodb", 8) : -1;
    int q = d >= 0 && t->v[d].kind == J_OBJECT ? jmember(t, d, "SequenceNumber", 14) : -1;
    if (q < 0 || t->v[q].kind != J_STRING)
        return 0;
    *s = t->v[q].s;
    *len = t->v[q].len;
    return 1;
}

int ds_filter_match_page(ds_filter *f, const char *text, size_t len, const unsigned char **verdicts, size_t *count,
                         char err[DS_FILTER_ERRSIZE])
{
    jtree page;
    int recs, e, k = 0;
    memset(&page, 0, sizeof page);
    ds_buf_reset(&f->verdicts);
    *count = 0;
    if (jread(&page, text, len, 0, DS_FILTER_MAX_RECORD_DEPTH, WANT_ALL) < 0) {
        snprintf(err, DS_FILTER_ERRSIZE, "invalid JSON at byte %zu: %s", page.pos + 1, page.err);
        jfree(&page);
        return -1;
    }
    recs = page.v[0].kind == J_OBJECT ? jmember(&page, 0, "Records", 7) : -1;
    for (e = recs >= 0 && page.v[recs].kind == J_ARRAY ? page.v[recs].first : -1; e >= 0; e = page.v[e].next) {
        unsigned char verdict = 1; /* not an object: kept, for the decoder's own message */
        f->rec.n = 0;              /* ... and no sequence number */
        if (page.v[e].kind == J_OBJECT) {
            size_t at = page.v[e].at;
            if ((k = ds_filter_match(f, text + at, len - at, NULL, err)) < 0)
                break;
            verdict = (unsigned char)k;
        }
        if (ds_buf_append(&f->verdicts, &verdict, 1) < 0) {
            snprintf(err, DS_FILTER_ERRSIZE, "out of memory");
            k = -1;
            break;
        }
    }
    jfree(&page);
    if (k < 0)
        return -1;
    *verdicts = (const unsigned char *)f->verdicts.data;
    *count = f->verdicts.len;
    return 0;
}
