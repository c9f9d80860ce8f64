#!/usr/bin/env bash
# A 7B-shaped model's memory and speed with bfloat16 weight storage on CPU (issue #22).
#
# Writes a random-weight bfloat16 model folder of Llama-2-7B's shape (hidden 4096, 32 layers,
# 32 heads, intermediate 11008, vocab 32000: 12.6 GiB in 33 safetensors shards; PRESET=
# mistral-7b for 8 KV heads and intermediate 14336) to a temporary folder, loads it with
# DTYPE storage (default bf16) under /usr/bin/time -v, and prints the load time, the resident
# set after the load (RssAnon: the weights' copy; RssFile: mapped file pages still counted),
# one forward's time over PROMPT tokens, DECODE greedy cached steps' tokens/s, and the peak
# resident set. The folder is deleted on exit (also on error or Ctrl-C).
#
# Usage: benchmarks/memory_7b.sh [BUILD_DIR]       (default build; needs bench_weight_dtype)
# Env:   PRESET=llama-7b DTYPE=bf16 PROMPT=32 DECODE=8 THREADS=2 TMPDIR=/tmp
# Needs about 14 GB of free disk and 15 GB of free memory.
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/benchmarks/bench_weight_dtype
PRESET=${PRESET:-llama-7b}
DTYPE=${DTYPE:-bf16}
PROMPT=${PROMPT:-32}
DECODE=${DECODE:-8}
THREADS=${THREADS:-2}
[ -x "$BIN" ] || { echo "missing $BIN (build the bench_weight_dtype target)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)" >&2; exit 2; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/qstar_7b.XXXXXX")
trap 'rm -rf "$DIR"' EXIT INT TERM
free_kb=$(df --output=avail -k "$DIR" | tail -1)
if [ "$free_kb" -lt $((15 * 1024 * 1024)) ]; then
  echo "need ~15 GB free in $DIR, have $((free_kb / 1024 / 1024)) GB" >&2
  exit 2
fi

echo "== $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
free -g | sed -n 1,2p
"$BIN" write "$DIR/model" --preset "$PRESET" --dtype bf16
du -sh "$DIR/model"
/usr/bin/time -v -o "$DIR/time.txt" "$BIN" load "$DIR/model" --dtype "$DTYPE" \
  --prompt "$PROMPT" --decode "$DECODE" --threads "$THREADS"
grep -E "Maximum resident set size|Elapsed \(wall clock\)|Major \(requiring I/O\)|Minor \(reclaiming" "$DIR/time.txt"
