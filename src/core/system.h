// Facts about the machine and the clock: RAM, CPU count, a monotonic timer.
#pragma once

#include <cstdint>

namespace quanta {

uint64_t total_ram_bytes();      // physical memory
uint64_t available_ram_bytes();  // MemAvailable from /proc/meminfo, else total
int hardware_threads();          // logical CPUs usable by this process (>= 1)
double now_seconds();            // monotonic clock

}  // namespace quanta
