#!/usr/bin/env bash
# Builds matmul_bw against the libraries of a quanta build directory (default build-avx2):
#   cmake --build build-avx2 --target quanta_kernels && dev/matmul-bandwidth/build.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build-avx2}"
g++ -std=c++20 -O2 -Wall -Wextra -I "$root/src" "$root/dev/matmul-bandwidth/matmul_bw.cc" \
  "$build/src/kernels/libquanta_kernels.a" "$build/src/quant/libquanta_quant.a" \
  "$build/src/core/libquanta_core.a" -lpthread -o "$build/matmul_bw"
echo "$build/matmul_bw"
