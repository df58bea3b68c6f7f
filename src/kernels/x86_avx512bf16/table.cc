// The avx512bf16 path's kernel-table overrides (kernels/isa_tables.h).
#include "kernels/isa_tables.h"

namespace quanta::kernels::QUANTA_ISA_NS {

void fill_table(KernelTable& t) {
  (void)t;
}

}  // namespace quanta::kernels::QUANTA_ISA_NS
