// Kernel selection: builds the reference table from the quant traits and, where the CPU
// supports them, the tables of faster instruction sets; picks the active table once (the
// best available, or QUANTA_FORCE_ISA).
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "core/cpu_features.h"
#include "core/error.h"
#include "kernels/kernel_table.h"
#include "kernels/ref/ref.h"

#if QUANTA_KERNELS_X86
#include "kernels/isa_tables.h"
#include "kernels/x86_avx2/avx2.h"
#endif

namespace quanta::kernels {
namespace {

KernelTable make_reference() {
  KernelTable table;
  table.isa = "ref";
  for (uint32_t code = 0; code < kGgmlTypeCount; ++code) {
    const TypeTraits& traits = type_traits(static_cast<GgmlType>(code));
    table.to_float[code] = traits.to_float;
    table.from_float[code] = traits.from_float;
    table.vec_dot[code] = traits.vec_dot;
  }
  table.matmul_rows = ref::matmul_rows;
  table.packed_rows[static_cast<int>(WeightLayout::kQ4_0x8)] =
      ref::matmul_rows_layout<WeightLayout::kQ4_0x8>;
  table.packed_rows[static_cast<int>(WeightLayout::kQ8_0x8)] =
      ref::matmul_rows_layout<WeightLayout::kQ8_0x8>;
  table.packed_rows[static_cast<int>(WeightLayout::kF16x16)] =
      ref::matmul_rows_layout<WeightLayout::kF16x16>;
  table.packed_rows[static_cast<int>(WeightLayout::kBF16x16)] =
      ref::matmul_rows_layout<WeightLayout::kBF16x16>;
  table.packed_rows[static_cast<int>(WeightLayout::kQ4_Kx8)] =
      ref::matmul_rows_layout<WeightLayout::kQ4_Kx8>;
  table.packed_rows[static_cast<int>(WeightLayout::kQ6_Kx8)] =
      ref::matmul_rows_layout<WeightLayout::kQ6_Kx8>;
  // Only the amx path multiplies this layout fast; the others read it through the reference.
  table.packed_rows[static_cast<int>(WeightLayout::kBF16x16Pairs)] =
      ref::matmul_rows_layout<WeightLayout::kBF16x16Pairs>;
  return table;
}

#if QUANTA_KERNELS_X86
// AVX2 + FMA + F16C: fast activation conversions, dot products and row tiles; dequantization
// and weight quantization stay the reference's (not on the hot path).
KernelTable make_avx2() {
  KernelTable t = make_reference();
  t.isa = "avx2";
  const auto set = [&t](GgmlType type, FromFloatFn from, VecDotFn dot) {
    const auto code = static_cast<uint32_t>(type);
    if (from != nullptr) t.from_float[code] = from;
    if (dot != nullptr) t.vec_dot[code] = dot;
  };
  using T = GgmlType;
  set(T::F32, nullptr, avx2::vec_dot_f32);
  set(T::F16, avx2::from_float_f16, avx2::vec_dot_f16);
  set(T::BF16, avx2::from_float_bf16, avx2::vec_dot_bf16);
  set(T::Q4_0, nullptr, avx2::vec_dot_q4_0_q8_0);
  set(T::Q4_1, nullptr, avx2::vec_dot_q4_1_q8_1);
  set(T::Q5_0, nullptr, avx2::vec_dot_q5_0_q8_0);
  set(T::Q5_1, nullptr, avx2::vec_dot_q5_1_q8_1);
  set(T::Q8_0, avx2::from_float_q8_0, avx2::vec_dot_q8_0_q8_0);
  set(T::Q8_1, avx2::from_float_q8_1, nullptr);
  set(T::Q4_K, nullptr, avx2::vec_dot_q4_K_q8_K);
  set(T::Q5_K, nullptr, avx2::vec_dot_q5_K_q8_K);
  set(T::Q6_K, nullptr, avx2::vec_dot_q6_K_q8_K);
  set(T::Q8_K, avx2::from_float_q8_K, nullptr);
  t.matmul_rows = avx2::matmul_rows;
  // Q4_0 and Q8_0 weights repacked at load: transposed groups (kernels/repack.h).
  t.preferred_layout[static_cast<uint32_t>(T::Q4_0)] = WeightLayout::kQ4_0x8;
  t.preferred_layout[static_cast<uint32_t>(T::Q8_0)] = WeightLayout::kQ8_0x8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ4_0x8)] = avx2::matmul_rows_packed_q4_0x8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ8_0x8)] = avx2::matmul_rows_packed_q8_0x8;
  // F16 and BF16 weights in panels of 16 rows (outer-product GEMM, x86_avx2/float_panel.cc).
  t.preferred_layout[static_cast<uint32_t>(T::F16)] = WeightLayout::kF16x16;
  t.preferred_layout[static_cast<uint32_t>(T::BF16)] = WeightLayout::kBF16x16;
  t.packed_rows[static_cast<int>(WeightLayout::kF16x16)] = avx2::matmul_rows_packed_f16x16;
  t.packed_rows[static_cast<int>(WeightLayout::kBF16x16)] = avx2::matmul_rows_packed_bf16x16;
  // Q4_K super-blocks with their nibbles regrouped by sub-block (x86_avx2/q4_k_dot.cc).
  t.preferred_layout[static_cast<uint32_t>(T::Q4_K)] = WeightLayout::kQ4_Kx8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ4_Kx8)] = avx2::matmul_rows_packed_q4_Kx8;
  // Q6_K super-blocks with their 6-bit levels in the kernel's order (x86_avx2/kquant_dot.cc).
  t.preferred_layout[static_cast<uint32_t>(T::Q6_K)] = WeightLayout::kQ6_Kx8;
  t.packed_rows[static_cast<int>(WeightLayout::kQ6_Kx8)] = avx2::matmul_rows_packed_q6_Kx8;
  return t;
}

