// What copy.js and follow.js share: the DocumentClient as AWS's developer guide
// sets it up (plus wrapNumbers, so that numbers are copied without loss), and
// BatchWriteCommand over chunks of 25 with UnprocessedItems retried after an
// exponential back-off, as the guide's batch-write examples do.
'use strict';
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient, BatchWriteCommand } = require('@aws-sdk/lib-dynamodb');

const CHUNK = 25;        // BatchWriteItem's limit
const MAX_ATTEMPTS = 10;

// Both sides use the access key id of bench/e2e: DynamoDB Local namespaces
// tables by key id and region.
function clientConfig(endpoint) {
  return {
    endpoint,
    region: 'us-east-1',
    credentials: {
      accessKeyId: process.env.BENCH_ACCESS_KEY_ID || 'benchkey',
      secretAccessKey: process.env.BENCH_SECRET_ACCESS_KEY || 'benchsecret',
    },
  };
}

function documentClient(endpoint) {
  return DynamoDBDocumentClient.from(new DynamoDBClient(clientConfig(endpoint)), {
    unmarshallOptions: { wrapNumbers: true },
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One BatchWriteCommand of at most 25 requests, retried until nothing is left.
async function writeChunk(doc, table, requests) {
  let pending = { [table]: requests };
  for (let attempt = 1; ; attempt++) {
    const { UnprocessedItems } = await doc.send(new BatchWriteCommand({ RequestItems: pending }));
    if (!UnprocessedItems || Object.keys(UnprocessedItems).length === 0) return;
    if (attempt === MAX_ATTEMPTS) throw new Error(`${table}: unprocessed items after ${attempt} attempts`);
    pending = UnprocessedItems;
    await sleep(Math.min(50 * 2 ** attempt, 2000) * Math.random());
  }
}

// Every request written, 25 a call, at most inFlight calls at once (1: one
// after the other, as the guide's examples do).
async function writeAll(doc, table, requests, inFlight) {
  const chunks = [];
  for (let i = 0; i < requests.length; i += CHUNK) chunks.push(requests.slice(i, i + CHUNK));
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) await writeChunk(doc, table, chunks[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, chunks.length) }, worker));
}

// A positive integer argument, or exit 2 with the usage.
function count(text, what, usage) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`bad ${what} ${JSON.stringify(text)}\nusage: ${usage}`);
    process.exit(2);
  }
  return n;
}

module.exports = { clientConfig, documentClient, writeAll, count };
