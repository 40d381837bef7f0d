/* ds_json.c - JSON <-> Lua for request and response bodies (contract in HACKING.md).
 *
 * Decoding: cJSON validates and builds the tree. cJSON keeps numbers only as
 * doubles and strings only NUL-terminated, so a small lexer walks the original
 * text alongside the tree (the tree's pre-order is the text order of its
 * tokens): it hands each number's exact text to number.c, so integers up to
 * int64 stay exact, and it spots strings holding \u0000, which are then
 * decoded here. A pass over the text refuses what cJSON lets through but JSON
 * does not (raw control bytes, a \u without four hex digits, numbers beyond a
 * double). The tree is anchored in a userdata whose __gc frees it.
 *
 * Encoding writes straight into a growable buffer owned by a userdata (freed
 * by __gc if a raise interrupts): a cJSON tree would add an allocation per
 * value and could not hold strings with NUL bytes. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base64.h"
#include "buffer.h"
#include "ds_json.h"
#include "ds_lua.h"
#include "json_lex.h"
#include "number.h"

#define JSON_TREE_MT   "dynamodb_stream.json_tree"
#define JSON_BUFFER_MT "dynamodb_stream.json_buffer"
#define JSON_MAX_DEPTH 1000 /* encode; decode is bounded by CJSON_NESTING_LIMIT (1000) */

/* ---- encode ----------------------------------------------------------- */

static int jbuf_gc(lua_State *L)
{
    ds_buf_free(lua_touserdata(L, 1));
    return 0;
}

/* Room for n more bytes; returns where they go. */
static char *jbuf_reserve(lua_State *L, ds_buf *b, size_t n)
{
    char *room = ds_buf_reserve(b, n);
    if (room == NULL)
        luaL_error(L, "json_encode: out of memory"); /* b stays owned by the userdata */
    return room;
}

static void jbuf_add(lua_State *L, ds_buf *b, const char *s, size_t n)
{
    if (ds_buf_append(b, s, n) != 0)
        luaL_error(L, "json_encode: out of memory");
}

#define jbuf_lit(L, b, s) jbuf_add((L), (b), "" s, sizeof(s) - 1)

static int enc_error(lua_State *L, const ds_path *p, const char *fmt, const char *arg)
{
    lua_checkstack(L, 4);
    lua_pushfstring(L, fmt, arg);
    ds_path_push(L, p);
    lua_pushfstring(L, "json_encode: %s at %s", lua_tostring(L, -2), lua_tostring(L, -1));
    return lua_error(L);
}

static void enc_string(lua_State *L, ds_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;
    jbuf_lit(L, b, "\"");
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        jbuf_add(L, b, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"': jbuf_lit(L, b, "\\\""); break;
        case '\\': jbuf_lit(L, b, "\\\\"); break;
        case '\n': jbuf_lit(L, b, "\\n"); break;
        case '\r': jbuf_lit(L, b, "\\r"); break;
        case '\t': jbuf_lit(L, b, "\\t"); break;
        case '\b': jbuf_lit(L, b, "\\b"); break;
        case '\f': jbuf_lit(L, b, "\\f"); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            jbuf_add(L, b, esc, sizeof esc);
        }
        }
    }
    jbuf_add(L, b, s + run, n - run);
    jbuf_lit(L, b, "\"");
}

static void enc_base64(lua_State *L, ds_buf *b, const char *s, size_t n)
{
    size_t len = DS_BASE64_ENCODED_LEN(n);
    jbuf_lit(L, b, "\"");
    ds_base64_encode((const unsigned char *)s, n, jbuf_reserve(L, b, len));
    b->len += len;
    jbuf_lit(L, b, "\"");
}

static void enc_number(lua_State *L, ds_buf *b, int idx, const ds_path *path)
{
    char buf[DS_DOUBLE_BUFSIZE];
    if (lua_isinteger(L, idx)) {
        int n = snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx));
        jbuf_add(L, b, buf, (size_t)n);
    } else {
        lua_Number x = lua_tonumber(L, idx);
        if (!isfinite(x))
            enc_error(L, path, "cannot encode %s", x != x ? "NaN" : x > 0 ? "inf" : "-inf");
        jbuf_add(L, b, buf, ds_format_double((double)x, buf));
    }
}

