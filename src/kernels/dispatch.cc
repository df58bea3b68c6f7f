// Kernel selection: builds the reference table from the quant traits and picks the active
// table once, honouring QUANTA_FORCE_ISA.
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "core/error.h"
#include "kernels/kernel_table.h"
#include "kernels/ref/ref.h"

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
  return table;
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

std::vector<std::string> available_isas() { return {"ref"}; }

void select(const std::string& isa) {
  if (isa == "ref") {
    g_active.store(&reference());
    return;
  }
  std::string names;
  for (const auto& name : available_isas()) names += (names.empty() ? "" : ", ") + name;
  fail("QUANTA_FORCE_ISA: unknown or unavailable instruction set '%s' (available: %s)",
       isa.c_str(), names.c_str());
}

const KernelTable& active() {
  const KernelTable* table = g_active.load();
  if (table != nullptr) return *table;
  std::call_once(g_env_once, select_from_environment);
  return *g_active.load();
}

}  // namespace quanta::kernels
