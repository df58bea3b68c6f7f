// Light mutation fuzzing (fixed seed): random byte flips, overwrites with boundary values and
// truncations of a valid file must either load or throw quanta::Error, never crash (this test
// is meant for the ASan/UBSan build). Files that load are read through every accessor.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "gguf_test_util.h"

namespace quanta::gguf {
namespace {

// Touches everything a caller might read from an accepted file.
uint64_t exercise(const File& f) {
  uint64_t sum = f.version() + f.alignment() + f.data_offset();
  for (const KeyValue& kv : f.metadata()) {
    sum += kv.key.size() + static_cast<uint32_t>(kv.value.type);
    if (kv.value.type == ValueType::kArray) sum += kv.value.as_array().size();
    if (kv.value.type == ValueType::kString) sum += kv.value.str.size();
  }
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_EQ(f.find_tensor(t.name), &t);
    EXPECT_LE(f.data_offset() + t.offset + t.n_bytes, f.file_size());
    const uint8_t* p = f.tensor_data(t);
    sum += p[0] + p[t.n_bytes - 1] + static_cast<uint64_t>(t.n_rows());
  }
  return sum;
}

// One random mutation of `image`.
void mutate(std::string& image, std::mt19937_64& rng) {
  static const uint64_t kSpecial[] = {0,      1,           2,          3,          4,    5,
                                      9,      13,          31,         32,         0x7f, 0xff,
                                      0xffff, 0xffffffffu, 1ull << 32, 1ull << 62, ~0ull};
  const int kind = static_cast<int>(rng() % 4);
  const size_t pos = rng() % image.size();
  if (kind == 0) {  // flip a bit
    image[pos] = static_cast<char>(image[pos] ^ (1 << (rng() % 8)));
  } else if (kind == 1) {  // random byte
    image[pos] = static_cast<char>(rng());
  } else if (kind == 2) {  // a boundary value over 4 or 8 bytes
    const uint64_t v = kSpecial[rng() % std::size(kSpecial)];
    const size_t width = (rng() % 2) ? 8 : 4;
    for (size_t i = 0; i < width && pos + i < image.size(); ++i) {
      image[pos + i] = static_cast<char>(v >> (8 * i));
    }
  } else {  // truncate
    image.resize(pos);
  }
}

TEST(GgufFuzz, MutationsLoadOrThrowQuantaError) {
  // Mostly header and metadata bytes: mutate a file with a small data section.
  const std::string base = test::base_image();
  std::mt19937_64 rng(0x9e3779b97f4a7c15ull);
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string image = base;
    const int n_mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < n_mutations && !image.empty(); ++m) mutate(image, rng);
    try {
      const File f = File::from_bytes(image);
      exercise(f);
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  // Both outcomes occur: mutations inside tensor data are harmless, most others are not.
  EXPECT_GT(loaded, 100);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace quanta::gguf
