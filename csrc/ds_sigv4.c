/* Binding of sigv4.c: the signer userdata and the sha256/hmac/hex helpers.
 *
 * Memory: the signer's strings are malloc'd copies owned by the userdata
 * (cleansed and freed by __gc/__close). What sign() needs per call lives in
 * Lua-managed memory (a scratch userdata, a luaL_Buffer), and sigv4.c frees
 * its own temporaries before returning, so a raise at any point leaks nothing. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ds_lua.h"
#include "ds_sigv4.h"
#include "sigv4.h"

#define DS_SIGNER_MT "dynamodb_stream.signer"
#define TOKEN_HEADER "x-amz-security-token"
#define DATE_HEADER  "x-amz-date"

typedef struct {
    char *access_key_id;
    char *secret;
    size_t secret_len;
    char *token; /* NULL when the credentials have no session token */
    size_t token_len;
    char *region;
    char *service;
    int closed;
    /* Signing-key cache. region, service and secret are fixed per signer,
     * so the key only depends on the date it was derived for. */
    int has_key;
    char key_date[SIGV4_DATE_LEN + 1];
    unsigned char key[SIGV4_SHA256_LEN];
} ds_signer;

/* ---- argument helpers ---- */

/* t[field] (t at idx) as a string, or NULL when absent and optional.
 * Raises on a wrong type, a missing required field, or (unless binary) a NUL byte.
 * The string stays anchored by the table; nothing is left on the stack. */
