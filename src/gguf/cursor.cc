// Bounds-checked reads for the GGUF parser (see cursor.h).
#include "gguf/cursor.h"

#include <cinttypes>
#include <cstdarg>

#include "core/error.h"

namespace quanta::gguf {

void Cursor::fail(const char* fmt, ...) const {
  va_list args;
  va_start(args, fmt);
  std::string message = vstrformat(fmt, args);
  va_end(args);
  if (!context_.empty()) message = context_ + ": " + message;
  throw Error(message);
}

const uint8_t* Cursor::take(uint64_t n, const char* what) {
  if (n > remaining()) {
    fail("truncated: %s needs %" PRIu64 " bytes at offset 0x%" PRIx64 " but only %" PRIu64
         " remain",
         what, n, pos_, remaining());
  }
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

std::string_view Cursor::string(const char* what) {
  const uint64_t n = u64(what);
  if (n > remaining()) {
    fail("%s length %" PRIu64 " exceeds remaining %" PRIu64 " bytes", what, n, remaining());
  }
  const uint8_t* p = take(n, what);
  return std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

void Cursor::check_count(uint64_t count, uint64_t min_bytes, const char* what) const {
  if (min_bytes != 0 && count > remaining() / min_bytes) {
    fail("%s %" PRIu64 " cannot fit in the remaining %" PRIu64
         " bytes (each needs at least %" PRIu64 ")",
         what, count, remaining(), min_bytes);
  }
}

}  // namespace quanta::gguf
