// The model's weight tensors, as views into the mapped GGUF file (zero copy), looked up by
// llama.cpp's tensor names and checked for shape and type.
#pragma once

#include <cstdint>
#include <vector>

#include "gguf/reader.h"
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
};

// Resolves every tensor; sets hp.n_vocab from token_embd. Throws quanta::Error naming the
// tensor for a missing tensor, a wrong shape or an unsupported type.
ModelWeights bind_weights(const gguf::File& file, HParams& hp);

}  // namespace quanta::models
