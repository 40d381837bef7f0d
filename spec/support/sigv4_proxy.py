#!/usr/bin/python3
"""A credential authority and a SigV4-checking proxy in front of DynamoDB Local,
for the end-to-end credential specs.

    sigv4_proxy.py --upstream http://127.0.0.1:PORT [--lifetime SECONDS]

Prints "pid=<pid> http=<port>" (test_server.py). On that port:

  GET  /creds          the container credentials endpoint (AWS's JSON: AccessKeyId,
                       SecretAccessKey, Token, Expiration): issues new credentials that
                       live `ttl` seconds of the authority's clock; with `revoke_older`,
                       every earlier set is refused from then on. When a token is set,
                       the Authorization header must equal it.
  POST /_ctl/config    JSON {"now": epoch, "ttl": s, "revoke_older": bool, "token": str,
                       "authorities": [url, ...]} (any subset); "now" sets the clock that
                       expirations follow
  authorities          other fakes that hand out credentials (fake_metadata_server.py's
                       /_control/issued_credentials, fake_sts_sso_server.py's
                       /_control/state): a key id not seen yet is looked up in what they
                       issued ({access_key_id, secret_access_key, session_token,
                       expiration}); with revoke_older, a newer key of the same
                       authority revokes the older ones
  GET  /_ctl/stats     {"issued", "accepted", "refused": {code: n}, "keys": [key ids of
                       accepted requests, each once, in order]}
  anything else        an AWS request: its SigV4 signature is checked against the secret
                       of the key it names, its X-Amz-Security-Token against that key's
                       token, the key against revocation and expiry. A good request goes
                       to DynamoDB Local under one fixed key (Local keeps a table namespace
                       per key id, which must not change when credentials rotate); a bad
                       one gets DynamoDB's own error: UnrecognizedClientException,
                       ExpiredTokenException or InvalidSignatureException.

The signature is recomputed here from the request as received, by hand (hashlib,
hmac), independently of the client's C signer.
"""

import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler

import test_server

LOCK = threading.Lock()
STATE = {
    "now": None,          # the clock expirations follow; None: real time
    "ttl": 300,
    "revoke_older": True,
    "token": None,        # the Authorization the /creds endpoint wants
    "authorities": [],
    "credentials": {},    # key id -> {"secret", "token", "expiration", "revoked", "authority"}
    "issued": 0,
    "accepted": 0,
    "refused": {},
    "keys": [],
}
UPSTREAM = None
UPSTREAM_KEY = "endtoend"

AUTH = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                  r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def now():
    return STATE["now"] if STATE["now"] is not None else time.time()


def rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def register(key, secret, token, expiration, authority):
    """Under LOCK: a key handed out; with revoke_older, its authority's older keys go."""
    if STATE["revoke_older"]:
        for c in STATE["credentials"].values():
            if c["authority"] == authority:
                c["revoked"] = True
    STATE["credentials"][key] = {"secret": secret, "token": token, "expiration": expiration,
                                 "revoked": False, "authority": authority}


def learn():
    """Looks up what the authorities issued since last time, in their order."""
    with LOCK:
        authorities = list(STATE["authorities"])
    for url in authorities:
        with urllib.request.urlopen(url, timeout=5) as reply:
            data = json.load(reply)
        entries = data["issued"] if isinstance(data, dict) else data
        with LOCK:
            for e in entries:
                if e["access_key_id"] not in STATE["credentials"]:
                    register(e["access_key_id"], e["secret_access_key"], e.get("session_token"),
                             e["expiration"], url)


