/* core.http: blocking HTTP(S) POST through one reusable libcurl easy handle
 * per userdata, so consecutive posts reuse the kept-alive connection.
 *
 * Memory discipline: everything malloc'd (the CURL handle, the response
 * buffers, the request header list) is owned by the userdata and released by
 * http_close (also __gc and __close). libcurl callbacks only append into
 * those buffers and never call into Lua; results are pushed after
 * curl_easy_perform has returned, so a raise can never cross libcurl frames
 * nor leak anything. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "buffer.h"
#include "ds.h"

#define DS_HTTP_MT "dynamodb_stream.http"

#define HTTP_DEFAULT_CONNECT_TIMEOUT 5.0
#define HTTP_DEFAULT_TIMEOUT 30.0
#define HTTP_DEFAULT_MAX_BODY ((lua_Integer)64 * 1024 * 1024)
/* Response buffers above this size are released after a post instead of
 * being kept for the next one: one huge response should not pin its memory. */
#define HTTP_KEEP_BUFFER_MAX (1024 * 1024)

typedef struct {
    CURL *curl;                  /* NULL once closed */
    struct curl_slist *req_head; /* request headers of the post in progress */
    ds_buf body;                 /* response body, reused per request */
    ds_buf head;                 /* raw header lines of the last status block */
    size_t max_body;
    int too_large; /* set by the write callback when max_body is exceeded */
    int no_memory; /* set by a callback when a buffer could not grow */
    char errbuf[CURL_ERROR_SIZE];
} ds_http;

/* ---------------------------------------------------------------------------
 * libcurl callbacks: no Lua in here. Returning a count other than the one
 * given makes libcurl abort the transfer with CURLE_WRITE_ERROR. */

static size_t http_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ds_http *h = ud;
    size_t n = size * nmemb;
    if (n > h->max_body - h->body.len) { /* body.len <= max_body always */
        h->too_large = 1;
        return 0;
    }
    if (ds_buf_append(&h->body, ptr, n) != 0) {
        h->no_memory = 1;
        return 0;
    }
    return n;
}

static size_t http_on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ds_http *h = ud;
    size_t n = size * nmemb;
    /* A new status line starts a new header block (after 100 Continue, a
     * proxy's CONNECT answer, ...): only the last block is reported. */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        ds_buf_reset(&h->head);
    if (ds_buf_append(&h->head, ptr, n) != 0) {
        h->no_memory = 1;
        return 0;
    }
    return n;
}

/* ---------------------------------------------------------------------------
 * Helpers */

static ds_http *http_check_open(lua_State *L, int idx)
{
    ds_http *h = luaL_checkudata(L, idx, DS_HTTP_MT);
    if (h->curl == NULL)
        luaL_error(L, "http handle is closed");
    return h;
}

/* Reads opts[name] as a positive number of seconds, in milliseconds. */
static long http_opt_ms(lua_State *L, int opts, const char *name, double def)
{
    double s = def;
    int t = lua_getfield(L, opts, name);
    if (t != LUA_TNIL) {
        if (t != LUA_TNUMBER)
            luaL_error(L, "option '%s' must be a number of seconds, got %s", name,
                       luaL_typename(L, -1));
        s = lua_tonumber(L, -1);
        if (!(s > 0 && s <= (double)(LONG_MAX / 1000)))
            luaL_error(L, "option '%s' must be a positive number of seconds", name);
    }
    lua_pop(L, 1);
    long ms = (long)ceil(s * 1000.0);
    return ms > 0 ? ms : 1;
}

static void http_free_req_head(ds_http *h)
{
    curl_slist_free_all(h->req_head);
    h->req_head = NULL;
}

/* Options that never change for the life of the handle. Called once from
 * http_new; curl_easy_reset is never used, so they persist across posts. */
