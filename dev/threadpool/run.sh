#!/usr/bin/env bash
# Builds and runs the fork/join timing program against the pool in src/core (default) or,
# with `before`, against the condition-variable pool of commit 6f8d4ff.
# Usage: dev/threadpool/run.sh [before] [reps]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
src="$root/src"
if [[ "${1:-}" == "before" ]]; then
  shift
  mkdir -p "$out/src/core"
  cp "$root"/src/core/error.{h,cc} "$out/src/core/"
  git -C "$root" show 6f8d4ff:src/core/thread_pool.h > "$out/src/core/thread_pool.h"
  git -C "$root" show 6f8d4ff:src/core/thread_pool.cc > "$out/src/core/thread_pool.cc"
  src="$out/src"
fi
g++ -std=c++20 -O2 -march=native -pthread -I"$src" "$root/dev/threadpool/fork_join_bench.cc" \
  "$src/core/thread_pool.cc" "$src/core/error.cc" -o "$out/fork_join_bench"
"$out/fork_join_bench" "${1:-11}"
