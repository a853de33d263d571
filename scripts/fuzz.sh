#!/usr/bin/env bash
# Builds lamia's libFuzzer targets (fuzz/) into build-fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each for a bounded time (docs/fuzzing.md).
#
#   scripts/fuzz.sh                      # every target, 10 s each
#   LAMIA_FUZZ_SECONDS=60 scripts/fuzz.sh fuzz_mind fuzz_hm
#
# Environment:
#   LAMIA_FUZZ_SECONDS   seconds per target (default 10)
#   LAMIA_FUZZ_CXX       the clang++ to use (default: clang++-14, else clang++)
#   LAMIA_FUZZ_BUILD     the build folder (default build-fuzz)
#   LAMIA_BUILD_JOBS     build jobs (default: the number of CPUs)
#   LAMIA_SHARED_DATA    real datasets to seed from when the folder exists (default ../shared/data)
# Seeds: every case of tests/data (fuzz/make_seeds.py), and small slices of LAMIA_SHARED_DATA taken
# at run time. Inputs the fuzzer finds go to <build>/fuzz-corpus/<target> (kept between runs).
# Exit status: 0 when every target ran clean, or when clang or libFuzzer is missing (skipped, with
# the reason); 1 when a target crashed, hung, ran out of memory or leaked: the reproducer's path
# and the command that replays it are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${LAMIA_FUZZ_SECONDS:-10}
BUILD=$(realpath -m "${LAMIA_FUZZ_BUILD:-build-fuzz}")
JOBS=${LAMIA_BUILD_JOBS:-$(nproc)}
SHARED=${LAMIA_SHARED_DATA:-$ROOT/../shared/data}
ALL_TARGETS=(fuzz_mind fuzz_amazon fuzz_amazon_lcrec fuzz_hm fuzz_movielens fuzz_jsonl fuzz_csv
             fuzz_tokenizer_files fuzz_tokenizer_json fuzz_manifest
             fuzz_palette_file fuzz_semantic_id_table fuzz_safetensors fuzz_checkpoint fuzz_hf_folder fuzz_config)
# The targets of the torch components' readers write their own seeds with lamia's writers
# (fuzz/fuzz_torch.hpp: LAMIA_FUZZ_WRITE_SEEDS).
SELF_SEEDED=" fuzz_palette_file fuzz_semantic_id_table fuzz_safetensors fuzz_checkpoint fuzz_hf_folder fuzz_config "
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")

skip() {
  echo "== fuzz: SKIPPED: $*"
  exit 0
}

# -- clang and libFuzzer ---------------------------------------------------------------------
CXX=${LAMIA_FUZZ_CXX:-}
if [ -z "$CXX" ]; then
  for c in clang++-14 clang++; do
    if command -v "$c" >/dev/null 2>&1; then CXX=$(command -v "$c"); break; fi
  done
fi
[ -n "$CXX" ] && command -v "$CXX" >/dev/null 2>&1 ||
  skip "no clang++ found (Debian: apt-get install clang-14 libclang-rt-14-dev; or set LAMIA_FUZZ_CXX)"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  >"$probe/probe.cpp"
"$CXX" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" >"$probe/log" 2>&1 ||
  skip "$CXX cannot link -fsanitize=fuzzer,address,undefined (libFuzzer missing? Debian: libclang-rt-14-dev): $(head -c 300 "$probe/log")"

