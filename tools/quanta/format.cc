// Formatting helpers for CLI output.
#include "format.h"

#include "core/error.h"

namespace quanta::cli {

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? strformat("%llu B", static_cast<unsigned long long>(bytes))
                : strformat("%.2f %s", v, units[u]);
}

std::string human_count(int64_t n) {
  const double v = static_cast<double>(n);
  if (n >= 1000000000) return strformat("%.2fB", v / 1e9);
  if (n >= 1000000) return strformat("%.2fM", v / 1e6);
  if (n >= 1000) return strformat("%.1fK", v / 1e3);
  return strformat("%lld", static_cast<long long>(n));
}

}  // namespace quanta::cli
