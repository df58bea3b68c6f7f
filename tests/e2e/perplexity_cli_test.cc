// `quanta perplexity` and `--kv-type` end to end: JSON fields and the scored-token count, a
// model against itself as KL base (KL 0, same top 100%), help text, clear errors for bad
// flags and files, and `run` with quantized KV (head size 32, and stories260K's head size 8
// through packed rows).
#include <gtest/gtest.h>

#include <string>

#include "testlib/shared_data.h"

namespace quanta {
namespace {


std::string perplexity_cmd(const std::string& flags) {
  return testlib::quanta_binary() + " perplexity -m " + testlib::shared_model("stories260K.gguf") + " -f " +
         testlib::shared_path("text/tinystories_validation_100.txt") + " -t 2 " + flags;
}

TEST(PerplexityCli, JsonReportsPerplexityAndScoredTokens) {
  std::string out, err;
  ASSERT_EQ(testlib::run_command(perplexity_cmd("--ctx 64 --chunks 8 --json"), &out, &err), 0)
      << err;
  EXPECT_EQ(out.front(), '{') << out;
  EXPECT_NE(out.find("\"perplexity\":"), std::string::npos) << out;
  EXPECT_NE(out.find("\"tokens_scored\":248"), std::string::npos) << out;  // 8 x (32 - 1)
  EXPECT_EQ(out.find("kl_mean"), std::string::npos) << out;
  EXPECT_NE(err.find("8/8 windows"), std::string::npos) << err;  // the progress line
}

TEST(PerplexityCli, ModelAgainstItselfHasZeroKlAndFullAgreement) {
  std::string out, err;
  const std::string flags =
      "--ctx 64 --chunks 4 --json --kl-base " + testlib::shared_model("stories260K.gguf");
  ASSERT_EQ(testlib::run_command(perplexity_cmd(flags), &out, &err), 0) << err;
  EXPECT_NE(out.find("\"kl_mean\":0.0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"same_top\":1.0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"kl_p99\":"), std::string::npos) << out;
  ASSERT_EQ(testlib::run_command(
                perplexity_cmd("--ctx 64 --chunks 4 --kl-base " + testlib::shared_model("stories260K.gguf")),
                &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("Same top p: 100.000"), std::string::npos) << out;
  EXPECT_NE(out.find("Mean    KLD:"), std::string::npos) << out;
}

TEST(PerplexityCli, HelpAndClearErrors) {
  std::string out, err;
  ASSERT_EQ(testlib::run_command(testlib::quanta_binary() + " perplexity --help", &out, &err), 0);
  EXPECT_NE(out.find("--kl-base"), std::string::npos) << out;
  EXPECT_NE(out.find("--kv-type"), std::string::npos) << out;
  const struct {
    std::string flags, message;
  } bad[] = {
      {"--ctx 2", "--ctx"},
      {"--kv-type q4_k", "q8_0"},
      {"--kv-type bf16", "q8_0"},
      {"--ctx 30000", "needs at least"},
      {"--base-kv-type f16", "--kl-base"},
  };
  for (const auto& b : bad) {
    EXPECT_NE(testlib::run_command(perplexity_cmd(b.flags), &out, &err), 0) << b.flags;
    EXPECT_NE(err.find(b.message), std::string::npos) << b.flags << ": " << err;
  }
  EXPECT_NE(testlib::run_command(testlib::quanta_binary() + " perplexity -m " +
                                     testlib::shared_model("stories260K.gguf") + " -f /nonexistent.txt",
                                 &out, &err),
            0);
  EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
}

TEST(PerplexityCli, RunWithQuantizedKvCache) {
  std::string out, err;
  for (const char* type : {"q8_0", "q4_0"}) {
    ASSERT_EQ(testlib::run_command(
                  testlib::quanta_binary() + " run -m " + testlib::shared_model("syn-llama-gqa-f32.gguf") +
                      " -p 'Once upon a time' -n 8 --temp 0 --ids --kv-type " + type,
                  &out, &err),
              0)
        << err;
    EXPECT_FALSE(out.empty()) << type;
  }
  ASSERT_EQ(
      testlib::run_command(testlib::quanta_binary() + " run -m " + testlib::shared_model("stories260K.gguf") +
                               " -p 'Once upon a time' -n 8 --temp 0 --ids --kv-type q8_0",
                           &out, &err),
      0)
      << err;
  EXPECT_FALSE(out.empty());
}

}  // namespace
}  // namespace quanta
