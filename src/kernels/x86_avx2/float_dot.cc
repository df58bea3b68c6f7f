// AVX2 dot products and row tiles of the plain float weight types against activations of
// the same type: F32 (FMA), F16 (F16C conversion, then FMA) and BF16 (a BF16 is the top half
// of an F32: shifting even elements left by 16 and masking odd ones gives exact F32 values,
// and a dot product does not care that they arrive as separate even/odd halves). Products of
// 3+ tokens run gemm_rows below (bigger token chunks than tiling.h's; an assembly 4 x 3 F16
// tile), computing each output exactly as the decode tiles do.
#include "kernels/x86_avx2/avx2.h"
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
  static constexpr bool kAsm4x3 = false;
  static constexpr int kGemmRows = 4;  // GEMM tile 4 x 3 (in C++; a little faster than 3 x 4)
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
  static constexpr bool kAsm4x3 = true;  // f16_lines_4x3 computes the 4 x 3 GEMM tile
  static constexpr int kGemmRows = 4;    // GEMM tile 4 x 3 (kGemmTokens = 12 / kGemmRows)
  static constexpr size_t kElem = 2;
  static constexpr int kVecs = 4;
  static __m256 vec(const uint8_t* line, int c) { return _mm256_cvtph_ps(loadu128(line + 16 * c)); }
  static float scalar(const uint8_t* p) { return f16_to_f32(load_u16(p)); }
};

// acc[i * 3 + t] += F16 weight row i (w + i * rs, i < 4) times the F32 prepared activations
// of token t (p + t * ps bytes, t < 3) over `lines` 64-byte weight lines (32 values), in the
// order of the C++ tiles: line by line, 8 values at a time, one FMA per (row, token). In
// assembly with fixed registers: 12 accumulators, 3 activation vectors and 1 weight vector
// take all 16, which GCC's register allocator does not manage for this shape (it spills).
// Per 8 values: 4 weight loads + conversions, 3 activation loads, 12 FMAs (6 cycles at two
// FMAs per cycle; the activations, streamed from L2, cost 3 loads instead of 4 for 3 x 4).
#define QUANTA_F16_ROW(d, base, idx, acc0, acc1, acc2) \
  "vcvtph2ps " #d "(" base idx "), %%ymm15\n\t"        \
  "vfmadd231ps %%ymm12, %%ymm15, %%ymm" acc0 "\n\t"    \
  "vfmadd231ps %%ymm13, %%ymm15, %%ymm" acc1 "\n\t"    \
  "vfmadd231ps %%ymm14, %%ymm15, %%ymm" acc2 "\n\t"
#define QUANTA_F16_COL(dw, dp)                                 \
  "vmovups " #dp "(%[p]), %%ymm12\n\t"                          \
  "vmovups " #dp "(%[p],%[ps]), %%ymm13\n\t"                    \
  "vmovups " #dp "(%[p],%[ps],2), %%ymm14\n\t"                  \
  QUANTA_F16_ROW(dw, "%[w]", "", "0", "1", "2")                 \
  QUANTA_F16_ROW(dw, "%[w]", ",%[rs]", "3", "4", "5")           \
  QUANTA_F16_ROW(dw, "%[w]", ",%[rs],2", "6", "7", "8")         \
  QUANTA_F16_ROW(dw, "%[w3]", "", "9", "10", "11")

