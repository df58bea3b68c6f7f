// KeyTransform: fitting the per-head (or joint-head) offset / scale / rotation of stored keys
// and values and applying it to keys and values (at store), queries (before attention) and
// attention outputs (after). The Q4_0 rounding under a metric is in metric_rounding.cc.
#include "kv/kv_transform.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/kernel_table.h"
#if defined(__x86_64__)
#include "kernels/x86_avx2/kv_rounding_avx2.h"
#endif
#include "quant/blocks.h"
#include "quant/weighted.h"

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

// The AVX2 code (kernels::avx2_active(); the same bits) runs walsh_hadamard and the products
// of a fitted transform (fitting uses the scalar loops before the transposes exist).
#if defined(__x86_64__)
static_assert(kMaxMatrixHeadDim <= kernels::avx2::kMaxTransposedProductDim);
#endif

void walsh_hadamard(float* x, int32_t n) {
#if defined(__x86_64__)
  if (n % 8 == 0 && kernels::avx2_active()) return kernels::avx2::walsh_hadamard(x, n);
#endif
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

// Each n x n matrix of `m` (consecutive) transposed into `out`.
void transpose_heads(const std::vector<float>& m, int32_t n, std::vector<float>& out) {
  out.resize(m.size());
  const size_t nn = static_cast<size_t>(n) * n;
  for (size_t base = 0; base < m.size(); base += nn) {
    for (int32_t i = 0; i < n; ++i) {
      for (int32_t j = 0; j < n; ++j) out[base + j * n + i] = m[base + i * n + j];
    }
  }
}

}  // namespace

size_t KeyTransform::at(int32_t layer, int32_t kv_head) const {
  QUANTA_ASSERT(active() && layer >= 0 && layer < n_layer_ && kv_head >= 0 && kv_head < n_kv_head_);
  return (static_cast<size_t>(layer) * n_kv_head_ + kv_head) * head_dim_;
}

void KeyTransform::init_side(Side& side) const {
  const size_t n = static_cast<size_t>(n_layer_) * n_kv_head_ * head_dim_;
  side.offset.assign(n, 0.0f);
  side.scale.assign(n, 1.0f);
  if (rotate_matrix_) {
    side.matrix.assign(n * head_dim_, 0.0f);
    side.inv_matrix.assign(n * head_dim_, 0.0f);
  }
}

// One head of one side: x (token t at x + t * n_kv_head * head_dim) gives m, s_j =
// sqrt(sigma_j / tau_j) (sigma: RMS of x_j - m_j, tau_j = sqrt(w_jj); 1 for kOffset) and,
// for full matrices, A = M^1/2 (and A^-1) for M = C^-1/2 (C^1/2 W C^1/2)^t C^-1/2 (t =
// `power`), the weighted matrix geometric mean C^-1 #_t W: t = 1/2 solves M C M = W (C the
// covariance of x - m, W the metric `w`, d x d), t = 0 whitens x.
void KeyTransform::fit_side(Side& side, const float* x, const std::vector<double>& w,
                            double power, int32_t n_tokens, int32_t layer,
                            int32_t kv_head) const {
  const int d = head_dim_;
  const int64_t stride = static_cast<int64_t>(n_kv_head_) * d;
  const size_t base = at(layer, kv_head);
  float* m = side.offset.data() + base;
  float* s = side.scale.data() + base;
  const double* wh = w.data() + static_cast<size_t>(kv_head) * d * d;
  for (int j = 0; j < d; ++j) {
    double sum = 0.0, kk = 0.0;
    for (int32_t t = 0; t < n_tokens; ++t) sum += x[t * stride + j];
    m[j] = static_cast<float>(sum / n_tokens);
    for (int32_t t = 0; t < n_tokens; ++t) {
      const double dx = x[t * stride + j] - static_cast<double>(m[j]);
      kk += dx * dx;
    }
    const double sigma = std::sqrt(kk / n_tokens);
    const double tau = std::sqrt(std::max(wh[j * d + j], 0.0));
    s[j] = mode_ == KeyTransformMode::kOffset
               ? 1.0f
               : static_cast<float>(std::sqrt(sigma / std::max(tau, 1e-30)));
  }
  if (!rotate_matrix_) return;
  Matrix c(static_cast<size_t>(d) * d, 0.0), metric(wh, wh + static_cast<size_t>(d) * d);
  for (int32_t t = 0; t < n_tokens; ++t) {
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) {
        c[i * d + j] += (x[t * stride + i] - m[i]) * static_cast<double>(x[t * stride + j] - m[j]);
      }
    }
  }
  for (double& v : c) v /= n_tokens;
  regularize(c, d, 1e-3);
  regularize(metric, d, 1e-3);
  std::vector<double> e;
  Matrix v;
  symmetric_eigen(c, d, e, v);
  const Matrix c_half = eigen_power(e, v, d, 0.5), c_inv_half = eigen_power(e, v, d, -0.5);
  symmetric_eigen(multiply(multiply(c_half, metric, d), c_half, d), d, e, v);
  const Matrix mean = multiply(multiply(c_inv_half, eigen_power(e, v, d, power), d), c_inv_half, d);
  symmetric_eigen(mean, d, e, v);
  const Matrix a = eigen_power(e, v, d, 0.5), a_inv = eigen_power(e, v, d, -0.5);
  for (size_t i = 0; i < a.size(); ++i) {
    side.matrix[base * d + i] = static_cast<float>(a[i]);
    side.inv_matrix[base * d + i] = static_cast<float>(a_inv[i]);
  }
}