static void enc_value(lua_State *L, ds_buf *b, int idx, const ds_path *path, int depth, int as_binary);

static void enc_array(lua_State *L, ds_buf *b, int t, const ds_path *path, int depth, int all_binary)
{
    const void *ptr = lua_topointer(L, t);
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, t);
    int bin = ds_binary_table(L, t);
    jbuf_lit(L, b, "[");
    for (i = 1; i <= n; i++) {
        ds_path fr = {path, NULL, 0, i, ptr};
        int item, as_binary;
        if (i > 1)
            jbuf_lit(L, b, ",");
        lua_rawgeti(L, t, i);
        item = lua_gettop(L);
        if (lua_isnil(L, item))
            enc_error(L, &fr, "cannot encode %s in an array (use core.null)", "nil");
        lua_pushinteger(L, i);
        as_binary = ds_is_binary(L, bin, item) || (all_binary && lua_type(L, item) == LUA_TSTRING);
        enc_value(L, b, item, &fr, depth, as_binary);
        lua_settop(L, bin);
    }
    lua_pop(L, 1);
    jbuf_lit(L, b, "]");
}

static void enc_object(lua_State *L, ds_buf *b, int t, const ds_path *path, int depth)
{
    const void *ptr = lua_topointer(L, t);
    int bin = ds_binary_table(L, t);
    int first = 1;
    jbuf_lit(L, b, "{");
    lua_pushnil(L);
    while (lua_next(L, t)) { /* k v */
        ds_path fr;
        size_t klen;
        const char *key;
        int v = lua_gettop(L);
        if (lua_type(L, -2) == LUA_TNUMBER) {
            lua_pushvalue(L, -2); /* convert a copy, not the traversal key */
            enc_error(L, path, "cannot encode a table with the number key %s (mixed or sparse table?)",
                      lua_tostring(L, -1));
        } else if (lua_type(L, -2) != LUA_TSTRING) {
            enc_error(L, path, "cannot encode a table with a %s key", luaL_typename(L, -2));
        }
        key = lua_tolstring(L, -2, &klen);
        fr.up = path;
        fr.key = key;
        fr.keylen = klen;
        fr.index = 0;
        fr.table = ptr;
        if (!first)
            jbuf_lit(L, b, ",");
        first = 0;
        enc_string(L, b, key, klen);
        jbuf_lit(L, b, ":");
        lua_pushvalue(L, -2);
        enc_value(L, b, v, &fr, depth, ds_is_binary(L, bin, v));
        lua_settop(L, v - 1); /* k */
    }
    lua_pop(L, 1);
    jbuf_lit(L, b, "}");
}

static void enc_table(lua_State *L, ds_buf *b, int t, const ds_path *path, int depth)
{
    const void *ptr = lua_topointer(L, t);
    const ds_path *p;
    const char *m;

    for (p = path; p != NULL; p = p->up)
        if (p->table == ptr)
            enc_error(L, path, "%s", "table cycle (the table contains itself)");
    if (depth > JSON_MAX_DEPTH)
        enc_error(L, path, "nesting deeper than %s levels", "1000");
    if (!lua_checkstack(L, 16))
        enc_error(L, path, "%s", "Lua stack exhausted");

    m = ds_marker(L, t);
    if (m == NULL) {
        int first_key_type = LUA_TNIL;
        lua_pushnil(L);
        if (lua_next(L, t)) {
            first_key_type = lua_type(L, -2);
            lua_pop(L, 2);
        }
        if (first_key_type == LUA_TNIL)
            jbuf_lit(L, b, "{}");
        else if (first_key_type == LUA_TNUMBER && ds_is_sequence(L, t))
            enc_array(L, b, t, path, depth, 0);
        else
            enc_object(L, b, t, path, depth);
    } else if (strcmp(m, "L") == 0 || strcmp(m, "SS") == 0 || strcmp(m, "NS") == 0) {
        enc_array(L, b, t, path, depth, 0);
    } else if (strcmp(m, "BS") == 0) {
        enc_array(L, b, t, path, depth, 1);
    } else if (strcmp(m, "N") == 0) {
        ds_decimal d;
        char text[DS_DECIMAL_BUFSIZE];
        size_t n;
        const char *s;
        if (lua_rawgeti(L, t, 1) != LUA_TSTRING)
            enc_error(L, path, "decimal box holds a %s, not a string", luaL_typename(L, -1));
        s = lua_tolstring(L, -1, &n);
        if (ds_decimal_parse(s, n, &d) != DS_NUM_OK || d.ndig > DS_NUM_MAX_DIGITS)
            enc_error(L, path, "decimal box holds an invalid number '%s'", s);
        jbuf_add(L, b, text, ds_decimal_format(&d, text));
        lua_pop(L, 1);
    } else if (strcmp(m, "B") == 0) {
        size_t n;
        const char *s;
        if (lua_rawgeti(L, t, 1) != LUA_TSTRING)
            enc_error(L, path, "binary box holds a %s, not a string", luaL_typename(L, -1));
        s = lua_tolstring(L, -1, &n);
        enc_base64(L, b, s, n);
        lua_pop(L, 1);
    } else {
        enc_error(L, path, "cannot encode a table marked __ddb = '%s'", m);
    }
}

