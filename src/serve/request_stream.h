// The engine's RequestStream: a mutex-protected queue of ChoiceDelta from the engine thread to
// one HTTP handler, plus the mailbox through which handlers submit and cancel requests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "serve/engine.h"

namespace quanta::serve {

using Clock = std::chrono::steady_clock;

class StreamImpl;

// A request on its way to the engine thread.
struct Submission {
  int64_t id = -1;
  GenerationRequest request;
  std::shared_ptr<StreamImpl> stream;
  Clock::time_point submitted;
};

// Shared by the engine and every stream (streams may outlive the engine). All fields under mu.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;  // the engine thread waits here when idle
  std::vector<Submission> submissions;
  std::vector<int64_t> cancels;  // request ids
  bool stopping = false;         // shutdown() began: submit() refuses
  bool cancel_all = false;       // shutdown(true)
  int32_t queued = 0;            // submitted requests not yet scheduled (max_queue)

  void cancel(int64_t id);
};

class StreamImpl final : public RequestStream {
 public:
  StreamImpl(int64_t id, int32_t n_choices, std::shared_ptr<Inbox> inbox, Clock::time_point t0);

  // RequestStream (any thread).
  bool next(std::vector<ChoiceDelta>& out, std::chrono::milliseconds timeout) override;
  bool done() const override;
  Usage usage() const override;
  void cancel() override;
  double queue_seconds() const override;

  // Engine thread. push() merges into a queued, not yet taken delta of the same choice.
  void push(ChoiceDelta&& delta);
  // The final delta of a choice; with the last choice, `usage` becomes final and done().
  void finish_choice(ChoiceDelta&& delta, const Usage& usage);
  void set_queue_seconds(double seconds);

 private:
  void push_locked(ChoiceDelta&& delta);

  const int64_t id_;
  const int32_t n_choices_;
  const std::shared_ptr<Inbox> inbox_;
  const Clock::time_point t0_;  // submit time
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ChoiceDelta> queue_;  // capacity kept across next() calls
  int32_t n_finished_ = 0;
  Usage usage_;
  double queue_seconds_ = -1.0;  // -1 until scheduled
  std::atomic<bool> cancelled_{false};
};

}  // namespace quanta::serve
