// The quantization recipe against llama.cpp: for every variant llama-quantize made in
// ../shared/models, the planned type of each tensor and the tensor order must be the file's.
// Rules the shared files cannot show (Q4_K_S, imatrix guards, tied output, --pure) are
// checked on descriptor lists shaped like real models.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compress/recipe.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "models/synthetic.h"
#include "testlib/shared_data.h"

namespace quanta::compress {
namespace {

std::vector<TensorDesc> descs_of(const gguf::File& f) {
  std::vector<TensorDesc> out;
  for (const gguf::TensorInfo& t : f.tensors()) out.push_back({t.name, t.ne, t.type});
  return out;
}

ModelShape shape_of(const gguf::File& f) {
  ModelShape m;
  m.arch = *f.get_string("general.architecture");
  m.n_layer = static_cast<int32_t>(*f.get_int(m.arch + ".block_count"));
  m.n_head = static_cast<int32_t>(*f.get_int(m.arch + ".attention.head_count"));
  m.n_head_kv = static_cast<int32_t>(*f.get_int(m.arch + ".attention.head_count_kv"));
  return m;
}

// Plans `base` for `ftype` and expects the names, order and types of `variant`.
void expect_recipe_matches(const std::string& base, const std::string& variant, FileType ftype) {
  const gguf::File in = gguf::File::open(testlib::shared_path("models/" + base));
  const gguf::File ref = gguf::File::open(testlib::shared_path("models/" + variant));
  EXPECT_EQ(*ref.get_int("general.file_type"), static_cast<int64_t>(ftype)) << variant;
  const std::vector<TensorDesc> all = descs_of(in);
  std::vector<TensorDesc> ordered;
  for (size_t i : llama_tensor_order(all)) ordered.push_back(all[i]);
  RecipeOptions o;
  o.ftype = ftype;
  const std::vector<TensorPlan> plans = plan_types(ordered, shape_of(in), o);
  ASSERT_EQ(ordered.size(), ref.tensors().size());
  for (size_t i = 0; i < ordered.size(); ++i) {
    const gguf::TensorInfo& r = ref.tensors()[i];
    EXPECT_EQ(ordered[i].name, r.name) << variant << " position " << i;
    EXPECT_EQ(type_name(plans[i].type), std::string(type_name(r.type)))
        << variant << ": " << ordered[i].name;
    EXPECT_EQ(plans[i].convert, ordered[i].type != r.type) << ordered[i].name;
  }
}

TEST(Recipe, MatchesLlamaQuantizeOnSyntheticModel) {
  expect_recipe_matches("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q4_0.gguf", FileType::kQ4_0);
  expect_recipe_matches("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q8_0.gguf", FileType::kQ8_0);
  expect_recipe_matches("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q6_k.gguf", FileType::kQ6_K);
  expect_recipe_matches("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q4_k_m.gguf",
                        FileType::kQ4_K_M);
  expect_recipe_matches("syn-llama-gqa-f16.gguf", "syn-llama-gqa-q5_k_m.gguf",
                        FileType::kQ5_K_M);
}

TEST(Recipe, MatchesLlamaQuantizeFallbacksOnStories260K) {
  // 64-wide rows: K-quants fall back to Q8_0 / Q5_0; 172-wide ffn_down rows to F16.
  expect_recipe_matches("stories260K.gguf", "stories260K-Q8_0mix.gguf", FileType::kQ6_K);
  expect_recipe_matches("stories260K.gguf", "stories260K-Q5_0mix.gguf", FileType::kQ4_K_M);
}

// A Llama-shaped list of tensors: n_layer blocks of width `dim`, FFN width `ff`.
std::vector<TensorDesc> llama_like(int32_t n_layer, int64_t dim, int64_t ff, bool tied) {
  std::vector<TensorDesc> t;
  t.push_back({"token_embd.weight", {dim, 1000}, GgmlType::F16});
  t.push_back({"output_norm.weight", {dim}, GgmlType::F32});
  if (!tied) t.push_back({"output.weight", {dim, 1000}, GgmlType::F16});
  for (int32_t l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up"}) {
      t.push_back({p + m + ".weight", {dim, dim}, GgmlType::F16});
    }
    t.push_back({p + "ffn_down.weight", {ff, dim}, GgmlType::F16});
    t.push_back({p + "attn_norm.weight", {dim}, GgmlType::F32});
  }
  std::vector<TensorDesc> ordered;
  for (size_t i : llama_tensor_order(t)) ordered.push_back(t[i]);
  return ordered;
}

GgmlType planned(const std::vector<TensorDesc>& t, const std::vector<TensorPlan>& p,
                 const std::string& name) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].name == name) return p[i].type;
  }
  ADD_FAILURE() << "no tensor " << name;
  return GgmlType::F32;
}

