#!/usr/bin/python3
"""spec/support/fake_streams_server.py with as many records per shard as wanted,
for long runs (bench/mem/run.sh): the same options and protocol, but only the
first --templates records of each shard (default 500) are generated; record n
is template n mod T with its own SequenceNumber (increasing within the shard),
built when a GetRecords page asks for it. Generating 200,000 records the
ordinary way takes the fake about a minute and holds ~0.5 GB; this starts in a
second and holds T records per shard. Flat lineage only (no --config, no
--lineage split).

    fake_many.py [--templates T] <fake_streams_server.py options>
"""
import importlib.util
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
support = os.path.join(here, "..", "..", "spec", "support")
sys.path.insert(0, support)  # fake_streams_server.py imports test_server from there
spec = importlib.util.spec_from_file_location("fake_streams_server", os.path.join(support, "fake_streams_server.py"))
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)

templates = 500
if len(sys.argv) > 2 and sys.argv[1] == "--templates":
    templates = int(sys.argv[2])
    del sys.argv[1:3]


class Lazy(object):
    """A read-only sequence of n items, item(i) built on demand."""

    def __init__(self, n, item):
        self.n, self.item = n, item

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self.item(i) for i in range(*k.indices(self.n))]
        if k < 0:
            k += self.n
        if not 0 <= k < self.n:
            raise IndexError(k)
        return self.item(k)


def make_lazy(shard, n):
    recs, seqs = shard.records, shard.seqs
    if not recs or n <= len(recs):
        return
    # Each template split around its sequence number.
    parts = []
    for text, seq in zip(recs, seqs):
        mark = '"SequenceNumber":"%d"' % seq
        head, tail = text.split(mark, 1)
        parts.append((head + '"SequenceNumber":"', '"' + tail))
    t = len(parts)
    # 21 digits, distinct per shard, increasing within it.
    base = 10 ** 20 + (shard.index + 1) * 10 ** 13
    shard.starting = base

    def seq(i):
        return base + (i + 1) * 100

    def record(i):
        head, tail = parts[i % t]
        return head + str(seq(i)) + tail

    shard.records, shard.seqs = Lazy(n, record), Lazy(n, seq)


original_build = fake.build_stream


def build_stream(args, config):
    if config or args.lineage != "flat" or args.closed:
        raise SystemExit("fake_many.py: flat open shards only")
    wanted = args.records
    args.records = min(wanted, templates)
    stream = original_build(args, config)
    for shard in stream.shards:
        make_lazy(shard, wanted)
    return stream


fake.build_stream = build_stream

if __name__ == "__main__":
    fake.main()
