// The serving engine: one thread owns the model, its Context (KV cache) and the continuous-
// batching Scheduler; HTTP handler threads talk to it only through submit() and the
// RequestStream queues it returns, so slow clients never stall generation.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/request.h"
#include "engine/sampler.h"
#include "kv/kv_transform.h"
#include "quant/types.h"

namespace quanta::models {
class Model;
}
namespace quanta::tokenizer {
class Tokenizer;
}

namespace quanta::serve {

struct EngineOptions {
  int32_t n_ctx = 0;               // max prompt + generated tokens per request; 0 = model's
  int32_t max_batch_tokens = 512;  // tokens per forward pass, all requests together
  int32_t max_running = 16;        // requests computing at once
  int32_t max_queue = 64;          // waiting requests before submit() throws QueueFull
  int32_t kv_blocks = 0;           // KV blocks in the pool; 0 = from kv_memory_bytes / defaults
  uint64_t kv_memory_bytes = 0;    // KV pool size when kv_blocks == 0; 0 = room for
                                   // max_running * n_ctx tokens. Must hold one n_ctx request.
  int32_t kv_block_size = 16;
  GgmlType kv_type = GgmlType::F32;  // KV cache rows: F32, F16 or a quantized type (Q8_0...)
  kv::KeyTransformMode kv_transform = kv::kDefaultKeyTransform;  // quantized kv_type only
  int32_t n_threads = 0;             // 0 = all hardware threads
  bool prefix_caching = true;
  // Speculative decoding by n-gram prompt lookup for requests that do not say (SpecParams
  // -1 fields): the n-gram length (0 = off) and the most draft tokens per step.
  int32_t lookup_ngram = 0;
  int32_t draft_max = 8;
  // Speculative decoding with a draft model (same vocabulary size; it outlives the engine),
  // the default for requests that do not say; exclusive with lookup_ngram. Null = none. Its
  // KV pool has as many blocks as the target's plus one per running request.
  const models::Model* draft_model = nullptr;
  int32_t draft_min = 1;  // least draft tokens per step of the adaptive draft length
};

// Most draft tokens one request may verify per step, and the longest lookup n-gram.
inline constexpr int32_t kMaxSpecDraft = 16;
inline constexpr int32_t kMaxSpecNgram = 16;

// Per-request speculative decoding. With n-gram prompt lookup, each step the last `ngram`
// tokens are looked up earlier in the prompt and output and up to max_draft following tokens
// are proposed; with the server's draft model (`draft`), the draft model proposes them (its
// length adapting in [min_draft, max_draft] to the measured acceptance). They are verified in
// the same forward pass as the other requests, and the accepted ones plus one target token
// are kept. Greedy outputs are unchanged; sampled outputs keep the target's distribution.
// Which method: draft = 1 the draft model, draft = 0 or ngram >= 0 not the draft model, all
// -1 the server's default (its draft model if it has one, else EngineOptions::lookup_ngram).
struct SpecParams {
  int32_t ngram = -1;      // 0 = off, 1..kMaxSpecNgram; -1 = EngineOptions::lookup_ngram
  int32_t max_draft = -1;  // 1..kMaxSpecDraft; -1 = EngineOptions::draft_max
  int32_t draft = -1;      // 1 = the draft model (with ngram <= 0), 0 = not, -1 = default
  int32_t min_draft = -1;  // 1..max_draft; -1 = min(EngineOptions::draft_min, max_draft)
};

// What the client asked for, already validated and tokenized by the API layer.
struct GenerationRequest {
  std::vector<int32_t> prompt;  // non-empty, prompt.size() + max_tokens <= n_ctx
  int32_t max_tokens = 16;
  int32_t n = 1;                  // choices (1..128); siblings share the prompt's KV blocks
  SamplingParams sampling;        // seed given: choice i uses seed + i
  std::vector<std::string> stop;  // stop strings: generation ends before the first match;
                                  // the matched text is not returned
  bool ignore_eos = false;
  int32_t top_logprobs = -1;  // -1 = no logprobs; 0..20 = chosen token + that many top
  SpecParams speculative;
};

struct TopLogprob {
  int32_t token = -1;
  std::string text;  // token_to_piece (may be a partial UTF-8 sequence)
  float logprob = 0.0f;
};

// One generated token's log-probability (under the model's softmax of the raw logits, as
// OpenAI reports it) and the top alternatives.
struct TokenLogprob {
  int32_t token = -1;
  std::string text;
  float logprob = 0.0f;
  std::vector<TopLogprob> top;  // [top_logprobs], most likely first
};

// An increment of one choice, pushed for every generated token (deltas a reader has not taken
// yet merge). Text is released only once it is valid UTF-8 and cannot be the start of a stop
// string, so a delta's text may be empty; the final event of a choice has finish != kNone.
struct ChoiceDelta {
  int32_t index = 0;                          // choice 0..n-1
  std::string text;                           // new text, possibly empty
  std::vector<TokenLogprob> logprobs;         // tokens generated since the last delta (when asked)
  FinishReason finish = FinishReason::kNone;  // kStop (EOS or stop string), kLength, kCancelled
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;  // all choices together
  int32_t cached_tokens = 0;      // prompt tokens served from the prefix cache
};

// The per-request channel from the engine thread to one HTTP handler. Thread-safe.
class RequestStream {
 public:
  virtual ~RequestStream() = default;
  // Waits up to `timeout` for deltas, moves them into `out` (appending) and returns true;
  // returns false once every choice has finished and all deltas were taken.
  // Deltas of a choice that were not taken yet are merged into one, so a slow reader gets
  // fewer, larger deltas (ChoiceDelta::finish is only ever set on a choice's last one).
  virtual bool next(std::vector<ChoiceDelta>& out, std::chrono::milliseconds timeout) = 0;
  // True once every choice has finished (deltas may remain to be taken).
  virtual bool done() const = 0;
  virtual Usage usage() const = 0;  // final once done()
  // Client gone: the engine cancels every choice and frees their blocks at its next step.
  virtual void cancel() = 0;
  virtual double queue_seconds() const = 0;  // time from submit to first scheduling
};

// Thrown by submit() when max_queue requests are waiting (HTTP 429).
struct QueueFull {
  double retry_after_seconds = 1.0;
};

class Engine {
 public:
  // Loads nothing: `model` and `tokenizer` outlive the engine. Starts the engine thread.
  // Throws quanta::Error for impossible options (KV pool smaller than one full request...).
  static std::unique_ptr<Engine> create(const models::Model& model,
                                        const tokenizer::Tokenizer& tokenizer,
                                        const EngineOptions& options);
  virtual ~Engine() = default;  // stops the thread (cancelling what runs)

