// Error formatting and the assert handler.
#include "core/error.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace quanta {

std::string vstrformat(const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return std::string();
  std::string out(static_cast<size_t>(n), '\0');
  std::vsnprintf(out.data(), out.size() + 1, fmt, args);
  return out;
}

std::string strformat(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string out = vstrformat(fmt, args);
  va_end(args);
  return out;
}

void fail(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string message = vstrformat(fmt, args);
  va_end(args);
  throw Error(message);
}

void assert_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "quanta: internal error: assertion '%s' failed at %s:%d\n", expr, file,
               line);
  std::abort();
}

std::string ascii_lower(const std::string& s) {
  std::string lower = s;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

}  // namespace quanta
