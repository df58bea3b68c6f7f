// The registry of supported architectures.
#include "models/arch.h"

namespace quanta::models {
namespace {

const ArchSpec* const kArchs[] = {&kLlamaArch, &kQwen2Arch};

}  // namespace

const ArchSpec* find_arch(const std::string& name) {
  for (const ArchSpec* arch : kArchs) {
    if (name == arch->name) return arch;
  }
  return nullptr;
}

std::vector<std::string> arch_names() {
  std::vector<std::string> names;
  for (const ArchSpec* arch : kArchs) names.emplace_back(arch->name);
  return names;
}

}  // namespace quanta::models
