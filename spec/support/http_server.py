#!/usr/bin/python3
"""Loopback HTTP(S) server for spec/integration/core/http_spec.lua (stdlib only).

    http_server.py [--tls-cert CERT --tls-key KEY]

Prints one line "pid=<pid> http=<port> refused=<port> [https=<port>]" on
stdout once it listens on 127.0.0.1, then serves until killed. "refused" is a
port bound without listening, so connecting to it is refused for as long as
the server lives (no other process can take it meanwhile). The server exits
on its own when its parent process goes away or after --lifetime seconds, so
a crashed spec run leaves nothing behind.

Routes (any method, POST in practice):
  /echo            200; body is "method M\\n", one "header Name: value\\n" per
                   request header, "body-length N\\n", "\\n", then the raw request
                   body (a line format instead of JSON keeps this spec free of
                   ds_json)
  /status/<n>      status n, body "status n"
  /reflect/<n>     status n, body the request body (a GetRecords answer the
                   client sent itself)
  /html            502 with an HTML error page
  /truncated       Content-Length: 100 but 10 bytes, then the socket closes
  /slow?ms=<n>     answers 200 after n ms (also /slow/<n>)
  /big?bytes=<n>[&chunked=1]  200 with n bytes of "x", with Content-Length or chunked
                   (also /big/<n>)
  /reset           closes the socket without answering (RST)
  /close           closes the socket without answering (FIN)
  /headers         200 with several response headers, one repeated
  /continue        an interim "100 Continue" carrying X-Interim, then 200
  /conn            200; body is the client's port (keep-alive check)
  /fail/<code>/<n>/<id>
                   the first n requests with this id get an AWS JSON error:
                   <code> is a status (500, 503) or an AWS error code answered
                   with 400 (ThrottlingException, ValidationException, ...);
                   later ones get 200 {"ok":true,"attempt":k}
"""
import argparse
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import test_server


# Requests seen per /fail/ id.
FAIL_COUNTS = {}
FAIL_COUNTS_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "ds-spec"
    sys_version = ""

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        # No Nagle: with delayed ACKs on the client it costs 40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # keep the TAP output clean
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _abort(self, rst):
        if rst:  # SO_LINGER 0: close() sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def do_POST(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = url.path
        # /slow/<ms> and /big/<bytes>: the same routes for clients whose
        # endpoint URL cannot carry a query string.
        parts = path.split("/")
        if len(parts) == 3 and parts[1] in ("slow", "big") and parts[2].isdigit():
            query[{"slow": "ms", "big": "bytes"}[parts[1]]] = [parts[2]]
            path = "/" + parts[1]
        body = self._read_body()
        if path == "/echo":
            out = [b"method " + self.command.encode()]
            for name, value in self.headers.items():
                out.append(("header %s: %s" % (name, value)).encode("latin-1"))
            out.append(b"body-length %d" % len(body))
            self._send(200, b"\n".join(out) + b"\n\n" + body)
        elif path.startswith("/reflect/"):
            self._send(int(path[len("/reflect/"):]), body)
        elif path.startswith("/status/"):
            n = int(path[len("/status/"):])
            self._send(n, b"status %d" % n)
        elif path == "/html":
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                       ctype="text/html")
        elif path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self._abort(rst=False)
        elif path == "/slow":
            time.sleep(int(query.get("ms", ["1000"])[0]) / 1000.0)
            self._send(200, b"slow")
        elif path == "/big":
            n = int(query.get("bytes", ["0"])[0])
            if query.get("chunked"):
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = n
                while left > 0:
                    k = min(left, 65536)
                    self.wfile.write(b"%x\r\n" % k + b"x" * k + b"\r\n")
                    left -= k
                self.wfile.write(b"0\r\n\r\n")
            else:
                self._send(200, b"x" * n)
        elif path == "/reset":
            self._abort(rst=True)
        elif path == "/close":
            self._abort(rst=False)
        elif path == "/headers":
            self._send(200, b"ok", extra=[("X-One", "1"), ("x-MiXeD-Case", "  padded value  "),
                                          ("X-Multi", "a"), ("X-Multi", "b")])
        elif path == "/continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n")
            self._send(200, b"after continue", extra=[("X-Final", "yes")])
        elif path.startswith("/fail/"):
            _, _, code, n, key = path.split("/", 4)
            with FAIL_COUNTS_LOCK:
                k = FAIL_COUNTS.get(key, 0) + 1
                FAIL_COUNTS[key] = k
            if k <= int(n):
                status = int(code) if code.isdigit() else 400
                name = {500: "InternalServerError", 503: "ServiceUnavailable"}.get(status, code)
                body = ('{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected %s"}'
                        % (name, name)).encode()
                self._send(status, body, ctype="application/x-amz-json-1.0")
            else:
                self._send(200, b'{"ok":true,"attempt":%d}' % k, ctype="application/x-amz-json-1.0")
        elif path == "/conn":
            self._send(200, str(self.client_address[1]).encode())
        else:
            self._send(404, b"no route " + path.encode())

    do_GET = do_PUT = do_POST


class TLSServer(ThreadingHTTPServer):
    """Handshakes in the handler thread (on first read), not in accept()."""
    context = None

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # failed handshakes are expected in the TLS specs


def serve(server):
    server.daemon_threads = True
    return test_server.start(server)


# 64+ clients connect at once in the post_many specs; Python's default backlog
# of 5 would leave some waiting for SYN retransmits.
ThreadingHTTPServer.request_queue_size = 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()
    # Taken before the first line is printed: a parent that exits right after
    # reading it must still be seen to go.
    parent = os.getppid()

    ThreadingHTTPServer.handle_error = lambda self, req, addr: None
    line = ["pid=%d" % os.getpid()]
    line.append("http=%d" % serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler)))
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refused.bind(("127.0.0.1", 0))  # bound, never listening
    line.append("refused=%d" % refused.getsockname()[1])
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        TLSServer.context = ctx
        line.append("https=%d" % serve(TLSServer(("127.0.0.1", 0), Handler)))
    print(" ".join(line), flush=True)

    test_server.run_until_orphaned(parent, args.lifetime)


if __name__ == "__main__":
    main()
