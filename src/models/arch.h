// Architecture declarations: what distinguishes one decoder-only transformer family from
// another, as data. Each architecture declares itself once (llama.cc, qwen2.cc); the forward
// pass (transformer.cc) is built from shared blocks and reads only this.
#pragma once

#include <string>
#include <vector>

#include "ops/rope.h"

namespace quanta::models {

struct ArchSpec {
  const char* name;              // GGUF `general.architecture`
  ops::RopeStyle rope_style;     // how RoPE pairs dimensions
  bool qkv_bias;                 // attn_{q,k,v}.bias tensors are required
  const char* description;       // for `quanta info`
};

// The spec for a GGUF architecture name, or nullptr.
const ArchSpec* find_arch(const std::string& name);
// Names of every supported architecture.
std::vector<std::string> arch_names();

// Declared in their own files.
extern const ArchSpec kLlamaArch;
extern const ArchSpec kQwen2Arch;

}  // namespace quanta::models
