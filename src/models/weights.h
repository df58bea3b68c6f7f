// The model's weight tensors, as views into the mapped GGUF file (zero copy), looked up by
// llama.cpp's tensor names and checked for shape and type; matrices the kernel path prefers
// in another layout are repacked once at load (repack_weights).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "gguf/reader.h"
#include "kernels/kernel_table.h"
#include "models/hparams.h"
#include "ops/weight.h"

namespace quanta::models {

struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  ops::WeightView wq;                // [n_embd] -> [n_head * head_dim]
  ops::WeightView wk;                // [n_embd] -> [n_head_kv * head_dim]
  ops::WeightView wv;                // [n_embd] -> [n_head_kv * head_dim]
  ops::WeightView wo;                // [n_head * head_dim] -> [n_embd]
  const float* bq = nullptr;         // [n_head * head_dim] (qkv_bias architectures)
  const float* bk = nullptr;         // [n_head_kv * head_dim]
  const float* bv = nullptr;         // [n_head_kv * head_dim]
  const float* ffn_norm = nullptr;   // [n_embd]
  ops::WeightView w_gate;            // [n_embd] -> [n_ff]
  ops::WeightView w_up;              // [n_embd] -> [n_ff]
  ops::WeightView w_down;            // [n_ff] -> [n_embd]
};

struct ModelWeights {
  ops::WeightView token_embd;          // [n_vocab rows of n_embd]
  const float* output_norm = nullptr;  // [n_embd]
  ops::WeightView output;              // [n_embd] -> [n_vocab]; token_embd when tied
  bool tied_output = false;
  const float* rope_freqs = nullptr;   // [n_rot / 2] optional frequency factors
  std::vector<LayerWeights> layers;    // [n_layer]
  // Owns the matrices repack_weights rewrote (views point into it); null when none was.
  std::shared_ptr<const uint8_t> repacked;
  size_t repacked_bytes = 0;
};

// Resolves every tensor; sets hp.n_vocab from token_embd. Throws quanta::Error naming the
// tensor for a missing tensor, a wrong shape or an unsupported type.
ModelWeights bind_weights(const gguf::File& file, HParams& hp);

// Copies every matrix that is multiplied (the layers' 7 and an untied output) whose type
// `table` prefers in another layout into one owned buffer in that layout and points its view
// there; `release(data, bytes)` is then told about each source range no longer read (the
// loader drops those pages of the mapping, so resident memory does not double). The token
// embedding (row lookups) stays as stored. A table that prefers no layout changes nothing.
void repack_weights(ModelWeights& w, const kernels::KernelTable& table,
                    const std::function<void(const uint8_t*, size_t)>& release);

}  // namespace quanta::models
