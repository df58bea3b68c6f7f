// Human-readable sizes and counts for CLI output.
#pragma once

#include <cstdint>
#include <string>

namespace quanta::cli {

std::string human_bytes(uint64_t bytes);  // "1.16 MiB"
std::string human_count(int64_t n);       // "260.1K", "1.10B"

}  // namespace quanta::cli
