// KeyTransform: fitting the per-head offset / scale / rotation of stored keys and applying
// it to keys (at store) and queries (before attention).
#include "kv/kv_transform.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace quanta::kv {

KeyTransformMode parse_key_transform(const std::string& name, const char* flag) {
  const std::string lower = ascii_lower(name);
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
      std::string(
          "exact transform of the keys a q8_0/q4_0 KV cache stores, fitted at load "
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

namespace {

using Matrix = std::vector<double>;  // n x n, row-major

// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: a = V diag(w) V^T
// (the columns of V the eigenvectors).
void symmetric_eigen(Matrix a, int n, std::vector<double>& w, Matrix& v) {
  v.assign(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) v[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 60; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (int i = 0; i < n; ++i) {
      diag += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; ++j) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-26 * diag) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0.0) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
        const double t =
            (theta >= 0.0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q of a and v
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q of a
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  w.resize(n);
  for (int i = 0; i < n; ++i) w[i] = a[i * n + i];
}

// V diag(w^power) V^T (eigenvalues clamped to a tiny positive value).
Matrix eigen_power(const std::vector<double>& w, const Matrix& v, int n, double power) {
  Matrix out(static_cast<size_t>(n) * n, 0.0);
  for (int k = 0; k < n; ++k) {
    const double f = std::pow(std::max(w[k], 1e-300), power);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) out[i * n + j] += v[i * n + k] * f * v[j * n + k];
    }
  }
  return out;
}

Matrix multiply(const Matrix& a, const Matrix& b, int n) {
  Matrix c(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < n; ++k) {
      for (int j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
    }
  }
  return c;
}

// Adds `rel` of the mean eigenvalue (trace / n) to the diagonal.
void regularize(Matrix& a, int n, double rel) {
  double trace = 0.0;
  for (int i = 0; i < n; ++i) trace += a[i * n + i];
  for (int i = 0; i < n; ++i) a[i * n + i] += rel * std::max(trace, 1e-30) / n;
}

}  // namespace

size_t KeyTransform::at(int32_t layer, int32_t kv_head) const {
  QUANTA_ASSERT(active() && layer >= 0 && layer < n_layer_ && kv_head >= 0 && kv_head < n_kv_head_);
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
  const float* q =
      queries + layer * n_tokens * qrow + static_cast<int64_t>(kv_head) * group * head_dim_;
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

// A = M^1/2 (and A^-1) for M = C_k^-1/2 (C_k^1/2 C_q C_k^1/2)^1/2 C_k^-1/2, which solves
// M C_k M = C_q; C_k, C_q from the head's centred keys and its group's queries.
void KeyTransform::fit_matrix(const float* keys, const float* queries, int32_t n_tokens,
                              int32_t n_head, int32_t layer, int32_t kv_head) {
  const int d = head_dim_;
  const int64_t krow = static_cast<int64_t>(n_kv_head_) * d;
  const int64_t qrow = static_cast<int64_t>(n_head) * d;
  const int32_t group = n_head / n_kv_head_;
  const float* k = keys + layer * n_tokens * krow + static_cast<int64_t>(kv_head) * d;
  const float* q = queries + layer * n_tokens * qrow + static_cast<int64_t>(kv_head) * group * d;
  const float* m = offset_.data() + at(layer, kv_head);
  Matrix ck(static_cast<size_t>(d) * d, 0.0), cq(ck.size(), 0.0);
  for (int32_t t = 0; t < n_tokens; ++t) {
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) {
        ck[i * d + j] += (k[t * krow + i] - m[i]) * static_cast<double>(k[t * krow + j] - m[j]);
      }
    }
    for (int32_t g = 0; g < group; ++g) {
      const float* qg = q + t * qrow + g * d;
      for (int i = 0; i < d; ++i) {
        for (int j = 0; j < d; ++j) cq[i * d + j] += qg[i] * static_cast<double>(qg[j]);
      }
    }
  }
  regularize(ck, d, 1e-3);
  regularize(cq, d, 1e-3);
  std::vector<double> w;
  Matrix v;
  symmetric_eigen(ck, d, w, v);
  const Matrix ck_half = eigen_power(w, v, d, 0.5), ck_inv_half = eigen_power(w, v, d, -0.5);
  symmetric_eigen(multiply(multiply(ck_half, cq, d), ck_half, d), d, w, v);
  const Matrix mean = multiply(multiply(ck_inv_half, eigen_power(w, v, d, 0.5), d), ck_inv_half, d);
  symmetric_eigen(mean, d, w, v);
  const Matrix a = eigen_power(w, v, d, 0.5), a_inv = eigen_power(w, v, d, -0.5);
  const size_t base = at(layer, kv_head) * d;
  for (size_t i = 0; i < a.size(); ++i) {
    key_matrix_[base + i] = static_cast<float>(a[i]);
    query_matrix_[base + i] = static_cast<float>(a_inv[i]);
  }
}

