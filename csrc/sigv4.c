/* AWS Signature Version 4 over OpenSSL. Lua-free: see sigv4.h for the contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"

int sigv4_sha256(const void *data, size_t len, unsigned char out[SIGV4_SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != SIGV4_SHA256_LEN)
        return SIGV4_ECRYPTO;
    return SIGV4_OK;
}

int sigv4_sha1(const void *data, size_t len, unsigned char out[SIGV4_SHA1_LEN])
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha1(), NULL) != 1 || n != SIGV4_SHA1_LEN)
        return SIGV4_ECRYPTO;
    return SIGV4_OK;
}

int sigv4_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                      unsigned char out[SIGV4_SHA256_LEN])
{
    static const unsigned char empty = 0;
    unsigned int n = 0;
    if (keylen > 0x7fffffff) /* HMAC() takes an int key length */
        return SIGV4_EINVAL;
    /* HMAC() treats a NULL data pointer as "no input", but be explicit. */
    if (HMAC(EVP_sha256(), keylen ? key : &empty, (int)keylen,
             msglen ? msg : &empty, msglen, out, &n) == NULL || n != SIGV4_SHA256_LEN)
        return SIGV4_ECRYPTO;
    return SIGV4_OK;
}

void sigv4_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 tchar, upper-case letters excluded (names arrive lower-cased). */
static int is_lower_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Printable ASCII without spaces: method, path, query, credential parts. */
static int is_visible(const char *s, int allow_slash)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || (!allow_slash && c == '/'))
            return 0;
    }
    return 1;
}

static int is_scope_part(const char *s)
{
    return s != NULL && *s != '\0' && is_visible(s, 0);
}

