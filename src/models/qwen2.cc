// Qwen2: the Llama block with Q/K/V projection biases and NEOX-style RoPE (rotating the two
// halves of each head).
#include "models/arch.h"

namespace quanta::models {

const ArchSpec kQwen2Arch = {
    .name = "qwen2",
    .rope_style = ops::RopeStyle::kNeox,
    .qkv_bias = true,
    .description = "Qwen2 (Llama block + QKV biases, NEOX RoPE)",
};

}  // namespace quanta::models
