// Key-transform calibration: the built-in text through a temporary F32-cache context, every
// layer's queries (seen by an observer) and stored keys handed to kv::KeyTransform::fit.
#include "models/kv_calibration.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/context.h"
#include "ops/matmul.h"
#include "ops/weight.h"
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

// [n_layer, n_head, head_dim, head_dim]: per query head g, Wo_g^T Wo_g (Wo_g: the output
// projection's head_dim columns that read head g), the metric in which an error of that
// head's attention output reaches the residual stream.
std::vector<double> output_metrics(const Model& model, ThreadPool& pool) {
  const HParams& hp = model.hparams();
  const int32_t d = hp.head_dim;
  const size_t per_layer = static_cast<size_t>(hp.n_head) * d * d;
  std::vector<double> out(per_layer * hp.n_layer, 0.0);
  const int64_t q_dim = hp.q_dim();
  std::vector<float> wo_rows;  // the layer's Wo dequantized, [n_rows, q_dim]
  std::vector<float> head_t;   // Wo_g transposed, [d, n_rows]
  std::vector<float> gram(static_cast<size_t>(d) * d);
  std::vector<uint8_t> scratch;
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    const ops::WeightView& wo = model.weights().layers[l].wo;
    QUANTA_ASSERT(wo.n_cols == q_dim);
    const int64_t n_rows = wo.n_rows;
    wo_rows.resize(static_cast<size_t>(n_rows) * q_dim);
    head_t.resize(static_cast<size_t>(d) * n_rows);
    scratch.resize(ops::matmul_scratch_bytes(GgmlType::F32, n_rows, d));
    for (int64_t r = 0; r < n_rows; ++r) ops::dequantize_row(wo, r, &wo_rows[r * q_dim]);
    for (int32_t g = 0; g < hp.n_head; ++g) {
      for (int64_t r0 = 0; r0 < n_rows; r0 += 16) {  // 16-row strips: cache-friendly
        const int64_t r1 = std::min<int64_t>(n_rows, r0 + 16);
        for (int32_t i = 0; i < d; ++i) {
          for (int64_t r = r0; r < r1; ++r) head_t[i * n_rows + r] = wo_rows[r * q_dim + g * d + i];
        }
      }
      // Wo_g^T Wo_g as an F32 product: the d rows of head_t against themselves as tokens.
      ops::WeightView w;
      w.type = GgmlType::F32;
      w.n_cols = n_rows;
      w.n_rows = d;
      w.row_bytes = static_cast<size_t>(n_rows) * sizeof(float);
      w.data = reinterpret_cast<const uint8_t*>(head_t.data());
      ops::matmul(w, head_t.data(), n_rows, d, gram.data(), d, scratch.data(), pool);
      std::copy(gram.begin(), gram.end(), out.begin() + l * per_layer + static_cast<size_t>(g) * d * d);
    }
  }
  return out;
}

// How much query head g of a layer weighs, from causal attention over the calibration tokens
// (scores q.k / sqrt(d), p their softmax, o = sum p v): for its scores, the mean over queries
// of d|Wo_g o|^2 per unit score noise, sum_t p_t (v_t - o)^T W_g (v_t - o) / d; for its
// values, the mean of sum_t p_t^2 (the share of one value's noise left in o).
struct HeadWeights {
  std::vector<float> score;  // [n_layer, n_head]
  std::vector<float> value;  // [n_layer, n_head]
};

