// Key-transform calibration: the built-in text through a temporary F32-cache context, every
// layer's queries (seen by an observer) and stored keys handed to kv::KeyTransform::fit.
#include "models/kv_calibration.h"

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/context.h"
#include "tokenizer/tokenizer.h"

namespace quanta::models {
namespace {

// Written for this purpose (not taken from any evaluation text): a short story and a few
// plain sentences of other registers, so that both story-trained and general models see
// ordinary English.
constexpr const char* kCalibrationText =
    "Once upon a time there was a little dog named Max. Max lived in a small house near the "
    "river with an old man who loved him very much. Every morning they walked to the market, "
    "and the man bought bread, apples and a warm cup of tea. One day Max saw a red kite stuck "
    "in a tall tree. He barked and jumped, but he could not reach it. A girl called Anna came "
    "and said, \"Don't worry, I will help you!\" Together they shook the branch until the kite "
    "fell down. Max wagged his tail, and Anna laughed. They became good friends and played in "
    "the park every day.\n"
    "The report was published in March and describes how the city plans to improve its water "
    "supply over the next ten years. According to the engineers, about 40 percent of the pipes "
    "are older than fifty years.";

constexpr int32_t kMaxCalibrationTokens = 128;

// Keeps every layer's queries: [n_layer, n_tokens, q_dim].
class QueryRecorder : public MatmulObserver {
 public:
  QueryRecorder(int32_t n_layer, int32_t n_tokens, int32_t q_dim)
      : n_tokens_(n_tokens), q_dim_(q_dim), q_(static_cast<size_t>(n_layer) * n_tokens * q_dim) {}
  void observe(int32_t, MatmulWeight, const float*, int32_t, int64_t) override {}
  void observe_queries(int32_t layer, const float* q, int32_t n_rows, int64_t n_cols) override {
    QUANTA_ASSERT(n_rows == n_tokens_ && n_cols == q_dim_);
    std::copy(q, q + n_rows * n_cols,
              q_.begin() + static_cast<int64_t>(layer) * n_tokens_ * q_dim_);
  }
  const float* data() const { return q_.data(); }

 private:
  int32_t n_tokens_, q_dim_;
  std::vector<float> q_;
};

}  // namespace

std::vector<int32_t> kv_calibration_tokens(const Model& model, int32_t max_tokens) {
  std::vector<int32_t> tokens;
  try {
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(model.file());
    tokens = tok.encode(kCalibrationText, /*add_special=*/true);
  } catch (const std::exception&) {
    return {};  // no tokenizer in the file: no calibration
  }
  const int32_t n_vocab = model.hparams().n_vocab;
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) return {};
  }
  if (static_cast<int32_t>(tokens.size()) > max_tokens) tokens.resize(max_tokens);
  return tokens;
}

kv::KeyTransform calibrate_key_transform(const Model& model, kv::KeyTransformMode mode,
                                         ThreadPool& pool) {
  if (mode == kv::KeyTransformMode::kNone) return {};
  const HParams& hp = model.hparams();
  const int32_t max_tokens = std::min(kMaxCalibrationTokens, std::max(1, hp.n_ctx_train));
  const std::vector<int32_t> tokens = kv_calibration_tokens(model, max_tokens);
  const int32_t n = static_cast<int32_t>(tokens.size());
  if (n == 0) return {};

  ContextOptions o;
  o.n_ctx = n;
  o.n_batch = n;
  o.n_outputs = 1;
  o.pool = &pool;
  o.kv_type = GgmlType::F32;
  o.kv_transform = kv::KeyTransformMode::kNone;
  Context ctx(model, o);
  QueryRecorder queries(hp.n_layer, n, hp.q_dim());
  ctx.set_matmul_observer(&queries);
  kv::BlockTable table = ctx.kv().new_table(n);
  if (!table.append(ctx.kv().pool(), n)) return {};
  std::vector<int32_t> positions(n), seq(n, 0);
  for (int32_t i = 0; i < n; ++i) positions[i] = i;
  const kv::BlockTable* tables[1] = {&table};
  Batch batch;
  batch.n_tokens = n;
  batch.tokens = tokens.data();
  batch.positions = positions.data();
  batch.seq = seq.data();
  batch.tables = tables;
  ctx.forward(batch);

  // keys [n_layer, n, n_kv_head, head_dim] read back from the F32 cache.
  const int64_t row = hp.kv_dim();
  std::vector<float> keys(static_cast<size_t>(hp.n_layer) * n * row);
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    const ops::PagedKvView view = ctx.kv().view(l, table);
    for (int32_t p = 0; p < n; ++p) {
      for (int32_t h = 0; h < hp.n_head_kv; ++h) {
        const float* k = view.k_row(p, h);
        std::copy(k, k + hp.head_dim,
                  keys.begin() + (static_cast<int64_t>(l) * n + p) * row + h * hp.head_dim);
      }
    }
  }
  return kv::KeyTransform::fit(mode, keys.data(), queries.data(), hp.n_layer, n, hp.n_head,
                               hp.n_head_kv, hp.head_dim);
}

}  // namespace quanta::models
