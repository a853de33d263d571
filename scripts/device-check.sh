#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, pip's torch (LibTorch 2.x with CUDA), nvcc, cmake,
# ninja, pybind11 and no package registry, builds lamia against pip's LibTorch (dependencies from
# the Debian packages carried in .devdeps/, unpacked into a private prefix), runs the CUDA tests
# first (C++ [cuda] cases, tests/python/test_*_cuda.py, the transformers golden test), then a short
# CPU-vs-CUDA benchmark, every ctest suite and the other Python tests, each step under a timeout
# and a total budget. Logs go to $OUT (at most 8 files); a summary is printed at the end.
#
#   OUT=/empty/dir bash scripts/device-check.sh          # from anywhere; see docs/DEVELOPING.md
#
# Environment: OUT (log folder, default ./device-check-out), LAMIA_CHECK_BUDGET (seconds for the
# whole run, default 450), JOBS (default nproc), LAMIA_DEVICE_BUILD (build folder, default
# build-device/ in the repository: a second run on the same machine builds incrementally).
# For a dry run elsewhere: LAMIA_PYTHON (interpreter, default python3), LAMIA_TORCH_CMAKE_PREFIX
# (default torch.utils.cmake_prefix_path), LAMIA_ONLY (components, default all),
# LAMIA_CHECK_CAP_SCALE (multiplies every step's time cap, default 1). LAMIA_LIBSTDCXX_FIRST and
# LAMIA_PYTHON_STATIC_LIBSTDCXX (both ON by default here): the std::filesystem remedies for programs
# and for the Python module (docs/DEVELOPING.md, "Second GPU check"); set one OFF to compare.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-$ROOT/device-check-out}
mkdir -p "$OUT"
BUDGET=${LAMIA_CHECK_BUDGET:-450}
CAP_SCALE=${LAMIA_CHECK_CAP_SCALE:-1}
JOBS=${JOBS:-$(nproc)}
BUILD=${LAMIA_DEVICE_BUILD:-$ROOT/build-device}
DEPS=$BUILD-deps
PY=${LAMIA_PYTHON:-$(command -v python3 || echo python3)}
START=$(date +%s)
SUMMARY=$OUT/summary.txt
ENVLOG=$OUT/env.txt
: >"$SUMMARY"

