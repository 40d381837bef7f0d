/* core.http: HTTP(S) POSTs through libcurl's multi interface, one thread.
 *
 * A handle owns one multi handle (created on first use) and a pool of easy
 * handles reused across calls. The multi handle's connection cache is shared
 * by every transfer of the handle, so kept-alive connections are reused by
 * http:post and http:post_many alike. http:post is post_many of one request:
 * there is one way to set up an easy handle (http_setup), one way to run
 * transfers (http_run) and one mapping of CURLcode to our error codes
 * (http_error_code).
 *
 * A call has three phases:
 *   1. read and check the arguments (may raise); request header lists go
 *      straight into the userdata's request slots;
 *   2. run the transfers: no Lua call and no raise; libcurl callbacks only
 *      append into buffers owned by the userdata;
 *   3. push the results (may raise on memory, leaking nothing: every buffer
 *      is still owned by the userdata and no transfer is in flight).
 * URL and body strings are used in place: they are anchored by the
 * arguments, and nothing between phase 1 and the end of phase 2 allocates
 * Lua memory (so no collection step and no finalizer can run). Phase 3 may
 * run finalizers; one that uses the same handle finds it busy: a call
 * raises, a close is deferred to the end of the call in progress. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "buffer.h"
#include "ds_body.h"
#include "ds_http.h"
#include "ds_lua.h"

#define DS_HTTP_MT "dynamodb_stream.http"

#define HTTP_DEFAULT_CONNECT_TIMEOUT 5.0
#define HTTP_DEFAULT_TIMEOUT 30.0
#define HTTP_DEFAULT_MAX_BODY ((lua_Integer)64 * 1024 * 1024)
/* post_many: requests in flight at once, by default and at most. */
#define HTTP_DEFAULT_IN_FLIGHT 16
#define HTTP_MAX_IN_FLIGHT 1024
/* Limits of an answer's head, as the cosocket transport's (HACKING.md, HTTP):
 * header lines (1xx blocks included) and bytes of status and header lines. */
#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_HEAD_BYTES 65536
#define HTTP_HEAD_LIMITS "response headers over 100 lines or 65536 bytes"
/* Response buffers are kept for the next call (no malloc per response) as
 * long as each is at most HTTP_KEEP_BUFFER_MAX, all of them together at
 * most HTTP_KEEP_TOTAL, and a body buffer within the moving high-water mark
 * of recent answers (ds_keep); the rest are released: one huge response, one
 * wide call, or the pages of a busy hour read by a quiet consumer, should
 * not pin their memory. The limits keep a poller's answers
 * (up to about 2 MB each, one per request in flight): released and grown
 * again on every poll, they made glibc's heap step up over a long run (RSS
 * wandering by 10%) and faulted their pages in anew. */
#define HTTP_KEEP_BUFFER_MAX (4 * 1024 * 1024)
#define HTTP_KEEP_TOTAL (16 * 1024 * 1024)
/* Request slots kept after a call; a wider call frees its slots at the end. */
#define HTTP_KEEP_REQS 1024

/* One request of the call in progress and, once done, its outcome. */
typedef struct {
    const char *method;          /* "GET", "PUT", "POST" or "DELETE" (static strings) */
    const char *url;             /* Lua strings anchored by the call's arguments */
    const char *post;
    size_t post_len;
    struct curl_slist *req_head; /* owned until the transfer is done */
    ds_buf body;                 /* response body; on failure the error message */
    ds_buf head;                 /* raw header lines of the last status block */
    long status;
    CURLcode rc;
    const char *fixed_msg; /* error message when body could not hold one */
    int too_large;         /* set by the write callback when max_body is exceeded */
    int head_too_large;    /* set by the header callback past the head limits */
    int body_seen;         /* the write callback ran: the head was complete */
    int head_lines;        /* header lines so far (1xx blocks included) */
    size_t head_bytes;     /* bytes of status and header lines so far */
    int no_memory;         /* set by a callback when a buffer could not grow */
} ds_req;

/* A pooled easy handle. Each is its own allocation, so the pointers libcurl
 * holds (callback data, error buffer, private) never move. */
typedef struct {
    CURL *curl;
    ds_req *req; /* the request on this handle, NULL when idle */
    size_t max_body;
    char errbuf[CURL_ERROR_SIZE];
} ds_easy;

