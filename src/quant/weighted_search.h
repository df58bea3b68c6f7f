// Scale searches with per-value importance weights, as ggml's quant_weights (imatrix) path
// uses them: make_qx_quants with weights, make_qkx3_quants and make_qp_quants. Float
// operations keep ggml's order so results match its quantize_*_impl functions.
#pragma once

#include <cstdint>

namespace quanta::ref::detail {

// Symmetric search with weights w[i] (ggml make_qx_quants, rmse_type 1, quant_weights set):
// tries iscale = -(nmax + 0.1*is)/max for is in [-9, 9] and keeps the scale maximising
// (sum w*x*l)^2 / sum w*l*l. L[i] in [0, 2*nmax); value = scale * (L - nmax).
float make_qx_quants_weighted(int n, int nmax, const float* x, const float* w, int8_t* L);

// Asymmetric search (ggml make_qkx3_quants, squared error): value ~= scale * L - the_min,
// L in [0, nmax], min clamped to <= 0, iscales (rmin + rdelta*is + nmax)/(max - min) for
// is in [0, nstep], weighted least-squares refit of scale and min for each.
float make_qkx3_quants(int n, int nmax, const float* x, const float* w, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep);

// Non-negative values x[n] on a grid scale * L, L in [0, nmax] (ggml make_qp_quants): used to
// quantize the sub-block scales and mins of Q4_K/Q5_K with weights w. Returns the scale.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w);

}  // namespace quanta::ref::detail
