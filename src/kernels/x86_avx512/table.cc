// The avx512 path's kernel-table overrides (kernels/isa_tables.h): F16 / BF16 weights in the
// panel layouts and F32 weights with 512-bit FMAs, bit-identical with the avx2 entries they
// replace.
#include "kernels/isa_tables.h"
#include "kernels/x86_avx512/avx512.h"

namespace quanta::kernels::QUANTA_ISA_NS {

void fill_table(KernelTable& t) {
  t.matmul_rows = matmul_rows;  // F32 here, the other types as on avx2
  t.packed_rows[static_cast<int>(WeightLayout::kF16x16)] = matmul_rows_packed_f16x16;
  t.packed_rows[static_cast<int>(WeightLayout::kBF16x16)] = matmul_rows_packed_bf16x16;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
