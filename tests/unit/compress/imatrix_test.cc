// Importance matrix files (llama.cpp's legacy .dat and GGUF layouts) and calibration: the
// statistics the forward-pass observer collects are the activations each matmul sees.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "compress/calibrate.h"
#include "compress/imatrix.h"
#include "gguf/reader.h"
#include "testlib/expect_error.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"

namespace quanta::compress {
namespace {

ImportanceMatrix sample_matrix() {
  ImportanceMatrix m;
  const float x[2 * 4] = {1, 2, 3, 4, -1, 0, 0.5f, 2};
  m.add("blk.0.attn_q.weight", x, 2, 4);
  m.add("blk.0.attn_q.weight", x, 1, 4);  // second call: 3 rows, 2 calls
  m.add("blk.0.ffn_down.weight", x, 1, 8);
  m.n_chunks = 2;
  m.chunk_size = 3;
  m.dataset = "calibration.txt";
  return m;
}

void expect_same_importance(const ImportanceMatrix& a, const ImportanceMatrix& b) {
  ASSERT_EQ(a.names(), b.names());
  for (const std::string& name : a.names()) {
    const std::vector<float> ia = a.importance(name), ib = b.importance(name);
    ASSERT_EQ(ia.size(), ib.size()) << name;
    for (size_t j = 0; j < ia.size(); ++j) EXPECT_FLOAT_EQ(ia[j], ib[j]) << name << " " << j;
  }
  EXPECT_EQ(a.n_chunks, b.n_chunks);
  EXPECT_EQ(a.dataset, b.dataset);
}

TEST(Imatrix, AccumulatesMeanSquares) {
  const ImportanceMatrix m = sample_matrix();
  const ImatrixEntry* e = m.find("blk.0.attn_q.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->n_calls, 2);
  EXPECT_EQ(e->count, 3);
  const std::vector<float> imp = m.importance("blk.0.attn_q.weight");
  EXPECT_FLOAT_EQ(imp[0], (1 + 1 + 1) / 3.0f);
  EXPECT_FLOAT_EQ(imp[1], (4 + 0 + 4) / 3.0f);
  EXPECT_TRUE(m.importance("nothing").empty());
  ImportanceMatrix bad;
  bad.add("w", std::vector<float>(4, 1).data(), 1, 4);
  testlib::expect_error([&] { bad.add("w", std::vector<float>(5, 1).data(), 1, 5); },
                        "has 4 columns");
}

TEST(Imatrix, LegacyDatRoundTrip) {
  const ImportanceMatrix m = sample_matrix();
  const std::string path = testlib::temp_dir() + "/m.dat";
  m.save(path);
  expect_same_importance(m, ImportanceMatrix::load(path));
}

TEST(Imatrix, GgufRoundTrip) {
  const ImportanceMatrix m = sample_matrix();
  const std::string path = testlib::temp_dir() + "/m.imatrix.gguf";
  m.save(path);
  const gguf::File f = gguf::File::open(path);
  EXPECT_EQ(*f.get_string("general.type"), "imatrix");
  EXPECT_EQ(*f.get_int("imatrix.chunk_count"), 2);
  ASSERT_NE(f.find_tensor("blk.0.attn_q.weight.in_sum2"), nullptr);
  ASSERT_NE(f.find_tensor("blk.0.attn_q.weight.counts"), nullptr);
  expect_same_importance(m, ImportanceMatrix::load(path));
}

// The byte layout of llama-imatrix c392e509, written by hand.
std::string legacy_bytes(bool with_trailer) {
  std::string b;
  const auto i32 = [&](int32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  const auto f32 = [&](float v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  i32(1);
  i32(5);
  b += "w.abc";
  i32(4);  // ncall
  i32(2);  // nval
  f32(8.0f);
  f32(2.0f);
  if (with_trailer) {
    i32(4);
    i32(3);
    b += "x.t";
  }
  return b;
}

TEST(Imatrix, ReadsLlamaLegacyLayout) {
  const std::string path = testlib::temp_dir() + "/llama.dat";
  std::ofstream(path, std::ios::binary) << legacy_bytes(true);
  const ImportanceMatrix m = ImportanceMatrix::load(path);
  ASSERT_EQ(m.size(), 1u);
  const std::vector<float> imp = m.importance("w.abc");
  ASSERT_EQ(imp.size(), 2u);
  EXPECT_FLOAT_EQ(imp[0], 2.0f);  // llama-quantize divides by ncall
  EXPECT_FLOAT_EQ(imp[1], 0.5f);
  EXPECT_EQ(m.n_chunks, 4);
  EXPECT_EQ(m.dataset, "x.t");
  // Older files end after the entries.
  std::ofstream(path, std::ios::binary) << legacy_bytes(false);
  EXPECT_EQ(ImportanceMatrix::load(path).n_chunks, 0);
  // Truncation is an error naming the problem.
  const std::string b = legacy_bytes(true);
  std::ofstream(path, std::ios::binary) << b.substr(0, 20);
  testlib::expect_error([&] { ImportanceMatrix::load(path); }, "truncated");
  testlib::expect_error([&] { ImportanceMatrix::load(path + ".missing"); }, "cannot open");
}

std::string text_prefix(const std::string& name, size_t bytes) {
  return testlib::read_file(testlib::shared_path("text/" + name)).substr(0, bytes);
}

TEST(Calibrate, CollectsEveryMatmulInput) {
  const auto model = models::Model::load(testlib::shared_path("models/stories260K.gguf"));
  CalibrationOptions o;
  o.n_ctx = 64;
  o.n_chunks = 3;
  o.n_threads = 2;
  int calls = 0;
  o.on_chunk = [&](int32_t done, int32_t total, double) {
    ++calls;
    EXPECT_EQ(total, 3);
    EXPECT_EQ(done, calls);
  };
  const CalibrationResult r = calibrate(*model, text_prefix("frankenstein.txt", 4000), "f.txt", o);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.n_chunks, 3);
  EXPECT_EQ(r.imatrix.size(), 5u * 7u);  // 5 layers x (q, k, v, o, gate, up, down)
  EXPECT_GT(r.perplexity, 1.0);
  EXPECT_EQ(r.imatrix.find("output.weight"), nullptr);
  const ImatrixEntry* q = r.imatrix.find("blk.2.attn_q.weight");
  const ImatrixEntry* k = r.imatrix.find("blk.2.attn_k.weight");
  const ImatrixEntry* down = r.imatrix.find("blk.4.ffn_down.weight");
  ASSERT_TRUE(q && k && down);
  EXPECT_EQ(q->count, 3 * 64);
  EXPECT_EQ(q->n_calls, 3);
  EXPECT_EQ(q->sum_x2, k->sum_x2);  // Q, K and V read the same normed input
  EXPECT_EQ(down->sum_x2.size(), 172u);
  EXPECT_EQ(r.imatrix.find("blk.0.ffn_gate.weight")->sum_x2,
            r.imatrix.find("blk.0.ffn_up.weight")->sum_x2);
}

// Layer 0's attention input, computed independently: attn_norm * rms_norm(token_embd[t]).
TEST(Calibrate, FirstLayerStatisticsMatchADirectComputation) {
  const auto model = models::Model::load(testlib::shared_path("models/stories260K.gguf"));
  const std::string text = text_prefix("frankenstein.txt", 2000);
  CalibrationOptions o;
  o.n_ctx = 32;
  o.n_chunks = 1;
  o.n_threads = 1;
  const CalibrationResult r = calibrate(*model, text, "t", o);
  const gguf::File& f = model->file();
  const float* embd = reinterpret_cast<const float*>(f.tensor_data(*f.find_tensor("token_embd.weight")));
  const float* norm =
      reinterpret_cast<const float*>(f.tensor_data(*f.find_tensor("blk.0.attn_norm.weight")));
  const int n = 64;
  const double eps = *f.get_float("llama.attention.layer_norm_rms_epsilon");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(f);
  std::vector<int32_t> tokens = tok.encode(text, true);
  tokens.resize(32);
  tokens[0] = tok.bos();
  std::vector<double> expect(n, 0.0);
  for (int32_t t : tokens) {
    double ss = 0;
    for (int j = 0; j < n; ++j) ss += double(embd[t * n + j]) * embd[t * n + j];
    const double scale = 1.0 / std::sqrt(ss / n + eps);
    for (int j = 0; j < n; ++j) {
      const double v = embd[t * n + j] * scale * norm[j];
      expect[j] += v * v;
    }
  }
  const ImatrixEntry* e = r.imatrix.find("blk.0.attn_q.weight");
  ASSERT_NE(e, nullptr);
  for (int j = 0; j < n; ++j) EXPECT_NEAR(e->sum_x2[j], expect[j], 1e-4 * expect[j] + 1e-6) << j;
}

TEST(Calibrate, ProcessOutputAndShortText) {
  const auto model = models::Model::load(testlib::shared_path("models/stories260K.gguf"));
  CalibrationOptions o;
  o.n_ctx = 32;
  o.n_chunks = 1;
  o.process_output = true;
  const CalibrationResult r = calibrate(*model, text_prefix("frankenstein.txt", 1000), "t", o);
  ASSERT_NE(r.imatrix.find("output.weight"), nullptr);
  EXPECT_EQ(r.imatrix.find("output.weight")->count, 32);  // every position wants logits
  o.n_ctx = 512;
  testlib::expect_error([&] { calibrate(*model, "Once upon a time.", "t", o); },
                        "fewer than one chunk");
}

}  // namespace
}  // namespace quanta::compress