// Candidate orthogonal matrices R (d x d, row-major): R_0 = I, then Gram-Schmidt of
// pseudo-random Gaussian matrices from a fixed generator (the same set for every head and fit).
static std::vector<Matrix> rotation_candidates(int32_t d, int32_t count) {
  std::vector<Matrix> out;
  Matrix eye(static_cast<size_t>(d) * d, 0.0);
  for (int32_t i = 0; i < d; ++i) eye[i * d + i] = 1.0;
  out.push_back(eye);
  std::mt19937_64 rng(0x5eed);
  auto uniform = [&]() { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  for (int32_t c = 1; c < count; ++c) {
    Matrix r(static_cast<size_t>(d) * d);
    for (double& v : r) v = std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform());
    for (int32_t i = 0; i < d; ++i) {  // rows orthonormal
      for (int32_t p = 0; p < i; ++p) {
        double dot = 0.0;
        for (int32_t j = 0; j < d; ++j) dot += r[i * d + j] * r[p * d + j];
        for (int32_t j = 0; j < d; ++j) r[i * d + j] -= dot * r[p * d + j];
      }
      double norm = 0.0;
      for (int32_t j = 0; j < d; ++j) norm += r[i * d + j] * r[i * d + j];
      for (int32_t j = 0; j < d; ++j) r[i * d + j] /= std::sqrt(norm);
    }
    out.push_back(r);
  }
  return out;
}

// Full matrices: A -> R A with the candidate R that gives the smallest mean over tokens of
// the head's largest squared stored value (the quantization step it asks for), after H.
// Exact as before: keys' queries use (R A)^-T = R A^-1, values' outputs (R A)^-1 = A^-1 R^T.
void KeyTransform::choose_rotation(Side& side, const float* x, int32_t n_tokens, int32_t layer,
                                   int32_t kv_head) const {
  const int32_t d = head_dim_;
  const int64_t stride = static_cast<int64_t>(n_kv_head_) * d;
  const size_t base = at(layer, kv_head);
  const float* m = side.offset.data() + base;
  float* a = side.matrix.data() + base * d;
  float* b = side.inv_matrix.data() + base * d;
  std::vector<double> y(static_cast<size_t>(n_tokens) * d);  // A (x - m)
  for (int32_t t = 0; t < n_tokens; ++t) {
    for (int32_t i = 0; i < d; ++i) {
      double acc = 0.0;
      for (int32_t j = 0; j < d; ++j) acc += a[i * d + j] * (x[t * stride + j] - static_cast<double>(m[j]));
      y[t * d + i] = acc;
    }
  }
  const std::vector<Matrix> cands = rotation_candidates(d, kRotationCandidates);
  double best = 0.0;
  size_t pick = 0;
  std::vector<float> z(d);
  for (size_t c = 0; c < cands.size(); ++c) {
    const Matrix& r = cands[c];
    double total = 0.0;
    for (int32_t t = 0; t < n_tokens; ++t) {
      for (int32_t i = 0; i < d; ++i) {
        double acc = 0.0;
        for (int32_t j = 0; j < d; ++j) acc += r[i * d + j] * y[t * d + j];
        z[i] = static_cast<float>(acc);
      }
      if (rotate_) walsh_hadamard(z.data(), d);
      float mx = 0.0f;
      for (int32_t i = 0; i < d; ++i) mx = std::max(mx, std::fabs(z[i]));
      total += static_cast<double>(mx) * mx;
    }
    if (c == 0 || total < best) best = total, pick = c;
  }
  if (pick == 0) return;
  const Matrix& r = cands[pick];
  const bool keys = &side == &key_;
  Matrix ra(static_cast<size_t>(d) * d, 0.0), rb(ra.size(), 0.0);
  for (int32_t i = 0; i < d; ++i) {
    for (int32_t j = 0; j < d; ++j) {
      for (int32_t k = 0; k < d; ++k) {
        ra[i * d + j] += r[i * d + k] * a[k * d + j];
        // keys: R A^-1; values: A^-1 R^T
        rb[i * d + j] += keys ? r[i * d + k] * b[k * d + j] : b[i * d + k] * r[j * d + k];
      }
    }
  }
  for (size_t i = 0; i < ra.size(); ++i) a[i] = static_cast<float>(ra[i]), b[i] = static_cast<float>(rb[i]);
}

