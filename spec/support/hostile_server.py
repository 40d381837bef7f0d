#!/usr/bin/python3
"""Loopback server answering the DynamoDB Streams API with crafted bodies, for
spec/robustness/hostile_http_spec.lua (stdlib only).

    hostile_server.py [--lifetime SECONDS]

Prints "pid=<pid> http=<port>" once it listens on 127.0.0.1, then serves until
its parent goes away (or --lifetime). The endpoint path picks the answer:

  /stream/<n>/<pad>   a stream with one closed shard "shardId-1": DescribeStream
                      lists it, GetShardIterator answers "it-1", GetRecords
                      answers <n> INSERT records (pk "k<i>", a <pad>-byte S
                      attribute) and no NextShardIterator. Bodies are built once
                      per (n, pad) and kept.
  /badav/<k>          as /stream/3/4, but record <k>'s NewImage attribute "n" has
                      the unknown AttributeValue type "X"
  /bytes/<n>          200 with a GetRecords-shaped JSON body of exactly <n> bytes
                      (the NextShardIterator string makes up the size), written
                      in 1 MiB pieces
  /raw/<name>         200 with one of the BODIES below
"""
import json
import threading
from http.server import BaseHTTPRequestHandler

import test_server

DEPTH = 10000

BODIES = {
    "deep-arrays": b"[" * DEPTH + b"]" * DEPTH,
    "deep-objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "truncated": b'{"Records":[{"eventName":"INSERT","dynamodb":{"Keys":',
    "array": b"[]",
    "null": b"null",
    "string": b'"Records"',
    "empty": b"",
    "not-json": b"<html>oops</html>",
    "trailing": b'{"Records":[]} {"Records":[]}',
    # invalid UTF-8 (a lone continuation byte, an overlong '/', a UTF-16
    # surrogate in UTF-8, a cut sequence) in a value and in a key
    "bad-utf8": b'{"Records":[],"NextShardIterator":"it\x80\xc0\xaf\xed\xa0\x80\xe2\x82","k\xff":1}',
    "nul-escape": b'{"Records":[],"NextShardIterator":"it\\u0000x"}',
}

_CACHE = {}
_CACHE_LOCK = threading.Lock()


HEAD = ('{"eventID":"ev-%(i)d","eventName":"INSERT","eventVersion":"1.1",'
        '"eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{'
        '"ApproximateCreationDateTime":%(t)d,"Keys":{"pk":{"S":"k%(i)d"}},'
        '"NewImage":{"pk":{"S":"k%(i)d"},"n":{"N":"%(i)d"},"pad":{"S":"')
TAIL = '"}},"SequenceNumber":"%(seq)021d","SizeBytes":%(size)d,"StreamViewType":"NEW_IMAGE"}}'


def records_body(n, pad):
    with _CACHE_LOCK:
        body = _CACHE.get((n, pad))
        if body is None:
            filler = b"x" * pad
            parts = [b'{"Records":[']
            for i in range(1, n + 1):
                v = {"i": i, "t": 1700000000 + i, "seq": 100000000000000000000 + i, "size": pad + 20}
                if i > 1:
                    parts.append(b",")
                parts += [(HEAD % v).encode(), filler, (TAIL % v).encode()]
            parts.append(b"]}")
            body = b"".join(parts)
            _CACHE[(n, pad)] = body
        return body


DESCRIBE = json.dumps({"StreamDescription": {
    "StreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000",
    "StreamStatus": "ENABLED", "StreamViewType": "NEW_IMAGE",
    "Shards": [{"ShardId": "shardId-1", "SequenceNumberRange": {
        "StartingSequenceNumber": "100000000000000000001",
        "EndingSequenceNumber": "900000000000000000000"}}],
}}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ds-hostile"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        target = self.headers.get("X-Amz-Target", "")
        op = target.rsplit(".", 1)[-1]
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts[0] == "badav" and len(parts) == 2:
            parts = ["stream", "3", "4", parts[1]]
        if parts[0] == "stream" and len(parts) in (3, 4):
            if op == "DescribeStream":
                self._send(200, DESCRIBE)
            elif op == "GetShardIterator":
                self._send(200, b'{"ShardIterator":"it-1"}')
            elif op == "GetRecords":
                body = records_body(int(parts[1]), int(parts[2]))
                if len(parts) == 4:
                    k = int(parts[3])
                    body = body.replace(b'"n":{"N":"%d"}' % k, b'"n":{"X":"%d"}' % k)
                self._send(200, body)
            else:
                self._send(400, b'{"__type":"#UnknownOperationException","message":"no"}')
        elif parts[0] == "bytes" and len(parts) == 2:
            # written in 1 MiB pieces: a client that gives up at the headers
            # (Content-Length over its limit) ends the writing early
            size = int(parts[1])
            head, tail = b'{"Records":[],"NextShardIterator":"', b'"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"i" * (1 << 20)
            try:
                self.wfile.write(head)
                left = size - len(head) - len(tail)
                while left > 0:
                    self.wfile.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
                self.wfile.write(tail)
            except OSError:
                self.close_connection = True
        elif parts[0] == "raw" and len(parts) == 2 and parts[1] in BODIES:
            self._send(200, BODIES[parts[1]])
        else:
            self._send(404, b'{"__type":"#NotFound","message":"no route"}')

    do_GET = do_PUT = do_POST


if __name__ == "__main__":
    test_server.run(test_server.QuietHTTPServer, Handler, lifetime=120.0)
