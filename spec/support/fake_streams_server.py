#!/usr/bin/python3
"""A fake DynamoDB Streams endpoint over HTTP (stdlib only, loopback only).

    fake_streams_server.py [--shards N] [--records R] [--lineage flat|split]
                           [--closed] [--latency-ms MS] [--iterator-ttl S]
                           [--access-key ID --secret KEY] [--no-verify]
                           [--seed N] [--config FILE] [--lifetime S]

Prints one line "pid=<pid> port=<port> arn=<stream arn>" on stdout once it
listens on 127.0.0.1, then serves until its parent process goes away or
--lifetime seconds (default 300) have passed.

It speaks the AWS JSON 1.0 protocol of DynamoDB Streams: POST /, the
operation in X-Amz-Target (DynamoDBStreams_20120810.DescribeStream,
GetShardIterator, GetRecords, ListStreams), JSON bodies, errors as status 400
(500 for InternalServerError) with {"__type": "<namespace>#<Code>", "message": ...}.

Authentication: every request needs an Authorization header
"AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/dynamodb/aws4_request,
SignedHeaders=..., Signature=..." (else MissingAuthenticationTokenException,
IncompleteSignatureException, or InvalidSignatureException when the scope's
service is not "dynamodb"). The signature is verified in full (canonical
request, string to sign, signing key) against the secret of the access key id
(--access-key/--secret, default AKID / fake-streams-secret-0123456789): an
unknown id is UnrecognizedClientException, a wrong signature
InvalidSignatureException. --no-verify skips the signature check only.

The stream: one ARN; shards listed in id order, DescribeStream pages of at
most Limit (1..100, default 100) with LastEvaluatedShardId. Lineages:
  flat   N open shards (--closed: all closed, EndingSequenceNumber set)
  split  N closed parents, each with two open children (3N shards); a child's
         records come after its parent's in sequence-number order
Every shard holds R generated records (--records, default 10): INSERT,
MODIFY and REMOVE with NEW_AND_OLD_IMAGES images using every AttributeValue
type, 21-digit sequence numbers increasing across the stream, pk
"item-<shard index>-<n>".

Iterators encode (shard, position, issue time) and expire --iterator-ttl
seconds (default 900) after issue (ExpiredIteratorException). Types
TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER. GetRecords
(Limit 1..1000, default 1000) returns no NextShardIterator once a closed shard
is read to its end; an open shard read to its end returns [] and an iterator.
--latency-ms is slept in each GetRecords before answering (a network round
trip), --other-latency-ms in the other operations.

--config FILE: a JSON object whose keys override the options (stream_arn,
latency_ms, other_latency_ms, iterator_ttl, access_key, secret, verify,
seed) and may give the shards explicitly:
  "shards": [{"id": "shardId-...", "parent": "shardId-..." | null,
              "records": 10, "closed": true, "trimmed": 0}, ...]
("trimmed": the first n records are past the trim horizon:
TRIM_HORIZON starts after them, AT/AFTER_SEQUENCE_NUMBER before it is
TrimmedDataAccessException.)

GET /_stats answers (without authentication) {"calls": {op: n}, "errors":
{code: n}, "max_in_flight": n, "in_flight": n}. POST /_stats/reset zeroes them.

A live stream (control endpoints, without authentication, JSON in and out;
--records 0 starts with empty shards). Each shard covers a range of a 32-bit
hash space, as DynamoDB's partitions do: the roots share it equally, children
halve their parent's. A change to key K goes to the open shard whose range
holds crc32(K), so one key's changes follow one lineage and their order is
the order of the shards (parents first) and, in a shard, of sequence numbers.
  POST /_control/put {"key": K, "version": V} or {"changes": [{"key", "version"}, ...]}
      appends INSERT (version 1) or MODIFY changes with NewImage {pk: K, v: V}
      (and OldImage v: V-1); "version" defaults to the key's last + 1.
      -> {"written": [{"key", "version", "shard", "seq"}]}
  POST /_control/writer {"changes": N, "keys": K, "rate": R, "seed": S}
      a thread appends N changes over keys "key-00000".."key-<K-1>" (picked at
      random, seeded) at R changes/s; 409 while one runs.
  POST /_control/writer/stop  the writer stops after the change it is writing
  GET /_control/writer -> {"written": n, "target": N, "running": bool}
  POST /_control/split {"shard": ID}  (default: the first open shard)
      closes it and opens two children, each with half its range
      -> {"parent": ID, "children": [ID, ID]}
  POST /_control/rollover  closes every open shard, each replaced by one child
      with its range (what DynamoDB does about every 4 hours)
      -> {"closed": [IDs], "opened": [IDs]}
  GET /_control/changes -> {"changes": [[key, version, shard, seq], ...]} every
      change put so far, in the order written.
A closed shard keeps its records; GetRecords at its end returns no
NextShardIterator, and DescribeStream lists it with EndingSequenceNumber.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler

import test_server

TARGET_PREFIX = "DynamoDBStreams_20120810."
DDB_NS = "com.amazonaws.dynamodb.v20120810#"
CORAL_NS = "com.amazon.coral.service#"
DEFAULT_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/fake/stream/2024-01-01T00:00:00.000"
DEFAULT_ACCESS_KEY = "AKID"
DEFAULT_SECRET = "fake-streams-secret-0123456789"
HASH_SPACE = 1 << 32


class ApiError(Exception):
    def __init__(self, code, message, status=400, namespace=DDB_NS):
        Exception.__init__(self, message)
        self.code, self.message, self.status, self.namespace = code, message, status, namespace


# --------------------------------------------------------------------------
# Generated records


def b64(data):
    return base64.b64encode(data).decode("ascii")


def image(rng, shard_index, n, version):
    """An item using every AttributeValue type, about 1 KB as JSON."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    return {
        "pk": {"S": "item-%d-%d" % (shard_index, n)},
        "sk": {"N": str(n)},
        "version": {"N": str(version)},
        "name": {"S": "%s %s" % (rng.choice(words), rng.choice(words))},
        "price": {"N": "%d.%02d" % (rng.randint(0, 9999), rng.randint(0, 99))},
        "big": {"N": "1234567890123456789012345678901234567" + str(rng.randint(0, 9))},
        "active": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "blob": {"B": b64(bytes(rng.randrange(256) for _ in range(24)))},
        "tags": {"SS": sorted(set(rng.sample(words, 3)))},
        "scores": {"NS": [str(rng.randint(0, 100)), "%d.5" % rng.randint(0, 100)]},
        "chunks": {"BS": [b64(b"\x00\x01" + bytes([rng.randrange(256)])), b64(b"\xff")]},
        "profile": {"M": {
            "email": {"S": "user%d@example.com" % n},
            "address": {"M": {
                "street": {"S": "%d %s Street" % (rng.randint(1, 999), rng.choice(words).title())},
                "city": {"S": rng.choice(["Lyon", "Oslo", "Quito", "Perth"])},
                "zip": {"S": "%05d" % rng.randint(0, 99999)},
            }},
            "prefs": {"L": [{"S": "dark"}, {"N": "3"}, {"BOOL": False}, {"NULL": True}]},
        }},
        "history": {"L": [
            {"M": {"at": {"N": str(1700000000 + i)}, "what": {"S": rng.choice(words)}}}
            for i in range(3)
        ]},
        "note": {"S": "x" * rng.randint(100, 300)},
    }