typedef struct {
    int open;
    int busy;          /* a call is running transfers or pushing results */
    int close_pending; /* close was asked for while busy: done when the call ends */
    CURLM *multi;     /* NULL until the first request */
    ds_easy **easy;   /* the pool: n_easy handles, room for cap_easy */
    size_t n_easy, cap_easy;
    ds_req *reqs;     /* request slots, room for cap_reqs */
    size_t cap_reqs;
    long conn_limit;  /* CURLMOPT_MAX_TOTAL/HOST_CONNECTIONS now set, 0 before */
    long cache_size;  /* CURLMOPT_MAXCONNECTS now set, 0 before */
    /* Options every easy handle gets. */
    long connect_ms, total_ms;
    int verify;
    char *ca_file; /* owned copy or NULL */
    size_t max_body;
    int body_buffer; /* answers' bodies as body userdata (ds_body.h), not strings */
    ds_keep body_keep; /* the largest body of each recent call */
} ds_http;

/* ---------------------------------------------------------------------------
 * libcurl callbacks: no Lua in here. Returning a count other than the one
 * given makes libcurl abort the transfer with CURLE_WRITE_ERROR. */

static size_t http_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ds_easy *e = ud;
    ds_req *r = e->req;
    size_t n = size * nmemb;
    if (r == NULL)
        return 0;
    if (!r->body_seen) {
        /* Room for the whole announced body at once (no regrowth on the
         * way), at most HTTP_KEEP_BUFFER_MAX: a length a server merely
         * claims does not allocate more than that before bytes arrive. */
        curl_off_t cl = -1;
        if (curl_easy_getinfo(e->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl > 0 &&
            (size_t)cl <= e->max_body)
            (void)ds_buf_reserve(&r->body, (size_t)cl < HTTP_KEEP_BUFFER_MAX ? (size_t)cl : HTTP_KEEP_BUFFER_MAX);
    }
    r->body_seen = 1;
    if (n > e->max_body - r->body.len) { /* body.len <= max_body always */
        r->too_large = 1;
        return 0;
    }
    if (ds_buf_append(&r->body, ptr, n) != 0) {
        r->no_memory = 1;
        return 0;
    }
    return n;
}

static size_t http_on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ds_easy *e = ud;
    ds_req *r = e->req;
    size_t n = size * nmemb;
    if (r == NULL)
        return 0;
    /* A new status line starts a new header block (after 100 Continue, a
     * proxy's CONNECT answer, ...): only the last block is reported. */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        ds_buf_reset(&r->head);
    else if (n > 2 || (n > 0 && ptr[0] != '\r' && ptr[0] != '\n')) /* not the blank line */
        r->head_lines++;
    r->head_bytes += n;
    if (r->head_lines > HTTP_MAX_HEADERS || r->head_bytes > HTTP_MAX_HEAD_BYTES) {
        r->head_too_large = 1;
        return 0;
    }
    if (ds_buf_append(&r->head, ptr, n) != 0) {
        r->no_memory = 1;
        return 0;
    }
    return n;
}

/* ---------------------------------------------------------------------------
 * Helpers */

