// KeyTransform: fitting the per-head offset / scale / rotation of stored keys and applying
// it to keys (at store) and queries (before attention).
#include "kv/kv_transform.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"

namespace quanta::kv {

KeyTransformMode parse_key_transform(const std::string& name, const char* flag) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "none") return KeyTransformMode::kNone;
  if (lower == "offset") return KeyTransformMode::kOffset;
  if (lower == "scale") return KeyTransformMode::kScale;
  if (lower == "rotate") return KeyTransformMode::kRotate;
  fail("invalid value '%s' for %s (expected %s)", name.c_str(), flag, key_transform_choices());
}

const char* key_transform_name(KeyTransformMode mode) {
  switch (mode) {
    case KeyTransformMode::kNone:
      return "none";
    case KeyTransformMode::kOffset:
      return "offset";
    case KeyTransformMode::kScale:
      return "scale";
    case KeyTransformMode::kRotate:
      return "rotate";
  }
  return "?";
}

const char* key_transform_choices() {
  return "none, offset, scale or rotate";
}

const char* key_transform_help() {
  static const std::string help =
      std::string("exact transform of the keys a q8_0/q4_0 KV cache stores, fitted at load "
                  "from a short calibration pass: ") +
      key_transform_choices() + " (default " + key_transform_name(kDefaultKeyTransform) +
      "; f32/f16 caches ignore it)";
  return help.c_str();
}

void walsh_hadamard(float* x, int32_t n) {
  for (int32_t len = 1; len < n; len <<= 1) {
    for (int32_t i = 0; i < n; i += 2 * len) {
      for (int32_t j = i; j < i + len; ++j) {
        const float a = x[j];
        const float b = x[j + len];
        x[j] = a + b;
        x[j + len] = a - b;
      }
    }
  }
  const float norm = 1.0f / std::sqrt(static_cast<float>(n));
  for (int32_t i = 0; i < n; ++i) x[i] *= norm;
}

size_t KeyTransform::at(int32_t layer, int32_t kv_head) const {
  QUANTA_ASSERT(active() && layer >= 0 && layer < n_layer_ && kv_head >= 0 &&
                kv_head < n_kv_head_);
  return (static_cast<size_t>(layer) * n_kv_head_ + kv_head) * head_dim_;
}

// Channel j of (layer, kv_head): mean and RMS about it of the keys, RMS of the group's
// queries; s_j = sqrt(sigma_j / tau_j) (1 for kOffset), not yet normalized.
void KeyTransform::fit_head(const float* keys, const float* queries, int32_t n_tokens,
                            int32_t n_head, int32_t layer, int32_t kv_head) {
  const int64_t krow = static_cast<int64_t>(n_kv_head_) * head_dim_;
  const int64_t qrow = static_cast<int64_t>(n_head) * head_dim_;
  const int32_t group = n_head / n_kv_head_;
  const float* k = keys + layer * n_tokens * krow + static_cast<int64_t>(kv_head) * head_dim_;
  const float* q = queries + layer * n_tokens * qrow +
                   static_cast<int64_t>(kv_head) * group * head_dim_;
  float* m = offset_.data() + at(layer, kv_head);
  float* s = scale_.data() + at(layer, kv_head);
  for (int32_t j = 0; j < head_dim_; ++j) {
    double sum = 0.0, kk = 0.0, qq = 0.0;
    for (int32_t t = 0; t < n_tokens; ++t) sum += k[t * krow + j];
    m[j] = static_cast<float>(sum / n_tokens);
    for (int32_t t = 0; t < n_tokens; ++t) {
      const double d = k[t * krow + j] - static_cast<double>(m[j]);
      kk += d * d;
      for (int32_t g = 0; g < group; ++g) {
        const double x = q[t * qrow + g * head_dim_ + j];
        qq += x * x;
      }
    }
    const double sigma = std::sqrt(kk / n_tokens);
    const double tau = std::sqrt(qq / (static_cast<double>(n_tokens) * group));
    s[j] = mode_ == KeyTransformMode::kOffset
               ? 1.0f
               : static_cast<float>(std::sqrt(sigma / std::max(tau, 1e-30)));
  }
}

KeyTransform KeyTransform::fit(KeyTransformMode mode, const float* keys, const float* queries,
                               int32_t n_layer, int32_t n_tokens, int32_t n_head,
                               int32_t n_kv_head, int32_t head_dim) {
  KeyTransform t;
  if (mode == KeyTransformMode::kNone) return t;
  QUANTA_ASSERT(n_layer > 0 && n_tokens > 0 && n_kv_head > 0 && head_dim > 0 &&
                n_head % n_kv_head == 0);
  t.mode_ = mode;
  t.n_layer_ = n_layer;
  t.n_kv_head_ = n_kv_head;
  t.head_dim_ = head_dim;
  t.rotate_ = mode == KeyTransformMode::kRotate && (head_dim & (head_dim - 1)) == 0;
  const size_t n = static_cast<size_t>(n_layer) * n_kv_head * head_dim;
  t.offset_.resize(n);
  t.scale_.resize(n);
  // One normalization per layer, not per head: heads packed into one quant block keep the
  // balance of their steps against their queries.
  const size_t per_layer = static_cast<size_t>(n_kv_head) * head_dim;
  for (int32_t l = 0; l < n_layer; ++l) {
    for (int32_t h = 0; h < n_kv_head; ++h) t.fit_head(keys, queries, n_tokens, n_head, l, h);
    float* s = t.scale_.data() + l * per_layer;
    const float largest = *std::max_element(s, s + per_layer);
    for (size_t i = 0; i < per_layer; ++i) {
      s[i] = largest > 0.0f ? std::max(s[i] / largest, 1e-3f) : 1.0f;
    }
  }
  t.inv_scale_.resize(n);
  for (size_t i = 0; i < n; ++i) t.inv_scale_[i] = 1.0f / t.scale_[i];
  return t;
}

void KeyTransform::apply_key(int32_t layer, const float* k, float* out) const {
  const size_t base = at(layer, 0);
  const int64_t row = static_cast<int64_t>(n_kv_head_) * head_dim_;
  const float* m = offset_.data() + base;
  const float* inv = inv_scale_.data() + base;
  for (int64_t i = 0; i < row; ++i) out[i] = (k[i] - m[i]) * inv[i];
  if (rotate_) {
    for (int32_t h = 0; h < n_kv_head_; ++h) walsh_hadamard(out + h * head_dim_, head_dim_);
  }
}

void KeyTransform::apply_query(int32_t layer, float* q, int32_t n_head) const {
  QUANTA_ASSERT(n_head % n_kv_head_ == 0);
  const int32_t group = n_head / n_kv_head_;
  for (int32_t h = 0; h < n_head; ++h) {
    const float* s = scale_.data() + at(layer, h / group);
    float* qh = q + static_cast<int64_t>(h) * head_dim_;
    for (int32_t j = 0; j < head_dim_; ++j) qh[j] *= s[j];
    if (rotate_) walsh_hadamard(qh, head_dim_);
  }
}

}  // namespace quanta::kv
