// KeyTransform: an exact change of basis for the keys of a quantized KV cache. Per layer and
// KV head, keys are stored as k' = H A (k - m) and each query of the head's group is used as
// q' = H A^-T q, so q'.k' = q.k - q.m: every score of one query shifts by the same constant,
// which softmax ignores. m is a per-channel offset, A = diag(1 / s) a per-channel scale (or,
// for heads of at most kMaxMatrixHeadDim values, a full symmetric matrix) and H the
// orthonormal Walsh-Hadamard matrix (or the identity), fitted once per context from
// calibration keys and queries (models/kv_calibration.h). Values are stored as computed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quanta::kv {

// Which parts of the transform a context fits (--kv-transform).
enum class KeyTransformMode {
  kNone,    // keys stored as computed
  kOffset,  // k - m
  kScale,   // (k - m) / s
  kRotate,  // H A (k - m), H over head_dim when it is a power of two; A the full matrix
            // when head_dim <= kMaxMatrixHeadDim, else diag(1 / s)
};

// Largest head size whose rotate transform uses a full matrix A (fitting it costs three
// d x d symmetric eigen-decompositions per KV head, applying it d^2 per head and token).
constexpr int32_t kMaxMatrixHeadDim = 32;

// What a quantized cache uses unless told otherwise (ContextOptions, the --kv-transform flags).
constexpr KeyTransformMode kDefaultKeyTransform = KeyTransformMode::kRotate;

// "none", "offset", "scale" or "rotate" (case-insensitive); throws quanta::Error naming
// `flag` otherwise.
KeyTransformMode parse_key_transform(const std::string& name, const char* flag = "--kv-transform");
const char* key_transform_name(KeyTransformMode mode);
// For help texts: "none, offset, scale or rotate".
const char* key_transform_choices();
// The --kv-transform help line (choices, default, what it does); a static string.
const char* key_transform_help();

class KeyTransform {
 public:
  KeyTransform() = default;  // the identity: active() is false

  // Fits the transform `mode` asks for from calibration rows: `keys` [n_layer, n_tokens,
  // n_kv_head, head_dim] (post-RoPE, as the cache would store them) and `queries` [n_layer,
  // n_tokens, n_head, head_dim] (post-RoPE). m = the keys' mean; s_j = sqrt(sigma_j / tau_j)
  // (sigma: RMS of k - m, tau: RMS of the group's queries, per channel j), scaled to a
  // largest value of 1 and clamped to >= 1e-3: it balances the key's quantization step
  // against the query weight it meets. kRotate with head_dim <= kMaxMatrixHeadDim: A = M^1/2
  // with M the matrix geometric mean of C_k^-1 and C_q (C_k the covariance of k - m, C_q the
  // second moment of the group's queries, each plus 1e-3 of its mean eigenvalue), i.e. the
  // M with M C_k M = C_q, the full-matrix optimum of the same error model; scaled per layer
  // to a largest entry of 1. kNone gives the identity.
  static KeyTransform fit(KeyTransformMode mode, const float* keys, const float* queries,
                          int32_t n_layer, int32_t n_tokens, int32_t n_head, int32_t n_kv_head,
                          int32_t head_dim);

  bool active() const { return mode_ != KeyTransformMode::kNone; }
  KeyTransformMode mode() const { return mode_; }
  int32_t head_dim() const { return head_dim_; }
  // m and the diagonal s of (layer, kv_head): head_dim values each (s is not used where
  // kRotate fits the full matrix).
  const float* offset(int32_t layer, int32_t kv_head) const {
    return offset_.data() + at(layer, kv_head);
  }
  const float* scale(int32_t layer, int32_t kv_head) const {
    return scale_.data() + at(layer, kv_head);
  }

  // out[n_kv_head * head_dim] = the stored form of one token's keys k (same shape).
  void apply_key(int32_t layer, const float* k, float* out) const;
  // One token's queries [n_head * head_dim] (query head h reads KV head h / (n_head /
  // n_kv_head)), replaced in place by their transformed form.
  void apply_query(int32_t layer, float* q, int32_t n_head) const;

 private:
  size_t at(int32_t layer, int32_t kv_head) const;
  void fit_head(const float* keys, const float* queries, int32_t n_tokens, int32_t n_head,
                int32_t layer, int32_t kv_head);
  void fit_matrix(const float* keys, const float* queries, int32_t n_tokens, int32_t n_head,
                  int32_t layer, int32_t kv_head);
  void normalize_layer(int32_t layer);

  KeyTransformMode mode_ = KeyTransformMode::kNone;
  int32_t n_layer_ = 0;
  int32_t n_kv_head_ = 0;
  int32_t head_dim_ = 0;
  bool rotate_ = false;
  std::vector<float> offset_;     // [n_layer, n_kv_head, head_dim] m
  std::vector<float> scale_;      // [n_layer, n_kv_head, head_dim] s
  std::vector<float> inv_scale_;  // 1 / s
  // Full-matrix mode (rotate_matrix_): A and A^-1 (symmetric), [n_layer, n_kv_head, d, d].
  bool rotate_matrix_ = false;
  std::vector<float> key_matrix_;
  std::vector<float> query_matrix_;
};

// In-place orthonormal fast Walsh-Hadamard transform of n values (n a power of two); its own
// inverse.
void walsh_hadamard(float* x, int32_t n);

}  // namespace quanta::kv
