#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang into build-fuzz/ and runs each one on
# its committed seed corpus for a while; fails on any crash, sanitizer report, oracle
# failure, leak or timeout.
#
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
#   seconds-per-target  default 30 (0: only replay the seed corpus, the regression inputs
#                       included, then stop)
#   target              fuzz_game24 fuzz_trace fuzz_cli fuzz_safetensors fuzz_tokenizer
#                       fuzz_config fuzz_math_answer fuzz_jinja fuzz_torch_bin fuzz_sentencepiece
#                       (default: all ten; fuzz_sentencepiece only when libsentencepiece is installed)
# Environment: QSTAR_FUZZ_BUILD_DIR (default build-fuzz), QSTAR_JOBS (build jobs; default
# nproc), QSTAR_FUZZ_PARALLEL (targets run at once; default nproc), QSTAR_FUZZ_ARGS (extra
# libFuzzer flags, e.g. -runs=10000000), QSTAR_FUZZ_LOG_DIR (default build-fuzz/logs).
#
# New inputs the fuzzer finds go to build-fuzz/corpus/<target>/ (not to the committed
# seeds); crash inputs to build-fuzz/artifacts/<target>/. Logs: build-fuzz/logs/<target>.log
# (libFuzzer's final stats: executions, exec/s, corpus, peak RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(fuzz_game24 fuzz_trace fuzz_cli fuzz_safetensors fuzz_tokenizer fuzz_config fuzz_math_answer fuzz_jinja fuzz_torch_bin)
  pkg-config --exists sentencepiece 2>/dev/null && TARGETS+=(fuzz_sentencepiece)
fi
BUILD_DIR=${QSTAR_FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${QSTAR_JOBS:-$(nproc)}
PARALLEL=${QSTAR_FUZZ_PARALLEL:-$(nproc)}
LOG_DIR=${QSTAR_FUZZ_LOG_DIR:-$BUILD_DIR/logs}

CXX_CLANG=$(command -v clang++ || command -v clang++-14 || true)
[ -n "$CXX_CLANG" ] || { echo "[fuzz] clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

start=$(date +%s)
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S tests/fuzz -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_CXX_COMPILER="$CXX_CLANG" >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}"
echo "[fuzz] build took $(( $(date +%s) - start )) s"

mkdir -p "$LOG_DIR"
run_one() {
  local t=$1
  local seeds=tests/fuzz/corpus/$t work=$BUILD_DIR/corpus/$t art=$BUILD_DIR/artifacts/$t/
  mkdir -p "$work" "$art"
  local flags=(-timeout=10 -rss_limit_mb=2560 -max_len=8192 -print_final_stats=1 -artifact_prefix="$art")
  if [ -f "tests/fuzz/$t.dict" ]; then flags+=(-dict="tests/fuzz/$t.dict"); fi
  if [ "$SECONDS_PER_TARGET" -gt 0 ]; then
    flags+=(-max_total_time="$SECONDS_PER_TARGET")
  else
    flags+=(-runs=0)
  fi
  local timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "[time] $t: %e s wall, %U s user, %S s sys, %M KB max RSS")
  # shellcheck disable=SC2086
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "${timer[@]}" "$BUILD_DIR/$t" "${flags[@]}" ${QSTAR_FUZZ_ARGS:-} "$work" "$seeds" >"$LOG_DIR/$t.log" 2>&1
}

failed=()
pids=()
names=()
finish() {  # waits for pids[0]
  local pid=${pids[0]} name=${names[0]}
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
  if wait "$pid"; then
    local runs
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOG_DIR/$name.log" | grep -o '[0-9]*$' || echo '?')
    echo "[fuzz] $name: ok, $runs executions ($LOG_DIR/$name.log)"
  else
    echo "[fuzz] $name: FAILED, see $LOG_DIR/$name.log:" >&2
    grep -E -m 8 'ERROR|FUZZ_CHECK|runtime error|Test unit written|deadly signal|SUMMARY' "$LOG_DIR/$name.log" >&2 || \
      tail -n 20 "$LOG_DIR/$name.log" >&2
    failed+=("$name")
  fi
}
t0=$(date +%s)
for t in "${TARGETS[@]}"; do
  while [ ${#pids[@]} -ge "$PARALLEL" ]; do finish; done
  run_one "$t" &
  pids+=($!)
  names+=("$t")
done
while [ ${#pids[@]} -gt 0 ]; do finish; done
echo "[fuzz] ran ${#TARGETS[@]} targets in $(( $(date +%s) - t0 )) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "[fuzz] FAILED: ${failed[*]}" >&2
  exit 1
fi
