// Model hyper-parameters read from GGUF metadata (`<arch>.*` keys), with llama.cpp's
// defaults for optional keys and a clear error naming any missing or invalid required key.
#pragma once

#include <cstdint>
#include <string>

#include "gguf/reader.h"
#include "models/arch.h"

namespace quanta::models {

struct HParams {
  const ArchSpec* arch = nullptr;
  int32_t n_ctx_train = 0;  // <arch>.context_length
  int32_t n_embd = 0;       // <arch>.embedding_length
  int32_t n_layer = 0;      // <arch>.block_count
  int32_t n_ff = 0;         // <arch>.feed_forward_length
  int32_t n_head = 0;       // <arch>.attention.head_count
  int32_t n_head_kv = 0;    // <arch>.attention.head_count_kv (default n_head)
  int32_t head_dim = 0;     // <arch>.attention.key_length (default n_embd / n_head)
  int32_t n_rot = 0;        // <arch>.rope.dimension_count (default head_dim)
  int32_t n_vocab = 0;      // rows of token_embd.weight
  float norm_eps = 0.0f;    // <arch>.attention.layer_norm_rms_epsilon (required)
  float rope_freq_base = 10000.0f;  // <arch>.rope.freq_base
  float rope_freq_scale = 1.0f;     // 1 / <arch>.rope.scaling.factor for linear scaling

  int32_t q_dim() const { return n_head * head_dim; }
  int32_t kv_dim() const { return n_head_kv * head_dim; }
};

// Reads and validates the hyper-parameters (n_vocab is filled later from the weights).
HParams read_hparams(const gguf::File& file);

}  // namespace quanta::models
