// AVX512-VNNI row tiles of Q4_K / Q6_K weights in the kQ4_Kx8 / kQ6_Kx8 layouts
// (x86_vnni/vnni_kquant.h: vpdpbusd for Q4_K, vpdpwssd for Q6_K), bit-identical with AVX2.
// GEMM tiles of even row counts in zmm row pairs; decode tiles and odd rows on ymm.
#include "kernels/x86_vnni/vnni_kquant.h"

#include "core/error.h"
#include "kernels/x86_vnni/vnni.h"

namespace quanta::kernels::QUANTA_ISA_NS {

QUANTA_VNNI_DEFINE_KQUANT_ROWS_ZMM()

}  // namespace quanta::kernels::QUANTA_ISA_NS
