#!/usr/bin/env node
// Writes tests/data/tokenizer/gpt2_golden.json: the GPT-2 token ids of every
// string in tests/data/tokenizer/hard_strings.json, computed by the npm package
// gpt-3-encoder (an independent JavaScript port of OpenAI's GPT-2 encoder).
//
//   scripts/fetch-test-references.sh && node tests/reference/make_gpt2_golden.js
//
// Its pre-tokenizer is GPT-2's regex with the u flag, so \p{L} and \p{N} are
// full Unicode; \s differs from Python's (the White_Space property) in two
// characters: JS includes U+FEFF and excludes U+0085. Strings with those, and
// characters assigned after the Unicode version of our tables, are refused.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..', '..');
const input = path.join(root, 'tests', 'data', 'tokenizer', 'hard_strings.json');
const output = path.join(root, 'tests', 'data', 'tokenizer', 'gpt2_golden.json');
const { encode, decode } = require('gpt-3-encoder');
const version = require('gpt-3-encoder/package.json').version;

// Check the claim above: the regex really is full-Unicode.
const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const pieces = s => Array.from(s.matchAll(pat)).map(m => m[0]);
const check = (s, expected) => {
  const got = JSON.stringify(pieces(s));
  if (got !== JSON.stringify(expected)) throw new Error(`pre-tokenizer check failed for ${JSON.stringify(s)}: ${got}`);
};
check('東京 café 123', ['東京', ' café', ' 123']);
check('Ⅻ٣٤', ['Ⅻ٣٤']);  // Nl and Nd are \p{N}
check('a\ufeffb', ['a', '\ufeff', 'b']);  // JS: U+FEFF is \s (not White_Space)
check('a\u0085b', ['a', '\u0085', 'b']);  // JS: U+0085 is not \s (it is White_Space)

const { strings } = JSON.parse(fs.readFileSync(input, 'utf-8'));
const cases = [];
for (const text of strings) {
  if (/[\u0085\ufeff]/u.test(text)) throw new Error(`refused (JS \\s differs from White_Space): ${JSON.stringify(text)}`);
  const ids = encode(text);
  if (decode(ids) !== text) throw new Error(`reference round trip failed for ${JSON.stringify(text)}`);
  cases.push({ text, ids, pieces: pieces(text) });
}
const out = {
  about: `GPT-2 ids from npm gpt-3-encoder ${version} (node ${process.version}, Unicode ${process.versions.unicode}); ` +
         'regenerate with node tests/reference/make_gpt2_golden.js',
  reference: `gpt-3-encoder@${version}`,
  cases,
};
const lines = cases.map(c => '  ' + JSON.stringify(c));
const text = '{\n "about": ' + JSON.stringify(out.about) + ',\n "reference": ' + JSON.stringify(out.reference) +
             ',\n "cases": [\n' + lines.join(',\n') + '\n ]\n}\n';
JSON.parse(text);
fs.writeFileSync(output + '.tmp', text);
fs.renameSync(output + '.tmp', output);
console.log(`wrote ${cases.length} cases to ${path.relative(root, output)}`);
