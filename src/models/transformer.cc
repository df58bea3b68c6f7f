// The shared decoder-only transformer forward pass, assembled from blocks (embedding,
// attention, feed-forward, output head) and parameterised by the ArchSpec. All buffers come
// from the Context; nothing is allocated here. Q/K/V and gate/up run as grouped products
// with RMSNorm fused into their activation conversion, the Q/K/V biases and RoPE into the
// Q/K/V epilogue and SwiGLU into the gate/up epilogue.

#include <initializer_list>

#include "core/error.h"
#include "models/context.h"
#include "ops/elementwise.h"
#include "ops/flash_attention.h"
#include "ops/fused_swiglu.h"
#include "ops/matmul.h"
#include "ops/matmul_group.h"
#include "ops/rope.h"

namespace quanta::models {

class TransformerPass {
 public:
  TransformerPass(Context& ctx, const Batch& batch)
      : ctx_(ctx), hp_(ctx.model_.hparams()), w_(ctx.model_.weights()), batch_(batch) {}

  int32_t run() {
    validate();
    embed_and_rope();
    for (int32_t l = 0; l < hp_.n_layer; ++l) {
      attention_block(l);
      ffn_block(l);
    }
    return output_head();
  }

 private:
  float* buf(AlignedBuffer& b) { return b.as<float>(); }

  void validate() const {
    const ContextOptions& o = ctx_.options_;
    QUANTA_ASSERT(batch_.n_tokens > 0 && batch_.n_tokens <= o.n_batch);
    for (int32_t t = 0; t < batch_.n_tokens; ++t) {
      QUANTA_ASSERT(batch_.tokens[t] >= 0 && batch_.tokens[t] < hp_.n_vocab);
      const kv::BlockTable* table = batch_.tables[batch_.seq[t]];
      QUANTA_ASSERT(batch_.positions[t] >= 0 && batch_.positions[t] < table->n_tokens());
    }
  }

