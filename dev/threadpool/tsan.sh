#!/usr/bin/env bash
# Builds the thread-pool unit tests with ThreadSanitizer into build-pool-tsan/ (only the
# pool and its tests, not the whole tree) and runs them. Usage: dev/threadpool/tsan.sh [gtest args]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build-pool-tsan"
mkdir -p "$out"
g++ -std=c++20 -O1 -g -fsanitize=thread -fno-omit-frame-pointer -pthread -I"$root/src" \
  "$root"/tests/unit/core/thread_pool*_test.cc "$root/src/core/thread_pool.cc" \
  "$root/src/core/error.cc" -lgtest_main -lgtest -o "$out/thread_pool_tests"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
  "$out/thread_pool_tests" "$@"