static const char *field_string(lua_State *L, int idx, const char *what, const char *field,
                                int required, int binary, size_t *len)
{
    int t = lua_getfield(L, idx, field);
    const char *s = NULL;
    *len = 0;
    if (t == LUA_TSTRING) {
        s = lua_tolstring(L, -1, len);
        if (!binary && strlen(s) != *len)
            luaL_argerror(L, idx, lua_pushfstring(L, "%s.%s contains a NUL byte", what, field));
    } else if (t != LUA_TNIL || required) {
        luaL_argerror(L, idx, lua_pushfstring(L, "%s.%s must be a string, got %s", what, field,
                                              luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return s;
}

/* Raises unless s could be one part of the credential scope (key id, region, service). */
static void check_scope_part(lua_State *L, int idx, const char *field, const char *s)
{
    const char *c;
    if (*s == '\0')
        luaL_argerror(L, idx, lua_pushfstring(L, "opts.%s must not be empty", field));
    for (c = s; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '/')
            luaL_argerror(L, idx, lua_pushfstring(L,
                "opts.%s must not contain '/', spaces or control characters", field));
}

static char *dup_bytes(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static void free_secret(char **p, size_t len)
{
    if (*p != NULL) {
        OPENSSL_cleanse(*p, len);
        free(*p);
        *p = NULL;
    }
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* RFC 7230 token character. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* ---- the signer ---- */

static void signer_free(ds_signer *s)
{
    free_secret(&s->secret, s->secret_len);
    free_secret(&s->token, s->token_len);
    free(s->access_key_id);
    free(s->region);
    free(s->service);
    s->access_key_id = s->region = s->service = NULL;
    OPENSSL_cleanse(s->key, sizeof s->key);
    s->has_key = 0;
    s->closed = 1;
}

static ds_signer *signer_check(lua_State *L, int idx)
{
    ds_signer *s = luaL_checkudata(L, idx, DS_SIGNER_MT);
    luaL_argcheck(L, !s->closed, idx, "signer is closed");
    return s;
}

/* __gc and __close; idempotent. */
static int signer_close(lua_State *L)
{
    signer_free(luaL_checkudata(L, 1, DS_SIGNER_MT));
    return 0;
}

/* Never shows the secret or the token; of the key id, only its first 4 characters. */
static int signer_tostring(lua_State *L)
{
    ds_signer *s = luaL_checkudata(L, 1, DS_SIGNER_MT);
    char akid[5] = {0};
    if (s->closed) {
        lua_pushliteral(L, DS_SIGNER_MT " (closed)");
        return 1;
    }
    strncpy(akid, s->access_key_id, 4);
    lua_pushfstring(L, DS_SIGNER_MT " (%s..., %s/%s%s)", akid, s->region, s->service,
                    s->token ? ", session token" : "");
    return 1;
}

/* core.signer(opts) -> signer */
static int signer_new(lua_State *L)
{
    size_t akid_len, secret_len, token_len, region_len, service_len;
    const char *akid, *secret, *token, *region, *service;
    ds_signer *s;

    luaL_checktype(L, 1, LUA_TTABLE);
    /* Everything is read and checked before the first allocation; the strings
     * stay anchored by the options table while they are copied. */
    akid = field_string(L, 1, "opts", "access_key_id", 1, 0, &akid_len);
    secret = field_string(L, 1, "opts", "secret_access_key", 1, 0, &secret_len);
    token = field_string(L, 1, "opts", "session_token", 0, 0, &token_len);
    region = field_string(L, 1, "opts", "region", 1, 0, &region_len);
    service = field_string(L, 1, "opts", "service", 1, 0, &service_len);
    check_scope_part(L, 1, "access_key_id", akid);
    luaL_argcheck(L, secret_len > 0, 1, "opts.secret_access_key must not be empty");
    check_scope_part(L, 1, "region", region);
    check_scope_part(L, 1, "service", service);
    if (token != NULL && token_len == 0)
        token = NULL; /* as botocore does: an empty token is no token */
    luaL_argcheck(L, token == NULL || strpbrk(token, "\r\n") == NULL, 1,
                  "opts.session_token must not contain CR or LF");

    /* A valid closed signer first, so that __gc is safe whatever happens next. */
    s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    s->closed = 1;
    luaL_setmetatable(L, DS_SIGNER_MT);

    s->closed = 0;
    s->access_key_id = dup_bytes(akid, akid_len);
    s->secret = dup_bytes(secret, secret_len);
    s->secret_len = secret_len;
    s->region = dup_bytes(region, region_len);
    s->service = dup_bytes(service, service_len);
    if (token != NULL) {
        s->token = dup_bytes(token, token_len);
        s->token_len = token_len;
    }
    if (!s->access_key_id || !s->secret || !s->region || !s->service || (token && !s->token)) {
        signer_free(s);
        return luaL_error(L, "signer: not enough memory");
    }
    return 1;
}

/* The signing key for amz_date's day: the cached one, or derived and cached. */
static int signer_key(ds_signer *s, const char *amz_date)
{
    int rc;
    if (s->has_key && memcmp(s->key_date, amz_date, SIGV4_DATE_LEN) == 0)
        return SIGV4_OK;
    s->has_key = 0;
    memcpy(s->key_date, amz_date, SIGV4_DATE_LEN);
    s->key_date[SIGV4_DATE_LEN] = '\0';
    rc = sigv4_signing_key(s->secret, s->secret_len, s->key_date, s->region, s->service, s->key);
    s->has_key = rc == SIGV4_OK;
    return rc;
}

/* headers[TOKEN_HEADER] = token, after removing any other spelling of that name. */
static void set_token_header(lua_State *L, int hidx, const ds_signer *s)
{
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
        size_t len;
        lua_pop(L, 1); /* value */
        if (lua_type(L, -1) != LUA_TSTRING)
            continue;
        const char *k = lua_tolstring(L, -1, &len);
        if (len == sizeof TOKEN_HEADER - 1 && strcmp(k, TOKEN_HEADER) != 0) {
            size_t i;
            for (i = 0; i < len && ascii_lower(k[i]) == TOKEN_HEADER[i]; i++)
                ;
            if (i == len) { /* clearing an existing field is allowed during lua_next */
                lua_pushvalue(L, -1);
                lua_pushnil(L);
                lua_rawset(L, hidx);
            }
        }
    }
    lua_pushlstring(L, s->token, s->token_len);
    lua_setfield(L, hidx, TOKEN_HEADER);
}

static int header_cmp(const void *a, const void *b)
{
    const sigv4_header *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Copies the headers table (at hidx) into a scratch userdata pushed on the
 * stack: n sorted sigv4_header entries with lower-cased names, followed by
 * the bytes they point to. Raises (leaking nothing) on a bad name or value. */
static sigv4_header *collect_headers(lua_State *L, int arg, int hidx, size_t *np)
{
    size_t n = 0, bytes = 0, i, len;
    sigv4_header *hs;
    char *p;

    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
        const char *k, *v;
        size_t j;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "req.headers: names must be strings, got %s",
                                                  luaL_typename(L, -2)));
        k = lua_tolstring(L, -2, &len);
        if (len == 0)
            luaL_argerror(L, arg, "req.headers: empty header name");
        for (j = 0; j < len; j++)
            if (!is_tchar((unsigned char)k[j]))
                luaL_argerror(L, arg, lua_pushfstring(L, "req.headers: invalid header name '%s'", k));
        bytes += len;
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "req.headers['%s'] must be a string, got %s",
                                                  k, luaL_typename(L, -1)));
        v = lua_tolstring(L, -1, &len);
        for (j = 0; j < len; j++)
            if (v[j] == '\r' || v[j] == '\n' || v[j] == '\0')
                luaL_argerror(L, arg, lua_pushfstring(L,
                    "req.headers['%s'] must not contain CR, LF or NUL", k));
        bytes += len;
        n++;
        lua_pop(L, 1);
    }
    luaL_argcheck(L, n > 0, arg, "req.headers must not be empty (host is always signed)");
    luaL_argcheck(L, n < ((size_t)-1 - bytes) / sizeof *hs, arg, "req.headers too large");

    hs = lua_newuserdatauv(L, n * sizeof *hs + bytes, 0);
    p = (char *)(hs + n);
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, hidx) != 0) {
        const char *k;
        size_t j;
        if (i == n) { /* cannot happen: nothing ran since the first pass */
            lua_pop(L, 2);
            break;
        }
        k = lua_tolstring(L, -2, &len);
        hs[i].name = p;
        hs[i].name_len = len;
        for (j = 0; j < len; j++)
            *p++ = ascii_lower(k[j]);
        k = lua_tolstring(L, -1, &len);
        hs[i].value = p;
        hs[i].value_len = len;
        memcpy(p, k, len);
        p += len;
        i++;
        lua_pop(L, 1);
    }
    qsort(hs, n, sizeof *hs, header_cmp);
    for (i = 1; i < n; i++)
        if (header_cmp(&hs[i - 1], &hs[i]) == 0) {
            lua_pushlstring(L, hs[i].name, hs[i].name_len);
            luaL_argerror(L, arg, lua_pushfstring(L,
                "req.headers: header '%s' given twice (names are case-insensitive)",
                lua_tostring(L, -1)));
        }
    *np = n;
    return hs;
}

