// Grouped matrix products (see matmul_group.h): one conversion per vec_dot_type, one dispatch
// over byte-balanced row ranges of all the weights, each range through the kernel table.
#include "ops/matmul_group.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "kernels/kernel_table.h"
#include "ops/elementwise.h"

namespace quanta::ops {
namespace {

constexpr size_t kAlign = 64;

size_t align_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

GgmlType act_type(const WeightView& w) {
  return type_traits(w.type).vec_dot_type;
}

// Index of the first weight before i with i's vec_dot_type, or i itself.
int first_with_act_type(const WeightView* weights, int i) {
  for (int j = 0; j < i; ++j) {
    if (act_type(weights[j]) == act_type(weights[i])) return j;
  }
  return i;
}

void check_weights(const WeightView* weights, int n_weights) {
  QUANTA_ASSERT(n_weights >= 1 && n_weights <= kMaxGroupWeights);
  for (int i = 1; i < n_weights; ++i) QUANTA_ASSERT(weights[i].n_cols == weights[0].n_cols);
}

// The epilogue of out for rows [begin, end) of tokens [t_begin, t_end): bias, then RoPE.
void apply_epilogue(const MatmulOutput& out, int64_t t_begin, int64_t t_end, int64_t begin,
                    int64_t end) {
  for (int64_t t = t_begin; t < t_end; ++t) {
    float* y = out.y + t * out.y_stride;
    if (out.bias != nullptr) add(y + begin, out.bias + begin, end - begin);
    if (out.rope != nullptr) {
      const RopeEpilogue& r = *out.rope;
      rope_apply_range(r.params, r.cos_sin + t * r.params.n_rot, y, r.head_dim, begin, end);
    }
  }
}

}  // namespace

size_t group_scratch_bytes(const WeightView* weights, int n_weights, int64_t n_tokens) {
  check_weights(weights, n_weights);
  const int64_t k = weights[0].n_cols;
  size_t bytes = align_up(static_cast<size_t>(k) * sizeof(float));
  for (int i = 0; i < n_weights; ++i) {
    if (first_with_act_type(weights, i) != i) continue;
    bytes += align_up(row_size(act_type(weights[i]), k) * static_cast<size_t>(n_tokens));
  }
  return bytes;
}

InputConverter::InputConverter(const WeightView* weights, int n_weights, const MatmulInput& in,
                               void* scratch)
    : in_(in), k_(weights[0].n_cols) {
  check_weights(weights, n_weights);
  const kernels::KernelTable& table = kernels::active();
  auto* base = static_cast<uint8_t*>(scratch);
  scratch_row_ = reinterpret_cast<float*>(base);
  uint8_t* next = base + align_up(static_cast<size_t>(k_) * sizeof(float));
  for (int i = 0; i < n_weights; ++i) {
    const int j = first_with_act_type(weights, i);
    c_.act_row_bytes[i] = row_size(act_type(weights[i]), k_);
    if (j != i) {
      c_.act[i] = c_.act[j];
      continue;
    }
    c_.act[i] = dst_[i] = next;
    next += align_up(c_.act_row_bytes[i] * static_cast<size_t>(in.n_tokens));
    convert_[i] = table.from_float[static_cast<uint32_t>(act_type(weights[i]))];
    QUANTA_ASSERT(convert_[i] != nullptr);
    distinct_[n_distinct_++] = i;
  }
}

void InputConverter::convert(int64_t t_begin, int64_t t_end) const {
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* row = in_.x + t * in_.x_stride;
    if (in_.norm != nullptr) {
      float* normed = in_.norm_out != nullptr ? in_.norm_out + t * k_ : scratch_row_;
      rms_norm(row, in_.norm, k_, in_.norm_eps, normed);
      row = normed;
    }
    for (int d = 0; d < n_distinct_; ++d) {
      const int i = distinct_[d];
      convert_[i](row, dst_[i] + t * c_.act_row_bytes[i], k_);
    }
  }
}

void InputConverter::convert_all(ThreadPool& pool) const {
  if (!parallel()) return convert(0, in_.n_tokens);  // one shared normed row
  pool.parallel_for(in_.n_tokens, 1, [this](int64_t b, int64_t e) { convert(b, e); });
}

bool split_tokens(int64_t n_tokens, const ThreadPool& pool, const WeightView& w) {
  if (kernels::active().wants_all_tokens[static_cast<int>(w.layout)]) return false;
  return pool.n_threads() > 1 && n_tokens >= 4 * kTokenGrain * pool.n_threads();
}

