// llama.cpp's per-tensor type choice for the file types quanta writes (Q4_0, Q8_0, Q4_K_S/M,
// Q5_K_S/M, Q6_K, F16, BF16, F32). Rules for other file types (Q2_K, Q3_K, IQ*) and MoE
// models (n_expert == 8) are not carried over.
#include "compress/recipe.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace quanta::compress {
namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int32_t layer_of(const std::string& name) {
  int32_t layer = -1;
  std::sscanf(name.c_str(), "blk.%d.", &layer);
  return layer;
}

int n_dims(const std::vector<int64_t>& ne) {
  int n = static_cast<int>(ne.size());
  while (n > 1 && ne[n - 1] == 1) --n;  // ggml_n_dims ignores trailing 1s
  return n;
}

// State of one planning pass: llama.cpp's quantize_state_impl counters.
struct State {
  const ModelShape& model;
  const RecipeOptions& opt;
  bool has_output = false;
  int32_t n_attention_wv = 0;
  int32_t i_attention_wv = 0;
  int32_t i_ffn_down = 0;
};

bool is_output_like(const State& s, const std::string& name) {
  return name == "output.weight" || (!s.has_output && name == "token_embd.weight");
}

GgmlType output_type(const State& s, const TensorDesc& t, GgmlType type) {
  if (s.opt.keep_output_f16) return GgmlType::F16;
  if (s.model.arch == "falcon" || t.ne[0] % 256 != 0) return GgmlType::Q8_0;
  return type != GgmlType::Q8_0 ? GgmlType::Q6_K : type;
}

GgmlType attn_v_type(State& s, GgmlType type) {
  const FileType f = s.opt.ftype;
  const int32_t i = s.i_attention_wv++;
  if ((f == FileType::kQ4_K_M || f == FileType::kQ5_K_M) && use_more_bits(i, s.n_attention_wv)) {
    type = GgmlType::Q6_K;
  } else if (f == FileType::kQ4_K_S && i < 4) {
    type = GgmlType::Q5_K;
  }
  // llama.cpp's LLM_TYPE_70B: 80 Llama layers with grouped-query attention.
  const bool is_70b = s.model.arch == "llama" && s.model.n_layer == 80 &&
                      s.model.n_head != s.model.n_head_kv;
  if (is_70b && (type == GgmlType::Q3_K || type == GgmlType::Q4_K)) type = GgmlType::Q5_K;
  return type;
}

GgmlType ffn_down_type(State& s, GgmlType type) {
  const FileType f = s.opt.ftype;
  const int32_t i = s.i_ffn_down++;
  const int32_t n = s.model.n_layer;
  const bool falcon = s.model.arch == "falcon";
  if (f == FileType::kQ4_K_M) {
    if (falcon) {
      return i < n / 16 ? GgmlType::Q6_K : use_more_bits(i, n) ? GgmlType::Q5_K : GgmlType::Q4_K;
    }
    if (use_more_bits(i, n)) type = GgmlType::Q6_K;
  } else if (f == FileType::kQ5_K_M && use_more_bits(i, n)) {
    type = GgmlType::Q6_K;
  } else if (f == FileType::kQ4_K_S && !falcon && i < n / 8) {
    type = GgmlType::Q5_K;
  } else if (f == FileType::kQ4_0 && s.opt.has_imatrix && i < n / 8) {
    // llama.cpp guards the first ffn_down layers with an imatrix only, so that a plain
    // quantization stays what it always was.
    type = GgmlType::Q4_1;
  }
  return type;
}

// llama_tensor_get_type without the shape fallback.
GgmlType recipe_type(State& s, const TensorDesc& t, GgmlType type) {
  const std::string& name = t.name;
  const FileType f = s.opt.ftype;
  if (is_output_like(s, name)) return output_type(s, t, type);
  if (name == "token_embd.weight") return type;
  if (contains(name, "attn_v.weight")) return attn_v_type(s, type);
  if (contains(name, "ffn_down")) return ffn_down_type(s, type);
  if (contains(name, "attn_qkv.weight")) {
    if (f == FileType::kQ4_K_M) return GgmlType::Q5_K;
    if (f == FileType::kQ5_K_M) return GgmlType::Q6_K;
  }
  return type;
}

// A type whose block divides the row width: llama.cpp's K-quant fallbacks, then F16.
// NOTE: llama.cpp c392e509 checks only the K-quants and aborts for a legacy type that does
// not fit (e.g. Q4_0 on 172-wide rows); quanta falls back to F16 there too.
GgmlType fit_width(const TensorDesc& t, GgmlType type, std::string* note) {
  const int64_t width = t.ne[0];
  if (width % type_traits(type).block_size == 0) return type;
  GgmlType fallback = GgmlType::F16;
  switch (type) {
    case GgmlType::Q4_K: fallback = GgmlType::Q5_0; break;
    case GgmlType::Q5_K: fallback = GgmlType::Q5_1; break;
    case GgmlType::Q6_K: fallback = GgmlType::Q8_0; break;
    default: break;
  }
  if (width % type_traits(fallback).block_size != 0) fallback = GgmlType::F16;
  *note = strformat("width %lld is not a multiple of %lld (%s): %s",
                    static_cast<long long>(width),
                    static_cast<long long>(type_traits(type).block_size), type_name(type),
                    type_name(fallback));
  return fallback;
}

}  // namespace

bool use_more_bits(int32_t i_layer, int32_t n_layer) {
  return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

std::vector<size_t> llama_tensor_order(const std::vector<TensorDesc>& tensors) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int32_t la = layer_of(tensors[a].name);
    const int32_t lb = layer_of(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });
  return order;
}

bool is_quantizable(const TensorDesc& t) {
  const std::string& n = t.name;
  return n_dims(t.ne) >= 2 && ends_with(n, "weight") && !contains(n, "_norm.weight") &&
         !contains(n, "ffn_gate_inp.weight") && n != "position_embd.weight" &&
         n != "token_types.weight" && !contains(n, "ssm_conv1d.weight") &&
         !contains(n, "attn_rel_b.weight");
}

std::vector<TensorPlan> plan_types(const std::vector<TensorDesc>& tensors, const ModelShape& model,
                                   const RecipeOptions& options) {
  State s{model, options};
  for (const TensorDesc& t : tensors) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) {
      ++s.n_attention_wv;
    } else if (t.name == "output.weight") {
      s.has_output = true;
    }
  }
  const GgmlType base = file_type_info(options.ftype).base_type;
  const bool mixes = !options.pure && type_traits(base).is_quantized;
  std::vector<TensorPlan> plans(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorDesc& t = tensors[i];
    TensorPlan& p = plans[i];
    p.type = t.type;
    if (!is_quantizable(t)) continue;
    GgmlType type = mixes ? recipe_type(s, t, base) : base;
    if (options.keep_output_f16 && is_output_like(s, t.name)) type = GgmlType::F16;
    type = fit_width(t, type, &p.note);
    p.type = type;
    p.convert = type != t.type;
  }
  return plans;
}

}  // namespace quanta::compress