/* True when a header value equals s once trimmed (as SigV4 signs it). */
static int trimmed_equals(const sigv4_header *h, const char *s)
{
    size_t a = 0, b = h->value_len, n = strlen(s);
    while (a < b && (h->value[a] == ' ' || h->value[a] == '\t'))
        a++;
    while (b > a && (h->value[b - 1] == ' ' || h->value[b - 1] == '\t'))
        b--;
    return b - a == n && memcmp(h->value + a, s, n) == 0;
}

/* signer:sign(req) -> authorization header value */
static int signer_sign(lua_State *L)
{
    ds_signer *s = signer_check(L, 1);
    sigv4_request req;
    const char *why;
    size_t len, i;
    luaL_Buffer b;
    char *out;
    int hidx, rc;

    luaL_checktype(L, 2, LUA_TTABLE);
    memset(&req, 0, sizeof req);
    req.method = field_string(L, 2, "req", "method", 1, 0, &len);
    req.path = field_string(L, 2, "req", "path", 1, 0, &len);
    req.query = field_string(L, 2, "req", "query", 0, 0, &len);
    req.payload = field_string(L, 2, "req", "body", 0, 1, &req.payload_len);
    req.amz_date = field_string(L, 2, "req", "amz_date", 1, 0, &len);
    req.access_key_id = s->access_key_id;
    req.region = s->region;
    req.service = s->service;
    if (lua_getfield(L, 2, "headers") != LUA_TTABLE)
        luaL_argerror(L, 2, lua_pushfstring(L, "req.headers must be a table, got %s",
                                            luaL_typename(L, -1)));
    hidx = lua_gettop(L);
    if (s->token != NULL)
        set_token_header(L, hidx, s);
    req.headers = collect_headers(L, 2, hidx, &req.nheaders);

    if (sigv4_check_request(&req, &why) != SIGV4_OK)
        luaL_argerror(L, 2, lua_pushfstring(L, "req: %s", why));
    for (i = 0; i < req.nheaders; i++)
        if (req.headers[i].name_len == sizeof DATE_HEADER - 1
            && memcmp(req.headers[i].name, DATE_HEADER, sizeof DATE_HEADER - 1) == 0
            && !trimmed_equals(&req.headers[i], req.amz_date))
            luaL_argerror(L, 2, "req.headers['x-amz-date'] differs from req.amz_date");

    if ((rc = signer_key(s, req.amz_date)) != SIGV4_OK)
        return ds_fail(L, "SigningError", sigv4_strerror(rc));
    len = sigv4_authorization_size(&req);
    out = luaL_buffinitsize(L, &b, len);
    if ((rc = sigv4_authorization(&req, s->key, out, len)) != SIGV4_OK)
        return ds_fail(L, "SigningError", sigv4_strerror(rc));
    luaL_pushresultsize(&b, strlen(out));
    return 1;
}