static CURLcode http_setup(ds_http *h, long connect_ms, long total_ms, int verify,
                           const char *ca_file)
{
    CURLcode rc = CURLE_OK;
    CURL *c = h->curl;
#define HTTP_SET(opt, val)                                                                 \
    do {                                                                                   \
        if (rc == CURLE_OK)                                                                \
            rc = curl_easy_setopt(c, opt, val);                                            \
    } while (0)
    HTTP_SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for timeouts: thread-safe */
    HTTP_SET(CURLOPT_ERRORBUFFER, h->errbuf);
    HTTP_SET(CURLOPT_WRITEFUNCTION, http_on_body);
    HTTP_SET(CURLOPT_WRITEDATA, (void *)h);
    HTTP_SET(CURLOPT_HEADERFUNCTION, http_on_header);
    HTTP_SET(CURLOPT_HEADERDATA, (void *)h);
    HTTP_SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    HTTP_SET(CURLOPT_TIMEOUT_MS, total_ms);
    HTTP_SET(CURLOPT_TCP_KEEPALIVE, 1L);
    HTTP_SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* Only http and https, also on any redirect (not followed anyway). */
    HTTP_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    HTTP_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* Responses whose Content-Length is over the limit fail before their
     * body is read; chunked ones are caught by http_on_body. */
    HTTP_SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_body);
    HTTP_SET(CURLOPT_USERAGENT, "dynamodb_stream/" DS_VERSION);
    /* No CURLOPT_ACCEPT_ENCODING: no Accept-Encoding is sent, bodies arrive
     * as they are. No CURLOPT_PROXY: libcurl reads the proxy variables of
     * the environment (http_proxy, HTTPS_PROXY, NO_PROXY) itself. */
    HTTP_SET(CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    HTTP_SET(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (ca_file != NULL)
        HTTP_SET(CURLOPT_CAINFO, ca_file);
#undef HTTP_SET
    return rc;
}

/* The error code for a failed transfer (see HACKING.md, HTTP). */
static const char *http_error_code(const ds_http *h, CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return "ConnectionRefused";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "UnknownHost";
    case CURLE_OPERATION_TIMEDOUT:
        return "Timeout";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: /* body shorter than its Content-Length */
        return "ConnectionReset";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return "TlsError";
    case CURLE_FILESIZE_EXCEEDED:
        return "ResponseTooLarge";
    case CURLE_WRITE_ERROR:
        return h->too_large ? "ResponseTooLarge" : "HttpError";
    default:
        return "HttpError";
    }
}

/* Writes "host" or "host:port" of url into out, never user:password@, path
 * or query (which could carry credentials). */
