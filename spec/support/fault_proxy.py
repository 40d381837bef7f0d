#!/usr/bin/python3
"""Fault-injecting HTTP proxy for the specs (Python 3 stdlib only).

    fault_proxy.py --upstream http://127.0.0.1:PORT [--seed N] [--rate F]
                   [--kinds throttle,500:2,...] [--operations GetRecords,...]
                   [--slow-ms MS] [--config JSON] [--lifetime SECONDS]

Listens on 127.0.0.1 (a free port) and forwards every request unchanged to
the upstream, which must be a loopback http:// address (anything else is
refused). Prints one line "pid=<pid> port=<port> control=<port>" on stdout
once both ports listen, then serves. Exits on its own when its parent process
goes away or after --lifetime seconds (default 900), so nothing is left behind.

For each request whose operation matches the filter, a seeded RNG decides
(under a lock, so a sequential client sees a reproducible sequence) whether to
inject a fault (probability `rate`) and which kind (weighted by `kinds`).
Kinds:
  throttle           400 ThrottlingException, not forwarded
  limit_exceeded     400 LimitExceededException, not forwarded
  provisioned        400 ProvisionedThroughputExceededException, not forwarded
  500                500 InternalServerError (JSON), not forwarded
  503                503 ServiceUnavailable (JSON), not forwarded
  503_html           503 with an HTML body and no AWS error type, not forwarded
  reset              connection reset (SO_LINGER 0) without answering, not forwarded
  reset_after        forwarded (the side effect happens), then reset instead of the answer
  slow               forwarded, the answer held back slow_ms, then sent
  slow_drop          forwarded, held back slow_ms, then the connection is reset
  truncate           forwarded; full Content-Length but half the body, then close (FIN)
  expired            GetRecords only: 400 ExpiredIteratorException "Iterator expired",
                     not forwarded (ignored for other operations)

Operations filter: a list of patterns (fnmatch, case-sensitive) matched against
both the full X-Amz-Target ("DynamoDBStreams_20120810.GetRecords") and the bare
operation name ("GetRecords"); empty or absent means every operation.

Control port (HTTP/1.1, JSON):
  POST /config   merge {"rate","kinds","operations","slow_ms","seed","cycle"} into the
                 configuration ("kinds" and "operations" are replaced whole;
                 "seed" re-seeds the RNG; "cycle": true picks the kinds in
                 turn rather than by weight, the rate still drawn at random);
                 answers the whole configuration,
                 400 {"error": ...} on a bad value
  GET  /config   the configuration
  GET  /stats    {"total","forwarded","upstream_errors","requests":{op:n},
                  "faults":{kind:n},"faults_by_operation":{op:{kind:n}}}
  GET  /log      {"log":[[op, kind-or-""], ...]}: the decisions, in order
                 (bounded to the last 100000), for reproducibility checks
  POST /reset    zeroes the counters and the log
Nothing the client sends (Authorization above all) is ever logged or printed.
"""
import argparse
import fnmatch
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import test_server

NS = "com.amazonaws.dynamodb.v20120810#"
LOG_LIMIT = 100000

# kind -> (status, reason, content type, body) for the faults that answer
# without forwarding.
CANNED = {
    "throttle": (400, "Bad Request", "application/x-amz-json-1.0",
                 {"__type": NS + "ThrottlingException", "message": "Rate of requests exceeds the allowed throughput."}),
    "limit_exceeded": (400, "Bad Request", "application/x-amz-json-1.0",
                       {"__type": NS + "LimitExceededException", "message": "Too many operations for a given subscriber."}),
    "provisioned": (400, "Bad Request", "application/x-amz-json-1.0",
                    {"__type": NS + "ProvisionedThroughputExceededException",
                     "message": "The level of configured provisioned throughput for the table was exceeded."}),
    "500": (500, "Internal Server Error", "application/x-amz-json-1.0",
            {"__type": NS + "InternalServerError", "message": "Internal server error"}),
    "503": (503, "Service Unavailable", "application/x-amz-json-1.0",
            {"__type": NS + "ServiceUnavailable", "message": "Service unavailable"}),
    "503_html": (503, "Service Unavailable", "text/html",
                 b"<html><body><h1>503 Service Unavailable</h1></body></html>"),
    "expired": (400, "Bad Request", "application/x-amz-json-1.0",
                {"__type": NS + "ExpiredIteratorException", "message": "Iterator expired"}),
}
FORWARDING = ("reset_after", "slow", "slow_drop", "truncate")
KINDS = tuple(CANNED) + ("reset",) + FORWARDING
GET_RECORDS_ONLY = ("expired",)


