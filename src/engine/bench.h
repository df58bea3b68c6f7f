// `quanta bench` measurements in the style of llama-bench and llama-batched-bench: prompt
// processing (ppN), decode of one sequence at a context depth (tgN, tgN@dD) and decode of B
// sequences together (batchB), each repeated, as tokens/s with the bandwidth roofline of decode.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kv/kv_transform.h"
#include "models/model.h"
#include "quant/types.h"

namespace quanta::bench {

enum class TestKind {
  kPrompt,   // ppN: N prompt tokens in one batch, from an empty context
  kDecode,   // tgN@dD: one sequence holding max(D, 1) tokens generates N, one per forward pass
  kBatched,  // batchB: B sequences holding P tokens each generate N each, B tokens per pass
};

struct BenchTest {
  TestKind kind = TestKind::kDecode;
  int32_t n_prompt = 0;  // kPrompt: timed prompt; kDecode: depth D; kBatched: prompt P
  int32_t n_gen = 0;     // tokens generated per sequence (decode kinds)
  int32_t n_seq = 1;     // sequences decoded together (kBatched)

  std::string name() const;  // "pp512", "tg128", "tg128@d4096", "batch16"
  bool is_decode() const { return kind != TestKind::kPrompt; }
  // Tokens in each sequence before the timed decode steps (a decode needs at least one).
  int32_t context_before() const { return n_prompt > 0 ? n_prompt : 1; }
};

BenchTest prompt_test(int32_t n_prompt);
BenchTest decode_test(int32_t n_gen, int32_t depth = 0);
BenchTest batched_test(int32_t n_seq, int32_t n_prompt, int32_t n_gen);
// "pp512", "tg128", "tg128@d4096" or "batch16" (prompt batch_prompt, batch_gen generated);
// throws quanta::Error for anything else.
BenchTest parse_test(const std::string& name, int32_t batch_prompt = 128, int32_t batch_gen = 128);

// How the context before a decode test is filled (it is never timed).
enum class KvFill {
  kPrefill,  // run the model over random tokens, as llama-bench does
  kRandom,   // write random K/V rows into the cache directly: same attention cost, no
             // prefill time (for slow kernels or deep contexts)
};

struct Progress {
  const BenchTest* test = nullptr;
  const char* phase = "";  // "fill", "warmup", "run"
  int32_t repetition = 0;  // 0-based, "run" only
  int32_t done = 0;        // tokens of this phase processed so far
  int32_t total = 0;
};

struct BenchOptions {
  int32_t repetitions = 3;
  int32_t n_threads = 0;  // 0: all hardware threads
  KvFill kv_fill = KvFill::kPrefill;
  GgmlType kv_type = GgmlType::F16;  // KV cache rows, F16 as llama.cpp's default
  kv::KeyTransformMode kv_transform = kv::kDefaultKeyTransform;  // quantized kv_type only
  bool warmup = true;                // one untimed forward pass first (maps the weights in)
  double bandwidth = 0.0;            // memory read bandwidth in bytes/s for the roofline; 0: none
  uint64_t seed = 1;                 // token ids and random K/V
  std::function<void(const Progress&)> on_progress;  // after every forward pass
};

struct BenchResult {
  BenchTest test;
  int32_t n_threads = 0;
  std::vector<double> samples;                // tokens/s, one per repetition
  double median = 0.0, mean = 0.0, sd = 0.0;  // of samples; sd with n - 1 (0 for one sample)
  double weight_bytes_per_token = 0.0;        // decode kinds: weight bytes one pass streams / n_seq
  double roofline_pct = -1.0;                 // decode kinds with a bandwidth, else -1
};

// Bytes of weights one decode pass of n_seq tokens reads: every tensor except the token
// embedding, of which only the n_seq looked-up rows (all of it when it is the tied output).
uint64_t decode_weight_bytes(const models::Model& model, int32_t n_seq);

// Median, mean and sample standard deviation of `samples` into `r`.
void summarize(BenchResult& r);

BenchResult run_test(const models::Model& model, const BenchTest& test, const BenchOptions& o);
std::vector<BenchResult> run_tests(const models::Model& model, const std::vector<BenchTest>& tests,
                                   const BenchOptions& o);

}  // namespace quanta::bench