HeadWeights head_weights(const HParams& hp, const float* queries, const float* keys,
                         const float* values, const std::vector<double>& wo_metric, int32_t n) {
  const int32_t d = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  const int64_t qrow = hp.q_dim(), krow = hp.kv_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  HeadWeights w;
  w.score.assign(static_cast<size_t>(hp.n_layer) * hp.n_head, 0.0f);
  w.value.assign(w.score.size(), 0.0f);
  std::vector<double> p(n), a(n), o(d), wx(d);
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    for (int32_t g = 0; g < hp.n_head; ++g) {
      const int32_t h = g / group;
      const double* wg = wo_metric.data() + (static_cast<size_t>(l) * hp.n_head + g) * d * d;
      auto v_at = [&](int32_t t) { return values + (static_cast<int64_t>(l) * n + t) * krow + h * d; };
      // x^T W_g x as sum_j x_j (sum_i x_i W_ij): the inner loop is an axpy (vectorizes).
      auto quad = [&](const auto* x) {
        std::fill(wx.begin(), wx.end(), 0.0);
        for (int32_t i = 0; i < d; ++i) {
          const double xi = x[i];
          for (int32_t j = 0; j < d; ++j) wx[j] += xi * wg[i * d + j];
        }
        double acc = 0.0;
        for (int32_t j = 0; j < d; ++j) acc += wx[j] * x[j];
        return acc;
      };
      for (int32_t t = 0; t < n; ++t) a[t] = quad(v_at(t));
      double score_sum = 0.0, value_sum = 0.0;
      for (int32_t s = 0; s < n; ++s) {
        const float* q = queries + (static_cast<int64_t>(l) * n + s) * qrow + g * d;
        double top = -1e300;
        for (int32_t t = 0; t <= s; ++t) {
          const float* k = keys + (static_cast<int64_t>(l) * n + t) * krow + h * d;
          double dot = 0.0;
          for (int32_t i = 0; i < d; ++i) dot += q[i] * static_cast<double>(k[i]);
          p[t] = dot * scale;
          top = std::max(top, p[t]);
        }
        double sum = 0.0;
        for (int32_t t = 0; t <= s; ++t) sum += (p[t] = std::exp(p[t] - top));
        std::fill(o.begin(), o.end(), 0.0);
        double pa = 0.0, p2 = 0.0;
        for (int32_t t = 0; t <= s; ++t) {
          p[t] /= sum;
          const float* v = v_at(t);
          for (int32_t i = 0; i < d; ++i) o[i] += p[t] * v[i];
          pa += p[t] * a[t];
          p2 += p[t] * p[t];
        }
        score_sum += std::max(pa - quad(o.data()), 0.0) / d;
        value_sum += p2;
      }
      w.score[static_cast<size_t>(l) * hp.n_head + g] = static_cast<float>(score_sum / n);
      w.value[static_cast<size_t>(l) * hp.n_head + g] = static_cast<float>(value_sum / n);
    }
  }
  return w;
}

// [n_layer, n_kv_head, head_dim, head_dim]: per KV head, the sum over its group's query heads
// g of weight_g Wo_g^T Wo_g.
std::vector<float> value_metric(const HParams& hp, const std::vector<double>& wo_metric,
                                const std::vector<float>& weight) {
  const int32_t d = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  const size_t dd = static_cast<size_t>(d) * d;
  std::vector<float> out(static_cast<size_t>(hp.n_layer) * hp.n_head_kv * dd, 0.0f);
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    for (int32_t g = 0; g < hp.n_head; ++g) {
      const size_t lg = static_cast<size_t>(l) * hp.n_head + g;
      const double* src = wo_metric.data() + lg * dd;
      float* dst = out.data() + (static_cast<size_t>(l) * hp.n_head_kv + g / group) * dd;
      for (size_t i = 0; i < dd; ++i) dst[i] += static_cast<float>(weight[lg] * src[i]);
    }
  }
  return out;
}

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
                                         ThreadPool& pool, GgmlType kv_type) {
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

  // keys and values [n_layer, n, n_kv_head, head_dim] read back from the F32 cache.
  const int64_t row = hp.kv_dim();
  std::vector<float> keys(static_cast<size_t>(hp.n_layer) * n * row), values(keys.size());
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    const ops::PagedKvView view = ctx.kv().view(l, table);
    for (int32_t p = 0; p < n; ++p) {
      for (int32_t h = 0; h < hp.n_head_kv; ++h) {
        const int64_t at = (static_cast<int64_t>(l) * n + p) * row + h * hp.head_dim;
        const float* k = view.k_row(p, h);
        std::copy(k, k + hp.head_dim, keys.begin() + at);
        const float* v = view.v_row(p, h);
        std::copy(v, v + hp.head_dim, values.begin() + at);
      }
    }
  }
  const std::vector<double> wo_metric = output_metrics(model, pool);
  HeadWeights weights = head_weights(hp, queries.data(), keys.data(), values.data(), wo_metric, n);
  const std::vector<float> metric = value_metric(hp, wo_metric, weights.value);
  kv::CalibrationExtras vc;
  vc.values = values.data();
  vc.metric = metric.data();
  vc.query_weight = weights.score.data();
  vc.key_mean_power = kv_type == GgmlType::Q4_0 ? kv::kShapedKeyMeanPower : kv::kKeyMeanPower;
  // Heads that share a Q4_0 block (a packed row) get one joint transform. (Q8_0 keeps one per
  // head: 99.46% same top on stories260K against 99.31% joint.)
  if (mode == kv::KeyTransformMode::kRotate && kv_type == GgmlType::Q4_0) {
    vc.joint_heads = ops::kv_row_heads(kv_type, hp.head_dim);
  }
  return kv::KeyTransform::fit(mode, keys.data(), queries.data(), hp.n_layer, n, hp.n_head,
                               hp.n_head_kv, hp.head_dim, &vc);
}

}  // namespace quanta::models
