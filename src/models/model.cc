// Model loading: GGUF → hyper-parameters → bound weights.
#include "models/model.h"

#include "core/error.h"

namespace quanta::models {

Model::Model(gguf::File file) : file_(std::move(file)) {}

std::unique_ptr<Model> Model::load(const std::string& path) {
  std::unique_ptr<Model> model(new Model(gguf::File::open(path)));
  try {
    model->hparams_ = read_hparams(model->file_);
    model->weights_ = bind_weights(model->file_, model->hparams_);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return model;
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& t : file_.tensors()) total += t.n_bytes;
  return total;
}

int64_t Model::n_params() const {
  int64_t total = 0;
  for (const auto& t : file_.tensors()) total += t.n_elements();
  return total;
}

}  // namespace quanta::models
