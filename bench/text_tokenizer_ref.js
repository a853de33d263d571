#!/usr/bin/env node
// Reference run for bench_text_tokenizer: encodes the texts of a JSON list with
// the npm package gpt-3-encoder (GPT-2 BPE in JavaScript) and prints one JSON
// line: bytes, tokens, a checksum of the ids, seconds (cold cache, then warm).
//   node bench/text_tokenizer_ref.js TEXTS.json
'use strict';
const fs = require('fs');
const path = require('path');
const { encode } = require(path.join(__dirname, '..', 'tests', 'reference', 'node_modules', 'gpt-3-encoder'));

const texts = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf-8'), 0);
function run() {
  const t0 = process.hrtime.bigint();
  let tokens = 0;
  let checksum = 0;
  for (const t of texts) {
    for (const id of encode(t)) {
      checksum = (checksum * 31 + id) % 1000000007;
      ++tokens;
    }
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, tokens, checksum };
}
const cold = run();
const warm = run();
console.log(JSON.stringify({ bytes, tokens: cold.tokens, checksum: cold.checksum, cold_seconds: cold.seconds,
                             warm_seconds: warm.seconds }));
