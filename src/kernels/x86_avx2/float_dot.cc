// AVX2 dot products and row tiles of the plain float weight types against activations of
// the same type: F32 (FMA), F16 (F16C conversion, then FMA) and BF16 (a BF16 is the top half
// of an F32: shifting even elements left by 16 and masking odd ones gives exact F32 values,
// and a dot product does not care that they arrive as separate even/odd halves).
#include "kernels/x86_avx2/avx2.h"
#include "kernels/x86_avx2/float_gemm.h"
#include "kernels/x86_avx2/simd.h"
#include "kernels/x86_avx2/tiling.h"

namespace quanta::kernels::avx2 {
namespace {

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Element formats: how one 64-byte line of a row becomes F32 vectors, and one scalar.
struct F32Format {
  static constexpr size_t kElem = 4;
  static constexpr int kVecs = 2;  // vectors per 64-byte line
  static __m256 vec(const uint8_t* line, int c) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(line) + 8 * c);
  }
  static float scalar(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, sizeof f);
    return f;
  }
};

struct F16Format {
  static constexpr size_t kElem = 2;
  static constexpr int kVecs = 4;
  static __m256 vec(const uint8_t* line, int c) { return _mm256_cvtph_ps(loadu128(line + 16 * c)); }
  static float scalar(const uint8_t* p) { return f16_to_f32(load_u16(p)); }
};

// BF16 vector c of a line: c = 2h holds the even elements of 32 bytes h, c = 2h+1 the odd.
struct BF16Format {
  static constexpr size_t kElem = 2;
  static constexpr int kVecs = 4;
  static __m256 vec(const uint8_t* line, int c) {
    const __m256i raw = loadu256(line + 32 * (c / 2));
    const __m256i bits = (c % 2 == 0) ? _mm256_slli_epi32(raw, 16)
                                      : _mm256_and_si256(raw, _mm256_set1_epi32(-65536));
    return _mm256_castsi256_ps(bits);
  }
  static float scalar(const uint8_t* p) { return bf16_to_f32(load_u16(p)); }
};

// F16 and BF16 activations are converted to F32 once per token (kPrep = 1 float per value,
// in the order F::vec yields them), so a tile converts only its weight rows; F32 reads the
// activations in place. Per output: 8 lanes of FMAs over the full 64-byte lines, hsum, then
// the values of the last partial line one at a time, in every tile shape.
template <class F>
struct FloatKernel {
  static constexpr int64_t kBlockValues = 1;
  static constexpr size_t kWBytes = F::kElem;
  static constexpr size_t kABytes = F::kElem;
  static constexpr bool kConvert = F::kElem != 4;
  static constexpr int kPrep = kConvert ? 1 : 0;
  static constexpr int kRows = 4;
  static constexpr int kTokens = 2;
  static constexpr int64_t kLineValues = 64 / F::kElem;

  static void prepare(const uint8_t* act, int64_t n, float* prep, int64_t) {
    if constexpr (kConvert) {
      for (int64_t v = 0; v + kLineValues <= n; v += kLineValues) {
        for (int c = 0; c < F::kVecs; ++c) {
          _mm256_storeu_ps(prep + v + 8 * c, F::vec(act + v * F::kElem, c));
        }
      }
    }
  }

  // Activation vector c of the line at value v of token t.
  static __m256 act_vec(const TileArgs& a, int t, int64_t v, int c) {
    if constexpr (kConvert) {
      return _mm256_loadu_ps(a.prep + t * a.prep_stride + v + 8 * c);
    } else {
      return F::vec(a.act + t * a.act_row_bytes + v * F::kElem, c);
    }
  }

  template <int R, int T>
  [[gnu::noinline]] static void tile(const TileArgs& a, float* out) {
    // One accumulator per (row, token) whatever the tile shape, so a row's result does not
    // depend on the tile it falls in (any split of the rows over threads gives the same y).
    __m256 acc[R][T];
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
    }
    const int64_t n = a.nb;
    const size_t seg_bytes = static_cast<size_t>(n) * F::kElem;
    int64_t v = 0;
    for (; v + kLineValues <= n; v += kLineValues) {
      const size_t pos = static_cast<size_t>(v) * F::kElem;
      prefetch_rows<R>(a, seg_bytes, pos, 1);
#pragma GCC unroll 4
      for (int c = 0; c < F::kVecs; ++c) {
        __m256 wv[R];
        for (int i = 0; i < R; ++i) wv[i] = F::vec(a.w + i * a.row_stride + pos, c);
        for (int t = 0; t < T; ++t) {
          const __m256 yv = act_vec(a, t, v, c);
          for (int i = 0; i < R; ++i) acc[i][t] = _mm256_fmadd_ps(wv[i], yv, acc[i][t]);
        }
      }
    }
    for (int i = 0; i < R; ++i) {
      for (int t = 0; t < T; ++t) {  // hsum, then the last, partial line
        out[i * T + t] =
            finish_output<F>(acc[i][t], a.w + i * a.row_stride, a.act + t * a.act_row_bytes, v, n);
      }
    }
  }
};

using F32Kernel = FloatKernel<F32Format>;
using F16Kernel = FloatKernel<F16Format>;
using BF16Kernel = FloatKernel<BF16Format>;

}  // namespace

float vec_dot_f32(int64_t n, const void* x, const void* y) {
  return vec_dot<F32Kernel>(n, x, y);
}
float vec_dot_f16(int64_t n, const void* x, const void* y) {
  return vec_dot<F16Kernel>(n, x, y);
}
float vec_dot_bf16(int64_t n, const void* x, const void* y) {
  return vec_dot<BF16Kernel>(n, x, y);
}

namespace {

// Products of at least kGemmMinTokens tokens take the blocked GEMM (float_gemm.h), fewer the
// decode tiles; both compute each output the same way, over the decode kernel's segments.
constexpr int64_t kGemmMinTokens = 3;

template <class F>
void float_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                int64_t row_begin, int64_t row_end) {
  using K = FloatKernel<F>;
  if (n_tokens >= kGemmMinTokens && k > 0) {
    FloatGemm<F>::run(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                      row_end, min64(k, segment_blocks<K>()));
  } else {
    matmul_rows<K>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                   row_end);
  }
}

}  // namespace

void matmul_rows_f32(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                     size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                     int64_t row_begin, int64_t row_end) {
  float_rows<F32Format>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                        row_end);
}
void matmul_rows_f16(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                     size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                     int64_t row_begin, int64_t row_end) {
  float_rows<F16Format>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                        row_end);
}
void matmul_rows_bf16(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                      size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                      int64_t row_begin, int64_t row_end) {
  float_rows<BF16Format>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                         row_end);
}

}  // namespace quanta::kernels::avx2
