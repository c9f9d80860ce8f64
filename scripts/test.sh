#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$(date +%s)
bash scripts/build.sh
echo "[test] build took $(( $(date +%s) - start )) s"
cd "${QSTAR_BUILD_DIR:-build}"
ctest --output-on-failure -j "${QSTAR_JOBS:-$(nproc)}" --timeout 900
