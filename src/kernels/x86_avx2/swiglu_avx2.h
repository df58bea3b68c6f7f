// AVX2+FMA SwiGLU, bit-identical to the scalar ops::swiglu on x86-64 glibc: the exponential
// is glibc's expf algorithm (the FMA variant the scalar code calls here) evaluated 4 lanes at
// a time, and lanes outside its fast range fall back to std::exp.
// Plain declarations: call only when the CPU has AVX2 and FMA.
#pragma once

#include <cstdint>

namespace quanta::kernels::avx2 {

// gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for i in [0, n).
void swiglu(float* gate, const float* up, int64_t n);

// out[i] = expf(x[i]) for i in [0, n), equal to glibc's expf bit for bit (tests use it).
void expf_rows(const float* x, float* out, int64_t n);

}  // namespace quanta::kernels::avx2
