// The kernel table: function pointers for every compute kernel, filled once at start-up for
// the selected instruction set. The scalar reference (src/quant) is always available;
// QUANTA_FORCE_ISA=ref|<isa> forces a path so tests can cover each one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/types.h"

namespace quanta::kernels {

// y[t * y_stride + r] for rows r in [row_begin, row_end) and tokens t in [0, n_tokens):
// dot(weight row r, activation row t). Weight rows are `row_bytes` apart; activation rows
// are already in the weight type's vec_dot_type, `act_row_bytes` apart.
using MatmulRowsFn = void (*)(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t k,
                              const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                              float* y, int64_t y_stride, int64_t row_begin, int64_t row_end);

// How the bytes of a weight matrix are arranged (see kernels/repack.h). kGguf: as in the
// file. Every other layout keeps the size of the matrix and of each row (the row layouts
// keep row r at byte r * row_bytes; the panel layouts interleave 16 rows at a time).
enum class WeightLayout : uint8_t {
  kGguf = 0,
  kQ4_0x8 = 1,  // Q4_0 rows, each group of 8 blocks with its nibbles transposed (repack.h)
  kQ8_0x8 = 2,  // Q8_0 rows, each group of 8 blocks with its quants transposed (repack.h)
  kF16x16 = 3,   // F16 rows in panels of 16: value j of 16 rows side by side (repack.h)
  kBF16x16 = 4,  // BF16 rows in panels of 16, lanes ordered for two unpacks (repack.h)
  kQ4_Kx8 = 5,   // Q4_K rows, each super-block's nibbles regrouped by sub-block (repack.h)
  kQ6_Kx8 = 6,   // Q6_K rows, each super-block's 6-bit levels in the kernel's order (repack.h)
  kBF16x16Pairs = 7,  // BF16 rows in panels of 16, value pairs of a row in one dword (AMX)
};
inline constexpr int kWeightLayoutCount = 8;

struct KernelTable {
  const char* isa = "ref";
  ToFloatFn to_float[kGgmlTypeCount] = {};
  FromFloatFn from_float[kGgmlTypeCount] = {};
  VecDotFn vec_dot[kGgmlTypeCount] = {};
  MatmulRowsFn matmul_rows = nullptr;
  // The layout this path multiplies weights of each type fastest in: a model loader repacks
  // such weights once (kGguf: used as stored). The reference never asks for repacking.
  WeightLayout preferred_layout[kGgmlTypeCount] = {};
  // matmul_rows for weights stored in each layout other than kGguf (same contract; `type`
  // must be the layout's type). Every table fills every entry, so repacked weights stay
  // usable after another path is selected.
  MatmulRowsFn packed_rows[kWeightLayoutCount] = {};
  // True where this path's kernel for a layout runs best with all the tokens of a product in
  // each call (the amx tiles: the int8 ones rearrange the weights they read on every call,
  // and every tile product wants 16 tokens): products of many tokens then split the rows
  // between threads, not the tokens (ops::split_tokens).
  bool wants_all_tokens[kWeightLayoutCount] = {};

  // The row kernel for weights of `type` stored in `layout`.
  MatmulRowsFn rows_fn(WeightLayout layout) const {
    return layout == WeightLayout::kGguf ? matmul_rows : packed_rows[static_cast<int>(layout)];
  }
};

// The active table (selected on first use from the CPU and QUANTA_FORCE_ISA).
const KernelTable& active();
// The scalar reference table.
const KernelTable& reference();
// ISA names this machine can run, "ref" first.
std::vector<std::string> available_isas();
// Whether the active path may run the SIMD code that other layers call directly from
// kernels/x86_avx2/*.h (SwiGLU, flash attention, the KV cache's rounding): on x86-64 every
// path but "ref" (avx2, avxvnni, avx512, avx512vnni, avx512bf16, amx) implies AVX2, FMA and F16C.
// False under QUANTA_FORCE_ISA=ref and elsewhere.
bool avx2_active();
// Selects a path by name; throws quanta::Error for an unknown name or one this CPU lacks.
void select(const std::string& isa);
// The table of a path this machine can run, or null.
const KernelTable* find_table(const std::string& isa);
// Adds `table` under `name` after the CPU's own paths (available_isas lists it, select
// accepts it). For test binaries only: kernels_tests registers the AVX-512 and VNNI
// tables it runs through SIMDe. Call before the first select or active.
void register_isa(const std::string& name, const KernelTable* table);

}  // namespace quanta::kernels
