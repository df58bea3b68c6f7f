// AVX512-VNNI row tiles of Q4_0 / Q8_0 weights in the kQ4_0x8 / kQ8_0x8 layouts: EVEX
// vpdpbusd (x86_vnni/vnni_dot.h). GEMM tiles of 4 rows in zmm register blocks of 2 row pairs
// x 8 tokens (16 zmm int32 sums, 2 weight vectors, 1 activation of 32 registers); leftover
// rows in ymm blocks of 1 x 8, decode tiles on ymm.
#include "kernels/x86_vnni/vnni_dot.h"

#include "core/error.h"
#include "kernels/x86_vnni/vnni.h"

namespace quanta::kernels::QUANTA_ISA_NS {

QUANTA_VNNI_DEFINE_PACKED_ROWS_ZMM(4, 8)

}  // namespace quanta::kernels::QUANTA_ISA_NS