static int is_date(const char *s)
{
    int i;
    for (i = 0; i < SIGV4_DATE_LEN; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

static int is_amz_date(const char *s)
{
    int i;
    if (s == NULL || strlen(s) != SIGV4_AMZ_DATE_LEN || !is_date(s) || s[8] != 'T' || s[15] != 'Z')
        return 0;
    for (i = 9; i < 15; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

static int name_cmp(const sigv4_header *a, const sigv4_header *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c != 0)
        return c;
    return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

int sigv4_check_request(const sigv4_request *req, const char **why)
{
    const char *dummy;
    size_t i, j;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (req->method == NULL || *req->method == '\0' || !is_visible(req->method, 0))
        *why = "method must be a non-empty token";
    else if (req->path == NULL || req->path[0] != '/' || !is_visible(req->path, 1))
        *why = "path must start with '/' and contain no spaces or control characters";
    else if (req->query != NULL && !is_visible(req->query, 1))
        *why = "query must contain no spaces or control characters";
    else if (!is_amz_date(req->amz_date))
        *why = "amz_date must look like YYYYMMDDTHHMMSSZ";
    else if (!is_scope_part(req->access_key_id))
        *why = "access key id must be non-empty, without '/', spaces or control characters";
    else if (!is_scope_part(req->region))
        *why = "region must be non-empty, without '/', spaces or control characters";
    else if (!is_scope_part(req->service))
        *why = "service must be non-empty, without '/', spaces or control characters";
    else if (req->payload == NULL && req->payload_len != 0)
        *why = "payload is NULL but payload_len is not 0";
    else if (req->headers == NULL || req->nheaders == 0)
        *why = "at least one header (host) must be signed";
    if (*why != NULL)
        return SIGV4_EINVAL;

    for (i = 0; i < req->nheaders; i++) {
        const sigv4_header *h = &req->headers[i];
        if (h->name == NULL || h->name_len == 0) {
            *why = "header name is empty";
            return SIGV4_EINVAL;
        }
        for (j = 0; j < h->name_len; j++)
            if (!is_lower_tchar((unsigned char)h->name[j])) {
                *why = "header name must be a lower-case token";
                return SIGV4_EINVAL;
            }
        if (h->value == NULL && h->value_len != 0) {
            *why = "header value is NULL";
            return SIGV4_EINVAL;
        }
        for (j = 0; j < h->value_len; j++)
            if (h->value[j] == '\r' || h->value[j] == '\n' || h->value[j] == '\0') {
                *why = "header value contains CR, LF or NUL";
                return SIGV4_EINVAL;
            }
        if (i > 0 && name_cmp(&req->headers[i - 1], h) >= 0) {
            *why = "headers must be sorted by name without duplicates";
            return SIGV4_EINVAL;
        }
    }
    return SIGV4_OK;
}

int sigv4_signing_key(const char *secret, size_t secret_len, const char *date,
                      const char *region, const char *service,
                      unsigned char key[SIGV4_SHA256_LEN])
{
    unsigned char k[SIGV4_SHA256_LEN];
    unsigned char *ksecret;
    int rc;

    if (secret == NULL || date == NULL || strlen(date) != SIGV4_DATE_LEN || !is_date(date)
        || region == NULL || service == NULL || secret_len > ((size_t)-1) - 4)
        return SIGV4_EINVAL;
    if ((ksecret = malloc(secret_len + 4)) == NULL)
        return SIGV4_ENOMEM;
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, secret, secret_len);

    rc = sigv4_hmac_sha256(ksecret, secret_len + 4, date, SIGV4_DATE_LEN, k);
    if (rc == SIGV4_OK)
        rc = sigv4_hmac_sha256(k, sizeof k, region, strlen(region), k);
    if (rc == SIGV4_OK)
        rc = sigv4_hmac_sha256(k, sizeof k, service, strlen(service), k);
    if (rc == SIGV4_OK)
        rc = sigv4_hmac_sha256(k, sizeof k, SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR), key);

    OPENSSL_cleanse(ksecret, secret_len + 4);
    free(ksecret);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

/* ---- canonical request, streamed into a SHA-256 context ---- */

typedef struct {
    EVP_MD_CTX *md;
    int ok;
} sink;

static void put(sink *s, const void *p, size_t n)
{
    if (s->ok && n > 0 && EVP_DigestUpdate(s->md, p, n) != 1)
        s->ok = 0;
}

static void put_str(sink *s, const char *str)
{
    put(s, str, strlen(str));
}

/* Trimall: drop leading and trailing spaces/tabs, collapse inner runs to one space. */
static void put_trimmed(sink *s, const char *v, size_t len)
{
    size_t i = 0, start;
    int words = 0;
    for (;;) {
        while (i < len && is_space(v[i]))
            i++;
        if (i == len)
            return;
        start = i;
        while (i < len && !is_space(v[i]))
            i++;
        if (words++ > 0)
            put(s, " ", 1);
        put(s, v + start, i - start);
    }
}

static void put_signed_headers(sink *s, const sigv4_request *req)
{
    size_t i;
    for (i = 0; i < req->nheaders; i++) {
        if (i > 0)
            put(s, ";", 1);
        put(s, req->headers[i].name, req->headers[i].name_len);
    }
}

int sigv4_canonical_request_hash(const sigv4_request *req, char out[2 * SIGV4_SHA256_LEN + 1])
{
    unsigned char digest[SIGV4_SHA256_LEN];
    char payload_hex[2 * SIGV4_SHA256_LEN + 1];
    unsigned int n = 0;
    sink s;
    size_t i;
    int rc;

    if (sigv4_check_request(req, NULL) != SIGV4_OK)
        return SIGV4_EINVAL;
    if ((rc = sigv4_sha256(req->payload_len ? req->payload : "", req->payload_len, digest)) != 0)
        return rc;
    sigv4_hex(digest, sizeof digest, payload_hex);

    if ((s.md = EVP_MD_CTX_new()) == NULL)
        return SIGV4_ENOMEM;
    s.ok = EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) == 1;

    put_str(&s, req->method);
    put(&s, "\n", 1);
    put_str(&s, req->path);
    put(&s, "\n", 1);
    put_str(&s, req->query ? req->query : "");
    put(&s, "\n", 1);
    for (i = 0; i < req->nheaders; i++) {
        put(&s, req->headers[i].name, req->headers[i].name_len);
        put(&s, ":", 1);
        put_trimmed(&s, req->headers[i].value, req->headers[i].value_len);
        put(&s, "\n", 1);
    }
    put(&s, "\n", 1);
    put_signed_headers(&s, req);
    put(&s, "\n", 1);
    put(&s, payload_hex, 2 * SIGV4_SHA256_LEN);

    if (s.ok && (EVP_DigestFinal_ex(s.md, digest, &n) != 1 || n != SIGV4_SHA256_LEN))
        s.ok = 0;
    EVP_MD_CTX_free(s.md);
    if (!s.ok)
        return SIGV4_ECRYPTO;
    sigv4_hex(digest, sizeof digest, out);
    return SIGV4_OK;
}

/* "YYYYMMDD/region/service/aws4_request" written to out (which holds scope_len + 1). */
static size_t scope_len(const sigv4_request *req)
{
    return SIGV4_DATE_LEN + 1 + strlen(req->region) + 1 + strlen(req->service) + 1
           + strlen(SIGV4_TERMINATOR);
}

static void write_scope(const sigv4_request *req, char *out)
{
    memcpy(out, req->amz_date, SIGV4_DATE_LEN);
    sprintf(out + SIGV4_DATE_LEN, "/%s/%s/%s", req->region, req->service, SIGV4_TERMINATOR);
}

size_t sigv4_authorization_size(const sigv4_request *req)
{
    size_t n = strlen(SIGV4_ALGORITHM " Credential=") + strlen(req->access_key_id) + 1
               + scope_len(req) + strlen(", SignedHeaders=") + strlen(", Signature=")
               + 2 * SIGV4_SHA256_LEN + 1;
    size_t i;
    for (i = 0; i < req->nheaders; i++)
        n += req->headers[i].name_len + (i > 0);
    return n;
}

int sigv4_authorization(const sigv4_request *req, const unsigned char key[SIGV4_SHA256_LEN],
                        char *out, size_t outlen)
{
    char creq_hex[2 * SIGV4_SHA256_LEN + 1];
    char sig_hex[2 * SIGV4_SHA256_LEN + 1];
    unsigned char sig[SIGV4_SHA256_LEN];
    char *sts, *scope, *p;
    size_t sts_len, slen, i;
    int rc;

    if (sigv4_check_request(req, NULL) != SIGV4_OK)
        return SIGV4_EINVAL;
    if (out == NULL || outlen < sigv4_authorization_size(req))
        return SIGV4_ERANGE;
    if ((rc = sigv4_canonical_request_hash(req, creq_hex)) != SIGV4_OK)
        return rc;

    /* string to sign: algorithm \n amz_date \n scope \n hex(hash(canonical request)) */
    slen = scope_len(req);
    sts_len = strlen(SIGV4_ALGORITHM) + 1 + SIGV4_AMZ_DATE_LEN + 1 + slen + 1 + 2 * SIGV4_SHA256_LEN;
    if ((sts = malloc(sts_len + 1)) == NULL)
        return SIGV4_ENOMEM;
    p = sts;
    p += sprintf(p, "%s\n%s\n", SIGV4_ALGORITHM, req->amz_date);
    scope = p;
    write_scope(req, scope);
    p += slen;
    sprintf(p, "\n%s", creq_hex);

    rc = sigv4_hmac_sha256(key, SIGV4_SHA256_LEN, sts, sts_len, sig);
    if (rc == SIGV4_OK) {
        sigv4_hex(sig, sizeof sig, sig_hex);
        p = out;
        p += sprintf(p, "%s Credential=%s/", SIGV4_ALGORITHM, req->access_key_id);
        memcpy(p, scope, slen);
        p += slen;
        p += sprintf(p, ", SignedHeaders=");
        for (i = 0; i < req->nheaders; i++) {
            if (i > 0)
                *p++ = ';';
            memcpy(p, req->headers[i].name, req->headers[i].name_len);
            p += req->headers[i].name_len;
        }
        sprintf(p, ", Signature=%s", sig_hex);
    }
    free(sts);
    return rc;
}

const char *sigv4_strerror(int rc)
{
    switch (rc) {
    case SIGV4_OK: return "success";
    case SIGV4_EINVAL: return "invalid request";
    case SIGV4_ENOMEM: return "out of memory";
    case SIGV4_ECRYPTO: return "OpenSSL failure";
    case SIGV4_ERANGE: return "output buffer too small";
    default: return "unknown error";
    }
}
