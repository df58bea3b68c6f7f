// The forward pass's fused products (grouped Q/K/V, RMSNorm fused into the conversion, SwiGLU
// in the gate/up epilogue) against the unfused path it takes when a MatmulObserver is set:
// bit-identical logits for prefill and decode, and the observer still sees every weight's
// input, in order, with the right shape.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "models/context.h"
#include "models/matmul_observer.h"
#include "models/model.h"
#include "testlib/shared_data.h"

namespace quanta::models {
namespace {

// Records (layer, weight, rows, cols) of every observed product; the inputs must be finite.
class Recorder : public MatmulObserver {
 public:
  struct Seen {
    int32_t layer;
    MatmulWeight w;
    int32_t n_rows;
    int64_t n_cols;
  };
  void observe(int32_t layer, MatmulWeight w, const float* x, int32_t n_rows,
               int64_t n_cols) override {
    for (int64_t i = 0; i < n_rows * n_cols; ++i) ASSERT_TRUE(std::isfinite(x[i]));
    seen.push_back({layer, w, n_rows, n_cols});
  }
  std::vector<Seen> seen;
};

// Logits of a 9-token prefill (all rows) then 3 decode steps, optionally observed.
std::vector<float> run(const Model& model, MatmulObserver* observer) {
  ContextOptions o;
  o.n_ctx = 64;
  o.n_threads = 2;
  Context ctx(model, o);
  ctx.set_matmul_observer(observer);
  Generator gen(ctx);
  const std::vector<int32_t> prompt = {1, 70, 300, 301, 120, 45, 46, 47, 290};
  const int32_t n_vocab = ctx.n_vocab();
  const float* l = gen.prefill(prompt.data(), static_cast<int32_t>(prompt.size()), true);
  std::vector<float> out(l, l + prompt.size() * n_vocab);
  for (int32_t token : {5, 77, 180}) {
    l = gen.decode(token);
    out.insert(out.end(), l, l + n_vocab);
  }
  return out;
}

class FusedForward : public ::testing::TestWithParam<const char*> {};

TEST_P(FusedForward, MatchesObservedUnfusedPathAndObserverSeesEveryWeight) {
  const auto model = Model::load(testlib::shared_path(std::string("models/") + GetParam()));
  const std::vector<float> fused = run(*model, nullptr);
  Recorder rec;
  const std::vector<float> unfused = run(*model, &rec);
  ASSERT_EQ(fused.size(), unfused.size());
  for (size_t i = 0; i < fused.size(); ++i) ASSERT_EQ(fused[i], unfused[i]) << "logit " << i;

  const HParams& hp = model->hparams();
  const MatmulWeight order[] = {MatmulWeight::kAttnQ,   MatmulWeight::kAttnK,
                                MatmulWeight::kAttnV,   MatmulWeight::kAttnOutput,
                                MatmulWeight::kFfnGate, MatmulWeight::kFfnUp,
                                MatmulWeight::kFfnDown};
  const size_t per_pass = static_cast<size_t>(hp.n_layer) * 7 + 1;
  ASSERT_EQ(rec.seen.size(), 4 * per_pass);  // one prefill pass and three decode passes
  for (size_t pass = 0; pass < 4; ++pass) {
    const int32_t n_rows = pass == 0 ? 9 : 1;
    for (int32_t l = 0; l < hp.n_layer; ++l) {
      for (int j = 0; j < 7; ++j) {
        const Recorder::Seen& s = rec.seen[pass * per_pass + l * 7 + j];
        EXPECT_EQ(s.layer, l);
        EXPECT_EQ(s.w, order[j]) << "layer " << l << " item " << j;
        EXPECT_EQ(s.n_rows, n_rows);
        EXPECT_EQ(s.n_cols, order[j] == MatmulWeight::kFfnDown      ? hp.n_ff
                            : order[j] == MatmulWeight::kAttnOutput ? hp.q_dim()
                                                                    : hp.n_embd);
      }
    }
    EXPECT_EQ(rec.seen[pass * per_pass + per_pass - 1].w, MatmulWeight::kOutput);
  }
}

INSTANTIATE_TEST_SUITE_P(SharedModels, FusedForward,
                         ::testing::Values("stories260K-Q5_0mix.gguf", "syn-llama-gqa-q4_k_m.gguf",
                                           "syn-qwen2-f32.gguf"),
                         [](const auto& info) {
                           std::string name = info.param;
                           name = name.substr(0, name.find('.'));
                           for (char& c : name) c = (c == '-') ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace quanta::models