TEST(Recipe, UseMoreBitsIsHalfTheLayers) {
  int n = 0;
  for (int32_t i = 0; i < 32; ++i) n += use_more_bits(i, 32) ? 1 : 0;
  EXPECT_EQ(n, 16);
  EXPECT_TRUE(use_more_bits(0, 32) && use_more_bits(6, 32) && use_more_bits(31, 32));
  EXPECT_FALSE(use_more_bits(4, 32) || use_more_bits(5, 32) || use_more_bits(7, 32));
}

TEST(Recipe, Q4_K_SRaisesTheFirstLayers) {
  const auto t = llama_like(32, 4096, 11008, false);
  ModelShape m{"llama", 32, 32, 32};
  RecipeOptions o;
  o.ftype = FileType::kQ4_K_S;
  const auto p = plan_types(t, m, o);
  EXPECT_EQ(planned(t, p, "blk.3.attn_v.weight"), GgmlType::Q5_K);
  EXPECT_EQ(planned(t, p, "blk.4.attn_v.weight"), GgmlType::Q4_K);
  EXPECT_EQ(planned(t, p, "blk.3.ffn_down.weight"), GgmlType::Q5_K);  // i < n/8
  EXPECT_EQ(planned(t, p, "blk.4.ffn_down.weight"), GgmlType::Q4_K);
  EXPECT_EQ(planned(t, p, "blk.9.attn_q.weight"), GgmlType::Q4_K);
  EXPECT_EQ(planned(t, p, "output.weight"), GgmlType::Q6_K);
  EXPECT_EQ(planned(t, p, "token_embd.weight"), GgmlType::Q4_K);
  EXPECT_EQ(planned(t, p, "blk.0.attn_norm.weight"), GgmlType::F32);
}

TEST(Recipe, Q4_0WithImatrixGuardsTheFirstFfnDown) {
  const auto t = llama_like(16, 512, 1024, false);
  ModelShape m{"llama", 16, 8, 8};
  RecipeOptions o;
  o.ftype = FileType::kQ4_0;
  EXPECT_EQ(planned(t, plan_types(t, m, o), "blk.1.ffn_down.weight"), GgmlType::Q4_0);
  o.has_imatrix = true;
  const auto p = plan_types(t, m, o);
  EXPECT_EQ(planned(t, p, "blk.1.ffn_down.weight"), GgmlType::Q4_1);
  EXPECT_EQ(planned(t, p, "blk.2.ffn_down.weight"), GgmlType::Q4_0);
}

TEST(Recipe, TiedEmbeddingsTakeTheOutputRule) {
  const auto t = llama_like(4, 256, 512, /*tied=*/true);
  ModelShape m{"llama", 4, 4, 4};
  RecipeOptions o;
  o.ftype = FileType::kQ4_0;
  EXPECT_EQ(planned(t, plan_types(t, m, o), "token_embd.weight"), GgmlType::Q6_K);
  o.keep_output_f16 = true;
  EXPECT_EQ(planned(t, plan_types(t, m, o), "token_embd.weight"), GgmlType::F16);
}

TEST(Recipe, KeepOutputF16AndPure) {
  const auto t = llama_like(8, 256, 172, false);
  ModelShape m{"llama", 8, 4, 4};
  RecipeOptions o;
  o.ftype = FileType::kQ4_K_M;
  o.keep_output_f16 = true;
  auto p = plan_types(t, m, o);
  EXPECT_EQ(planned(t, p, "output.weight"), GgmlType::F16);
  EXPECT_FALSE(p[0].convert);  // output.weight is already F16: copied
  EXPECT_EQ(planned(t, p, "blk.0.attn_v.weight"), GgmlType::Q6_K);
  o.keep_output_f16 = false;
  o.pure = true;
  p = plan_types(t, m, o);
  EXPECT_EQ(planned(t, p, "output.weight"), GgmlType::Q4_K);
  EXPECT_EQ(planned(t, p, "blk.0.attn_v.weight"), GgmlType::Q4_K);
  EXPECT_EQ(planned(t, p, "blk.0.ffn_down.weight"), GgmlType::F16);  // 172: no Q4_K, no Q5_0
}

