// The Engine implementation: public side (submit, shutdown, metrics) in engine.cc, the engine
// thread's loop and step in engine_loop.cc. Private to the serve layer.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/speculative_verify.h"
#include "models/context.h"
#include "serve/draft_runner.h"
#include "serve/engine.h"
#include "serve/metrics.h"
#include "serve/request_stream.h"
#include "serve/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace quanta::serve {

// NOTE: design.
// - Threads: HTTP threads call submit() (validates, pushes into the Inbox under its mutex,
//   notifies) and read their StreamImpl; cancel() pushes the request id into the Inbox. The
//   engine thread alone touches the Context, Scheduler, samplers and text streams. It blocks
//   on the Inbox condition variable whenever the scheduler has nothing unfinished.
// - A request with n choices is n scheduler requests (ids from next_sched_id_), choices
//   1..n-1 added with fork_of = choice 0, so they share the prompt's blocks.
// - One step: schedule(); KV block copies; one Batch of every chunk (logits only at the last
//   token of chunks with `sample`); forward; per sampled chunk: the choice's sampler, logprobs
//   of the raw logits, EOS / stop-string check; update(); drain_finished() -> final deltas.
// - Ordering for observers: gauges and metrics of a finished request are published before its
//   stream reports done(), so a client that saw the end sees the freed blocks.
// - Speculative decoding (n-gram lookup, per choice): after update(), a choice with ngram > 0
//   gets a draft from ngram_lookup over its tokens (Scheduler::set_draft). A chunk with drafts
//   wants logits at all its positions; the Verifier (q a point mass: greedy accepts while the
//   draft equals the argmax, sampling accepts d with probability p(d)) yields the accepted
//   drafts and one target token, which are emitted one at a time with the EOS and stop-string
//   checks, so generation ends exactly where the non-speculative run would.
// - Draft-model speculation (per choice, DraftRunner): after update(), every choice with a
//   DraftSeq asks its adaptive length for k, the runner catches the draft KV up and drafts
//   for all of them together (one draft pass per position), and the proposal (with the
//   draft's q when sampling) is verified like an n-gram one the next step. The draft KV rows
//   of a choice are freed when it finishes (cancellation included) or is preempted.
// - Preemption needs nothing here: tokens already sampled stay in the scheduler's request,
//   their K/V rows are recomputed, and the sampler is asked again only at the end of them.

struct LiveRequest;

// One choice of a request: one scheduler request with its own sampler and text stream.
struct ChoiceState {
  ChoiceState(LiveRequest& owner, int32_t index, int64_t sched_id, int32_t n_vocab,
              const SamplingParams& params);

  LiveRequest& owner;
  int32_t index;
  int64_t sched_id;
  Sampler sampler;
  TextStream text;
  int32_t n_generated = 0;
  bool finished = false;
  int32_t ngram = 0;             // n-gram lookup length; 0 = no speculation
  int32_t max_draft = 0;         // draft tokens per step at most
  std::unique_ptr<DraftSeq> dm;  // draft-model speculation state; null = not with the model
};