static void enc_value(lua_State *L, ds_buf *b, int idx, const ds_path *path, int depth, int as_binary)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        if (as_binary)
            enc_base64(L, b, s, n);
        else
            enc_string(L, b, s, n);
        break;
    }
    case LUA_TNUMBER:
        enc_number(L, b, idx, path);
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            jbuf_lit(L, b, "true");
        else
            jbuf_lit(L, b, "false");
        break;
    case LUA_TTABLE:
        enc_table(L, b, idx, path, depth + 1);
        break;
    default:
        if (ds_isnull(L, idx))
            jbuf_lit(L, b, "null");
        else
            enc_error(L, path, "cannot encode a %s", luaL_typename(L, idx));
    }
}

/* core.json_encode(value) -> string */
int ds_json_encode(lua_State *L)
{
    ds_buf *b;
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, JSON_BUFFER_MT);
    enc_value(L, b, 1, NULL, 0, 0);
    lua_pushlstring(L, b->data, b->len);
    ds_buf_free(b);
    return 1;
}

/* ---- decode ----------------------------------------------------------- */

/* Walks the text in step with the tree: each call returns the next string or
 * number token. A NULL p means the lexer gave up (the tree's values are used). */
typedef struct {
    const char *p, *end;
    const char *bad; /* first number cJSON accepted but JSON does not ("01", "1.", ".5") */
    const char *huge; /* first number beyond a double ("1e999999") */
} jlex;

/* The next string or number token of the text and its length; *special is set
 * for a string that cJSON cannot return whole (\u0000). */
static const char *lex_next(jlex *lx, size_t *len, int *special)
{
    const char *p = lx->p;
    *special = 0;
    if (p == NULL)
        return NULL;
    while (p < lx->end) {
        const char *start = p;
        if (*p == '"') {
            for (p++; p < lx->end && *p != '"'; p++) {
                if (*p == '\\') {
                    if (lx->end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0)
                        *special = 1;
                    p++;
                }
            }
            p = p < lx->end ? p + 1 : lx->end;
            lx->p = p;
            *len = (size_t)(p - start);
            return start;
        }
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            while (p < lx->end && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' ||
                                   *p == 'E'))
                p++;
            lx->p = p;
            *len = (size_t)(p - start);
            return start;
        }
        p++;
    }
    lx->p = NULL;
    return NULL;
}

/* Pushes the decoded contents of the JSON string literal s[0..n) (without the
 * quotes). Input already validated by cJSON; stays in bounds regardless. */
