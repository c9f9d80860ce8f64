#!/usr/bin/env bash
# Fetches llama.cpp's release source as bundled in the npm package node-llama-cpp and builds its
# CPU tools (llama-server, llama-bench, llama-batched-bench), cached between runs.
#
# Usage: scripts/llamacpp.sh [cmake targets...]      (default: the three tools above)
# Prints, as its last line, the folder holding the built binaries.
#
# Environment:
#   QSTAR_LLAMACPP_DIR      cache folder (default ~/.cache/qstar/llamacpp); nothing is written
#                           into the repository
#   QSTAR_LLAMACPP_NPM      npm package spec (default node-llama-cpp@3.22.1, pinned so that
#                           cached builds and recorded results refer to one llama.cpp commit)
#   QSTAR_LLAMACPP_JOBS     parallel compile jobs (default 2)
#   QSTAR_LLAMACPP_NATIVE   ON (default) builds for this CPU (-march=native), OFF for a
#                           portable build
#   QSTAR_LLAMACPP_OPT      compiler optimization flag (default -O3, CMake's Release; the
#                           interop test uses -O0: quicker to compile, plenty for a tiny
#                           model; a speed benchmark wants -O3)
#
# The npm package ships llama.cpp's source as a git bundle (package/llama/gitRelease.bundle,
# commit named in package/llama/llama.cpp.info.json); it is read offline: only `npm pack`
# touches the network, once (npm: Debian's npm package, or the one nodejs ships). The web UI
# is neither downloaded nor built (LLAMA_BUILD_UI=OFF,
# LLAMA_USE_PREBUILT_UI=OFF); libcurl/OpenSSL are off (the server is run on loopback only).
set -euo pipefail

DIR=${QSTAR_LLAMACPP_DIR:-$HOME/.cache/qstar/llamacpp}
SPEC=${QSTAR_LLAMACPP_NPM:-node-llama-cpp@3.22.1}
JOBS=${QSTAR_LLAMACPP_JOBS:-2}
NATIVE=${QSTAR_LLAMACPP_NATIVE:-ON}
OPT=${QSTAR_LLAMACPP_OPT:--O3}
case "$OPT" in -O0|-O1|-O2|-O3|-Os) ;; *) echo "llamacpp.sh: error: QSTAR_LLAMACPP_OPT must be one of -O0 -O1 -O2 -O3 -Os, got '$OPT'" >&2; exit 2 ;; esac
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(llama-server llama-bench llama-batched-bench)

log() { echo "llamacpp.sh: $*" >&2; }
die() { log "error: $*"; exit 2; }
[ "${QSTAR_SKIP_DEPS:-0}" = 1 ] || bash "$(dirname "$0")/install-deps.sh" llamacpp >&2
for tool in npm git cmake tar; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (scripts/install-deps.sh llamacpp installs it)"
done

mkdir -p "$DIR/npm"
safe_spec=$(printf '%s' "$SPEC" | tr -c 'A-Za-z0-9._-' '_')
PKG_DIR="$DIR/npm/$safe_spec"
if [ ! -f "$PKG_DIR/package/llama/gitRelease.bundle" ]; then
  log "fetching $SPEC from the npm registry"
  tmp=$(mktemp -d "$DIR/npm/tmp.XXXXXX")
  (cd "$tmp" && npm pack --silent "$SPEC" >/dev/null) || { rm -rf "$tmp"; die "npm pack $SPEC failed"; }
  tgz=$(ls "$tmp"/*.tgz 2>/dev/null | head -n 1)
  [ -n "$tgz" ] || { rm -rf "$tmp"; die "npm pack $SPEC wrote no tarball"; }
  mkdir -p "$tmp/x"
  tar -xzf "$tgz" -C "$tmp/x" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
    || { rm -rf "$tmp"; die "$SPEC has no package/llama/gitRelease.bundle"; }
  rm -rf "$PKG_DIR"
  mv "$tmp/x" "$PKG_DIR"
  rm -rf "$tmp"
fi
BUNDLE="$PKG_DIR/package/llama/gitRelease.bundle"
COMMIT=$(git bundle list-heads "$BUNDLE" | awk '$2 == "HEAD" {print $1; exit}')
[ -n "$COMMIT" ] || die "cannot read the commit of $BUNDLE"

SRC="$DIR/src-$COMMIT"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  log "unpacking llama.cpp $COMMIT"
  rm -rf "$SRC.tmp"
  git -c advice.detachedHead=false clone -q "$BUNDLE" "$SRC.tmp"
  (cd "$SRC.tmp" && git -c advice.detachedHead=false checkout -q "$COMMIT")
  rm -rf "$SRC"
  mv "$SRC.tmp" "$SRC"
fi

BUILD="$DIR/build-$COMMIT-native$NATIVE$OPT"
# One build of a folder at a time (a second caller waits, then finds it built).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BUILD.lock"
  flock 9
fi
LAUNCHER=()
command -v ccache >/dev/null 2>&1 && LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  log "configuring $BUILD"
  cmake -S "$SRC" -B "$BUILD" "${GEN[@]}" "${LAUNCHER[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="$OPT -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="$OPT -DNDEBUG" \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE="$NATIVE" -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF >"$BUILD.configure.log" 2>&1 \
    || { tail -n 30 "$BUILD.configure.log" >&2; rm -rf "$BUILD"; die "cmake configure failed (log: $BUILD.configure.log)"; }
fi

missing=0
for t in "${TARGETS[@]}"; do [ -x "$BUILD/bin/$t" ] || missing=1; done
if [ $missing -eq 1 ]; then
  log "building ${TARGETS[*]} with $JOBS jobs (this takes a while on a small machine)"
  start=$(date +%s)
  targs=()
  for t in "${TARGETS[@]}"; do targs+=(--target "$t"); done
  cmake --build "$BUILD" -j "$JOBS" "${targs[@]}" >"$BUILD.build.log" 2>&1 \
    || { tail -n 30 "$BUILD.build.log" >&2; die "build failed (log: $BUILD.build.log)"; }
  log "built in $(( $(date +%s) - start )) s"
fi
for t in "${TARGETS[@]}"; do [ -x "$BUILD/bin/$t" ] || die "$BUILD/bin/$t was not built"; done
echo "$COMMIT" >"$BUILD/bin/LLAMACPP_COMMIT"
echo "$SRC/gguf-py" >"$BUILD/bin/GGUF_PY"
log "llama.cpp $COMMIT ($SPEC): ${TARGETS[*]} in $BUILD/bin"
log "gguf-py: $SRC/gguf-py"
echo "$BUILD/bin"
