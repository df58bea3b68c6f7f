// The SIMDe-emulated kernel paths of kernels_tests ("<isa>-simde"), registered with
// the dispatch on first call (emulated_tables_test.cc).
#pragma once

#include <string>
#include <vector>

namespace quanta::kernels {

// Their names, in the native order; empty without AVX2 (the emulation's base).
const std::vector<std::string>& emulated_isas();

}  // namespace quanta::kernels
