// Internal to src/gguf: a bounds-checked little-endian cursor over an untrusted byte image.
// Every failure throws quanta::Error prefixed with the current context ("metadata key 'x'",
// "tensor 'blk.0.attn_q.weight'") so that messages say where the problem is.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace quanta::gguf {

static_assert(
    std::endian::native == std::endian::little,
    "the GGUF reader maps little-endian files directly; big-endian hosts are unsupported");

class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }
  uint64_t remaining() const { return size_ - pos_; }

  // Context prefixed to every error message; empty for none.
  void set_context(std::string context) { context_ = std::move(context); }
  const std::string& context() const { return context_; }

  // Throws quanta::Error("<context>: <formatted message>").
  [[noreturn]] void fail(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));

  // Returns a pointer to the next `n` bytes and advances; `what` names them for the
  // "truncated" message.
  const uint8_t* take(uint64_t n, const char* what);

  template <typename T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof v, what), sizeof v);
    return v;
  }
  uint32_t u32(const char* what) { return read<uint32_t>(what); }
  uint64_t u64(const char* what) { return read<uint64_t>(what); }
  int64_t i64(const char* what) { return read<int64_t>(what); }

  // A uint64 length followed by that many bytes; the length is checked against the bytes
  // left before anything is read ("<what> length N exceeds remaining M bytes").
  std::string_view string(const char* what);

  // Fails unless `count` items of at least `min_bytes` each can fit in the remaining bytes;
  // called before allocating anything sized by `count`.
  void check_count(uint64_t count, uint64_t min_bytes, const char* what) const;

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string context_;
};

}  // namespace quanta::gguf