// Heads packed into one 32-value quant block (head_dim < 32) share its step, which follows
// the block's largest value. Each head h gets a factor c_h (x' -> c_h x', the inverse side /
// c_h: still exact) minimizing the modelled error sum over tokens t and blocks b of
// max_{i in b}(c_h(i) |x'_ti|)^2 * sum_{i in b} w_h(i) / c_h(i)^2, with w_h = tr(A^-1 W A^-1)
// / d the metric's weight per stored value. Coordinate search on a log2 grid of 1/8 steps.
void KeyTransform::balance_heads(Side& side, const float* x, const std::vector<double>& w,
                                 int32_t n_tokens, int32_t layer) const {
  constexpr int32_t kBlock = 32;
  const int32_t d = head_dim_, row = n_kv_head_ * d;
  if (d % kBlock == 0 || row % kBlock != 0 || n_kv_head_ < 2) return;
  std::vector<double> y(static_cast<size_t>(n_tokens) * row);
  std::vector<float> tmp(d);
  for (int32_t t = 0; t < n_tokens; ++t) {
    for (int32_t h = 0; h < n_kv_head_; ++h) {
      forward(side, layer, h, x + static_cast<int64_t>(t) * row + h * d, tmp.data());
      for (int32_t i = 0; i < d; ++i) y[static_cast<size_t>(t) * row + h * d + i] = std::fabs(tmp[i]);
    }
  }
  std::vector<double> weight(n_kv_head_, 0.0);
  for (int32_t h = 0; h < n_kv_head_; ++h) {
    const double* wh = w.data() + static_cast<size_t>(h) * d * d;
    const size_t base = at(layer, h);
    double tr = 0.0;
    if (rotate_matrix_) {
      // tr(B W B^T) for keys (B = A^-T), tr(B^T W B) for values (B = A^-1).
      const bool keys = &side == &key_;
      const float* b = side.inv_matrix.data() + base * d;
      for (int32_t i = 0; i < d; ++i) {
        for (int32_t k = 0; k < d; ++k) {
          const double bik = keys ? b[i * d + k] : b[k * d + i];
          for (int32_t l = 0; l < d; ++l) {
            tr += bik * wh[k * d + l] * (keys ? b[i * d + l] : b[l * d + i]);
          }
        }
      }
    } else {
      for (int32_t i = 0; i < d; ++i) tr += side.scale[base + i] * side.scale[base + i] * wh[i * d + i];
    }
    weight[h] = std::max(tr, 0.0) / d;
  }
  std::vector<double> c(n_kv_head_, 1.0);
  auto cost = [&](const std::vector<double>& f) {
    double total = 0.0;
    for (int32_t b = 0; b < row; b += kBlock) {
      double wsum = 0.0;
      for (int32_t i = b; i < b + kBlock; ++i) wsum += weight[i / d] / (f[i / d] * f[i / d]);
      double steps = 0.0;
      for (int32_t t = 0; t < n_tokens; ++t) {
        double mx = 0.0;
        for (int32_t i = b; i < b + kBlock; ++i) {
          mx = std::max(mx, f[i / d] * y[static_cast<size_t>(t) * row + i]);
        }
        steps += mx * mx;
      }
      total += steps * wsum;
    }
    return total;
  };
  double best = cost(c);
  for (int32_t sweep = 0; sweep < 8; ++sweep) {
    bool moved = false;
    for (int32_t h = 0; h < n_kv_head_; ++h) {
      const double start = c[h];
      double pick = start;
      for (int32_t k = -16; k <= 16; ++k) {
        if (k == 0) continue;
        c[h] = start * std::exp2(k / 8.0);
        const double e = cost(c);
        if (e < best * (1.0 - 1e-12)) best = e, pick = c[h], moved = true;
      }
      c[h] = pick;
    }
    if (!moved) break;
  }
  for (int32_t h = 0; h < n_kv_head_; ++h) {
    const size_t base = at(layer, h);
    if (rotate_matrix_) {
      for (int32_t i = 0; i < d * d; ++i) {
        side.matrix[base * d + i] *= static_cast<float>(c[h]);
        side.inv_matrix[base * d + i] /= static_cast<float>(c[h]);
      }
    } else {
      for (int32_t i = 0; i < d; ++i) side.scale[base + i] /= static_cast<float>(c[h]);
    }
  }
}

