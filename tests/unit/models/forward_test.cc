// Forward-pass invariants: a prompt processed as one batch, in chunks, or token by token gives
// the same logits; two sequences batched together (their KV blocks interleaved in the pool)
// give the same logits as each alone; threads do not change results. Q4_0 weights repacked
// at load (kernels/repack.h) give the same logits as the GGUF layout on the same path.
// Contexts sharing one thread pool (speculative draft + target) match contexts with their
// own pools, allocate nothing per token, and overlapping calls on a shared pool abort.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/generator.h"
#include "kernels/kernel_table.h"
#include "kernels/repack.h"
#include "models/context.h"
#include "models/model.h"
#include "models/synthetic.h"
#include "testlib/alloc_counter.h"
#include "testlib/shared_data.h"

namespace quanta::models {
namespace {

std::unique_ptr<Model> load_synthetic(const std::string& arch) {
  SyntheticSpec spec;
  spec.arch = arch;
  spec.type = GgmlType::F32;
  const std::string path = testlib::temp_dir() + "/forward-" + arch + ".gguf";
  write_synthetic_model(spec, path);
  return Model::load(path);
}

const std::vector<int32_t> kPrompt = {1, 70, 300, 301, 120, 45, 46, 47, 290, 88, 5, 77, 180, 181, 9};

std::vector<float> logits_by_chunks(const Model& model, int32_t chunk, int threads) {
  ContextOptions o;
  o.n_ctx = 64;
  o.n_batch = chunk;
  o.n_threads = threads;
  Context ctx(model, o);
  Generator gen(ctx);
  std::vector<float> out;
  const int32_t n_vocab = ctx.n_vocab();
  for (size_t i = 0; i < kPrompt.size(); i += chunk) {
    const int32_t n = std::min<int32_t>(chunk, static_cast<int32_t>(kPrompt.size() - i));
    const float* l = gen.prefill(kPrompt.data() + i, n, /*all_logits=*/true);
    out.insert(out.end(), l, l + static_cast<size_t>(n) * n_vocab);
  }
  return out;
}

class Forward : public ::testing::TestWithParam<const char*> {};

TEST_P(Forward, BatchChunkedAndIncrementalAgree) {
  const auto model = load_synthetic(GetParam());
  const std::vector<float> whole = logits_by_chunks(*model, 16, 1);
  for (int32_t chunk : {1, 4, 7}) {
    const std::vector<float> part = logits_by_chunks(*model, chunk, 2);
    ASSERT_EQ(part.size(), whole.size());
    for (size_t i = 0; i < whole.size(); ++i) {
      ASSERT_EQ(part[i], whole[i]) << "chunk " << chunk << " index " << i;
    }
  }
}

TEST_P(Forward, TwoSequencesInOneBatchMatchSeparateRuns) {
  const auto model = load_synthetic(GetParam());
  const std::vector<int32_t> a = {1, 70, 300, 301, 120, 45};
  const std::vector<int32_t> b = {1, 5, 77, 180};
  ContextOptions o;
  o.n_ctx = 32;
  o.n_seq = 2;
  o.kv_block_size = 2;  // many small blocks, so the two sequences interleave in the pool
  Context ctx(*model, o);
  const int32_t n_vocab = ctx.n_vocab();
  kv::BlockTable ta = ctx.kv().new_table(32), tb = ctx.kv().new_table(32);
  const kv::BlockTable* tables[2] = {&ta, &tb};
  // Interleave: a[0..2], b[0..2], then the rest of both in one batch.
  std::vector<float> got_a, got_b;
  const auto step = [&](std::vector<int32_t> toks, std::vector<int32_t> pos,
                        std::vector<int32_t> seq) {
    for (size_t i = 0; i < toks.size(); ++i) ASSERT_TRUE((seq[i] ? tb : ta).append(ctx.kv().pool(), 1));
    std::vector<uint8_t> want(toks.size(), 1);
    Batch batch{static_cast<int32_t>(toks.size()), toks.data(), pos.data(), seq.data(), want.data(),
                tables};
    const float* l = ctx.forward(batch);
    for (size_t i = 0; i < toks.size(); ++i) {
      (seq[i] ? got_b : got_a).insert((seq[i] ? got_b : got_a).end(), l + i * n_vocab,
                                      l + (i + 1) * n_vocab);
    }
  };
  step({a[0], a[1], a[2]}, {0, 1, 2}, {0, 0, 0});
  step({b[0], b[1]}, {0, 1}, {1, 1});
  step({a[3], b[2], a[4], b[3], a[5]}, {3, 2, 4, 3, 5}, {0, 1, 0, 1, 0});
  for (const auto* seq : {&a, &b}) {
    ContextOptions so;
    so.n_ctx = 32;
    Context single(*model, so);
    Generator gen(single);
    const float* l = gen.prefill(seq->data(), static_cast<int32_t>(seq->size()), true);
    const std::vector<float>& got = seq == &a ? got_a : got_b;
    ASSERT_EQ(got.size(), seq->size() * n_vocab);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], l[i], 1e-5f * (1.0f + std::fabs(l[i]))) << (seq == &a ? "a " : "b ") << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, Forward, ::testing::Values("llama", "qwen2"));

// Loaded under the reference path a model keeps the GGUF layout; under a path that prefers
// another layout (Q4_0 and Q8_0 on AVX2) its matrices are repacked (same values), and the
// logits equal those of the same path multiplying the GGUF layout, bit for bit, in one batch
// and token by token.
class ForwardRepacked : public ::testing::TestWithParam<std::pair<const char*, GgmlType>> {};

TEST_P(ForwardRepacked, SameLogitsAsGgufLayout) {
  const auto [file, type] = GetParam();
  const std::string path = testlib::shared_path(std::string("models/") + file);
  const std::string best = kernels::available_isas().back();
  kernels::select("ref");
  const auto plain = Model::load(path);
  kernels::select(best);
  EXPECT_EQ(plain->weights().repacked, nullptr);
  EXPECT_EQ(plain->weights().layers[0].wq.layout, kernels::WeightLayout::kGguf);
  const auto packed = Model::load(path);
  const kernels::WeightLayout want =
      kernels::active().preferred_layout[static_cast<uint32_t>(type)];
  const ops::WeightView& wq = packed->weights().layers[0].wq;
  ASSERT_EQ(wq.type, type);
  EXPECT_EQ(wq.layout, want);
  if (want != kernels::WeightLayout::kGguf) {
    EXPECT_NE(packed->weights().repacked, nullptr);
    EXPECT_NE(wq.data, plain->weights().layers[0].wq.data);
  }
  std::vector<float> a(wq.n_cols), b(wq.n_cols);
  for (int64_t r : {int64_t{0}, wq.n_rows - 1}) {
    ops::dequantize_row(wq, r, a.data());
    ops::dequantize_row(plain->weights().layers[0].wq, r, b.data());
    EXPECT_EQ(a, b) << "row " << r;
  }
  for (int32_t chunk : {15, 1}) {
    EXPECT_EQ(logits_by_chunks(*packed, chunk, 2), logits_by_chunks(*plain, chunk, 2))
        << "chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, ForwardRepacked,
                         ::testing::Values(std::pair{"syn-llama-gqa-q4_0.gguf", GgmlType::Q4_0},
                                           std::pair{"syn-llama-gqa-q8_0.gguf", GgmlType::Q8_0}));

// Two models decoding in turn, as a speculative draft and target do: greedy tokens of each,
// with every step's logits appended to `out`; returns the allocations during the turns.
int64_t decode_in_turns(Context& a, Context& b, std::vector<float>& out) {
  Generator ga(a), gb(b);
  const float* la = ga.prefill(kPrompt.data(), static_cast<int32_t>(kPrompt.size()));
  const float* lb = gb.prefill(kPrompt.data(), static_cast<int32_t>(kPrompt.size()));
  const auto argmax = [](const float* l, int32_t n) {
    return static_cast<int32_t>(std::max_element(l, l + n) - l);
  };
  la = ga.decode(argmax(la, a.n_vocab()));  // first decode steps may warm up lazy state
  lb = gb.decode(argmax(lb, b.n_vocab()));
  std::vector<int32_t> tokens;
  tokens.reserve(64);
  const int64_t before = testlib::allocation_count();
  for (int step = 0; step < 12; ++step) {
    const int32_t ta = argmax(la, a.n_vocab()), tb = argmax(lb, b.n_vocab());
    tokens.push_back(ta);
    tokens.push_back(tb);
    la = ga.decode(ta);
    lb = gb.decode(tb);
  }
  const int64_t allocations = testlib::allocation_count() - before;
  out.insert(out.end(), la, la + a.n_vocab());
  out.insert(out.end(), lb, lb + b.n_vocab());
  for (int32_t t : tokens) out.push_back(static_cast<float>(t));
  return allocations;
}

TEST(SharedPool, ContextsInTurnOnOnePoolMatchOwnPools) {
  const auto llama = load_synthetic("llama");
  const auto qwen = load_synthetic("qwen2");
  ThreadPool pool(2);
  ContextOptions o;
  o.n_ctx = 64;
  o.pool = &pool;
  Context a(*llama, o);
  Context b(*qwen, a.options());  // a context made from another's options shares its pool
  EXPECT_EQ(&a.pool(), &pool);
  EXPECT_EQ(&b.pool(), &pool);
  EXPECT_EQ(a.options().n_threads, 2);
  std::vector<float> shared, separate;
  EXPECT_EQ(decode_in_turns(a, b, shared), 0) << "allocations while decoding in turns";

  ContextOptions own;
  own.n_ctx = 64;
  own.n_threads = 2;
  Context a2(*llama, own), b2(*qwen, own);
  EXPECT_NE(&a2.pool(), &b2.pool());
  EXPECT_EQ(a2.options().pool, &a2.pool());
  decode_in_turns(a2, b2, separate);
  EXPECT_EQ(shared, separate);

  ContextOptions bad = o;
  bad.n_threads = 3;  // not the pool's size
  EXPECT_THROW(Context(*llama, bad), Error);
}

// The pool's one-call-at-a-time rule, which sharing relies on, is enforced: a call from a
// second thread while another thread's call runs aborts instead of corrupting the job.
TEST(SharedPoolDeathTest, OverlappingCallsFromTwoThreadsAbort) {
  EXPECT_DEATH(
      {
        ThreadPool pool(2);
        std::atomic<bool> inside{false};
        std::thread other([&] {
          pool.parallel_for(2, 1, [&](int64_t, int64_t, int thread) {
            if (thread != 0) return;
            inside.store(true);
            for (;;) std::this_thread::yield();  // holds the pool until the process dies
          });
        });
        while (!inside.load()) std::this_thread::yield();
        pool.parallel_for(2, 1, [](int64_t, int64_t) {});
        other.join();
      },
      "busy_");
}

}  // namespace
}  // namespace quanta::models
