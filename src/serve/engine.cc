// Engine creation (context and KV pool sizing), request validation and submission, shutdown.
#include <algorithm>

#include "core/error.h"
#include "serve/engine_impl.h"
#include "serve/logprobs.h"

namespace quanta::serve {

namespace {

constexpr int32_t kMaxChoices = 128;

// Context options for the engine: one pass holds max_batch_tokens tokens and at most one
// logit row per running sequence; the KV pool is shared by all sequences.
models::ContextOptions context_options(const models::Model& model, const EngineOptions& o) {
  if (o.max_batch_tokens < 1) fail("max_batch_tokens must be >= 1, got %d", o.max_batch_tokens);
  if (o.max_running < 1) fail("max_running must be >= 1, got %d", o.max_running);
  if (o.max_queue < 0) fail("max_queue must be >= 0, got %d", o.max_queue);
  if (o.kv_blocks < 0) fail("kv_blocks must be >= 0, got %d", o.kv_blocks);
  if (o.lookup_ngram < 0 || o.lookup_ngram > kMaxSpecNgram) {
    fail("lookup_ngram must be in [0, %d], got %d", kMaxSpecNgram, o.lookup_ngram);
  }
  if (o.draft_max < 1 || o.draft_max > kMaxSpecDraft) {
    fail("draft_max must be in [1, %d], got %d", kMaxSpecDraft, o.draft_max);
  }
  if (o.draft_min < 1 || o.draft_min > o.draft_max) {
    fail("draft_min must be in [1, draft_max = %d], got %d", o.draft_max, o.draft_min);
  }
  if (o.draft_model != nullptr && o.lookup_ngram > 0) {
    fail("a draft model and lookup_ngram are alternative speculation defaults: give one");
  }
  if (o.n_ctx < 0) fail("n_ctx must be >= 0, got %d", o.n_ctx);
  models::ContextOptions c;
  c.n_ctx = o.n_ctx;
  c.n_batch = o.max_batch_tokens;
  c.n_outputs = o.max_running;
  c.n_seq = o.max_running;
  c.n_threads = o.n_threads;
  c.kv_block_size = o.kv_block_size;
  c.kv_type = o.kv_type;
  c.kv_transform = o.kv_transform;
  c = models::resolve_options(model.hparams(), c);
  c.n_batch = o.max_batch_tokens;  // the budget, not clamped by n_ctx * n_seq
  // Speculative chunks want logits at every position: up to 1 + kMaxSpecDraft per sequence.
  c.n_outputs = std::min(o.max_running * (1 + kMaxSpecDraft), c.n_batch);
  const int32_t per_seq = (c.n_ctx + c.kv_block_size - 1) / c.kv_block_size;
  if (o.kv_blocks > 0) {
    c.n_kv_blocks = o.kv_blocks;
  } else if (o.kv_memory_bytes > 0) {
    models::ContextOptions one = c;
    one.n_kv_blocks = 1;
    const uint64_t block_bytes = models::kv_layout_for(model.hparams(), one).total_bytes();
    c.n_kv_blocks =
        static_cast<int32_t>(std::min<uint64_t>(o.kv_memory_bytes / block_bytes, INT32_MAX));
  } else {
    c.n_kv_blocks = per_seq * o.max_running;
  }
  if (c.n_kv_blocks < per_seq) {
    fail(
        "KV pool of %d blocks of %d tokens cannot hold one full request of n_ctx = %d tokens "
        "(needs %d blocks)",
        c.n_kv_blocks, c.kv_block_size, c.n_ctx, per_seq);
  }
  return c;
}

}  // namespace

std::unique_ptr<Engine> Engine::create(const models::Model& model,
                                       const tokenizer::Tokenizer& tokenizer,
                                       const EngineOptions& options) {
  if (tokenizer.n_vocab() != model.hparams().n_vocab) {
    fail("tokenizer has %d tokens, the model %d", tokenizer.n_vocab(), model.hparams().n_vocab);
  }
  return std::make_unique<EngineImpl>(model, tokenizer, options, context_options(model, options));
}

ChoiceState::ChoiceState(LiveRequest& owner, int32_t index, int64_t sched_id, int32_t n_vocab,
                         const SamplingParams& params)
    : owner(owner),
      index(index),
      sched_id(sched_id),
      sampler(n_vocab, params),
      text(&owner.request.stop) {}

EngineImpl::EngineImpl(const models::Model& model, const tokenizer::Tokenizer& tokenizer,
                       const EngineOptions& options, const models::ContextOptions& ctx_options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      n_ctx_(ctx_options.n_ctx),
      n_vocab_(model.hparams().n_vocab),
      inbox_(std::make_shared<Inbox>()),
      draft_(model.hparams().n_vocab, kMaxSpecDraft),
      verifier_(model.hparams().n_vocab) {
  ctx_ = std::make_unique<models::Context>(model, ctx_options);
  n_blocks_ = ctx_->kv().pool().n_blocks();
  block_size_ = ctx_->kv().layout().block_size;
  SchedulerConfig sc;
  sc.max_batch_tokens = options.max_batch_tokens;
  sc.max_running = options.max_running;
  sc.max_model_len = n_ctx_;
  sc.watermark_blocks = n_blocks_ / 100;  // vLLM's 1% watermark
  sc.prefix_caching = options.prefix_caching;
  scheduler_ = std::make_unique<Scheduler>(ctx_->kv().pool(), block_size_, sc);
  if (options.draft_model != nullptr) {
    drafter_ = std::make_unique<DraftRunner>(*options.draft_model, n_vocab_, ctx_->options(),
                                             n_blocks_ + options.max_running, options.max_running);
    draft_jobs_.reserve(options.max_running);
  }
  const size_t nb = static_cast<size_t>(options.max_batch_tokens);
  tokens_.resize(nb);
  positions_.resize(nb);
  seq_.resize(nb);
  want_.resize(nb);
  tables_.resize(options.max_running);
  results_.reserve(options.max_running);
  spec_out_.reserve(kMaxSpecDraft + 1);
  lookup_.resize(kMaxSpecDraft);
  finished_.reserve(options.max_running);
  live_.reserve(options.max_queue + options.max_running);
  choices_.reserve(2 * options.max_running);
  blocks_free_ = n_blocks_;
  publish_gauges();
  thread_ = std::thread([this] { run(); });
}

EngineImpl::~EngineImpl() {
  shutdown(true);
}

int32_t EngineImpl::n_waiting() const {
  std::lock_guard<std::mutex> lock(inbox_->mu);
  return inbox_->queued;
}

void EngineImpl::validate(const GenerationRequest& r) const {
  const int64_t n_prompt = static_cast<int64_t>(r.prompt.size());
  if (n_prompt == 0) fail("prompt: must not be empty");
  for (int32_t t : r.prompt) {
    if (t < 0 || t >= n_vocab_) fail("prompt: token id %d outside [0, %d)", t, n_vocab_);
  }
  if (r.max_tokens < 1) fail("max_tokens: must be >= 1, got %d", r.max_tokens);
  if (n_prompt + r.max_tokens > n_ctx_) {
    fail("prompt (%lld tokens) + max_tokens (%d) exceeds the context length %d",
         static_cast<long long>(n_prompt), r.max_tokens, n_ctx_);
  }
  if (r.n < 1 || r.n > kMaxChoices) fail("n: must be in [1, %d], got %d", kMaxChoices, r.n);
  if (r.top_logprobs < -1 || r.top_logprobs > kMaxTopLogprobs) {
    fail("top_logprobs: must be in [0, %d], got %d", kMaxTopLogprobs, r.top_logprobs);
  }
  for (const std::string& s : r.stop) {
    if (s.empty()) fail("stop: strings must not be empty");
  }
  const SpecParams& sp = r.speculative;
  if (sp.ngram < -1 || sp.ngram > kMaxSpecNgram) {
    fail("speculative.ngram: must be in [0, %d], got %d", kMaxSpecNgram, sp.ngram);
  }
  if (sp.max_draft != -1 && (sp.max_draft < 1 || sp.max_draft > kMaxSpecDraft)) {
    fail("speculative.max_draft: must be in [1, %d], got %d", kMaxSpecDraft, sp.max_draft);
  }
  if (sp.min_draft != -1 && (sp.min_draft < 1 || sp.min_draft > kMaxSpecDraft)) {
    fail("speculative.min_draft: must be in [1, %d], got %d", kMaxSpecDraft, sp.min_draft);
  }
  const int32_t max_draft = sp.max_draft >= 0 ? sp.max_draft : options_.draft_max;
  if (sp.min_draft > max_draft) {
    fail("speculative.min_draft: must be <= max_draft = %d, got %d", max_draft, sp.min_draft);
  }
  if (sp.draft < -1 || sp.draft > 1) fail("speculative.draft: must be 0, 1 or -1");
  if (sp.draft == 1 && drafter_ == nullptr) {
    fail(
        "speculative.draft: the server has no draft model (start it with --draft-model or "
        "--draft-quant)");
  }
  if (sp.draft == 1 && sp.ngram > 0) {
    fail("speculative.draft: a draft model and ngram lookup are alternatives: give one");
  }
  quanta::validate(r.sampling);
}

std::shared_ptr<RequestStream> EngineImpl::submit(GenerationRequest request) {
  validate(request);
  const Clock::time_point now = Clock::now();
  std::shared_ptr<StreamImpl> stream;
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    if (!failure_.empty()) fail("engine stopped after an internal error: %s", failure_.c_str());
    if (inbox_->stopping) fail("the engine is shutting down");
    if (inbox_->queued >= options_.max_queue) {
      // Retry-After: the time to drain the queue at the recent service rate (api-ops).
      throw QueueFull{static_cast<double>(retry_after_seconds(
          inbox_->queued, metrics_.mean_service_seconds(), options_.max_running))};
    }
    const int64_t id = next_request_id_++;
    stream = std::make_shared<StreamImpl>(id, request.n, inbox_, now);
    inbox_->submissions.push_back(Submission{id, std::move(request), stream, now});
    ++inbox_->queued;
  }
  inbox_->cv.notify_all();
  return stream;
}

void EngineImpl::shutdown(bool cancel_running) {
  std::lock_guard<std::mutex> guard(shutdown_mu_);
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->stopping = true;
    inbox_->cancel_all = inbox_->cancel_all || cancel_running;
  }
  inbox_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace quanta::serve
