/* ds_decode.c - core.decode_records: a GetRecords response body or a Lambda
 * DynamoDB event payload to Lua records in one pass (contract in HACKING.md).
 *
 * Fast path: one reading of the text builds the Lua values as it goes (no
 * parse tree, no allocation but Lua's): envelope fields as json_decode gives
 * them, Keys, NewImage and OldImage unmarshalled on the spot, each table
 * created at its final size from values gathered on the Lua stack.
 *
 * Exact path: json_decode + unmarshall of the three images of every record,
 * which defines the result. The fast path hands over to it whenever it meets
 * anything it does not take as it is, so the two always agree: malformed
 * JSON (for json_decode's message), a malformed envelope or AttributeValue
 * (the exact path's message names the first bad record in page order), and
 * rare but valid input whose reading json_decode defines (an AttributeValue
 * object with a repeated key, an L or set given as {}, numbers of more than
 * 38 digits). */
#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "buffer.h"
#include "ds_av.h"
#include "ds_body.h"
#include "ds_decode.h"
#include "ds_filter.h"
#include "ds_json.h"
#include "ds_lua.h"
#include "filter.h"
#include "json_lex.h"
#include "number.h"

#define DECODE_STATE_MT "dynamodb_stream.decode_state"
/* The scratch buffers are kept between calls up to this size: one page with a
 * huge escaped string or B value should not pin its memory. */
#define DECODE_KEEP_SCRATCH ((size_t)1 << 20)

typedef struct {
    ds_buf scratch; /* decoded strings with escapes */
    ds_buf bytes;   /* the bytes of a B value, until pushed */
    int busy;     /* inside a fast build (a finalizer may call us meanwhile) */
    /* Size of the last object read under a key of each hash (hint_slot, the
     * low bits of its key cache slot): the
     * next one under that key is made that size, then filled as it is read.
     * Only a hint: Lua grows a table that gets more, and the node part is a
     * power of two, so a count that moves a little costs nothing. */
    unsigned char map_hint[64];
    lua_Integer fast, exact; /* pages decoded by each path */
    ds_keys keys; /* names seen in earlier pages; its strings are the user value */
} decode_state;

static int state_gc(lua_State *L)
{
    decode_state *st = luaL_checkudata(L, 1, DECODE_STATE_MT);
    ds_buf_free(&st->scratch);
    ds_buf_free(&st->bytes);
    return 0;
}

static decode_state *state_new(lua_State *L)
{
    decode_state *st = lua_newuserdatauv(L, sizeof *st, 1);
    memset(&st->scratch, 0, sizeof st->scratch);
    memset(&st->bytes, 0, sizeof st->bytes);
    st->busy = 0;
    st->fast = st->exact = 0;
    memset(st->map_hint, 0, sizeof st->map_hint);
    memset(&st->keys, 0, sizeof st->keys);
    luaL_setmetatable(L, DECODE_STATE_MT);
    lua_createtable(L, DS_KEYS_SLOTS, 0);
    lua_setiuservalue(L, -2, 1);
    return st;
}

/* ---- exact path --------------------------------------------------------- */

static int is_object(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        return 0;
    if (!lua_getmetatable(L, idx))
        return 1; /* json_decode gives objects no metatable, arrays list_mt */
    lua_pop(L, 1);
    return 0;
}

static int is_array(lua_State *L, int idx)
{
    int yes;
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, DS_LIST_MT);
    yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

typedef struct {
    const char *name;
    int numbers_string;
} slow_image;

/* lua_pcall'd: (image info, image table) -> unmarshalled table */
static int slow_unmarshall(lua_State *L)
{
    const slow_image *im = lua_touserdata(L, 1);
    ds_path root = {NULL, im->name, strlen(im->name), 0, NULL};
    ds_unmarshall_table(L, 2, &root, im->numbers_string);
    return 1;
}

static int fail_response(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return ds_fail(L, "InvalidResponse", lua_tostring(L, -1));
}

/* The sequence number of the record the filter read last when the page had
 * records (see ds_filter_sequence_number), else nil. [-0, +1] */
static void push_last_sequence(lua_State *L, const struct ds_filter *filter, size_t records)
{
    const char *seq;
    size_t len;
    if (records > 0 && ds_filter_sequence_number(filter, &seq, &len))
        lua_pushlstring(L, seq, len);
    else
        lua_pushnil(L);
}

/* The verdicts of filter on the page at 1 (ds_filter_match_page), copied
 * into a userdata pushed on the stack (the filter's copy is only good until
 * its next use), then the page's last sequence number (or nil); or NULL with
 * a message pushed. [-0, +2 | +1] */
