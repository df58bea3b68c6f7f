// Byte-identity with llama.cpp: quantizing the F16 weights of syn-llama-gqa-f16.gguf (and
// the F32 stories260K) with quanta's reference quantizers must reproduce, block for block,
// the tensors llama-quantize wrote into their variants (no imatrix: ggml's *_ref path).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
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

const MiniGguf& load(const std::string& name) {
  static std::vector<std::unique_ptr<MiniGguf>> cache;
  static std::vector<std::string> names;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return *cache[i];
  }
  names.push_back(name);
  cache.push_back(std::make_unique<MiniGguf>(testlib::shared_path("models/" + name)));
  return *cache.back();
}

// An F32 or F16 source tensor as floats (F16 -> F32 is exact, as llama-quantize's).
std::vector<float> tensor_as_f32(const MiniGguf& file, const MiniTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const uint8_t* src = file.data(t);
  const bool f16 = t.type == static_cast<uint32_t>(GgmlType::F16);
  for (size_t i = 0; i < out.size(); ++i) {
    if (f16) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      out[i] = f16_to_f32(h);
    } else {
      std::memcpy(&out[i], src + 4 * i, 4);
    }
  }
  return out;
}

struct ParityResult {
  int tensors_compared = 0;
  int tensors_converted_in_file = 0;  // tensors whose type differs from the source's
};

// Number of differing blocks between quantizing `x` to `type` and the variant's bytes.
size_t count_block_diffs(GgmlType type, const std::vector<float>& x, const uint8_t* theirs,
                         size_t n_bytes, size_t* first_diff) {
  std::vector<uint8_t> mine(n_bytes);
  quantize_row(type, x.data(), mine.data(), static_cast<int64_t>(x.size()));
  const size_t block_bytes = type_traits(type).type_size;
  size_t n_diff = 0;
  for (size_t b = 0; b < n_bytes / block_bytes; ++b) {
    if (std::memcmp(mine.data() + b * block_bytes, theirs + b * block_bytes, block_bytes)) {
      if (n_diff++ == 0) *first_diff = b;
    }
  }
  return n_diff;
}

// Re-quantizes every tensor of `variant` whose type differs from the one in `base` (F32 or
// F16 there) and expects identical bytes; reports the first differing block per tensor.
ParityResult check_variant(const std::string& base_name, const std::string& variant_name) {
  ParityResult result;
  const MiniGguf variant(testlib::shared_path("models/" + variant_name));
  const MiniGguf& base = load(base_name);
  for (const MiniTensor& t : variant.tensors()) {
    const GgmlType type = static_cast<GgmlType>(t.type);
    const MiniTensor* src = base.find(t.name);
    if (src == nullptr || src->ne != t.ne) {
      ADD_FAILURE() << variant_name << ": no tensor " << t.name << " of that shape in base";
      continue;
    }
    if (src->type == t.type) continue;  // copied unchanged (norms)
    ++result.tensors_converted_in_file;
    if (src->type > 1 || !is_supported_type(type)) {
      ADD_FAILURE() << variant_name << ": " << t.name << ": cannot compare " << type_name(type);
      continue;
    }
    const size_t n_bytes = row_size(type, t.ne[0]) * static_cast<size_t>(t.n_elements() / t.ne[0]);
    if (variant.data_start() + t.offset + n_bytes > variant.size()) {
      ADD_FAILURE() << variant_name << ": " << t.name << " runs past the end of the file";
      continue;
    }
    size_t first_diff = 0;
    const size_t n_diff =
        count_block_diffs(type, tensor_as_f32(base, *src), variant.data(t), n_bytes, &first_diff);
    EXPECT_EQ(n_diff, 0u) << variant_name << ": " << t.name << " (" << type_name(type)
                          << "): " << n_diff << " of " << n_bytes / type_traits(type).type_size
                          << " blocks differ, first at block " << first_diff;
    ++result.tensors_compared;
  }
  return result;
}

void expect_all_compared(const std::string& base_name, const std::string& variant_name) {
  const ParityResult r = check_variant(base_name, variant_name);
  EXPECT_GT(r.tensors_compared, 0) << variant_name;
  EXPECT_EQ(r.tensors_compared, r.tensors_converted_in_file) << variant_name;
}

constexpr const char* kSynF16 = "syn-llama-gqa-f16.gguf";
TEST(LlamaParity, Q8_0) {
  expect_all_compared(kSynF16, "syn-llama-gqa-q8_0.gguf");
}
TEST(LlamaParity, Q4_0) {
  expect_all_compared(kSynF16, "syn-llama-gqa-q4_0.gguf");
}
TEST(LlamaParity, Q6_K) {
  expect_all_compared(kSynF16, "syn-llama-gqa-q6_k.gguf");
}
TEST(LlamaParity, Q4_K_M) {
  expect_all_compared(kSynF16, "syn-llama-gqa-q4_k_m.gguf");
}
TEST(LlamaParity, Q5_K_M) {
  expect_all_compared(kSynF16, "syn-llama-gqa-q5_k_m.gguf");
}
// stories260K (F32) quantized by llama.cpp: its 172-wide rows fall back to Q8_0 / Q5_0 / F16,
// so these cover Q5_0 and the F32 -> F16 conversion on real weights.
TEST(LlamaParity, Stories260KQ8_0Mix) {
  expect_all_compared("stories260K.gguf", "stories260K-Q8_0mix.gguf");
}
TEST(LlamaParity, Stories260KQ5_0Mix) {
  expect_all_compared("stories260K.gguf", "stories260K-Q5_0mix.gguf");
}

// The test-only parser must agree with the file layout: the last tensor ends at the end of the
// file, give or take the final alignment padding.
TEST(LlamaParity, MiniParserSeesWholeFile) {
  const MiniGguf& base = load(kSynF16);
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
