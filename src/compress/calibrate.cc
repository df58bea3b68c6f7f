// llama-imatrix's loop: chunks of n_ctx tokens, first token replaced by BOS, a fresh KV
// cache per chunk, one forward pass per chunk with a MatmulObserver accumulating x^2.
#include "compress/calibrate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "engine/generator.h"
#include "models/context.h"
#include "models/matmul_observer.h"
#include "tokenizer/tokenizer.h"

namespace quanta::compress {
namespace {

class Collector : public models::MatmulObserver {
 public:
  Collector(ImportanceMatrix& m, bool process_output) : m_(m), process_output_(process_output) {}
  void observe(int32_t layer, models::MatmulWeight w, const float* x, int32_t n_rows,
               int64_t n_cols) override {
    if (w == models::MatmulWeight::kOutput && !process_output_) return;
    m_.add(models::matmul_weight_name(layer, w), x, n_rows, n_cols);
  }

 private:
  ImportanceMatrix& m_;
  bool process_output_;
};

// -log p(token) from a row of logits, in double like llama.cpp's log_softmax.
double negative_log_prob(const float* logits, int32_t n_vocab, int32_t token) {
  float max_logit = logits[0];
  for (int32_t i = 1; i < n_vocab; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum_exp = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
  return -(logits[token] - max_logit - std::log(sum_exp));
}

}  // namespace

CalibrationResult calibrate(const models::Model& model, const std::string& text,
                            const std::string& dataset, const CalibrationOptions& o) {
  if (o.n_ctx < 2) fail("calibration context must be at least 2 tokens (got %d)", o.n_ctx);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(model.file());
  std::vector<int32_t> tokens = tok.encode(text, /*add_special=*/true);
  CalibrationResult result;
  result.n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t n_chunk_max = result.n_tokens / o.n_ctx;
  if (n_chunk_max < 1) {
    fail("the calibration text has %lld tokens, fewer than one chunk of %d (lower --ctx)",
         static_cast<long long>(result.n_tokens), o.n_ctx);
  }
  const int32_t n_chunks = static_cast<int32_t>(
      o.n_chunks < 0 ? n_chunk_max : std::min<int64_t>(o.n_chunks, n_chunk_max));

  models::ContextOptions copt;
  copt.n_ctx = o.n_ctx;
  copt.n_batch = o.n_ctx;
  copt.n_outputs = o.n_ctx;
  copt.n_threads = o.n_threads;
  models::Context ctx(model, copt);
  Generator gen(ctx);
  Collector collector(result.imatrix, o.process_output);
  ctx.set_matmul_observer(&collector);

  const int32_t n_vocab = ctx.n_vocab();
  const int32_t first = o.n_ctx / 2;
  double nll = 0.0;
  int64_t n_scored = 0;
  for (int32_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + static_cast<int64_t>(c) * o.n_ctx,
                               tokens.begin() + static_cast<int64_t>(c + 1) * o.n_ctx);
    if (tok.add_bos()) chunk[0] = tok.bos();
    gen.reset();
    const float* logits = gen.prefill(chunk.data(), o.n_ctx, /*all_logits=*/true);
    for (int32_t i = first; i < o.n_ctx - 1; ++i) {
      nll += negative_log_prob(logits + static_cast<int64_t>(i) * n_vocab, n_vocab,
                               tokens[static_cast<int64_t>(c) * o.n_ctx + i + 1]);
      ++n_scored;
    }
    result.n_chunks = c + 1;
    result.perplexity = n_scored > 0 ? std::exp(nll / static_cast<double>(n_scored)) : 0.0;
    if (o.on_chunk) o.on_chunk(c + 1, n_chunks, result.perplexity);
  }
  ctx.set_matmul_observer(nullptr);
  result.imatrix.n_chunks = result.n_chunks;
  result.imatrix.chunk_size = o.n_ctx;
  result.imatrix.dataset = dataset;
  return result;
}

}  // namespace quanta::compress
