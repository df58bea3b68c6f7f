// A loaded model: the mapped GGUF file, its hyper-parameters and weight views (matrices the
// kernel path prefers in another layout repacked at load). Immutable after load, so several
// inference contexts (or threads) can share it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gguf/reader.h"
#include "models/hparams.h"
#include "models/weights.h"

namespace quanta::models {

class Model {
 public:
  // Maps, validates and binds `path`; throws quanta::Error ("<path>: <problem>").
  static std::unique_ptr<Model> load(const std::string& path);

  const gguf::File& file() const { return file_; }
  const HParams& hparams() const { return hparams_; }
  const ArchSpec& arch() const { return *hparams_.arch; }
  const ModelWeights& weights() const { return weights_; }

  uint64_t weight_bytes() const;  // bytes of all tensor data
  int64_t n_params() const;       // elements of all tensors

 private:
  explicit Model(gguf::File file);

  gguf::File file_;
  HParams hparams_;
  ModelWeights weights_;
};

}  // namespace quanta::models
