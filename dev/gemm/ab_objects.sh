#!/usr/bin/env bash
# Builds ab_objects (in-process A/B of two versions of q4_0_dot.cc, see ab_objects.cc):
#   dev/gemm/ab_objects.sh OLD.cc NEW.cc [builddir] && builddir/ab_objects 1024 2048 16 1500
# AB_KERNEL=q8_0x8 dev/gemm/ab_objects.sh ... does the same for q8_0_dot.cc (matmul_rows_q8_0x8),
# AB_KERNEL=q4_Kx8 for q4_k_dot.cc (matmul_rows_q4_Kx8), q6_Kx8 for kquant_dot.cc.
# Copy the old q4_0_dot.cc aside before editing; builddir must have quanta_kernels built.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
old="$1" new="$2" build="${3:-$root/build-gemm}"
kernel="${AB_KERNEL:-q4_0x8}"
case "$kernel" in
  q4_0x8) kflag=() ;;
  q8_0x8) kflag=(-DQUANTA_AB_Q8_0X8) ;;
  q4_Kx8) kflag=(-DQUANTA_AB_Q4_KX8) ;;
  q6_Kx8) kflag=(-DQUANTA_AB_Q6_KX8) ;;
  *) echo "ab_objects.sh: AB_KERNEL must be q4_0x8, q8_0x8, q4_Kx8 or q6_Kx8" >&2; exit 2 ;;
esac
flags=(-std=c++20 -O3 -DNDEBUG -mavx2 -mfma -mf16c -ffp-contract=off
       -DQUANTA_KERNELS_X86_AVX2=1 -DQUANTA_ISA_NS=avx2 -I "$root/src")
g++ "${flags[@]}" -Dquanta=quanta_a -c "$old" -o "$build/ab_old.o"
g++ "${flags[@]}" -Dquanta=quanta_b -c "$new" -o "$build/ab_new.o"
g++ -std=c++20 -O2 "${kflag[@]}" -I "$root/src" "$root/dev/gemm/ab_objects.cc" "$build/ab_old.o" \
  "$build/ab_new.o" "$build/src/kernels/libquanta_kernels.a" "$build/src/quant/libquanta_quant.a" \
  "$build/src/core/libquanta_core.a" -lpthread -o "$build/ab_objects"
echo "$build/ab_objects"
