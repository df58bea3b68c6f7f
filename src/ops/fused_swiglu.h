// The feed-forward gate/up product with SwiGLU in its epilogue: one activation conversion,
// one dispatch over the FFN rows; each thread multiplies its rows of gate and of up, then
// applies silu(gate) * up to exactly those outputs while they are in cache.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"
#include "ops/matmul_group.h"
#include "ops/weight.h"

namespace quanta::ops {

// Scratch bytes matmul_swiglu needs for n_tokens tokens.
size_t swiglu_scratch_bytes(const WeightView& gate, const WeightView& up, int64_t n_tokens);

// gate_out = silu(gate · in) * (up · in), up_out = up · in (gate and up: same shape).
// Bit-identical to two ops::matmul calls followed by ops::swiglu.
void matmul_swiglu(const WeightView& gate, const WeightView& up, const MatmulInput& in,
                   const MatmulOutput& gate_out, const MatmulOutput& up_out, void* scratch,
                   ThreadPool& pool);

}  // namespace quanta::ops
