// RequestStream implementation: delta queue with merging, completion and cancellation.
#include "serve/request_stream.h"

#include <iterator>
#include <utility>

namespace quanta::serve {

void Inbox::cancel(int64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu);
    cancels.push_back(id);
  }
  cv.notify_all();
}

StreamImpl::StreamImpl(int64_t id, int32_t n_choices, std::shared_ptr<Inbox> inbox,
                       Clock::time_point t0)
    : id_(id), n_choices_(n_choices), inbox_(std::move(inbox)), t0_(t0) {
  queue_.reserve(n_choices);
}

bool StreamImpl::next(std::vector<ChoiceDelta>& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || n_finished_ == n_choices_; });
  if (queue_.empty()) return n_finished_ != n_choices_;
  out.insert(out.end(), std::make_move_iterator(queue_.begin()),
             std::make_move_iterator(queue_.end()));
  queue_.clear();
  return true;
}

bool StreamImpl::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_finished_ == n_choices_;
}

Usage StreamImpl::usage() const {
  std::lock_guard<std::mutex> lock(mu_);
  return usage_;
}

void StreamImpl::cancel() {
  if (cancelled_.exchange(true)) return;
  if (done()) return;
  inbox_->cancel(id_);
}

double StreamImpl::queue_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_seconds_ >= 0) return queue_seconds_;
  return std::chrono::duration<double>(Clock::now() - t0_).count();
}

void StreamImpl::push_locked(ChoiceDelta&& delta) {
  for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
    if (it->index != delta.index) continue;
    if (it->finish != FinishReason::kNone) break;  // never merge past a choice's end
    it->text += delta.text;
    it->logprobs.insert(it->logprobs.end(), std::make_move_iterator(delta.logprobs.begin()),
                        std::make_move_iterator(delta.logprobs.end()));
    it->finish = delta.finish;
    return;
  }
  queue_.push_back(std::move(delta));
}

void StreamImpl::push(ChoiceDelta&& delta) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    push_locked(std::move(delta));
  }
  cv_.notify_all();
}

void StreamImpl::finish_choice(ChoiceDelta&& delta, const Usage& usage) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    push_locked(std::move(delta));
    ++n_finished_;
    if (n_finished_ == n_choices_) usage_ = usage;
  }
  cv_.notify_all();
}

void StreamImpl::set_queue_seconds(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_seconds_ = seconds;
}

}  // namespace quanta::serve
