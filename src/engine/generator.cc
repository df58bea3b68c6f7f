// Generator: prefill/decode over one sequence and the sampling loop.
#include "engine/generator.h"

#include <algorithm>

#include "core/error.h"
#include "core/system.h"

namespace quanta {

Generator::Generator(models::Context& ctx)
    : ctx_(ctx),
      table_(ctx.kv().new_table(ctx.n_ctx())),
      positions_(ctx.options().n_batch),
      seq_(ctx.options().n_batch, 0),
      want_logits_(ctx.options().n_batch) {
  tables_[0] = &table_;
}

Generator::~Generator() { table_.clear(ctx_.kv().pool()); }

void Generator::reset() { table_.clear(ctx_.kv().pool()); }

void Generator::truncate(int32_t n_past) {
  if (n_past < 0 || n_past > table_.n_tokens()) {
    fail("truncate: %d is outside the sequence's [0, %d] tokens", n_past, table_.n_tokens());
  }
  table_.truncate(ctx_.kv().pool(), n_past);
}

const float* Generator::run_chunk(const int32_t* tokens, int32_t n, bool all_logits) {
  const int32_t start = table_.n_tokens();
  if (!table_.append(ctx_.kv().pool(), n)) {
    fail("context is full: %d tokens in the sequence plus %d new exceed n_ctx %d (or the KV "
         "cache has no free blocks)",
         start, n, ctx_.n_ctx());
  }
  for (int32_t i = 0; i < n; ++i) {
    positions_[i] = start + i;
    want_logits_[i] = all_logits || i == n - 1 ? 1 : 0;
  }
  models::Batch batch;
  batch.n_tokens = n;
  batch.tokens = tokens;
  batch.positions = positions_.data();
  batch.seq = seq_.data();
  batch.want_logits = want_logits_.data();
  batch.tables = tables_;
  return ctx_.forward(batch);
}

const float* Generator::prefill(const int32_t* tokens, int32_t n, bool all_logits) {
  if (n <= 0) fail("prefill: no tokens");
  const int32_t n_batch = ctx_.options().n_batch;
  if (all_logits && n > ctx_.options().n_outputs) {
    fail("prefill: %d logit rows requested, the context holds %d", n, ctx_.options().n_outputs);
  }
  const float* logits = nullptr;
  for (int32_t done = 0; done < n; done += n_batch) {
    const int32_t chunk = std::min(n_batch, n - done);
    if (all_logits && chunk != n) fail("prefill: all_logits needs n <= n_batch (%d)", n_batch);
    logits = run_chunk(tokens + done, chunk, all_logits);
  }
  return logits;
}

const float* Generator::decode(int32_t token) { return run_chunk(&token, 1, false); }

GenerateStats Generator::generate(const std::vector<int32_t>& prompt, int32_t n_predict,
                                  Sampler& sampler, const std::function<bool(int32_t)>& on_token,
                                  const std::function<bool(int32_t)>& is_eog) {
  GenerateStats stats;
  stats.n_prompt = static_cast<int32_t>(prompt.size());
  for (int32_t t : prompt) sampler.accept(t);
  const double t0 = now_seconds();
  const float* logits = prefill(prompt.data(), stats.n_prompt);
  stats.prompt_seconds = now_seconds() - t0;
  double t_first = 0.0;
  for (int32_t i = 0; i < n_predict; ++i) {
    const int32_t token = sampler.sample(logits);
    sampler.accept(token);
    if (i == 0) {
      t_first = now_seconds();
      stats.ttft_seconds = t_first - t0;
    }
    if (is_eog && is_eog(token)) {
      stats.stopped_at_eog = true;
      break;
    }
    ++stats.n_generated;
    if (!on_token(token)) break;
    if (i + 1 == n_predict || table_.n_tokens() >= ctx_.n_ctx()) break;
    logits = decode(token);
  }
  if (stats.n_generated > 0) stats.decode_seconds = now_seconds() - t_first;
  return stats;
}

}  // namespace quanta
