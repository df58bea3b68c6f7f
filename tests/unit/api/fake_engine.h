// A scripted serve::Engine for the API tests: each choice emits "t0 ", "t1 ", ... one token
// every `token_interval` (all at once when zero), finishing with kLength; it records requests,
// cancellations, rejections and shutdowns, and throws QueueFull past `max_active` streams.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "core/error.h"
#include "serve/engine.h"

namespace quanta::api::testing {

class FakeEngine;

class FakeStream : public serve::RequestStream {
 public:
  FakeStream(serve::GenerationRequest request, std::chrono::milliseconds interval)
      : req_(std::move(request)), interval_(interval), start_(Clock::now()) {}

  bool next(std::vector<serve::ChoiceDelta>& out, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    const Clock::time_point deadline = Clock::now() + timeout;
    while (true) {
      if (finished_) return false;
      const int32_t ready = ready_tokens();
      if (ready > emitted_ || cancelled_) {
        emit(ready, out);
        return true;
      }
      if (Clock::now() >= deadline) return true;
      cv_.wait_until(lock, std::min(deadline, start_ + interval_ * (emitted_ + 1)));
    }
  }
  bool done() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }
  serve::Usage usage() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return {static_cast<int32_t>(req_.prompt.size()), emitted_ * req_.n, 3};
  }
  void cancel() override { cancel_with(true); }
  double queue_seconds() const override { return 0.0; }

  // Client cancellations count in client_cancelled(); shutdown cancellations do not.
  void cancel_with(bool by_client) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancelled_ && !finished_) client_cancel_ = by_client;
    cancelled_ = true;
    cv_.notify_all();
  }
  bool client_cancelled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return client_cancel_;
  }
  const serve::GenerationRequest& request() const { return req_; }

 private:
  using Clock = std::chrono::steady_clock;

  int32_t ready_tokens() const {
    if (interval_.count() == 0) return req_.max_tokens;
    const auto elapsed = Clock::now() - start_;
    return std::min<int32_t>(req_.max_tokens, static_cast<int32_t>(elapsed / interval_) + 1);
  }

  void emit(int32_t ready, std::vector<serve::ChoiceDelta>& out) {
    if (cancelled_) ready = emitted_;
    for (int32_t c = 0; c < req_.n; ++c) {
      serve::ChoiceDelta d;
      d.index = c;
      for (int32_t k = emitted_; k < ready; ++k) {
        const std::string text = "t" + std::to_string(k) + " ";
        d.text += text;
        if (req_.top_logprobs >= 0) {
          serve::TokenLogprob lp{k, text, -0.25f, {}};
          for (int32_t j = 0; j < req_.top_logprobs; ++j) {
            lp.top.push_back({j, "alt" + std::to_string(j), -0.25f - j});
          }
          d.logprobs.push_back(lp);
        }
      }
      if (cancelled_) {
        d.finish = FinishReason::kCancelled;
      } else if (ready == req_.max_tokens) {
        d.finish = FinishReason::kLength;
      }
      out.push_back(std::move(d));
    }
    emitted_ = ready;
    finished_ = cancelled_ || ready == req_.max_tokens;
  }

  serve::GenerationRequest req_;
  std::chrono::milliseconds interval_;
  Clock::time_point start_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int32_t emitted_ = 0;
  bool cancelled_ = false;
  bool client_cancel_ = false;
  bool finished_ = false;
};

class FakeEngine : public serve::Engine {
 public:
  std::chrono::milliseconds token_interval{0};
  int32_t max_active = 1000;  // unfinished streams before QueueFull
  double retry_after = 1.5;   // QueueFull's estimate
  int32_t ctx = 256;
  // How long submit takes after registering the stream (the window in which a shutdown can
  // start while the server has a request accepted but not yet returned to it).
  std::chrono::milliseconds submit_delay{0};

  int32_t n_ctx() const override { return ctx; }
  std::shared_ptr<serve::RequestStream> submit(serve::GenerationRequest request) override {
    std::shared_ptr<FakeStream> stream;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) throw Error("the engine is shutting down");
      int32_t active = 0;
      for (const auto& s : streams_) active += !s->done();
      if (active >= max_active) throw serve::QueueFull{retry_after};
      streams_.push_back(std::make_shared<FakeStream>(std::move(request), token_interval));
      stream = streams_.back();
    }
    std::this_thread::sleep_for(submit_delay);
    return stream;
  }
  void shutdown(bool cancel_running) override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    shutdown_cancel_ = cancel_running;
    ++shutdowns_;
    if (cancel_running) {
      for (const auto& s : streams_) s->cancel_with(false);
    }
  }
  std::string metrics_text() const override { return "# TYPE fake_metric gauge\nfake_metric 1\n"; }
  void record_error_response(int http_status) override {
    std::lock_guard<std::mutex> lock(mu_);
    rejected_.push_back(http_status);
  }
  int32_t n_running() const override { return 0; }
  int32_t n_waiting() const override { return 0; }
  int32_t kv_blocks_free() const override { return 0; }
  int32_t kv_blocks_total() const override { return 0; }

  std::vector<std::shared_ptr<FakeStream>> streams() const {
    std::lock_guard<std::mutex> lock(mu_);
    return streams_;
  }
  std::vector<int> rejected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }
  int shutdowns() const {
    std::lock_guard<std::mutex> lock(mu_);
    return shutdowns_;
  }
  bool shutdown_cancelled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return shutdown_cancel_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<FakeStream>> streams_;
  std::vector<int> rejected_;
  bool stopped_ = false;
  bool shutdown_cancel_ = false;
  int shutdowns_ = 0;
};

}  // namespace quanta::api::testing
