#!/usr/bin/env bash
# Trains the shipped Game of 24 models end to end, from nothing, with qstar's own pipeline:
# generator SFT -> Math-Shepherd rollout labels -> PRM -> ORM -> STaR -> model cards, exactly
# as models/ was made: `qstar train all` with its defaults (seed 0, 1 LibTorch thread,
# OpenBLAS held to 1 thread too). About an hour on one core of the project's 2-core CPU.
# See docs/training.md. Other settings: ./build/qstar train all --out DIR [flags]
# (qstar train --help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
./build/qstar train all