# -- build -----------------------------------------------------------------------------------
echo "== fuzz: building ${#TARGETS[@]} targets in $BUILD with $CXX"
mkdir -p "$BUILD"
LAUNCHER=()
command -v ccache >/dev/null 2>&1 && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" -DLAMIA_ONLY="core;data;text" -DLAMIA_BUILD_FUZZERS=ON \
  -DLAMIA_BUILD_TESTS=OFF -DLAMIA_BUILD_EXAMPLES=OFF -DLAMIA_BUILD_BENCH=OFF -DLAMIA_BUILD_CLI=OFF \
  -DLAMIA_BUILD_PYTHON=OFF "${LAUNCHER[@]}" >"$BUILD/fuzz-configure.log" 2>&1 ||
  { cat "$BUILD/fuzz-configure.log"; echo "== fuzz: FAILED: cmake configure (log above)"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"

# -- seeds -----------------------------------------------------------------------------------
SEEDS=$BUILD/fuzz-seeds
rm -rf "$SEEDS"
shared_arg=()
if [ -d "$SHARED" ]; then
  shared_arg=(--shared "$SHARED")
else
  echo "== fuzz: $SHARED is absent: seeds from tests/data only"
fi
python3 fuzz/make_seeds.py "$SEEDS" "${shared_arg[@]}" --max-bytes 8192 | sed 's/^/   seeds: /'
for t in "${TARGETS[@]}"; do
  case $SELF_SEEDED in *" $t "*)
    mkdir -p "$BUILD/fuzz-tmp"
    TMPDIR=$BUILD/fuzz-tmp LAMIA_FUZZ_WRITE_SEEDS=$SEEDS/$t "$BUILD/fuzz/$t" 2>&1 | sed "s/^/   seeds: $t: /" ;;
  esac
done

# -- runs ------------------------------------------------------------------------------------
export TMPDIR=$BUILD/fuzz-tmp
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
for t in "${TARGETS[@]}"; do
  max_len=4096
  case $t in fuzz_tokenizer_* | fuzz_checkpoint | fuzz_hf_folder | fuzz_config) max_len=8192 ;; esac
  dict=(-dict=fuzz/json.dict)
  case $t in fuzz_mind | fuzz_hm | fuzz_movielens | fuzz_csv) dict=(-dict=fuzz/csv.dict) ;; esac
  case $t in fuzz_palette_file | fuzz_semantic_id_table) dict=() ;; esac  # binary formats
  corpus=$BUILD/fuzz-corpus/$t
  artifacts=$BUILD/fuzz-artifacts/$t
  log=$BUILD/fuzz-logs/$t.log
  rm -rf "$TMPDIR" "$artifacts"
  mkdir -p "$TMPDIR" "$corpus" "$artifacts" "$(dirname "$log")"
  seeds=()
  [ -d "$SEEDS/$t" ] && seeds=("$SEEDS/$t")
  echo "== fuzz: $t for ${SECONDS_EACH} s"
  rc=0
  "$BUILD/fuzz/$t" -max_total_time="$SECONDS_EACH" -max_len="$max_len" -rss_limit_mb=2048 -timeout=10 \
    "${dict[@]}" -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # No "cov:" line when the target failed on a seed: grep's status must not end the script.
  cov=$({ grep -oE 'cov: [0-9]+' "$log" || true; } | tail -1 | cut -d' ' -f2)
  units=$(find "$corpus" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    repro=$(find "$artifacts" -type f | head -1)
    tail -n 40 "$log"
    echo "== fuzz: $t FAILED (exit $rc); reproducer: ${repro:-none written, see $log}"
    [ -n "$repro" ] && echo "   replay: $BUILD/fuzz/$t $repro"
    failed+=("$t")
    summary+=("$(printf '%-22s %10s execs %6s exec/s  cov %5s  corpus %5s  FAILED: %s' "$t" "${execs:-?}" \
      "${speed:-?}" "${cov:-?}" "$units" "${repro:-$log}")")
  else
    summary+=("$(printf '%-22s %10s execs %6s exec/s  cov %5s  corpus %5s  ok' "$t" "${execs:-?}" "${speed:-?}" \
      "${cov:-?}" "$units")")
  fi
done
rm -rf "$TMPDIR"

echo "== fuzz: summary (${SECONDS_EACH} s per target; logs in $BUILD/fuzz-logs)"
printf '   %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "== fuzz: all ${#TARGETS[@]} targets ran clean"