// One normalization per layer, not per head: heads packed into one quant block keep the
// balance of their steps against their queries.
void KeyTransform::normalize_layer(int32_t layer) {
  const size_t per_layer = static_cast<size_t>(n_kv_head_) * head_dim_;
  if (rotate_matrix_) {
    float* a = key_matrix_.data() + layer * per_layer * head_dim_;
    float* a_inv = query_matrix_.data() + layer * per_layer * head_dim_;
    float largest = 0.0f;
    for (size_t i = 0; i < per_layer * head_dim_; ++i) largest = std::max(largest, std::fabs(a[i]));
    QUANTA_ASSERT(largest > 0.0f);
    for (size_t i = 0; i < per_layer * head_dim_; ++i) {
      a[i] /= largest;
      a_inv[i] *= largest;
    }
    return;
  }
  float* s = scale_.data() + layer * per_layer;
  const float largest = *std::max_element(s, s + per_layer);
  for (size_t i = 0; i < per_layer; ++i) {
    s[i] = largest > 0.0f ? std::max(s[i] / largest, 1e-3f) : 1.0f;
  }
}

KeyTransform KeyTransform::fit(KeyTransformMode mode, const float* keys, const float* queries,
                               int32_t n_layer, int32_t n_tokens, int32_t n_head, int32_t n_kv_head,
                               int32_t head_dim) {
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
  t.rotate_matrix_ = mode == KeyTransformMode::kRotate && head_dim <= kMaxMatrixHeadDim;
  t.offset_.resize(n);
  t.scale_.resize(n);
  if (t.rotate_matrix_) {
    t.key_matrix_.resize(n * head_dim);
    t.query_matrix_.resize(n * head_dim);
  }
  for (int32_t l = 0; l < n_layer; ++l) {
    for (int32_t h = 0; h < n_kv_head; ++h) {
      t.fit_head(keys, queries, n_tokens, n_head, l, h);
      if (t.rotate_matrix_) t.fit_matrix(keys, queries, n_tokens, n_head, l, h);
    }
    t.normalize_layer(l);
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
  if (rotate_matrix_) {
    const int32_t d = head_dim_;
    for (int32_t h = 0; h < n_kv_head_; ++h) {
      const float* a = key_matrix_.data() + at(layer, h) * d;
      const float* kh = k + h * d;
      const float* mh = m + h * d;
      for (int32_t i = 0; i < d; ++i) {
        float acc = 0.0f;
        for (int32_t j = 0; j < d; ++j) acc += a[i * d + j] * (kh[j] - mh[j]);
        out[h * d + i] = acc;
      }
    }
  } else {
    for (int64_t i = 0; i < row; ++i) out[i] = (k[i] - m[i]) * inv[i];
  }
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
    if (rotate_matrix_) {
      const int32_t d = head_dim_;
      const float* a_inv = query_matrix_.data() + at(layer, h / group) * d;
      float tmp[kMaxMatrixHeadDim];
      for (int32_t i = 0; i < d; ++i) {
        float acc = 0.0f;
        for (int32_t j = 0; j < d; ++j) acc += a_inv[i * d + j] * qh[j];
        tmp[i] = acc;
      }
      std::copy(tmp, tmp + d, qh);
    } else {
      for (int32_t j = 0; j < head_dim_; ++j) qh[j] *= s[j];
    }
    if (rotate_) walsh_hadamard(qh, head_dim_);
  }
}

}  // namespace quanta::kv
