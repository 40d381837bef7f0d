// Baseline of the bootstrap: copies table SRC into DST as AWS documents it,
// a paginated Scan through the DocumentClient, each page written with
// BatchWriteCommand in chunks of 25 (UnprocessedItems retried), optionally as
// a parallel scan of SEGMENTS segments, and IN_FLIGHT batch writes at once per
// segment (default 1, the guide's loop).
//
//   node bench/replicate/copy.js ENDPOINT SRC DST [SEGMENTS [IN_FLIGHT]]
// Prints: ITEMS <n> WALL <seconds>
'use strict';
const { paginateScan } = require('@aws-sdk/lib-dynamodb');
const { documentClient, writeAll, count } = require('./sdk');

const USAGE = 'copy.js ENDPOINT SRC DST [SEGMENTS [IN_FLIGHT]]';
const [endpoint, src, dst, segArg = '1', flightArg = '1'] = process.argv.slice(2);
if (!endpoint || !src || !dst) {
  console.error(`usage: ${USAGE}`);
  process.exit(2);
}
const segments = count(segArg, 'SEGMENTS', USAGE);
const inFlight = count(flightArg, 'IN_FLIGHT', USAGE);
if (segments < 1 || inFlight < 1) {
  console.error(`SEGMENTS and IN_FLIGHT must be >= 1\nusage: ${USAGE}`);
  process.exit(2);
}

async function copySegment(doc, segment) {
  let items = 0;
  const params = { TableName: src };
  if (segments > 1) Object.assign(params, { Segment: segment, TotalSegments: segments });
  for await (const page of paginateScan({ client: doc }, params)) {
    const requests = page.Items.map((Item) => ({ PutRequest: { Item } }));
    await writeAll(doc, dst, requests, inFlight);
    items += requests.length;
  }
  return items;
}

async function main() {
  const t0 = process.hrtime.bigint();
  const doc = documentClient(endpoint);
  const counts = await Promise.all(Array.from({ length: segments }, (_, s) => copySegment(doc, s)));
  const items = counts.reduce((a, b) => a + b, 0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`ITEMS ${items} WALL ${wall.toFixed(3)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
