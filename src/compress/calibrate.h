// Calibration: runs a model over a text, as llama-imatrix does, and collects the importance
// matrix of every matmul weight (per-column sums of squared activations), plus the
// perplexity of the chunks' second halves as a sanity figure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "compress/imatrix.h"
#include "models/model.h"

namespace quanta::compress {

struct CalibrationOptions {
  int32_t n_ctx = 512;          // tokens per chunk (each chunk starts afresh, first token BOS)
  int32_t n_chunks = -1;        // chunks to run; -1: all the text holds
  int32_t n_threads = 0;        // 0: all cores
  bool process_output = false;  // also collect output.weight (llama-imatrix --process-output)
  // Called after each chunk with (chunks done, chunks total, running perplexity).
  std::function<void(int32_t, int32_t, double)> on_chunk;
};

struct CalibrationResult {
  ImportanceMatrix imatrix;
  int64_t n_tokens = 0;     // tokens of the whole text
  int32_t n_chunks = 0;     // chunks evaluated
  double perplexity = 0.0;  // over positions n_ctx/2 .. n_ctx-2 of each chunk
};

// Tokenizes `text` (BOS prepended when the vocabulary adds one), cuts it into n_ctx-token
// chunks (the tail is dropped) and runs each. `dataset` names the text in the imatrix file.
// Throws quanta::Error when the text holds less than one chunk.
CalibrationResult calibrate(const models::Model& model, const std::string& text,
                            const std::string& dataset, const CalibrationOptions& options);

}  // namespace quanta::compress
