#!/usr/bin/env bash
# The export and the evaluation under torchrun (2 ranks of 1 thread) against one process (the default
# threads) on the same folder: wall times, their ratio, and whether the outputs agree (docs/distributed.md).
#   LAMIA=build/lamia bench/distributed_split.sh [WORKDIR]
set -euo pipefail
L=$(realpath "${LAMIA:-build/lamia}")
D=${1:-/tmp/lamia-distributed-split}
rm -rf "$D"; mkdir -p "$D"
SETS=(--set dataset.synthetic.num_items=3000 --set dataset.synthetic.num_users=1000 --set palette.trainer.max_steps=40
      --set recommend.epochs=1 --set evaluate.max_users=200 --set evaluate.exact=true --set evaluate.exact_users=50)
TR=(/usr/bin/python3 -m torch.distributed.run --standalone --nproc_per_node 2 --redirects 1 --tee 1 --no_python)
# Wall seconds of a command (its output kept in $D/last.log, printed when it fails).
secs() { local s=$EPOCHREALTIME; "$@" >"$D/last.log" 2>&1 || { cat "$D/last.log"; exit 1; }; awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
secs "$L" train-palette "$D/base" "${SETS[@]}" --quiet >/dev/null
cp -r "$D/base" "$D/one"; cp -r "$D/base" "$D/two"
one=$(secs "$L" export-palettes "$D/one" --quiet); two=$(secs "${TR[@]}" "$L" export-palettes "$D/two" --quiet)
cmp "$D/one/palettes.bin" "$D/two/palettes.bin" && cmp "$D/one/embeddings.bin" "$D/two/embeddings.bin"
printf 'export:   one process %.1f s, 2 ranks %.1f s (x%.2f); palettes.bin and embeddings.bin byte-identical\n' "$one" "$two" "$(ratio "$one" "$two")"
secs "$L" quantize "$D/one" --quiet >/dev/null
secs "$L" train-rec "$D/one" --quiet >/dev/null
rm -rf "$D/two"; cp -r "$D/one" "$D/two"
one=$(secs "$L" evaluate "$D/one" --quiet); two=$(secs "${TR[@]}" "$L" evaluate "$D/two" --quiet)
diff=$(/usr/bin/python3 - "$D/one/metrics.json" "$D/two/metrics.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
worst, count = 0.0, 0
def walk(x, y, key=""):
    global worst, count
    if isinstance(x, dict):
        assert set(x) == set(y), key
        for k in x: walk(x[k], y[k], key + "." + k)
    elif isinstance(x, float) and not key.endswith(("seconds", "per_second")):
        count += 1
        if x != y: worst = max(worst, abs(x - y) / max(abs(y), 1e-300))
    elif not isinstance(x, float):
        assert x == y, key
walk(a, b)
print(f"{count} numbers of metrics.json, max relative difference {worst:.2g}")
PY
)
printf 'evaluate: one process %.1f s, 2 ranks %.1f s (x%.2f); %s\n' "$one" "$two" "$(ratio "$one" "$two")" "$diff"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
