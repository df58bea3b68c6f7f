// Allocation counting for "nothing is allocated per token" tests: every global operator new
// in a binary that uses this header is counted.
#pragma once

#include <cstdint>

namespace quanta::testlib {

// Global operator new calls (all forms) since the program started.
int64_t allocation_count();

}  // namespace quanta::testlib