static const unsigned char *exact_verdicts(lua_State *L, struct ds_filter *filter, size_t *count)
{
    char err[DS_FILTER_ERRSIZE];
    const unsigned char *v;
    size_t len;
    const char *text = lua_tolstring(L, 1, &len);
    unsigned char *copy;
    if (ds_filter_match_page(filter, text, len, &v, count, err) < 0) {
        lua_pushstring(L, err);
        return NULL;
    }
    copy = lua_newuserdatauv(L, *count ? *count : 1, 0);
    if (*count)
        memcpy(copy, v, *count);
    push_last_sequence(L, filter, *count);
    return copy;
}

/* The result of json_decode(text at 1) + unmarshall of every record's images;
 * with a filter (at 2, else nil), only of the records it passes, plus their
 * number filtered out and the page's last sequence number. */
static int decode_exact(lua_State *L, int numbers_string, struct ds_filter *filter)
{
    static const char *const images[] = {"Keys", "NewImage", "OldImage"};
    int body, recs, nsi, out, last_seq;
    lua_Integer i, n, filtered = 0;
    const unsigned char *verdict = NULL;
    size_t verdicts = 0;

    lua_settop(L, 2);
    lua_pushcfunction(L, ds_json_decode);
    lua_pushvalue(L, 1);
    lua_call(L, 1, LUA_MULTRET);
    if (lua_isnil(L, 3))
        return lua_gettop(L) - 2; /* nil, "InvalidJSON: ...", "InvalidJSON" */
    body = 3;
    lua_settop(L, body);
    if (filter == NULL)
        lua_settop(L, body + 2);
    else if ((verdict = exact_verdicts(L, filter, &verdicts)) == NULL)
        return fail_response(L, "filter: %s", lua_tostring(L, -1));
    last_seq = body + 2; /* the verdicts at body + 1 */
    if (!is_object(L, body))
        return fail_response(L, "the body is not a JSON object");
    lua_getfield(L, body, "Records");
    recs = lua_gettop(L);
    if (lua_isnil(L, recs))
        return fail_response(L, "the body has no Records");
    if (!is_array(L, recs))
        return fail_response(L, "Records is not an array");
    lua_getfield(L, body, "NextShardIterator");
    nsi = lua_gettop(L);
    if (ds_isnull(L, nsi)) {
        lua_pushnil(L);
        lua_replace(L, nsi);
    } else if (!lua_isnil(L, nsi) && lua_type(L, nsi) != LUA_TSTRING) {
        return fail_response(L, "NextShardIterator is a %s, not a string", luaL_typename(L, nsi));
    }
    n = (lua_Integer)lua_rawlen(L, recs);
    if (filter != NULL && (size_t)n != verdicts)
        return fail_response(L, "filter: read %d records, json_decode %d", (int)verdicts, (int)n);
    if (filter != NULL) { /* the records the filter passes */
        lua_createtable(L, (int)n, 0);
        luaL_setmetatable(L, DS_LIST_MT);
    }
    out = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        int rec, d, k;
        lua_settop(L, out);
        if (verdict != NULL && !verdict[i - 1]) {
            filtered++;
            continue;
        }
        lua_rawgeti(L, recs, i);
        rec = out + 1;
        if (!is_object(L, rec))
            return fail_response(L, "record %d is not an object", (int)i);
        if (filter != NULL) {
            lua_pushvalue(L, rec);
            lua_rawseti(L, out, (lua_Integer)lua_rawlen(L, out) + 1);
        }
        lua_getfield(L, rec, "dynamodb");
        d = rec + 1;
        if (lua_isnil(L, d))
            continue;
        if (!is_object(L, d))
            return fail_response(L, "record %d: dynamodb is not an object", (int)i);
        for (k = 0; k < 3; k++) {
            slow_image im;
            int st;
            lua_settop(L, d);
            lua_getfield(L, d, images[k]);
            if (lua_isnil(L, -1))
                continue;
            if (!is_object(L, -1))
                return fail_response(L, "record %d: dynamodb.%s is not an object", (int)i, images[k]);
            im.name = images[k];
            im.numbers_string = numbers_string;
            lua_pushcfunction(L, slow_unmarshall);
            lua_insert(L, -2);
            lua_pushlightuserdata(L, &im);
            lua_insert(L, -2);
            st = lua_pcall(L, 2, 1, 0);
            if (st == LUA_ERRMEM)
                return lua_error(L);
            if (st != LUA_OK)
                return fail_response(L, "%s (record %d)", lua_tostring(L, -1), (int)i);
            lua_setfield(L, d, images[k]);
        }
    }
    lua_pushvalue(L, filter != NULL ? out : recs);
    lua_pushvalue(L, nsi);
    if (filter == NULL)
        return 2;
    lua_pushinteger(L, filtered);
    lua_pushvalue(L, last_seq);
    return 4;
}

/* ---- fast path: the text read once, Lua values built as it is read ------ */

/* Anything the fast path does not take as it is (malformed or unusual JSON, a
 * malformed AttributeValue, a raise inside a helper) ends it; the exact path
 * then gives the result or the message. */
#define scan_giveup(L) luaL_error((L), "decode_records: fast path gave up")

