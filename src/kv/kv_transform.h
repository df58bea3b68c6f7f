// KeyTransform: an exact change of basis for the keys and values of a quantized KV cache. Per
// layer and KV head, keys are stored as k' = H A (k - m) and each query of the head's group is
// used as q' = H A^-T q, so q'.k' = q.k - q.m: every score of one query shifts by the same
// constant, which softmax ignores. Values are stored as v' = H B (v - mu) and each attention
// output o' (a convex combination of stored values) is restored as o = B^-1 H o' + mu. m, mu are
// per-channel offsets, A, B diag(1 / s) per-channel scales (or, for heads of at most
// kMaxMatrixHeadDim values, full matrices) and H the orthonormal Walsh-Hadamard matrix (or the
// identity), fitted once per context from calibration keys, queries and values
// (models/kv_calibration.h). Also the Q4_0 rounding of stored rows under the queries' (or
// outputs') metric (metric_rounding.cc).
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

// Full-matrix transforms of heads of at most kMaxRotationSearchDim values also pick, per head
// and side, the best of kRotationCandidates fixed orthogonal matrices R (the identity first) to
// put in front of A: the one whose stored rows have the smallest largest value on average.
constexpr int32_t kRotationCandidates = 64;
constexpr int32_t kMaxRotationSearchDim = 16;

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

// The exponent t of the full-matrix key transform's M = C_k^-1 #_t C_q (the weighted matrix
// geometric mean; KeyTransform::fit). 1/2, the optimum for rounding noise that is isotropic
// in the stored basis (Q8_0); kShapedKeyMeanPower for a cache that rounds keys under the
// query metric (Q4_0, quantize_q4_0_under_metric), which then takes on part of the queries'
// anisotropy itself (with perfect shaping the optimum would be t = 0, whitened keys).
// Measured on stories260K Q4_0 KV, KL against F32 KV for t = 0 / 0.1 / 0.2 / 0.3 / 0.5:
// 0.032 / 0.028 / 0.022 / 0.022 / 0.025.
constexpr double kKeyMeanPower = 0.5;
constexpr double kShapedKeyMeanPower = 0.2;

// Optional calibration inputs of KeyTransform::fit beyond keys and queries.
struct CalibrationExtras {
  // Values, for the value half of the transform (both or neither of values and metric).
  const float* values = nullptr;  // [n_layer, n_tokens, n_kv_head, head_dim], as computed
  // [n_layer, n_kv_head, head_dim, head_dim]: the symmetric metric an error in a KV head's
  // values is measured in (the caller's choice: the output projection's columns of the
  // group's query heads, W^T W, weighted by how concentrated their attention is).
  const float* metric = nullptr;
  // [n_layer, n_head]: how much each query head's score errors weigh (null: 1 each).
  const float* query_weight = nullptr;
  double key_mean_power = kKeyMeanPower;  // t of the keys' matrix mean (kShapedKeyMeanPower)
  // Consecutive KV heads fitted as one joint head of joint_heads * head_dim values (a packed
  // cache's row_heads: the heads that share each quant block); 1: one transform per head.
  int32_t joint_heads = 1;
};

class KeyTransform {
 public:
  KeyTransform() = default;  // the identity: active() is false

  // Fits the transform `mode` asks for from calibration rows: `keys` [n_layer, n_tokens,
  // n_kv_head, head_dim] (post-RoPE, as the cache would store them) and `queries` [n_layer,
  // n_tokens, n_head, head_dim] (post-RoPE). m = the keys' mean; s_j = sqrt(sigma_j / tau_j)
  // (sigma: RMS of k - m, tau: RMS of the group's queries, per channel j), scaled to a
  // largest value of 1 and clamped to >= 1e-3: it balances the key's quantization step
  // against the query weight it meets. kRotate with head_dim <= kMaxMatrixHeadDim: A = R M^1/2
  // with M = C_k^-1 #_t C_q the weighted matrix geometric mean (C_k the covariance of k - m,
  // C_q the second moment of the group's queries, weighted by extras->query_weight, each plus
  // 1e-3 of its mean eigenvalue; t = extras->key_mean_power, 1/2 by default: the M with
  // M C_k M = C_q, the full-matrix optimum of the same error model) and R the best of
  // kRotationCandidates orthogonal matrices (head_dim <= kMaxRotationSearchDim; else I). Heads
  // that share a 32-value quant block (head_dim < 32) then get one positive factor each (c_h A,
  // A^-T / c_h) minimizing the modelled score error when they share one step; scaled per layer
  // to a largest entry of 1. With extras->values, the values get the same form (their mean,
  // their covariance against extras->metric in place of C_q, t = 1/2), undone on the attention
  // output.
  // With extras->joint_heads = J > 1, every J consecutive KV heads are one joint head of J *
  // head_dim values: the fit above runs on it with each query (and value metric) placed in its
  // head's slot of the joint head and zeros elsewhere (block-diagonal metrics), so the transform
  // mixes the heads that share a quant block; queries then become J * head_dim wide
  // (apply_query's wide form) and attention runs over joint heads (head_dim() values).
  // kNone gives the identity.
  static KeyTransform fit(KeyTransformMode mode, const float* keys, const float* queries,
                          int32_t n_layer, int32_t n_tokens, int32_t n_head, int32_t n_kv_head,
                          int32_t head_dim, const CalibrationExtras* extras = nullptr);

