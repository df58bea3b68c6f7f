// Every model in shared/models with a golden in shared/golden: the prompts (add_special=true)
// encode to llama.cpp's prompt tokens, and the greedy continuation's pieces (special tokens
// rendered, as llama.cpp's common_token_to_piece does), streamed through Utf8Stream, give the
// golden greedy_text (whose invalid bytes are U+FFFD).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8_stream.h"

namespace quanta::tokenizer {
namespace {

constexpr const char* kModels[] = {
    "stories260K",          "stories260K-Q5_0mix", "stories260K-Q8_0mix", "syn-llama-gqa-f32",
    "syn-llama-gqa-f16",    "syn-llama-gqa-bf16",  "syn-llama-gqa-q4_0",  "syn-llama-gqa-q4_k_m",
    "syn-llama-gqa-q5_k_m", "syn-llama-gqa-q6_k",  "syn-llama-gqa-q8_0",  "syn-llama-mha-f32",
    "syn-qwen2-f32"};

// A golden added to shared/golden must be added to kModels too.
TEST(ModelGoldenListTest, CoversEveryGolden) {
  const std::set<std::string> listed(std::begin(kModels), std::end(kModels));
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testlib::shared_dir() + "/golden")) {
    if (entry.path().extension() != ".json") continue;
    ++found;
    EXPECT_TRUE(listed.count(entry.path().stem().string())) << entry.path();
  }
  EXPECT_EQ(found, static_cast<int>(listed.size()));
}

class ModelGoldenTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ModelGoldenTest, PromptTokensAndGreedyTextMatchLlamaCpp) {
  const nlohmann::json golden = nlohmann::json::parse(
      testlib::read_file(testlib::shared_path(std::string("golden/") + GetParam() + ".json")));
  const std::string model = golden.at("model").get<std::string>();
  const gguf::File file = gguf::File::open(testlib::shared_path("models/" + model));
  const Tokenizer tok = Tokenizer::from_gguf(file);
  EXPECT_EQ(tok.n_vocab(), golden.at("n_vocab").get<int32_t>());
  const auto& cases = golden.at("cases");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string prompt = c.at("prompt").get<std::string>();
    EXPECT_EQ(tok.encode(prompt, c.at("add_bos").get<bool>()),
              c.at("tokens").get<std::vector<int32_t>>())
        << model << ": '" << prompt << "'";

    Utf8Stream stream;
    std::string text;
    for (const int32_t id : c.at("greedy").get<std::vector<int32_t>>()) {
      stream.push(tok.token_to_piece(id, /*special=*/true), text);
    }
    stream.flush(text);
    EXPECT_EQ(text, c.at("greedy_text").get<std::string>()) << model << ": '" << prompt << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelGoldenTest, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace quanta::tokenizer