  virtual int32_t n_ctx() const = 0;
  // Queues the request. Throws QueueFull, or quanta::Error for a request the engine cannot
  // ever run (validated already by the API layer; a second line of defence), or once
  // shutdown() began. Rejections are not counted in the metrics: the caller reports them
  // with record_error_response().
  virtual std::shared_ptr<RequestStream> submit(GenerationRequest request) = 0;
  // Stops accepting; with cancel_running, cancels everything in flight, else lets it finish.
  // Blocks until the engine thread is idle and stopped.
  virtual void shutdown(bool cancel_running) = 0;
  // Prometheus text exposition (format 0.0.4) of every metric. Thread-safe.
  virtual std::string metrics_text() const = 0;
  // Counts an error response (4xx: rejected, 5xx: failed) by HTTP status, in metrics.
  virtual void record_error_response(int http_status) = 0;
  virtual int32_t n_running() const = 0;  // sequences (choices) holding KV blocks (not requests)
  virtual int32_t n_waiting() const = 0;  // requests submitted and not yet scheduled
  // Free blocks include cached prefix blocks no sequence holds (evicted on demand), so with
  // nothing running kv_blocks_free() == kv_blocks_total(). Updated before any stream that
  // freed blocks reports done().
  virtual int32_t kv_blocks_free() const = 0;
  virtual int32_t kv_blocks_total() const = 0;
};

}  // namespace quanta::serve