say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(($(date +%s) - START)); }
# remaining CAP [RESERVE]: seconds a step may take: at most CAP, leaving RESERVE seconds of the
# budget to the steps after it, at least 10.
remaining() {
  local left=$((BUDGET - $(elapsed) - ${2:-0}))
  [ "$left" -gt "$1" ] && left=$1
  [ "$left" -lt 10 ] && left=10
  echo "$left"
}
# run_step NAME CAP[:RESERVE] LOG CMD...: runs CMD under a timeout, appends its output to LOG and
# records the status in the summary.
run_step() {
  local name=$1 cap=${2%%:*} reserve=0 log=$3
  [ "$2" != "$cap" ] && reserve=${2#*:}
  cap=$((cap * CAP_SCALE))
  shift 3
  local t s
  t=$(remaining "$cap" "$reserve")
  echo "===== $name (timeout ${t}s, at $(elapsed)s)" >>"$log"
  s=$(date +%s)
  timeout -k 10 "$t" "$@" >>"$log" 2>&1
  local rc=$?
  local d=$(($(date +%s) - s))
  local what="rc=$rc"
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && what="TIMED OUT after ${t}s"
  say "$(printf '%-44s %-22s %4ss  (log: %s)' "$name" "$what" "$d" "$(basename "$log")")"
  return "$rc"
}
out_of_time() { [ $(($(elapsed) + ${1:-20})) -ge "$BUDGET" ]; }

say "lamia device check $(date -u +%FT%TZ), budget ${BUDGET}s, $JOBS jobs, git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed files)"

# ------------------------------------------------------------------ environment
{
  echo "== nvidia-smi"; timeout 20 nvidia-smi 2>&1
  echo "== uname / os"; uname -a; cat /etc/os-release 2>/dev/null | head -4; ldd --version 2>&1 | head -1
  echo "== tools"
  for t in cmake ninja gcc g++ c++ nvcc make "$PY" dpkg-deb ar; do
    printf '%-10s %s  ' "$t" "$(command -v "$t" || echo MISSING)"; "$t" --version 2>&1 | head -1
  done
  echo "== python"
  timeout 120 "$PY" - <<'EOF' 2>&1
import importlib, sys, sysconfig, os
print("python", sys.version.replace("\n", " "))
inc = sysconfig.get_paths()["include"]
print("Python.h", inc, os.path.exists(os.path.join(inc, "Python.h")))
for m in ("torch", "numpy", "pytest", "pybind11", "transformers", "safetensors", "sklearn"):
    try:
        mod = importlib.import_module(m)
        print(f"{m:13s}", getattr(mod, "__version__", "?"), os.path.dirname(getattr(mod, "__file__", "") or ""))
    except Exception as e:
        print(f"{m:13s} NOT IMPORTABLE: {type(e).__name__}: {e}")
try:
    import torch
    print("torch.version.cuda", torch.version.cuda, "cuda available", torch.cuda.is_available(),
          "devices", torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
    print("cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI, "cmake prefix", torch.utils.cmake_prefix_path)
    print(torch.__config__.show())
except Exception as e:
    print("torch details failed:", e)
EOF
} >"$ENVLOG" 2>&1
GPU=$(timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
say "gpu: ${GPU:-none (nvidia-smi failed)}"
say "$(grep -E '^(python|torch |transformers|pytest|pybind11|numpy|torch.version.cuda|Python.h|cxx11)' "$ENVLOG" | tr '\n' ';' | sed 's/;/; /g')"

TORCH_PREFIX=${LAMIA_TORCH_CMAKE_PREFIX:-$(timeout 120 "$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)}
PYBIND11_DIR=$(timeout 60 "$PY" -m pybind11 --cmakedir 2>/dev/null)
# pip's CUDA libraries (libtorch_cuda needs them at link time): for -rpath-link and LD_LIBRARY_PATH.
NV_LIBS=$(timeout 60 "$PY" -c 'import glob, os, torch; s = os.path.dirname(os.path.dirname(torch.__file__)); print(":".join([os.path.join(os.path.dirname(torch.__file__), "lib")] + sorted(glob.glob(os.path.join(s, "nvidia", "*", "lib")) + glob.glob(os.path.join(s, "nvidia", "cu*", "lib")))))' 2>/dev/null)
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && export PATH=$PATH:$d && break; done
fi
command -v nvcc >/dev/null 2>&1 && export CUDACXX=${CUDACXX:-$(command -v nvcc)}
CUDA_OK=$(timeout 60 "$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
if [ "$CUDA_OK" = 1 ]; then export LAMIA_EXPECT_CUDA=1; fi
if timeout 120 "$PY" -c 'import transformers' >/dev/null 2>&1; then export LAMIA_EXPECT_TRANSFORMERS=1; fi
say "torch cmake prefix: ${TORCH_PREFIX:-NOT FOUND}; pybind11 cmakedir: ${PYBIND11_DIR:-NOT FOUND}; nvcc: $(command -v nvcc || echo none); CUDA in torch: $CUDA_OK; transformers: ${LAMIA_EXPECT_TRANSFORMERS:-0}"

# ------------------------------------------------------------------ carried Debian packages
LIBDIR=$DEPS/usr/lib/x86_64-linux-gnu
extract() {  # extract DEB DIR: a .deb's files under DIR (no maintainer scripts run)
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$1" "$2"
  else  # a .deb is an ar archive holding data.tar.*
    local tmp rc
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$1" && tar -xf data.tar.* -C "$2")
    rc=$?
    rm -rf "$tmp"
    return $rc
  fi
}
unpack_deps() {
  mkdir -p "$DEPS"
  local have_zlib=0 have_gfortran=0
  [ -f /usr/include/zlib.h ] && have_zlib=1
  ldconfig -p 2>/dev/null | grep -q 'libgfortran.so.5 ' && have_gfortran=1
  for deb in "$ROOT"/.devdeps/*.deb; do
    case "$(basename "$deb")" in
      zlib1g*) [ "$have_zlib" = 1 ] && { echo "skip $deb (system zlib)"; continue; } ;;
      libgfortran5* | libquadmath0*) [ "$have_gfortran" = 1 ] && { echo "skip $deb (system libgfortran)"; continue; } ;;
    esac
    echo "unpack $deb"
    extract "$deb" "$DEPS" || return 1
  done
  # dpkg -x runs no maintainer scripts: make the alternatives' BLAS / LAPACK links by hand.
  local ob=$LIBDIR/openblas-pthread
  [ -f "$ob/libblas.so.3" ] || { echo "openblas missing from .devdeps"; return 1; }
  for l in libblas.so.3 liblapack.so.3 libopenblas.so.0; do ln -sf "openblas-pthread/$l" "$LIBDIR/$l"; done
  ln -sf libblas.so.3 "$LIBDIR/libblas.so"
  ln -sf liblapack.so.3 "$LIBDIR/liblapack.so"
  # zlib1g-dev's libz.so points at /lib/...: point it at the unpacked one.
  [ -f "$DEPS/lib/x86_64-linux-gnu/libz.so.1" ] && ln -sf "$DEPS/lib/x86_64-linux-gnu/libz.so.1" "$LIBDIR/libz.so"
  # Debian's faiss export names the system BLAS by absolute path.
  sed -i "s#/usr/lib/x86_64-linux-gnu/lib\(blas\|lapack\)\.so#$LIBDIR/lib\1.so#g" "$LIBDIR/cmake/faiss/faiss-targets.cmake"
  grep -o "INTERFACE_LINK_LIBRARIES.*" "$LIBDIR/cmake/faiss/faiss-targets.cmake"
  touch "$DEPS/.unpacked"
}
if [ -f "$DEPS/.unpacked" ]; then
  say "deps: already unpacked in $DEPS"
elif unpack_deps >>"$ENVLOG" 2>&1; then
  say "deps: unpacked .devdeps into $DEPS ($(grep -c '^skip ' "$ENVLOG") skipped for the system's, see env.txt)"
else
  say "deps: UNPACK FAILED (see env.txt)"
fi
# No pytest on the machine: Debian's (7.2, from .devdeps/python) on PYTHONPATH, its deprecation
# warnings on a newer Python ignored.
PYTEST_EXTRA=()
if ! timeout 60 "$PY" -c 'import pytest' >/dev/null 2>&1; then
  mkdir -p "$DEPS/py"
  for deb in "$ROOT"/.devdeps/python/*.deb; do extract "$deb" "$DEPS/py" >>"$ENVLOG" 2>&1; done
  export PYTHONPATH=$DEPS/py/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
  PYTEST_EXTRA=(-W "ignore::DeprecationWarning")
  say "pytest: not installed; Debian's from .devdeps/python: $(timeout 60 "$PY" -c 'import pytest; print(pytest.__version__)' 2>&1 | tail -1)"
fi
export LD_LIBRARY_PATH=$LIBDIR:$LIBDIR/openblas-pthread:$DEPS/lib/x86_64-linux-gnu${NV_LIBS:+:$NV_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# ------------------------------------------------------------------ configure
CONFIGURE_LOG=$OUT/configure.log
RPATH_LINK=""
[ -n "$NV_LIBS" ] && RPATH_LINK="-Wl,-rpath-link,$NV_LIBS"
# Ninja (make -k where it is missing): -k keeps going past failures, so one run shows every error.
if command -v ninja >/dev/null 2>&1; then
  GENERATOR=Ninja
  BUILD_TOOL=(ninja -C "$BUILD" -k 0 -j "$JOBS")
else
  GENERATOR="Unix Makefiles"
  BUILD_TOOL=(make -C "$BUILD" -k -j "$JOBS")
fi
common_args=(
  -S "$ROOT" -B "$BUILD" -G "$GENERATOR" -DCMAKE_BUILD_TYPE=Release
  -DLAMIA_BUILD_TESTS=ON -DLAMIA_BUILD_BENCH=ON -DLAMIA_BUILD_EXAMPLES=ON -DLAMIA_BUILD_CLI=ON
  "-DLAMIA_LIBSTDCXX_FIRST=${LAMIA_LIBSTDCXX_FIRST:-ON}"
  "-DLAMIA_PYTHON_STATIC_LIBSTDCXX=${LAMIA_PYTHON_STATIC_LIBSTDCXX:-ON}"
  "-DPython3_EXECUTABLE=$PY" "-DLAMIA_PYTHON_OUTPUT_DIR=$BUILD/pypkg/pylamia"
  "-DCMAKE_PREFIX_PATH=$TORCH_PREFIX;$PYBIND11_DIR;$DEPS/usr"
  "-DTorch_DIR=$TORCH_PREFIX/Torch" "-Dpybind11_DIR=$PYBIND11_DIR"
  "-Dfaiss_DIR=$LIBDIR/cmake/faiss" "-Dfmt_DIR=$LIBDIR/cmake/fmt" "-DCatch2_DIR=$DEPS/usr/lib/cmake/Catch2"
  "-Dnlohmann_json_DIR=$DEPS/usr/share/cmake/nlohmann_json" "-DEigen3_DIR=$DEPS/usr/share/eigen3/cmake"
  "-DCLI11_DIR=$DEPS/usr/share/cmake/CLI11"
  "-DCMAKE_EXE_LINKER_FLAGS=$RPATH_LINK" "-DCMAKE_SHARED_LINKER_FLAGS=$RPATH_LINK"
  "-DLAMIA_ONLY=${LAMIA_ONLY:-}"
)
# Where pip's torch looks for the CUDA toolkit (nvcc's installation).
if command -v nvcc >/dev/null 2>&1; then
  CUDA_ROOT=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  common_args+=("-DCUDAToolkit_ROOT=$CUDA_ROOT" "-DCUDA_TOOLKIT_ROOT_DIR=$CUDA_ROOT")
fi
PYTHON_BUILT=1
if ! run_step "configure (all, Python ON)" 150 "$CONFIGURE_LOG" cmake "${common_args[@]}" -DLAMIA_BUILD_PYTHON=ON; then
  PYTHON_BUILT=0
  run_step "configure again with Python OFF" 120 "$CONFIGURE_LOG" cmake "${common_args[@]}" -DLAMIA_BUILD_PYTHON=OFF
fi
grep -E "^-- (Found|Caffe2|Torch|CUDA|Using|pybind11|LAMIA_LIBSTDCXX_FIRST)|CMake (Error|Warning)" "$CONFIGURE_LOG" | head -40 >>"$SUMMARY"
grep -E "^(Torch_DIR|fmt_DIR|faiss_DIR|Catch2_DIR|pybind11_DIR|Python3_EXECUTABLE|CMAKE_CXX_COMPILER:|TORCH_LIBRARY|CUDAToolkit_ROOT|CMAKE_CUDA_COMPILER:)" \
  "$BUILD/CMakeCache.txt" >>"$CONFIGURE_LOG" 2>/dev/null

# ------------------------------------------------------------------ build
# The targets of the CUDA checks first, then everything; -k 0 reports every compile error at once.
BUILD_LOG=$OUT/build.log
FIRST=(lamia_tests_nn lamia_tests_palette bench_nn_decoder bench_palette_train)
[ "$PYTHON_BUILT" = 1 ] && FIRST+=(lamia_python)
build_report() {
  say "build: $(grep -c '^FAILED: ' "$BUILD_LOG") failed commands, $(grep -c ' error: ' "$BUILD_LOG") error lines so far"
  grep -E '^FAILED: | error: ' "$BUILD_LOG" | cut -c1-300 | sort -u | head -40 >>"$SUMMARY"
}
# Leaves 120 s of the budget to the CUDA tests, pytest and the benchmark.
run_step "build CUDA-check targets ($GENERATOR, -k)" 330:120 "$BUILD_LOG" "${BUILD_TOOL[@]}" "${FIRST[@]}"
build_report

# ------------------------------------------------------------------ the CUDA tests
CTEST_LOG=$OUT/ctest.log
PYTEST_LOG=$OUT/pytest.log
BENCH_LOG=$OUT/bench.log
T=$BUILD/tests
# One process per case: a crash (the std::filesystem one of docs/DEVELOPING.md) then ends that case
# only, not every case declared after it. Catch2 reads ',' and '[' in a name as syntax: escaped.
for suite in nn palette; do
  if [ -x "$T/lamia_tests_$suite" ]; then
    ok=0 bad=0
    while IFS= read -r name; do
      [ -n "$name" ] || continue
      out_of_time 30 && break
      esc=$(printf '%s' "$name" | sed 's/\\/\\\\/g; s/,/\\,/g; s/\[/\\[/g')
      if (cd "$T" && run_step "[cuda] $suite: ${name:0:60}" 60 "$CTEST_LOG" ./lamia_tests_$suite "$esc" --durations yes); then
        ok=$((ok + 1))
      else
        bad=$((bad + 1))
      fi
    done < <(cd "$T" && ./lamia_tests_$suite "[cuda]" --list-test-names-only 2>/dev/null | sed 's/^ *//')
    say "C++ [cuda] cases of $suite: $ok passed, $bad failed or crashed"
  else
    say "C++ [cuda] cases of $suite: NOT BUILT"
  fi
done

PYPKG=$BUILD/pypkg/pylamia
export LAMIA_CLI=$BUILD/lamia
pytest_run() {  # pytest_run NAME CAP ARGS...: pytest against the build tree's module
  local name=$1 cap=$2
  shift 2
  (cd /tmp && PYTHONPATH="$BUILD/pypkg${PYTHONPATH:+:$PYTHONPATH}" run_step "$name" "$cap" "$PYTEST_LOG" \
    "$PY" -m pytest -c "$ROOT/pyproject.toml" --rootdir "$ROOT" -p no:cacheprovider "${PYTEST_EXTRA[@]}" "$@")
}
if [ "$PYTHON_BUILT" = 1 ] && ls "$PYPKG"/_C*.so >/dev/null 2>&1; then
  for f in "$ROOT"/python/pylamia/*; do case "$(basename "$f")" in _C*.so) ;; *) ln -sf "$f" "$PYPKG/" ;; esac; done
  pytest_run "pytest CUDA + transformers golden" 200 -v -rfEs -s \
    "$ROOT/tests/python/test_nn_cuda.py" "$ROOT/tests/python/test_palette_cuda.py" \
    "$ROOT/tests/python/test_nn_transformers_golden.py"
else
  say "pytest: pylamia._C NOT BUILT"
fi

# ------------------------------------------------------------------ benchmark: CPU against CUDA
if [ -x "$BUILD/bench/bench_nn_decoder" ]; then
  run_step "bench_nn_decoder --quick (CPU)" 90 "$BENCH_LOG" "$BUILD/bench/bench_nn_decoder" --quick
  [ "$CUDA_OK" = 1 ] && run_step "bench_nn_decoder --quick --device cuda" 90 "$BENCH_LOG" "$BUILD/bench/bench_nn_decoder" --quick --device cuda
fi
# Palette training, fast path against reference path: on the CPU; on CUDA under each kernel policy
# (--pack: the padding packed out; --fused-attention: scaled_dot_product_attention), with one
# operator profile; then at OPT-350M's shape (24 layers, d = 1024, 16 heads), where the GPU is busy.
if [ -x "$BUILD/bench/bench_palette_train" ] && ! out_of_time 60; then
  PT=("$BUILD/bench/bench_palette_train" --items 400 --steps 4 --batch 64)
  run_step "bench_palette_train (CPU)" 90 "$BENCH_LOG" "${PT[@]}"
  if [ "$CUDA_OK" = 1 ]; then
    for policy in "1 0" "0 0" "1 1" "0 1"; do
      set -- $policy
      out_of_time 40 && break
      run_step "bench_palette_train cuda pack $1 fused $2" 45 "$BENCH_LOG" "${PT[@]}" --steps 8 --device cuda --pack "$1" --fused-attention "$2"
    done
    # The trainer's MultiTensorAdam against torch's per-tensor Adam (session 16 had no such A/B).
    for adam in 1 0; do
      out_of_time 40 && break
      run_step "bench_palette_train cuda torch-adam $adam" 45 "$BENCH_LOG" "${PT[@]}" --steps 8 --device cuda --torch-adam "$adam"
    done
    out_of_time 40 || run_step "bench_palette_train cuda profile (pack 1 fused 0)" 45 "$BENCH_LOG" "${PT[@]}" --device cuda --profile 18
    for policy in "1 0" "0 1"; do
      set -- $policy
      out_of_time 40 && break
      run_step "bench_palette_train cuda OPT-350M shape pack $1 fused $2" 60 "$BENCH_LOG" "${PT[@]}" --device cuda \
        --layers 24 --hidden 1024 --heads 16 --pack "$1" --fused-attention "$2"
    done
  fi
fi

# ------------------------------------------------------------------ everything else
# Leaves 60 s to ctest and pytest.
out_of_time 90 || run_step "build everything else ($GENERATOR, -k)" 300:60 "$BUILD_LOG" "${BUILD_TOOL[@]}"
build_report
if [ -f "$BUILD/CTestTestfile.cmake" ] && ! out_of_time 30; then
  (cd "$BUILD" && OMP_NUM_THREADS=4 run_step "ctest (all suites)" 240 "$CTEST_LOG" \
    ctest --output-on-failure -j 4 --timeout 200)
fi
if [ "$PYTHON_BUILT" = 1 ] && ls "$PYPKG"/_C*.so >/dev/null 2>&1 && ! out_of_time 30; then
  rest=()
  for f in "$ROOT"/tests/python/test_*.py; do
    case "$(basename "$f")" in test_nn_cuda.py | test_palette_cuda.py | test_nn_transformers_golden.py) ;; *) rest+=("$f") ;; esac
  done
  # -v: a crash ends pytest before its summary, so each test's name and result are printed as it ends.
  pytest_run "pytest (the other tests/python)" 200 -v -rfEs "${rest[@]}"
fi

# ------------------------------------------------------------------ backtraces of crashed suites
# A suite that died of a signal is run once more under cuda-gdb (the image has no gdb), so that
# one run brings the stack of the crash back; a jump to address 0 leaves no frames, so the words
# on the stack (the caller's return address first) are printed too. Also where fmt comes from
# (torch ships its own headers).
crashed=$(grep -oE 'Test +#[0-9]+: [a-z]+ [.]+\*\*\*Exception' "$CTEST_LOG" 2>/dev/null | awk '{print $3}' | sort -u)
if [ -n "$crashed" ] && command -v cuda-gdb >/dev/null; then
  {
    echo "===== where fmt comes from"
    ls -d "$TORCH_PREFIX"/../../include/fmt 2>/dev/null && echo "torch ships fmt headers"
    ldd "$T/lamia_tests_data" 2>/dev/null | grep -E 'fmt|stdc|gcc_s|faiss|blas'
    # Session 16: LAMIA_LIBSTDCXX_FIRST=ON did not stop the std::filesystem crash. What the next
    # run needs: the NEEDED order the linker wrote, the load order, the link command, and which
    # objects define std::filesystem::remove_all.
    echo "===== NEEDED of lamia_tests_data, in order"
    readelf -d "$T/lamia_tests_data" 2>/dev/null | grep NEEDED
    echo "===== load order (ldd)"
    ldd "$T/lamia_tests_data" 2>/dev/null | head -12
    echo "===== link command of lamia_tests_data"
    ninja -C "$BUILD" -t commands lamia_tests_data 2>/dev/null | tail -1 | cut -c1-3000
    echo "===== remove_all: defined where, and bound how in the program"
    for lib in "$T/lamia_tests_data" /lib/x86_64-linux-gnu/libstdc++.so.6 "$TORCH_PREFIX/../../lib/libtorch.so"; do
      echo "-- $lib"; nm -D --defined-only "$lib" 2>/dev/null | grep -c 'filesystem' ; nm -D "$lib" 2>/dev/null | grep 'remove_all' | head -4
    done
    readelf -V "$T/lamia_tests_data" 2>/dev/null | grep -A3 'libstdc' | head -12
  } >>"$CTEST_LOG" 2>&1
  for suite in $crashed; do
    out_of_time 30 && break
    (cd "$T" && run_step "backtrace of the $suite crash (cuda-gdb)" 60 "$CTEST_LOG" cuda-gdb -q -batch \
      -ex "set pagination off" -ex run -ex bt -ex 'x/8a $sp' -ex 'info symbol *(void**)$sp' -ex quit \
      --args ./lamia_tests_$suite --order rand --rng-seed 1)
  done
fi

# ------------------------------------------------------------------ RQ-VAE to convergence on the GPU
# The "training-free vs trained" ratio of bench_quantize_fit: PaletteQuantizer on this machine's
# CPUs against TIGER's RQ-VAE trained on the GPU until the early-stopping rule holds.
if [ "$CUDA_OK" = 1 ] && [ "${LAMIA_CHECK_RQVAE:-1}" = 1 ] && [ -x "$BUILD/bench/bench_quantize_fit" ] && ! out_of_time 40; then
  run_step "bench_quantize_fit: RQ-VAE on CUDA to convergence" 150 "$BENCH_LOG" "$BUILD/bench/bench_quantize_fit" \
    --sizes 25000 --no-python --memory-max 0 --rqvae-items 25000 --rqvae-device cuda --rqvae-max-epochs 1500 \
    --workdir /tmp/lamia_bench_quantize
fi

# ------------------------------------------------------------------ summary
{
  echo "----- results"
  grep -E '^(All tests passed|test cases:)' "$CTEST_LOG" 2>/dev/null | sed 's/^/catch2: /'
  grep -E 'tests passed|tests failed|\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception|Not Run' "$CTEST_LOG" 2>/dev/null | sed 's/^/ctest: /'
  grep -E '^(FAILED|ERROR) |[0-9]+ (passed|failed|skipped|error)' "$PYTEST_LOG" 2>/dev/null | grep -v '^=* *$' | cut -c1-250 | sed 's/^/pytest: /' | head -60
  grep -E '^(device|tiny|small|OPT|KV-cache|train|fast /|export|palette bench|n=|rq-vae n=)' "$BENCH_LOG" 2>/dev/null | cut -c1-260 | sed 's/^/bench: /'
  echo "total $(elapsed)s of ${BUDGET}s budget"
} >>"$SUMMARY"
# Keep every returned file under 16 MiB.
for f in "$OUT"/*; do
  [ "$(stat -c %s "$f" 2>/dev/null || echo 0)" -gt 15000000 ] && { head -c 15000000 "$f" >"$f.tmp" && mv "$f.tmp" "$f"; echo "[truncated]" >>"$f"; }
done
echo
echo "================ device check summary ($OUT/summary.txt)"
cat "$SUMMARY"
