#!/usr/bin/env bash
# Seed variation of issue #11's palette rows: each config's tokenizer stages (dataset -> quantize) rerun with
# only the palette stage's seeds changed (palette.trainer.seed: validation split, example order, training
# loop; model.scratch.seed: the from-scratch decoder's initialisation). Dataset, tokenizer and quantizer
# seeds stay the config's (2024). Then palette_independence.py on every run folder.
#
#   scripts/research/seed_study.sh OUT "SEED ..." CONFIG ...
#   scripts/research/seed_study.sh /tmp/seeds "2024 2025 2026" e3-routing-l4 routing-l4-decor-0.003 e1-paper-default
#   LAMIA=build-x/lamia PYPKG=build-x/pypkg JOBS=1 NICE=10 scripts/research/seed_study.sh ...
#
# CONFIG names configs/research/CONFIG.json; each run goes to OUT/CONFIG-s<SEED> (log OUT/CONFIG-s<SEED>.log),
# JOBS runs at a time (default 2) under `nice`, with `uptime` before and after each in OUT/seed_study.log.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$1"; seeds="$2"; shift 2
lamia="${LAMIA:-$root/build/lamia}"
pypkg="${PYPKG:-$root/build/pypkg}"
jobs="${JOBS:-2}"
nice_level="${NICE:-10}"
[ -x "$lamia" ] || { echo "seed_study.sh: no lamia executable at $lamia (set LAMIA=...)" >&2; exit 1; }
mkdir -p "$out"

one() {  # CONFIG SEED
  local run="$out/$1-s$2" start
  [ -f "$root/configs/research/$1.json" ] || { echo "seed_study.sh: no config $1" >&2; return 1; }
  start=$(date +%s)
  echo "start $1 seed $2 $(date -u +%T) | $(uptime)" >> "$out/seed_study.log"
  # the config with the two seeds set (--set reaches one level of sections only)
  /usr/bin/python3 -c 'import json, sys
c = json.load(open(sys.argv[1])); s = int(sys.argv[2])
c.setdefault("palette", {}).setdefault("trainer", {})["seed"] = s
c.setdefault("model", {}).setdefault("scratch", {})["seed"] = s
json.dump(c, open(sys.argv[3], "w"), indent=1)' "$root/configs/research/$1.json" "$2" "$run.json"
  OMP_WAIT_POLICY=PASSIVE nice -n "$nice_level" "$lamia" run --config "$run.json" --out "$run" --until quantize \
    --quiet > "$run.log" 2>&1
  echo "done $1 seed $2 rc=$? $(( $(date +%s) - start )) s $(date -u +%T) | $(uptime)" >> "$out/seed_study.log"
}
export -f one
export root out lamia nice_level

for s in $seeds; do for c in "$@"; do echo "$c $s"; done; done | xargs -P "$jobs" -L 1 bash -c 'one "$0" "$1"'

runs=()
for c in "$@"; do for s in $seeds; do runs+=("$out/$c-s$s"); done; done
PYTHONPATH="$pypkg" nice -n "$nice_level" /usr/bin/python3 "$root/scripts/research/palette_independence.py" "${runs[@]}"
