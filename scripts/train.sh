#!/usr/bin/env bash
# Trains the shipped Game of 24 models end to end, from nothing, with qstar's own pipeline:
# generator SFT -> Math-Shepherd rollout labels -> PRM -> ORM -> STaR -> model cards,
# exactly as models/ was made (seed 0, 1 thread): a first run, then a second run whose SFT
# continues the first run's generator (the first run's logs are kept in models/logs/leg1/).
# About 35 minutes on the project's shared 2-core CPU. See docs/training.md.
# Other settings: ./build/qstar train all --out DIR [flags]   (qstar train --help)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/qstar train all --sft-steps 1200
mkdir -p models/logs/leg1
cp models/logs/*.json models/logs/leg1/
./build/qstar train all --sft-init models/generator --sft-steps 1000
