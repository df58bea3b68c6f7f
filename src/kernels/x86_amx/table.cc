// The amx path's kernel-table overrides (kernels/isa_tables.h): BF16 weights repacked at load
// into the AMX tile layout kBF16x16Pairs and multiplied with tdpbf16ps.
#include "kernels/isa_tables.h"
#include "kernels/x86_amx/amx.h"

namespace quanta::kernels::QUANTA_ISA_NS {

void fill_table(KernelTable& t) {
  t.preferred_layout[static_cast<uint32_t>(GgmlType::BF16)] = WeightLayout::kBF16x16Pairs;
  t.packed_rows[static_cast<int>(WeightLayout::kBF16x16Pairs)] = matmul_rows_packed_bf16x16_pairs;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
