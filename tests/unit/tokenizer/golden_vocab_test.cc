// llama.cpp's tokenizer test vectors (test-tokenizer-0): every case of every vocab-only GGUF
// in shared/golden/tokenizer must encode (add_special=false, parse_special=false) to the ids
// llama.cpp produced.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gguf/reader.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"
#include "unit/tokenizer/golden_files.h"

namespace quanta::tokenizer {
namespace {

class GoldenVocabTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenVocabTest, EncodesEveryCaseLikeLlamaCpp) {
  const std::string base =
      testlib::shared_path(std::string("golden/tokenizer/ggml-vocab-") + GetParam() + ".gguf");
  const gguf::File file = gguf::File::open(base);
  const Tokenizer tok = Tokenizer::from_gguf(file);
  const std::vector<std::string> inputs = testing::split_inputs(testlib::read_file(base + ".inp"));
  const std::vector<std::vector<int32_t>> outputs =
      testing::read_outputs(testlib::read_file(base + ".out"));
  ASSERT_EQ(inputs.size(), outputs.size());
  ASSERT_GE(inputs.size(), 40u);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(tok.encode(inputs[i], /*add_special=*/false), outputs[i])
        << GetParam() << " case " << i << ": '" << inputs[i] << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, GoldenVocabTest,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "falcon", "starcoder",
                                           "deepseek-coder", "deepseek-llm"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace quanta::tokenizer