def hmac_sha256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(secret, method, path, query, headers, signed, body, date, region, service, amz_date):
    canonical_headers = "".join(
        "%s:%s\n" % (name, " ".join(headers.get(name, "").split())) for name in signed.split(";"))
    canonical = "\n".join([method, path, query, canonical_headers, signed,
                           hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = hmac_sha256(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        key = hmac_sha256(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Head and body go out in two writes: without this, Nagle's algorithm
        # holds the body for the client's delayed ACK (40 ms a request).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, code, message):
        with LOCK:
            STATE["refused"][code] = STATE["refused"].get(code, 0) + 1
        self.answer(400, json.dumps({"__type": "com.amazon.coral.service#" + code, "message": message}),
                    "application/x-amz-json-1.0", {"x-amzn-ErrorType": code})

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/_ctl/stats":
            with LOCK:
                stats = {k: STATE[k] for k in ("issued", "accepted", "refused", "keys")}
            return self.answer(200, json.dumps(stats))
        if self.path.split("?")[0] == "/creds":
            return self.issue()
        self.answer(404, "{}")

    def issue(self):
        with LOCK:
            if STATE["token"] is not None and self.headers.get("Authorization") != STATE["token"]:
                return self.answer(401, json.dumps({"Code": "Unauthorized", "Message": "bad token"}))
            STATE["issued"] += 1
            key = "ASIAE2E%06d" % STATE["issued"]
            secret = hashlib.sha256(os.urandom(16)).hexdigest()[:40]
            token = "token-" + hashlib.sha256(os.urandom(16)).hexdigest()
            expiration = now() + STATE["ttl"]
            register(key, secret, token, expiration, "self")
        self.answer(200, json.dumps({"AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                                     "Expiration": rfc3339(expiration), "AccountId": "111122223333"}))

    def do_POST(self):
        body = self.body()
        if self.path == "/_ctl/config":
            with LOCK:
                STATE.update(json.loads(body))
            return self.answer(200, "{}")
        self.check_and_forward(body)

    def check_and_forward(self, body):
        headers = {name.lower(): value for name, value in self.headers.items()}
        match = AUTH.match(headers.get("authorization", ""))
        if not match:
            return self.refuse("MissingAuthenticationTokenException", "Request is missing Authentication Token")
        key, date, region, service, signed, signature = match.groups()
        with LOCK:
            known = key in STATE["credentials"]
        if not known:
            learn()
        with LOCK:
            creds = STATE["credentials"].get(key)
            creds = dict(creds) if creds else None
        if creds is None or headers.get("x-amz-security-token") != creds["token"]:
            return self.refuse("UnrecognizedClientException", "The security token included in the request is invalid.")
        if creds["revoked"] or now() >= creds["expiration"]:
            return self.refuse("ExpiredTokenException", "The security token included in the request is expired")
        if "x-amz-security-token" not in signed.split(";") or "host" not in signed.split(";"):
            return self.refuse("InvalidSignatureException", "host and x-amz-security-token must be signed")
        path, _, query = self.path.partition("?")
        want = expected_signature(creds["secret"], self.command, path, query, headers, signed, body,
                                  date, region, service, headers.get("x-amz-date", ""))
        if not hmac.compare_digest(want, signature):
            return self.refuse("InvalidSignatureException", "The request signature we calculated does not match")
        with LOCK:
            STATE["accepted"] += 1
            if key not in STATE["keys"]:
                STATE["keys"].append(key)
        self.forward(body, headers)

    def forward(self, body, headers):
        target = urllib.parse.urlsplit(UPSTREAM)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        upstream_headers = {
            "Content-Type": headers.get("content-type", "application/x-amz-json-1.0"),
            "X-Amz-Target": headers.get("x-amz-target", ""),
            "X-Amz-Date": headers.get("x-amz-date", ""),
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/dynamodb/aws4_request, "
                             "SignedHeaders=host, Signature=%s" % (UPSTREAM_KEY, "0" * 64),
        }
        try:
            conn.request("POST", "/", body, upstream_headers)
            reply = conn.getresponse()
            data = reply.read()
            self.answer(reply.status, data, reply.getheader("Content-Type") or "application/x-amz-json-1.0")
        finally:
            conn.close()


def main():
    global UPSTREAM
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--lifetime", type=float, default=300)
    args = ap.parse_args()
    if not re.match(r"^http://(127\.0\.0\.1|localhost):\d+/?$", args.upstream):
        raise SystemExit("--upstream must be a loopback http:// address")
    UPSTREAM = args.upstream
    test_server.serve(test_server.QuietHTTPServer(("127.0.0.1", 0), Handler), args.lifetime)


if __name__ == "__main__":
    main()