static void push_unescaped(lua_State *L, const char *s, size_t n)
{
    luaL_Buffer b;
    size_t i = 0;
    luaL_buffinit(L, &b);
    while (i < n) {
        char ch = s[i++];
        if (ch != '\\') {
            luaL_addchar(&b, ch);
            continue;
        }
        if (i >= n)
            break;
        ch = s[i++];
        switch (ch) {
        case 'b': luaL_addchar(&b, '\b'); break;
        case 'f': luaL_addchar(&b, '\f'); break;
        case 'n': luaL_addchar(&b, '\n'); break;
        case 'r': luaL_addchar(&b, '\r'); break;
        case 't': luaL_addchar(&b, '\t'); break;
        case 'u': {
            unsigned cp = 0, lo = 0;
            char utf8[4];
            if (n - i < 4)
                break;
            ds_json_hex4(s + i, &cp); /* cJSON checked the digits */
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && n - i >= 6 && s[i] == '\\' && s[i + 1] == 'u' &&
                ds_json_hex4(s + i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            luaL_addlstring(&b, utf8, (size_t)ds_utf8_encode(cp, utf8));
            break;
        }
        default: /* \" \\ \/ */
            luaL_addchar(&b, ch);
        }
    }
    luaL_pushresult(&b);
}

/* Pushes a string of the tree (value or key), taking it from the text when
 * cJSON's copy is cut short by a \u0000. */
static void dec_string(lua_State *L, const char *cstr, jlex *lx)
{
    size_t len;
    int special;
    const char *tok = lex_next(lx, &len, &special);
    if (tok != NULL && *tok != '"')
        lx->p = NULL; /* out of step (cannot happen with a valid tree): stop using the text */
    else if (tok != NULL && special && len >= 2) {
        push_unescaped(L, tok + 1, len - 2);
        return;
    }
    lua_pushstring(L, cstr ? cstr : "");
}

static void dec_number(lua_State *L, const cJSON *item, jlex *lx)
{
    size_t len;
    int special;
    ds_decimal d;
    long long i;
    const char *tok = lex_next(lx, &len, &special);
    if (tok != NULL && *tok == '"') {
        lx->p = NULL; /* out of step (cannot happen with a valid tree) */
    } else if (tok != NULL && !ds_json_number_ok(tok, len)) {
        if (lx->bad == NULL)
            lx->bad = tok;
    } else if (tok != NULL && ds_decimal_parse(tok, len, &d) == DS_NUM_OK && ds_decimal_to_int64(&d, &i)) {
        lua_pushinteger(L, (lua_Integer)i);
        return;
    }
    if (!isfinite(item->valuedouble) && lx->huge == NULL)
        lx->huge = tok != NULL ? tok : lx->end;
    lua_pushnumber(L, (lua_Number)item->valuedouble);
}

/* Pushes the Lua value of a tree node. Depth is bounded by cJSON's nesting
 * limit; the stack is checked per level. */
static void dec_value(lua_State *L, const cJSON *item, jlex *lx)
{
    const cJSON *child;
    lua_Integer i = 0;

    switch (item->type & 0xFF) {
    case cJSON_NULL:
        ds_pushnull(L);
        break;
    case cJSON_False:
        lua_pushboolean(L, 0);
        break;
    case cJSON_True:
        lua_pushboolean(L, 1);
        break;
    case cJSON_Number:
        dec_number(L, item, lx);
        break;
    case cJSON_String:
        dec_string(L, item->valuestring, lx);
        break;
    case cJSON_Array:
        luaL_checkstack(L, 8, "json_decode: nesting too deep");
        lua_newtable(L);
        for (child = item->child; child != NULL; child = child->next) {
            dec_value(L, child, lx);
            lua_rawseti(L, -2, ++i);
        }
        luaL_setmetatable(L, DS_LIST_MT);
        break;
    case cJSON_Object:
        luaL_checkstack(L, 8, "json_decode: nesting too deep");
        lua_newtable(L);
        for (child = item->child; child != NULL; child = child->next) {
            dec_string(L, child->string, lx);
            dec_value(L, child, lx);
            lua_rawset(L, -3);
        }
        break;
    default:
        lua_pushnil(L); /* cJSON_Raw / invalid: not produced by the parser */
    }
}

static int tree_gc(lua_State *L)
{
    cJSON **box = lua_touserdata(L, 1);
    cJSON_Delete(*box);
    *box = NULL;
    return 0;
}

/* The offset of the first byte cJSON let through that JSON refuses, or n: a
 * control byte outside strings that is not JSON whitespace (cJSON skips every
 * byte <= 0x20 between tokens), one inside a string (RFC 8259), or a \u
 * without four hex digits (cJSON reads it as U+0000 and cuts the string). */
static size_t first_lax_byte(const char *s, size_t n)
{
    size_t i;
    int in_string = 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (in_string) {
            unsigned cp;
            if (c < 0x20)
                return i;
            if (c == '\\') {
                if (i + 1 < n && s[i + 1] == 'u' && (n - i < 6 || !ds_json_hex4(s + i + 2, &cp)))
                    return i;
                i++;
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return i;
        }
    }
    return n;
}

/* Describes why cJSON rejected s: nesting, truncation, or the place of the
 * syntax error (cJSON reports an offset, clamped to the last byte). */
static int dec_fail(lua_State *L, const char *s, size_t n, size_t off)
{
    size_t i;
    long depth = 0, max = 0;
    int in_string = 0;
    luaL_Buffer b;

    for (i = 0; i < n; i++) { /* bracket depth outside strings */
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    if (max > CJSON_NESTING_LIMIT)
        lua_pushfstring(L, "nesting deeper than %d levels", CJSON_NESTING_LIMIT);
    else if (in_string || depth > 0)
        lua_pushfstring(L, "unexpected end of input after %d bytes (truncated?)", (int)n);
    else {
        luaL_buffinit(L, &b);
        lua_pushfstring(L, "syntax error at offset %d near '", (int)off);
        luaL_addvalue(&b);
        for (i = off; i < n && i < off + 24; i++) {
            unsigned char c = (unsigned char)s[i];
            luaL_addchar(&b, c >= 0x20 && c < 0x7f ? (char)c : '?');
        }
        luaL_addstring(&b, i < n ? "...'" : "'");
        luaL_pushresult(&b);
    }
    return ds_fail(L, "InvalidJSON", lua_tostring(L, -1));
}

/* core.json_decode(text) -> value | nil, "InvalidJSON: ...", "InvalidJSON" */
int ds_json_decode(lua_State *L)
{
    size_t n, off;
    const char *s = luaL_checklstring(L, 1, &n);
    const char *end = NULL;
    cJSON **box;
    jlex lx;

    if (ds_json_skip_ws(s, n, 0) == n)
        return ds_fail(L, "InvalidJSON", "empty input");

    lua_settop(L, 1);
    box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, JSON_TREE_MT);
    *box = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (*box == NULL)
        return dec_fail(L, s, n, end && end >= s && end <= s + n ? (size_t)(end - s) : 0);
    off = ds_json_skip_ws(s, n, (size_t)(end - s));
    if (off != n) {
        cJSON_Delete(*box);
        *box = NULL;
        lua_pushfstring(L, "unexpected data after the value at offset %d", (int)off);
        return ds_fail(L, "InvalidJSON", lua_tostring(L, -1));
    }
    off = first_lax_byte(s, n);
    if (off < n) {
        cJSON_Delete(*box);
        *box = NULL;
        return dec_fail(L, s, n, off);
    }
    lx.p = s;
    lx.end = s + n;
    lx.bad = lx.huge = NULL;
    dec_value(L, *box, &lx);
    cJSON_Delete(*box);
    *box = NULL;
    if (lx.bad != NULL) /* cJSON is lenient about number syntax; JSON is not */
        return dec_fail(L, s, n, (size_t)(lx.bad - s));
    if (lx.huge != NULL) {
        lua_pushfstring(L, "number out of range at offset %d", (int)(lx.huge - s));
        return ds_fail(L, "InvalidJSON", lua_tostring(L, -1));
    }
    return 1;
}

static const luaL_Reg json_funcs[] = {
    {"json_encode", ds_json_encode},
    {"json_decode", ds_json_decode},
    {NULL, NULL},
};

void ds_open_json(lua_State *L)
{
    ds_new_gc_type(L, JSON_TREE_MT, tree_gc);
    ds_new_gc_type(L, JSON_BUFFER_MT, jbuf_gc);
    luaL_setfuncs(L, json_funcs, 0);
}
