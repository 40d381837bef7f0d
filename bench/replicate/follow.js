// Baseline of the follow phase: the npm package dynamodb-stream 1.1.4 reads
// SRC's stream with SDK v3, and the changes of each fetchStreamState() are
// applied to DST with BatchWriteCommand (chunks of 25, UnprocessedItems
// retried), the last change of each key winning within a fetch (one batch
// cannot name a key twice).
//
//   node bench/replicate/follow.js mark ENDPOINT SRC STATE_FILE
//       saves a LATEST iterator of every open shard (the package itself only
//       takes LATEST iterators, at its first fetch); run before the changes.
//   node bench/replicate/follow.js apply ENDPOINT STATE_FILE DST N [IN_FLIGHT]
//       applies changes from there until N arrived.
// apply prints: CHANGES <n> FETCHES <fetches> WALL <seconds>
'use strict';
const fs = require('fs');
const { DynamoDBClient, DescribeTableCommand } = require('@aws-sdk/client-dynamodb');
const { DynamoDBStreams } = require('@aws-sdk/client-dynamodb-streams');
const { unmarshall } = require('@aws-sdk/util-dynamodb');
const DynamoDBStream = require('dynamodb-stream');
const { clientConfig, documentClient, writeAll, count } = require('./sdk');

const USAGE = 'follow.js mark ENDPOINT SRC STATE_FILE | apply ENDPOINT STATE_FILE DST N [IN_FLIGHT]';
const [mode, endpoint, ...rest] = process.argv.slice(2);

async function mark(src, stateFile) {
  const ddb = new DynamoDBClient(clientConfig(endpoint));
  const { Table } = await ddb.send(new DescribeTableCommand({ TableName: src }));
  const arn = Table.LatestStreamArn;
  const streams = new DynamoDBStreams(clientConfig(endpoint));
  const { StreamDescription } = await streams.describeStream({ StreamArn: arn });
  const shards = {};
  for (const s of StreamDescription.Shards) {
    if (s.SequenceNumberRange.EndingSequenceNumber) continue;
    const { ShardIterator } = await streams.getShardIterator({
      StreamArn: arn, ShardId: s.ShardId, ShardIteratorType: 'LATEST',
    });
    shards[s.ShardId] = { shardId: s.ShardId, nextShardIterator: ShardIterator };
  }
  fs.writeFileSync(stateFile, JSON.stringify({ arn, shards }));
}

async function apply(stateFile, dst, want, inFlight) {
  const t0 = process.hrtime.bigint();
  const { arn, shards } = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  const doc = documentClient(endpoint);
  const stream = new DynamoDBStream(new DynamoDBStreams(clientConfig(endpoint)), arn,
    (image) => unmarshall(image, { wrapNumbers: true }));
  stream.setShardState(shards);
  let pending = new Map();  // key -> the last request for it in this fetch
  let changes = 0;
  const put = (item, keys) => { pending.set(JSON.stringify(keys), { PutRequest: { Item: item } }); changes++; };
  stream.on('insert record', put);
  stream.on('modify record', (item, old, keys) => put(item, keys));
  stream.on('remove record', (old, keys) => { pending.set(JSON.stringify(keys), { DeleteRequest: { Key: keys } }); changes++; });

  let fetches = 0, idle = 0;
  while (changes < want) {
    await stream.fetchStreamState();
    fetches++;
    if (pending.size === 0) {
      if (++idle > 50) throw new Error(`stalled at ${changes} of ${want} changes`);
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    idle = 0;
    const requests = [...pending.values()];
    pending = new Map();
    await writeAll(doc, dst, requests, inFlight);
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`CHANGES ${changes} FETCHES ${fetches} WALL ${wall.toFixed(3)}`);
}

async function main() {
  if (mode === 'mark' && endpoint && rest.length === 2) return mark(...rest);
  if (mode === 'apply' && endpoint && (rest.length === 3 || rest.length === 4)) {
    const [stateFile, dst, n, flight = '1'] = rest;
    return apply(stateFile, dst, count(n, 'N', USAGE), Math.max(1, count(flight, 'IN_FLIGHT', USAGE)));
  }
  console.error(`usage: ${USAGE}`);
  process.exit(2);
}

main().catch((e) => { console.error(e); process.exit(1); });
