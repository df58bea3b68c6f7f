// Error reporting: one exception type for bad input (model files, flags, requests) and a
// printf-style formatter. Hot paths never throw; load and parse paths do.
#pragma once

#include <cstdarg>
#include <stdexcept>
#include <string>

namespace quanta {

// Thrown for every recoverable failure caused by input: the message names the problem.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// printf-style formatting into a std::string (g++ 12 has no <format>).
std::string strformat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrformat(const char* fmt, va_list args);

// `s` with ASCII letters lowered (for case-insensitive flag values such as type names).
std::string ascii_lower(const std::string& s);

// Throws quanta::Error with a formatted message.
[[noreturn]] void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace quanta

// Internal invariant (a bug, not bad input): prints and aborts in every build type.
#define QUANTA_ASSERT(cond)                                                  \
  do {                                                                       \
    if (!(cond)) ::quanta::assert_failed(#cond, __FILE__, __LINE__);         \
  } while (0)

namespace quanta {
[[noreturn]] void assert_failed(const char* expr, const char* file, int line);
}  // namespace quanta