#define SCAN_MAX_DEPTH 64 /* nesting of plain JSON values (the envelope's) */

typedef struct {
    const char *p, *end;
    int numbers_string;
    int mt; /* stack index of the ds_push_markers values */
    ds_keys *keys;
    decode_state *st; /* its scratch holds strings with escapes */
    struct ds_filter *filter; /* or NULL */
    lua_Integer filtered; /* records the filter dropped */
    /* With a filter: the sequence number of the last record it read, copied
     * (the filter's own is good only until its next record); length 0 when
     * that record had none, or one longer than any real one. */
    char last_seq[64];
    size_t last_seq_len;
} scan;

static inline void scan_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* scan_peek past whitespace (or a control byte), kept out of line: AWS
 * sends no whitespace between tokens. */
__attribute__((noinline)) static char scan_peek_ws(scan *s)
{
    scan_ws(s);
    return s->p < s->end ? *s->p : 0;
}

/* Skips whitespace; the next byte, or 0 at the end of the text. */
static inline char scan_peek(scan *s)
{
    if (s->p < s->end && (unsigned char)*s->p > ' ')
        return *s->p;
    return scan_peek_ws(s);
}

/* Skips whitespace; 1 when the next byte is c (one compare when it is
 * right there). */
static inline int scan_at(scan *s, char c)
{
    return (s->p < s->end && *s->p == c) || scan_peek_ws(s) == c;
}

static inline void scan_expect(lua_State *L, scan *s, char c)
{
    if (!scan_at(s, c))
        scan_giveup(L);
    s->p++;
}

/* Reads the opening byte of an object or array: 1 when items follow, 0 when
 * it is empty (its close is read too). */
static inline int scan_open(lua_State *L, scan *s, char open, char close)
{
    scan_expect(L, s, open);
    if (scan_peek(s) != close)
        return 1;
    s->p++;
    return 0;
}

/* After an item of an object or array: 1 when another follows, 0 at close. */
static inline int scan_more(lua_State *L, scan *s, char close)
{
    char c = scan_peek(s);
    s->p++;
    if (c == ',')
        return 1;
    if (c != close)
        scan_giveup(L);
    return 0;
}

static void scratch_put(lua_State *L, decode_state *st, const char *b, size_t n)
{
    if (ds_buf_append(&st->scratch, b, n) != 0)
        scan_giveup(L);
}

/* The rest of a string with escapes, from p (at a backslash); start is after
 * the opening quote. The decoded bytes go to the scratch buffer (\u0000 is a
 * NUL byte, as json_decode reads it). A lone surrogate gives up: cJSON
 * rejects it. */
__attribute__((noinline)) /* rare: keeps scan_string small enough to inline */
static const char *scan_escaped(lua_State *L, scan *s, const unsigned char *start, const unsigned char *p,
                                size_t *len)
{
    const unsigned char *end = (const unsigned char *)s->end;
    ds_buf_reset(&s->st->scratch);
    scratch_put(L, s->st, (const char *)start, (size_t)(p - start));
    for (;;) {
        const unsigned char *run = p;
        char utf8[4];
        unsigned cp = 0;
        int k;
        p = ds_json_plain_end(p, end);
        scratch_put(L, s->st, (const char *)run, (size_t)(p - run));
        if (p >= end || *p < 0x20)
            scan_giveup(L);
        if (*p == '"')
            break;
        if (end - p < 2)
            scan_giveup(L);
        switch (p[1]) {
        case '"': case '\\': case '/': utf8[0] = (char)p[1]; break;
        case 'b': utf8[0] = '\b'; break;
        case 'f': utf8[0] = '\f'; break;
        case 'n': utf8[0] = '\n'; break;
        case 'r': utf8[0] = '\r'; break;
        case 't': utf8[0] = '\t'; break;
        case 'u': break;
        default: scan_giveup(L);
        }
        if (p[1] != 'u') {
            scratch_put(L, s->st, utf8, 1);
            p += 2;
            continue;
        }
        if (end - p < 6 || !ds_json_hex4((const char *)p + 2, &cp) || (cp >= 0xDC00 && cp <= 0xDFFF))
            scan_giveup(L);
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo = 0;
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !ds_json_hex4((const char *)p + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF)
                scan_giveup(L);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        k = ds_utf8_encode(cp, utf8);
        scratch_put(L, s->st, utf8, (size_t)k);
    }
    s->p = (const char *)p + 1;
    *len = s->st->scratch.len;
    return s->st->scratch.data;
}

/* Reads a string; returns its decoded bytes (in the text, or in the scratch
 * buffer until the next string with escapes, which may move it: use them
 * before reading on). */
static inline const char *scan_string(lua_State *L, scan *s, size_t *len)
{
    const unsigned char *start, *p, *end = (const unsigned char *)s->end;
    if (!scan_at(s, '"'))
        scan_giveup(L);
    start = (const unsigned char *)s->p + 1;
    p = ds_json_plain_end_short(start, end);
    if (p < end && *p == '"') {
        *len = (size_t)(p - start);
        s->p = (const char *)p + 1;
        return (const char *)start;
    }
    if (p >= end || *p != '\\')
        scan_giveup(L);
    return scan_escaped(L, s, start, p, len);
}

