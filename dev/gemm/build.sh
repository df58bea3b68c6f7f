#!/usr/bin/env bash
# Builds gemm_bench, ab_bench (alternating A/B timing) and `pipes` (the instruction-throughput
# probe) against the libraries of a quanta build directory (default build-gemm):
#   cmake --build build-gemm --target quanta_kernels && dev/gemm/build.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build-gemm}"
g++ -std=c++20 -O2 -I "$root/src" "$root/dev/gemm/gemm_bench.cc" \
  "$build/src/kernels/libquanta_kernels.a" "$build/src/quant/libquanta_quant.a" \
  "$build/src/core/libquanta_core.a" -lpthread -o "$build/gemm_bench"
g++ -std=c++20 -O2 -I "$root/src" "$root/dev/gemm/ab_bench.cc" \
  "$build/src/kernels/libquanta_kernels.a" "$build/src/quant/libquanta_quant.a" \
  "$build/src/core/libquanta_core.a" -lpthread -o "$build/ab_bench"
g++ -std=c++20 -O2 "$root/dev/gemm/pipes.cc" -o "$build/pipes"
echo "$build/gemm_bench $build/ab_bench $build/pipes"
