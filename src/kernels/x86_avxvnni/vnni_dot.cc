// AVX-VNNI row tiles of Q4_0 / Q8_0 weights in the kQ4_0x8 / kQ8_0x8 layouts: the VEX form of
// vpdpbusd (x86_vnni/vnni_dot.h). 16 vector registers: GEMM register blocks of 3 rows x 4
// tokens (12 int32 sums, 3 weight vectors, 1 activation), as the AVX2 Q4_0x8 GEMM blocks.
#include "kernels/x86_vnni/vnni_dot.h"

#include "core/error.h"
#include "kernels/x86_vnni/vnni.h"

namespace quanta::kernels::QUANTA_ISA_NS {

QUANTA_VNNI_DEFINE_PACKED_ROWS(3, 4)

}  // namespace quanta::kernels::QUANTA_ISA_NS