/* The map_hint slot of the objects read under a key of key cache slot h. */
#define HINT_SLOT(h) ((h) & 63u)

/* Pushes the string str[0..len) that scan_string just read through the key
 * cache; one in the text may be read up to its end. Returns its hint slot. */
static inline unsigned scan_push_key(lua_State *L, scan *s, const char *str, size_t len)
{
    return HINT_SLOT(ds_keys_push(L, s->keys, str, len, str == s->st->scratch.data ? len : (size_t)(s->end - str)));
}

/* Pushes the bytes of the B string str[0..len) (read before: it may be in
 * the scratch buffer). */
static void scan_push_binary(lua_State *L, scan *s, const char *str, size_t len)
{
    unsigned char *room;
    ds_buf_reset(&s->st->bytes);
    room = (unsigned char *)ds_buf_reserve(&s->st->bytes, DS_BASE64_DECODED_MAX(len));
    if (room == NULL)
        scan_giveup(L);
    ds_av_push_binary(L, str, len, room);
}

static int scan_literal(scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

/* Reads true or false. */
static int scan_bool(lua_State *L, scan *s)
{
    char c = scan_peek(s);
    if (c == 't' && scan_literal(s, "true", 4))
        return 1;
    if (c == 'f' && scan_literal(s, "false", 5))
        return 0;
    return scan_giveup(L);
}

/* Reads a number and pushes it as json_decode does: an integral text that
 * fits int64 is an integer, anything else the double strtod gives (as cJSON
 * reads it; beyond a double, json_decode refuses it). The double is read from
 * the decimal's digits and exponent, so the locale's decimal point does not
 * matter. The envelope's numbers (ApproximateCreationDateTime, SizeBytes)
 * take the N values' fast reader: its integer is that int64, its double the
 * nearest one, strtod's. */
static void scan_number(lua_State *L, scan *s)
{
    const char *t = s->p;
    ds_decimal d;
    ds_number num;
    long long i;
    char text[DS_NUM_MAX_DIGITS + 24];
    double x;
    while (s->p < s->end && ((*s->p >= '0' && *s->p <= '9') || *s->p == '-' || *s->p == '+' || *s->p == '.' ||
                             *s->p == 'e' || *s->p == 'E'))
        s->p++;
    /* cJSON (json_decode) reads at most 63 bytes of a number */
    if (s->p - t > 63 || !ds_json_number_ok(t, (size_t)(s->p - t)))
        scan_giveup(L);
    if (ds_number_classify_fast(t, (size_t)(s->p - t), &num) == DS_NUM_OK && num.kind != DS_NUM_DECIMAL) {
        if (num.kind == DS_NUM_INTEGER)
            lua_pushinteger(L, (lua_Integer)num.i);
        else
            lua_pushnumber(L, (lua_Number)num.d);
        return;
    }
    if (ds_decimal_parse(t, (size_t)(s->p - t), &d) != DS_NUM_OK)
        scan_giveup(L);
    if (ds_decimal_to_int64(&d, &i)) {
        lua_pushinteger(L, (lua_Integer)i);
        return;
    }
    if (d.ndig > DS_NUM_MAX_DIGITS || d.exp > 99999 || d.exp < -99999)
        scan_giveup(L); /* digits beyond those kept, or an exponent out of int range */
    snprintf(text, sizeof text, "%s%se%ld", d.neg ? "-" : "", d.dig, d.exp - (d.ndig - 1));
    x = strtod(text, NULL);
    if (!isfinite(x))
        scan_giveup(L);
    lua_pushnumber(L, (lua_Number)x);
}

/* The map_hint slot of the objects read under key k[0..n) (scan_push_key's
 * answer, without the push). */
static unsigned hint_slot(const char *k, size_t n)
{
    uint64_t w[3];
    if (n == 0 || n > DS_KEYS_MAXLEN)
        return 0;
    ds_keys_words(k, n, n, w);
    return HINT_SLOT(ds_keys_slot(w, n));
}

/* Pushes a new table for an object read under hint slot `slot`. */
static void scan_new_map(lua_State *L, const scan *s, unsigned slot)
{
    lua_createtable(L, 0, s->st->map_hint[slot]);
}

/* A hint passes 64 fields (up to 255) only when the object before was as
 * big: a key whose objects alternate between huge and small ones must not
 * make every small one huge, but items of 100+ attributes, one after the
 * other, are made at their size instead of growing from 64. */
static void scan_note_size(const scan *s, unsigned slot, int n)
{
    unsigned char *hint = &s->st->map_hint[slot];
    *hint = (unsigned char)(n <= 64 ? n : *hint < 64 ? 64 : n > 255 ? 255 : n);
}

/* v1 .. vn above base -> one table of them in their place. */
static void scan_make_list(lua_State *L, int base, int n)
{
    int i;
    lua_createtable(L, n, 0);
    lua_insert(L, base + 1);
    for (i = n; i > 0; i--)
        lua_rawseti(L, base + 1, i);
}

/* v1 .. vn above base -> one JSON array of them (list_mt), as json_decode
 * gives it. */
static void scan_make_array(lua_State *L, const scan *s, int base, int n)
{
    scan_make_list(L, base, n);
    lua_pushvalue(L, s->mt + DS_MARK_LIST);
    lua_setmetatable(L, -2);
}

static void scan_room(lua_State *L)
{
    if (!lua_checkstack(L, 8))
        scan_giveup(L);
}

/* Before item n of an L or set: room for it and the 7 after it (each on the
 * stack until the list is made), with what pushing one needs besides. */
static inline void scan_list_room(lua_State *L, int n)
{
    if (n % 8 == 0 && !lua_checkstack(L, 16))
        scan_giveup(L);
}

/* Reads the value of field k of an object it knows (pushing it) and returns
 * 1, or returns 0: the value is a plain one. */
typedef int (*scan_field)(lua_State *L, scan *s, const char *k, size_t klen);

static void scan_object(lua_State *L, scan *s, int depth, scan_field field, unsigned slot);

/* Pushes a plain JSON value as json_decode gives it. */
static void scan_value(lua_State *L, scan *s, int depth)
{
    const char *str;
    size_t len;
    int base = lua_gettop(L), n = 0;
    switch (scan_peek(s)) {
    case '"':
        str = scan_string(L, s, &len);
        scan_push_key(L, s, str, len); /* event names, regions, versions repeat */
        return;
    case 't':
    case 'f':
        lua_pushboolean(L, scan_bool(L, s));
        return;
    case 'n':
        if (!scan_literal(s, "null", 4))
            scan_giveup(L);
        ds_pushnull(L);
        return;
    case '{':
    case '[':
        break;
    default:
        scan_number(L, s);
        return;
    }
    if (depth >= SCAN_MAX_DEPTH)
        scan_giveup(L);
    if (*s->p == '{') {
        scan_object(L, s, depth + 1, NULL, 0);
        return;
    }
    if (scan_open(L, s, '[', ']')) {
        do {
            scan_room(L);
            scan_value(L, s, depth + 1);
            n++;
        } while (scan_more(L, s, ']'));
    }
    scan_make_array(L, s, base, n);
}

static void scan_av_other(lua_State *L, scan *s, int level, int *binary, unsigned slot, const char *tag,
                          size_t tlen);

/* Pushes the value of one AttributeValue object, {"<type>": value}. level
 * counts the M and L values around it. S and N, most AttributeValues, are
 * tested first and read here; the other types in scan_av_other. */
static void scan_av(lua_State *L, scan *s, int level, int *binary, unsigned slot)
{
    const char *tag, *str;
    size_t tlen, len;
    if (s->end - s->p >= 5 && s->p[0] == '{' && s->p[1] == '"' && s->p[3] == '"' && s->p[4] == ':') {
        /* {"S": as AWS sends it; a tag byte that is not a type letter gives up below */
        tag = s->p + 2;
        tlen = 1;
        s->p += 5;
    } else {
        scan_expect(L, s, '{');
        tag = scan_string(L, s, &tlen);
        scan_expect(L, s, ':');
    }
    if (tlen == 1 && tag[0] == 'S') {
        str = scan_string(L, s, &len);
        lua_pushlstring(L, str, len);
    } else if (tlen == 1 && tag[0] == 'N') {
        str = scan_string(L, s, &len);
        ds_av_push_number(L, str, len, s->numbers_string, s->mt);
    } else {
        scan_av_other(L, s, level, binary, slot, tag, tlen);
    }
    scan_expect(L, s, '}'); /* exactly one type key */
}

/* An M or item map read under hint slot `slot`: the table, then bin (the
 * __binary table, nil until a B comes) above it, the __binary bookkeeping as
 * unmarshall keeps it (a repeated key drops an earlier B). */
static void scan_av_map(lua_State *L, scan *s, int level, unsigned slot)
{
    int t, bin, n = 0;
    uint64_t bin_slots = 0; /* bit i: a B came under a key of hint slot i */
    const char *str;
    size_t len;
    scan_room(L); /* enough for the loop too: each pair is set before the next */
    scan_new_map(L, s, slot);
    t = lua_gettop(L);
    bin = t + 1;
    lua_pushnil(L);
    if (scan_open(L, s, '{', '}')) {
        do {
            int isbin = 0;
            unsigned field_slot;
            str = scan_string(L, s, &len);
            field_slot = scan_push_key(L, s, str, len);
            scan_expect(L, s, ':');
            scan_av(L, s, level, &isbin, field_slot);
            /* a key that may have had a B before (same slot) is set again
             * in bin, so that a repeated key drops an earlier B */
            if (isbin || (bin_slots >> field_slot & 1)) {
                if (bin_slots == 0) {
                    lua_newtable(L);
                    lua_replace(L, bin);
                }
                if (isbin)
                    bin_slots |= (uint64_t)1 << field_slot;
                lua_pushvalue(L, -2);
                if (isbin)
                    lua_pushvalue(L, -2);
                else
                    lua_pushnil(L);
                lua_rawset(L, bin);
            }
            lua_rawset(L, t);
            n++;
        } while (scan_more(L, s, '}'));
    }
    scan_note_size(s, slot, n);
    if (bin_slots == 0)
        lua_settop(L, t);
    else
        ds_av_finish(L, t, bin, 0, s->mt, s->keys);
}

/* An L value: items from base + 3, B items noted in bin by index; its item
 * maps take hint slot `slot`. */
static void scan_av_list(lua_State *L, scan *s, int level, unsigned slot)
{
    int base = lua_gettop(L), bin = base + 2, n = 0;
    scan_room(L);
    lua_pushnil(L);
    lua_pushnil(L);
    if (scan_open(L, s, '[', ']')) {
        do {
            int isbin = 0;
            scan_list_room(L, n);
            scan_av(L, s, level, &isbin, slot);
            n++;
            if (isbin) {
                if (lua_isnil(L, bin)) {
                    lua_newtable(L);
                    lua_replace(L, bin);
                }
                lua_pushvalue(L, -1);
                lua_rawseti(L, bin, n);
            }
        } while (scan_more(L, s, ']'));
    }
    scan_make_list(L, bin, n);
    lua_replace(L, base + 1);
    if (lua_isnil(L, bin)) {
        lua_settop(L, base + 1);
        lua_pushvalue(L, s->mt + DS_MARK_LIST);
        lua_setmetatable(L, -2);
    } else {
        ds_av_finish(L, base + 1, bin, 1, s->mt, s->keys);
    }
}

/* An SS, NS or BS value. */
static void scan_av_set(lua_State *L, scan *s, char kind)
{
    int base = lua_gettop(L), n = 0;
    const char *str;
    size_t len;
    if (scan_open(L, s, '[', ']')) {
        do {
            scan_list_room(L, n);
            str = scan_string(L, s, &len);
            if (kind == 'N')
                ds_av_push_number(L, str, len, s->numbers_string, s->mt);
            else if (kind == 'B')
                scan_push_binary(L, s, str, len);
            else
                lua_pushlstring(L, str, len);
            n++;
        } while (scan_more(L, s, ']'));
    }
    scan_make_list(L, base, n);
    lua_pushvalue(L, s->mt + (kind == 'N' ? DS_MARK_NS : kind == 'B' ? DS_MARK_BS : DS_MARK_SS));
    lua_setmetatable(L, -2);
}

/* The value of an AttributeValue of type tag[0..tlen), not S or N (see
 * scan_av): gives up on an unknown type. */
static void scan_av_other(lua_State *L, scan *s, int level, int *binary, unsigned slot, const char *tag,
                          size_t tlen)
{
    const char *str;
    size_t len;
    if (tlen == 1 && tag[0] == 'B') {
        str = scan_string(L, s, &len);
        scan_push_binary(L, s, str, len);
        *binary = 1;
    } else if (tlen == 1 && (tag[0] == 'M' || tag[0] == 'L')) {
        if (level + 1 > DS_MAX_DEPTH)
            scan_giveup(L);
        if (tag[0] == 'M')
            scan_av_map(L, s, level + 1, slot);
        else
            scan_av_list(L, s, level + 1, slot ^ 1u);
    } else if (tlen == 2 && tag[1] == 'S' && (tag[0] == 'S' || tag[0] == 'N' || tag[0] == 'B')) {
        scan_av_set(L, s, tag[0]);
    } else if (tlen == 4 && memcmp(tag, "BOOL", 4) == 0) {
        lua_pushboolean(L, scan_bool(L, s));
    } else if (tlen == 4 && memcmp(tag, "NULL", 4) == 0) {
        if (!scan_bool(L, s))
            scan_giveup(L);
        ds_pushnull(L);
    } else {
        scan_giveup(L);
    }
}

static int key_is(const char *k, size_t n, const char *want, size_t wn)
{
    return n == wn && memcmp(k, want, n) == 0;
}

/* An object read under hint slot `slot`: its keys through the key cache,
 * its values plain ones unless field reads them; a repeated key keeps its
 * last value. */
static void scan_object(lua_State *L, scan *s, int depth, scan_field field, unsigned slot)
{
    int t, n = 0;
    const char *k;
    size_t klen;
    scan_room(L); /* enough for the loop too: each pair is set before the next */
    scan_new_map(L, s, slot);
    t = lua_gettop(L);
    if (scan_open(L, s, '{', '}')) {
        do {
            k = scan_string(L, s, &klen);
            scan_push_key(L, s, k, klen);
            scan_expect(L, s, ':');
            if (field == NULL || !field(L, s, k, klen))
                scan_value(L, s, depth);
            lua_rawset(L, t);
            n++;
        } while (scan_more(L, s, '}'));
    }
    scan_note_size(s, slot, n);
}

/* The record's "dynamodb" object: Keys, NewImage and OldImage unmarshalled;
 * a SequenceNumber string, new in every record, pushed past the key cache
 * (where it would only take a slot from a name that repeats). */
static int dynamodb_field(lua_State *L, scan *s, const char *k, size_t klen)
{
    if (key_is(k, klen, "SequenceNumber", 14) && scan_peek(s) == '"') {
        size_t len;
        const char *str = scan_string(L, s, &len);
        lua_pushlstring(L, str, len);
        return 1;
    }
    if (!key_is(k, klen, "NewImage", 8) && !key_is(k, klen, "OldImage", 8) && !key_is(k, klen, "Keys", 4))
        return 0;
    scan_av_map(L, s, 0, hint_slot(k, klen));
    return 1;
}

static int record_field(lua_State *L, scan *s, const char *k, size_t klen)
{
    if (!key_is(k, klen, "dynamodb", 8))
        return 0;
    scan_object(L, s, 2, dynamodb_field, hint_slot(k, klen));
    return 1;
}

/* Skips a plain JSON value, checking its syntax. */
static void scan_skip(lua_State *L, scan *s, int depth)
{
    char c = scan_peek(s);
    size_t len;
    if (c == '"') {
        scan_string(L, s, &len);
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (depth >= SCAN_MAX_DEPTH)
            scan_giveup(L);
        if (!scan_open(L, s, c, close))
            return;
        do {
            if (c == '{') {
                scan_string(L, s, &len);
                scan_expect(L, s, ':');
            }
            scan_skip(L, s, depth + 1);
        } while (scan_more(L, s, close));
    } else {
        scan_value(L, s, depth); /* a literal or a number: cheap to build and drop */
        lua_pop(L, 1);
    }
}

/* Runs the filter on the record at s->p: 1 when it passes (s->p unmoved),
 * 0 when it does not (s->p past it: no Lua value of it is ever made); keeps
 * the record's sequence number. A record the filter cannot read goes to the
 * exact path, which fails or filters it the same way. */
static int scan_filter(lua_State *L, scan *s)
{
    char err[DS_FILTER_ERRSIZE];
    const char *seq;
    size_t end, seq_len;
    int k;
    scan_ws(s);
    k = ds_filter_match(s->filter, s->p, (size_t)(s->end - s->p), &end, err);
    if (k < 0)
        scan_giveup(L);
    s->last_seq_len = 0;
    if (ds_filter_sequence_number(s->filter, &seq, &seq_len) && seq_len <= sizeof s->last_seq) {
        memcpy(s->last_seq, seq, seq_len);
        s->last_seq_len = seq_len;
    }
    if (k == 0) {
        s->p += end;
        s->filtered++;
    }
    return k;
}

/* lua_pcall'd: (scan, state) -> records, next_shard_iterator */
static int scan_build(lua_State *L)
{
    scan *s = lua_touserdata(L, 1);
    const char *k;
    size_t klen;
    int have_records = 0;

    lua_getiuservalue(L, 2, 1); /* 3: the key cache's strings */
    s->keys->table = 3;
    ds_push_markers(L); /* 4..8 */
    s->mt = 4;
    lua_pushnil(L); /* 9: Records */
    lua_pushnil(L); /* 10: NextShardIterator */
    if (scan_open(L, s, '{', '}')) {
        do { /* a repeated key: the last wins */
            k = scan_string(L, s, &klen);
            scan_expect(L, s, ':');
            if (key_is(k, klen, "Records", 7)) {
                /* k may be in the scratch buffer, which the records' strings
                 * move: its slot is taken now, not per record */
                unsigned slot = hint_slot(k, klen);
                int base = lua_gettop(L), n = 0;
                if (scan_open(L, s, '[', ']')) {
                    do {
                        scan_room(L);
                        if (s->filter != NULL && !scan_filter(L, s))
                            continue;
                        scan_object(L, s, 1, record_field, slot);
                        n++;
                    } while (scan_more(L, s, ']'));
                }
                scan_make_array(L, s, base, n);
                lua_replace(L, 9);
                have_records = 1;
            } else if (key_is(k, klen, "NextShardIterator", 17)) {
                if (scan_peek(s) == 'n') {
                    if (!scan_literal(s, "null", 4))
                        scan_giveup(L);
                    lua_pushnil(L);
                } else {
                    const char *it = scan_string(L, s, &klen);
                    lua_pushlstring(L, it, klen);
                }
                lua_replace(L, 10);
            } else {
                scan_skip(L, s, 1);
            }
        } while (scan_more(L, s, '}'));
    }
    scan_ws(s);
    if (!have_records || s->p != s->end)
        scan_giveup(L);
    return 2;
}

/* The module's decode state lives in the registry under this key (also an
 * upvalue of decode_records and decode_stats). */
static const char decode_state_key = 0;

/* decode_records' one-pass path over text[0..n): pushes records and
 * next_shard_iterator (with a filter, also the number it dropped and the
 * page's last sequence number) and returns how many values it pushed, or
 * pushes nothing and returns 0 when the text needs the exact path. Raises
 * only on memory errors. */
static int decode_fast(lua_State *L, const char *text, size_t n, int numbers_string, struct ds_filter *filter)
{
    decode_state *counts, *st;
    scan s;
    int rc;

    lua_rawgetp(L, LUA_REGISTRYINDEX, &decode_state_key);
    counts = st = lua_touserdata(L, -1);
    if (st->busy) { /* called from a finalizer during our own build: own state */
        lua_pop(L, 1);
        st = state_new(L);
    }
    s.p = text;
    s.end = text + n;
    s.numbers_string = numbers_string;
    s.keys = &st->keys;
    s.st = st;
    s.filter = filter;
    s.filtered = 0;
    s.last_seq_len = 0;
    st->busy = 1;
    lua_pushcfunction(L, scan_build);
    lua_pushlightuserdata(L, &s);
    lua_pushvalue(L, -3);
    rc = lua_pcall(L, 2, 2, 0);
    st->busy = 0;
    if (st->scratch.cap > DECODE_KEEP_SCRATCH)
        ds_buf_free(&st->scratch);
    if (st->bytes.cap > DECODE_KEEP_SCRATCH)
        ds_buf_free(&st->bytes);
    if (rc == LUA_OK) {
        counts->fast++;
        lua_remove(L, -3); /* the state */
        if (filter == NULL)
            return 2;
        lua_pushinteger(L, s.filtered);
        if (s.last_seq_len > 0)
            lua_pushlstring(L, s.last_seq, s.last_seq_len);
        else
            lua_pushnil(L);
        return 4;
    }
    if (rc == LUA_ERRMEM)
        lua_error(L);
    lua_pop(L, 2); /* the message, the state */
    return 0;
}

/* core.decode_records(json_text | body[, opts]) -> records, next_shard_iterator
 *   [, filtered, last_sequence_number: with opts.filter, the number of records
 *   it dropped and the SequenceNumber of the page's last record, dropped or
 *   not (nil when there is none), so that the reader can move past a page's
 *   dropped tail]
 *   | nil, "InvalidJSON: ...", "InvalidJSON" | nil, "InvalidResponse: ...", "InvalidResponse"
 * A body userdata (ds_body.h) is read in place; it stays anchored at 1 while
 * its bytes are read, and the exact path gets a string copy of them. */
static int decode_records(lua_State *L)
{
    size_t n;
    int numbers_string = ds_av_numbers_opt(L, 2);
    decode_state *counts = lua_touserdata(L, lua_upvalueindex(1));
    struct ds_filter *filter = NULL;
    lua_settop(L, 2);
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_getfield(L, 2, "filter");
        if (!lua_isnil(L, 3) && luaL_testudata(L, 3, DS_FILTER_MT) == NULL)
            luaL_argerror(L, 2, "opts.filter must be a filter from core.compile_filter");
        if (!lua_isnil(L, 3))
            filter = ds_filter_check(L, 3);
    } else {
        lua_pushnil(L);
    }
    lua_replace(L, 2); /* the filter (or nil) stays anchored at 2 */
    const char *text = ds_body_pin(L, 1, &n);
    int body = text != NULL;
    if (!body)
        text = luaL_checklstring(L, 1, &n);
    int done = decode_fast(L, text, n, numbers_string, filter); /* raises only on memory */
    if (body) {
        if (!done)
            lua_pushlstring(L, text, n); /* the exact path's json_decode reads a string */
        ds_body_unpin(L, 1);             /* the body is still at 1 */
        if (!done)
            lua_replace(L, 1);
    }
    if (done)
        return done;
    counts->exact++;
    return decode_exact(L, numbers_string, filter);
}

/* core.decode_stats() -> { fast = pages, exact = pages }: how many calls of
 * decode_records took each path (the exact one should be rare). */
static int decode_stats(lua_State *L)
{
    const decode_state *st = lua_touserdata(L, lua_upvalueindex(1));
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, st->fast);
    lua_setfield(L, -2, "fast");
    lua_pushinteger(L, st->exact);
    lua_setfield(L, -2, "exact");
    return 1;
}

void ds_open_decode(lua_State *L)
{
    ds_new_gc_type(L, DECODE_STATE_MT, state_gc);
    state_new(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &decode_state_key);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, decode_records, 1);
    lua_setfield(L, -3, "decode_records");
    lua_pushcclosure(L, decode_stats, 1);
    lua_setfield(L, -2, "decode_stats");
}