  bool active() const { return mode_ != KeyTransformMode::kNone; }
  // Whether values are transformed too (apply_value, restore_output).
  bool has_values() const { return has_values_; }
  KeyTransformMode mode() const { return mode_; }
  // Values per transformed (stored, attended) head: joint_heads() * the model's head size.
  int32_t head_dim() const { return head_dim_; }
  // The model's KV heads per transformed head (CalibrationExtras::joint_heads).
  int32_t joint_heads() const { return joint_heads_; }
  // m and the diagonal s of (layer, kv_head): head_dim values each (s is not used where
  // kRotate fits the full matrix).
  const float* offset(int32_t layer, int32_t kv_head) const {
    return key_.offset.data() + at(layer, kv_head);
  }
  const float* scale(int32_t layer, int32_t kv_head) const {
    return key_.scale.data() + at(layer, kv_head);
  }

  // The metric an error in a stored key (or value) of (layer, kv_head) is measured in, in the
  // stored basis: head_dim x head_dim, symmetric (the group's query second moment, or the
  // value metric, carried through the transform); null unless full matrices were fitted.
  const float* key_metric(int32_t layer, int32_t kv_head) const {
    return key_.metric.empty() ? nullptr : key_.metric.data() + at(layer, kv_head) * head_dim_;
  }
  const float* value_metric(int32_t layer, int32_t kv_head) const {
    return value_.metric.empty() ? nullptr
                                 : value_.metric.data() + at(layer, kv_head) * head_dim_;
  }
  // The lower-triangular Cholesky factor L (L L^T = that metric plus a 1e-6 relative ridge),
  // row-major head_dim x head_dim: what quantize_q4_0_under_metric's beam search needs.
  const float* key_factor(int32_t layer, int32_t kv_head) const {
    return key_.factor.empty() ? nullptr : key_.factor.data() + at(layer, kv_head) * head_dim_;
  }
  const float* value_factor(int32_t layer, int32_t kv_head) const {
    return value_.factor.empty() ? nullptr
                                 : value_.factor.data() + at(layer, kv_head) * head_dim_;
  }

  // out[n_kv_head * head_dim] = the stored form of one token's keys k (same shape).
  void apply_key(int32_t layer, const float* k, float* out) const;
  // One token's queries q [n_head * the model's head size] (query head h reads KV head
  // h / (n_head / n_kv_head)) -> out[n_head * head_dim()], their transformed form; with joint
  // heads, query head h's values are first placed in its KV head's slot of the joint head
  // (zeros elsewhere). out may be q when joint_heads() == 1 (in place).
  void apply_query(int32_t layer, const float* q, float* out, int32_t n_head) const;
  // out[n_kv_head * head_dim] = the stored form of one token's values (has_values() only).
  void apply_value(int32_t layer, const float* v, float* out) const;
  // One token's attention output o [n_head * head_dim()], computed from stored values, turned
  // into what the untransformed values give (softmax weights sum to 1, so the mean comes back
  // exactly; o is used as scratch), each query head's own slot written to
  // out [n_head * head_dim() / joint_heads()]. Without values the slots are only copied. out
  // may be o when joint_heads() == 1 (in place).
  void restore_output(int32_t layer, float* o, float* out, int32_t n_head) const;

