#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs `qstar bench` on the Game of 24 test
# split (ranks 901-1000) with the embedded default models (models/generator proposes steps,
# models/prm scores them), every search algorithm at N = 4 and 16, printing a table. About 5
# minutes of search on one CPU core. The whole test-time-compute suite (every method up to
# N = 64, the ORM and the oracle upper bounds, JSON, table and plot) is scripts/bench-ttc.sh.
# Extra arguments go to qstar bench, e.g. --seed 1, or --generator programmatic --verifier oracle
# (the search algorithms with a perfect verifier and a blind proposer).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Only what the main job runs: the qstar program (and the libraries it links), no tests.
QSTAR_TARGETS=qstar_exe bash scripts/build.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
exec ./build/qstar bench --data data/game24/24.csv --ranks 901-1000 \
  --algo best-of-n,beam,dvts,best-first,mcts --n 4,16 --width 4 --expand-k 4 --leaves 4 \
  --voting weighted --max-depth 6 "$@"