bool avx2_supported() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma && f.f16c;
}
// Each table, or null when this CPU (or its OS) cannot run it. The wider paths start from a
// copy of the table below them and replace what their folder speeds up (isa_tables.h).
const KernelTable* avx2_table() {
  if (!avx2_supported()) return nullptr;
  static const KernelTable table = make_avx2();
  return &table;
}
#if QUANTA_KERNELS_X86_WIDE
bool avx512_supported() {
  const CpuFeatures& f = cpu_features();
  return avx2_supported() && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
}
KernelTable extend(const KernelTable& base, const char* isa, void (*fill)(KernelTable&)) {
  KernelTable t = base;
  t.isa = isa;
  fill(t);
  return t;
}
const KernelTable* avxvnni_table() {
  if (!avx2_supported() || !cpu_features().avx_vnni) return nullptr;
  static const KernelTable table = extend(*avx2_table(), "avxvnni", avxvnni::fill_table);
  return &table;
}
const KernelTable* avx512_table() {
  if (!avx512_supported()) return nullptr;
  static const KernelTable table = extend(*avx2_table(), "avx512", avx512::fill_table);
  return &table;
}
const KernelTable* avx512vnni_table() {
  if (!avx512_supported() || !cpu_features().avx512_vnni) return nullptr;
  static const KernelTable table = extend(*avx512_table(), "avx512vnni", avx512vnni::fill_table);
  return &table;
}
const KernelTable* avx512bf16_table() {
  if (avx512vnni_table() == nullptr || !cpu_features().avx512_bf16) return nullptr;
  static const KernelTable table =
      extend(*avx512vnni_table(), "avx512bf16", avx512bf16::fill_table);
  return &table;
}
const KernelTable* amx_table() {
  const CpuFeatures& f = cpu_features();
  if (avx512bf16_table() == nullptr || !f.amx_bf16 || !f.amx_int8) return nullptr;
  static const KernelTable table = extend(*avx512bf16_table(), "amx", amx::fill_table);
  return &table;
}
#endif
#else
const KernelTable* avx2_table() {
  return nullptr;
}
#endif
#if !QUANTA_KERNELS_X86_WIDE  // no folder beyond avx2 in this build (see CMakeLists.txt)
const KernelTable* avxvnni_table() {
  return nullptr;
}
const KernelTable* avx512_table() {
  return nullptr;
}
const KernelTable* avx512vnni_table() {
  return nullptr;
}
const KernelTable* avx512bf16_table() {
  return nullptr;
}
const KernelTable* amx_table() {
  return nullptr;
}
#endif

// Every table this machine can run, slowest (the reference) first; then the registered ones.
struct Candidate {
  std::string name;
  const KernelTable* (*table)() = nullptr;
  const KernelTable* registered = nullptr;

  const KernelTable* get() const { return registered != nullptr ? registered : table(); }
};
const KernelTable* reference_table() {
  return &reference();
}
std::vector<Candidate>& candidates() {
  static std::vector<Candidate> list = {{"ref", reference_table},
                                        {"avx2", avx2_table},
                                        {"avxvnni", avxvnni_table},
                                        {"avx512", avx512_table},
                                        {"avx512vnni", avx512vnni_table},
                                        {"avx512bf16", avx512bf16_table},
                                        {"amx", amx_table}};
  return list;
}

std::atomic<const KernelTable*> g_active{nullptr};
std::once_flag g_env_once;

void select_from_environment() {
  const char* forced = std::getenv("QUANTA_FORCE_ISA");
  select(forced != nullptr && *forced != '\0' ? forced : available_isas().back());
}

}  // namespace

const KernelTable& reference() {
  static const KernelTable table = make_reference();
  return table;
}

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const Candidate& c : candidates()) {
    if (c.get() != nullptr) names.emplace_back(c.name);
  }
  return names;
}

void select(const std::string& isa) {
  for (const Candidate& c : candidates()) {
    if (isa != c.name) continue;
    if (const KernelTable* table = c.get(); table != nullptr) {
      g_active.store(table);
      return;
    }
  }
  std::string names;
  for (const auto& name : available_isas()) names += (names.empty() ? "" : ", ") + name;
  fail("QUANTA_FORCE_ISA: unknown or unavailable instruction set '%s' (available: %s)", isa.c_str(),
       names.c_str());
}

const KernelTable* find_table(const std::string& isa) {
  for (const Candidate& c : candidates()) {
    if (isa == c.name) return c.get();
  }
  return nullptr;
}

void register_isa(const std::string& name, const KernelTable* table) {
  QUANTA_ASSERT(table != nullptr && find_table(name) == nullptr);
  candidates().push_back(Candidate{name, nullptr, table});
}

bool avx2_active() {
#if defined(__x86_64__)
  return &active() != &reference();
#else
  return false;
#endif
}

const KernelTable& active() {
  const KernelTable* table = g_active.load();
  if (table != nullptr) return *table;
  std::call_once(g_env_once, select_from_environment);
  return *g_active.load();
}

}  // namespace quanta::kernels