inline void f16_lines_4x3(const uint8_t* w, size_t rs, const float* p, size_t ps,
                          int64_t lines, __m256* acc) {
  if (lines <= 0) return;
  const uint8_t* w3 = w + 3 * rs;
  __asm__ volatile(
      "vmovups 0(%[acc]), %%ymm0\n\t"
      "vmovups 32(%[acc]), %%ymm1\n\t"
      "vmovups 64(%[acc]), %%ymm2\n\t"
      "vmovups 96(%[acc]), %%ymm3\n\t"
      "vmovups 128(%[acc]), %%ymm4\n\t"
      "vmovups 160(%[acc]), %%ymm5\n\t"
      "vmovups 192(%[acc]), %%ymm6\n\t"
      "vmovups 224(%[acc]), %%ymm7\n\t"
      "vmovups 256(%[acc]), %%ymm8\n\t"
      "vmovups 288(%[acc]), %%ymm9\n\t"
      "vmovups 320(%[acc]), %%ymm10\n\t"
      "vmovups 352(%[acc]), %%ymm11\n\t"
      "1:\n\t"
      "prefetcht0 1024(%[w])\n\t"
      "prefetcht0 1024(%[w],%[rs])\n\t"
      "prefetcht0 1024(%[w],%[rs],2)\n\t"
      "prefetcht0 1024(%[w3])\n\t"
      QUANTA_F16_COL(0, 0) QUANTA_F16_COL(16, 32) QUANTA_F16_COL(32, 64) QUANTA_F16_COL(48, 96)
      "add $64, %[w]\n\t"
      "add $64, %[w3]\n\t"
      "sub $-128, %[p]\n\t"
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vmovups %%ymm0, 0(%[acc])\n\t"
      "vmovups %%ymm1, 32(%[acc])\n\t"
      "vmovups %%ymm2, 64(%[acc])\n\t"
      "vmovups %%ymm3, 96(%[acc])\n\t"
      "vmovups %%ymm4, 128(%[acc])\n\t"
      "vmovups %%ymm5, 160(%[acc])\n\t"
      "vmovups %%ymm6, 192(%[acc])\n\t"
      "vmovups %%ymm7, 224(%[acc])\n\t"
      "vmovups %%ymm8, 256(%[acc])\n\t"
      "vmovups %%ymm9, 288(%[acc])\n\t"
      "vmovups %%ymm10, 320(%[acc])\n\t"
      "vmovups %%ymm11, 352(%[acc])\n\t"
      : [w] "+r"(w), [w3] "+r"(w3), [p] "+r"(p), [n] "+r"(lines)
      : [rs] "r"(rs), [ps] "r"(ps), [acc] "r"(acc)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}
#undef QUANTA_F16_COL
#undef QUANTA_F16_ROW

// BF16 vector c of a line: c = 2h holds the even elements of 32 bytes h, c = 2h+1 the odd.
struct BF16Format {
  static constexpr bool kAsm4x3 = false;
  static constexpr int kGemmRows = 3;  // GEMM tile 3 x 4 (4 x 3 in C++ was no faster)
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
  static constexpr int kGemmRows = F::kGemmRows;
  static constexpr int kGemmTokens = 12 / F::kGemmRows;
  static constexpr int64_t kGemmMinTokens = 3;
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
    if constexpr (F::kAsm4x3 && kConvert && R == 4 && T == 3) {
      f16_lines_4x3(a.w, a.row_stride, a.prep, static_cast<size_t>(a.prep_stride) * 4,
                    n / kLineValues, &acc[0][0]);
      v = n - n % kLineValues;
    }
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
      for (int t = 0; t < T; ++t) {
        float sum = hsum(acc[i][t]);
        for (int64_t e = v; e < n; ++e) {  // the last, partial line
          const size_t pos = static_cast<size_t>(e) * F::kElem;
          sum += F::scalar(a.w + i * a.row_stride + pos) *
                 F::scalar(a.act + t * a.act_row_bytes + pos);
        }
        out[i * T + t] = sum;
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

// Prepared activations of one GEMM token chunk (on the stack, 384 KiB: they stay in L2).
constexpr int64_t kGemmPrepFloats = 96 * 1024;

// The GEMM path of the float types (at least K::kGemmMinTokens tokens): tiles of
// kGemmRows x kGemmTokens over token chunks whose prepared activations, every segment of
// the reduction, fit kGemmPrepFloats (tiling.h's stack buffer holds only 8 tokens of a
// 5632-long F16 row, so each weight would be read from memory once per 8 tokens). Each
// output is computed as decode computes it: the same segments (K's), each one's lanes
// summed, finished and added to y in order.
// Returns false, doing nothing, when a token group's prepared rows do not fit the buffer.
template <class K>
bool gemm_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
               size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
               int64_t row_begin, int64_t row_end) {
  using S = Shaped<K, K::kGemmRows, K::kGemmTokens>;
  const int64_t seg = min64(k, segment_blocks<K>());
  const int64_t n_seg = (k + seg - 1) / seg;
  const int64_t plane = round_up8(seg);
  const int64_t tok_floats = K::kPrep > 0 ? n_seg * plane : 0;
  int64_t tc = K::kPrep > 0 ? kGemmPrepFloats / tok_floats
                            : static_cast<int64_t>(kActChunkBytes / act_row_bytes);
  if (tc < S::kTokens) return false;
  tc = min64(n_tokens, tc - tc % S::kTokens);
  alignas(32) float prep[K::kPrep > 0 ? kGemmPrepFloats : 1];
  const int64_t n_rows = row_end - row_begin;
  const int64_t q = n_rows / S::kRows;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += tc) {
    const int64_t ntc = min64(tc, n_tokens - t0);
    if constexpr (K::kPrep > 0) {
      for (int64_t t = 0; t < ntc; ++t) {
        for (int64_t sg = 0; sg < n_seg; ++sg) {
          const int64_t b0 = sg * seg;
          K::prepare(act + (t0 + t) * act_row_bytes + b0 * K::kABytes, min64(seg, k - b0),
                     prep + t * tok_floats + sg * plane, plane);
        }
      }
    }
    // Row tiles as in tiling.h: tile j holds rows j, j + q, j + 2q, ... (each row streams
    // pages of its own), the last n_rows % kRows rows one at a time.
    for (int64_t j = 0; j < q + n_rows % S::kRows; ++j) {
      const bool full = j < q;
      const int64_t r0 = full ? row_begin + j : row_begin + S::kRows * q + (j - q);
      const int64_t row_step = full ? q : 1;
      const int nr = full ? S::kRows : 1;
      for (int64_t tg = 0; tg < ntc; tg += S::kTokens) {
        const int nt = static_cast<int>(min64(S::kTokens, ntc - tg));
        for (int64_t sg = 0; sg < n_seg; ++sg) {
          const int64_t b0 = sg * seg;
          const TileArgs a{w + r0 * row_bytes + b0 * K::kWBytes,
                           static_cast<size_t>(row_step) * row_bytes,
                           row_bytes,
                           act + (t0 + tg) * act_row_bytes + b0 * K::kABytes,
                           act_row_bytes,
                           prep + tg * tok_floats + sg * plane,
                           tok_floats,
                           plane,
                           min64(seg, k - b0)};
          float out[S::kRows * S::kTokens];  // every tile writes all nr x nt outputs it is given
          if (full) {
            run_tile<S, S::kRows, S::kTokens>(nt, a, out);
          } else {
            run_tile<S, 1, S::kTokens>(nt, a, out);
          }
          for (int i = 0; i < nr; ++i) {
            for (int t = 0; t < nt; ++t) {
              float& dst = y[(t0 + tg + t) * y_stride + r0 + i * row_step];
              dst = sg == 0 ? out[i * nt + t] : dst + out[i * nt + t];
            }
          }
        }
      }
    }
  }
  return true;
}

template <class K>
void float_rows(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                int64_t row_begin, int64_t row_end) {
  if (n_tokens >= K::kGemmMinTokens && k > 0 && row_end > row_begin &&
      gemm_rows<K>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                   row_end)) {
    return;
  }
  matmul_rows<K>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                 row_end);
}

}  // namespace

void matmul_rows_f32(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                     size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                     int64_t row_begin, int64_t row_end) {
  float_rows<F32Kernel>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                        row_end);
}
void matmul_rows_f16(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                     size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                     int64_t row_begin, int64_t row_end) {
  float_rows<F16Kernel>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                        row_end);
}
void matmul_rows_bf16(const uint8_t* w, size_t row_bytes, int64_t k, const uint8_t* act,
                      size_t act_row_bytes, int64_t n_tokens, float* y, int64_t y_stride,
                      int64_t row_begin, int64_t row_end) {
  float_rows<BF16Kernel>(w, row_bytes, k, act, act_row_bytes, n_tokens, y, y_stride, row_begin,
                         row_end);
}

}  // namespace quanta::kernels::avx2
