#!/usr/bin/env bash
# Runs every test of lamia on a fresh machine: installs the Debian packages,
# builds the C++ library, tests and the Python module once (build/), runs the
# C++ tests with ctest, installs pylamia into a venv with pip and runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${LAMIA_BUILD_JOBS:-$(nproc)}

scripts/install-deps.sh
scripts/fetch-test-references.sh

# Benchmarks are programs, not tests: not built here (LAMIA_BUILD_BENCH=ON to build them too; CI
# builds them after the tests, .ci/run).
# Ninja for a new build folder (docs/DEVELOPING.md: it kept 2 cores 79% busy where the Makefile
# build kept them 68% busy); an existing folder keeps its generator.
GENERATOR=()
if [ ! -f build/CMakeCache.txt ] && command -v ninja >/dev/null 2>&1; then GENERATOR=(-G Ninja); fi
cmake "${GENERATOR[@]}" -S . -B build -DCMAKE_BUILD_TYPE=Release -DLAMIA_BUILD_TESTS=ON -DLAMIA_BUILD_PYTHON=ON \
  -DLAMIA_BUILD_BENCH="${LAMIA_BUILD_BENCH:-OFF}" -DLAMIA_BUILD_EXAMPLES=ON -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build build -j "$JOBS"

echo "== C++ tests (ctest)"
# Two at a time: the consumer test (a CMake build of its own) overlaps the suites.
(cd build && ctest --output-on-failure -j 2)

echo "== Python tests (pytest, pylamia installed with pip into .venv)"
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# The pip install reuses build/ (LAMIA_BUILD_DIR), so nothing is compiled twice.
LAMIA_BUILD_DIR="$ROOT/build" .venv/bin/python -m pip install --no-build-isolation --no-deps -q . 2>&1 \
  | grep -v "^\s*$" || true
.venv/bin/python -c "import pylamia" # fail early with a clear message if the install is broken
# Two pytest workers (python3-pytest-xdist), each running whole test files (module fixtures run
# once); LAMIA_PYTEST_WORKERS=0 runs them in this process.
cd /tmp && OMP_WAIT_POLICY=PASSIVE LAMIA_CLI="$ROOT/build/lamia" "$ROOT/.venv/bin/python" -m pytest -c "$ROOT/pyproject.toml" \
  --rootdir "$ROOT" "$ROOT/tests/python" -q -n "${LAMIA_PYTEST_WORKERS:-2}" --dist loadfile
