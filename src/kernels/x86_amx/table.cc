// The amx path's kernel-table overrides (kernels/isa_tables.h): BF16 weights repacked at load
// into the AMX tile layout kBF16x16Pairs and multiplied with tdpbf16ps; Q4_0, Q8_0 and Q4_K
// products of many tokens with tdpbssd.
#include "kernels/isa_tables.h"
#include "kernels/x86_amx/amx.h"

namespace quanta::kernels::QUANTA_ISA_NS {

void fill_table(KernelTable& t) {
  auto& q4_0 = t.packed_rows[static_cast<int>(WeightLayout::kQ4_0x8)];
  auto& q8_0 = t.packed_rows[static_cast<int>(WeightLayout::kQ8_0x8)];
  auto& q4_K = t.packed_rows[static_cast<int>(WeightLayout::kQ4_Kx8)];
  set_int8_base_kernels(q4_0, q8_0, q4_K);
  q4_0 = matmul_rows_packed_q4_0x8;
  q8_0 = matmul_rows_packed_q8_0x8;
  q4_K = matmul_rows_packed_q4_Kx8;
  for (WeightLayout l : {WeightLayout::kQ4_0x8, WeightLayout::kQ8_0x8, WeightLayout::kQ4_Kx8,
                         WeightLayout::kBF16x16Pairs}) {
    t.wants_all_tokens[static_cast<int>(l)] = true;
  }
  t.preferred_layout[static_cast<uint32_t>(GgmlType::BF16)] = WeightLayout::kBF16x16Pairs;
  t.packed_rows[static_cast<int>(WeightLayout::kBF16x16Pairs)] = matmul_rows_packed_bf16x16_pairs;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
