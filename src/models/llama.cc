// Llama family (Llama 2/3, TinyLlama, Mistral, SmolLM): RMSNorm, RoPE on adjacent pairs
// (llama.cpp's converter permutes Q/K rows for it), SwiGLU, grouped-query attention,
// optional tied output embedding. Everything else is the shared transformer.
#include "models/arch.h"

namespace quanta::models {

const ArchSpec kLlamaArch = {
    .name = "llama",
    .rope_style = ops::RopeStyle::kNorm,
    .qkv_bias = false,
    .description = "Llama (RMSNorm, RoPE, SwiGLU, GQA)",
};

}  // namespace quanta::models
