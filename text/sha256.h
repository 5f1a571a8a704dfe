#pragma once

#include <string>
#include <string_view>

namespace bulkhead::text {

// SHA-256 (OpenSSL), written as 64 lowercase hex digits: the policy's audit digest, the keys of
// label sets in the kvstore.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // The digest of everything updated so far; the object is spent afterwards.
  std::string hex();

 private:
  void* context_;  // EVP_MD_CTX
};

std::string sha256Hex(std::string_view bytes);

}  // namespace bulkhead::text
