#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs `qstar bench` on the Game of 24 test
# split (ranks 901-1000) with the embedded default models (models/generator proposes steps,
# models/prm scores them), printing two tables:
#   1. the searches that grow N chains at N = 4 and 16: best-of-n, beam, dvts,
#      particle-filter, rebase, adaptive-best-of-n (stops a puzzle once its answers agree) and
#      deepconf (votes by the generator's own token confidence, no verifier);
#   2. the tree searches best-first and mcts at N = 16 and 64. Their budget counts node
#      expansions (best-first) or simulations (mcts) of K = 4 children each: one costs about
#      as many generated tokens as one best-of-N sample, but a Game of 24 answer is 4 steps
#      deep, and 4 expansions cannot reach it (at N = 4 both printed 0/100), so they start
#      at 16. Compare rows by the tokens column.
# About 10 minutes of search on one CPU core. The whole test-time-compute suite (every method up
# to N = 64, the ORM and the oracle upper bounds, JSON, table and plot) is scripts/bench-ttc.sh.
# Extra arguments go to both qstar bench calls, e.g. --seed 1, or --generator programmatic
# --verifier oracle (the search algorithms with a perfect verifier and a blind proposer).
# deepconf needs the generator's token log-probabilities: when a one-puzzle probe says the
# generator has none (the programmatic proposer, a qstar without LibTorch), it is left out.
# QSTAR_MAIN_SAMPLING=LIST replaces the first table's algorithms.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Only what the main job runs: the qstar program (and the libraries it links), no tests.
QSTAR_TARGETS=qstar_exe bash scripts/build.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
SAMPLING=best-of-n,beam,dvts,particle-filter,rebase,adaptive-best-of-n
if ./build/qstar solve "4 5 6 10" --algo deepconf --n 1 --max-depth 6 "$@" >/dev/null 2>&1; then
  SAMPLING+=,deepconf
else
  echo "main.sh: deepconf left out: the generator reports no token log-probabilities" >&2
fi
./build/qstar bench --data data/game24/24.csv --ranks 901-1000 \
  --algo "${QSTAR_MAIN_SAMPLING:-$SAMPLING}" --n 4,16 --width 4 \
  --voting weighted --max-depth 6 "$@"
exec ./build/qstar bench --data data/game24/24.csv --ranks 901-1000 \
  --algo best-first,mcts --n 16,64 --expand-k 4 --leaves 4 --voting weighted --max-depth 6 "$@"
