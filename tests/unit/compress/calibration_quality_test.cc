// Calibration pays off: quantizing with an importance matrix from one text lowers the
// activation-weighted error measured with the activations of another (held-out) text.
// stories260K in Q4_0 (the real model, its 64-wide tensors) and the synthetic Llama in
// Q4_K, Q5_K and Q6_K. Calibration text: the start of frankenstein.txt (the shared folder
// has no second TinyStories file); evaluation: tinystories_validation_100.txt.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compress/calibrate.h"
#include "compress/quant_error.h"
#include "gguf/reader.h"
#include "testlib/shared_data.h"

namespace quanta::compress {
namespace {

ImportanceMatrix collect(const models::Model& model, const std::string& text_name, size_t bytes,
                         int32_t n_ctx, int32_t n_chunks) {
  const std::string text =
      testlib::read_file(testlib::shared_path("text/" + text_name)).substr(0, bytes);
  CalibrationOptions o;
  o.n_ctx = n_ctx;
  o.n_chunks = n_chunks;
  o.n_threads = 2;
  return calibrate(model, text, text_name, o).imatrix;
}

std::vector<float> as_floats(const gguf::File& f, const gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const size_t row = row_size(t.type, t.ne[0]);
  for (int64_t r = 0; r < t.n_rows(); ++r) {
    dequantize_row(t.type, f.tensor_data(t) + r * row, out.data() + r * t.ne[0], t.ne[0]);
  }
  return out;
}

struct ErrorTotals {
  double plain = 0, weighted = 0;
  int tensors = 0, tensors_improved = 0;
};

// Sums the held-out weighted error of quantizing every tensor named in `cal` whose width
// fits `type`, round-to-nearest vs importance-weighted.
ErrorTotals compare(const gguf::File& f, GgmlType type, const ImportanceMatrix& cal,
                    const ImportanceMatrix& eval, int32_t max_layer) {
  ErrorTotals t;
  for (const std::string& name : cal.names()) {
    int layer = -1;
    std::sscanf(name.c_str(), "blk.%d.", &layer);
    const gguf::TensorInfo* info = f.find_tensor(name);
    if (info == nullptr || layer > max_layer || info->ne[0] % type_traits(type).block_size) continue;
    const std::vector<float> w = as_floats(f, *info);
    const std::vector<float> qw = cal.importance(name);
    const std::vector<float> ev = eval.importance(name);
    const double plain = weighted_quant_error(type, w.data(), info->n_rows(), info->ne[0],
                                              ev.data(), nullptr);
    const double weighted = weighted_quant_error(type, w.data(), info->n_rows(), info->ne[0],
                                                 ev.data(), qw.data());
    t.plain += plain;
    t.weighted += weighted;
    ++t.tensors;
    t.tensors_improved += weighted < plain ? 1 : 0;
  }
  return t;
}

TEST(CalibrationQuality, Stories260KQ4_0) {
  const auto model = models::Model::load(testlib::shared_path("models/stories260K.gguf"));
  const ImportanceMatrix cal = collect(*model, "frankenstein.txt", 40000, 128, 40);
  const ImportanceMatrix eval = collect(*model, "tinystories_validation_100.txt", 60000, 128, 40);
  const ErrorTotals t = compare(model->file(), GgmlType::Q4_0, cal, eval, 99);
  EXPECT_EQ(t.tensors, 5 * 6);  // all but the 172-wide ffn_down
  EXPECT_LT(t.weighted, 0.9 * t.plain) << "plain " << t.plain << " weighted " << t.weighted;
  EXPECT_GE(t.tensors_improved, t.tensors * 3 / 4);
  RecordProperty("ratio_q4_0", std::to_string(t.weighted / t.plain));
}

TEST(CalibrationQuality, SyntheticModelKQuants) {
  const auto model = models::Model::load(testlib::shared_path("models/syn-llama-gqa-f16.gguf"));
  const ImportanceMatrix cal = collect(*model, "frankenstein.txt", 12000, 128, 8);
  const ImportanceMatrix eval = collect(*model, "tinystories_validation_100.txt", 12000, 128, 8);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K}) {
    const ErrorTotals t = compare(model->file(), type, cal, eval, 1);
    EXPECT_EQ(t.tensors, 2 * 7) << type_name(type);
    EXPECT_LT(t.weighted, t.plain) << type_name(type) << ": plain " << t.plain << " weighted "
                                   << t.weighted;
    RecordProperty(std::string("ratio_") + type_name(type), std::to_string(t.weighted / t.plain));
  }
}

}  // namespace
}  // namespace quanta::compress
