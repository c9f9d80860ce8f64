#!/usr/bin/env bash
# Configures and builds qstar in ./build (Release, ccache, Ninja when available).
# Usage: scripts/build.sh [extra cmake -D options]
# QSTAR_TARGETS="qstar_exe ..." builds only those targets (default: everything).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${QSTAR_BUILD_DIR:-build}
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DPython3_EXECUTABLE=/usr/bin/python3 "$@"
elif [ $# -gt 0 ]; then
  cmake "$BUILD_DIR" "$@"
fi
JOBS=${QSTAR_JOBS:-$(nproc)}
TARGETS=()
for t in ${QSTAR_TARGETS:-}; do TARGETS+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$JOBS" "${TARGETS[@]}"
