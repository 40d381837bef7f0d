#!/usr/bin/python3
"""Loopback server that answers every request with the request itself
(request line, headers as received, body), for spec/robustness/echo_server_spec.lua:
whatever a client puts in a request (its Authorization header, its session
token, sent first among the headers) comes back in the answer, as a hostile or broken server would show it.
Stdlib only.

    echo_server.py [--lifetime SECONDS]

Prints "pid=<pid> http=<port>" once it listens on 127.0.0.1, then serves until
its parent goes away (or --lifetime). The first step of the path picks the form:

  /400-raw      400, the echo as a text body (no AWS error body)
  /400-message  400, {"__type": "...#ValidationException", "message": <echo>}
  /400-type     400, X-Amzn-ErrorType: "Echo#" + the X-Amz-Security-Token sent, body {}
  /500-raw      500, the echo as a text body
  /200-raw      200, the echo as a text body (not JSON)
  /200-bare     200, the X-Amz-Security-Token sent, a space, then the echo (not JSON)
  /200-array    200, [<echo>] (JSON, not an object)
  /200-string   200, "<echo>" (a JSON string, with "/" written "\\/")
  /200-bad-json 200, {"Records":[ + the echo: JSON cut short (a syntax error near the token)
  /200-shards   200, a DescribeStream answer whose Shards is the X-Amz-Security-Token
                sent, a space and the echo (the stream finds it malformed)
  /bad-status   "HTTP/1.1 OK " + the X-Amz-Security-Token sent as a status line, then closed
"""
import json
from http.server import BaseHTTPRequestHandler

import test_server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ds-echo"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        # the session token first, so that it straddles the end of a short excerpt
        headers = sorted(self.headers.items(), key=lambda kv: kv[0].lower() != "x-amz-security-token")
        echo = (self.requestline + "\r\n"
                + "".join("%s: %s\r\n" % (k, v) for k, v in headers)
                + "\r\n" + body.decode("utf-8", "replace"))
        token = self.headers.get("X-Amz-Security-Token", "")
        form = self.path.split("?", 1)[0].strip("/").split("/")[0]
        if form == "400-raw":
            self._send(400, echo.encode())
        elif form == "400-message":
            self._send(400, json.dumps({"__type": "com.amazon.coral.validate#ValidationException",
                                        "message": echo}).encode())
        elif form == "400-type":
            self._send(400, b"{}", [("X-Amzn-ErrorType", "Echo#" + token)])
        elif form == "500-raw":
            self._send(500, echo.encode())
        elif form == "200-raw":
            self._send(200, echo.encode())
        elif form == "200-bare":
            self._send(200, (token + " " + echo).encode())
        elif form == "200-array":
            self._send(200, json.dumps([echo]).encode())
        elif form == "200-string":
            self._send(200, json.dumps(echo).replace("/", "\\/").encode())
        elif form == "200-bad-json":
            self._send(200, b'{"Records":[' + echo.encode())
        elif form == "200-shards":
            self._send(200, json.dumps({"StreamDescription": {
                "StreamStatus": "ENABLED", "Shards": token + " " + echo}}).encode())
        elif form == "bad-status":
            self.close_connection = True
            self.wfile.write(("HTTP/1.1 OK " + token + "\r\n\r\n").encode())
        else:
            self._send(404, b'{"__type":"#NotFound","message":"no route"}')


if __name__ == "__main__":
    test_server.run(test_server.QuietHTTPServer, Handler, lifetime=120.0)
