#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace bulkhead::dataplane {

// A fixed array of zero bytes straight from the kernel (an anonymous mapping): a page costs
// memory only once it is written, so a table sized for a million flows costs what its flows
// use. For types whose all-zero bytes are a valid value and that need no destructor.
template <typename T>
class MappedArray {
  static_assert(std::is_trivially_destructible_v<T>);

 public:
  MappedArray() = default;
  explicit MappedArray(size_t size) : size_(size) {
    if (size_ == 0) {
      return;
    }
    void* memory = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) {
      throw std::runtime_error("cannot map " + std::to_string(bytes()) + " bytes");
    }
    data_ = static_cast<T*>(memory);
  }
  ~MappedArray() {
    if (data_ != nullptr) {
      ::munmap(data_, bytes());
    }
  }
  MappedArray(MappedArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MappedArray& operator=(MappedArray&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }

  T& operator[](size_t index) { return data_[index]; }
  const T& operator[](size_t index) const { return data_[index]; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace bulkhead::dataplane