static ds_http *http_check_open(lua_State *L, int idx)
{
    ds_http *h = luaL_checkudata(L, idx, DS_HTTP_MT);
    if (!h->open)
        luaL_error(L, "http handle is closed");
    if (h->busy)
        luaL_error(L, "http handle is busy (used from a finalizer during one of its calls?)");
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

/* The options of every easy handle, set once when it is made; never
 * curl_easy_reset, so they persist across transfers. Per-transfer options
 * are set by http_start and cleared by http_detach. */
static CURLcode http_setup(const ds_http *h, ds_easy *e)
{
    CURLcode rc = CURLE_OK;
    CURL *c = e->curl;
#define HTTP_SET(opt, val)                                                                 \
    do {                                                                                   \
        if (rc == CURLE_OK)                                                                \
            rc = curl_easy_setopt(c, opt, val);                                            \
    } while (0)
    HTTP_SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for timeouts: thread-safe */
    HTTP_SET(CURLOPT_PRIVATE, (void *)e);
    HTTP_SET(CURLOPT_ERRORBUFFER, e->errbuf);
    HTTP_SET(CURLOPT_WRITEFUNCTION, http_on_body);
    HTTP_SET(CURLOPT_WRITEDATA, (void *)e);
    HTTP_SET(CURLOPT_HEADERFUNCTION, http_on_header);
    HTTP_SET(CURLOPT_HEADERDATA, (void *)e);
    HTTP_SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
    HTTP_SET(CURLOPT_TIMEOUT_MS, h->total_ms);
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
    HTTP_SET(CURLOPT_SSL_VERIFYPEER, h->verify ? 1L : 0L);
    HTTP_SET(CURLOPT_SSL_VERIFYHOST, h->verify ? 2L : 0L);
    if (h->ca_file != NULL)
        HTTP_SET(CURLOPT_CAINFO, h->ca_file);
#undef HTTP_SET
    return rc;
}

/* Adds one configured easy handle to the pool. Raises on failure; the pool
 * owns whatever was made. */
static void http_grow_pool(lua_State *L, ds_http *h)
{
    if (h->n_easy == h->cap_easy) {
        size_t cap = h->cap_easy ? h->cap_easy * 2 : 4;
        ds_easy **a = realloc(h->easy, cap * sizeof *a);
        if (a == NULL)
            luaL_error(L, "out of memory");
        h->easy = a;
        h->cap_easy = cap;
    }
    ds_easy *e = calloc(1, sizeof *e);
    if (e == NULL)
        luaL_error(L, "out of memory");
    e->max_body = h->max_body;
    h->easy[h->n_easy++] = e; /* owned from here on */
    if ((e->curl = curl_easy_init()) == NULL)
        luaL_error(L, "curl_easy_init failed");
    CURLcode rc = http_setup(h, e);
    if (rc != CURLE_OK)
        luaL_error(L, "cannot configure libcurl: %s", curl_easy_strerror(rc));
}

/* Frees the header lists a raise in phase 1 may have left in the slots. */
static void http_clear_reqs(ds_http *h)
{
    for (size_t i = 0; i < h->cap_reqs; i++) {
        curl_slist_free_all(h->reqs[i].req_head);
        h->reqs[i].req_head = NULL;
    }
}

/* Makes room for n requests with up to in_flight at once: request slots,
 * the multi handle, pooled easy handles, connection limits. Raises on
 * failure, leaking nothing. */
static void http_reserve(lua_State *L, ds_http *h, size_t n, long in_flight)
{
    http_clear_reqs(h);
    if (n > h->cap_reqs) {
        if (n > SIZE_MAX / sizeof *h->reqs)
            luaL_error(L, "out of memory");
        ds_req *a = realloc(h->reqs, n * sizeof *a);
        if (a == NULL)
            luaL_error(L, "out of memory");
        memset(a + h->cap_reqs, 0, (n - h->cap_reqs) * sizeof *a);
        h->reqs = a;
        h->cap_reqs = n;
    }
    if (h->multi == NULL && (h->multi = curl_multi_init()) == NULL)
        luaL_error(L, "curl_multi_init failed");
    size_t want = n < (size_t)in_flight ? n : (size_t)in_flight;
    while (h->n_easy < want)
        http_grow_pool(L, h);
    /* At most in_flight connections open at once, to any host; idle ones
     * are kept (up to the widest call so far) for the next call to reuse. */
    if (h->conn_limit != in_flight) {
        curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, in_flight);
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, in_flight);
        h->conn_limit = in_flight;
    }
    if (h->cache_size < in_flight) {
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, in_flight);
        h->cache_size = in_flight;
    }
}

