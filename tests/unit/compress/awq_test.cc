// AWQ-style scaling (compress/awq.h): the scales, the exactness of the folds (the F32 model
// computes the same function), and on stories260K Q4_0 that the scaling lowers the
// activation-weighted error measured with held-out activations below the weighted quantizer's.
#include "compress/awq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "compress/calibrate.h"
#include "core/thread_pool.h"
#include "quant/weighted.h"
#include "testlib/shared_data.h"

namespace quanta::compress {
namespace {

std::vector<float> as_floats(const gguf::File& f, const std::string& name) {
  const gguf::TensorInfo& t = *f.find_tensor(name);
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const size_t row = row_size(t.type, t.ne[0]);
  for (int64_t r = 0; r < t.n_rows(); ++r) {
    dequantize_row(t.type, f.tensor_data(t) + r * row, out.data() + r * t.ne[0], t.ne[0]);
  }
  return out;
}

ImportanceMatrix collect(const models::Model& model, const std::string& text_name, size_t bytes) {
  const std::string text =
      testlib::read_file(testlib::shared_path("text/" + text_name)).substr(0, bytes);
  CalibrationOptions o;
  o.n_ctx = 128;
  o.n_chunks = 40;
  o.n_threads = 2;
  return calibrate(model, text, text_name, o).imatrix;
}

TypePlan q4_0_plan(const gguf::File& f) {
  TypePlan plan;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.ne.size() == 2 && t.ne[0] % 32 == 0 && t.name.rfind("blk.", 0) == 0) {
      plan[t.name] = GgmlType::Q4_0;
    }
  }
  return plan;
}

TEST(Awq, ScalesNormalisedAndMonotone) {
  const std::vector<float> a = {0.01f, 1.0f, 4.0f, 100.0f};
  for (float s : awq_scales(a, 0.0f)) EXPECT_EQ(s, 1.0f);
  const std::vector<float> s = awq_scales(a, 0.5f);
  EXPECT_NEAR(s.front() * s.back(), 1.0f, 1e-5f);
  for (size_t j = 1; j < s.size(); ++j) EXPECT_GT(s[j], s[j - 1]);
  EXPECT_NEAR(s[2] / s[1], std::pow(4.0f, 0.25f), 1e-5f);
}

class AwqStories : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = models::Model::load(testlib::shared_path("models/stories260K.gguf")).release();
    cal_ = new ImportanceMatrix(collect(*model_, "frankenstein.txt", 40000));
    ThreadPool pool(2);
    result_ = new AwqResult(
        awq_search(model_->file(), q4_0_plan(model_->file()), *cal_, AwqOptions{}, pool));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete cal_;
    delete model_;
  }
  static models::Model* model_;
  static ImportanceMatrix* cal_;
  static AwqResult* result_;
};
models::Model* AwqStories::model_ = nullptr;
ImportanceMatrix* AwqStories::cal_ = nullptr;
AwqResult* AwqStories::result_ = nullptr;

