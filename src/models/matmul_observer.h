// An optional hook into the forward pass: sees the activations each weight matrix is about
// to multiply (calibration: the importance matrix of `quanta imatrix`). Off by default; the
// forward pass then only tests a null pointer.
#pragma once

#include <cstdint>
#include <string>

namespace quanta::models {

// The matrix a matmul multiplies, by its llama.cpp tensor name "blk.<layer>.<part>.weight"
// (kOutput: "output.weight", layer -1).
enum class MatmulWeight : uint8_t {
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnOutput,
  kFfnGate,
  kFfnUp,
  kFfnDown,
  kOutput,
};

inline const char* matmul_weight_part(MatmulWeight w) {
  switch (w) {
    case MatmulWeight::kAttnQ: return "attn_q";
    case MatmulWeight::kAttnK: return "attn_k";
    case MatmulWeight::kAttnV: return "attn_v";
    case MatmulWeight::kAttnOutput: return "attn_output";
    case MatmulWeight::kFfnGate: return "ffn_gate";
    case MatmulWeight::kFfnUp: return "ffn_up";
    case MatmulWeight::kFfnDown: return "ffn_down";
    case MatmulWeight::kOutput: return "output";
  }
  return "?";
}

// The GGUF tensor name of a matmul weight ("blk.3.ffn_down.weight", "output.weight").
inline std::string matmul_weight_name(int32_t layer, MatmulWeight w) {
  if (w == MatmulWeight::kOutput) return "output.weight";
  return "blk." + std::to_string(layer) + "." + matmul_weight_part(w) + ".weight";
}

class MatmulObserver {
 public:
  virtual ~MatmulObserver() = default;
  // Called right before weight `w` of `layer` multiplies x: [n_rows, n_cols] activations,
  // rows contiguous (one per token; for kOutput, one per token that wants logits).
  virtual void observe(int32_t layer, MatmulWeight w, const float* x, int32_t n_rows,
                       int64_t n_cols) = 0;
  // Called with `layer`'s queries after RoPE, [n_rows, n_head * head_dim] (KV calibration).
  virtual void observe_queries(int32_t /*layer*/, const float* /*q*/, int32_t /*n_rows*/,
                               int64_t /*n_cols*/) {}
};

}  // namespace quanta::models
