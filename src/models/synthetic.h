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
  // Per-tensor types as llama-quantize picks them for `type` (see synthetic_tensor_type);
  // false: `type` for every 2-D tensor.
  bool llama_mix = false;
  int32_t n_vocab = 0;  // 0: the built-in vocabulary alone; else padded to n_vocab tokens
  bool tied_output = false;
  uint64_t seed = 42;
};

// The type write_synthetic_model gives the 2-D tensor `name` ("output.weight",
// "blk.7.attn_v.weight", ...): spec.type, unless spec.llama_mix, which follows llama-quantize
// (c392e509) for block-quantized types: output.weight Q6_K (except for Q8_0); for Q4_K and
// Q5_K, i.e. ftypes Q4_K_M and Q5_K_M, also attn_v and ffn_down Q6_K in the layers where
// use_more_bits(layer) holds (the first and last eighth, and every third in between).
// F32/F16/BF16 are never mixed.
GgmlType synthetic_tensor_type(const SyntheticSpec& spec, const std::string& name);

// A named preset ("default"; "tinyllama-1.1b": 22 layers, n_embd 2048, 32/4 heads, FFN 5632,
// vocabulary 32000, as TinyLlama-1.1B); throws quanta::Error for an unknown name.
SyntheticSpec synthetic_preset(const std::string& name);

// Writes the model with a built-in byte-fallback SentencePiece vocabulary (3 control tokens,
// 256 byte tokens, printable ASCII characters and some common English words), padded with
// unused "<unusedN>" tokens to spec.n_vocab. Holds every quantized tensor in memory until the
// file is written (gguf::Writer), plus one tensor's F32 values at a time.
void write_synthetic_model(const SyntheticSpec& spec, const std::string& path);

}  // namespace quanta::models
