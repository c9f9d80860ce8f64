#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs `qstar bench` on the Game of 24
# test split (ranks 901-1000) with the best configuration available, printing a table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec ./build/qstar bench --data data/game24/24.csv --ranks 901-1000 \
  --algo best-of-n,beam,dvts,best-first,mcts --n 1,4,16,64 --width 16 --expand-k 40 \
  --generator programmatic --error-rate 0.1 --verifier oracle "$@"