  // x[t] = token_embd[token_t] and the token's RoPE cos/sin row, tokens split over the pool.
  void embed_and_rope() {
    const ops::RopeParams p = rope_params();
    ctx_.pool_.parallel_for(batch_.n_tokens, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        ops::dequantize_row(w_.token_embd, batch_.tokens[t], buf(ctx_.x_) + t * hp_.n_embd);
        ops::rope_cache(p, batch_.positions[t], buf(ctx_.rope_) + t * hp_.n_rot);
      }
    });
  }

  ops::RopeParams rope_params() const {
    ops::RopeParams p;
    p.style = hp_.arch->rope_style;
    p.n_rot = hp_.n_rot;
    p.freq_base = hp_.rope_freq_base;
    p.freq_scale = hp_.rope_freq_scale;
    p.freq_factors = w_.rope_freqs;
    return p;
  }

  // A block's last product into xn_, added to the residual stream x_ by each thread on the
  // rows it computed (x += xn, as ops::add).
  void matmul_residual(const ops::WeightView& w, AlignedBuffer& in, int32_t layer,
                       MatmulWeight which) {
    if (ctx_.observer_ != nullptr) {
      ctx_.observer_->observe(layer, which, buf(in), batch_.n_tokens, w.n_cols);
    }
    QUANTA_ASSERT(w.n_rows == hp_.n_embd);
    ops::matmul(w, buf(in), w.n_cols, batch_.n_tokens, buf(ctx_.xn_), w.n_rows,
                ctx_.matmul_scratch_.data(), ctx_.pool_, buf(ctx_.x_));
  }

  void norm_all(const float* weight) {
    for (int32_t t = 0; t < batch_.n_tokens; ++t) {
      ops::rms_norm(buf(ctx_.x_) + t * hp_.n_embd, weight, hp_.n_embd, hp_.norm_eps,
                    buf(ctx_.xn_) + t * hp_.n_embd);
    }
  }

  // The input of a block's first products: x normed on the fly into xn_ while it is
  // converted (tokens in parallel), or, with an observer (which must see the normed rows),
  // normed into xn_ and shown first.
  ops::MatmulInput normed_input(const float* norm, int32_t layer,
                                std::initializer_list<MatmulWeight> which) {
    ops::MatmulInput in;
    in.n_tokens = batch_.n_tokens;
    in.x_stride = hp_.n_embd;
    if (ctx_.observer_ == nullptr) {
      in.x = buf(ctx_.x_);
      in.norm = norm;
      in.norm_eps = hp_.norm_eps;
      in.norm_out = buf(ctx_.xn_);
      return in;
    }
    norm_all(norm);
    for (MatmulWeight w : which) {
      ctx_.observer_->observe(layer, w, buf(ctx_.xn_), batch_.n_tokens, hp_.n_embd);
    }
    in.x = buf(ctx_.xn_);
    return in;
  }

  // Q/K/V projections with their biases and RoPE applied by each thread to the rows it just
  // computed (the plan splits on whole rotation pairs), K/V into the cache, attention over the
  // cache, output projection added to the residual stream.
  void attention_block(int32_t l) {
    const LayerWeights& lw = w_.layers[l];
    const ops::MatmulInput in = normed_input(
        lw.attn_norm, l, {MatmulWeight::kAttnQ, MatmulWeight::kAttnK, MatmulWeight::kAttnV});
    const ops::RopeEpilogue rope{rope_params(), buf(ctx_.rope_), hp_.head_dim};
    const ops::MatmulOutput out[3] = {{buf(ctx_.q_), lw.wq.n_rows, lw.bq, &rope},
                                      {buf(ctx_.k_), lw.wk.n_rows, lw.bk, &rope},
                                      {buf(ctx_.v_), lw.wv.n_rows, lw.bv, nullptr}};
    ctx_.qkv_plans_[l].run(in, out, ctx_.matmul_scratch_.data(), ctx_.pool_);
    store_kv(l);
    transform_queries(l);
    attend(l);
    restore_outputs(l);
    matmul_residual(lw.wo, ctx_.attn_, l, MatmulWeight::kAttnOutput);
  }

  // K/V rows of every batch token into its sequence's blocks (converted to the cache type).
  void store_kv(int32_t l) {
    for (int32_t t = 0; t < batch_.n_tokens; ++t) {
      const kv::BlockTable& table = *batch_.tables[batch_.seq[t]];
      ctx_.kv_.store(l, table, batch_.positions[t], buf(ctx_.k_) + t * hp_.kv_dim(),
                     buf(ctx_.v_) + t * hp_.kv_dim());
    }
  }

  // Queries into the basis of the cache's transformed keys (kv::KeyTransform), if it has one;
  // a calibration observer sees them first, untransformed.
  void transform_queries(int32_t l) {
    if (ctx_.observer_ != nullptr) {
      ctx_.observer_->observe_queries(l, buf(ctx_.q_), batch_.n_tokens, hp_.q_dim());
    }
    const kv::KeyTransform& kt = ctx_.kv_.key_transform();
    if (!kt.active()) return;
    // Joint heads: wider query rows in q_wide_; otherwise in place.
    float* out = buf(wide() ? ctx_.q_wide_ : ctx_.q_);
    const int64_t out_row = static_cast<int64_t>(hp_.n_head) * kt.head_dim();
    for (int32_t t = 0; t < batch_.n_tokens; ++t) {
      kt.apply_query(l, buf(ctx_.q_) + t * hp_.q_dim(), out + t * out_row, hp_.n_head);
    }
  }

  // Whether attention runs over joint heads (a joint key transform): q_wide_ / attn_wide_.
  bool wide() const {
    const kv::KeyTransform& kt = ctx_.kv_.key_transform();
    return kt.active() && kt.joint_heads() > 1;
  }

  // Attention outputs back from the basis of the cache's transformed values, if it has one.
  void restore_outputs(int32_t l) {
    const kv::KeyTransform& kt = ctx_.kv_.key_transform();
    if (!wide() && !kt.has_values()) return;
    // Joint heads: each query head's slot of its joint output, restored, into attn_.
    float* o = buf(wide() ? ctx_.attn_wide_ : ctx_.attn_);
    const int64_t o_row = static_cast<int64_t>(hp_.n_head) * kt.head_dim();
    for (int32_t t = 0; t < batch_.n_tokens; ++t) {
      kt.restore_output(l, o + t * o_row, buf(ctx_.attn_) + t * hp_.q_dim(), hp_.n_head);
    }
  }

  // Flash attention, one work item per (token, KV head) with all its query heads.
  void attend(int32_t l) {
    for (int32_t t = 0; t < batch_.n_tokens; ++t) {
      ctx_.kv_views_[t] = ctx_.kv_.attention_view(l, *batch_.tables[batch_.seq[t]]);
    }
    ops::AttentionBatch ab;
    ab.n_tokens = batch_.n_tokens;
    ab.q = buf(wide() ? ctx_.q_wide_ : ctx_.q_);
    ab.out = buf(wide() ? ctx_.attn_wide_ : ctx_.attn_);
    ab.kv = ctx_.kv_views_.data();
    ab.positions = batch_.positions;
    ops::flash_attention(ab, attention_shape(hp_, ctx_.kv_), buf(ctx_.attn_scratch_), ctx_.pool_);
  }

  void ffn_block(int32_t l) {
    const LayerWeights& lw = w_.layers[l];
    const ops::MatmulInput in =
        normed_input(lw.ffn_norm, l, {MatmulWeight::kFfnGate, MatmulWeight::kFfnUp});
    ops::matmul_swiglu(lw.w_gate, lw.w_up, in, {buf(ctx_.gate_), lw.w_gate.n_rows},
                       {buf(ctx_.up_), lw.w_up.n_rows}, ctx_.matmul_scratch_.data(), ctx_.pool_);
    matmul_residual(lw.w_down, ctx_.gate_, l, MatmulWeight::kFfnDown);
  }

  // Final norm and vocabulary projection for the tokens that want logits.
  int32_t output_head() {
    int32_t n_out = 0;
    for (int32_t t = 0; t < batch_.n_tokens; ++t) {
      const bool want = batch_.want_logits ? batch_.want_logits[t] != 0 : t == batch_.n_tokens - 1;
      if (!want) continue;
      QUANTA_ASSERT(n_out < ctx_.options_.n_outputs);
      ops::rms_norm(buf(ctx_.x_) + t * hp_.n_embd, w_.output_norm, hp_.n_embd, hp_.norm_eps,
                    buf(ctx_.out_x_) + n_out * hp_.n_embd);
      ++n_out;
    }
    if (n_out > 0 && ctx_.observer_ != nullptr) {
      ctx_.observer_->observe(-1, MatmulWeight::kOutput, buf(ctx_.out_x_), n_out, hp_.n_embd);
    }
    if (n_out > 0) {
      ops::matmul(w_.output, buf(ctx_.out_x_), hp_.n_embd, n_out, buf(ctx_.logits_), hp_.n_vocab,
                  ctx_.matmul_scratch_.data(), ctx_.pool_);
    }
    return n_out;
  }

  Context& ctx_;
  const HParams& hp_;
  const ModelWeights& w_;
  const Batch& batch_;
};

const float* Context::forward(const Batch& batch, int32_t* n_out) {
  TransformerPass pass(*this, batch);
  const int32_t produced = pass.run();
  if (n_out != nullptr) *n_out = produced;
  return logits_.as<float>();
}

}  // namespace quanta::models
