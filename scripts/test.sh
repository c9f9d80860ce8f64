#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test (ctest), then the
# reliability checks of docs/reliability.md: a short libFuzzer smoke run of every parser
# (scripts/fuzz.sh, QSTAR_FUZZ_SECONDS per target, default 20) and the test suite under
# ASan + UBSan (scripts/sanitize.sh). QSTAR_SKIP_RELIABILITY=1 stops after ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
start=$(date +%s)
bash scripts/build.sh
echo "[test] build took $(( $(date +%s) - start )) s"
start=$(date +%s)
(cd "${QSTAR_BUILD_DIR:-build}" && ctest --output-on-failure -j "${QSTAR_JOBS:-$(nproc)}" --timeout 900)
echo "[test] ctest took $(( $(date +%s) - start )) s"
[ "${QSTAR_SKIP_RELIABILITY:-0}" = 1 ] && exit 0
start=$(date +%s)
bash scripts/fuzz.sh "${QSTAR_FUZZ_SECONDS:-20}"
echo "[test] fuzz smoke (build + run) took $(( $(date +%s) - start )) s"
start=$(date +%s)
bash scripts/sanitize.sh
echo "[test] sanitizer suite (build + run) took $(( $(date +%s) - start )) s"
