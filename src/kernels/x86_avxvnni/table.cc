// The avxvnni path's kernel-table overrides (kernels/isa_tables.h): Q4_0 and Q8_0 weights in
// their repacked layouts through vpdpbusd (x86_vnni/vnni_dot.h), bit-identical with AVX2.
#include "kernels/isa_tables.h"
#include "kernels/x86_vnni/vnni.h"

namespace quanta::kernels::QUANTA_ISA_NS {

void fill_table(KernelTable& t) {
  t.packed_rows[static_cast<int>(WeightLayout::kQ4_0x8)] = matmul_rows_packed_q4_0x8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ8_0x8)] = matmul_rows_packed_q8_0x8;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
