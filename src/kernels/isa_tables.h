// The kernel-table overrides of the x86 ISA folders beyond AVX2. Each folder's table.cc
// defines its namespace's fill_table, which replaces the entries that folder speeds up in a
// copy of the table below it (dispatch.cc: avx512 on avx2, avx512vnni on avx512, avx512bf16
// on avx512vnni, amx on avx512bf16, avxvnni on avx2). Call one only when the CPU has that
// folder's ISA.
#pragma once

#include "kernels/kernel_table.h"

namespace quanta::kernels {

namespace avx512 {  // AVX-512 F/BW/VL/DQ (x86_avx512/)
void fill_table(KernelTable& t);
}
namespace avx512vnni {  // + AVX512-VNNI (x86_avx512vnni/)
void fill_table(KernelTable& t);
}
namespace avx512bf16 {  // + AVX512-BF16 (x86_avx512bf16/)
void fill_table(KernelTable& t);
}
namespace amx {  // + AMX-TILE and AMX-BF16 (x86_amx/)
void fill_table(KernelTable& t);
}
namespace avxvnni {  // AVX2 + AVX-VNNI, the VEX form (x86_avxvnni/)
void fill_table(KernelTable& t);
}

}  // namespace quanta::kernels