// One normalization per layer, not per head: heads packed into one quant block keep the
// balance of their steps against their queries.
void KeyTransform::normalize_layer(Side& side, int32_t layer) const {
  const size_t per_layer = static_cast<size_t>(n_kv_head_) * head_dim_;
  const size_t first = at(layer, 0);
  if (rotate_matrix_) {
    float* a = side.matrix.data() + first * head_dim_;
    float* a_inv = side.inv_matrix.data() + first * head_dim_;
    float largest = 0.0f;
    for (size_t i = 0; i < per_layer * head_dim_; ++i) largest = std::max(largest, std::fabs(a[i]));
    QUANTA_ASSERT(largest > 0.0f);
    for (size_t i = 0; i < per_layer * head_dim_; ++i) {
      a[i] /= largest;
      a_inv[i] *= largest;
    }
    return;
  }
  float* s = side.scale.data() + first;
  const float largest = *std::max_element(s, s + per_layer);
  for (size_t i = 0; i < per_layer; ++i) {
    s[i] = largest > 0.0f ? std::max(s[i] / largest, 1e-3f) : 1.0f;
  }
}

// The metric W of each head of `layer` carried into the stored basis: H A^-1 W A^-1 H
// (A^-1 symmetric; H where rotate_), for rounding stored rows under it.
void KeyTransform::set_metric(Side& side, const std::vector<double>& w, int32_t layer) const {
  if (!rotate_matrix_) return;
  const int32_t d = head_dim_;
  if (side.metric.empty()) side.metric.assign(side.matrix.size(), 0.0f);
  if (side.factor.empty()) side.factor.assign(side.matrix.size(), 0.0f);
  std::vector<double> bw(static_cast<size_t>(d) * d);
  std::vector<float> col(d);
  for (int32_t h = 0; h < n_kv_head_; ++h) {
    const size_t base = at(layer, h) * d;
    const float* b = side.inv_matrix.data() + base;
    const double* wh = w.data() + static_cast<size_t>(h) * d * d;
    // S = B W B^T for keys (B = A^-T, stored), B^T W B for values (B = A^-1).
    const bool keys = &side == &key_;
    auto bt = [&](int32_t i, int32_t j) { return keys ? b[i * d + j] : b[j * d + i]; };
    for (int32_t i = 0; i < d; ++i) {
      for (int32_t j = 0; j < d; ++j) {
        double acc = 0.0;
        for (int32_t k = 0; k < d; ++k) acc += bt(i, k) * wh[k * d + j];
        bw[i * d + j] = acc;
      }
    }
    float* out = side.metric.data() + base;
    for (int32_t i = 0; i < d; ++i) {
      for (int32_t j = 0; j < d; ++j) {
        double acc = 0.0;
        for (int32_t k = 0; k < d; ++k) acc += bw[i * d + k] * bt(j, k);
        out[i * d + j] = static_cast<float>(acc);
      }
    }
    if (rotate_) {
      for (int32_t i = 0; i < d; ++i) walsh_hadamard(out + i * d, d);  // rows: S H
      for (int32_t j = 0; j < d; ++j) {                                  // columns: H S H
        for (int32_t i = 0; i < d; ++i) col[i] = out[i * d + j];
        walsh_hadamard(col.data(), d);
        for (int32_t i = 0; i < d; ++i) out[i * d + j] = col[i];
      }
    }
    metric_factor(out, d, side.factor.data() + base);
  }
}

