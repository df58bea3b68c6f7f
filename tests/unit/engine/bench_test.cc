// `quanta bench` logic on a tiny random-weight model with tiny test sizes: every test kind runs,
// the JSON report has the documented fields with positive finite numbers, statistics and the
// decode roofline follow their definitions; the bandwidth measurement is plausible; the
// synthetic writer's Q4_K_M mix and vocabulary padding.
#include "engine/bench.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/membw.h"
#include "engine/bench_report.h"
#include "gguf/reader.h"
#include "models/model.h"
#include "models/synthetic.h"
#include "testlib/shared_data.h"

namespace quanta::bench {
namespace {

const models::Model& tiny_model() {
  static const std::unique_ptr<models::Model> model = [] {
    const std::string path = testlib::temp_dir() + "/bench_tiny.gguf";
    models::write_synthetic_model(models::synthetic_preset("default"), path);
    return models::Model::load(path);
  }();
  return *model;
}

std::vector<BenchTest> tiny_tests() {
  return {prompt_test(16), decode_test(8), decode_test(4, 16), batched_test(2, 8, 4)};
}

ReportInfo tiny_info(double bandwidth) {
  ReportInfo info;
  info.model = "default";
  info.type = "Q8_0";
  info.size_bytes = tiny_model().weight_bytes();
  info.n_params = tiny_model().n_params();
  info.bandwidth = bandwidth;
  info.bandwidth_nt = bandwidth;
  info.bandwidth_threads = 2;
  info.repetitions = 2;
  info.kv_fill = "prefill";
  info.kv_type = "f16";
  info.isa = "ref";
  return info;
}

void expect_positive(const nlohmann::json& v, const std::string& what) {
  ASSERT_TRUE(v.is_number()) << what;
  const double x = v.get<double>();
  EXPECT_TRUE(std::isfinite(x) && x > 0) << what << " = " << x;
}

TEST(Bench, EveryKindRunsAndTheJsonHasTheDocumentedFields) {
  for (const KvFill fill : {KvFill::kPrefill, KvFill::kRandom}) {
    BenchOptions o;
    o.repetitions = 2;
    o.n_threads = 2;
    o.kv_fill = fill;
    o.bandwidth = 20e9;
    const std::vector<BenchResult> results = run_tests(tiny_model(), tiny_tests(), o);
    const nlohmann::json j = nlohmann::json::parse(json_report(tiny_info(o.bandwidth), results));
    ASSERT_TRUE(j.is_array());
    ASSERT_EQ(j.size(), 4u);
    const char* names[] = {"pp16", "tg8", "tg4@d16", "batch2"};
    for (size_t i = 0; i < 4; ++i) {
      const nlohmann::json& t = j[i];
      EXPECT_EQ(t.at("test"), names[i]);
      EXPECT_EQ(t.at("type"), "Q8_0");
      expect_positive(t.at("tokens_per_s"), names[i]);
      ASSERT_TRUE(t.at("sd").is_number());
      EXPECT_GE(t.at("sd").get<double>(), 0.0);
      ASSERT_EQ(t.at("samples").size(), 2u);
      for (const auto& s : t.at("samples")) expect_positive(s, names[i]);
      EXPECT_EQ(t.at("threads"), 2);
      if (i == 0) {
        EXPECT_FALSE(t.contains("roofline_pct"));
        continue;
      }
      expect_positive(t.at("roofline_pct"), names[i]);
      // roofline = weight bytes per token x tokens/s / bandwidth.
      const double expected = 100.0 * t.at("weight_bytes_per_token").get<double>() *
                              t.at("tokens_per_s").get<double>() / o.bandwidth;
      EXPECT_NEAR(t.at("roofline_pct").get<double>(), expected, 1e-9 * expected);
    }
    EXPECT_EQ(j[3].at("n_seq"), 2);
    EXPECT_EQ(j[2].at("n_prompt"), 16);
  }
}

TEST(Bench, MarkdownHasARowPerTestAndTheBandwidth) {
  BenchOptions o;
  o.repetitions = 1;
  o.n_threads = 1;
  o.bandwidth = 25e9;
  const std::vector<BenchResult> results =
      run_tests(tiny_model(), {prompt_test(8), decode_test(4)}, o);
  const std::string md = markdown_report(tiny_info(o.bandwidth), results);
  EXPECT_NE(md.find("| pp8 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| tg4 |"), std::string::npos) << md;
  EXPECT_NE(md.find("25.0 GB/s (2 threads)"), std::string::npos) << md;
  EXPECT_NE(md.find("| tg4 |"), std::string::npos) << md;
  EXPECT_NE(md.find("%"), std::string::npos) << md;
}

TEST(Bench, WithoutBandwidthRooflineIsNull) {
  BenchOptions o;
  o.repetitions = 1;
  o.n_threads = 1;
  const std::vector<BenchResult> results = run_tests(tiny_model(), {decode_test(2)}, o);
  EXPECT_LT(results[0].roofline_pct, 0.0);
  const nlohmann::json j = nlohmann::json::parse(json_report(tiny_info(0.0), results));
  EXPECT_TRUE(j[0].at("roofline_pct").is_null());
}

TEST(Bench, ProgressReachesTheEndOfEveryRepetition) {
  BenchOptions o;
  o.repetitions = 3;
  o.n_threads = 1;
  int finished_runs = 0, fills = 0;
  o.on_progress = [&](const Progress& p) {
    EXPECT_LE(p.done, p.total);
    if (std::string(p.phase) == "run" && p.done == p.total) ++finished_runs;
    if (std::string(p.phase) == "fill") ++fills;
  };
  run_test(tiny_model(), batched_test(2, 4, 3), o);
  EXPECT_EQ(finished_runs, 3);
  EXPECT_GT(fills, 0);
}

TEST(Bench, DecodeWeightBytesCountEverythingButUnusedEmbeddingRows) {
  const models::Model& m = tiny_model();
  const gguf::TensorInfo* embd = m.file().find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  uint64_t others = 0;
  for (const gguf::TensorInfo& t : m.file().tensors()) {
    if (t.name != "token_embd.weight") others += t.n_bytes;
  }
  const uint64_t row = embd->n_bytes / embd->ne[1];
  EXPECT_EQ(decode_weight_bytes(m, 1), others + row);
  EXPECT_EQ(decode_weight_bytes(m, 4), others + 4 * row);
}

TEST(Bench, SummaryStatistics) {
  BenchResult r;
  r.samples = {10.0, 2.0, 3.0, 1.0};
  summarize(r);
  EXPECT_DOUBLE_EQ(r.median, 2.5);
  EXPECT_DOUBLE_EQ(r.mean, 4.0);
  EXPECT_NEAR(r.sd, std::sqrt((36.0 + 4.0 + 1.0 + 9.0) / 3.0), 1e-12);
  r.samples = {7.0};
  summarize(r);
  EXPECT_DOUBLE_EQ(r.median, 7.0);
  EXPECT_DOUBLE_EQ(r.sd, 0.0);
}

TEST(Bench, TestNames) {
  EXPECT_EQ(parse_test("pp512").name(), "pp512");
  EXPECT_EQ(parse_test("tg128").name(), "tg128");
  const BenchTest deep = parse_test("tg128@d4096");
  EXPECT_EQ(deep.name(), "tg128@d4096");
  EXPECT_EQ(deep.n_prompt, 4096);
  EXPECT_EQ(deep.n_gen, 128);
  const BenchTest b = parse_test("batch16", 64, 32);
  EXPECT_EQ(b.name(), "batch16");
  EXPECT_EQ(b.n_seq, 16);
  EXPECT_EQ(b.n_prompt, 64);
  EXPECT_EQ(b.n_gen, 32);
  for (const char* bad :
       {"", "pp", "pp0", "tg", "tg12@d", "tg12@x4", "batch", "batch0", "xx12", "pp-3"}) {
    EXPECT_THROW(parse_test(bad), Error) << bad;
  }
}

TEST(Bench, BadOptionsAreErrors) {
  BenchOptions o;
  o.repetitions = 0;
  EXPECT_THROW(run_test(tiny_model(), decode_test(2), o), Error);
  o.repetitions = 1;
  EXPECT_THROW(run_test(tiny_model(), decode_test(0), o), Error);
}

TEST(MemoryBandwidth, ReadBandwidthIsPlausible) {
  for (int threads : {1, 2}) {
    BandwidthOptions o;
    o.n_threads = threads;
    o.buffer_bytes = size_t{64} << 20;
    o.passes = 3;
    const BandwidthResult r = measure_read_bandwidth(o);
    EXPECT_GT(r.bytes_per_s, 0.5e9) << threads << " threads";  // any machine reads faster
    EXPECT_LT(r.bytes_per_s, 5e12) << threads << " threads";   // and slower than this
    EXPECT_GE(r.clean_passes, 0);
    EXPECT_LE(r.clean_passes, o.passes);
  }
  BandwidthOptions bad;
  bad.n_threads = 0;
  EXPECT_THROW(measure_read_bandwidth(bad), Error);
  bad.n_threads = 4;
  bad.buffer_bytes = 1000;
  EXPECT_THROW(measure_read_bandwidth(bad), Error);
}

// llama-quantize's Q4_K_M rule for 8 layers: use_more_bits(i, 8) holds for i = 0, 3, 6, 7.
TEST(SyntheticMix, LlamaMixOfQ4KGivesQ6KToOutputAndSomeAttnVAndFfnDown) {
  models::SyntheticSpec spec;
  spec.n_embd = 256;
  spec.n_ff = 256;
  spec.n_layer = 8;
  spec.type = GgmlType::Q4_K;
  spec.llama_mix = true;
  spec.n_vocab = 500;
  const std::string path = testlib::temp_dir() + "/bench_q4km.gguf";
  models::write_synthetic_model(spec, path);
  const gguf::File f = gguf::File::open(path);
  const auto type_of = [&](const std::string& name) { return f.find_tensor(name)->type; };
  EXPECT_EQ(type_of("output.weight"), GgmlType::Q6_K);
  EXPECT_EQ(type_of("token_embd.weight"), GgmlType::Q4_K);
  for (int layer = 0; layer < 8; ++layer) {
    const std::string p = "blk." + std::to_string(layer) + ".";
    const GgmlType more =
        layer == 0 || layer == 3 || layer == 6 || layer == 7 ? GgmlType::Q6_K : GgmlType::Q4_K;
    EXPECT_EQ(type_of(p + "attn_v.weight"), more) << layer;
    EXPECT_EQ(type_of(p + "ffn_down.weight"), more) << layer;
    EXPECT_EQ(type_of(p + "attn_q.weight"), GgmlType::Q4_K) << layer;
    EXPECT_EQ(type_of(p + "ffn_up.weight"), GgmlType::Q4_K) << layer;
    EXPECT_EQ(type_of(p + "attn_norm.weight"), GgmlType::F32) << layer;
  }
  EXPECT_EQ(f.find_tensor("token_embd.weight")->ne[1], 500);
  spec.llama_mix = false;
  EXPECT_EQ(models::synthetic_tensor_type(spec, "output.weight"), GgmlType::Q4_K);
  // Other quantized types: only output.weight changes (to Q6_K, but Q8_0 stays).
  spec.llama_mix = true;
  spec.type = GgmlType::Q4_0;
  EXPECT_EQ(models::synthetic_tensor_type(spec, "output.weight"), GgmlType::Q6_K);
  EXPECT_EQ(models::synthetic_tensor_type(spec, "blk.0.attn_v.weight"), GgmlType::Q4_0);
  spec.type = GgmlType::Q8_0;
  EXPECT_EQ(models::synthetic_tensor_type(spec, "output.weight"), GgmlType::Q8_0);
  spec.type = GgmlType::F16;
  EXPECT_EQ(models::synthetic_tensor_type(spec, "output.weight"), GgmlType::F16);
}

TEST(SyntheticMix, TinyLlamaPresetHasTheRealVocabularySize) {
  const models::SyntheticSpec s = models::synthetic_preset("tinyllama-1.1b");
  EXPECT_EQ(s.n_vocab, 32000);
  EXPECT_EQ(s.n_layer, 22);
  EXPECT_EQ(s.n_embd, 2048);
  EXPECT_EQ(s.n_ff, 5632);
  models::SyntheticSpec small;
  small.n_vocab = 10;  // below the built-in vocabulary
  EXPECT_THROW(models::write_synthetic_model(small, testlib::temp_dir() + "/bad.gguf"), Error);
}

}  // namespace
}  // namespace quanta::bench