MatmulGroupPlan::MatmulGroupPlan(const WeightView* weights, int n_weights, int n_parts,
                                 const int32_t* row_align)
    : n_weights_(n_weights), n_parts_(std::max(1, n_parts)) {
  check_weights(weights, n_weights);
  size_t total = 0;
  for (int i = 0; i < n_weights; ++i) {
    QUANTA_ASSERT(row_align == nullptr || row_align[i] >= 1);
    grains_[i] = std::lcm<int64_t>(kGroupGrain, row_align != nullptr ? row_align[i] : 1);
    weights_[i] = weights[i];
    total += weights[i].row_bytes * static_cast<size_t>(weights[i].n_rows);
  }
  // Part boundaries as positions in the weights' concatenated rows, nondecreasing.
  bounds_.assign(static_cast<size_t>(n_parts_ + 1) * n_weights_, 0);
  int64_t prev = 0, n_all = 0;
  for (int i = 0; i < n_weights; ++i) n_all += weights[i].n_rows;
  for (int p = 0; p <= n_parts_; ++p) {
    int64_t pos = n_all;
    if (p < n_parts_) {
      const double target = static_cast<double>(total) * p / n_parts_;
      double cum = 0.0;
      int64_t offset = 0;
      for (int i = 0; i < n_weights; ++i) {
        const double bytes = static_cast<double>(weights[i].row_bytes) * weights[i].n_rows;
        if (target < cum + bytes || i == n_weights - 1) {
          const double rows = (target - cum) / static_cast<double>(weights[i].row_bytes);
          const double g = static_cast<double>(grains_[i]);
          int64_t r = static_cast<int64_t>(rows / g + 0.5) * grains_[i];
          pos = offset + std::clamp<int64_t>(r, 0, weights[i].n_rows);
          break;
        }
        cum += bytes;
        offset += weights[i].n_rows;
      }
    }
    pos = std::max(pos, prev);
    prev = pos;
    int64_t offset = 0;
    for (int i = 0; i < n_weights; ++i) {
      bounds_[p * n_weights_ + i] = std::clamp<int64_t>(pos - offset, 0, weights[i].n_rows);
      offset += weights[i].n_rows;
    }
  }
}

size_t MatmulGroupPlan::scratch_bytes(int64_t n_tokens) const {
  return group_scratch_bytes(weights_, n_weights_, n_tokens);
}

void MatmulGroupPlan::run(const MatmulInput& in, const MatmulOutput* out, void* scratch,
                          ThreadPool& pool) const {
  QUANTA_ASSERT(n_weights_ > 0);
  for (int i = 0; i < n_weights_; ++i) {  // RoPE needs every row range to hold whole pairs
    if (out[i].rope == nullptr) continue;
    const int64_t align = rope_row_align(out[i].rope->params.style, out[i].rope->head_dim);
    QUANTA_ASSERT(grains_[i] % align == 0 && weights_[i].n_rows % align == 0);
  }
  const kernels::KernelTable& table = kernels::active();
  const InputConverter conv(weights_, n_weights_, in, scratch);
  const ConvertedInput& c = conv.converted();
  bool split = conv.parallel();
  for (int i = 0; i < n_weights_ && split; ++i)
    split = split_tokens(in.n_tokens, pool, weights_[i]);
  if (split) {
    const auto tokens = [&](int64_t t_begin, int64_t t_end) {
      conv.convert(t_begin, t_end);
      for (int i = 0; i < n_weights_; ++i) {
        const WeightView& w = weights_[i];
        w.rows_fn(table)(w.type, w.data, w.row_bytes, w.n_cols,
                         c.act[i] + t_begin * c.act_row_bytes[i], c.act_row_bytes[i],
                         t_end - t_begin, out[i].y + t_begin * out[i].y_stride, out[i].y_stride, 0,
                         w.n_rows);
        if (out[i].bias != nullptr || out[i].rope != nullptr) {
          apply_epilogue(out[i], t_begin, t_end, 0, w.n_rows);
        }
      }
    };
    pool.parallel_for(in.n_tokens, kTokenGrain, tokens);
    return;
  }
  conv.convert_all(pool);
  // Consecutive parts hold consecutive rows: one kernel call per weight for all the parts a
  // thread claims at once (each call prepares the activations anew).
  const auto parts = [&](int64_t p_begin, int64_t p_end) {
    for (int i = 0; i < n_weights_; ++i) {
      const int64_t begin = row_begin(static_cast<int>(p_begin), i);
      const int64_t end = row_end(static_cast<int>(p_end - 1), i);
      if (begin >= end) continue;
      const WeightView& w = weights_[i];
      w.rows_fn(table)(w.type, w.data, w.row_bytes, w.n_cols, c.act[i], c.act_row_bytes[i],
                       in.n_tokens, out[i].y, out[i].y_stride, begin, end);
      if (out[i].bias != nullptr || out[i].rope != nullptr) {
        apply_epilogue(out[i], 0, in.n_tokens, begin, end);
      }
    }
  };
  pool.parallel_for(n_parts_, 1, parts);
}

}  // namespace quanta::ops