KeyTransform KeyTransform::fit(KeyTransformMode mode, const float* keys, const float* queries,
                               int32_t n_layer, int32_t n_tokens, int32_t n_head, int32_t n_kv_head,
                               int32_t head_dim, const CalibrationExtras* extras) {
  KeyTransform t;
  if (mode == KeyTransformMode::kNone) return t;
  if (extras != nullptr && extras->joint_heads > 1) {
    return fit_joint(mode, keys, queries, n_layer, n_tokens, n_head, n_kv_head, head_dim, *extras);
  }
  QUANTA_ASSERT(n_layer > 0 && n_tokens > 0 && n_kv_head > 0 && head_dim > 0 &&
                n_head % n_kv_head == 0);
  t.mode_ = mode;
  t.n_layer_ = n_layer;
  t.n_kv_head_ = n_kv_head;
  t.head_dim_ = head_dim;
  t.rotate_ = mode == KeyTransformMode::kRotate && (head_dim & (head_dim - 1)) == 0;
  t.rotate_matrix_ = mode == KeyTransformMode::kRotate && head_dim <= kMaxMatrixHeadDim;
  t.has_values_ = extras != nullptr && extras->values != nullptr && extras->metric != nullptr;
  const double key_power = extras != nullptr ? extras->key_mean_power : kKeyMeanPower;
  const bool search_rotation = t.rotate_matrix_ && head_dim <= kMaxRotationSearchDim;
  t.init_side(t.key_);
  if (t.has_values_) t.init_side(t.value_);
  const int d = head_dim;
  const int64_t krow = static_cast<int64_t>(n_kv_head) * d;
  const int64_t qrow = static_cast<int64_t>(n_head) * d;
  const int32_t group = n_head / n_kv_head;
  const size_t metric_size = static_cast<size_t>(n_kv_head) * d * d;
  std::vector<double> metric(metric_size);
  for (int32_t l = 0; l < n_layer; ++l) {
    // Keys: the metric is the second moment of the group's queries (summed over the group).
    std::fill(metric.begin(), metric.end(), 0.0);
    const float* ql = queries + static_cast<int64_t>(l) * n_tokens * qrow;
    for (int32_t t = 0; t < n_tokens; ++t) {
      for (int32_t hq = 0; hq < n_head; ++hq) {
        const float* q = ql + t * qrow + hq * d;
        double* w = metric.data() + static_cast<size_t>(hq / group) * d * d;
        const double f = (extras != nullptr && extras->query_weight != nullptr
                              ? extras->query_weight[static_cast<int64_t>(l) * n_head + hq]
                              : 1.0) /
                         n_tokens;
        for (int i = 0; i < d; ++i) {
          for (int j = 0; j < d; ++j) w[i * d + j] += q[i] * static_cast<double>(q[j]) * f;
        }
      }
    }
    // One side (keys or values) of layer l from its rows [n_tokens, krow] under `metric`.
    const auto fit_layer = [&](auto& side, const float* rows, double mean_power) {
      for (int32_t h = 0; h < n_kv_head; ++h) {
        t.fit_side(side, rows + h * d, metric, mean_power, n_tokens, l, h);
        if (search_rotation) t.choose_rotation(side, rows + h * d, n_tokens, l, h);
      }
      t.balance_heads(side, rows, metric, n_tokens, l);
      t.normalize_layer(side, l);
      t.set_metric(side, metric, l);
    };
    fit_layer(t.key_, keys + static_cast<int64_t>(l) * n_tokens * krow, key_power);
    if (!t.has_values_) continue;
    const float* ml = extras->metric + static_cast<int64_t>(l) * metric_size;
    std::copy(ml, ml + metric_size, metric.begin());
    fit_layer(t.value_, extras->values + static_cast<int64_t>(l) * n_tokens * krow, kKeyMeanPower);
  }
  if (t.rotate_matrix_) {
    for (Side* side : {&t.key_, &t.value_}) {
      transpose_heads(side->matrix, d, side->matrix_t);
      transpose_heads(side->inv_matrix, d, side->inv_matrix_t);
    }
  }
  return t;
}

