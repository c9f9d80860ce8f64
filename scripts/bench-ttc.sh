#!/usr/bin/env bash
# The test-time-compute benchmark of issue #4, in one command: installs what is missing,
# builds qstar, then runs benchmarks/game24_ttc.py on the ToT test split (ranks 901-1000)
# with the shipped models (models/generator, models/prm, models/orm): every method at every
# budget -> benchmarks/results/ranks_901-1000/{results.json,results.md,solve_rate_vs_tokens.png}.
# Then, for context, a subset of the methods on all of ranks 1-1000 ->
# benchmarks/results/ranks_1-1000/ (QSTAR_TTC_CONTEXT=0 skips it).
#
# Finished runs are kept under <out>/runs/ and reused by the next invocation with the same
# command (pass --force to rerun). Extra arguments go to the 901-1000 run, e.g.
#   bash scripts/bench-ttc.sh --methods greedy,prm_vote --budgets 1,4
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${QSTAR_BUILD_DIR:-build}
PY=/usr/bin/python3
$PY benchmarks/game24_ttc.py --qstar "$BUILD_DIR/qstar" --ranks 901-1000 \
  --out benchmarks/results/ranks_901-1000 "$@"
if [ "${QSTAR_TTC_CONTEXT:-1}" != "0" ]; then
  # All 1000 puzzles cost 10x the test split: greedy, and majority / PRM-weighted best-of-4.
  $PY benchmarks/game24_ttc.py --qstar "$BUILD_DIR/qstar" --ranks 1-1000 \
    --methods greedy,majority,prm_vote --budgets 4 --out benchmarks/results/ranks_1-1000
fi
