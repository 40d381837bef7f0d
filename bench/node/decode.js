// Node decode baseline: JSON.parse + @aws-sdk/util-dynamodb unmarshall of
// Keys, NewImage and OldImage of every record (default options, so no
// wrapNumbers: gen_page.lua only emits numbers util-dynamodb accepts: 38-digit
// integers become BigInt, 38-significant-digit decimals are small and become
// lossy Numbers). B values stay base64 strings (util-dynamodb leaves B as given).
//
//   node bench/node/decode.js PAGE.json [runs] [min_seconds_per_run] [filtered]
// Prints: RESULT node <records/s> <MB/s> <records per page> <bytes>
// With "filtered" (the orders page): the same decode, then the records whose
// new image has customer.age >= 84 kept in an array, as a Node user filters
// after unmarshall (bench/decode/decode.lua's ours_filtered pattern, written as
// JavaScript); prints RESULT node_filtered ... (records/s counts every record
// of the page) and KEPT node_filtered <records kept>.
'use strict';
const fs = require('fs');
const { unmarshall } = require('@aws-sdk/util-dynamodb');

const file = process.argv[2];
const runs = Number(process.argv[3] || 7);
const minSec = Number(process.argv[4] || 0.25);
const filtered = process.argv[5] === 'filtered';
const text = fs.readFileSync(file, 'utf8');
const bytes = Buffer.byteLength(text);

// CPU time of the process in seconds (user + sys; V8's helper threads count).
function cpuNow() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

let sink = 0;
let kept = 0;  // records the filter kept, in the last decode
function decode() {
  const page = JSON.parse(text);
  const recs = page.Records;
  const keep = [];
  for (let i = 0; i < recs.length; i++) {
    const d = recs[i].dynamodb;
    const keys = d.Keys ? unmarshall(d.Keys) : undefined;
    const nw = d.NewImage ? unmarshall(d.NewImage) : undefined;
    const old = d.OldImage ? unmarshall(d.OldImage) : undefined;
    if (keys) sink += 1 + (nw ? 1 : 0) + (old ? 1 : 0);
    if (filtered && recs[i].eventName === 'MODIFY' && nw?.customer?.age >= 84) {
      keep.push({ record: recs[i], keys, newImage: nw, oldImage: old });
    }
  }
  kept = keep.length;
  return recs.length;
}

const nrec = decode();
// Warm-up (JIT) and sizing: iterations per run so a run lasts >= minSec.
let iters = 1;
for (;;) {
  const t0 = cpuNow();
  for (let i = 0; i < iters; i++) decode();
  const dt = (cpuNow() - t0);
  if (dt >= minSec) break;
  iters *= 2;
}
const rates = [];
for (let r = 0; r < runs; r++) {
  const t0 = cpuNow();
  for (let i = 0; i < iters; i++) decode();
  const dt = (cpuNow() - t0);
  rates.push(iters / dt);
}
rates.sort((a, b) => a - b);
const pages = rates[Math.floor(rates.length / 2)];
if (sink === 0) throw new Error('nothing decoded');
const name = filtered ? 'node_filtered' : 'node';
console.log(`RESULT ${name} ${(pages * nrec).toFixed(0)} ${(pages * bytes / 1e6).toFixed(1)} ${nrec} ${bytes}`);
if (filtered) console.log(`KEPT ${name} ${kept}`);
