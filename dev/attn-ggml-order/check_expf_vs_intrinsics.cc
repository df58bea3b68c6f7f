#include <immintrin.h>
#include <cstdio>
#include <cstring>
#include <random>
#include <cmath>
namespace quanta::ops { float qx_expf_avx2(float); }
static __m256 v_expf(__m256 x) {
  const __m256 r = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
  const __m256 n = _mm256_sub_ps(z, r);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
  const __m256i c = _mm256_castps_si256(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(126), _CMP_GT_OQ));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
      _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))), u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  if (!_mm256_movemask_ps(_mm256_castsi256_ps(c))) return _mm256_fmadd_ps(j, k, k);
  const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)), _mm256_set1_epi32(0x82000000u));
  const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000u)));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
  const __m256i d = _mm256_castps_si256(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(192), _CMP_GT_OQ));
  return _mm256_or_ps(_mm256_and_ps(_mm256_castsi256_ps(d), _mm256_mul_ps(s1, s1)),
      _mm256_andnot_ps(_mm256_castsi256_ps(d), _mm256_or_ps(_mm256_and_ps(_mm256_castsi256_ps(c), _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
      _mm256_andnot_ps(_mm256_castsi256_ps(c), _mm256_fmadd_ps(k, j, k)))));
}
int main() {
  std::mt19937 rng(1); std::uniform_real_distribution<float> U(-110.f, 5.f);
  long bad = 0, diffstd = 0, N = 0;
  for (int it = 0; it < 2000000; ++it) {
    float x[8]; for (float& v : x) v = U(rng);
    if (it == 0) { x[0] = -INFINITY; x[1] = 0.f; x[2] = -87.5f; x[3] = -100.f; }
    float y[8]; _mm256_storeu_ps(y, v_expf(_mm256_loadu_ps(x)));
    for (int l = 0; l < 8; ++l) { float s = quanta::ops::qx_expf_avx2(x[l]); ++N;
      if (std::memcmp(&s, &y[l], 4)) { if (bad < 5) printf("mismatch x=%a simd=%a scalar=%a\n", x[l], y[l], s); ++bad; }
      float r = std::exp(x[l]); if (std::memcmp(&r, &y[l], 4)) ++diffstd; }
  }
  printf("expf: %ld/%ld mismatches vs intrinsics; differs from std::exp in %ld (%.1f%%)\n", bad, N, diffstd, 100.0*diffstd/N);
}
