// Corrupt-file corpus: each variant of a small valid Writer-built file must be rejected with
// quanta::Error whose message names the problem (asserted by substring).
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "core/error.h"
#include "gguf/reader.h"
#include "gguf_test_util.h"
#include "testlib/shared_data.h"

namespace quanta::gguf::test {
namespace {

struct BadCase {
  std::string name;
  std::string image;
  std::string expected;  // substring of the error message
};

using Mutation = std::function<void(std::string&)>;

class Corpus {
 public:
  void add(std::string name, const Mutation& mutate, std::string expected) {
    std::string image = base_image();
    mutate(image);
    cases_.push_back({std::move(name), std::move(image), std::move(expected)});
  }
  void add_image(std::string name, std::string image, std::string expected) {
    cases_.push_back({std::move(name), std::move(image), std::move(expected)});
  }
  const std::vector<BadCase>& cases() const { return cases_; }

 private:
  std::vector<BadCase> cases_;
};

std::string u32_bytes(uint32_t v) {
  std::string s;
  append(s, v);
  return s;
}

void add_header_cases(Corpus& c) {
  c.add_image("empty", "", "file is empty");
  c.add_image("three bytes", "GGU", "truncated: file of 3 bytes is too short for the magic");
  c.add(
      "bad magic", [](std::string& s) { s.replace(0, 4, "GGML"); },
      "not a GGUF file (bad magic 0x4c4d4747)");
  c.add(
      "version 0", [](std::string& s) { put_at<uint32_t>(s, kVersionPos, 0); },
      "unsupported GGUF version 0");
  c.add(
      "version 1", [](std::string& s) { put_at<uint32_t>(s, kVersionPos, 1); },
      "unsupported GGUF version 1");
  c.add(
      "version 4", [](std::string& s) { put_at<uint32_t>(s, kVersionPos, 4); },
      "unsupported GGUF version 4 (quanta reads versions 2 and 3)");
  c.add(
      "version max", [](std::string& s) { put_at<uint32_t>(s, kVersionPos, 0xffffffffu); },
      "unsupported GGUF version 4294967295");
  c.add(
      "big-endian", [](std::string& s) { put_at<uint32_t>(s, kVersionPos, 0x03000000u); },
      "big-endian GGUF files are not supported");
  c.add(
      "huge tensor count",
      [](std::string& s) { put_at<uint64_t>(s, kTensorCountPos, uint64_t{1} << 60); },
      "tensor count 1152921504606846976 cannot fit in the remaining");
  c.add(
      "huge kv count", [](std::string& s) { put_at<uint64_t>(s, kKvCountPos, uint64_t{1} << 60); },
      "metadata count 1152921504606846976 cannot fit in the remaining");
  c.add(
      "max tensor count",
      [](std::string& s) { put_at<uint64_t>(s, kTensorCountPos, ~uint64_t{0}); },
      "tensor count 18446744073709551615 cannot fit");
  c.add(
      "tensor count one too many", [](std::string& s) { put_at<uint64_t>(s, kTensorCountPos, 4); },
      "tensor info 3: ");
}

void add_metadata_cases(Corpus& c) {
  c.add(
      "huge key length", [](std::string& s) { put_at<uint64_t>(s, kFirstKvPos, 1ull << 40); },
      "metadata entry 0: key length 1099511627776 exceeds remaining");
  c.add(
      "huge string length",
      [](std::string& s) { put_at<uint64_t>(s, kv_type_pos(s, "test.str") + 4, 0xffffffffu); },
      "metadata key 'test.str': string length 4294967295 exceeds remaining");
  c.add(
      "huge array length",
      [](std::string& s) { put_at<uint64_t>(s, kv_type_pos(s, "test.arr") + 8, 1ull << 62); },
      "metadata key 'test.arr': array length 4611686018427387904 cannot fit");
  c.add(
      "huge string array length",
      [](std::string& s) { put_at<uint64_t>(s, kv_type_pos(s, "test.list") + 8, 1ull << 40); },
      "metadata key 'test.list': array length 1099511627776 cannot fit");
  c.add(
      "string array element length",
      [](std::string& s) {  // first element "a": u64 length right after the count
        put_at<uint64_t>(s, kv_type_pos(s, "test.list") + 16, 1ull << 50);
      },
      "metadata key 'test.list': string length 1125899906842624 exceeds remaining");
  c.add(
      "unknown value type",
      [](std::string& s) { put_at<uint32_t>(s, kv_type_pos(s, "test.u32"), 13); },
      "metadata key 'test.u32': unknown value type 13");
  c.add(
      "unknown array element type",
      [](std::string& s) { put_at<uint32_t>(s, kv_type_pos(s, "test.arr") + 4, 77); },
      "metadata key 'test.arr': unknown array element type 77");
  c.add(
      "duplicate key",
      [](std::string& s) { s.replace(find_unique(s, "test.dup_b"), 10, "test.dup_a"); },
      "metadata key 'test.dup_a': duplicate key (entries 3 and 4)");
  c.add(
      "empty key", [](std::string& s) { s = with_raw_kv(s, raw_kv("", 0, "x")); },
      "metadata entry 0: bad key: empty name");
  c.add(
      "key with NUL",
      [](std::string& s) { s = with_raw_kv(s, raw_kv(std::string("a\0b", 3), 0, "x")); },
      "metadata entry 0: bad key: name contains a NUL byte");
  c.add(
      "oversized key",
      [](std::string& s) { s = with_raw_kv(s, raw_kv(std::string(70000, 'k'), 0, "x")); },
      "metadata entry 0: bad key: name of 70000 bytes exceeds the limit of 65535");
  c.add(
      "bool value 2",
      [](std::string& s) { s = with_raw_kv(s, raw_kv("flag", 7, std::string(1, '\2'))); },
      "metadata key 'flag': bool value 2 is not 0 or 1");
  c.add(
      "bool array element 2",
      [](std::string& s) {
        std::string payload = u32_bytes(7);
        append<uint64_t>(payload, 3);
        payload += std::string("\0\1\2", 3);
        s = with_raw_kv(s, raw_kv("flags", 9, payload));
      },
      "metadata key 'flags': bool array element 2 is 2, not 0 or 1");
  c.add(
      "nested array depth bomb",
      [](std::string& s) {
        std::string payload;
        for (int i = 0; i < 40; ++i) {
          append<uint32_t>(payload, 9);
          append<uint64_t>(payload, 1);
        }
        append<uint32_t>(payload, 0);
        append<uint64_t>(payload, 0);
        s = with_raw_kv(s, raw_kv("bomb", 9, payload));
      },
      "metadata key 'bomb': arrays nested deeper than 16 levels");
}

void add_alignment_cases(Corpus& c) {
  const auto value_pos = [](const std::string& s) {
    return kv_type_pos(s, "general.alignment") + 4;
  };
  c.add(
      "alignment 0", [&](std::string& s) { put_at<uint32_t>(s, value_pos(s), 0); },
      "metadata key 'general.alignment': general.alignment 0 is not a nonzero power of two");
  c.add(
      "alignment 3", [&](std::string& s) { put_at<uint32_t>(s, value_pos(s), 3); },
      "general.alignment 3 is not a nonzero power of two");
  c.add(
      "alignment int32",
      [](std::string& s) { put_at<uint32_t>(s, kv_type_pos(s, "general.alignment"), 5); },
      "general.alignment must be uint32, found int32");
  c.add(
      "alignment float32",
      [](std::string& s) { put_at<uint32_t>(s, kv_type_pos(s, "general.alignment"), 6); },
      "general.alignment must be uint32, found float32");
  c.add(
      "alignment 64 misaligns offsets",
      [&](std::string& s) { put_at<uint32_t>(s, value_pos(s), 64); },
      "tensor 'tensor_c': offset 0xe0 is not a multiple of the alignment 64");
}

void add_tensor_cases(Corpus& c) {
  const auto type_at = [](const char* name, uint32_t code) {
    return [=](std::string& s) { put_at<uint32_t>(s, info_pos(s, name).type, code); };
  };
  c.add("unknown tensor type", type_at("tensor_b", 99),
        "tensor 'tensor_b': unknown tensor type code 99");
  c.add("removed type 4", type_at("tensor_a", 4),
        "unknown tensor type code 4 (a type removed from ggml)");
  c.add("removed type 5", type_at("tensor_a", 5),
        "unknown tensor type code 5 (a type removed from ggml)");
  c.add("removed type 31", type_at("tensor_a", 31), "unknown tensor type code 31 (a type removed");
  c.add(
      "n_dims 0", [](std::string& s) { put_at<uint32_t>(s, info_pos(s, "tensor_a").n_dims, 0); },
      "tensor 'tensor_a': n_dims 0 is out of range (must be 1..4)");
  c.add(
      "n_dims 5", [](std::string& s) { put_at<uint32_t>(s, info_pos(s, "tensor_a").n_dims, 5); },
      "tensor 'tensor_a': n_dims 5 is out of range");
  c.add(
      "zero dim", [](std::string& s) { put_at<int64_t>(s, info_pos(s, "tensor_a").ne, 0); },
      "tensor 'tensor_a': dimension ne[0] = 0 is not positive");
  c.add(
      "negative dim",
      [](std::string& s) { put_at<int64_t>(s, info_pos(s, "tensor_a").ne + 8, -2); },
      "tensor 'tensor_a': dimension ne[1] = -2 is not positive");
  c.add(
      "element count overflow",
      [](std::string& s) {
        put_at<int64_t>(s, info_pos(s, "tensor_a").ne, int64_t{1} << 62);
        put_at<int64_t>(s, info_pos(s, "tensor_a").ne + 8, 4);
      },
      "tensor 'tensor_a': element count overflows int64 (ne[1] = 4)");
  c.add(
      "byte size overflow",
      [](std::string& s) {
        put_at<int64_t>(s, info_pos(s, "tensor_a").ne, int64_t{1} << 62);
        put_at<int64_t>(s, info_pos(s, "tensor_a").ne + 8, 1);
      },
      "tensor 'tensor_a': byte size overflows uint64");
  c.add(
      "ne0 not a block multiple",
      [](std::string& s) { put_at<int64_t>(s, info_pos(s, "tensor_b").ne, 48); },
      "tensor 'tensor_b': row length ne[0] = 48 is not a multiple of the q8_0 block size 32");
  c.add(
      "offset not aligned",
      [](std::string& s) { put_at<uint64_t>(s, info_pos(s, "tensor_b").offset, 65); },
      "tensor 'tensor_b': offset 0x41 is not a multiple of the alignment 32");
  c.add(
      "offset past EOF",
      [](std::string& s) { put_at<uint64_t>(s, info_pos(s, "tensor_c").offset, 1u << 20); },
      "tensor 'tensor_c': data range 0x");
  c.add(
      "offset overflow",
      [](std::string& s) { put_at<uint64_t>(s, info_pos(s, "tensor_c").offset, ~uint64_t{31}); },
      "tensor 'tensor_c': data range (offset 0xffffffffffffffe0, 32 bytes) overflows uint64");
  c.add(
      "overlapping tensors",
      [](std::string& s) { put_at<uint64_t>(s, info_pos(s, "tensor_c").offset, 96); },
      "tensors 'tensor_b' (");
  c.add(
      "duplicate tensor name",
      [](std::string& s) { s.replace(find_unique(s, "tensor_b"), 8, "tensor_a"); },
      "tensor 'tensor_a': duplicate tensor name (tensor infos 0 and 1)");
  c.add(
      "empty tensor name", [](std::string& s) { s = with_raw_info(s, raw_info("", {4}, 0, 0)); },
      "tensor info 0: bad tensor name: empty name");
  c.add(
      "oversized tensor name",
      [](std::string& s) { s = with_raw_info(s, raw_info(std::string(300, 'n'), {4}, 0, 0)); },
      "tensor info 0: bad tensor name: name of 300 bytes exceeds the limit of 255");
  c.add(
      "huge tensor name length",
      [](std::string& s) { put_at<uint64_t>(s, find_unique(s, "tensor_b") - 8, 1ull << 33); },
      "tensor info 1: name length 8589934592 exceeds remaining");
}

void add_truncation_cases(Corpus& c) {
  const std::string full = base_image();
  const auto cut = [&](size_t n) { return full.substr(0, n); };
  // A prefix whose header counts only what it (partly) holds, so that the count checks pass
  // and the read itself runs out of bytes.
  const auto cut_counted = [&](size_t n, uint64_t n_kv) {
    std::string s = full.substr(0, n);
    put_at<uint64_t>(s, kTensorCountPos, 0);
    put_at<uint64_t>(s, kKvCountPos, n_kv);
    return s;
  };
  c.add_image("truncated in magic", cut(2), "too short for the magic");
  c.add_image("truncated after magic", cut(4),
              "truncated: version needs 4 bytes at offset 0x4 but only 0 remain");
  c.add_image("truncated after version", cut(8), "truncated: tensor count needs 8 bytes");
  c.add_image("truncated after tensor count", cut(16), "truncated: metadata count needs 8 bytes");
  c.add_image("truncated after header", cut(24),
              "metadata count 9 cannot fit in the remaining 0 bytes");
  const size_t key_pos = find_unique(full, "general.architecture");
  c.add_image("truncated in key (count check)", cut(key_pos + 3),
              "metadata count 9 cannot fit in the remaining 11 bytes (each needs at least 14)");
  c.add_image("truncated in key", cut_counted(key_pos + 12, 1),
              "metadata entry 0: key length 20 exceeds remaining 12 bytes");
  c.add_image("truncated before value type", cut_counted(key_pos + 20, 1),
              "metadata key 'general.architecture': truncated: value type needs 4 bytes");
  c.add_image("truncated in scalar value", cut_counted(kv_type_pos(full, "test.u32") + 6, 3),
              "metadata key 'test.u32': truncated: uint32 needs 4 bytes at offset 0x");
  const size_t arr_type = kv_type_pos(full, "test.arr");
  c.add_image("truncated in array data", cut(arr_type + 4 + 12 + 5),
              "metadata key 'test.arr': array length 3 cannot fit in the remaining 5 bytes");
  // In the last info: earlier ones would trip the tensor-count check first.
  const InfoPos last = info_pos(full, "tensor_c");
  c.add_image("truncated in tensor dims", cut(last.ne + 4),
              "tensor 'tensor_c': truncated: dimension needs 8 bytes");
  c.add_image("truncated before tensor offset", cut(last.offset),
              "tensor 'tensor_c': truncated: offset needs 8 bytes");
  const File whole = File::from_bytes(full);
  c.add_image("data section missing", cut(last.offset + 8), "tensor 'tensor_a': data range");
  c.add_image("truncated in last tensor", cut(full.size() - 1),
              strformat("tensor 'tensor_c': data range 0x%llx..0x%llx exceeds file size 0x%llx",
                        static_cast<unsigned long long>(whole.data_offset() + 224),
                        static_cast<unsigned long long>(whole.data_offset() + 256),
                        static_cast<unsigned long long>(full.size() - 1)));
}

std::vector<BadCase> corpus() {
  Corpus c;
  add_header_cases(c);
  add_metadata_cases(c);
  add_alignment_cases(c);
  add_tensor_cases(c);
  add_truncation_cases(c);
  return c.cases();
}

TEST(GgufBadFile, BaseImageIsValid) {
  const File f = File::from_bytes(base_image());
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.find_tensor("tensor_c")->offset, 224u);
  EXPECT_EQ(f.tensors()[1].n_bytes, 136u);
}

TEST(GgufBadFile, EveryCorruptionIsRejectedWithItsMessage) {
  const std::vector<BadCase> cases = corpus();
  EXPECT_GE(cases.size(), 35u);
  std::set<std::string> names, images;
  for (const BadCase& bad : cases) {
    SCOPED_TRACE(bad.name);
    EXPECT_TRUE(names.insert(bad.name).second) << "duplicate case name";
    EXPECT_TRUE(images.insert(bad.image).second) << "case repeats another's bytes";
    try {
      File::from_bytes(bad.image, "bad.gguf");
      ADD_FAILURE() << "accepted a corrupt file";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("bad.gguf: ", 0), 0u) << message;
      EXPECT_NE(message.find(bad.expected), std::string::npos)
          << "message: " << message << "\nexpected to contain: " << bad.expected;
    }
  }
}

