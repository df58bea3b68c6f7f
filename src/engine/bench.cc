// Benchmark runner: one Context per test, sized for it; the untimed context fill (prefill or
// random K/V) and a warm-up pass come first, then each repetition rewinds the sequences to the
// filled context (block-table truncation) and times only the prompt pass or the decode steps.
#include "engine/bench.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/system.h"
#include "models/context.h"

namespace quanta::bench {
namespace {

constexpr int32_t kMaxFillBatch = 512;  // forward-pass size of untimed prefills
constexpr int32_t kWarmupPrompt = 16;   // tokens of the prompt test's warm-up pass

// splitmix64: token ids and random K/V values, the same on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  int32_t token(int32_t n_vocab) { return static_cast<int32_t>(next() % n_vocab); }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1.0p-23f - 1.0f; }  // [-1, 1)

 private:
  uint64_t state_;
};

// The sequences of one test: their block tables and one batch's arrays, all sized once.
class Sequences {
 public:
  Sequences(models::Context& ctx, int32_t n_seq) : ctx_(ctx) {
    const int32_t n_batch = ctx.options().n_batch;
    tables_.reserve(n_seq);
    for (int32_t s = 0; s < n_seq; ++s) tables_.push_back(ctx.kv().new_table(ctx.n_ctx()));
    for (const kv::BlockTable& t : tables_) table_ptrs_.push_back(&t);
    tokens_.resize(n_batch);
    positions_.resize(n_batch);
    seq_.resize(n_batch);
    want_.resize(n_batch);
  }
  ~Sequences() {
    for (kv::BlockTable& t : tables_) t.clear(ctx_.kv().pool());
  }
  Sequences(const Sequences&) = delete;
  Sequences& operator=(const Sequences&) = delete;

  int32_t n_seq() const { return static_cast<int32_t>(tables_.size()); }

  // Appends `n` random tokens to sequence s in passes of at most n_batch tokens; calls
  // after_pass(tokens done) after each.
  template <typename F>
  void prefill(int32_t s, int32_t n, Rng& rng, const F& after_pass) {
    const int32_t n_batch = ctx_.options().n_batch;
    for (int32_t done = 0; done < n;) {
      const int32_t chunk = std::min(n_batch, n - done);
      const int32_t start = grow(s, chunk);
      for (int32_t i = 0; i < chunk; ++i) {
        tokens_[i] = rng.token(ctx_.n_vocab());
        positions_[i] = start + i;
        seq_[i] = s;
        want_[i] = i == chunk - 1 ? 1 : 0;
      }
      run(chunk);
      done += chunk;
      after_pass(done);
    }
  }

  // One forward pass holding the next token of every sequence (logits for all of them).
  void step(Rng& rng) {
    for (int32_t s = 0; s < n_seq(); ++s) {
      tokens_[s] = rng.token(ctx_.n_vocab());
      positions_[s] = grow(s, 1);
      seq_[s] = s;
      want_[s] = 1;
    }
    run(n_seq());
  }

  // Appends n positions of random K and V rows (values in [-1, 1)) to every sequence.
  void fill_random(int32_t n, Rng& rng) {
    kv::KvCache& kv = ctx_.kv();
    const int64_t row = kv.layout().row_elems();
    std::vector<float> k(row), v(row);
    for (int32_t s = 0; s < n_seq(); ++s) {
      const int32_t start = grow(s, n);
      for (int32_t layer = 0; layer < kv.layout().n_layer; ++layer) {
        for (int32_t pos = start; pos < start + n; ++pos) {
          for (float& x : k) x = rng.uniform();
          for (float& x : v) x = rng.uniform();
          kv.store(layer, tables_[s], pos, k.data(), v.data());
        }
      }
    }
  }

  // Every sequence back to its first n tokens.
  void truncate(int32_t n) {
    for (kv::BlockTable& t : tables_) t.truncate(ctx_.kv().pool(), n);
  }

 private:
  // Makes room for n more tokens in sequence s; returns the first new position.
  int32_t grow(int32_t s, int32_t n) {
    const int32_t start = tables_[s].n_tokens();
    if (!tables_[s].append(ctx_.kv().pool(), n)) {
      fail("bench: sequence %d cannot grow from %d to %d tokens (n_ctx %d)", s, start, start + n,
           ctx_.n_ctx());
    }
    return start;
  }

  void run(int32_t n_tokens) {
    models::Batch batch;
    batch.n_tokens = n_tokens;
    batch.tokens = tokens_.data();
    batch.positions = positions_.data();
    batch.seq = seq_.data();
    batch.want_logits = want_.data();
    batch.tables = table_ptrs_.data();
    ctx_.forward(batch);
  }

