// Speculative-decoding benchmark: plain and speculative runs of one prompt, timed and compared.
#include "engine/bench_spec.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "core/system.h"
#include "engine/generator.h"
#include "engine/ngram.h"
#include "engine/speculative_draft.h"
#include "models/context.h"

namespace quanta::bench {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

models::ContextOptions context_options(const SpecBenchOptions& o) {
  models::ContextOptions c;
  c.n_ctx = static_cast<int32_t>(o.prompt.size()) + o.n_gen + 1;
  c.n_batch = std::max<int32_t>(o.spec.draft_max + 1, 512);
  c.n_outputs = o.spec.draft_max + 1;
  c.n_threads = o.n_threads;
  c.kv_type = o.kv_type;
  c.kv_transform = o.kv_transform;
  return c;
}

// Plain decode: tokens/s after the prompt, and the tokens.
double plain_run(models::Context& ctx, const SpecBenchOptions& o, std::vector<int32_t>& tokens) {
  Generator gen(ctx);
  Sampler sampler(ctx.n_vocab(), o.sampling);
  tokens.clear();
  const double t0 = now_seconds();
  const GenerateStats st = gen.generate(o.prompt, o.n_gen, sampler,
                                        [&](int32_t t) { return tokens.push_back(t), true; });
  return st.n_generated / (now_seconds() - t0 - st.prompt_seconds);
}

}  // namespace

SpecBenchResult run_spec_bench(const models::Model& target, const models::Model* draft,
                               const SpecBenchOptions& o) {
  if (o.prompt.empty()) fail("bench --spec: empty prompt");
  if (o.n_gen < 2) fail("bench --spec: needs n_gen >= 2");
  if (o.repetitions < 1) fail("bench --spec: repetitions must be >= 1");
  if (draft == nullptr && o.lookup_ngram < 1) fail("bench --spec: no draft model or lookup");
  const models::ContextOptions copts = context_options(o);
  models::Context ctx(target, copts);
  std::unique_ptr<models::Context> dctx;
  std::unique_ptr<Drafter> drafter;
  SpecBenchResult r;
  r.n_prompt = static_cast<int32_t>(o.prompt.size());
  r.n_gen = o.n_gen;
  if (o.lookup_ngram > 0) {
    drafter = std::make_unique<NgramDrafter>(o.lookup_ngram);
    r.drafter = strformat("lookup %d-gram", o.lookup_ngram);
  } else {
    models::ContextOptions d = copts;
    d.n_outputs = 1;
    // The draft and the target run in turn on this thread: one pool, no idle spinners.
    d.pool = &ctx.pool();
    dctx = std::make_unique<models::Context>(*draft, d);
    drafter = std::make_unique<ModelDrafter>(*dctx, ctx.n_vocab(), o.sampling);
    r.drafter = "draft model";
  }
  std::vector<int32_t> plain_tokens, spec_tokens, scratch;
  std::vector<double> plain, spec, draft_speed;
  if (o.on_progress) o.on_progress("warmup", 0);
  plain_run(ctx, o, plain_tokens);  // warm-up: maps the weights in
  for (int32_t rep = 0; rep < o.repetitions; ++rep) {
    if (o.on_progress) o.on_progress("plain", rep);
    plain.push_back(plain_run(ctx, o, plain_tokens));
    drafter->commit({});  // frees the draft's KV: no reuse between repetitions
    if (dctx) {
      if (o.on_progress) o.on_progress("draft", rep);
      draft_speed.push_back(plain_run(*dctx, o, scratch));
    }
    if (o.on_progress) o.on_progress("speculative", rep);
    SpeculativeGenerator gen(ctx, *drafter, o.spec);
    Sampler sampler(ctx.n_vocab(), o.sampling);
    spec_tokens.clear();
    const double t0 = now_seconds();
    r.last = gen.generate(o.prompt, o.n_gen, sampler,
                          [&](int32_t t) { return spec_tokens.push_back(t), true; });
    spec.push_back(r.last.n_generated / (now_seconds() - t0 - r.last.prompt_seconds));
  }
  r.plain_tps = median(plain);
  r.spec_tps = median(spec);
  r.identical = spec_tokens == plain_tokens;
  const SpecStats& st = r.last;
  r.acceptance = st.acceptance();
  r.a = st.n_tested > 0 ? double(st.n_accepted) / st.n_tested : 0.0;
  r.tokens_per_pass = st.tokens_per_pass();
  r.mean_k = st.n_passes > 0 ? double(st.n_drafted) / st.n_passes : 0.0;
  if (dctx) {
    r.draft_tps = median(draft_speed);
    r.c = r.plain_tps / r.draft_tps;
  } else if (st.n_drafted > 0) {  // lookup: its measured time per proposed token
    r.c = (st.draft_seconds / st.n_drafted) * r.plain_tps;
  }
  const int32_t k = static_cast<int32_t>(std::lround(r.mean_k));
  r.predicted = predicted_speedup(r.a, k, r.c);
  if (st.n_passes > 0) {
    r.v = st.verify_seconds / st.n_passes * r.plain_tps;
    r.predicted_v = r.predicted * (k * r.c + 1.0) / (k * r.c + r.v);
  }
  return r;
}

std::string spec_markdown(const std::string& model, const SpecBenchResult& r) {
  std::string s =
      "| model | drafter | prompt | gen | accept | a | k | tok/pass | c | v | plain t/s "
      "| spec t/s | speedup | predicted | predicted (v) | same output |\n"
      "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
  s += strformat(
      "| %s | %s | %d | %d | %.1f%% | %.3f | %.2f | %.2f | %.3f | %.2f | %.2f | %.2f "
      "| %.2fx | %.2fx | %.2fx | %s |\n",
      model.c_str(), r.drafter.c_str(), r.n_prompt, r.n_gen, 100.0 * r.acceptance, r.a, r.mean_k,
      r.tokens_per_pass, r.c, r.v, r.plain_tps, r.spec_tps, r.spec_tps / r.plain_tps, r.predicted,
      r.predicted_v, r.identical ? "yes" : "NO");
  s += "\naccept: accepted / drafted tokens; a: accepted / tested tokens (the papers' alpha); "
       "k: drafted tokens per target pass; c: draft / target cost of one decode step; "
       "v: cost of a verification pass (k + 1 tokens) in decode steps; predicted: "
       "(1 - a^(k+1)) / ((1 - a)(k c + 1)), which assumes v = 1 (memory-bound decode); "
       "predicted (v): the same with k c + v in the denominator.\n";
  return s;
}

}  // namespace quanta::bench
