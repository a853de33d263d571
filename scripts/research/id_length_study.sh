#!/usr/bin/env bash
# The ID-length study of paper Figure 6 (issue #11): Recall@K of the same generative recommender on
# LAMIA IDs of L palette positions and on RQ-VAE IDs of L levels, for each L given.
#
#   scripts/research/id_length_study.sh [OUT] [L ...]        # default: /tmp/fig6, L = 1 2 3 4 6 8
#   LAMIA=build-x/lamia NICE=0 scripts/research/id_length_study.sh /tmp/fig6 2 4
#   SET="recommend.epochs=40" scripts/research/id_length_study.sh /tmp/fig6-converged 1 2 3 4
#       (SET: space-separated KEY=VALUE overrides passed as --set to every run, e.g. recommenders trained
#       until early stopping, patience 3, instead of at most 10 epochs)
#
# Each L runs configs/research/fig6-l<L>.json (the pipeline's default method, task routing on the aspect
# layout, with palette_size L; RQ-VAE and residual K-Means follow L through quantize.match_palette_size;
# recommenders for lamia and rq-vae, 10 epochs at most, 1,000 test users) into OUT/l<L>, one run at a
# time under `nice` (a run whose stages are up to date is skipped by the manifest). Then
# `lamia report OUT/l<first> --runs OUT/l<others> --out OUT/fig6` draws R@K against L per tokenizer
# (OUT/fig6.md, OUT/fig6.html, section 4), and the same numbers are printed here as a table.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-/tmp/fig6}"
shift || true
lengths=("$@")
[ ${#lengths[@]} -gt 0 ] || lengths=(1 2 3 4 6 8)
lamia="${LAMIA:-$root/build/lamia}"
nice_level="${NICE:-10}"
overrides=()
for kv in ${SET:-}; do overrides+=(--set "$kv"); done

[ -x "$lamia" ] || { echo "id_length_study.sh: no lamia executable at $lamia (set LAMIA=...)" >&2; exit 1; }
mkdir -p "$out"
runs=()
for L in "${lengths[@]}"; do
  config="$root/configs/research/fig6-l$L.json"
  [ -f "$config" ] || { echo "id_length_study.sh: no config $config" >&2; exit 1; }
  start=$(date +%s)
  nice -n "$nice_level" "$lamia" run --config "$config" --out "$out/l$L" --quiet ${overrides[@]+"${overrides[@]}"}
  echo "L = $L: $(( $(date +%s) - start )) s -> $out/l$L" >&2
  runs+=("$out/l$L")
done

others=()
[ ${#runs[@]} -gt 1 ] && others=(--runs "${runs[@]:1}")  # an empty --runs would take --out as its value
"$lamia" report "${runs[0]}" "${others[@]}" --out "$out/fig6"
echo "report: $out/fig6.md, $out/fig6.html" >&2

# The figure's numbers: beam-search R@K and N@10 per tokenizer and L, from each run's metrics.json.
/usr/bin/python3 - "${runs[@]}" <<'EOF'
import json, os, sys
rows = []
for run in sys.argv[1:]:
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    L = json.load(open(os.path.join(run, "config.json")))["palette"]["encoder"]["palette_size"]
    for name, m in sorted(metrics["methods"].items()):
        b = m.get("beam") or m.get("exact") or {}  # generative: beam search; ID-based: full ranking
        rows.append((name, L, b.get("recall@5"), b.get("recall@10"), b.get("recall@20"), b.get("ndcg@10")))
f = lambda x: "-" if x is None else f"{x:.4f}"
print("| method | L | R@5 | R@10 | R@20 | N@10 |")
print("|---|---|---|---|---|---|")
for r in sorted(rows, key=lambda r: (r[0], r[1])):
    print(f"| {r[0]} | {r[1]} | " + " | ".join(f(x) for x in r[2:]) + " |")
EOF
