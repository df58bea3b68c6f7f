// The x86 intrinsics for the AVX-512 and VNNI folders. Normally <immintrin.h>; in the test
// build that runs those folders on a CPU without them (QUANTA_SIMDE_EMULATION, see
// tests/unit/kernels/emulated_tables_test.cc), SIMDe's portable versions of the same intrinsic names.
#pragma once

#include <immintrin.h>

#if QUANTA_SIMDE_EMULATION
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#endif
