// The avx512vnni path's kernel-table overrides (kernels/isa_tables.h): Q4_0, Q8_0, Q4_K and Q6_K
// weights in their repacked layouts (x86_vnni/vnni_dot.h, vnni_kquant.h), bit-identical with AVX2.
#include "kernels/isa_tables.h"
#include "kernels/x86_vnni/vnni.h"

namespace quanta::kernels::QUANTA_ISA_NS {

void fill_table(KernelTable& t) {
  t.packed_rows[static_cast<int>(WeightLayout::kQ4_0x8)] = matmul_rows_packed_q4_0x8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ8_0x8)] = matmul_rows_packed_q8_0x8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ4_Kx8)] = matmul_rows_packed_q4_Kx8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ6_Kx8)] = matmul_rows_packed_q6_Kx8;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
