// Context creation: resolves options and sizes every buffer once.
#include "models/context.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/system.h"
#include "models/kv_calibration.h"
#include "ops/flash_attention.h"
#include "ops/fused_swiglu.h"
#include "ops/matmul.h"

namespace quanta::models {

ContextOptions resolve_options(const HParams& hp, ContextOptions o) {
  if (o.n_ctx <= 0) o.n_ctx = std::min(hp.n_ctx_train, 4096);
  if (o.n_batch <= 0) fail("n_batch must be positive (got %d)", o.n_batch);
  o.n_batch = std::min(o.n_batch, o.n_ctx * std::max(1, o.n_seq));
  if (o.n_outputs <= 0) o.n_outputs = o.n_batch;
  o.n_outputs = std::min(o.n_outputs, o.n_batch);
  if (o.n_seq <= 0) fail("n_seq must be positive (got %d)", o.n_seq);
  if (o.pool != nullptr) {
    if (o.n_threads > 0 && o.n_threads != o.pool->n_threads()) {
      fail("n_threads is %d but the shared thread pool has %d threads", o.n_threads,
           o.pool->n_threads());
    }
    o.n_threads = o.pool->n_threads();
  }
  if (o.n_threads <= 0) o.n_threads = hardware_threads();
  if (o.kv_block_size <= 0) fail("kv block size must be positive (got %d)", o.kv_block_size);
  if (o.n_kv_blocks < 0) fail("n_kv_blocks must be >= 0 (got %d)", o.n_kv_blocks);
  kv::check_kv_type(o.kv_type, hp.head_dim, hp.n_head_kv);
  return o;
}

ops::AttentionShape attention_shape(const HParams& hp) {
  ops::AttentionShape shape;
  shape.n_head = hp.n_head;
  shape.n_kv_head = hp.n_head_kv;
  shape.head_dim = hp.head_dim;
  shape.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
  return shape;
}

ops::AttentionShape attention_shape(const HParams& hp, const kv::KvCache& kv) {
  ops::AttentionShape shape = attention_shape(hp);
  const int32_t joint = kv.key_transform().active() ? kv.key_transform().joint_heads() : 1;
  shape.n_kv_head /= joint;
  shape.head_dim *= joint;
  return shape;
}

kv::KvLayout kv_layout_for(const HParams& hp, const ContextOptions& o) {
  kv::KvLayout layout;
  layout.n_layer = hp.n_layer;
  layout.n_kv_head = hp.n_head_kv;
  layout.head_dim = hp.head_dim;
  layout.block_size = o.kv_block_size;
  layout.type = o.kv_type;
  const int32_t blocks_per_seq = (o.n_ctx + o.kv_block_size - 1) / o.kv_block_size;
  layout.n_blocks = o.n_kv_blocks > 0 ? o.n_kv_blocks : blocks_per_seq * o.n_seq;
  return layout;
}

Context::Context(const Model& model, const ContextOptions& options)
    : model_(model),
      options_(resolve_options(model.hparams(), options)),
      own_pool_(options_.pool != nullptr
                    ? nullptr
                    : std::make_unique<ThreadPool>(options_.n_threads, SplitMode::kDynamic)),
      pool_(options_.pool != nullptr ? *options_.pool : *own_pool_),
      kv_(kv_layout_for(model.hparams(), options_)) {
  options_.pool = &pool_;  // a context made from options() shares this pool
  if (options_.kv_type != GgmlType::F32 && options_.kv_type != GgmlType::F16) {
    kv_.set_key_transform(
        calibrate_key_transform(model, options_.kv_transform, pool_, options_.kv_type));
  }
  allocate_buffers();  // after the transform: its joint heads set the attention shape
}

namespace {

// Parts per thread of the Q/K/V plans: small parts let the pool's dynamic split even out
// threads that run at different speeds (a busy SMT sibling); a contiguous split gives each
// thread about the rows one part per thread would.
constexpr int kQkvPartsPerThread = 8;

size_t max_matmul_scratch(const ModelWeights& w, int64_t n_tokens) {
  size_t bytes = ops::matmul_scratch_bytes(w.output.type, w.output.n_cols, n_tokens);
  for (const LayerWeights& l : w.layers) {
    for (const ops::WeightView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      bytes = std::max(bytes, ops::matmul_scratch_bytes(m->type, m->n_cols, n_tokens));
    }
    const ops::WeightView qkv[3] = {l.wq, l.wk, l.wv};
    bytes = std::max(bytes, ops::group_scratch_bytes(qkv, 3, n_tokens));
    bytes = std::max(bytes, ops::swiglu_scratch_bytes(l.w_gate, l.w_up, n_tokens));
  }
  return bytes;
}

}  // namespace

void Context::allocate_buffers() {
  const HParams& hp = model_.hparams();
  const size_t nb = options_.n_batch;
  const size_t f = sizeof(float);
  x_.resize(nb * hp.n_embd * f);
  xn_.resize(nb * hp.n_embd * f);
  q_.resize(nb * hp.q_dim() * f);
  k_.resize(nb * hp.kv_dim() * f);
  v_.resize(nb * hp.kv_dim() * f);
  attn_.resize(nb * hp.q_dim() * f);
  gate_.resize(nb * hp.n_ff * f);
  up_.resize(nb * hp.n_ff * f);
  rope_.resize(nb * hp.n_rot * f);
  const ops::AttentionShape shape = attention_shape(hp, kv_);
  attn_scratch_.resize(static_cast<size_t>(pool_.n_threads()) *
                       ops::flash_scratch_floats(shape) * f);
  if (shape.head_dim != hp.head_dim) {
    q_wide_.resize(nb * hp.n_head * shape.head_dim * f);
    attn_wide_.resize(nb * hp.n_head * shape.head_dim * f);
  }
  kv_views_.resize(nb);
  out_x_.resize(static_cast<size_t>(options_.n_outputs) * hp.n_embd * f);
  logits_.resize(static_cast<size_t>(options_.n_outputs) * hp.n_vocab * f);
  matmul_scratch_.resize(max_matmul_scratch(model_.weights(), options_.n_batch));
  qkv_plans_.clear();
  for (const LayerWeights& l : model_.weights().layers) {
    const ops::WeightView qkv[3] = {l.wq, l.wk, l.wv};
    // Q and K take RoPE in the plan's epilogue: split them on whole rotation pairs.
    const int32_t rope_align = ops::rope_row_align(hp.arch->rope_style, hp.head_dim);
    const int32_t row_align[3] = {rope_align, rope_align, 1};
    qkv_plans_.emplace_back(qkv, 3, pool_.n_threads() * kQkvPartsPerThread, row_align);
  }
}

uint64_t Context::activation_bytes() const {
  uint64_t total = 0;
  for (const AlignedBuffer* b : {&x_, &xn_, &q_, &k_, &v_, &attn_, &gate_, &up_, &rope_,
                                 &attn_scratch_, &q_wide_, &attn_wide_, &out_x_, &logits_,
                                 &matmul_scratch_}) {
    total += b->size();
  }
  return total;
}

}  // namespace quanta::models