// A request inside the engine thread.
struct LiveRequest {
  int64_t id = -1;
  GenerationRequest request;
  std::shared_ptr<StreamImpl> stream;
  Clock::time_point submitted;
  std::optional<Clock::time_point> first_token;
  bool scheduled = false;  // counted out of Inbox::queued
  bool cancelled = false;
  std::vector<std::unique_ptr<ChoiceState>> choices;  // [n]
  int32_t n_finished = 0;
  int32_t completion_tokens = 0;
  int32_t cached_tokens = 0;
  FinishReason outcome = FinishReason::kNone;
  double queue_seconds = -1.0;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const models::Model& model, const tokenizer::Tokenizer& tokenizer,
             const EngineOptions& options, const models::ContextOptions& ctx_options);
  ~EngineImpl() override;

  int32_t n_ctx() const override { return n_ctx_; }
  std::shared_ptr<RequestStream> submit(GenerationRequest request) override;
  void shutdown(bool cancel_running) override;
  std::string metrics_text() const override { return metrics_.text(); }
  void record_error_response(int http_status) override { metrics_.record_error_response(http_status); }
  int32_t n_running() const override { return running_.load(std::memory_order_relaxed); }
  int32_t n_waiting() const override;
  int32_t kv_blocks_free() const override { return blocks_free_.load(std::memory_order_relaxed); }
  int32_t kv_blocks_total() const override { return n_blocks_; }

  // Diagnostics for tests: most KV blocks in use right after any schedule(), and how many
  // times the scheduler preempted a sequence.
  int32_t peak_blocks_used() const { return peak_used_.load(std::memory_order_relaxed); }
  int64_t n_preemptions() const { return preemptions_.load(std::memory_order_relaxed); }
  // Draft-model KV blocks in use (0 without a draft model); updated with the gauges.
  int32_t draft_blocks_used() const { return draft_used_.load(std::memory_order_relaxed); }

 private:
  void validate(const GenerationRequest& r) const;

  // Engine thread (engine_loop.cc).
  void run();
  bool wait_and_take_inbox();  // false: stop the loop
  void admit(Submission& s);
  void cancel_request(LiveRequest& r);
  void step();
  void build_batch(const SchedulerOutput& out);
  void sample_chunks(const SchedulerOutput& out, const float* logits);
  void sample_one(ChoiceState& c, const float* row, StepResult& result);
  void verify_chunk(ChoiceState& c, const ScheduledChunk& chunk, const float* rows,
                    StepResult& result);
  bool emit_token(ChoiceState& c, const float* row, int32_t token);  // true: stop here
  void propose_drafts();
  void resolve_speculation(ChoiceState& c, const SpecParams& sp, const SamplingParams& params);
  void release_draft(ChoiceState& c);
  void finish_choices();
  void finish_request(LiveRequest& r);  // metrics and queue count of a request's end
  void fail_all(const char* why);
  void publish_gauges();
  int32_t n_running_requests() const;  // live requests with a choice in the running set

  const models::Model& model_;
  const tokenizer::Tokenizer& tokenizer_;
  const EngineOptions options_;
  const int32_t n_ctx_;
  const int32_t n_vocab_;
  int32_t n_blocks_ = 0;
  int32_t block_size_ = 0;

  std::shared_ptr<Inbox> inbox_;
  int64_t next_request_id_ = 0;  // under inbox_->mu
  std::mutex shutdown_mu_;       // serializes shutdown()/join
  std::thread thread_;
  Metrics metrics_;
  std::atomic<int32_t> running_{0};
  std::atomic<int32_t> blocks_free_{0};
  std::atomic<int32_t> peak_used_{0};
  std::atomic<int64_t> preemptions_{0};
  int64_t spec_drafted_ = 0;   // engine thread: draft tokens verified
  int64_t spec_accepted_ = 0;  // of them accepted
  int64_t spec_passes_ = 0;    // engine thread: sampled chunks that verified drafts
  std::atomic<int32_t> draft_used_{0};
  double verify_seconds_ = 0.0;  // engine thread: the last target forward pass
  int32_t step_decode_tokens_ = 0;  // engine thread: decode tokens of the step being run
  std::string failure_;          // set by the engine thread when a step threw (under inbox_->mu)

  // Engine-thread state.
  std::unique_ptr<models::Context> ctx_;
  std::unique_ptr<Scheduler> scheduler_;
  int64_t next_sched_id_ = 0;
  std::unordered_map<int64_t, std::unique_ptr<LiveRequest>> live_;  // by request id
  std::unordered_map<int64_t, ChoiceState*> choices_;               // by scheduler id
  std::vector<Submission> taken_;                                   // swapped with the inbox's
  std::vector<int64_t> taken_cancels_;
  bool stopping_ = false;
  bool cancel_all_ = false;
  // Batch arrays [max_batch_tokens] and per-chunk tables [max_running], reused every step.
  std::vector<int32_t> tokens_, positions_, seq_;
  std::vector<uint8_t> want_;
  std::vector<const kv::BlockTable*> tables_;
  std::vector<StepResult> results_;
  std::vector<FinishedRequest> finished_;
  std::string piece_;  // token_to_piece scratch
  Draft draft_;        // verify_chunk scratch (point-mass drafts)
  Verifier verifier_;
  std::vector<int32_t> spec_out_, lookup_;
  std::unique_ptr<DraftRunner> drafter_;  // the draft model's context; null without one
  std::vector<DraftRunner::Job> draft_jobs_;
};

}  // namespace quanta::serve
