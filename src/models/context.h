// Inference state for a model: activation buffers and the KV cache, all sized once from
// (n_ctx, n_batch, n_outputs, n_seq) at creation; forward() allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kv/kv_cache.h"
#include "models/batch.h"
#include "models/matmul_observer.h"
#include "models/model.h"
#include "ops/attention.h"
#include "ops/matmul_group.h"
#include "quant/types.h"

namespace quanta::models {

struct ContextOptions {
  int32_t n_ctx = 0;       // max tokens per sequence; 0 = min(training context, 4096)
  int32_t n_batch = 512;   // max tokens per forward pass
  int32_t n_outputs = 0;   // max logit rows per forward pass; 0 = n_batch
  int32_t n_seq = 1;       // sequences the KV cache holds at full context
  int32_t n_threads = 0;   // 0 = all hardware threads
  int32_t kv_block_size = 16;
  int32_t n_kv_blocks = 0;  // KV pool blocks shared by all sequences; 0 = n_seq full contexts
  // KV cache rows: F32, F16, Q8_0 or Q4_0 (converted on store; the quantized types need
  // n_kv_head * head_dim % 32 == 0: narrow heads share quant blocks, see kv::KvLayout).
  GgmlType kv_type = GgmlType::F32;
  // Quantized kv_type only (F32/F16 caches store keys as computed): the exact key transform
  // fitted at creation from a short calibration pass (models/kv_calibration.h) that the
  // cache applies to stored keys and forward() to queries; kNone turns it off.
  kv::KeyTransformMode kv_transform = kv::kDefaultKeyTransform;
  // The thread pool forward() runs on, not owned; null = the context makes its own with
  // n_threads threads (SplitMode::kDynamic). Contexts used in turn from one thread (a
  // speculative draft and its target) share one pool so that no idle pool spins against
  // the active one; contexts used from different threads at the same time must not
  // (ThreadPool asserts it). Given a pool, n_threads must be 0 or its size.
  // Context::options() reports the pool in use, so a context made from another's options()
  // shares its pool.
  ThreadPool* pool = nullptr;
};

class Context {
 public:
  Context(const Model& model, const ContextOptions& options);

  const Model& model() const { return model_; }
  const ContextOptions& options() const { return options_; }
  int32_t n_ctx() const { return options_.n_ctx; }
  int32_t n_vocab() const { return model_.hparams().n_vocab; }
  kv::KvCache& kv() { return kv_; }
  // The pool forward() runs on: the context's own, or the one its options named.
  ThreadPool& pool() { return pool_; }
  uint64_t activation_bytes() const;

  // Runs the batch; returns logits [n_out, n_vocab] for the tokens with want_logits set, in
  // batch order (n_out written to *n_out when non-null). Valid until the next call.
  const float* forward(const Batch& batch, int32_t* n_out = nullptr);

  // Optional hook shown every matmul's input (calibration); null (the default) for none.
  // The observer must outlive its use; forward() calls it on the calling thread.
  void set_matmul_observer(MatmulObserver* observer) { observer_ = observer; }

 private:
  friend class TransformerPass;
  void allocate_buffers();

  const Model& model_;
  ContextOptions options_;
  std::unique_ptr<ThreadPool> own_pool_;  // null when options named a pool
  ThreadPool& pool_;                      // *own_pool_ or *options.pool
  kv::KvCache kv_;
  // Activations, each [n_batch, width] unless noted.
  AlignedBuffer x_;        // residual stream [n_batch, n_embd]
  AlignedBuffer xn_;       // normed input / block output [n_batch, n_embd]
  AlignedBuffer q_;        // [n_batch, n_head * head_dim]
  AlignedBuffer k_;        // [n_batch, n_head_kv * head_dim]
  AlignedBuffer v_;        // [n_batch, n_head_kv * head_dim]
  AlignedBuffer attn_;     // [n_batch, n_head * head_dim]
  AlignedBuffer gate_;     // [n_batch, n_ff]
  AlignedBuffer up_;       // [n_batch, n_ff]
  AlignedBuffer rope_;     // [n_batch, n_rot] cos/sin pairs per token
  AlignedBuffer attn_scratch_;  // [n_threads, ops::flash_scratch_floats] attention tiles
  // A joint key transform (kv::KeyTransform::joint_heads() > 1) only: queries and attention
  // outputs over joint heads, [n_batch, n_head * kv.key_transform().head_dim()].
  AlignedBuffer q_wide_;
  AlignedBuffer attn_wide_;
  std::vector<ops::PagedKvView> kv_views_;  // [n_batch] the K/V each token attends to
  AlignedBuffer out_x_;    // [n_outputs, n_embd] hidden states of output tokens
  AlignedBuffer logits_;   // [n_outputs, n_vocab]
  AlignedBuffer matmul_scratch_;  // activations converted to vec_dot types (+ a normed row)
  std::vector<ops::MatmulGroupPlan> qkv_plans_;  // [n_layer] Q, K, V split over the threads
  MatmulObserver* observer_ = nullptr;
};

// Builds the KV layout a context with these options uses (for memory estimates too).
kv::KvLayout kv_layout_for(const HParams& hp, const ContextOptions& options);
// Fills in the defaults (n_ctx, n_outputs, n_threads) of `options` for `hp`; n_threads
// comes from `pool` when one is given (a different positive n_threads is an error).
ContextOptions resolve_options(const HParams& hp, ContextOptions options);
// Head counts, head size and the 1 / sqrt(head_dim) score scale of the model's attention.
ops::AttentionShape attention_shape(const HParams& hp);
// The shape attention runs with over `kv`: attention_shape(hp), or with a joint key transform,
// joint heads of kv.key_transform().head_dim() values (same scale, fewer KV heads).
ops::AttentionShape attention_shape(const HParams& hp, const kv::KvCache& kv);

}  // namespace quanta::models