/* Raises "bad argument" naming the request (reqno > 0, post_many) or not. */
static int http_req_error(lua_State *L, int arg, lua_Integer reqno, const char *msg)
{
    if (reqno > 0)
        msg = lua_pushfstring(L, "request %d: %s", (int)reqno, msg);
    return luaL_argerror(L, arg, msg);
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

/* Phase 1 for one request: the URL, header list and body at stack indices
 * iu, ih, ib (strings, a table or nil, a string or nil; argument numbers
 * au, ah, ab for messages) go into r. Raises on a bad argument: the header
 * list is already owned by r. Header values never reach an error message:
 * they carry Authorization. Allocates no Lua memory unless it raises. */
static void http_read_request(lua_State *L, ds_req *r, int iu, int ih, int ib, int au, int ah,
                              int ab, lua_Integer reqno)
{
    size_t url_len, body_len = 0;
    if (lua_type(L, iu) != LUA_TSTRING)
        http_req_error(L, au, reqno, lua_pushfstring(L, "URL must be a string, got %s",
                                                     luaL_typename(L, iu)));
    const char *url = lua_tolstring(L, iu, &url_len);
    if (strlen(url) != url_len)
        http_req_error(L, au, reqno, "URL contains a NUL byte");
    if (!http_scheme_ok(url))
        http_req_error(L, au, reqno, "URL scheme must be http:// or https://");
    int t = lua_type(L, ih);
    if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TTABLE)
        http_req_error(L, ah, reqno, lua_pushfstring(L, "headers must be a table, got %s",
                                                     luaL_typename(L, ih)));
    t = lua_type(L, ib);
    if (t != LUA_TNIL && t != LUA_TNONE && t != LUA_TSTRING)
        http_req_error(L, ab, reqno, lua_pushfstring(L, "body must be a string, got %s",
                                                     luaL_typename(L, ib)));
    const char *body = t == LUA_TSTRING ? lua_tolstring(L, ib, &body_len) : "";

    /* Without a value, "Expect:" stops libcurl from sending
     * "Expect: 100-continue" (and waiting for the answer) on large bodies. */
    if ((r->req_head = curl_slist_append(NULL, "Expect:")) == NULL)
        luaL_error(L, "out of memory");
    if (lua_istable(L, ih)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, ih);
        for (lua_Integer i = 1; i <= n; i++) {
            size_t len;
            if (lua_rawgeti(L, ih, i) != LUA_TSTRING)
                http_req_error(L, ah, reqno, lua_pushfstring(L, "header %d must be a string, got %s",
                                                             (int)i, luaL_typename(L, -1)));
            const char *line = lua_tolstring(L, -1, &len);
            if (strlen(line) != len || strpbrk(line, "\r\n") != NULL)
                http_req_error(L, ah, reqno,
                               lua_pushfstring(L, "header %d contains CR, LF or NUL", (int)i));
            struct curl_slist *l = curl_slist_append(r->req_head, line);
            if (l == NULL)
                luaL_error(L, "out of memory");
            r->req_head = l;
            lua_pop(L, 1);
        }
    }
    r->method = "POST";
    r->url = url;
    r->post = body;
    r->post_len = body_len;
    r->status = 0;
    r->rc = CURLE_OK;
    r->fixed_msg = NULL;
    r->too_large = r->no_memory = 0;
    r->head_too_large = r->body_seen = r->head_lines = 0;
    r->head_bytes = 0;
    ds_buf_reset(&r->body);
    ds_buf_reset(&r->head);
}

/* Phase 1, bodies as body userdata: a slot whose buffer went out with an
 * earlier answer takes the block of a body closed since. */
static void http_adopt_blocks(lua_State *L, ds_http *h, size_t n)
{
    if (h->body_buffer)
        for (size_t i = 0; i < n; i++)
            ds_body_adopt(L, &h->reqs[i].body);
}

