// Model loading: GGUF → hyper-parameters → bound weights.
#include "models/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "core/error.h"
#include "kernels/kernel_table.h"

namespace quanta::models {

Model::Model(gguf::File file) : file_(std::move(file)) {}

std::unique_ptr<Model> Model::load(const std::string& path) {
  std::unique_ptr<Model> model(new Model(gguf::File::open(path)));
  try {
    model->hparams_ = read_hparams(model->file_);
    model->weights_ = bind_weights(model->file_, model->hparams_);
    // Matrices the kernels prefer in another layout get a repacked copy; the pages of the
    // (private, read-only, file-backed) mapping they came from are dropped from this process
    // as each is done, so the weights stay resident once. Dropped pages would simply be read
    // from the file again if anything touched them.
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    repack_weights(model->weights_, kernels::active(), [page](const uint8_t* data, size_t bytes) {
      const auto begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
      const auto end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
      if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    });
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
