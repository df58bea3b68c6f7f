// Internal helpers of the K-quant and importance-weighted quantizers: ggml's float-magic
// rounding, the scale (and min) searches make_qx_quants / make_qkx2_quants / make_qp_quants
// (with or without importance weights), and the 6-bit scale packing of Q4_K/Q5_K.
#pragma once

#include <cstdint>
#include <cstring>

namespace quanta::ref::detail {

// ggml's nearest_int: adding 1.5 * 2^23 leaves round-half-even(fval) in the low mantissa
// bits. Exact for |fval| <= 2^22 - 1; larger inputs wrap exactly as ggml's do (callers clamp).
inline int nearest_int(float fval) {
  const float val = fval + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &val, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// Symmetric search (ggml make_qx_quants, rmse_type 1): picks the scale among
// -(nmax + 0.1*is)/max, is in [-9, 9], that maximises (sum w*x*l)^2 / sum w*l*l, refitting
// the scale by least squares. Weights w[i] = weights[i], or x[i]^2 when `weights` is null
// (ggml without quant_weights). L[i] in [0, 2*nmax); returns the scale (sign follows -max,
// so value = scale * (L - nmax)).
float make_qx_quants(int n, int nmax, const float* x, const float* weights, int8_t* L);

// Asymmetric search (ggml make_qkx2_quants; also ggml make_qkx3_quants with weights given,
// which does the same arithmetic): value ~= scale * L - the_min, L in [0, nmax], min clamped
// to <= 0, trying iscales (rmin + rdelta*is + nmax)/(max - min) for is in [0, nstep] with a
// weighted least-squares refit; squared error (use_mad false). Laux [n] is scratch.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep);

// Non-negative values x[n] on a grid scale * L, L in [0, nmax] (ggml make_qp_quants): used to
// quantize the sub-block scales and mins of Q4_K/Q5_K with weights w. Returns the scale.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w);

// 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// Inverse of get_scale_min_k4 for all 8 sub-blocks (ls, lm in [0, 63]); writes all 12 bytes.
void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* q);

}  // namespace quanta::ref::detail