// Norm groups: consumer'[r][j] * norm'[j] == consumer[r][j] * norm[j]; row groups: the
// producer's row k is divided by the scale the consumer's columns mapping to k get.
TEST_F(AwqStories, FoldsAreExact) {
  const gguf::File& f = model_->file();
  ASSERT_EQ(result_->groups.size(), 5u * 3);  // attn_norm, ffn_norm, attn_v per layer
  int scaled = 0;
  for (const AwqGroup& g : result_->groups) {
    scaled += g.alpha > 0 ? 1 : 0;
    EXPECT_LE(g.error_after, g.error_before) << g.producer;
    const std::vector<float> p0 = as_floats(f, g.producer);
    const std::vector<float>& p1 = result_->tensors.at(g.producer);
    if (g.producer.find("norm") != std::string::npos) {
      for (const std::string& c : g.consumers) {
        if (c.find("attn_v") != std::string::npos) continue;  // rows scaled too: checked below
        const std::vector<float> c0 = as_floats(f, c);
        const std::vector<float>& c1 = result_->tensors.at(c);
        for (size_t k = 0; k < c0.size(); ++k) {
          const size_t j = k % p0.size();
          ASSERT_NEAR(c1[k] * p1[j], c0[k] * p0[j], 1e-5f * std::fabs(c0[k] * p0[j]) + 1e-9f);
        }
      }
    } else {  // attn_v rows; stories260K: 8 query heads of 8 read 4 KV heads (2 per KV head)
      const std::string layer = g.producer.substr(0, g.producer.find("attn_v"));
      const std::vector<float> n0 = as_floats(f, layer + "attn_norm.weight");
      const std::vector<float>& n1 = result_->tensors.at(layer + "attn_norm.weight");
      const size_t n_cols = n0.size();
      constexpr size_t kHeadDim = 8, kGroup = 2;
      ASSERT_EQ(p1.size(), n_cols * n_cols / kGroup);
      for (size_t k = 0; k < p1.size(); ++k) {  // v'[r][j] = v[r][j] * s_norm[j] / s[r]
        const size_t r = k / n_cols;
        const size_t c = (r / kHeadDim) * kGroup * kHeadDim + r % kHeadDim;  // a column reading r
        ASSERT_EQ(g.scales[c], g.scales[c + kHeadDim]);  // the other query head of the group
        const float v = p1[k] * g.scales[c] * n1[k % n_cols] / n0[k % n_cols];
        ASSERT_NEAR(v, p0[k], 1e-5f * std::fabs(p0[k]) + 1e-9f) << g.producer;
      }
      const std::vector<float> o0 = as_floats(f, g.consumers[0]);
      const std::vector<float>& o1 = result_->tensors.at(g.consumers[0]);
      for (size_t k = 0; k < o0.size(); ++k) {
        ASSERT_FLOAT_EQ(o1[k], o0[k] * g.scales[k % g.scales.size()]) << g.consumers[0];
      }
    }
  }
  EXPECT_GT(scaled, 0);
}

// Held-out activation-weighted error sum_rj a_eval_j (w - deq(Q(w * s)) / s)^2 over the
// AWQ-scaled consumers, against the importance-weighted quantizer without scaling.
TEST_F(AwqStories, LowersHeldOutWeightedErrorBelowWeightedQuantizer) {
  const gguf::File& f = model_->file();
  const ImportanceMatrix eval = collect(*model_, "tinystories_validation_100.txt", 60000);
  double weighted = 0, awq = 0;
  for (const AwqGroup& g : result_->groups) {
    for (const std::string& c : g.consumers) {
      const gguf::TensorInfo& t = *f.find_tensor(c);
      const int64_t n = t.ne[0];
      const std::vector<float> w0 = as_floats(f, c);
      const std::vector<float>& w1 = result_->tensors.at(c);
      const std::vector<float> a_cal = cal_->importance(c);
      const std::vector<float> a_eval = eval.importance(c);
      const std::vector<float>& a_scaled = result_->importance.at(c);
      std::vector<uint8_t> q(row_size(GgmlType::Q4_0, n));
      std::vector<float> back(static_cast<size_t>(n));
      for (int64_t r = 0; r < t.n_rows(); ++r) {
        // AWQ: the row's columns were multiplied by s (whose producer got the 1/s).
        const float* o = w0.data() + r * n;
        const float* x = w1.data() + r * n;
        quantize_row_weighted(GgmlType::Q4_0, x, q.data(), n, a_scaled.data());
        dequantize_row(GgmlType::Q4_0, q.data(), back.data(), n);
        for (int64_t j = 0; j < n; ++j) {
          const double d = o[j] - back[j] / g.scales[j];
          awq += a_eval[j] * d * d;
        }
        quantize_row_weighted(GgmlType::Q4_0, o, q.data(), n, a_cal.data());
        dequantize_row(GgmlType::Q4_0, q.data(), back.data(), n);
        for (int64_t j = 0; j < n; ++j) {
          const double d = static_cast<double>(o[j]) - back[j];
          weighted += a_eval[j] * d * d;
        }
      }
    }
  }
  EXPECT_LT(awq, 0.99 * weighted) << "weighted " << weighted << " awq " << awq;
  RecordProperty("ratio_awq_vs_weighted", std::to_string(awq / weighted));
}

TEST_F(AwqStories, OtherTypesAreLeftOut) {
  ThreadPool pool(1);
  AwqOptions only_q5;
  only_q5.types = {GgmlType::Q5_0};
  const AwqResult r = awq_search(model_->file(), q4_0_plan(model_->file()), *cal_, only_q5, pool);
  EXPECT_TRUE(r.groups.empty());
  EXPECT_TRUE(r.tensors.empty());
}

}  // namespace
}  // namespace quanta::compress