/* The error code for a failed transfer (see HACKING.md, HTTP). */
static const char *http_error_code(const ds_req *r)
{
    switch (r->rc) {
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
        return r->too_large || r->head_too_large ? "ResponseTooLarge" : "HttpError";
    case CURLE_OUT_OF_MEMORY: /* before the body: libcurl's limit on one header line */
        return r->body_seen || r->no_memory ? "HttpError" : "ResponseTooLarge";
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

/* Records a failure of r: rc and the message "what (METHOD to host)" in
 * r->body (the response body is of no use then). what is libcurl's error
 * buffer, or NULL for its generic text. */
static void http_set_failure(ds_req *r, CURLcode rc, const char *what)
{
    char host[256], msg[CURL_ERROR_SIZE + 384];
    r->rc = rc;
    if (what == NULL || what[0] == '\0')
        what = curl_easy_strerror(rc);
    if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        what = "response body larger than max_body";
    else if (r->head_too_large)
        what = HTTP_HEAD_LIMITS;
    else if (rc == CURLE_OUT_OF_MEMORY && !r->body_seen && !r->no_memory)
        what = "a response header line over 100 KiB (libcurl's limit)";
    else if (r->no_memory)
        what = "out of memory while reading the response";
    http_url_host(r->url, host, sizeof host);
    int len = snprintf(msg, sizeof msg, "%s (%s to %s)", what, r->method, host);
    if (len < 0)
        len = 0;
    else if ((size_t)len >= sizeof msg)
        len = (int)sizeof msg - 1;
    ds_buf_reset(&r->body);
    ds_buf_reset(&r->head);
    if (ds_buf_append(&r->body, msg, (size_t)len) != 0)
        r->fixed_msg = "out of memory";
}

/* Drops what the easy handle refers to of the request (Lua-owned or
 * per-request memory) and frees its header list. */
static void http_detach(ds_easy *e)
{
    CURL *c = e->curl;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    if (e->req != NULL) {
        curl_slist_free_all(e->req->req_head);
        e->req->req_head = NULL;
        e->req = NULL;
    }
}

/* Starts r on the idle easy handle e. 0 when it is in flight; -1 when it
 * failed at once (r records why). */
static int http_start(ds_http *h, ds_easy *e, ds_req *r)
{
    CURL *c = e->curl;
    e->req = r;
    e->errbuf[0] = '\0';
    CURLcode rc = curl_easy_setopt(c, CURLOPT_URL, r->url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->req_head);
    if (strcmp(r->method, "GET") == 0) {
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(c, CURLOPT_POST, 1L);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->post_len);
        if (rc == CURLE_OK) /* not copied: the string stays anchored until the transfer is done */
            rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->post);
        if (rc == CURLE_OK && strcmp(r->method, "POST") != 0) /* PUT, DELETE: a body as POST sends it */
            rc = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }
    if (rc == CURLE_OK) {
        CURLMcode mc = curl_multi_add_handle(h->multi, c);
        if (mc == CURLM_OK)
            return 0;
        rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
        http_set_failure(r, rc, curl_multi_strerror(mc));
    } else {
        http_set_failure(r, rc, e->errbuf);
    }
    http_detach(e);
    return -1;
}

/* Ends the transfer on e with result rc (CURLE_OK or a failure) and
 * returns e to the idle pool. what overrides libcurl's error text. */
static void http_finish(ds_http *h, ds_easy *e, CURLcode rc, const char *what)
{
    ds_req *r = e->req;
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_multi_remove_handle(h->multi, e->curl);
    if (rc != CURLE_OK)
        http_set_failure(r, rc, what ? what : e->errbuf);
    else
        r->rc = CURLE_OK;
    http_detach(e);
}

static ds_easy *http_idle_easy(ds_http *h)
{
    for (size_t i = 0; i < h->n_easy; i++)
        if (h->easy[i]->req == NULL)
            return h->easy[i];
    return NULL; /* not reached: http_reserve made min(n, in_flight) handles */
}

/* Phase 2: runs h->reqs[0 .. n-1] with at most in_flight at once, waiting in
 * curl_multi_poll (no busy loop). No Lua here. Every request ends with
 * r->rc set and no transfer left in the multi handle. */
static void http_run(ds_http *h, size_t n, size_t in_flight)
{
    size_t next = 0, active = 0;
    for (;;) {
        /* Start requests while there is room. */
        while (active < in_flight && next < n) {
            ds_easy *e = http_idle_easy(h);
            if (e == NULL)
                break;
            if (http_start(h, e, &h->reqs[next++]) == 0)
                active++;
        }
        if (active == 0 && next >= n)
            return;
        int running = 0;
        CURLMcode mc = curl_multi_perform(h->multi, &running);
        if (mc == CURLM_OK) {
            CURLMsg *msg;
            int left;
            size_t done = 0;
            while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
                if (msg->msg != CURLMSG_DONE)
                    continue;
                char *p = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
                ds_easy *e = (ds_easy *)(void *)p;
                CURLcode rc = msg->data.result; /* msg is invalid after the removal */
                if (e == NULL || e->req == NULL)
                    continue; /* not ours: cannot happen */
                http_finish(h, e, rc, NULL);
                active--;
                done++;
            }
            if (done > 0 && next < n)
                continue; /* start the next ones before waiting */
            if (active > 0)
                mc = curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
        }
        if (mc != CURLM_OK) {
            /* The multi handle itself failed (memory): fail what is in flight
             * and what has not started, rather than spin. */
            const char *what = curl_multi_strerror(mc);
            for (size_t i = 0; i < h->n_easy; i++)
                if (h->easy[i]->req != NULL)
                    http_finish(h, h->easy[i], CURLE_OUT_OF_MEMORY, what);
            for (; next < n; next++)
                http_set_failure(&h->reqs[next], CURLE_OUT_OF_MEMORY, what);
            return;
        }
    }
}

