// Shared helpers of the serve tests: the stories260K model and tokenizer (loaded once), engine
// options for tests, and a collector that drains a RequestStream into per-choice results.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "models/model.h"
#include "serve/engine.h"
#include "testlib/shared_data.h"
#include "tokenizer/tokenizer.h"

namespace quanta::serve::testing {

inline const models::Model& stories() {
  static const std::unique_ptr<models::Model> model =
      models::Model::load(testlib::shared_path("models/stories260K.gguf"));
  return *model;
}

inline const tokenizer::Tokenizer& stories_tokenizer() {
  static const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(stories().file());
  return tok;
}

inline EngineOptions test_options() {
  EngineOptions o;
  o.n_ctx = 256;
  o.max_batch_tokens = 64;
  o.max_running = 8;
  o.max_queue = 64;
  o.n_threads = 1;
  return o;
}

// A serving engine on stories260K.
inline std::unique_ptr<Engine> make_engine(const EngineOptions& o = test_options()) {
  return Engine::create(stories(), stories_tokenizer(), o);
}

// Greedy request for `text` (BOS added), ignoring EOS.
inline GenerationRequest greedy(const std::string& text, int32_t max_tokens) {
  GenerationRequest r;
  r.prompt = stories_tokenizer().encode(text, /*add_special=*/true);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  r.ignore_eos = true;
  return r;
}

struct ChoiceResult {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  FinishReason finish = FinishReason::kNone;
  int32_t n_deltas = 0;  // deltas with text
  int32_t n_finals = 0;  // deltas with a finish reason (must end as 1)
  std::vector<int32_t> tokens() const {
    std::vector<int32_t> ids;
    for (const TokenLogprob& lp : logprobs) ids.push_back(lp.token);
    return ids;
  }
};

struct Collected {
  std::vector<ChoiceResult> choices;
  Usage usage;
};

// Drains `stream` until it reports the end (fails the test after `limit`).
inline Collected collect(RequestStream& stream, int32_t n = 1,
                         std::chrono::seconds limit = std::chrono::seconds(60)) {
  Collected c;
  c.choices.resize(n);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::vector<ChoiceDelta> deltas;
  while (stream.next(deltas, std::chrono::milliseconds(50))) {
    for (ChoiceDelta& d : deltas) {
      EXPECT_GE(d.index, 0);
      EXPECT_LT(d.index, n);
      ChoiceResult& r = c.choices.at(d.index);
      EXPECT_EQ(r.n_finals, 0) << "delta after the final one of choice " << d.index;
      r.text += d.text;
      r.n_deltas += d.text.empty() ? 0 : 1;
      for (TokenLogprob& lp : d.logprobs) r.logprobs.push_back(std::move(lp));
      if (d.finish != FinishReason::kNone) {
        r.finish = d.finish;
        ++r.n_finals;
      }
    }
    deltas.clear();
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "stream did not finish in time";
      stream.cancel();
      break;
    }
  }
  EXPECT_TRUE(stream.done());
  c.usage = stream.usage();
  return c;
}

}  // namespace quanta::serve::testing
