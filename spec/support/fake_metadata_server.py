#!/usr/bin/python3
"""A fake EC2 instance metadata service (IMDS) and a fake container credentials
endpoint (ECS task role, EKS Pod Identity), stdlib only, loopback only.

    fake_metadata_server.py [--lifetime S]

Prints "pid=<pid> imds=<port> container=<port>" once both listen on
127.0.0.1, then serves until its parent goes or --lifetime (default 120 s)
has passed.

IMDS (the imds port), as the EC2 user guide describes it:
  PUT /latest/api/token   needs X-aws-ec2-metadata-token-ttl-seconds 1..21600
                          (else 400); refuses X-Forwarded-For (403); answers a
                          new token as text and echoes the TTL header. Tokens
                          expire TTL seconds after issue, on the fake's clock.
  GET /latest/meta-data/iam/security-credentials/         the role name, no newline
                                                         (404 when no role)
  GET /latest/meta-data/iam/security-credentials/<role>  the credentials JSON
                                                         (404 for another role)
  GET /latest/meta-data/placement/region
  A GET with an unknown or expired token is 401; a GET without a token is 401
  when v2 is required, else served (IMDSv1).

Container (the container port): GET of any path (the query kept in the
record); when a token file is configured, Authorization must equal its
current contents (without a final newline), else 401 with {"Code","Message"};
answers the credentials JSON with Content-Type application/json.

Control (either port, JSON): POST /_control/config merges an object into the
configuration (keys in DEFAULTS below); POST /_control/reset restores the
defaults and forgets the requests; GET /_control/requests answers the recorded
requests [{server, method, path, headers (lower-case names)}]; GET
/_control/issued the access key ids issued, in order.
/_control/issued_credentials  the credentials issued, in order: [{access_key_id,
                 secret_access_key, session_token, expiration (epoch)}] (for the
                 end-to-end spec's checking proxy, spec/support/sigv4_proxy.py)

Configuration:
  clock            epoch seconds of the fake's clock (null: real time)
  expires_in       Expiration of issued credentials, seconds after the clock
  v2_required      IMDSv1 GETs get 401
  put_status       the token PUT answers this status (400, 403, 404, 405, ...)
  put_hang         the token PUT sleeps this long, then closes with no answer
  get_401          the next n IMDS GETs answer 401 whatever their token
  get_500          the next n IMDS GETs answer 500
  role             the role name (null: no role, 404)
  creds_mode       ok | error-document | bad-json | html | missing-token |
                   bad-expiration | empty (IMDS and container)
  slow             seconds every IMDS GET sleeps before answering
  region           the region answered (null: 404)
  token_file       the container's Authorization token file (null: no check)
  container_script list of answers for the next container requests, each
                   {"status": n, "body": {...}} or {"hang": seconds}
"""
import copy
import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler

import test_server

DEFAULTS = {
    "clock": None,
    "expires_in": 6 * 3600,
    "v2_required": False,
    "put_status": None,
    "put_hang": 0,
    "get_401": 0,
    "get_500": 0,
    "role": "fake-instance-role",
    "creds_mode": "ok",
    "slow": 0,
    "region": "eu-west-3",
    "token_file": None,
    "container_script": [],
}

ROLE_PATH = "/latest/meta-data/iam/security-credentials/"

lock = threading.Lock()
state = {"config": copy.deepcopy(DEFAULTS), "requests": [], "issued": [], "issued_credentials": [], "tokens": {}}


