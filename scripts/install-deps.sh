#!/usr/bin/env bash
# Installs every build and test dependency of lamia from Debian's archive.
# Idempotent and quiet when everything is already present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build git pkg-config
  libtorch-dev python3-torch
  pybind11-dev libeigen3-dev libfaiss-dev libfmt-dev catch2
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  # gloo's headers: LibTorch's c10d Gloo process group (C++ data-parallel training, docs/distributed.md)
  libgloo-dev
  # Debian's torch calls the system BLAS: the reference BLAS is ~60x slower.
  libopenblas0-pthread libopenblas-pthread-dev
  python3-dev python3-venv python3-pip python3-setuptools python3-wheel
  python3-pytest python3-pytest-xdist python3-numpy python3-sklearn
  # lamia report (plots), the quickstart notebook executed by the tests, the report's browser check
  python3-matplotlib python3-tqdm jupyter-nbconvert python3-ipykernel python3-nbformat chromium
  python3-ipywidgets  # tqdm.auto (which torch imports) warns in a Jupyter kernel without it

)
# Node.js (for the tokenizer reference encoder from npm) only where it is absent.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Make sure the BLAS alternative points at OpenBLAS, not the reference BLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "install-deps: warning: libblas.so.3 resolves to '$blas', not OpenBLAS" >&2 ;;
esac
