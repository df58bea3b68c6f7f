// Random-weight models written with quanta's own GGUF writer and quantizer: the built-in
// default model of `make run`, and test/benchmark models in any layout (e.g. TinyLlama-1.1B).
#pragma once

#include <cstdint>
#include <string>

#include "quant/types.h"

namespace quanta::models {

struct SyntheticSpec {
  std::string arch = "llama";  // "llama" or "qwen2"
  int32_t n_embd = 128;
  int32_t n_layer = 4;
  int32_t n_head = 4;
  int32_t n_head_kv = 2;
  int32_t n_ff = 384;
  int32_t n_ctx = 512;
  float rope_freq_base = 10000.0f;
  GgmlType type = GgmlType::Q8_0;  // type of the 2-D weights; norms and biases stay F32
  bool tied_output = false;
  uint64_t seed = 42;
};

// A named preset ("default", "tinyllama-1.1b"); throws quanta::Error for an unknown name.
SyntheticSpec synthetic_preset(const std::string& name);

// Writes the model with a built-in byte-fallback SentencePiece vocabulary (3 control tokens,
// 256 byte tokens, printable ASCII characters and some common English words).
void write_synthetic_model(const SyntheticSpec& spec, const std::string& path);

}  // namespace quanta::models
