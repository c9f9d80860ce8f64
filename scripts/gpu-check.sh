#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one script (target: under 8 minutes on one H100):
#   1. build qstar against the CUDA LibTorch of the machine's pip torch (build-gpu/);
#   2. the LibTorch test suite (test_torch), whose CUDA cases run when a GPU is present;
#   3. every generator family and verifier head against Hugging Face transformers on random
#      weights, on the GPU in float32 and bfloat16 (scripts/gpu/transformers_parity.py);
#   4. a search on CUDA with the embedded Game of 24 models;
#   5. decode tokens/s against transformers' generate for the same model and batch
#      (scripts/gpu/decode_speed.py).
# Needs: nvidia-smi, python3 with a CUDA build of torch and transformers (pip), CMake >= 3.25,
# a C++20 compiler, the CUDA toolkit (nvcc: a CUDA wheel's CMake config needs it), and the
# Debian -dev packages of scripts/install-deps.sh other than libtorch-dev. Nothing is
# downloaded. Each step prints its result; the script stops at the first failure.
# Usage: scripts/gpu-check.sh [PYTHON]   (default python3; QSTAR_GPU_BUILD_DIR=build-gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
BUILD=${QSTAR_GPU_BUILD_DIR:-build-gpu}
t0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - t0 )) s] $*"; }

step "0. machine"
command -v nvidia-smi >/dev/null || { echo "gpu-check: nvidia-smi not found: no NVIDIA GPU here" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" - <<'EOF'
import sys
try:
    import torch, transformers
except ImportError as e:
    sys.exit(f"gpu-check: {e}: install torch (CUDA) and transformers in this python first")
if not torch.cuda.is_available():
    sys.exit(f"gpu-check: torch {torch.__version__} sees no CUDA device")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}, "
      f"{torch.cuda.get_device_name(0)}")
EOF

step "1. build against pip's CUDA LibTorch"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
TORCH_PREFIX=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DQSTAR_WITH_TORCH=ON \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DPython3_EXECUTABLE="$(command -v "$PY")" \
  -DQSTAR_BUILD_EXAMPLES=OFF -DQSTAR_BUILD_BENCHMARKS=OFF -DQSTAR_BUILD_TRAIN=OFF >"$BUILD.configure.log" 2>&1 ||
  { tail -40 "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j "$(nproc)" --target qstar_exe test_torch
QSTAR="$BUILD/qstar"

step "2. LibTorch tests (CUDA cases included)"
(cd "$BUILD" && ./tests/test_torch)

step "3. transformers parity on the GPU"
"$PY" scripts/gpu/transformers_parity.py --qstar "$QSTAR" --device cuda --dtype float32
"$PY" scripts/gpu/transformers_parity.py --qstar "$QSTAR" --device cuda --dtype bfloat16

step "4. a search on CUDA"
"$QSTAR" solve "4 5 6 10" --generator lm:models/generator --verifier prm:models/prm --device cuda --json |
  "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("answer", r.get("answer"), "| stats", r.get("stats"))'

step "5. decode tokens/s against transformers generate"
"$PY" scripts/gpu/decode_speed.py --qstar "$QSTAR" --device cuda

step "done in $(( $(date +%s) - t0 )) s"
