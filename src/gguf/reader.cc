// GGUF File: maps the file read-only, runs the validating parser (parse_*.cc) and serves
// metadata and tensor lookups.
#include "gguf/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "gguf/checks.h"
#include "gguf/cursor.h"
#include "gguf/parse.h"

namespace quanta::gguf {

int64_t TensorInfo::n_elements() const {
  if (ne.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

int64_t TensorInfo::n_rows() const {
  if (ne.empty() || ne[0] == 0) return 0;
  return n_elements() / ne[0];
}

File File::open(const std::string& path) {
  File f;
  f.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("%s: cannot stat: %s", path.c_str(), std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("%s: not a regular file", path.c_str());
  }
  if (st.st_size == 0) {
    ::close(fd);
    fail("%s: file is empty", path.c_str());
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED)
    fail("%s: cannot mmap %zu bytes: %s", path.c_str(), size, std::strerror(err));
  f.mapping_ = map;
  f.base_ = static_cast<const uint8_t*>(map);
  f.size_ = size;
  f.parse_or_fail();
  return f;
}

File File::from_bytes(std::string bytes, std::string name) {
  File f;
  f.path_ = std::move(name);
  f.owned_.resize(bytes.size());
  if (!bytes.empty()) std::memcpy(f.owned_.data(), bytes.data(), bytes.size());
  f.base_ = reinterpret_cast<const uint8_t*>(f.owned_.data());
  f.size_ = bytes.size();
  f.parse_or_fail();
  return f;
}

File::File(File&& other) noexcept {
  *this = std::move(other);
}

File& File::operator=(File&& other) noexcept {
  if (this == &other) return *this;
  release();
  path_ = std::move(other.path_);
  base_ = other.base_;
  size_ = other.size_;
  mapping_ = other.mapping_;
  owned_ = std::move(other.owned_);  // moves the heap block: base_ stays valid
  version_ = other.version_;
  alignment_ = other.alignment_;
  data_offset_ = other.data_offset_;
  kvs_ = std::move(other.kvs_);
  kv_index_ = std::move(other.kv_index_);
  tensors_ = std::move(other.tensors_);
  tensor_index_ = std::move(other.tensor_index_);
  other.base_ = nullptr;
  other.size_ = 0;
  other.mapping_ = nullptr;
  return *this;
}

File::~File() {
  release();
}

void File::release() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
  mapping_ = nullptr;
  base_ = nullptr;
}

void File::parse_or_fail() {
  try {
    parse();
  } catch (const Error& e) {
    throw Error(path_ + ": " + e.what());
  }
}

// Layout: header | metadata | tensor infos | zero padding to the alignment | data section.
void File::parse() {
  Cursor cur(base_, size_);
  const Header header = read_header(cur);
  version_ = header.version;
  read_metadata(cur, header.n_kv, &kvs_, &kv_index_);
  alignment_ = read_alignment(kvs_, kv_index_);
  read_tensor_infos(cur, header.n_tensors, alignment_, &tensors_, &tensor_index_);
  // NOTE: with no tensors the data section may start past the end of the file (writers
  // such as gguf-py omit the final padding of vocab-only files); nothing reads from it.
  data_offset_ = align_up(cur.pos(), alignment_);
  check_tensor_ranges(tensors_, data_offset_, size_);
}

const Value* File::find(std::string_view key) const {
  const auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

namespace {

// Runs `read` on the value of `key`; nullopt when absent; type errors name the key.
template <typename T, typename Read>
std::optional<T> typed_lookup(const File& file, std::string_view key, Read read) {
  const Value* v = file.find(key);
  if (v == nullptr) return std::nullopt;
  try {
    return read(*v);
  } catch (const Error& e) {
    fail("metadata key '%.*s': %s", static_cast<int>(key.size()), key.data(), e.what());
  }
}

}  // namespace

std::optional<int64_t> File::get_int(std::string_view key) const {
  return typed_lookup<int64_t>(*this, key, [](const Value& v) { return v.as_int(); });
}

std::optional<double> File::get_float(std::string_view key) const {
  return typed_lookup<double>(*this, key, [](const Value& v) { return v.as_float(); });
}

std::optional<bool> File::get_bool(std::string_view key) const {
  return typed_lookup<bool>(*this, key, [](const Value& v) { return v.as_bool(); });
}

std::optional<std::string> File::get_string(std::string_view key) const {
  return typed_lookup<std::string>(*this, key, [](const Value& v) { return v.as_string(); });
}

const Array* File::get_array(std::string_view key) const {
  const auto found =
      typed_lookup<const Array*>(*this, key, [](const Value& v) { return &v.as_array(); });
  return found ? *found : nullptr;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* File::tensor_data(const TensorInfo& info) const {
  QUANTA_ASSERT(base_ != nullptr && info.offset <= size_ && data_offset_ + info.offset <= size_ &&
                info.n_bytes <= size_ - data_offset_ - info.offset);
  return base_ + data_offset_ + info.offset;
}

}  // namespace quanta::gguf