// Every strict prefix of the file is rejected, with a message about missing bytes.
TEST(GgufBadFile, EveryTruncationIsRejected) {
  const std::string full = base_image();
  const char* kForms[] = {"file is empty", "truncated", "exceeds remaining", "cannot fit",
                          "exceeds file size"};
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
    try {
      File::from_bytes(full.substr(0, n));
      ADD_FAILURE() << "accepted a truncated file";
    } catch (const Error& e) {
      const std::string message = e.what();
      bool known = false;
      for (const char* form : kForms) known = known || message.find(form) != std::string::npos;
      EXPECT_TRUE(known) << message;
    }
  }
}

TEST(GgufBadFile, OpenPrefixesThePath) {
  const std::string path = testlib::temp_dir() + "/gguf_bad_magic.gguf";
  std::string image = base_image();
  image.replace(0, 4, "XXXX");
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(image.data(), 1, image.size(), f);
    std::fclose(f);
  }
  try {
    File::open(path);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": not a GGUF file (bad magic 0x58585858)");
  }
  const std::string empty = testlib::temp_dir() + "/gguf_empty.gguf";
  std::fclose(std::fopen(empty.c_str(), "wb"));
  try {
    File::open(empty);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), empty + ": file is empty");
  }
  try {
    File::open(path + ".missing");
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ".missing: cannot open"), std::string::npos);
  }
}

}  // namespace
}  // namespace quanta::gguf::test
