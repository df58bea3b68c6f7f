// The quantization recipe: which type each tensor of a model gets for a target file type,
// following llama.cpp's llama_tensor_get_type (commit c392e509) rule for rule, with its
// fallbacks for rows whose width is not a multiple of the block size, and its tensor order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compress/file_type.h"
#include "quant/types.h"

namespace quanta::compress {

struct RecipeOptions {
  FileType ftype = FileType::kQ4_0;
  bool has_imatrix = false;      // some rules differ with an importance matrix
  bool keep_output_f16 = false;  // output.weight (token_embd when tied) in F16, like
                                 // llama-quantize --output-tensor-type f16
  bool pure = false;             // base type everywhere (llama-quantize --pure); fallbacks stay
};

// What the recipe needs to know about the model (from its GGUF metadata).
struct ModelShape {
  std::string arch;  // general.architecture ("llama", "qwen2", "falcon", ...)
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
};

struct TensorDesc {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] = row width
  GgmlType type = GgmlType::F32;
};

struct TensorPlan {
  GgmlType type = GgmlType::F32;  // type in the output file
  bool convert = false;           // false: bytes copied unchanged (same type)
  std::string note;               // why it deviates from the recipe ("172 % 256 != 0 -> q5_0")
};

// llama.cpp's output order (its weight_name_comparer): tensors outside the blocks first,
// then blk.0, blk.1, ... (by number), each group sorted by name. Returns indices into
// `tensors`.
std::vector<size_t> llama_tensor_order(const std::vector<TensorDesc>& tensors);

// True when llama-quantize would quantize the tensor at all (2-D or more, name ending in
// "weight", not a norm, not MoE routing or position/type embeddings).
bool is_quantizable(const TensorDesc& t);

// One plan per tensor. `tensors` must be in llama_tensor_order: the layer counters of the
// attn_v / ffn_down rules advance in that order, as in llama.cpp.
std::vector<TensorPlan> plan_types(const std::vector<TensorDesc>& tensors, const ModelShape& model,
                                   const RecipeOptions& options);

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int32_t i_layer, int32_t n_layer);

}  // namespace quanta::compress
