/* AWS Signature Version 4 (AWS4-HMAC-SHA256), Lua-free, over OpenSSL.
 *
 * The caller chooses the headers; this file canonicalises and signs them:
 *   canonical request = method \n path \n query \n
 *                       name:trimall(value) \n ... \n   (one line per header)
 *                       signed;header;names \n hex(sha256(payload))
 *   string to sign    = "AWS4-HMAC-SHA256" \n amz_date \n scope \n hex(sha256(canonical request))
 *   scope             = YYYYMMDD/region/service/aws4_request
 *   signature         = hex(hmac(signing_key, string to sign))
 * The canonical request is streamed into the digest, never built in memory.
 * Never includes lua.h. */
#ifndef SIGV4_H
#define SIGV4_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

#define SIGV4_SHA256_LEN 32 /* raw SHA-256 / HMAC-SHA256 bytes, also the signing key */
#define SIGV4_DATE_LEN   8  /* "YYYYMMDD" */
#define SIGV4_AMZ_DATE_LEN 16 /* "YYYYMMDDTHHMMSSZ" */

/* Return codes. 0 is success. */
#define SIGV4_OK      0
#define SIGV4_EINVAL -1 /* a field does not satisfy the contract below */
#define SIGV4_ENOMEM -2
#define SIGV4_ECRYPTO -3 /* OpenSSL failed */
#define SIGV4_ERANGE -4 /* output buffer too small */

/* One header. name: lower-case RFC 7230 token; value: any bytes but CR, LF
 * and NUL. The value is trimmed and its inner runs of spaces/tabs collapsed
 * here (SigV4 "Trimall"); the caller passes it as it will send it. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sigv4_header;

typedef struct {
    const char *method;        /* "POST" */
    const char *path;          /* canonical (already URI-encoded) path, starts with '/' */
    const char *query;         /* canonical query string, "" (or NULL) when none */
    const sigv4_header *headers; /* sorted by name, strictly ascending (no duplicates) */
    size_t nheaders;           /* at least 1 */
    const void *payload;       /* may be NULL when payload_len is 0 */
    size_t payload_len;
    const char *amz_date;      /* "YYYYMMDDTHHMMSSZ"; the scope date is its first 8 chars */
    const char *access_key_id;
    const char *region;        /* "us-east-1" */
    const char *service;       /* "dynamodb" */
} sigv4_request;

/* SHA-256 of len bytes. */
/* SHA-1 of data: not for signing; the name of the SSO token cache file. */
#define SIGV4_SHA1_LEN 20
int sigv4_sha1(const void *data, size_t len, unsigned char out[SIGV4_SHA1_LEN]);
int sigv4_sha256(const void *data, size_t len, unsigned char out[SIGV4_SHA256_LEN]);

/* HMAC-SHA256(key, msg). */
int sigv4_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                      unsigned char out[SIGV4_SHA256_LEN]);

/* Lower-case hex of len bytes into out, which holds 2 * len + 1 bytes (NUL-terminated). */
void sigv4_hex(const unsigned char *in, size_t len, char *out);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service), "aws4_request").
 * date is "YYYYMMDD" (exactly 8 digits). Temporary copies of the secret are cleansed. */
int sigv4_signing_key(const char *secret, size_t secret_len, const char *date,
                      const char *region, const char *service,
                      unsigned char key[SIGV4_SHA256_LEN]);

/* Checks the request against the contract above: SIGV4_OK or SIGV4_EINVAL.
 * When why is not NULL it receives a static description of the first problem. */
int sigv4_check_request(const sigv4_request *req, const char **why);

/* Bytes sigv4_authorization writes for req, the terminating NUL included.
 * Meaningful only for a request that passes sigv4_check_request. */
size_t sigv4_authorization_size(const sigv4_request *req);

/* Hex SHA-256 of the canonical request of req (65 bytes with the NUL). */
int sigv4_canonical_request_hash(const sigv4_request *req, char out[2 * SIGV4_SHA256_LEN + 1]);

/* Writes the Authorization header value
 *   "AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/service/aws4_request,
 *    SignedHeaders=a;b;c, Signature=<64 hex>"   (one line)
 * into out (NUL-terminated), key being sigv4_signing_key for the request's date,
 * region and service. SIGV4_ERANGE when outlen < sigv4_authorization_size(req). */
int sigv4_authorization(const sigv4_request *req, const unsigned char key[SIGV4_SHA256_LEN],
                        char *out, size_t outlen);

/* A static English description of a return code. */
const char *sigv4_strerror(int rc);

#pragma GCC visibility pop

#endif