TEST(Recipe, LegacyTypesFallBackToF16OnOddWidths) {
  const auto t = llama_like(2, 64, 172, false);
  ModelShape m{"llama", 2, 4, 4};
  RecipeOptions o;
  o.ftype = FileType::kQ4_0;
  const auto p = plan_types(t, m, o);
  EXPECT_EQ(planned(t, p, "blk.0.ffn_down.weight"), GgmlType::F16);
  EXPECT_EQ(planned(t, p, "blk.0.ffn_gate.weight"), GgmlType::Q4_0);
  EXPECT_EQ(planned(t, p, "output.weight"), GgmlType::Q8_0);  // 64 % 256 != 0
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].name == "blk.0.ffn_down.weight") {
      EXPECT_FALSE(p[i].note.empty());
    }
  }
}

TEST(Recipe, FloatTargets) {
  const auto t = llama_like(2, 256, 512, false);
  ModelShape m{"llama", 2, 4, 4};
  RecipeOptions o;
  o.ftype = FileType::kBF16;
  const auto p = plan_types(t, m, o);
  EXPECT_EQ(planned(t, p, "output.weight"), GgmlType::BF16);
  EXPECT_EQ(planned(t, p, "blk.1.ffn_down.weight"), GgmlType::BF16);
  EXPECT_EQ(planned(t, p, "output_norm.weight"), GgmlType::F32);
}

// models::synthetic_tensor_type (quanta synth / bench --shape) keeps its own copy of the
// mix, since the models layer cannot use compress; it must agree with the recipe wherever
// the widths fit (multiples of 256).
TEST(Recipe, AgreesWithTheSyntheticModelMix) {
  const int32_t n_layer = 22;
  const auto t = llama_like(n_layer, 2048, 5632, false);
  const ModelShape m{"llama", n_layer, 32, 4};
  const std::pair<GgmlType, FileType> kinds[] = {{GgmlType::Q8_0, FileType::kQ8_0},
                                                 {GgmlType::Q4_0, FileType::kQ4_0},
                                                 {GgmlType::Q4_K, FileType::kQ4_K_M},
                                                 {GgmlType::Q5_K, FileType::kQ5_K_M},
                                                 {GgmlType::Q6_K, FileType::kQ6_K}};
  for (const auto& [type, ftype] : kinds) {
    models::SyntheticSpec spec;
    spec.type = type;
    spec.n_layer = n_layer;
    spec.llama_mix = true;
    RecipeOptions o;
    o.ftype = ftype;
    const auto p = plan_types(t, m, o);
    for (size_t i = 0; i < t.size(); ++i) {
      if (!is_quantizable(t[i])) continue;
      EXPECT_EQ(type_name(p[i].type),
                std::string(type_name(models::synthetic_tensor_type(spec, t[i].name))))
          << type_name(type) << " " << t[i].name;
    }
  }
}

TEST(FileTypes, NamesAndAliases) {
  EXPECT_EQ(parse_file_type("q4_k_m"), FileType::kQ4_K_M);
  EXPECT_EQ(parse_file_type("Q4_K"), FileType::kQ4_K_M);  // llama-quantize's alias
  EXPECT_EQ(parse_file_type("Q5_K"), FileType::kQ5_K_M);
  EXPECT_EQ(parse_file_type("q8_0"), FileType::kQ8_0);
  EXPECT_EQ(file_type_info(FileType::kQ6_K).base_type, GgmlType::Q6_K);
  EXPECT_TRUE(is_quantized_file_type(FileType::kQ4_0));
  EXPECT_FALSE(is_quantized_file_type(FileType::kF16));
  try {
    parse_file_type("Q3_K_M");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_K_M"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quanta::compress
