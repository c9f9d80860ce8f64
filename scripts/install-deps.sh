#!/usr/bin/env bash
# Installs qstar's build and test dependencies from Debian 12 packages when they are
# missing. Run as root (or with sudo available). Safe to run repeatedly.
# Usage: scripts/install-deps.sh [llamacpp]
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev python3-torch libopenblas0-pthread
  libfmt-dev libboost-dev doctest-dev pybind11-dev libpcre2-dev libutf8proc-dev
  libcurl4-openssl-dev libcpp-httplib-dev
  libsentencepiece-dev python3-sentencepiece
  python3-pytest python3-numpy python3-matplotlib python3-sympy
  python3-jinja2
  python3-setuptools python3-wheel python3-build python3-venv python3-pip
  python3-nbclient python3-nbformat python3-ipykernel
  clang libclang-rt-14-dev
  chromium
)
# `install-deps.sh llamacpp`: also what scripts/llamacpp.sh needs to fetch and build llama.cpp
# (run by hand: the llama-server interop test and the llama.cpp benchmarks). npm comes with
# Debian's npm package, or with a nodejs that bundles it (nodesource's).
if [ "${1:-}" = llamacpp ]; then
  PKGS+=(nodejs git curl python3-yaml)
  command -v npm >/dev/null 2>&1 || PKGS+=(npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "[deps] need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "[deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
