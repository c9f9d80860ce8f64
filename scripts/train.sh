#!/usr/bin/env bash
# Trains the shipped Game of 24 models end to end, from nothing, with qstar's own pipeline:
# generator SFT -> Math-Shepherd rollout labels -> PRM -> ORM -> STaR -> model cards.
# Writes models/generator, models/prm, models/orm (with MODEL_CARD.md) and models/logs/.
# About 20-30 minutes on 2 CPU cores. Usage: scripts/train.sh [qstar train flags, e.g.
# --out /tmp/models --seed 1]   (see `qstar train --help`; docs/training.md)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec ./build/qstar train all "$@"   # defaults: --out models --seed 0 --threads 1