static void http_url_host(const char *url, char *out, size_t outlen)
{
    char *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    snprintf(out, outlen, "?");
    if (u == NULL)
        return;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
            snprintf(out, outlen, "%s:%s", host, port);
        else
            snprintf(out, outlen, "%s", host);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* Is the scheme of url http:// or https:// (any case)? */
static int http_scheme_ok(const char *url)
{
    static const char *const schemes[] = {"http://", "https://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t n = strlen(schemes[i]);
        size_t j = 0;
        while (j < n && url[j] != '\0' && tolower((unsigned char)url[j]) == schemes[i][j])
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

/* Pushes a table of the header lines in h->head: lower-case name -> value,
 * repeated headers joined with ", ". The status line and malformed lines are
 * skipped. h->head is owned by the userdata, so a raise here leaks nothing. */
static void http_push_headers(lua_State *L, const ds_http *h)
{
    const char *p = h->head.data, *end = p + h->head.len;
    lua_newtable(L);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *line_end = eol ? eol : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL && colon > p && !(line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
            const char *v = colon + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *c = p; c < colon; c++)
                luaL_addchar(&b, (char)tolower((unsigned char)*c));
            luaL_pushresult(&b);         /* t, name */
            lua_pushvalue(L, -1);        /* t, name, name */
            if (lua_rawget(L, -3) == LUA_TSTRING) { /* t, name, old */
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);        /* t, name, "old, new" */
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_rawset(L, -3);           /* t */
        }
        p = next;
    }
}

/* Releases the response buffers when they grew big; otherwise keeps them. */
static void http_trim_buffers(ds_http *h)
{
    if (h->body.cap > HTTP_KEEP_BUFFER_MAX)
        ds_buf_free(&h->body);
    if (h->head.cap > HTTP_KEEP_BUFFER_MAX)
        ds_buf_free(&h->head);
    ds_buf_reset(&h->body);
    ds_buf_reset(&h->head);
}

/* ---------------------------------------------------------------------------
 * Methods */

/* http:post(url [, headers [, body]]) -> status, body, response_headers
 *   | nil, "Code: message", "Code"
 *
 * A URL whose scheme is not http:// or https:// is a programming error, not
 * a transport failure, so it raises (like the other bad arguments) instead of
 * returning nil, err. */
static int http_post(lua_State *L)
{
    ds_http *h = http_check_open(L, 1);
    size_t url_len, body_len = 0;
    const char *url = luaL_checklstring(L, 2, &url_len);
    const char *body = "";
    luaL_argcheck(L, strlen(url) == url_len, 2, "URL contains a NUL byte");
    luaL_argcheck(L, http_scheme_ok(url), 2, "URL scheme must be http:// or https://");
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    if (!lua_isnoneornil(L, 4))
        body = luaL_checklstring(L, 4, &body_len);

    /* The header list is anchored in h: a raise while building it (memory)
     * leaves it to the next post or to close. Values never reach an error
     * message: they carry Authorization. */
    http_free_req_head(h);
    /* Without a value, "Expect:" stops libcurl from sending
     * "Expect: 100-continue" (and waiting for the answer) on large bodies. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    if (l == NULL)
        return luaL_error(L, "out of memory");
    h->req_head = l;
    if (lua_istable(L, 3)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
        for (lua_Integer i = 1; i <= n; i++) {
            size_t len;
            if (lua_rawgeti(L, 3, i) != LUA_TSTRING)
                return luaL_argerror(L, 3, lua_pushfstring(L, "header %I must be a string, got %s", i,
                                                           luaL_typename(L, -1)));
            const char *line = lua_tolstring(L, -1, &len);
            if (strlen(line) != len || strpbrk(line, "\r\n") != NULL)
                return luaL_argerror(L, 3, lua_pushfstring(L, "header %I contains CR, LF or NUL", i));
            if ((l = curl_slist_append(h->req_head, line)) == NULL)
                return luaL_error(L, "out of memory");
            h->req_head = l;
            lua_pop(L, 1);
        }
    }

    CURL *c = h->curl;
    CURLcode rc = curl_easy_setopt(c, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->req_head);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c, CURLOPT_POST, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    if (rc == CURLE_OK) /* not copied: the string stays on the stack during perform */
        rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);

    ds_buf_reset(&h->body);
    ds_buf_reset(&h->head);
    h->too_large = h->no_memory = 0;
    h->errbuf[0] = '\0';
    if (rc == CURLE_OK)
        rc = curl_easy_perform(c);

    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    /* Drop what refers to Lua-owned or per-request memory before pushing. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    http_free_req_head(h);

    if (rc != CURLE_OK) {
        const char *code = http_error_code(h, rc);
        const char *what = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
        char host[256], msg[CURL_ERROR_SIZE + 384];
        if (h->too_large || rc == CURLE_FILESIZE_EXCEEDED)
            what = "response body larger than max_body";
        else if (h->no_memory)
            what = "out of memory while reading the response";
        http_url_host(url, host, sizeof host);
        snprintf(msg, sizeof msg, "%s (POST to %s)", what, host);
        http_trim_buffers(h);
        return ds_fail(L, code, msg);
    }

    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, h->body.data ? h->body.data : "", h->body.len);
    http_push_headers(L, h);
    http_trim_buffers(h);
    return 3;
}

static int http_close(lua_State *L)
{
    ds_http *h = luaL_checkudata(L, 1, DS_HTTP_MT);
    if (h->curl != NULL) {
        curl_easy_cleanup(h->curl);
        h->curl = NULL;
    }
    http_free_req_head(h);
    ds_buf_free(&h->body);
    ds_buf_free(&h->head);
    return 0;
}

static int http_tostring(lua_State *L)
{
    ds_http *h = luaL_checkudata(L, 1, DS_HTTP_MT);
    lua_pushfstring(L, DS_HTTP_MT " (%p)%s", (void *)h, h->curl ? "" : " closed");
    return 1;
}

/* core.http([opts]) -> http handle. Bad options raise. */
static int http_new(lua_State *L)
{
    int verify = 1;
    const char *ca_file = NULL;
    lua_Integer max_body = HTTP_DEFAULT_MAX_BODY;
    long connect_ms, total_ms;

    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    connect_ms = http_opt_ms(L, 1, "connect_timeout", HTTP_DEFAULT_CONNECT_TIMEOUT);
    total_ms = http_opt_ms(L, 1, "timeout", HTTP_DEFAULT_TIMEOUT);

    int t = lua_getfield(L, 1, "verify_tls");
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        return luaL_error(L, "option 'verify_tls' must be a boolean, got %s", luaL_typename(L, -1));
    if (t == LUA_TBOOLEAN)
        verify = lua_toboolean(L, -1);

    t = lua_getfield(L, 1, "ca_file");
    if (t != LUA_TNIL) {
        size_t len;
        if (t != LUA_TSTRING)
            return luaL_error(L, "option 'ca_file' must be a string, got %s", luaL_typename(L, -1));
        ca_file = lua_tolstring(L, -1, &len); /* stays on the stack until setup copied it */
        if (strlen(ca_file) != len)
            return luaL_error(L, "option 'ca_file' contains a NUL byte");
    }

    t = lua_getfield(L, 1, "max_body");
    if (t != LUA_TNIL) {
        int isint;
        max_body = lua_tointegerx(L, -1, &isint);
        if (t != LUA_TNUMBER || !isint || max_body <= 0)
            return luaL_error(L, "option 'max_body' must be a positive integer");
    }

    /* Prepare, then acquire: a zeroed struct with its metatable is a valid
     * closed handle, so __gc is safe whatever fails next. */
    ds_http *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);
    luaL_setmetatable(L, DS_HTTP_MT);
    h->max_body = (size_t)max_body;
    if ((h->curl = curl_easy_init()) == NULL)
        return luaL_error(L, "curl_easy_init failed");
    CURLcode rc = http_setup(h, connect_ms, total_ms, verify, ca_file);
    if (rc != CURLE_OK) /* h owns the handle: the raise leaks nothing */
        return luaL_error(L, "cannot configure libcurl: %s", curl_easy_strerror(rc));
    return 1;
}

static const luaL_Reg http_methods[] = {
    {"post", http_post},
    {"close", http_close},
    {NULL, NULL},
};

static const luaL_Reg http_meta[] = {
    {"__index", NULL}, /* placeholder, set below */
    {"__gc", http_close},
    {"__close", http_close}, /* local h <close> = core.http() */
    {"__tostring", http_tostring},
    {NULL, NULL},
};

void ds_open_http(lua_State *L)
{
    /* Once per process in effect: libcurl counts the calls. In libcurl 7.84+
     * built with CURL_VERSION_THREADSAFE (Debian's is) this is thread-safe.
     * curl_global_cleanup is never called: other Lua states in the process
     * may still use libcurl. */
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        luaL_error(L, "curl_global_init failed: %s", curl_easy_strerror(rc));

    luaL_newmetatable(L, DS_HTTP_MT);
    luaL_setfuncs(L, http_meta, 0);
    luaL_newlib(L, http_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, http_new);
    lua_setfield(L, -2, "http");
}
