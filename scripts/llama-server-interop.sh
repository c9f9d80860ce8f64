#!/usr/bin/env bash
# Interop test of qstar's HTTP generator against a real llama.cpp server (issue #24): builds
# llama-server from node-llama-cpp's bundled llama.cpp source (scripts/llamacpp.sh, cached),
# writes a tiny random GGUF model (benchmarks/make_gguf.py), serves it on 127.0.0.1 at a free
# port with --parallel slots, and runs `qstar solve` and `qstar bench` with beam search,
# best-of-N and MCTS through --generator http:URL (no adapter in between), checking exit
# statuses and output shapes. Run it by hand after each change to src/http/ (docs/serving.md
# has its recorded result).
#
# Usage: scripts/llama-server-interop.sh [--record DIR]
#   --record DIR   also save raw llama-server replies (the fixtures of
#                  tests/http/llamacpp_replies.hpp) into DIR
# Environment: QSTAR_EXE (default build/qstar), QSTAR_LLAMACPP_OPT (default -O0 here: quicker
# to compile; see scripts/llamacpp.sh for the rest), QSTAR_INTEROP_SLOTS
# (--parallel, default 2: below the requests' n, so the split of n is exercised).
set -euo pipefail
cd "$(dirname "$0")/.."
RECORD=""
if [ "${1:-}" = "--record" ]; then
  [ -n "${2:-}" ] || { echo "llama-server-interop.sh: --record needs a folder" >&2; exit 2; }
  RECORD=$2
  mkdir -p "$RECORD"
fi
QSTAR=${QSTAR_EXE:-build/qstar}
SLOTS=${QSTAR_INTEROP_SLOTS:-2}
[ -x "$QSTAR" ] || { echo "llama-server-interop.sh: $QSTAR not found (build qstar_exe, or set QSTAR_EXE)" >&2; exit 2; }
command -v curl >/dev/null || { echo "llama-server-interop.sh: curl not found" >&2; exit 2; }
T0=$(date +%s)

BIN=$(QSTAR_LLAMACPP_OPT=${QSTAR_LLAMACPP_OPT:--O0} scripts/llamacpp.sh llama-server | tail -n 1)
GGUF_PY=$(cat "$BIN/GGUF_PY")
T1=$(date +%s)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qstar-interop.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
/usr/bin/python3 benchmarks/make_gguf.py --gguf-py "$GGUF_PY" --out "$WORK/model" >&2

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
URL="http://127.0.0.1:$PORT"
"$BIN/llama-server" -m "$WORK/model/model.gguf" --host 127.0.0.1 --port "$PORT" --parallel "$SLOTS" \
  -c $((2048 * SLOTS)) -t 2 --no-webui >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  if curl -sf "$URL/health" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/server.log" >&2; echo "llama-server-interop.sh: llama-server exited" >&2; exit 1; }
  sleep 0.1
done
curl -sf "$URL/health" >/dev/null || { tail -n 20 "$WORK/server.log" >&2; echo "llama-server-interop.sh: no /health after 60 s" >&2; exit 1; }
echo "llama-server-interop.sh: llama-server ($(cat "$BIN/LLAMACPP_COMMIT")) at $URL, $SLOTS slots" >&2

if [ -n "$RECORD" ]; then
  post() { curl -s -X POST "$URL$1" -H 'Content-Type: application/json' -d "$2"; }
  curl -s "$URL/v1/models" >"$RECORD/models.json"
  fields='"return_tokens":true,"response_fields":["index","content","tokens","tokens_predicted","stop_type","completion_probabilities"]'
  for seed in $(seq 1 40); do
    post /completions "{\"prompt\":\"4 5 6 10\",\"n\":1,\"n_predict\":12,\"temperature\":1.0,\"top_k\":0,\"min_p\":0.0,\"top_p\":1.0,\"seed\":$seed,\"stop\":[\" \"],\"n_probs\":2,$fields}" \
      >"$RECORD/native-$seed.json" || true
    post /v1/completions "{\"prompt\":\"4 5 6 10\",\"n\":2,\"max_tokens\":12,\"temperature\":1.0,\"top_k\":0,\"min_p\":0.0,\"seed\":$seed,\"stop\":[\" \"],\"logprobs\":1}" \
      >"$RECORD/oai-$seed.json" || true
  done
  post /completions "{\"prompt\":\"4 5 6 10\",\"n\":$((SLOTS + 1)),\"n_predict\":4}" >"$RECORD/n-too-large.json" || true
  echo "llama-server-interop.sh: replies recorded in $RECORD" >&2
fi

# The searches: the Game of 24 task with the exact oracle verifier; a random model writes
# garbage steps, so only completion, exit status and output shape are checked.
run() {
  local name=$1
  shift
  local t=$(date +%s%N)
  if ! "$QSTAR" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
    cat "$WORK/$name.err" >&2
    echo "llama-server-interop.sh: FAILED: qstar $*" >&2
    exit 1
  fi
  echo "llama-server-interop.sh: ok $name ($(( ($(date +%s%N) - t) / 1000000 )) ms)" >&2
}
COMMON=(--generator "http:$URL" --verifier oracle --max-depth 4 --max-step-tokens 12 --delimiter " " --seed 3)
for algo in beam best-of-n mcts; do
  run "solve-$algo" solve "4 5 6 10" --algo "$algo" --n 4 "${COMMON[@]}" --json
done
run bench bench --data data/game24/24.csv --ranks 901-904 --algo best-of-n,beam,mcts --n 4 "${COMMON[@]}" \
  --json "$WORK/bench.json"
# A second run of one search must give the same result (seeded sampling on the server).
run solve-beam-again solve "4 5 6 10" --algo beam --n 4 "${COMMON[@]}" --json
/usr/bin/python3 - "$WORK/solve-beam.out" "$WORK/solve-beam-again.out" <<'PY' || {
import json, sys
def strip(x):  # timings differ between runs; everything else must not
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if not k.endswith("_seconds")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
a, b = (strip(json.load(open(f))) for f in sys.argv[1:3])
sys.exit(0 if a == b else 1)
PY
  echo "llama-server-interop.sh: FAILED: the same seed gave different beam-search results" >&2; exit 1; }

/usr/bin/python3 - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
for algo in ("beam", "best-of-n", "mcts"):
    out = json.load(open(f"{work}/solve-{algo}.out"))
    assert isinstance(out, dict), f"solve {algo}: not a JSON object"
bench = json.load(open(f"{work}/bench.json"))
assert bench, "bench: empty JSON"
print("llama-server-interop.sh: output shapes ok", file=sys.stderr)
EOF
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
T2=$(date +%s)
echo "llama-server-interop.sh: PASS (llama.cpp build/cache check $((T1 - T0)) s, model + server + searches $((T2 - T1)) s)"
