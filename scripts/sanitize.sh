#!/usr/bin/env bash
# The C++ test suite under AddressSanitizer + UndefinedBehaviorSanitizer (g++): configures
# build-asan with the `asan` CMake preset (-fsanitize=address,undefined
# -fno-sanitize-recover=undefined, -D_GLIBCXX_ASSERTIONS, -O0 -g1), builds it and runs
# ctest there. Any sanitizer report fails the test that triggered it.
#
# Usage: scripts/sanitize.sh [extra cmake -D options]
#   The default is QSTAR_WITH_TORCH=OFF: the core, tasks, search and CLI suites, the
#   examples and the README snippet. docs/reliability.md explains why the LibTorch suite is
#   not part of the default run and how to run it under ASan anyway
#   (scripts/sanitize.sh -DQSTAR_WITH_TORCH=ON).
# Environment: QSTAR_JOBS (build and test jobs; default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${QSTAR_JOBS:-$(nproc)}
start=$(date +%s)
cmake --preset asan --no-warn-unused-cli -DQSTAR_WITH_TORCH=OFF "$@" >/dev/null
cmake --build --preset asan -j "$JOBS"
echo "[sanitize] build took $(( $(date +%s) - start )) s"
start=$(date +%s)
ctest --preset asan -j "$JOBS" --timeout 900
echo "[sanitize] tests took $(( $(date +%s) - start )) s"
