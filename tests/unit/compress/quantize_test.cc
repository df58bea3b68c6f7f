// quantize_model end to end: the files it writes without an imatrix are byte for byte the
// files llama-quantize wrote (metadata, tensor order, blocks, padding); they load and run;
// it refuses to overwrite its input and to requantize.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <vector>

#include "compress/quantize.h"
#include "engine/generator.h"
#include "gguf/reader.h"
#include "models/context.h"
#include "models/model.h"
#include "testlib/expect_error.h"
#include "testlib/shared_data.h"

namespace quanta::compress {
namespace {

std::string model_path(const std::string& name) { return testlib::shared_path("models/" + name); }

// Quantizes `base` to `ftype` and expects the exact bytes of llama.cpp's `variant`.
void expect_identical_file(const std::string& base, const std::string& variant, FileType ftype) {
  const std::string out = testlib::temp_dir() + "/" + variant;
  QuantizeOptions o;
  o.ftype = ftype;
  o.n_threads = 2;
  const QuantizeReport r = quantize_model(model_path(base), out, o);
  const std::string mine = testlib::read_file(out);
  const std::string theirs = testlib::read_file(model_path(variant));
  ASSERT_EQ(mine.size(), theirs.size()) << variant;
  size_t first = 0;
  while (first < mine.size() && mine[first] == theirs[first]) ++first;
  EXPECT_EQ(first, mine.size()) << variant << ": first differing byte at " << first;
  EXPECT_EQ(r.file_bytes, theirs.size());
  EXPECT_EQ(r.n_weighted, 0);
}

TEST(Quantize, ByteIdenticalToLlamaQuantizeSynthetic) {
  expect_identical_file("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q4_0.gguf", FileType::kQ4_0);
  expect_identical_file("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q8_0.gguf", FileType::kQ8_0);
  expect_identical_file("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q6_k.gguf", FileType::kQ6_K);
  expect_identical_file("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q4_k_m.gguf",
                        FileType::kQ4_K_M);
  expect_identical_file("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q5_k_m.gguf",
                        FileType::kQ5_K_M);
}

TEST(Quantize, ByteIdenticalToLlamaQuantizeStories260K) {
  // F32 input; fallbacks to Q8_0, Q5_0 and F16 (172-wide rows).
  expect_identical_file("stories260K.gguf", "stories260K-Q8_0mix.gguf", FileType::kQ6_K);
  expect_identical_file("stories260K.gguf", "stories260K-Q5_0mix.gguf", FileType::kQ4_K_M);
}

// Greedy next tokens of a short prompt.
std::vector<int32_t> greedy(const std::string& path, int n) {
  const auto model = models::Model::load(path);
  models::ContextOptions co;
  co.n_ctx = 64;
  co.n_threads = 2;
  models::Context ctx(*model, co);
  Generator gen(ctx);
  std::vector<int32_t> tokens = {1, 403, 407, 261};
  std::vector<int32_t> out;
  const float* logits = gen.prefill(tokens.data(), static_cast<int32_t>(tokens.size()));
  for (int i = 0; i < n; ++i) {
    int32_t best = 0;
    for (int32_t v = 1; v < ctx.n_vocab(); ++v) {
      EXPECT_TRUE(std::isfinite(logits[v]));
      if (logits[v] > logits[best]) best = v;
    }
    out.push_back(best);
    logits = gen.decode(best);
  }
  return out;
}

TEST(Quantize, EveryTargetLoadsAndRuns) {
  // stories260K is a real model: each quantization must still write its stories (the
  // greedy continuation of the F32 model, at least at the start).
  const std::vector<int32_t> ref = greedy(model_path("stories260K.gguf"), 8);
  for (FileType f : {FileType::kQ8_0, FileType::kQ4_0, FileType::kQ4_K_S, FileType::kQ5_K_M,
                     FileType::kQ6_K, FileType::kF16, FileType::kBF16}) {
    const std::string out = testlib::temp_dir() + "/stories-" +
                            file_type_info(f).name + ".gguf";
    QuantizeOptions o;
    o.ftype = f;
    o.n_threads = 2;
    quantize_model(model_path("stories260K.gguf"), out, o);
    const gguf::File file = gguf::File::open(out);
    EXPECT_EQ(*file.get_int("general.file_type"), static_cast<int64_t>(f));
    EXPECT_EQ(*file.get_int("general.quantization_version"), 2);
    const std::vector<int32_t> got = greedy(out, 8);
    EXPECT_EQ(got[0], ref[0]) << file_type_info(f).name;
  }
}

TEST(Quantize, Bf16InputAndKeepOutputF16) {
  const std::string out = testlib::temp_dir() + "/bf16-q4_k_m.gguf";
  QuantizeOptions o;
  o.ftype = FileType::kQ4_K_M;
  o.keep_output_f16 = true;
  const QuantizeReport r = quantize_model(model_path("syn-llama-gqa-bf16.gguf"), out, o);
  const gguf::File f = gguf::File::open(out);
  EXPECT_EQ(f.find_tensor("output.weight")->type, GgmlType::F16);
  EXPECT_EQ(f.find_tensor("blk.1.attn_q.weight")->type, GgmlType::Q4_K);
  EXPECT_EQ(f.tensors().size(), r.tensors.size());
  EXPECT_GT(r.bits_per_weight(), 4.5);
  EXPECT_LT(r.bits_per_weight(), 8.0);
  EXPECT_EQ(greedy(out, 2).size(), 2u);
}

TEST(Quantize, RefusesToOverwriteItsInput) {
  // A copy of the input, then the same file by path, by hard link and by symbolic link.
  const std::string dir = testlib::temp_dir();
  const std::string in = dir + "/input.gguf";
  QuantizeOptions f16;
  f16.ftype = FileType::kF16;
  quantize_model(model_path("stories260K.gguf"), in, f16);
  const std::string before = testlib::read_file(in);
  const std::string hard = dir + "/hard.gguf", soft = dir + "/soft.gguf";
  ASSERT_EQ(link(in.c_str(), hard.c_str()), 0);
  ASSERT_EQ(symlink(in.c_str(), soft.c_str()), 0);
  QuantizeOptions o;
  o.ftype = FileType::kQ8_0;
  testlib::expect_error([&] { quantize_model(in, in, o); }, "is the input file");
  testlib::expect_error([&] { quantize_model(in, hard, o); }, "under another name");
  testlib::expect_error([&] { quantize_model(in, soft, o); }, "under another name");
  testlib::expect_error([&] { quantize_model(in, dir + "/./input.gguf", o); }, "input");
  EXPECT_EQ(testlib::read_file(in), before);
}

TEST(Quantize, RejectsQuantizedInput) {
  QuantizeOptions o;
  o.ftype = FileType::kQ8_0;
  const std::string out = testlib::temp_dir() + "/requant.gguf";
  testlib::expect_error([&] { quantize_model(model_path("syn-llama-gqa-q4_0.gguf"), out, o); },
                        "no requantizing");
  EXPECT_NE(access(out.c_str(), F_OK), 0);  // nothing written
}

TEST(Quantize, RejectsImatrixOfTheWrongWidth) {
  ImportanceMatrix m;
  ImatrixEntry e;
  e.sum_x2.assign(100, 1.0);
  e.count = 1;
  m.set("blk.0.attn_q.weight", e);
  QuantizeOptions o;
  o.ftype = FileType::kQ4_0;
  o.imatrix = &m;
  testlib::expect_error(
      [&] { quantize_model(model_path("stories260K.gguf"), testlib::temp_dir() + "/x.gguf", o); },
      "blk.0.attn_q.weight' has 100 columns");
}

}  // namespace
}  // namespace quanta::compress
