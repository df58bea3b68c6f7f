// Attention alone with TinyLlama's shapes (22 layers, 32 query heads, 4 KV heads, head_dim
// 64): the former model path (ops::attention_head per (token, query head), full score row)
// against ops::flash_attention, for one decode token at depth D through all 22 layers (the
// KV cache, 184 MB in F32 at D = 4096, streams from DRAM) and for a 512-token prefill of one
// layer.
// Usage: attention_micro [DEPTH] [THREADS] [cpu]   (cpu: process CPU time, not wall time)
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/system.h"
#include "core/thread_pool.h"
#include "kv/kv_cache.h"
#include "ops/attention.h"
#include "ops/flash_attention.h"

using namespace quanta;

namespace {

constexpr int32_t kLayers = 22;

struct Setup {
  ops::AttentionShape shape;
  std::vector<float> q, out;
  std::vector<ops::PagedKvView> views;
  std::vector<int32_t> positions;
};

// CPU time of the calling process (all threads): on a shared, loaded machine it is steadier
// than wall time; with one thread it is the work itself.
double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool g_cpu_time = false;

template <typename F>
double median_ms(int reps, const F& f) {
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const double t0 = g_cpu_time ? process_cpu_seconds() : now_seconds();
    f();
    ms.push_back(((g_cpu_time ? process_cpu_seconds() : now_seconds()) - t0) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void run_reference(Setup& s, std::vector<float>& scores, int32_t max_ctx, ThreadPool& pool) {
  const int32_t n_head = s.shape.n_head, d = s.shape.head_dim;
  pool.parallel_for(
      static_cast<int64_t>(s.positions.size()) * n_head, 1, [&](int64_t b, int64_t e, int thread) {
        for (int64_t i = b; i < e; ++i) {
          const int64_t t = i / n_head;
          const int32_t h = static_cast<int32_t>(i % n_head);
          const int64_t off = t * n_head * d + h * d;
          ops::attention_head(s.q.data() + off, s.views[t], s.positions[t] + 1, s.shape, h,
                              scores.data() + thread * max_ctx, s.out.data() + off);
        }
      });
}

void run_flash(Setup& s, std::vector<float>& scratch, ThreadPool& pool) {
  ops::AttentionBatch b;
  b.n_tokens = static_cast<int32_t>(s.positions.size());
  b.q = s.q.data();
  b.out = s.out.data();
  b.kv = s.views.data();
  b.positions = s.positions.data();
  ops::flash_attention(b, s.shape, scratch.data(), pool);
}

}  // namespace

int main(int argc, char** argv) {
  const int32_t depth = argc > 1 ? std::atoi(argv[1]) : 4096;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  g_cpu_time = argc > 3 && std::string(argv[3]) == "cpu";
  ThreadPool pool(threads);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16}) {
    kv::KvLayout layout;
    layout.n_layer = kLayers;
    layout.n_kv_head = 4;
    layout.head_dim = 64;
    layout.block_size = 16;
    layout.n_blocks = (depth + 16) / 16 + 1;
    layout.type = type;
    kv::KvCache cache(layout);
    kv::BlockTable table = cache.new_table(depth + 1);
    table.append(cache.pool(), depth + 1);
    std::vector<float> k(256), v(256);
    for (int32_t p = 0; p <= depth; ++p) {
      for (float& x : k) x = dist(rng);
      for (float& x : v) x = dist(rng);
      for (int32_t l = 0; l < kLayers; ++l) cache.store(l, table, p, k.data(), v.data());
    }
    for (int32_t n_tokens : {1, std::min(depth, 512)}) {
      Setup s;
      s.shape.n_head = 32;
      s.shape.n_kv_head = 4;
      s.shape.head_dim = 64;
      s.shape.scale = 0.125f;
      s.q.resize(static_cast<size_t>(n_tokens) * 32 * 64);
      for (float& x : s.q) x = dist(rng);
      s.out.resize(s.q.size());
      for (int32_t t = 0; t < n_tokens; ++t) {
        s.views.push_back(cache.view(0, table));
        s.positions.push_back(n_tokens == 1 ? depth : t);  // decode at depth, or a prefill
      }
      // Decode: every layer in turn (the views move to the next layer's pools).
      const int32_t layers = n_tokens == 1 ? kLayers : 1;
      const auto over_layers = [&](const auto& run) {
        for (int32_t l = 0; l < layers; ++l) {
          for (auto& v : s.views) v = cache.view(l, table);
          run();
        }
      };
      std::vector<float> scores(static_cast<size_t>(threads) * (depth + 1));
      std::vector<float> scratch(threads * ops::flash_scratch_floats(s.shape));
      const int reps = n_tokens == 1 ? 15 : 5;
      const double ref =
          median_ms(reps, [&] { over_layers([&] { run_reference(s, scores, depth + 1, pool); }); });
      const std::vector<float> want = s.out;
      const double flash =
          median_ms(reps, [&] { over_layers([&] { run_flash(s, scratch, pool); }); });
      double err = 0.0;
      for (size_t i = 0; i < want.size(); ++i)
        err = std::max(err, double(std::fabs(want[i] - s.out[i])));
      std::printf(
          "%s KV, %s (%d tokens), %d threads: reference %.3f ms, flash %.3f ms (%.2fx), "
          "max |diff| %.2g\n",
          type_name(type), n_tokens == 1 ? "decode, 22 layers" : "prefill, 1 layer", n_tokens,
          threads, ref, flash, ref / flash, err);
    }
  }
  return 0;
}