 private:
  // One side (keys or values) per (layer, kv_head): stored x' = H A (x - m).
  struct Side {
    std::vector<float> offset;      // [n_layer, n_kv_head, head_dim] m
    std::vector<float> scale;       // [n_layer, n_kv_head, head_dim] s (A = diag(1 / s))
    std::vector<float> matrix;      // [n_layer, n_kv_head, d, d] A (rotate_matrix_ only)
    std::vector<float> inv_matrix;  // keys: A^-T (for queries), values: A^-1 (for outputs)
    std::vector<float> matrix_t;      // matrix and inv_matrix with each head's d x d
    std::vector<float> inv_matrix_t;  // transposed (AVX2 products), set once fitted
    std::vector<float> metric;      // [n_layer, n_kv_head, d, d] H A^-T W A^-1 H (full matrices)
    std::vector<float> factor;      // [n_layer, n_kv_head, d, d] its Cholesky factor L
  };
  // The fit of a joint transform (CalibrationExtras::joint_heads > 1) from per-head inputs.
  static KeyTransform fit_joint(KeyTransformMode mode, const float* keys, const float* queries,
                                int32_t n_layer, int32_t n_tokens, int32_t n_head,
                                int32_t n_kv_head, int32_t head_dim,
                                const CalibrationExtras& extras);

  size_t at(int32_t layer, int32_t kv_head) const;
  void init_side(Side& side) const;
  void fit_side(Side& side, const float* x, const std::vector<double>& metric, double power,
                int32_t n_tokens, int32_t layer, int32_t kv_head) const;
  void choose_rotation(Side& side, const float* x, int32_t n_tokens, int32_t layer,
                       int32_t kv_head) const;
  void balance_heads(Side& side, const float* x, const std::vector<double>& metrics,
                     int32_t n_tokens, int32_t layer) const;
  void normalize_layer(Side& side, int32_t layer) const;
  void set_metric(Side& side, const std::vector<double>& w, int32_t layer) const;
  // out = H A (x - m) for one head (x, out: head_dim values).
  void forward(const Side& side, int32_t layer, int32_t kv_head, const float* x, float* out) const;
  // apply_query / restore_output in place on rows of head_dim_ values (wide rows when joint).
  void queries_in_place(int32_t layer, float* q, int32_t n_head) const;
  void outputs_in_place(int32_t layer, float* o, int32_t n_head) const;
  // y = inv_matrix y (or s * y) in place: A^-T for queries (then H), A^-1 for outputs (after
  // H; then + m).
  void inverse(const Side& side, int32_t layer, int32_t kv_head, float* y) const;

  KeyTransformMode mode_ = KeyTransformMode::kNone;
  int32_t n_layer_ = 0;
  int32_t n_kv_head_ = 0;
  int32_t head_dim_ = 0;
  int32_t joint_heads_ = 1;
  bool rotate_ = false;         // H over head_dim
  bool rotate_matrix_ = false;  // full matrices A
  bool has_values_ = false;
  Side key_;
  Side value_;
};

// Q4_0 rounding of stored keys under the queries' metric (KvCache::store, Q4_0 caches with a
// full-matrix transform): per 32-value block, the levels and scale that make the error e
// small as e^T S e (S the head's key_metric) rather than as |e|^2. Starts from ggml's scale
// search, tries 2 * kScaleCandidates more scales (steps of kScaleStep) and the least-squares
// scale of the best levels; levels per head by exhaustive floor/ceil choice (head_dim <=
// kExhaustiveDim; with `factors`, larger heads by a nearest-plane search keeping the
// kBeamWidth best partial choices, Babai's rounding with a beam, as GPTQ rounds weights
// under a Hessian) and single-level local search. Never worse in the metric than the plain
// search's nearest rounding; blocks spanning parts of heads are left as the plain search
// made them. The AVX2 kernels (kernels/x86_avx2/kv_rounding_avx2.h; unless
// QUANTA_FORCE_ISA=ref) give the same bytes, about 4x faster: the beam searches of four
// scales interleaved, a beam's 8 choices in one vector.
constexpr int32_t kQ4Block = 32;
constexpr int32_t kExhaustiveDim = 8;
constexpr int32_t kScaleCandidates = 3;
constexpr float kScaleStep = 0.04f;
constexpr int32_t kBeamWidth = 8;
// x: n values (whole blocks; consecutive heads of head_dim values), dst: n / 32 block_q4_0,
// metrics: the row's heads' metrics, head_dim x head_dim each, consecutive; factors (or null):
// their Cholesky factors (metric_factor, KeyTransform::key_factor), same layout.
void quantize_q4_0_under_metric(const float* x, void* dst, int64_t n, int32_t head_dim,
                                const float* metrics, const float* factors = nullptr);

// Lower-triangular l (n x n, row-major) with l l^T = s + 1e-6 (tr s / n) I, for s symmetric
// positive semi-definite (a metric): the factor quantize_q4_0_under_metric's search takes.
void metric_factor(const float* s, int32_t n, float* l);

// In-place orthonormal fast Walsh-Hadamard transform of n values (n a power of two); its own
// inverse.
void walsh_hadamard(float* x, int32_t n);

}  // namespace quanta::kv