/* Pushes a table of the header lines in r->head: lower-case name -> value,
 * repeated headers joined with ", ". The status line and malformed lines are
 * skipped. r->head is owned by the userdata, so a raise here leaks nothing. */
static void http_push_headers(lua_State *L, const ds_req *r)
{
    const char *p = r->head.data, *end = p + r->head.len;
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

/* Phase 3 for one request: pushes status, body, headers or nil, "Code:
 * message", "Code". The body is a string, or with body = "buffer" a body
 * userdata that takes r's buffer over (no copy; the slot grows a new one). */
static void http_push_result(lua_State *L, const ds_http *h, ds_req *r)
{
    if (r->rc != CURLE_OK) {
        lua_pushnil(L);
        if (r->fixed_msg != NULL)
            lua_pushfstring(L, "%s: %s", http_error_code(r), r->fixed_msg);
        else {
            lua_pushfstring(L, "%s: ", http_error_code(r));
            lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
            lua_concat(L, 2);
        }
        lua_pushstring(L, http_error_code(r));
        return;
    }
    lua_pushinteger(L, (lua_Integer)r->status);
    if (h->body_buffer)
        ds_body_push(L, &r->body);
    else
        lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    http_push_headers(L, r);
}

/* After a call: keeps response buffers within HTTP_KEEP_BUFFER_MAX each,
 * HTTP_KEEP_TOTAL in all and body buffers within h->body_keep, and the
 * request slots within HTTP_KEEP_REQS. */
static void http_trim(ds_http *h)
{
    size_t kept = 0;
    for (size_t i = 0; i < h->cap_reqs; i++) {
        ds_buf *bufs[2] = {&h->reqs[i].body, &h->reqs[i].head};
        for (int j = 0; j < 2; j++) {
            if (bufs[j]->cap > HTTP_KEEP_BUFFER_MAX || kept + bufs[j]->cap > HTTP_KEEP_TOTAL ||
                (j == 0 && !ds_keep_fits(&h->body_keep, bufs[j]->cap)))
                ds_buf_free(bufs[j]);
            kept += bufs[j]->cap;
            ds_buf_reset(bufs[j]);
        }
        curl_slist_free_all(h->reqs[i].req_head);
        h->reqs[i].req_head = NULL;
    }
    if (h->cap_reqs > HTTP_KEEP_REQS) {
        for (size_t i = 0; i < h->cap_reqs; i++) {
            ds_buf_free(&h->reqs[i].body);
            ds_buf_free(&h->reqs[i].head);
        }
        free(h->reqs);
        h->reqs = NULL;
        h->cap_reqs = 0;
    }
}

static void http_free_all(ds_http *h);

/* Phase 3 body, run protected by http_results: pushes post's three values
 * (arg 3 false) or post_many's results table. */
static int http_push_results(lua_State *L)
{
    ds_http *h = lua_touserdata(L, 1);
    size_t n = (size_t)lua_tointeger(L, 2);
    if (!lua_toboolean(L, 3)) {
        http_push_result(L, h, &h->reqs[0]);
        return 3;
    }
    lua_createtable(L, n <= INT_MAX ? (int)n : INT_MAX, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 3, 0);
        http_push_result(L, h, &h->reqs[i]); /* t, r, a, b, c */
        lua_rawseti(L, -4, 3);
        lua_rawseti(L, -3, 2);
        if (lua_isnil(L, -1))
            lua_pop(L, 1);
        else
            lua_rawseti(L, -2, 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        /* Release what will not be kept as soon as it is copied. */
        if (h->reqs[i].body.cap > HTTP_KEEP_BUFFER_MAX)
            ds_buf_free(&h->reqs[i].body);
    }
    return 1;
}

/* Phases 2 and 3 of a call of n requests (many: post_many, else post):
 * runs them, pushes the results and returns their count. The handle is
 * busy meanwhile and is trimmed (or closed, if a finalizer asked for it)
 * whether pushing succeeded or raised. */
static int http_results(lua_State *L, ds_http *h, size_t n, size_t in_flight, int many)
{
    int nres = many ? 1 : 3;
    size_t largest = 0;
    h->busy = 1;
    http_run(h, n, in_flight);
    for (size_t i = 0; i < n; i++)
        if (h->reqs[i].body.len > largest)
            largest = h->reqs[i].body.len;
    ds_keep_note(&h->body_keep, largest);
    lua_pushcfunction(L, http_push_results);
    lua_pushlightuserdata(L, h);
    lua_pushinteger(L, (lua_Integer)n);
    lua_pushboolean(L, many);
    int st = lua_pcall(L, 3, nres, 0);
    h->busy = 0;
    if (h->close_pending)
        http_free_all(h);
    else
        http_trim(h);
    if (st != LUA_OK)
        return lua_error(L);
    return nres;
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
    luaL_checkstring(L, 2); /* numbers become strings in place, as before */
    if (!lua_isnoneornil(L, 4))
        luaL_checkstring(L, 4);
    lua_settop(L, 4);
    http_reserve(L, h, 1, 1);
    http_read_request(L, &h->reqs[0], 2, 3, 4, 2, 3, 4, 0);
    http_adopt_blocks(L, h, 1);
    return http_results(L, h, 1, 1, 0);
}

/* http:request(method, url [, headers [, body]]) -> what post returns
 *
 * method is "GET", "PUT", "POST" or "DELETE"; a GET sends no body. For the
 * few calls that are not AWS JSON POSTs (instance metadata, SSO). */
static int http_request(lua_State *L)
{
    static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", NULL};
    ds_http *h = http_check_open(L, 1);
    const char *method = methods[luaL_checkoption(L, 2, NULL, methods)];
    luaL_checkstring(L, 3);
    if (!lua_isnoneornil(L, 5))
        luaL_checkstring(L, 5);
    lua_settop(L, 5);
    http_reserve(L, h, 1, 1);
    http_read_request(L, &h->reqs[0], 3, 4, 5, 3, 4, 5, 0);
    h->reqs[0].method = method;
    http_adopt_blocks(L, h, 1);
    return http_results(L, h, 1, 1, 0);
}

/* http:post_many(requests [, max_in_flight]) -> results
 *
 * requests is a sequence of { url, headers, body } (the arguments of post);
 * results has one entry per request, in the same order: { status, body,
 * headers } or { nil, "Code: message", "Code" }, i.e. what post would have
 * returned, packed (table.unpack(results[i], 1, 3)). At most max_in_flight
 * (default 16, 1 .. 1024) are in flight at once, over as many connections. */
static int http_post_many(lua_State *L)
{
    ds_http *h = http_check_open(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer in_flight = luaL_optinteger(L, 3, HTTP_DEFAULT_IN_FLIGHT);
    luaL_argcheck(L, in_flight >= 1 && in_flight <= HTTP_MAX_IN_FLIGHT, 3,
                  "max_in_flight must be an integer from 1 to 1024");
    lua_settop(L, 3);
    size_t n = (size_t)lua_rawlen(L, 2);
    if (n == 0) {
        lua_newtable(L);
        return 1;
    }
    luaL_checkstack(L, 8, NULL);
    http_reserve(L, h, n, (long)in_flight);
    for (size_t i = 0; i < n; i++) {
        lua_Integer reqno = (lua_Integer)i + 1;
        if (lua_rawgeti(L, 2, reqno) != LUA_TTABLE)
            http_req_error(L, 2, reqno, lua_pushfstring(L, "must be a table { url, headers, body }, got %s",
                                                        luaL_typename(L, -1)));
        lua_rawgeti(L, 4, 1); /* 5: url */
        lua_rawgeti(L, 4, 2); /* 6: headers */
        lua_rawgeti(L, 4, 3); /* 7: body */
        http_read_request(L, &h->reqs[i], 5, 6, 7, 2, 2, 2, reqno);
        lua_settop(L, 3); /* the strings stay anchored by requests[i] */
    }
    http_adopt_blocks(L, h, n);
    return http_results(L, h, n, (size_t)in_flight, 1);
}

/* Releases everything; the handle is closed. */
static void http_free_all(ds_http *h)
{
    /* Easy handles are never in the multi handle between calls; libcurl's
     * order: remove (done), clean up the easy handles, then the multi. */
    for (size_t i = 0; i < h->n_easy; i++) {
        if (h->easy[i]->curl != NULL)
            curl_easy_cleanup(h->easy[i]->curl);
        free(h->easy[i]);
    }
    free(h->easy);
    h->easy = NULL;
    h->n_easy = h->cap_easy = 0;
    if (h->multi != NULL) {
        curl_multi_cleanup(h->multi);
        h->multi = NULL;
    }
    for (size_t i = 0; i < h->cap_reqs; i++) {
        curl_slist_free_all(h->reqs[i].req_head);
        ds_buf_free(&h->reqs[i].body);
        ds_buf_free(&h->reqs[i].head);
    }
    free(h->reqs);
    h->reqs = NULL;
    h->cap_reqs = 0;
    free(h->ca_file);
    h->ca_file = NULL;
    h->open = 0;
    h->close_pending = 0;
}

static int http_close(lua_State *L)
{
    ds_http *h = luaL_checkudata(L, 1, DS_HTTP_MT);
    if (h->busy) { /* from a finalizer during a call: that call closes it */
        h->open = 0;
        h->close_pending = 1;
        return 0;
    }
    http_free_all(h);
    return 0;
}

/* h:kept_bytes() -> the bytes of answer buffers kept for the next calls:
 * the handle's own and, with body = "buffer", the pool of closed bodies'
 * blocks (shared by the handles of the state) its answers draw from. */
static int http_kept_bytes(lua_State *L)
{
    ds_http *h = luaL_checkudata(L, 1, DS_HTTP_MT);
    size_t kept = h->body_buffer ? ds_body_pool_bytes(L) : 0;
    for (size_t i = 0; i < h->cap_reqs; i++)
        kept += h->reqs[i].body.cap + h->reqs[i].head.cap;
    lua_pushinteger(L, (lua_Integer)kept);
    return 1;
}

static int http_tostring(lua_State *L)
{
    ds_http *h = luaL_checkudata(L, 1, DS_HTTP_MT);
    lua_pushfstring(L, DS_HTTP_MT " (%p)%s", (void *)h, h->open ? "" : " closed");
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
        ca_file = lua_tolstring(L, -1, &len); /* stays on the stack until copied */
        if (strlen(ca_file) != len)
            return luaL_error(L, "option 'ca_file' contains a NUL byte");
    }

    int body_buffer = 0;
    t = lua_getfield(L, 1, "body");
    if (t != LUA_TNIL) {
        const char *how = lua_tostring(L, -1);
        if (t != LUA_TSTRING || (strcmp(how, "string") != 0 && strcmp(how, "buffer") != 0))
            return luaL_error(L, "option 'body' must be \"string\" or \"buffer\"");
        body_buffer = how[0] == 'b';
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
    h->open = 1;
    h->connect_ms = connect_ms;
    h->total_ms = total_ms;
    h->verify = verify;
    h->max_body = (size_t)max_body;
    h->body_buffer = body_buffer;
    if (ca_file != NULL && (h->ca_file = strdup(ca_file)) == NULL)
        return luaL_error(L, "out of memory");
    /* One easy handle now: a configuration libcurl refuses fails here. */
    http_grow_pool(L, h);
    return 1;
}

static const luaL_Reg http_methods[] = {
    {"post", http_post},
    {"post_many", http_post_many},
    {"request", http_request},
    {"close", http_close},
    {"kept_bytes", http_kept_bytes},
    {NULL, NULL},
};

static const luaL_Reg http_meta[] = {
    {"__index", NULL}, /* placeholder: ds_new_class sets it */
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

    ds_new_class(L, DS_HTTP_MT, http_meta, http_methods);

    lua_pushcfunction(L, http_new);
    lua_setfield(L, -2, "http");
}