KeyTransform KeyTransform::fit_joint(KeyTransformMode mode, const float* keys,
                                     const float* queries, int32_t n_layer, int32_t n_tokens,
                                     int32_t n_head, int32_t n_kv_head, int32_t head_dim,
                                     const CalibrationExtras& extras) {
  const int32_t j = extras.joint_heads;
  QUANTA_ASSERT(n_kv_head % j == 0 && n_head % n_kv_head == 0);
  const int32_t d = head_dim, wide = j * head_dim, group = n_head / n_kv_head;
  // Queries [n_layer, n_tokens, n_head, wide]: head h's values in its KV head's slot.
  std::vector<float> q(static_cast<size_t>(n_layer) * n_tokens * n_head * wide, 0.0f);
  for (int64_t row = 0; row < static_cast<int64_t>(n_layer) * n_tokens; ++row) {
    for (int32_t h = 0; h < n_head; ++h) {
      const float* src = queries + (row * n_head + h) * d;
      std::copy(src, src + d, q.begin() + (row * n_head + h) * wide + (h / group) % j * d);
    }
  }
  CalibrationExtras e = extras;
  e.joint_heads = 1;
  // Value metrics [n_layer, n_kv_head / j, wide, wide]: block-diagonal.
  std::vector<float> metric;
  if (extras.metric != nullptr) {
    metric.assign(static_cast<size_t>(n_layer) * (n_kv_head / j) * wide * wide, 0.0f);
    for (int32_t l = 0; l < n_layer; ++l) {
      for (int32_t h = 0; h < n_kv_head; ++h) {
        const float* src = extras.metric + (static_cast<size_t>(l) * n_kv_head + h) * d * d;
        float* dst =
            metric.data() + (static_cast<size_t>(l) * (n_kv_head / j) + h / j) * wide * wide;
        const int32_t at = (h % j) * d;
        for (int32_t r = 0; r < d; ++r) {
          std::copy(src + r * d, src + r * d + d, dst + (at + r) * wide + at);
        }
      }
    }
    e.metric = metric.data();
  }
  KeyTransform t = fit(mode, keys, q.data(), n_layer, n_tokens, n_head, n_kv_head / j, wide, &e);
  t.joint_heads_ = t.active() ? j : 1;
  return t;
}

void KeyTransform::apply_query(int32_t layer, const float* q, float* out, int32_t n_head) const {
  QUANTA_ASSERT(n_head % (n_kv_head_ * joint_heads_) == 0);
  if (joint_heads_ == 1) {
    if (out != q) std::copy(q, q + static_cast<int64_t>(n_head) * head_dim_, out);
    queries_in_place(layer, out, n_head);
    return;
  }
  const int32_t d = head_dim_ / joint_heads_, group = n_head / (n_kv_head_ * joint_heads_);
  for (int32_t h = 0; h < n_head; ++h) {
    float* oh = out + static_cast<int64_t>(h) * head_dim_;
    std::fill(oh, oh + head_dim_, 0.0f);
    const float* qh = q + static_cast<int64_t>(h) * d;
    std::copy(qh, qh + d, oh + (h / group) % joint_heads_ * d);
  }
  queries_in_place(layer, out, n_head);
}

void KeyTransform::restore_output(int32_t layer, float* o, float* out, int32_t n_head) const {
  QUANTA_ASSERT(n_head % (n_kv_head_ * joint_heads_) == 0);
  outputs_in_place(layer, o, n_head);
  if (joint_heads_ == 1 && out == o) return;
  const int32_t d = head_dim_ / joint_heads_, group = n_head / (n_kv_head_ * joint_heads_);
  for (int32_t h = 0; h < n_head; ++h) {
    const float* oh = o + static_cast<int64_t>(h) * head_dim_ + (h / group) % joint_heads_ * d;
    std::copy(oh, oh + d, out + static_cast<int64_t>(h) * d);
  }
}

