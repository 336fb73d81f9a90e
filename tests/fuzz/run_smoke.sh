#!/usr/bin/env bash
# Builds request_fuzz with clang (libFuzzer, ASan) in BUILD_DIR and fuzzes for SECONDS.
# Usage: run_smoke.sh SOURCE_DIR BUILD_DIR SECONDS
set -euo pipefail
src=$1 build=$2 seconds=$3
if ! command -v clang++ >/dev/null; then
  echo "clang++ is not installed: run .ci/install-deps" >&2
  exit 1
fi
# ASan only: clang 14 fails to compile Asio coroutines under -fsanitize=undefined ("Cannot
# represent a difference across sections").
flags="-fsanitize=address,fuzzer-no-link -O1 -g"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address" \
  -DSESSIOND_FUZZ=ON >/dev/null
cmake --build "$build" --target request_fuzz
# A working corpus seeded from the committed one (valid requests of every kind), so a short run
# reaches dispatch at once; what the run discovers stays in the build dir.
corpus="$build/corpus"
mkdir -p "$corpus"
cp -n "$src"/tests/fuzz/corpus/* "$corpus"/
ASAN_OPTIONS=detect_leaks=1 "$build/bin/request_fuzz" -max_total_time="$seconds" \
  -max_len=65536 -print_final_stats=1 "$corpus"
