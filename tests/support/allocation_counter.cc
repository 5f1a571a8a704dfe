#include "tests/support/allocation_counter.h"

#include <cerrno>
#include <cstddef>

// glibc's own entry points: the replacements below count, then call these.
extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* pointer, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* pointer);
}

namespace {

thread_local bool counting = false;
thread_local uint64_t counted = 0;

inline void note() {
  if (counting) {
    ++counted;
  }
}

}  // namespace

namespace bulkhead::testing {

void countAllocations(bool on) {
  counting = on;
}

uint64_t allocationsCounted() {
  return counted;
}

}  // namespace bulkhead::testing

extern "C" {

void* malloc(size_t size) {
  note();
  return __libc_malloc(size);
}

void* calloc(size_t count, size_t size) {
  note();
  return __libc_calloc(count, size);
}

void* realloc(void* pointer, size_t size) {
  note();
  return __libc_realloc(pointer, size);
}

void* memalign(size_t alignment, size_t size) {
  note();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  note();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  note();
  void* memory = __libc_memalign(alignment, size);
  if (memory == nullptr) {
    return ENOMEM;
  }
  *out = memory;
  return 0;
}

void free(void* pointer) {
  __libc_free(pointer);
}

}  // extern "C"
