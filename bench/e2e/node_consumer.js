// End-to-end baseline: the npm package dynamodb-stream 1.1.4 on Node with AWS
// SDK v3 consuming N pre-written changes from DynamoDB Local.
//
//   node bench/e2e/node_consumer.js ENDPOINT STREAM_ARN N
//
// 1.1.4 only ever takes LATEST iterators, so to read pre-written data we take
// a TRIM_HORIZON iterator ourselves and pre-seed the package's state with
// setShardState(), then call fetchStreamState() until N record events arrived.
// N = 0 only starts up (loads the SDK, describes the stream, takes the
// iterator) and exits: the startup cost run.sh subtracts.
// Prints: EVENTS <n> POLLS <polls> WALL <seconds>
'use strict';
const { DynamoDBStreams } = require('@aws-sdk/client-dynamodb-streams');
const { unmarshall } = require('@aws-sdk/util-dynamodb');
const DynamoDBStream = require('dynamodb-stream');

const [endpoint, arn, nArg] = process.argv.slice(2);
const want = Number(nArg);
if (!endpoint || !arn || !(want >= 0)) {
  console.error('usage: node_consumer.js ENDPOINT STREAM_ARN N');
  process.exit(2);
}

async function main() {
  const t0 = process.hrtime.bigint();
  const client = new DynamoDBStreams({
    endpoint,
    region: 'us-east-1',
    credentials: {
      accessKeyId: process.env.BENCH_ACCESS_KEY_ID || 'benchkey',
      secretAccessKey: process.env.BENCH_SECRET_ACCESS_KEY || 'benchsecret',
    },
  });
  const desc = await client.describeStream({ StreamArn: arn });
  const state = {};
  for (const s of desc.StreamDescription.Shards) {
    const it = await client.getShardIterator({
      StreamArn: arn, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON',
    });
    state[s.ShardId] = { shardId: s.ShardId, nextShardIterator: it.ShardIterator };
  }

  const stream = new DynamoDBStream(client, arn, unmarshall);
  stream.setShardState(state);
  let events = 0;
  stream.on('insert record', () => { events++; });
  stream.on('modify record', () => { events++; });
  stream.on('remove record', () => { events++; });

  let polls = 0, idle = 0;
  while (events < want) {
    const before = events;
    await stream.fetchStreamState();
    polls++;
    if (events === before) {
      if (++idle > 50) throw new Error(`stalled at ${events} of ${want} events`);
      await new Promise((r) => setTimeout(r, 100));
    } else {
      idle = 0;
    }
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`EVENTS ${events} POLLS ${polls} WALL ${wall.toFixed(2)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
