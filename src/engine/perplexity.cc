// The perplexity driver: windows of the token stream through one or two models, several
// windows per forward pass (one KV sequence each), only the scored positions' logits
// requested; per-position scores computed on the context's threads and accumulated in order.
#include "engine/perplexity.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "core/system.h"
#include "kv/block_table.h"
#include "models/batch.h"
#include "models/context.h"

namespace quanta::ppl {
namespace {

// Runs `n_seq` windows at a time through one model and returns their scored logits.
class WindowRunner {
 public:
  WindowRunner(const models::Model& model, GgmlType kv_type, kv::KeyTransformMode transform,
               int32_t n_ctx, int32_t n_seq, int32_t n_threads)
      : n_ctx_(n_ctx),
        first_(n_ctx / 2),
        n_seq_(n_seq),
        ctx_(model, options(kv_type, transform, n_ctx, n_seq, n_threads)) {
    for (int32_t s = 0; s < n_seq; ++s) tables_.push_back(ctx_.kv().new_table(n_ctx));
    for (const kv::BlockTable& t : tables_) table_ptrs_.push_back(&t);
    const int32_t n = n_ctx * n_seq;
    tokens_.resize(n);
    positions_.resize(n);
    seq_.resize(n);
    want_.resize(n);
    for (int32_t i = 0; i < n; ++i) {
      const int32_t j = i % n_ctx;
      positions_[i] = j;
      seq_[i] = i / n_ctx;
      want_[i] = j >= first_ && j <= n_ctx - 2 ? 1 : 0;
    }
  }

  int32_t n_scored() const { return n_ctx_ - 1 - first_; }
  int32_t first() const { return first_; }
  models::Context& context() { return ctx_; }

  // Windows [chunk, chunk + n) of `tokens`; returns logits [n * n_scored(), n_vocab].
  const float* run(const std::vector<int32_t>& tokens, int32_t chunk, int32_t n, int32_t bos) {
    QUANTA_ASSERT(n >= 1 && n <= n_seq_);
    for (int32_t s = 0; s < n; ++s) {
      kv::BlockTable& table = tables_[s];
      table.clear(ctx_.kv().pool());
      if (!table.append(ctx_.kv().pool(), n_ctx_)) fail("perplexity: KV cache too small");
      const int32_t* src = tokens.data() + static_cast<int64_t>(chunk + s) * n_ctx_;
      std::copy(src, src + n_ctx_, tokens_.begin() + static_cast<int64_t>(s) * n_ctx_);
      if (bos >= 0) tokens_[static_cast<int64_t>(s) * n_ctx_] = bos;
    }
    models::Batch batch;
    batch.n_tokens = n * n_ctx_;
    batch.tokens = tokens_.data();
    batch.positions = positions_.data();
    batch.seq = seq_.data();
    batch.want_logits = want_.data();
    batch.tables = table_ptrs_.data();
    int32_t n_out = 0;
    const float* logits = ctx_.forward(batch, &n_out);
    QUANTA_ASSERT(n_out == n * n_scored());
    return logits;
  }

 private:
  static models::ContextOptions options(GgmlType kv_type, kv::KeyTransformMode transform,
                                        int32_t n_ctx, int32_t n_seq, int32_t n_threads) {
    models::ContextOptions o;
    o.n_ctx = n_ctx;
    o.n_seq = n_seq;
    o.n_batch = n_ctx * n_seq;
    o.n_outputs = (n_ctx - 1 - n_ctx / 2) * n_seq;
    o.n_threads = n_threads;
    o.kv_type = kv_type;
    o.kv_transform = transform;
    return o;
  }

  int32_t n_ctx_, first_, n_seq_;
  models::Context ctx_;
  std::vector<kv::BlockTable> tables_;
  std::vector<const kv::BlockTable*> table_ptrs_;
  std::vector<int32_t> tokens_, positions_, seq_;
  std::vector<uint8_t> want_;
};

}  // namespace

std::vector<int32_t> tokenize_for_perplexity(const tokenizer::Tokenizer& tok,
                                             const std::string& text) {
  return tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
}

PerplexityResult evaluate_perplexity(const models::Model& model, const std::vector<int32_t>& tokens,
                                     const PerplexityOptions& o, const models::Model* base,
                                     const ProgressFn& progress) {
  if (o.n_ctx < 4) fail("the perplexity context must be at least 4 tokens (got %d)", o.n_ctx);
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2LL * o.n_ctx) {
    fail("the text has %lld tokens; perplexity with a context of %d needs at least %d",
         static_cast<long long>(n_tokens), o.n_ctx, 2 * o.n_ctx);
  }
  const int32_t n_vocab = model.hparams().n_vocab;
  if (base != nullptr && base->hparams().n_vocab != n_vocab) {
    fail("the base model's vocabulary has %d tokens, the model's %d", base->hparams().n_vocab,
         n_vocab);
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) fail("token id %d is outside the vocabulary (%d)", t, n_vocab);
  }
  int32_t n_chunks = static_cast<int32_t>(n_tokens / o.n_ctx);
  if (o.max_chunks > 0) n_chunks = std::min(n_chunks, o.max_chunks);
  const int32_t n_seq = std::max(1, std::min(n_chunks, o.batch_tokens / o.n_ctx));
  const double t0 = now_seconds();
  WindowRunner runner(model, o.kv_type, o.kv_transform, o.n_ctx, n_seq, o.n_threads);
  std::unique_ptr<WindowRunner> base_runner;
  if (base != nullptr) {
    base_runner =
        std::make_unique<WindowRunner>(*base, o.base_kv_type, o.kv_transform, o.n_ctx,
                                                 n_seq, o.n_threads);
  }
  const int32_t n_scored = runner.n_scored();
  ScoreAccumulator acc(base != nullptr);
  std::vector<PositionScore> scores(static_cast<size_t>(n_seq) * n_scored);
  for (int32_t chunk = 0; chunk < n_chunks; chunk += n_seq) {
    const int32_t n = std::min(n_seq, n_chunks - chunk);
    const float* base_logits = base_runner ? base_runner->run(tokens, chunk, n, o.bos) : nullptr;
    const float* logits = runner.run(tokens, chunk, n, o.bos);
    const auto work = [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t window = chunk + r / n_scored;
        const int64_t pos = runner.first() + r % n_scored;
        const int32_t target = tokens[window * o.n_ctx + pos + 1];
        const int64_t off = r * n_vocab;
        scores[r] = score_position(logits + off, base_logits ? base_logits + off : nullptr, n_vocab,
                                   target);
      }
    };
    runner.context().pool().parallel_for(static_cast<int64_t>(n) * n_scored, 1, work);
    for (int64_t r = 0; r < static_cast<int64_t>(n) * n_scored; ++r) acc.add(scores[r]);
    if (progress) progress(chunk + n, n_chunks, acc.running_perplexity());
  }
  PerplexityResult result;
  result.n_ctx = o.n_ctx;
  result.n_chunks = n_chunks;
  result.n_tokens = n_tokens;
  result.seconds = now_seconds() - t0;
  result.summary = acc.finish();
  return result;
}

}  // namespace quanta::ppl
