// GGUF header and metadata parsing: magic, version, counts, key/value pairs with every value
// type and nested arrays, and general.alignment.
#include <cinttypes>

#include "core/error.h"
#include "gguf/checks.h"
#include "gguf/parse.h"

namespace quanta::gguf {

namespace {

// Smallest on-disk size of one array element of `type`, for the count check.
uint64_t min_element_bytes(ValueType type) {
  if (type == ValueType::kString) return 8;  // u64 length
  if (type == ValueType::kArray) return 12;  // u32 element type + u64 count
  return scalar_size(type);
}

// "metadata key '<key>'", built by appends (GCC 12 warns falsely on operator+ chains here).
std::string key_context(std::string_view key) {
  std::string out = "metadata key '";
  out.append(key);
  out.push_back('\'');
  return out;
}

Array read_array(Cursor& cur, int depth) {
  Array a;
  const uint32_t code = cur.u32("array element type");
  if (!is_known_value_type(code)) cur.fail("unknown array element type %u", code);
  a.elem_type = static_cast<ValueType>(code);
  if (a.elem_type == ValueType::kArray && depth + 1 >= kMaxArrayDepth) {
    cur.fail("arrays nested deeper than %d levels", kMaxArrayDepth);
  }
  const uint64_t n = cur.u64("array length");
  cur.check_count(n, min_element_bytes(a.elem_type), "array length");
  if (a.elem_type == ValueType::kString) {
    a.strings.reserve(n);
    for (uint64_t i = 0; i < n; ++i) a.strings.emplace_back(cur.string("string"));
  } else if (a.elem_type == ValueType::kArray) {
    a.arrays.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      Value v;
      v.type = ValueType::kArray;
      v.arr = std::make_shared<Array>(read_array(cur, depth + 1));
      a.arrays.push_back(std::move(v));
    }
  } else {
    const uint64_t bytes = n * scalar_size(a.elem_type);  // cannot overflow: checked above
    const uint8_t* p = cur.take(bytes, "array data");
    a.raw.assign(p, p + bytes);
    if (a.elem_type == ValueType::kBool) {
      for (uint64_t i = 0; i < n; ++i) {
        if (p[i] > 1) cur.fail("bool array element %" PRIu64 " is %u, not 0 or 1", i, p[i]);
      }
    }
  }
  return a;
}

}  // namespace

Header read_header(Cursor& cur) {
  if (cur.size() == 0) cur.fail("file is empty");
  if (cur.size() < 4)
    cur.fail("truncated: file of %" PRIu64 " bytes is too short for the magic", cur.size());
  const uint32_t magic = cur.u32("magic");
  if (magic != kMagic) cur.fail("not a GGUF file (bad magic 0x%08x)", magic);
  Header h;
  h.version = cur.u32("version");
  if (h.version == 0x02000000u || h.version == 0x03000000u) {
    cur.fail("big-endian GGUF files are not supported (version field 0x%08x)", h.version);
  }
  if (h.version == 1) {
    cur.fail("unsupported GGUF version 1 (the pre-release format; quanta reads versions 2 and 3)");
  }
  if (h.version != 2 && h.version != 3) {
    cur.fail("unsupported GGUF version %u (quanta reads versions 2 and 3)", h.version);
  }
  h.n_tensors = cur.u64("tensor count");
  h.n_kv = cur.u64("metadata count");
  cur.check_count(h.n_kv, kMinKeyValueBytes, "metadata count");
  cur.check_count(h.n_tensors, kMinTensorInfoBytes, "tensor count");
  return h;
}

Value read_value(Cursor& cur, uint32_t type_code, int depth) {
  if (!is_known_value_type(type_code)) cur.fail("unknown value type %u", type_code);
  Value v;
  v.type = static_cast<ValueType>(type_code);
  if (v.type == ValueType::kString) {
    v.str = std::string(cur.string("string"));
  } else if (v.type == ValueType::kArray) {
    v.arr = std::make_shared<Array>(read_array(cur, depth));
  } else {
    const size_t n = scalar_size(v.type);
    std::memcpy(&v.bits, cur.take(n, value_type_name(v.type)), n);
    if (v.type == ValueType::kBool && v.bits > 1) {
      cur.fail("bool value %" PRIu64 " is not 0 or 1", v.bits);
    }
  }
  return v;
}

void read_metadata(Cursor& cur, uint64_t n_kv, std::vector<KeyValue>* kvs,
                   std::unordered_map<std::string, size_t>* index) {
  kvs->reserve(n_kv);  // bounded by the file size (read_header checked the count)
  for (uint64_t i = 0; i < n_kv; ++i) {
    cur.set_context(strformat("metadata entry %" PRIu64, i));
    const std::string_view key = cur.string("key");
    const std::string problem = name_problem(key, kMaxKeyLength);
    if (!problem.empty()) cur.fail("bad key: %s", problem.c_str());
    cur.set_context(key_context(key));
    const uint32_t type = cur.u32("value type");
    Value value = read_value(cur, type, 0);
    auto [it, inserted] = index->emplace(std::string(key), kvs->size());
    if (!inserted) {
      cur.fail("duplicate key (entries %zu and %" PRIu64 ")", it->second, i);
    }
    kvs->push_back(KeyValue{it->first, std::move(value)});
  }
  cur.set_context("");
}

uint64_t read_alignment(const std::vector<KeyValue>& kvs,
                        const std::unordered_map<std::string, size_t>& index) {
  const auto it = index.find(kAlignmentKey);
  if (it == index.end()) return kDefaultAlignment;
  const std::string problem = alignment_problem(kvs[it->second].value);
  if (!problem.empty()) fail("metadata key '%s': %s", kAlignmentKey, problem.c_str());
  return kvs[it->second].value.bits;
}

}  // namespace quanta::gguf