void KeyTransform::forward(const Side& side, int32_t layer, int32_t kv_head, const float* x,
                           float* out) const {
  const int32_t d = head_dim_;
  const size_t base = at(layer, kv_head);
  const float* m = side.offset.data() + base;
  if (rotate_matrix_ && d % 8 == 0 && !side.matrix_t.empty() && kernels::avx2_active()) {
#if defined(__x86_64__)
    float xm[kMaxMatrixHeadDim];
    for (int32_t j = 0; j < d; ++j) xm[j] = x[j] - m[j];
    kernels::avx2::transposed_product(side.matrix_t.data() + base * d, d, xm, out);
#endif
  } else if (rotate_matrix_) {
    const float* a = side.matrix.data() + base * d;
    for (int32_t i = 0; i < d; ++i) {
      float acc = 0.0f;
      for (int32_t j = 0; j < d; ++j) acc += a[i * d + j] * (x[j] - m[j]);
      out[i] = acc;
    }
  } else {
    const float* s = side.scale.data() + base;
    for (int32_t j = 0; j < d; ++j) out[j] = (x[j] - m[j]) / s[j];
  }
  if (rotate_) walsh_hadamard(out, d);
}

void KeyTransform::inverse(const Side& side, int32_t layer, int32_t kv_head, float* y) const {
  const int32_t d = head_dim_;
  const size_t base = at(layer, kv_head);
  if (rotate_matrix_ && d % 8 == 0 && !side.inv_matrix_t.empty() && kernels::avx2_active()) {
#if defined(__x86_64__)
    float tmp[kMaxMatrixHeadDim];
    kernels::avx2::transposed_product(side.inv_matrix_t.data() + base * d, d, y, tmp);
    std::copy(tmp, tmp + d, y);
#endif
  } else if (rotate_matrix_) {
    const float* a_inv = side.inv_matrix.data() + base * d;
    float tmp[kMaxMatrixHeadDim];
    for (int32_t i = 0; i < d; ++i) {
      float acc = 0.0f;
      for (int32_t j = 0; j < d; ++j) acc += a_inv[i * d + j] * y[j];
      tmp[i] = acc;
    }
    std::copy(tmp, tmp + d, y);
  } else {
    const float* s = side.scale.data() + base;
    for (int32_t j = 0; j < d; ++j) y[j] *= s[j];
  }
}

void KeyTransform::apply_key(int32_t layer, const float* k, float* out) const {
  for (int32_t h = 0; h < n_kv_head_; ++h) {
    forward(key_, layer, h, k + h * head_dim_, out + h * head_dim_);
  }
}

void KeyTransform::queries_in_place(int32_t layer, float* q, int32_t n_head) const {
  QUANTA_ASSERT(n_head % n_kv_head_ == 0);
  const int32_t group = n_head / n_kv_head_;
  for (int32_t h = 0; h < n_head; ++h) {
    float* qh = q + static_cast<int64_t>(h) * head_dim_;
    inverse(key_, layer, h / group, qh);
    if (rotate_) walsh_hadamard(qh, head_dim_);
  }
}

void KeyTransform::apply_value(int32_t layer, const float* v, float* out) const {
  QUANTA_ASSERT(has_values_);
  for (int32_t h = 0; h < n_kv_head_; ++h) {
    forward(value_, layer, h, v + h * head_dim_, out + h * head_dim_);
  }
}

void KeyTransform::outputs_in_place(int32_t layer, float* o, int32_t n_head) const {
  if (!has_values_) return;
  QUANTA_ASSERT(n_head % n_kv_head_ == 0);
  const int32_t group = n_head / n_kv_head_;
  for (int32_t h = 0; h < n_head; ++h) {
    float* oh = o + static_cast<int64_t>(h) * head_dim_;
    if (rotate_) walsh_hadamard(oh, head_dim_);
    inverse(value_, layer, h / group, oh);
    const float* m = value_.offset.data() + at(layer, h / group);
    for (int32_t j = 0; j < head_dim_; ++j) oh[j] += m[j];
  }
}

}  // namespace quanta::kv
