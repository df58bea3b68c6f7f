// Byte-identity with llama.cpp: quantizing the F16 weights of syn-llama-gqa-f16.gguf with
// quanta's reference quantizers must reproduce, block for block, the tensors llama-quantize
// wrote into the q8_0 / q4_0 / q6_k / q4_k_m / q5_k_m variants (no imatrix: the *_ref path).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "mini_gguf.h"
#include "quant/types.h"
#include "testlib/shared_data.h"

namespace quanta {
namespace {

using testing::MiniGguf;
using testing::MiniTensor;

const MiniGguf& f16_model() {
  static const MiniGguf model(testlib::shared_path("models/syn-llama-gqa-f16.gguf"));
  return model;
}

std::vector<float> f16_tensor_as_f32(const MiniGguf& file, const MiniTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const uint8_t* src = file.data(t);
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    out[i] = f16_to_f32(h);
  }
  return out;
}

struct ParityResult {
  int tensors_compared = 0;
  int tensors_quantized_in_file = 0;
};

// Re-quantizes every quantized tensor of `variant` from the F16 model and expects identical
// bytes. Reports the first differing block of each mismatching tensor.
ParityResult check_variant(const std::string& variant_name) {
  ParityResult result;
  const MiniGguf variant(testlib::shared_path("models/" + variant_name));
  const MiniGguf& base = f16_model();
  for (const MiniTensor& t : variant.tensors()) {
    const GgmlType type = static_cast<GgmlType>(t.type);
    if (!type_traits(type).is_quantized) continue;
    ++result.tensors_quantized_in_file;
    const MiniTensor* src = base.find(t.name);
    if (src == nullptr || src->type != static_cast<uint32_t>(GgmlType::F16) || src->ne != t.ne) {
      ADD_FAILURE() << variant_name << ": no matching F16 tensor for " << t.name;
      continue;
    }
    if (!is_supported_type(type)) {
      ADD_FAILURE() << variant_name << ": " << t.name << " has unsupported type "
                    << type_name(type);
      continue;
    }
    const std::vector<float> x = f16_tensor_as_f32(base, *src);
    const size_t n_bytes = row_size(type, t.ne[0]) * static_cast<size_t>(t.n_elements() / t.ne[0]);
    if (variant.data_start() + t.offset + n_bytes > variant.size()) {
      ADD_FAILURE() << variant_name << ": " << t.name << " runs past the end of the file";
      continue;
    }
    std::vector<uint8_t> mine(n_bytes);
    quantize_row(type, x.data(), mine.data(), t.n_elements());
    const uint8_t* theirs = variant.data(t);
    const size_t block_bytes = type_traits(type).type_size;
    size_t n_diff = 0, first_diff = 0;
    for (size_t b = 0; b < n_bytes / block_bytes; ++b) {
      if (std::memcmp(mine.data() + b * block_bytes, theirs + b * block_bytes, block_bytes)) {
        if (n_diff++ == 0) first_diff = b;
      }
    }
    EXPECT_EQ(n_diff, 0u) << variant_name << ": " << t.name << " (" << type_name(type)
                          << "): " << n_diff << " of " << n_bytes / block_bytes
                          << " blocks differ, first at block " << first_diff;
    ++result.tensors_compared;
  }
  return result;
}

void expect_all_compared(const std::string& variant_name) {
  const ParityResult r = check_variant(variant_name);
  EXPECT_GT(r.tensors_compared, 0) << variant_name;
  EXPECT_EQ(r.tensors_compared, r.tensors_quantized_in_file) << variant_name;
}

TEST(LlamaParity, Q8_0) {
  expect_all_compared("syn-llama-gqa-q8_0.gguf");
}
TEST(LlamaParity, Q4_0) {
  expect_all_compared("syn-llama-gqa-q4_0.gguf");
}
TEST(LlamaParity, Q6_K) {
  expect_all_compared("syn-llama-gqa-q6_k.gguf");
}
TEST(LlamaParity, Q4_K_M) {
  expect_all_compared("syn-llama-gqa-q4_k_m.gguf");
}
TEST(LlamaParity, Q5_K_M) {
  expect_all_compared("syn-llama-gqa-q5_k_m.gguf");
}

// The test-only parser must agree with the file layout: the last tensor ends at the end of the
// file, give or take the final alignment padding.
TEST(LlamaParity, MiniParserSeesWholeFile) {
  const MiniGguf& base = f16_model();
  ASSERT_FALSE(base.tensors().empty());
  uint64_t end = 0;
  for (const MiniTensor& t : base.tensors()) {
    const GgmlType type = static_cast<GgmlType>(t.type);
    ASSERT_TRUE(is_known_type(t.type)) << t.name;
    const uint64_t bytes =
        row_size(type, t.ne[0]) * static_cast<uint64_t>(t.n_elements() / t.ne[0]);
    end = std::max(end, t.offset + bytes);
  }
  ASSERT_LE(base.data_start() + end, base.size());
  EXPECT_LT(base.size() - (base.data_start() + end), 32u);
}

}  // namespace
}  // namespace quanta