class ConfigError(ValueError):
    pass


class State:
    """Configuration, RNG and counters, shared by every handler thread."""

    def __init__(self, upstream):
        self.lock = threading.Lock()
        self.upstream = upstream  # (host, port)
        self.rate = 0.0
        self.kinds = {}
        self.operations = []
        self.slow_ms = 1500
        self.seed = 0
        self.cycle = False
        self.cycle_next = 0
        self.rng = random.Random(0)
        self.reset_stats()

    def reset_stats(self):
        self.total = 0
        self.forwarded = 0
        self.upstream_errors = 0
        self.requests = {}
        self.faults = {}
        self.faults_by_operation = {}
        self.log = []

    def config(self):
        return {"rate": self.rate, "kinds": dict(self.kinds), "operations": list(self.operations),
                "slow_ms": self.slow_ms, "seed": self.seed, "cycle": self.cycle}

    def apply(self, cfg):
        """Validates everything first, then applies: a bad config changes nothing."""
        if not isinstance(cfg, dict):
            raise ConfigError("config must be a JSON object")
        unknown = set(cfg) - {"rate", "kinds", "operations", "slow_ms", "seed", "cycle"}
        if unknown:
            raise ConfigError("unknown config field(s): " + ", ".join(sorted(unknown)))
        new = self.config()
        if "rate" in cfg:
            rate = cfg["rate"]
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ConfigError("rate must be a number between 0 and 1")
            new["rate"] = float(rate)
        if "kinds" in cfg:
            kinds = cfg["kinds"]
            if isinstance(kinds, list):  # a plain list: weight 1 each
                kinds = {k: 1 for k in kinds}
            if not isinstance(kinds, dict):
                raise ConfigError("kinds must be an object kind -> weight (or a list of kinds)")
            parsed = {}
            for kind, weight in kinds.items():
                if kind not in KINDS:
                    raise ConfigError("unknown fault kind %r (known: %s)" % (kind, ", ".join(KINDS)))
                if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                    raise ConfigError("weight of %s must be a non-negative number" % kind)
                if weight > 0:
                    parsed[kind] = weight
            new["kinds"] = parsed
        if "operations" in cfg:
            ops = cfg["operations"]
            if ops is None or ops == {}:  # an empty Lua table may encode as {}
                ops = []
            if isinstance(ops, str):
                ops = [ops]
            if not isinstance(ops, list) or not all(isinstance(o, str) and o for o in ops):
                raise ConfigError("operations must be a list of non-empty strings")
            new["operations"] = ops
        if "slow_ms" in cfg:
            ms = cfg["slow_ms"]
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
                raise ConfigError("slow_ms must be a non-negative number")
            new["slow_ms"] = ms
        if "cycle" in cfg:
            if not isinstance(cfg["cycle"], bool):
                raise ConfigError("cycle must be a boolean")
            new["cycle"] = cfg["cycle"]
        if "seed" in cfg:
            seed = cfg["seed"]
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ConfigError("seed must be an integer")
            new["seed"] = seed
        with self.lock:
            self.rate, self.kinds = new["rate"], new["kinds"]
            self.operations, self.slow_ms = new["operations"], new["slow_ms"]
            self.cycle = new["cycle"]
            if "seed" in cfg:
                self.seed = new["seed"]
                self.rng = random.Random(self.seed)
            return self.config()

    def matches(self, target, op):
        if not self.operations:
            return True
        return any(fnmatch.fnmatchcase(target, p) or fnmatch.fnmatchcase(op, p)
                   for p in self.operations)

    def decide(self, target, op):
        """Counts the request and returns (kind or None, slow_ms)."""
        with self.lock:
            self.total += 1
            self.requests[op] = self.requests.get(op, 0) + 1
            kind = None
            if self.rate > 0 and self.matches(target, op):
                candidates = [(k, w) for k, w in sorted(self.kinds.items())
                              if op == "GetRecords" or k not in GET_RECORDS_ONLY]
                if candidates and self.rng.random() < self.rate:
                    if self.cycle:  # every kind in turn: a short run still sees each
                        kind = candidates[self.cycle_next % len(candidates)][0]
                        self.cycle_next += 1
                    else:
                        pick = self.rng.random() * sum(w for _, w in candidates)
                        for k, w in candidates:
                            kind = k
                            pick -= w
                            if pick < 0:
                                break
            if kind:
                self.faults[kind] = self.faults.get(kind, 0) + 1
                per_op = self.faults_by_operation.setdefault(op, {})
                per_op[kind] = per_op.get(kind, 0) + 1
            if len(self.log) >= LOG_LIMIT:
                del self.log[: LOG_LIMIT // 10]
            self.log.append([op, kind or ""])
            return kind, self.slow_ms

    def count(self, field):
        with self.lock:
            setattr(self, field, getattr(self, field) + 1)

    def stats(self):
        with self.lock:
            return {"total": self.total, "forwarded": self.forwarded,
                    "upstream_errors": self.upstream_errors,
                    "requests": dict(self.requests), "faults": dict(self.faults),
                    "faults_by_operation": {k: dict(v) for k, v in self.faults_by_operation.items()}}


STATE = None


class Drop(Exception):
    """The client connection is gone or was deliberately closed."""


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive toward the client
    server_version = "fault-proxy"
    sys_version = ""
    upstream_conn = None  # one upstream connection per client connection, reused

    def log_message(self, fmt, *args):  # never log anything (Authorization)
        pass

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream_conn is not None:
                self.upstream_conn.close()

    # -- client side ---------------------------------------------------------

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(n) if n > 0 else b""), False

    def _write(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            raise Drop()

    def _reset(self):
        """Closes the client connection with RST (SO_LINGER 0) instead of FIN."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._close()

    def _close(self):
        self.close_connection = True
        try:
            self.rfile.close()  # its reference would keep the socket open
            self.connection.close()
        except OSError:
            pass
        raise Drop()

    def _head(self, status, reason, headers):
        lines = ["HTTP/1.1 %d %s\r\n" % (status, reason)]
        lines += ["%s: %s\r\n" % (k, v) for k, v in headers]
        return ("".join(lines) + "\r\n").encode("latin-1")

    def _canned(self, kind):
        status, reason, ctype, body = CANNED[kind]
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))),
                   ("x-amzn-RequestId", "FAULTPROXY%08X" % random.getrandbits(32))]
        if self.close_connection:
            headers.append(("Connection", "close"))
        self._write(self._head(status, reason, headers) + body)

    # -- upstream side -------------------------------------------------------

    def _forward(self, body, was_chunked):
        """Sends the request upstream; returns (status, reason, headers, body)."""
        headers = [(k, v) for k, v in self.headers.items()]
        if was_chunked:  # the body was de-chunked: send it with a length instead
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            headers.append(("Content-Length", str(len(body))))
        for attempt in (1, 2):
            reused = self.upstream_conn is not None
            if not reused:
                host, port = STATE.upstream
                self.upstream_conn = http.client.HTTPConnection(host, port, timeout=120)
            conn = self.upstream_conn
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                self.upstream_conn = None
                # A reused connection the upstream closed while idle: try once
                # more on a fresh one. Anything else is an upstream failure.
                if reused and attempt == 1:
                    continue
                raise e
            except Exception:
                conn.close()
                self.upstream_conn = None
                raise
            out = []
            for k, v in resp.getheaders():
                if k.lower() == "transfer-encoding":
                    continue  # de-chunked by http.client; sent with a length
                out.append((k, v))
            if resp.getheader("Transfer-Encoding") is not None or resp.getheader("Content-Length") is None:
                out = [(k, v) for k, v in out if k.lower() != "content-length"]
                out.append(("Content-Length", str(len(data))))
            if resp.will_close:
                conn.close()
                self.upstream_conn = None
            return resp.status, resp.reason, out, data
        raise AssertionError("unreachable")

    # -- one request ---------------------------------------------------------

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except Drop:
            self.close_connection = True

    def do_POST(self):
        body, was_chunked = self._read_body()
        target = self.headers.get("X-Amz-Target") or ""
        op = target.rsplit(".", 1)[-1] if target else "(none)"
        kind, slow_ms = STATE.decide(target, op)

        if kind in CANNED:
            return self._canned(kind)
        if kind == "reset":
            return self._reset()

        try:
            status, reason, headers, data = self._forward(body, was_chunked)
        except Exception as e:
            STATE.count("upstream_errors")
            msg = json.dumps({"__type": "FaultProxyUpstreamError",
                              "message": "upstream failed: %s" % type(e).__name__}).encode()
            self.close_connection = True
            self._write(self._head(502, "Bad Gateway", [("Content-Type", "application/json"),
                                                        ("Content-Length", str(len(msg))),
                                                        ("Connection", "close")]) + msg)
            return
        STATE.count("forwarded")
        for k, v in headers:
            if k.lower() == "connection" and v.strip().lower() == "close":
                self.close_connection = True

        if kind == "reset_after":
            return self._reset()
        if kind in ("slow", "slow_drop"):
            time.sleep(slow_ms / 1000.0)
            if kind == "slow_drop":
                return self._reset()
        head = self._head(status, reason, headers)
        if kind == "truncate":
            self._write(head + data[: len(data) // 2])
            return self._close()
        self._write(head + data)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy-control"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def _json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            self._json(200, STATE.stats())
        elif self.path == "/config":
            with STATE.lock:
                self._json(200, STATE.config())
        elif self.path == "/log":
            with STATE.lock:
                log = list(STATE.log)
            self._json(200, {"log": log})
        else:
            self._json(404, {"error": "no route " + self.path})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if self.path == "/config":
            try:
                cfg = json.loads(raw.decode() or "{}")
                self._json(200, STATE.apply(cfg))
            except (ValueError, UnicodeDecodeError) as e:
                self._json(400, {"error": str(e)})
        elif self.path == "/reset":
            with STATE.lock:
                STATE.reset_stats()
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": "no route " + self.path})


class Server(test_server.QuietHTTPServer):  # resets and vanished clients are the point here
    request_queue_size = 128


def loopback_upstream(url):
    """(host, port) of a loopback http:// URL, or raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError("upstream must be an http:// URL")
    host = parts.hostname or ""
    if parts.path not in ("", "/") or parts.query:
        raise ValueError("upstream must have no path or query")
    try:
        infos = socket.getaddrinfo(host, None) if host == "localhost" else None
    except OSError:
        infos = None
    if host == "localhost" and infos:
        addrs = {i[4][0] for i in infos}
    else:
        addrs = {host}
    for addr in addrs:
        if not (addr.startswith("127.") and addr.count(".") == 3 and
                all(p.isdigit() and int(p) < 256 for p in addr.split("."))) and addr != "::1":
            raise ValueError("upstream must be a loopback address, not %r" % host)
    return host, parts.port or 80


def main():
    global STATE
    parent = os.getppid()  # before the first line: the parent may exit right after reading it
    ap = argparse.ArgumentParser(description="fault-injecting loopback proxy for the specs")
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT (loopback only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--kinds", default="", help="kind[:weight],... e.g. throttle,500:2")
    ap.add_argument("--operations", default="", help="pattern,... e.g. GetRecords,DynamoDB_20120810.*")
    ap.add_argument("--slow-ms", type=float, default=1500)
    ap.add_argument("--config", default=None, help="initial config as JSON (after the flags)")
    ap.add_argument("--lifetime", type=float, default=900.0)
    args = ap.parse_args()

    try:
        upstream = loopback_upstream(args.upstream)
        STATE = State(upstream)
        kinds = {}
        for item in filter(None, args.kinds.split(",")):
            name, _, weight = item.partition(":")
            kinds[name.strip()] = float(weight) if weight else 1
        STATE.apply({"seed": args.seed, "rate": args.rate, "kinds": kinds,
                     "operations": [o.strip() for o in args.operations.split(",") if o.strip()],
                     "slow_ms": args.slow_ms})
        if args.config:
            cfg = json.loads(args.config)
            if isinstance(cfg, dict) and "seed" not in cfg:
                cfg["seed"] = args.seed
            STATE.apply(cfg)
    except ValueError as e:
        print("fault_proxy.py: %s" % e, file=sys.stderr, flush=True)
        sys.exit(2)

    servers = []
    for handler in (ProxyHandler, ControlHandler):
        server = Server(("127.0.0.1", 0), handler)
        servers.append(test_server.start(server))
    print("pid=%d port=%d control=%d" % (os.getpid(), servers[0], servers[1]), flush=True)

    test_server.run_until_orphaned(parent, args.lifetime)


if __name__ == "__main__":
    main()