  models::Context& ctx_;
  std::vector<kv::BlockTable> tables_;             // [n_seq]
  std::vector<const kv::BlockTable*> table_ptrs_;  // [n_seq] into tables_
  std::vector<int32_t> tokens_, positions_, seq_;  // [n_batch]
  std::vector<uint8_t> want_;                      // [n_batch]
};

models::ContextOptions context_options(const BenchTest& t, const BenchOptions& b) {
  models::ContextOptions o;
  o.n_threads = b.n_threads;
  o.kv_type = b.kv_type;
  o.kv_transform = b.kv_transform;
  if (t.kind == TestKind::kPrompt) {
    o.n_ctx = t.n_prompt;
    o.n_batch = t.n_prompt;
    o.n_outputs = 1;
    return o;
  }
  o.n_ctx = t.context_before() + t.n_gen;
  o.n_seq = t.n_seq;
  o.n_batch = std::max(t.n_seq, std::min(t.context_before(), kMaxFillBatch));
  o.n_outputs = t.n_seq;
  return o;
}

void check_test(const BenchTest& t, const BenchOptions& o) {
  if (o.repetitions < 1) fail("bench: repetitions must be >= 1 (got %d)", o.repetitions);
  if (o.n_threads < 0) fail("bench: threads must be >= 0 (got %d)", o.n_threads);
  if (t.kind == TestKind::kPrompt && t.n_prompt < 1)
    fail("bench: %s: no prompt tokens", t.name().c_str());
  if (t.is_decode() && (t.n_gen < 1 || t.n_seq < 1 || t.n_prompt < 0)) {
    fail("bench: %s: needs n_gen >= 1, n_seq >= 1, depth >= 0", t.name().c_str());
  }
}

class Runner {
 public:
  Runner(const models::Model& model, const BenchTest& test, const BenchOptions& o)
      : model_(model), test_(test), o_(o), rng_(o.seed) {}

  BenchResult run() {
    models::Context ctx(model_, context_options(test_, o_));
    Sequences seqs(ctx, test_.n_seq);
    BenchResult r;
    r.test = test_;
    r.n_threads = ctx.options().n_threads;
    if (test_.kind == TestKind::kPrompt) {
      time_prompt(seqs, r);
    } else {
      time_decode(seqs, r);
    }
    summarize(r);
    if (test_.is_decode()) {
      r.weight_bytes_per_token =
          static_cast<double>(decode_weight_bytes(model_, test_.n_seq)) / test_.n_seq;
      if (o_.bandwidth > 0)
        r.roofline_pct = 100.0 * r.weight_bytes_per_token * r.median / o_.bandwidth;
    }
    return r;
  }

 private:
  void report(const char* phase, int32_t rep, int32_t done, int32_t total) {
    if (!o_.on_progress) return;
    Progress p;
    p.test = &test_;
    p.phase = phase;
    p.repetition = rep;
    p.done = done;
    p.total = total;
    o_.on_progress(p);
  }

  void time_prompt(Sequences& seqs, BenchResult& r) {
    const int32_t n = test_.n_prompt;
    if (o_.warmup) {
      const int32_t w = std::min(n, kWarmupPrompt);
      seqs.prefill(0, w, rng_, [&](int32_t done) { report("warmup", 0, done, w); });
      seqs.truncate(0);
    }
    for (int32_t rep = 0; rep < o_.repetitions; ++rep) {
      report("run", rep, 0, n);
      const double t0 = now_seconds();
      seqs.prefill(0, n, rng_, [](int32_t) {});
      const double seconds = now_seconds() - t0;
      report("run", rep, n, n);
      r.samples.push_back(n / seconds);
      seqs.truncate(0);
    }
  }

  void fill_context(Sequences& seqs) {
    const int32_t n = test_.context_before();
    const int32_t total = n * seqs.n_seq();
    if (o_.kv_fill == KvFill::kRandom) {
      seqs.fill_random(n, rng_);
      report("fill", 0, total, total);
      return;
    }
    for (int32_t s = 0; s < seqs.n_seq(); ++s) {
      seqs.prefill(s, n, rng_, [&](int32_t done) { report("fill", 0, s * n + done, total); });
    }
  }

