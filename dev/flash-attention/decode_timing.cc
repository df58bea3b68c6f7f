// Decode-step timing at a given context depth: fills `depth` positions of every layer's KV
// cache with random rows (no prefill needed), then times single-token forward passes.
// Builds against the current tree and against an older tree (-DQUANTA_NO_KV_TYPE, where the
// cache is F32 only) so that the two attention paths can be compared on the same model.
// Usage: decode_timing MODEL DEPTH STEPS [f32|f16] [THREADS]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/system.h"
#include "models/context.h"
#include "models/model.h"

using namespace quanta;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL DEPTH STEPS [f32|f16] [THREADS]\n", argv[0]);
    return 2;
  }
  const int32_t depth = std::atoi(argv[2]);
  const int32_t steps = std::atoi(argv[3]);
  const std::string kv_name = argc > 4 ? argv[4] : "f32";
  const auto model = models::Model::load(argv[1]);
  models::ContextOptions opts;
  opts.n_ctx = depth + steps + 1;
  opts.n_batch = 8;
  opts.n_threads = argc > 5 ? std::atoi(argv[5]) : 0;
#ifndef QUANTA_NO_KV_TYPE
  opts.kv_type = kv_name == "f16" ? GgmlType::F16 : GgmlType::F32;
#else
  if (kv_name != "f32") return std::fprintf(stderr, "this tree has F32 KV only\n"), 2;
#endif
  models::Context ctx(*model, opts);
  kv::KvCache& kv = ctx.kv();
  kv::BlockTable table = kv.new_table(opts.n_ctx);
  if (!table.append(kv.pool(), depth)) return std::fprintf(stderr, "KV too small\n"), 1;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t row = static_cast<int64_t>(kv.layout().n_kv_head) * kv.layout().head_dim;
  std::vector<float> k(row), v(row);
  for (int32_t layer = 0; layer < kv.layout().n_layer; ++layer) {
    for (int32_t pos = 0; pos < depth; ++pos) {
      for (float& x : k) x = dist(rng);
      for (float& x : v) x = dist(rng);
#ifndef QUANTA_NO_KV_TYPE
      kv.store(layer, table, pos, k.data(), v.data());
#else
      std::copy(k.begin(), k.end(), kv.k_row(layer, table, pos));
      std::copy(v.begin(), v.end(), kv.v_row(layer, table, pos));
#endif
    }
  }
  const kv::BlockTable* tables[1] = {&table};
  std::vector<double> ms;
  for (int32_t s = 0; s < steps; ++s) {
    if (!table.append(kv.pool(), 1)) return 1;
    const int32_t token = 3 + s % 200, pos = depth + s, seq = 0;
    models::Batch batch;
    batch.n_tokens = 1;
    batch.tokens = &token;
    batch.positions = &pos;
    batch.seq = &seq;
    batch.tables = tables;
    const double t0 = now_seconds();
    ctx.forward(batch);
    ms.push_back((now_seconds() - t0) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf(
      "depth %d, %s KV, %d threads: median %.2f ms/token (%.1f tok/s), min %.2f, max %.2f\n", depth,
      kv_name.c_str(), ctx.pool().n_threads(), median, 1e3 / median, ms.front(), ms.back());
  return 0;
}
