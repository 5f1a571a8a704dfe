#pragma once

#include <cstdint>

namespace bulkhead::testing {

// Counts the heap allocations the calling thread makes while counting is on: malloc, calloc,
// realloc and the aligned ones, and so operator new and every container. Linked into a test
// binary, it replaces the C library's allocator entry points for the whole binary (and forwards
// to glibc's own); threads that never turn counting on pay one thread-local test per call.
void countAllocations(bool on);
uint64_t allocationsCounted();

}  // namespace bulkhead::testing