/* ---- pure helpers ---- */

/* Pushes the lower-case hex of the digest of the string argument 1. */
static int push_digest_hex(lua_State *L, int (*digest)(const void *, size_t, unsigned char *),
                           size_t digest_len)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char d[SIGV4_SHA256_LEN];
    char hex[2 * SIGV4_SHA256_LEN + 1];
    int rc = digest(s, len, d);
    if (rc != SIGV4_OK)
        return ds_fail(L, "CryptoError", sigv4_strerror(rc));
    sigv4_hex(d, digest_len, hex);
    lua_pushlstring(L, hex, 2 * digest_len);
    return 1;
}

/* core.sha256_hex(s) -> 64 lower-case hex digits */
static int l_sha256_hex(lua_State *L)
{
    return push_digest_hex(L, sigv4_sha256, SIGV4_SHA256_LEN);
}

/* core.sha1_hex(s) -> 40 lower-case hex digits */
static int l_sha1_hex(lua_State *L)
{
    return push_digest_hex(L, sigv4_sha1, SIGV4_SHA1_LEN);
}

/* core.hmac_sha256(key, msg) -> 32 raw bytes */
static int l_hmac_sha256(lua_State *L)
{
    size_t klen, mlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *msg = luaL_checklstring(L, 2, &mlen);
    unsigned char d[SIGV4_SHA256_LEN];
    int rc = sigv4_hmac_sha256(key, klen, msg, mlen, d);
    if (rc != SIGV4_OK)
        return ds_fail(L, "CryptoError", sigv4_strerror(rc));
    lua_pushlstring(L, (const char *)d, sizeof d);
    return 1;
}

/* core.hex(s) -> lower-case hex of the bytes of s */
static int l_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    char *out;
    luaL_argcheck(L, len < ((size_t)-1) / 2, 1, "string too long");
    out = luaL_buffinitsize(L, &b, 2 * len + 1);
    sigv4_hex((const unsigned char *)s, len, out);
    luaL_pushresultsize(&b, 2 * len);
    return 1;
}

/* core.sigv4_signing_key(secret, date, region, service) -> 32 raw bytes */
static int l_signing_key(lua_State *L)
{
    size_t slen, dlen, rlen, svlen, i;
    const char *secret = luaL_checklstring(L, 1, &slen);
    const char *date = luaL_checklstring(L, 2, &dlen);
    const char *region = luaL_checklstring(L, 3, &rlen);
    const char *service = luaL_checklstring(L, 4, &svlen);
    unsigned char key[SIGV4_SHA256_LEN];
    int rc;
    luaL_argcheck(L, dlen == SIGV4_DATE_LEN, 2, "date must be YYYYMMDD");
    for (i = 0; i < dlen; i++)
        luaL_argcheck(L, date[i] >= '0' && date[i] <= '9', 2, "date must be YYYYMMDD");
    luaL_argcheck(L, rlen > 0 && strlen(region) == rlen, 3, "region must be a non-empty string");
    luaL_argcheck(L, svlen > 0 && strlen(service) == svlen, 4, "service must be a non-empty string");
    rc = sigv4_signing_key(secret, slen, date, region, service, key);
    if (rc != SIGV4_OK)
        return ds_fail(L, "CryptoError", sigv4_strerror(rc));
    lua_pushlstring(L, (const char *)key, sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    return 1;
}

static const luaL_Reg signer_methods[] = {
    {"sign", signer_sign},
    {NULL, NULL}
};

static const luaL_Reg signer_meta[] = {
    {"__gc", signer_close},
    {"__close", signer_close},
    {"__tostring", signer_tostring},
    {NULL, NULL}
};

static const luaL_Reg sigv4_funcs[] = {
    {"signer", signer_new},
    {"sha256_hex", l_sha256_hex},
    {"sha1_hex", l_sha1_hex},
    {"hmac_sha256", l_hmac_sha256},
    {"hex", l_hex},
    {"sigv4_signing_key", l_signing_key},
    {NULL, NULL}
};

void ds_open_sigv4(lua_State *L)
{
    ds_new_class(L, DS_SIGNER_MT, signer_meta, signer_methods);
    luaL_setfuncs(L, sigv4_funcs, 0);
}
