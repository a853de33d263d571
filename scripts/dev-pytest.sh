#!/usr/bin/env bash
# For development: builds pylamia._C in BUILD_DIR and runs pytest against it
# without installing, using a private package folder so that several build
# trees can be tested side by side.
#   scripts/dev-pytest.sh build-data tests/python/test_data.py -q
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$(realpath -m "$1"); shift
PKG=$BUILD/pypkg/pylamia
mkdir -p "$PKG"
for f in python/pylamia/*; do
  case "$(basename "$f")" in _C*.so) continue ;; esac
  ln -sf "$ROOT/$f" "$PKG/"
done
cmake -S . -B "$BUILD" -DLAMIA_BUILD_PYTHON=ON -DPython3_EXECUTABLE=/usr/bin/python3 \
  -DLAMIA_PYTHON_OUTPUT_DIR="$PKG" >/dev/null
cmake --build "$BUILD" --target lamia_python -j "${LAMIA_BUILD_JOBS:-2}"
PYTHONPATH="$BUILD/pypkg" /usr/bin/python3 -m pytest -c "$ROOT/pyproject.toml" --rootdir "$ROOT" "$@"
