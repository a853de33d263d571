#!/usr/bin/env bash
# The main job on the built-in default: installs the Debian packages, builds
# the lamia tool and runs the pipeline on the synthetic catalog into runs/default.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${LAMIA_BUILD_JOBS:-$(nproc)}
scripts/install-deps.sh
# Debian's interpreter (it has matplotlib for `lamia report`), not another python3 on the PATH.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build build -j "$JOBS" --target lamia_cli
build/lamia run --out "${1:-runs/default}"
