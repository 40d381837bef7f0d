#!/usr/bin/python3
"""Loopback server whose answers break HTTP on purpose, for
spec/robustness/misbehaving_server_spec.lua (stdlib only, raw sockets).

    misbehaving_server.py [--lifetime SECONDS]

Prints "pid=<pid> http=<port>" once it listens on 127.0.0.1, then serves until
its parent goes away (or --lifetime). It reads the request (head and
Content-Length body), then the path picks the answer:

  /endless-body       200, no Content-Length, not chunked: bytes forever
  /endless-headers    200, then one short header line after another, forever
  /huge-header        200, then one header line that never ends
  /length/<n>         200 with Content-Length: n and n bytes
  /close/<n>          200, no Content-Length: n bytes, then the socket closes
  /chunked/<n>        200, chunked: n bytes in 64 KiB chunks
  /chunked-tiny/<n>   200, chunked: n chunks of one byte
  /chunked-bad-size   200, chunked, a chunk size line "zz"
  /chunked-long-size  200, chunked, a chunk size line of hex digits that never ends
  /chunked-huge-size  200, chunked, a chunk size of 2^80
  /drip               200 with Content-Length: 1000000, one byte every 50 ms
  /drip-headers       200, then one header byte every 50 ms
  /cut-body           200 with Content-Length: 1000, 10 bytes, then the socket closes
  /cut-chunked        200, chunked, half a chunk, then the socket closes
  /short-length       200 with Content-Length: 1000, 10 bytes, then silence
Anything else: 200 with the body "ok".
"""
import socket
import socketserver
import time

import test_server

PIECE = b"x" * 65536
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        got = conn.recv(65536)
        if not got:
            return None
        data += got
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        got = conn.recv(65536)
        if not got:
            break
        rest += got
    return head.split(b" ")[1].decode("latin-1")


def forever(conn, piece, pause=0.0):
    while True:
        conn.sendall(piece)
        if pause:
            time.sleep(pause)


def answer(conn, path):
    parts = path.split("?", 1)[0].strip("/").split("/")
    what, n = parts[0], int(parts[1]) if len(parts) > 1 else 0
    if what == "endless-body":
        conn.sendall(HEAD + b"\r\n")
        forever(conn, PIECE)
    elif what == "endless-headers":
        conn.sendall(HEAD)
        i = 0
        while True:
            conn.sendall(b"X-Filler-%d: %s\r\n" % (i, b"y" * 40))
            i += 1
    elif what == "huge-header":
        conn.sendall(HEAD + b"X-Huge: ")
        forever(conn, PIECE)
    elif what == "length":
        conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % n)
        while n > 0:
            conn.sendall(PIECE[:n])
            n -= len(PIECE)
    elif what == "close":
        conn.sendall(HEAD + b"\r\n")
        while n > 0:
            conn.sendall(PIECE[:n])
            n -= len(PIECE)
    elif what == "chunked":
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        while n > 0:
            piece = PIECE[:n]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            n -= len(piece)
        conn.sendall(b"0\r\n\r\n")
    elif what == "chunked-tiny":
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * n + b"0\r\n\r\n")
    elif what == "chunked-bad-size":
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    elif what == "chunked-long-size":
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        forever(conn, b"0" * 65536)
    elif what == "chunked-huge-size":
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n100000000000000000000\r\n")
        forever(conn, PIECE)
    elif what == "drip":
        conn.sendall(HEAD + b"Content-Length: 1000000\r\n\r\n")
        forever(conn, b"x", 0.05)
    elif what == "drip-headers":
        conn.sendall(HEAD + b"X-Slow: ")
        forever(conn, b"z", 0.05)
    elif what == "cut-body":
        conn.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
    elif what == "cut-chunked":
        conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + b"x" * 10)
    elif what == "short-length":
        conn.sendall(HEAD + b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
        time.sleep(600)
    else:
        conn.sendall(HEAD + b"Content-Length: 2\r\n\r\nok")


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        try:
            path = read_request(conn)
            if path is not None:
                answer(conn, path)
        except OSError:
            pass  # the client gave up: what the hostile answers are for
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass


if __name__ == "__main__":
    test_server.run(Server, Handler, lifetime=300.0)
