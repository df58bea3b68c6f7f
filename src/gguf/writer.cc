// GGUF writer: validates what it is given with the reader's own rules (checks.h), then lays
// the file out as llama.cpp does: header, metadata, tensor infos, zero padding to the
// alignment, then each tensor's bytes padded with zeros to the alignment.
#include "gguf/writer.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "gguf/checks.h"

namespace quanta::gguf {

namespace {

void put_bytes(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
}
void put_u32(std::string& out, uint32_t v) {
  put_bytes(out, &v, sizeof v);
}
void put_u64(std::string& out, uint64_t v) {
  put_bytes(out, &v, sizeof v);
}
void put_string(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out.append(s);
}
void pad_to(std::string& out, uint64_t alignment) {
  out.append(align_up(out.size(), alignment) - out.size(), '\0');
}

void put_array(std::string& out, const Array& a);

// Value payload only (the type code is written by the caller).
void put_value(std::string& out, const Value& v) {
  if (v.type == ValueType::kString) {
    put_string(out, v.str);
  } else if (v.type == ValueType::kArray) {
    put_array(out, *v.arr);
  } else {
    put_bytes(out, &v.bits, scalar_size(v.type));  // low bytes: the host is little-endian
  }
}

// u32 element type | u64 count | elements.
void put_array(std::string& out, const Array& a) {
  put_u32(out, static_cast<uint32_t>(a.elem_type));
  put_u64(out, a.size());
  if (a.elem_type == ValueType::kString) {
    for (const std::string& s : a.strings) put_string(out, s);
  } else if (a.elem_type == ValueType::kArray) {
    for (const Value& v : a.arrays) put_array(out, *v.arr);
  } else {
    put_bytes(out, a.raw.data(), a.raw.size());
  }
}

bool write_zeros(std::FILE* f, uint64_t n) {
  static const char kZeros[4096] = {};
  while (n > 0) {
    const size_t chunk = n < sizeof kZeros ? static_cast<size_t>(n) : sizeof kZeros;
    if (std::fwrite(kZeros, 1, chunk, f) != chunk) return false;
    n -= chunk;
  }
  return true;
}

[[noreturn]] void write_failed(const std::string& path, const std::string& tmp, int err) {
  std::remove(tmp.c_str());
  fail("gguf writer: cannot write '%s': %s", path.c_str(), std::strerror(err));
}

}  // namespace

Writer::Writer(uint32_t version) : version_(version) {
  if (version != 2 && version != 3) {
    fail("gguf writer: unsupported version %u (quanta writes versions 2 and 3)", version);
  }
}

void Writer::set(const std::string& key, Value value) {
  std::string problem = name_problem(key, kMaxKeyLength);
  if (problem.empty()) problem = value_problem(value);
  if (problem.empty() && key == kAlignmentKey) problem = alignment_problem(value);
  if (!problem.empty()) fail("gguf writer: metadata key '%s': %s", key.c_str(), problem.c_str());
  for (KeyValue& kv : kvs_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kvs_.push_back(KeyValue{key, std::move(value)});
}

void Writer::add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne,
                        const void* data, size_t n_bytes) {
  std::string problem = name_problem(name, kMaxTensorNameLength);
  uint64_t expected = 0;
  if (problem.empty()) problem = tensor_problem(static_cast<uint32_t>(type), ne, &expected);
  if (problem.empty() && expected != n_bytes) {
    problem = strformat("%zu bytes given, the type and dims need %" PRIu64, n_bytes, expected);
  }
  if (problem.empty() && data == nullptr) problem = "no data";
  for (const Tensor& t : tensors_) {
    if (problem.empty() && t.name == name) problem = "duplicate tensor name";
  }
  if (!problem.empty()) fail("gguf writer: tensor '%s': %s", name.c_str(), problem.c_str());
  const uint8_t* p = static_cast<const uint8_t*>(data);
  tensors_.push_back(Tensor{name, type, ne, std::vector<uint8_t>(p, p + n_bytes)});
}

uint64_t Writer::alignment() const {
  for (const KeyValue& kv : kvs_) {
    if (kv.key == kAlignmentKey) return kv.value.bits;  // validated by set()
  }
  return kDefaultAlignment;
}

// u32 magic | u32 version | u64 n_tensors | u64 n_kv | key/values | tensor infos | padding.
std::string Writer::head_bytes() const {
  const uint64_t align = alignment();
  std::string out;
  put_u32(out, kMagic);
  put_u32(out, version_);
  put_u64(out, tensors_.size());
  put_u64(out, kvs_.size());
  for (const KeyValue& kv : kvs_) {
    put_string(out, kv.key);
    put_u32(out, static_cast<uint32_t>(kv.value.type));
    put_value(out, kv.value);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put_u32(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put_bytes(out, &d, sizeof d);
    put_u32(out, static_cast<uint32_t>(t.type));
    put_u64(out, offset);
    offset = align_up(offset + t.data.size(), align);
  }
  // NOTE: vocab-only files (no tensors) end right after the infos, as gguf-py writes them.
  if (!tensors_.empty()) pad_to(out, align);
  return out;
}

std::string Writer::to_bytes() const {
  const uint64_t align = alignment();
  std::string out = head_bytes();
  for (const Tensor& t : tensors_) {
    put_bytes(out, t.data.data(), t.data.size());
    pad_to(out, align);  // the data section starts aligned, so this aligns offsets too
  }
  return out;
}

void Writer::write(const std::string& path) const {
  const uint64_t align = alignment();
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) write_failed(path, tmp, errno);
  const std::string head = head_bytes();
  bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
  for (const Tensor& t : tensors_) {
    if (!ok) break;
    const size_t pad = align_up(t.data.size(), align) - t.data.size();
    ok = std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size() && write_zeros(f, pad);
  }
  const int err = errno;
  if (std::fclose(f) != 0 && ok) write_failed(path, tmp, errno);
  if (!ok) write_failed(path, tmp, err);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) write_failed(path, tmp, errno);
}

Writer Writer::from_file(const File& file) {
  Writer w(file.version());
  for (const KeyValue& kv : file.metadata()) w.set(kv.key, kv.value);
  for (const TensorInfo& t : file.tensors()) {
    w.add_tensor(t.name, t.type, t.ne, file.tensor_data(t), t.n_bytes);
  }
  return w;
}

}  // namespace quanta::gguf
