// The avx512bf16 path's kernel-table overrides (kernels/isa_tables.h): BF16 weights in the
// panel layout multiplied with vdpbf16ps (pairs of BF16 products per lane).
#include "kernels/isa_tables.h"
#include "kernels/x86_avx512bf16/avx512bf16.h"

namespace quanta::kernels::QUANTA_ISA_NS {

void fill_table(KernelTable& t) {
  t.packed_rows[static_cast<int>(WeightLayout::kBF16x16)] = matmul_rows_packed_bf16x16;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