class Shard(object):
    def __init__(self, shard_id, index, parent=None):
        self.id = shard_id
        self.index = index
        self.parent = parent
        self.records = []   # JSON text of each record, pre-encoded
        self.seqs = []      # their sequence numbers (int)
        self.starting = None
        self.ending = None  # set when closed
        self.trimmed = 0
        self.range = None   # [lo, hi) of the key hash space, set by assign_ranges


class Stream(object):
    def __init__(self, arn, seed):
        self.arn = arn
        self.seed = seed
        self.shards = []
        self.by_id = {}
        self.seq = 0
        # Live changes: the control endpoints and the writer thread append
        # while GetRecords reads; every operation on the stream holds this.
        self.lock = threading.RLock()
        self.versions = {}   # key -> last version put
        self.changes = []    # [key, version, shard id, seq] in the order written
        self.generation = 1
        self.minted = 0

    def next_seq(self):
        self.seq += 1
        return 10 ** 20 + self.seq * 100  # 21 digits, with room between records

    def add_shard(self, shard_id, parent=None, records=10, closed=False, trimmed=0):
        if shard_id in self.by_id:
            raise ValueError("duplicate shard " + shard_id)
        if parent is not None and parent not in self.by_id:
            raise ValueError("unknown parent " + parent)
        if parent is not None and self.by_id[parent].ending is None:
            raise ValueError("parent %s of %s is not closed" % (parent, shard_id))
        s = Shard(shard_id, len(self.shards), parent)
        s.starting = self.next_seq()
        rng = random.Random(self.seed * 100003 + s.index)
        for n in range(records):
            seq = self.next_seq()
            kind = rng.choice(["INSERT", "MODIFY", "MODIFY", "MODIFY", "REMOVE"])
            new = image(rng, s.index, n, 2) if kind != "REMOVE" else None
            old = image(rng, s.index, n, 1) if kind != "INSERT" else None
            ddb = {
                "ApproximateCreationDateTime": 1700000000 + self.seq,
                "Keys": {"pk": {"S": "item-%d-%d" % (s.index, n)}, "sk": {"N": str(n)}},
                "SequenceNumber": str(seq),
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            }
            if new is not None:
                ddb["NewImage"] = new
            if old is not None:
                ddb["OldImage"] = old
            record = {
                "eventID": "%032x" % rng.getrandbits(128),
                "eventName": kind,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": ddb,
            }
            ddb["SizeBytes"] = len(json.dumps(ddb, separators=(",", ":")))
            s.records.append(json.dumps(record, separators=(",", ":")))
            s.seqs.append(seq)
        s.trimmed = min(trimmed, records)
        if closed:
            s.ending = s.seqs[-1] if s.seqs else s.starting
        self.shards.append(s)
        self.by_id[shard_id] = s
        self.shards.sort(key=lambda x: x.id)
        return s

    def assign_ranges(self):
        """Roots share the hash space equally, children halve their parent's."""
        roots = [s for s in self.shards if s.parent is None or s.parent not in self.by_id]
        for i, s in enumerate(roots):
            s.range = (i * HASH_SPACE // len(roots), (i + 1) * HASH_SPACE // len(roots))
        pending = [s for s in self.shards if s.range is None]
        while pending:
            for s in pending:
                parent = self.by_id[s.parent]
                if parent.range is None:
                    continue
                siblings = [c for c in self.shards if c.parent == parent.id]
                lo, hi = parent.range
                k = siblings.index(s)
                s.range = (lo + k * (hi - lo) // len(siblings), lo + (k + 1) * (hi - lo) // len(siblings))
            pending = [s for s in pending if s.range is None]

    def open_shards(self):
        return [s for s in self.shards if s.ending is None]

    def close(self, s):
        s.ending = s.seqs[-1] if s.seqs else s.starting

    def new_child(self, parent, lo, hi):
        self.minted += 1
        child = self.add_shard(shard_id(self.generation, self.minted), parent.id, 0, False)
        child.range = (lo, hi)
        return child

    def split(self, sid=None):
        with self.lock:
            open_ = self.open_shards()
            s = self.by_id.get(sid) if sid else (open_[0] if open_ else None)
            if s is None or s.ending is not None:
                raise ApiError("ValidationException", "no open shard %s to split" % sid)
            self.close(s)
            self.generation += 1
            lo, hi = s.range
            mid = (lo + hi) // 2
            children = [self.new_child(s, lo, mid), self.new_child(s, mid, hi)]
            return {"parent": s.id, "children": [c.id for c in children]}

    def rollover(self):
        with self.lock:
            open_ = self.open_shards()
            for s in open_:
                self.close(s)
            self.generation += 1
            opened = [self.new_child(s, s.range[0], s.range[1]) for s in open_]
            return {"closed": [s.id for s in open_], "opened": [c.id for c in opened]}

    def put(self, key, version=None):
        """Appends one change of key to the open shard that covers it."""
        if not isinstance(key, str) or not key:
            raise ApiError("ValidationException", "key must be a non-empty string")
        with self.lock:
            if version is None:
                version = self.versions.get(key, 0) + 1
            if not isinstance(version, int) or version < 1:
                raise ApiError("ValidationException", "version must be a positive integer")
            h = zlib.crc32(key.encode("utf-8"))
            s = next((x for x in self.shards if x.ending is None and x.range[0] <= h < x.range[1]), None)
            if s is None:
                raise ApiError("ValidationException", "no open shard covers " + key)
            seq = self.next_seq()
            ddb = {
                "ApproximateCreationDateTime": int(time.time()),
                "Keys": {"pk": {"S": key}},
                "NewImage": {"pk": {"S": key}, "v": {"N": str(version)}},
                "SequenceNumber": str(seq),
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            }
            if version > 1:
                ddb["OldImage"] = {"pk": {"S": key}, "v": {"N": str(version - 1)}}
            ddb["SizeBytes"] = len(json.dumps(ddb, separators=(",", ":")))
            record = {
                "eventID": "%032x" % random.getrandbits(128),
                "eventName": "INSERT" if version == 1 else "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": ddb,
            }
            s.records.append(json.dumps(record, separators=(",", ":")))
            s.seqs.append(seq)
            self.versions[key] = max(version, self.versions.get(key, 0))
            self.changes.append([key, version, s.id, str(seq)])
            return {"key": key, "version": version, "shard": s.id, "seq": str(seq)}

    def shard_json(self, s):
        rng = {"StartingSequenceNumber": str(s.starting)}
        if s.ending is not None:
            rng["EndingSequenceNumber"] = str(s.ending)
        out = {"ShardId": s.id, "SequenceNumberRange": rng}
        if s.parent is not None:
            out["ParentShardId"] = s.parent
        return out


def shard_id(generation, n):
    # Real ids look like shardId-00000001536019433616-6f9cd1f4; a later
    # generation sorts after an earlier one.
    return "shardId-%020d-%08x" % (1700000000000 + generation * 1000 + n // 1000, n)


def build_stream(args, config):
    stream = Stream(config.get("stream_arn", args.stream_arn), int(config.get("seed", args.seed)))
    if "shards" in config:
        for spec in config["shards"]:
            stream.add_shard(spec["id"], spec.get("parent"), int(spec.get("records", args.records)),
                             bool(spec.get("closed", False)), int(spec.get("trimmed", 0)))
        stream.assign_ranges()
        return stream
    if args.lineage == "flat":
        for n in range(args.shards):
            stream.add_shard(shard_id(0, n), None, args.records, args.closed)
    elif args.lineage == "split":
        for n in range(args.shards):
            stream.add_shard(shard_id(0, n), None, args.records, True)
        for n in range(args.shards):
            for k in range(2):
                stream.add_shard(shard_id(1, 2 * n + k), shard_id(0, n), args.records, args.closed)
    else:
        raise SystemExit("unknown lineage " + args.lineage)
    stream.assign_ranges()
    return stream


class Writer(object):
    """Appends `changes` changes over `keys` keys at `rate` per second."""

    def __init__(self, stream, changes, keys, rate, seed):
        self.stream, self.target, self.keys, self.rate = stream, changes, keys, rate
        self.rng = random.Random(seed)
        self.written = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        start = time.monotonic()
        while self.written < self.target and not self.stopped.is_set():
            due = min(self.target, int((time.monotonic() - start) * self.rate) + 1)
            while self.written < due and not self.stopped.is_set():
                self.stream.put("key-%05d" % self.rng.randrange(self.keys))
                self.written += 1
            time.sleep(0.005)

    def running(self):
        return self.thread.is_alive()


# --------------------------------------------------------------------------
# SigV4 verification


def hmac_sha256(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def check_auth(headers, body, keys, verify):
    auth = headers.get("Authorization")
    if not auth:
        raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token",
                       namespace=CORAL_NS)
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        raise ApiError("IncompleteSignatureException",
                       "Authorization header requires AWS4-HMAC-SHA256", namespace=CORAL_NS)
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise ApiError("IncompleteSignatureException",
                           "Authorization header requires '%s' parameter." % name, namespace=CORAL_NS)
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise ApiError("IncompleteSignatureException", "Credential is malformed", namespace=CORAL_NS)
    access_key, date, region, service = scope[:4]
    if service != "dynamodb":
        raise ApiError("InvalidSignatureException",
                       "Credential should be scoped to correct service: 'dynamodb'.", namespace=CORAL_NS)
    if access_key not in keys:
        raise ApiError("UnrecognizedClientException",
                       "The security token included in the request is invalid.", namespace=CORAL_NS)
    amz_date = headers.get("X-Amz-Date") or ""
    if not amz_date.startswith(date):
        raise ApiError("InvalidSignatureException",
                       "Date in Credential scope does not match X-Amz-Date.", namespace=CORAL_NS)
    if not verify:
        return
    signed = fields["SignedHeaders"].split(";")
    lines = []
    for name in signed:
        value = headers.get(name)
        if value is None:
            raise ApiError("InvalidSignatureException", "Signed header %s is missing." % name,
                           namespace=CORAL_NS)
        lines.append("%s:%s\n" % (name, " ".join(value.split())))
    canonical = "\n".join([
        "POST", "/", "", "".join(lines), fields["SignedHeaders"],
        hashlib.sha256(body).hexdigest(),
    ])
    scope_text = "/".join(scope[1:])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope_text,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = ("AWS4" + keys[access_key]).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac_sha256(key, part)
    expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise ApiError("InvalidSignatureException",
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your AWS Secret Access Key and signing method.",
                       namespace=CORAL_NS)


# --------------------------------------------------------------------------
# Operations


class Api(object):
    def __init__(self, stream, ttl, latency, other_latency):
        self.stream = stream
        self.ttl = ttl
        self.latency = latency
        self.other_latency = other_latency
        self.lock = threading.Lock()
        self.calls = {}
        self.errors = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.writer = None

    def control(self, method, path, body):
        """The live stream's control endpoints: (status, JSON text)."""
        stream = self.stream
        if method == "GET" and path == "/_control/changes":
            with stream.lock:
                return 200, json.dumps({"changes": stream.changes})
        if method == "GET" and path == "/_control/writer":
            w = self.writer
            return 200, json.dumps({"written": w.written if w else 0, "target": w.target if w else 0,
                                    "running": bool(w and w.running())})
        if method != "POST":
            return 404, json.dumps({"error": "not found"})
        try:
            params = json.loads(body.decode("utf-8") or "{}")
        except ValueError:
            return 400, json.dumps({"error": "body is not JSON"})
        if not isinstance(params, dict):
            return 400, json.dumps({"error": "body must be a JSON object"})
        try:
            if path == "/_control/put":
                changes = params["changes"] if "changes" in params else [params]
                if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
                    raise ApiError("ValidationException", "changes must be a list of objects")
                return 200, json.dumps({"written": [stream.put(c.get("key"), c.get("version"))
                                                    for c in changes]})
            if path == "/_control/split":
                return 200, json.dumps(stream.split(params.get("shard")))
            if path == "/_control/rollover":
                return 200, json.dumps(stream.rollover())
            if path == "/_control/writer/stop":
                if self.writer:
                    self.writer.stopped.set()
                    self.writer.thread.join()
                return 200, json.dumps({"written": self.writer.written if self.writer else 0})
            if path == "/_control/writer":
                if self.writer and self.writer.running():
                    return 409, json.dumps({"error": "a writer is running"})
                n, keys, rate = params.get("changes"), params.get("keys"), params.get("rate")
                if not all(isinstance(x, (int, float)) and x > 0 for x in (n, keys, rate)):
                    raise ApiError("ValidationException", "changes, keys and rate must be positive numbers")
                self.writer = Writer(stream, int(n), int(keys), float(rate), params.get("seed", 1))
                self.writer.thread.start()
                return 200, json.dumps({"started": True})
        except ApiError as e:
            return 400, json.dumps({"error": e.message})
        return 404, json.dumps({"error": "not found"})

    # -- iterators: base64url of "arn|shard|position|issued|nonce"
    def make_iterator(self, shard, pos):
        raw = "%s|%s|%d|%.6f|%x" % (self.stream.arn, shard.id, pos, time.time(),
                                    random.getrandbits(32))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")

    def read_iterator(self, it):
        try:
            arn, sid, pos, issued, _ = base64.urlsafe_b64decode(it.encode("ascii")).decode(
                "utf-8").split("|")
            pos, issued = int(pos), float(issued)
        except Exception:
            raise ApiError("ValidationException", "Invalid ShardIterator")
        shard = self.stream.by_id.get(sid)
        if arn != self.stream.arn or shard is None:
            raise ApiError("ResourceNotFoundException",
                           "Requested resource not found: Shard does not exist")
        if time.time() - issued > self.ttl:
            raise ApiError("ExpiredIteratorException", "Iterator expired. The iterator was "
                           "created at time %s while right now it is %s." % (issued, time.time()))
        return shard, pos

    def check_arn(self, params):
        if params.get("StreamArn") != self.stream.arn:
            raise ApiError("ResourceNotFoundException", "Requested resource not found: Stream: %s "
                           "not found" % params.get("StreamArn"))

    def DescribeStream(self, params):
        self.check_arn(params)
        limit = params.get("Limit", 100)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ApiError("ValidationException", "1 validation error detected: Value at 'limit' "
                           "failed to satisfy constraint: Member must have value between 1 and 100")
        start = params.get("ExclusiveStartShardId")
        listed = [s for s in self.stream.shards if start is None or s.id > start]
        page = listed[:limit]
        desc = {
            "StreamArn": self.stream.arn,
            "StreamLabel": self.stream.arn.rsplit("/", 1)[-1],
            "StreamStatus": "ENABLED",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            "CreationRequestDateTime": 1704067200.0,
            "TableName": self.stream.arn.split(":table/")[-1].split("/")[0],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Shards": [self.stream.shard_json(s) for s in page],
        }
        if len(listed) > limit:
            desc["LastEvaluatedShardId"] = page[-1].id
        return json.dumps({"StreamDescription": desc})

    def ListStreams(self, params):
        table = params.get("TableName")
        name = self.stream.arn.split(":table/")[-1].split("/")[0]
        streams = []
        if table is None or table == name:
            streams.append({"StreamArn": self.stream.arn, "TableName": name,
                            "StreamLabel": self.stream.arn.rsplit("/", 1)[-1]})
        start = params.get("ExclusiveStartStreamArn")
        if start is not None:
            streams = [s for s in streams if s["StreamArn"] > start]
        return json.dumps({"Streams": streams})

    def GetShardIterator(self, params):
        self.check_arn(params)
        shard = self.stream.by_id.get(params.get("ShardId"))
        if shard is None:
            raise ApiError("ResourceNotFoundException",
                           "Requested resource not found: Shard does not exist")
        kind = params.get("ShardIteratorType")
        if kind == "TRIM_HORIZON":
            pos = shard.trimmed
        elif kind == "LATEST":
            pos = len(shard.records)
        elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            seq = params.get("SequenceNumber")
            if not isinstance(seq, str) or not seq.isdigit() or not 21 <= len(seq) <= 40:
                raise ApiError("ValidationException", "SequenceNumber is required and must be 21 "
                               "to 40 digits for " + kind)
            seq = int(seq)
            pos = len(shard.records)
            for i, s in enumerate(shard.seqs):
                if s > seq or (s == seq and kind == "AT_SEQUENCE_NUMBER"):
                    pos = i
                    break
            if pos < shard.trimmed:
                raise ApiError("TrimmedDataAccessException", "The operation attempted to read "
                               "past the oldest stream record in a shard.")
            if seq < shard.starting or (shard.ending is not None and seq > shard.ending):
                raise ApiError("ValidationException", "Invalid SequenceNumber for ShardId " + shard.id)
        else:
            raise ApiError("ValidationException", "1 validation error detected: Value '%s' at "
                           "'shardIteratorType' failed to satisfy constraint" % kind)
        return json.dumps({"ShardIterator": self.make_iterator(shard, pos)})

    def GetRecords(self, params):
        it = params.get("ShardIterator")
        if not isinstance(it, str) or not it:
            raise ApiError("ValidationException", "ShardIterator is required")
        limit = params.get("Limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ApiError("ValidationException", "1 validation error detected: Value at 'limit' "
                           "failed to satisfy constraint: Member must have value between 1 and 1000")
        shard, pos = self.read_iterator(it)
        if pos < shard.trimmed:
            raise ApiError("TrimmedDataAccessException", "The operation attempted to read past "
                           "the oldest stream record in a shard.")
        end = min(len(shard.records), pos + limit)
        out = '{"Records":[' + ",".join(shard.records[pos:end]) + "]"
        if shard.ending is None or end < len(shard.records):
            out += ',"NextShardIterator":' + json.dumps(self.make_iterator(shard, end))
        return out + "}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "fake-streams"
    sys_version = ""
    wbufsize = 1 << 16  # status, headers and body leave in one write (flushed per request)
    api = None
    keys = None
    verify = True

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        # No Nagle: with delayed ACKs on the client it costs 40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body, ctype="application/x-amz-json-1.0"):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "%032X" % random.getrandbits(128))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        api = self.api
        if self.path == "/_stats":
            with api.lock:
                stats = {"calls": dict(api.calls), "errors": dict(api.errors),
                         "max_in_flight": api.max_in_flight, "in_flight": api.in_flight}
            self._send(200, json.dumps(stats), "application/json")
        elif self.path.startswith("/_control/"):
            self._send(*api.control("GET", self.path, b""), ctype="application/json")
        else:
            self._send(404, "not found", "text/plain")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        api = self.api
        if self.path == "/_stats/reset":
            with api.lock:
                api.calls, api.errors, api.max_in_flight = {}, {}, api.in_flight
            self._send(200, "{}", "application/json")
            return
        if self.path.startswith("/_control/"):
            self._send(*api.control("POST", self.path, body), ctype="application/json")
            return
        with api.lock:
            api.in_flight += 1
            api.max_in_flight = max(api.max_in_flight, api.in_flight)
        op = "?"
        try:
            target = self.headers.get("X-Amz-Target") or ""
            op = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else "?"
            with api.lock:
                api.calls[op] = api.calls.get(op, 0) + 1
            check_auth(self.headers, body, self.keys, self.verify)
            if op not in ("DescribeStream", "GetShardIterator", "GetRecords", "ListStreams"):
                raise ApiError("UnknownOperationException", "Unknown operation " + target,
                               namespace=CORAL_NS)
            try:
                params = json.loads(body.decode("utf-8") or "{}")
            except ValueError:
                raise ApiError("SerializationException", "Start of structure or map found "
                               "where not expected", namespace=CORAL_NS)
            if not isinstance(params, dict):
                raise ApiError("SerializationException", "Expected a JSON object",
                               namespace=CORAL_NS)
            delay = api.latency if op == "GetRecords" else api.other_latency
            if delay > 0:
                time.sleep(delay)
            with api.stream.lock:
                answer = getattr(api, op)(params)
            self._send(200, answer)
        except ApiError as e:
            with api.lock:
                api.errors[e.code] = api.errors.get(e.code, 0) + 1
            self._send(e.status, json.dumps({"__type": e.namespace + e.code, "message": e.message}))
        finally:
            with api.lock:
                api.in_flight -= 1


class Server(test_server.QuietHTTPServer):
    request_queue_size = 1024  # 64+ clients connect at once


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--records", type=int, default=10)
    ap.add_argument("--lineage", default="flat", choices=["flat", "split"])
    ap.add_argument("--closed", action="store_true")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--other-latency-ms", type=float, default=0.0)
    ap.add_argument("--iterator-ttl", type=float, default=900.0)
    ap.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    ap.add_argument("--secret", default=DEFAULT_SECRET)
    ap.add_argument("--no-verify", action="store_true")
    ap.add_argument("--stream-arn", default=DEFAULT_ARN)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config")
    ap.add_argument("--lifetime", type=float, default=300.0)
    args = ap.parse_args()
    # Taken before the first line is printed: a parent that exits right after
    # reading it must still be seen to go.
    parent = os.getppid()

    config = {}
    if args.config:
        with open(args.config) as f:
            config = json.load(f)
    stream = build_stream(args, config)
    Handler.api = Api(stream,
                      float(config.get("iterator_ttl", args.iterator_ttl)),
                      float(config.get("latency_ms", args.latency_ms)) / 1000.0,
                      float(config.get("other_latency_ms", args.other_latency_ms)) / 1000.0)
    Handler.keys = {config.get("access_key", args.access_key): config.get("secret", args.secret)}
    Handler.verify = bool(config.get("verify", not args.no_verify))

    server = Server(("127.0.0.1", 0), Handler)
    port = test_server.start(server)
    print("pid=%d port=%d arn=%s" % (os.getpid(), port, stream.arn), flush=True)

    test_server.run_until_orphaned(parent, args.lifetime)


if __name__ == "__main__":
    main()