  void time_decode(Sequences& seqs, BenchResult& r) {
    fill_context(seqs);
    const int32_t before = test_.context_before();
    if (o_.warmup) {
      seqs.step(rng_);
      report("warmup", 0, 1, 1);
      seqs.truncate(before);
    }
    const int32_t n = test_.n_gen;
    for (int32_t rep = 0; rep < o_.repetitions; ++rep) {
      report("run", rep, 0, n);
      const double t0 = now_seconds();
      for (int32_t i = 0; i < n; ++i) {
        seqs.step(rng_);
        report("run", rep, i + 1, n);
      }
      const double seconds = now_seconds() - t0;
      r.samples.push_back(static_cast<double>(n) * test_.n_seq / seconds);
      seqs.truncate(before);
    }
  }

  const models::Model& model_;
  const BenchTest& test_;
  const BenchOptions& o_;
  Rng rng_;
};

int32_t parse_count(const std::string& text, const std::string& whole) {
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    fail("bad test name '%s' (expected ppN, tgN, tgN@dD or batchB)", whole.c_str());
  }
  return static_cast<int32_t>(std::strtol(text.c_str(), nullptr, 10));
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

std::string BenchTest::name() const {
  switch (kind) {
    case TestKind::kPrompt:
      return "pp" + std::to_string(n_prompt);
    case TestKind::kDecode:
      return "tg" + std::to_string(n_gen) + (n_prompt > 0 ? "@d" + std::to_string(n_prompt) : "");
    case TestKind::kBatched:
      return "batch" + std::to_string(n_seq);
  }
  return "?";
}

BenchTest prompt_test(int32_t n_prompt) {
  BenchTest t;
  t.kind = TestKind::kPrompt;
  t.n_prompt = n_prompt;
  return t;
}

BenchTest decode_test(int32_t n_gen, int32_t depth) {
  BenchTest t;
  t.kind = TestKind::kDecode;
  t.n_prompt = depth;
  t.n_gen = n_gen;
  return t;
}

BenchTest batched_test(int32_t n_seq, int32_t n_prompt, int32_t n_gen) {
  BenchTest t;
  t.kind = TestKind::kBatched;
  t.n_prompt = n_prompt;
  t.n_gen = n_gen;
  t.n_seq = n_seq;
  return t;
}

BenchTest parse_test(const std::string& name, int32_t batch_prompt, int32_t batch_gen) {
  BenchTest t;
  if (starts_with(name, "pp")) {
    t = prompt_test(parse_count(name.substr(2), name));
  } else if (starts_with(name, "tg")) {
    const size_t at = name.find("@d");
    const int32_t n = parse_count(name.substr(2, at == std::string::npos ? at : at - 2), name);
    t = decode_test(n, at == std::string::npos ? 0 : parse_count(name.substr(at + 2), name));
  } else if (starts_with(name, "batch")) {
    t = batched_test(parse_count(name.substr(5), name), batch_prompt, batch_gen);
  } else {
    fail("bad test name '%s' (expected ppN, tgN, tgN@dD or batchB)", name.c_str());
  }
  if ((t.kind == TestKind::kPrompt && t.n_prompt < 1) ||
      (t.is_decode() && (t.n_gen < 1 || t.n_seq < 1))) {
    fail("bad test name '%s': counts must be positive", name.c_str());
  }
  return t;
}

uint64_t decode_weight_bytes(const models::Model& model, int32_t n_seq) {
  const ops::WeightView& embd = model.weights().token_embd;
  const uint64_t embd_bytes = static_cast<uint64_t>(embd.row_bytes) * embd.n_rows;
  if (model.weights().tied_output) return model.weight_bytes();
  const uint64_t rows = std::min<uint64_t>(n_seq, embd.n_rows);
  return model.weight_bytes() - embd_bytes + rows * embd.row_bytes;
}

void summarize(BenchResult& r) {
  const size_t n = r.samples.size();
  if (n == 0) {
    r.median = r.mean = r.sd = 0.0;
    return;
  }
  std::vector<double> s = r.samples;
  std::sort(s.begin(), s.end());
  r.median = n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  double sum = 0.0;
  for (double x : s) sum += x;
  r.mean = sum / n;
  double sq = 0.0;
  for (double x : s) sq += (x - r.mean) * (x - r.mean);
  r.sd = n > 1 ? std::sqrt(sq / (n - 1)) : 0.0;
}

BenchResult run_test(const models::Model& model, const BenchTest& test, const BenchOptions& o) {
  check_test(test, o);
  Runner runner(model, test, o);
  return runner.run();
}

std::vector<BenchResult> run_tests(const models::Model& model, const std::vector<BenchTest>& tests,
                                   const BenchOptions& o) {
  std::vector<BenchResult> results;
  for (const BenchTest& t : tests) results.push_back(run_test(model, t, o));
  return results;
}

}  // namespace quanta::bench