def now():
    clock = state["config"]["clock"]
    return clock if clock is not None else time.time()


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def credentials(prefix):
    """A new set of credentials as IMDS and the container endpoint write them."""
    with lock:
        n = len(state["issued"]) + 1
        key = "ASIA%s%010d" % (prefix, n)
        state["issued"].append(key)
        cfg = state["config"]
        mode, expires = cfg["creds_mode"], now() + cfg["expires_in"]
        doc = {"Code": "Success", "LastUpdated": iso(now()), "Type": "AWS-HMAC", "AccessKeyId": key,
               "SecretAccessKey": "fake-secret-" + secrets.token_hex(12),
               "Token": "fake-session-token-" + secrets.token_hex(16), "Expiration": iso(expires)}
        state["issued_credentials"].append({"access_key_id": key, "secret_access_key": doc["SecretAccessKey"],
                                            "session_token": doc["Token"], "expiration": expires})
    if mode == "error-document":
        return json.dumps({"Code": "AssumeRoleUnauthorizedAccess", "Message": "EC2 cannot assume the role",
                           "LastUpdated": iso(now())})
    if mode == "bad-json":
        return json.dumps(doc)[:-20]
    if mode == "html":
        return "<html><body><h1>502 Bad Gateway</h1>%s</body></html>" % doc["SecretAccessKey"]
    if mode == "missing-token":
        del doc["Token"]
    if mode == "bad-expiration":
        doc["Expiration"] = "tomorrow"
    if mode == "empty":
        return ""
    return json.dumps(doc)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_name = "?"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/plain", extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def json_answer(self, status, doc):
        self.answer(status, json.dumps(doc), "application/json")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def control(self):
        if self.command == "POST" and self.path == "/_control/config":
            update = json.loads(self.read_body() or b"{}")
            with lock:
                unknown = set(update) - set(DEFAULTS)
                if unknown:
                    return self.json_answer(400, {"unknown": sorted(unknown)})
                state["config"].update(update)
            return self.json_answer(200, state["config"])
        if self.command == "POST" and self.path == "/_control/reset":
            self.read_body()
            with lock:
                state["config"] = copy.deepcopy(DEFAULTS)
                state["requests"], state["issued"], state["tokens"] = [], [], {}
                state["issued_credentials"] = []
            return self.json_answer(200, {})
        if self.path == "/_control/requests":
            with lock:
                return self.json_answer(200, state["requests"])
        if self.path == "/_control/issued_credentials":
            with lock:
                return self.json_answer(200, state["issued_credentials"])
        if self.path == "/_control/issued":
            with lock:
                return self.json_answer(200, state["issued"])
        return self.json_answer(404, {"path": self.path})

    def handle_any(self):
        if self.path.startswith("/_control/"):
            return self.control()
        self.read_body()
        with lock:
            state["requests"].append({"server": self.server_name, "method": self.command, "path": self.path,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})
        return self.imds() if self.server_name == "imds" else self.container()

    do_GET = do_PUT = do_POST = handle_any

    # IMDS

    def token_ok(self):
        token = self.headers.get("X-aws-ec2-metadata-token")
        if token is None:
            return not state["config"]["v2_required"]
        expiry = state["tokens"].get(token)
        return expiry is not None and now() < expiry

    def imds(self):
        cfg = state["config"]
        if self.command == "PUT" and self.path == "/latest/api/token":
            if cfg["put_hang"]:
                time.sleep(cfg["put_hang"])
                self.close_connection = True
                return
            if cfg["put_status"]:
                return self.answer(cfg["put_status"], "")
            if self.headers.get("X-Forwarded-For") is not None:
                return self.answer(403, "")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") or ""
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400, "")
            token = "fake-imds-token-" + secrets.token_hex(16)
            with lock:
                state["tokens"][token] = now() + int(ttl)
            return self.answer(200, token, extra=[("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        if self.command != "GET":
            return self.answer(405, "")
        if cfg["slow"]:
            time.sleep(cfg["slow"])
        with lock:
            forced = "get_401" if cfg["get_401"] > 0 else "get_500" if cfg["get_500"] > 0 else None
            if forced:
                cfg[forced] -= 1
        if forced == "get_401" or not self.token_ok():
            return self.answer(401, "")
        if forced == "get_500":
            return self.answer(500, "<html>Internal Server Error</html>", "text/html")
        if self.path == ROLE_PATH:
            if cfg["role"] is None:
                return self.answer(404, "<html>404 - Not Found</html>", "text/html")
            return self.answer(200, cfg["role"])
        if cfg["role"] is not None and self.path == ROLE_PATH + cfg["role"]:
            return self.answer(200, credentials("IMDS"))
        if self.path == "/latest/meta-data/placement/region" and cfg["region"] is not None:
            return self.answer(200, cfg["region"])
        return self.answer(404, "<html>404 - Not Found</html>", "text/html")

    # Container

    def container(self):
        cfg = state["config"]
        with lock:
            step = cfg["container_script"].pop(0) if cfg["container_script"] else None
        if step and "hang" in step:
            time.sleep(step["hang"])
            self.close_connection = True
            return
        if step:
            return self.json_answer(step["status"], step.get("body", {}))
        if cfg["token_file"] is not None:
            with open(cfg["token_file"]) as f:
                expected = f.read()
            if expected.endswith("\n"):
                expected = expected[:-1]
            if self.headers.get("Authorization") != expected:
                return self.json_answer(401, {"Code": "AccessDeniedException",
                                              "Message": "the authorization token is not the current one"})
        self.answer(200, credentials("CONT"), "application/json")


def server(name):
    handler = type("Handler_" + name, (Handler,), {"server_name": name})
    return test_server.QuietHTTPServer(("127.0.0.1", 0), handler)


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    parent = os.getppid()
    imds_port = test_server.start(server("imds"))
    container_port = test_server.start(server("container"))
    print("pid=%d imds=%d container=%d" % (os.getpid(), imds_port, container_port), flush=True)
    test_server.run_until_orphaned(parent, args.lifetime)


if __name__ == "__main__":
    main()
