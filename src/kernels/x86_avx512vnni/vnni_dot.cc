// AVX512-VNNI row tiles of Q4_0 / Q8_0 weights in the kQ4_0x8 / kQ8_0x8 layouts: EVEX
// vpdpbusd on 256-bit vectors (x86_vnni/vnni_dot.h). AVX512VL gives 32 vector registers:
// GEMM register blocks of 3 rows x 8 tokens (24 int32 sums, 3 weight vectors, 1 activation).
#include "kernels/x86_vnni/vnni_dot.h"

#include "core/error.h"
#include "kernels/x86_vnni/vnni.h"

namespace quanta::kernels::QUANTA_ISA_NS {

QUANTA_VNNI_DEFINE_PACKED_ROWS(3, 8)

}  // namespace quanta::kernels::QUANTA_ISA_NS
