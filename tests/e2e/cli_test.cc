// The `quanta` program end to end: greedy `run` reproduces llama.cpp's continuation (ids and
// text), `tokenize` its prompt ids, `info` reports memory, and bad input exits non-zero with a
// message naming the problem.
#include <gtest/gtest.h>

#include <sstream>

#include "kernels/kernel_table.h"
#include "testlib/golden.h"
#include "testlib/shared_data.h"

namespace quanta {
namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}


std::vector<int32_t> parse_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  int32_t id;
  while (in >> id) ids.push_back(id);
  return ids;
}

TEST(Cli, GreedyRunMatchesLlamaCppIdsAndText) {
  const testlib::Golden golden = testlib::load_golden("stories260K");
  const testlib::GoldenCase& gc = golden.cases[0];
  const std::string base = testlib::quanta_binary() + " run -m " + testlib::shared_model("stories260K.gguf") +
                           " -p " + quote(gc.prompt) + " -n 32 --temp 0 -t 2";
  std::string out, err;
  ASSERT_EQ(testlib::run_command(base + " --ids", &out, &err), 0) << err;
  EXPECT_EQ(parse_ids(out), gc.greedy);
  EXPECT_NE(err.find("time to first token"), std::string::npos) << err;
  EXPECT_NE(err.find("tokens/s"), std::string::npos) << err;
  ASSERT_EQ(testlib::run_command(base, &out, &err), 0) << err;
  EXPECT_EQ(out, gc.greedy_text);  // stdout holds the continuation and nothing else
}

TEST(Cli, F16KvCacheRuns) {
  std::string out, err;
  ASSERT_EQ(testlib::run_command(testlib::quanta_binary() + " run -m " +
                                     testlib::shared_model("stories260K.gguf") +
                                     " -p 'Once upon a time' -n 16 --temp 0 --kv-type f16 --ids",
                                 &out, &err),
            0)
      << err;
  EXPECT_EQ(parse_ids(out).size(), 16u) << out;
}

TEST(Cli, SeededSamplingIsReproducible) {
  const std::string cmd = testlib::quanta_binary() + " run -m " + testlib::shared_model("stories260K.gguf") +
                          " -p 'Once upon a time' -n 40 --temp 0.9 --seed 1234 --ids";
  std::string a, b, c;
  ASSERT_EQ(testlib::run_command(cmd, &a), 0);
  ASSERT_EQ(testlib::run_command(cmd, &b), 0);
  ASSERT_EQ(testlib::run_command(cmd + " --seed 99", &c), 0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Cli, TokenizeMatchesGoldenPromptIds) {
  const testlib::Golden golden = testlib::load_golden("syn-qwen2-f32");
  for (const testlib::GoldenCase& gc : golden.cases) {
    std::string out, err;
    ASSERT_EQ(testlib::run_command(testlib::quanta_binary() + " tokenize -m " +
                                       testlib::shared_model("syn-qwen2-f32.gguf") + " -p " + quote(gc.prompt),
                                   &out, &err),
              0)
        << err;
    EXPECT_EQ(parse_ids(out), gc.tokens) << gc.prompt;
  }
}

TEST(Cli, InfoReportsArchitectureAndFit) {
  std::string out;
  ASSERT_EQ(testlib::run_command(testlib::quanta_binary() + " info -m " +
                                     testlib::shared_model("syn-llama-gqa-q4_k_m.gguf"),
                                 &out),
            0);
  EXPECT_NE(out.find("llama"), std::string::npos) << out;
  EXPECT_NE(out.find("q4_K x25"), std::string::npos) << out;
  EXPECT_NE(out.find("verdict:       fits"), std::string::npos) << out;
  const std::string best = kernels::available_isas().back();
  EXPECT_NE(out.find("kernels:       " + best + " (this CPU runs ref"), std::string::npos) << out;
  ASSERT_EQ(testlib::run_command(testlib::quanta_binary() + " info -m " +
                                     testlib::shared_model("syn-llama-gqa-f32.gguf") + " -c 100000000",
                                 &out),
            0);
  EXPECT_NE(out.find("does not fit"), std::string::npos) << out;
}

struct BadInvocation {
  const char* args;
  const char* message;
};

TEST(Cli, BadInputExitsNonZeroWithAClearMessage) {
  const std::string stories = testlib::shared_model("stories260K.gguf");
  const BadInvocation cases[] = {
      {"run -m /nonexistent.gguf -p x", "cannot open"},
      {"run -p x", "missing required option --model"},
      {"run -m MODEL -p x --temp abc", "invalid value 'abc' for --temp"},
      {"run -m MODEL -p x --top-p 1.5", "top_p"},
      {"run -m MODEL -p x -n -3", "--n-predict"},
      {"run -m MODEL -p x --bogus", "unknown option '--bogus'"},
      {"info -m /tmp", "/tmp"},  // a directory, not a file
      {"tokenize -m MODEL", "missing required option --prompt"},
      {"synth -o /tmp/x.gguf --type q2_K", "unsupported tensor type 'q2_K'"},
      {"run -m MODEL -p x --kv-type q4_k", "--kv-type"},
      {"run -m MODEL -p x --kv-type bf16", "--kv-type"},
      {"frobnicate", "unknown command"},
  };
  for (const BadInvocation& bad : cases) {
    std::string args = bad.args;
    const size_t at = args.find("MODEL");
    if (at != std::string::npos) args.replace(at, 5, stories);
    std::string out, err;
    const int rc = testlib::run_command(testlib::quanta_binary() + " " + args, &out, &err);
    EXPECT_NE(rc, 0) << args;
    EXPECT_NE(err.find(bad.message), std::string::npos) << args << "\nstderr: " << err;
    EXPECT_EQ(err.find("terminate"), std::string::npos) << args;  // no uncaught exception
  }
}

TEST(Cli, SynthWritesARunnableModel) {
  const std::string path = testlib::temp_dir() + "/synth-q4_0.gguf";
  std::string out, err;
  ASSERT_EQ(testlib::run_command(testlib::quanta_binary() + " synth -o " + path + " --type q4_0", &out, &err), 0) << err;
  ASSERT_EQ(testlib::run_command(testlib::quanta_binary() + " run -m " + path +
                                     " -p hello -n 8 --ignore-eos --ids --temp 0",
                                 &out, &err),
            0)
      << err;
  EXPECT_EQ(parse_ids(out).size(), 8u) << out;
  EXPECT_NE(err.find("random weights"), std::string::npos) << err;
}

}  // namespace
}  // namespace quanta
