// Memory read bandwidth of this machine: threads stream-read a buffer much larger than the
// caches. It is the roofline of memory-bound work such as decoding (weights read per token).
#pragma once

#include <cstddef>

namespace quanta {

// 512 MiB: 16x the 32 MiB L3 of the reference machine, so reads come from DRAM.
inline constexpr size_t kBandwidthBufferBytes = size_t{512} << 20;

struct BandwidthOptions {
  int n_threads = 1;                            // readers, each streaming its own slice
  size_t buffer_bytes = kBandwidthBufferBytes;  // rounded down to a multiple of 4 KiB per thread
  int passes = 8;                               // the fastest pass is reported (as STREAM does)
};

struct BandwidthResult {
  double bytes_per_s = 0.0;  // of the fastest pass
  // Passes in which every thread kept its CPU (thread CPU time >= 90% of the pass): with none,
  // other processes were running and bytes_per_s understates the machine.
  int clean_passes = 0;
};

// Memory read bandwidth; throws quanta::Error for a buffer too small to split.
BandwidthResult measure_read_bandwidth(const BandwidthOptions& options);

}  // namespace quanta
